//! Parquet input: columns are read as text so they pass through the same checks as
//! CSV and XLSX (a Parquet file written by another tool may carry other types).

use bytes::Bytes;
use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::raw::{RawRow, RawTable};
use crate::{Error, Result};

pub fn read(path: &str, bytes: Vec<u8>) -> Result<RawTable> {
    let unreadable =
        |e: &dyn std::fmt::Display| Error::input(path, format!("not a readable Parquet file: {e}"));
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).map_err(|e| unreadable(&e))?;
    let headers = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect::<Vec<_>>();
    let reader = builder.build().map_err(|e| unreadable(&e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(&e))?;
        let columns = batch
            .columns()
            .iter()
            .map(|c| {
                cast(c, &DataType::Utf8).map_err(|e| {
                    Error::input(path, format!("a column cannot be read as text: {e}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let columns: Vec<&StringArray> = columns
            .iter()
            .map(|c| {
                c.as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8")
            })
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(RawRow {
                line: rows.len() + 2,
                cells: columns
                    .iter()
                    .map(|c| {
                        if c.is_null(i) {
                            String::new()
                        } else {
                            c.value(i).to_string()
                        }
                    })
                    .collect(),
            });
        }
    }
    if headers.is_empty() {
        return Err(Error::input(path, "the Parquet file has no columns"));
    }
    Ok(RawTable {
        path: path.to_string(),
        headers,
        rows,
    })
}
