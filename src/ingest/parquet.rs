//! Parquet input, streamed batch by batch as Arrow. A column already of the table's
//! type is taken as it is; any other type (text, wider integers, floats, other
//! decimals) is read through the same exact parsing as a CSV cell, so a value that
//! does not fit is reported, never rounded. Row numbers are the data row plus one, as
//! a spreadsheet shows them under a header. A `year=YYYY` directory gives the year of
//! files that lack the column (a hive-partitioned export).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, Int32Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};

use super::cells::{type_column, Layout};
use super::validate::{FileRef, Problem};
use super::Chunk;
use crate::model::aliases::canonical_value;
use crate::model::{Column, TableDef};
use crate::{Error, Result};

const BATCH_ROWS: usize = 256 * 1024;

/// Opens `path`; returns its column names, its rows and a reader of its batches.
pub fn open(path: &Path, name: &str) -> Result<(Vec<String>, usize, ParquetRecordBatchReader)> {
    let unreadable =
        |e: &dyn std::fmt::Display| Error::input(name, format!("not a readable Parquet file: {e}"));
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| unreadable(&e))?;
    let headers: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if headers.is_empty() {
        return Err(Error::input(name, "the Parquet file has no columns"));
    }
    let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| unreadable(&e))?;
    Ok((headers, rows, reader))
}

/// Types one batch of the file, whose first row is data row `first_row` (1-based).
pub fn type_batch(
    batch: &RecordBatch,
    first_row: usize,
    year: Option<i32>,
    def: &'static TableDef,
    layout: &Layout,
    file: &FileRef,
    problems: &mut Vec<Problem>,
) -> Result<Chunk> {
    let rows = batch.num_rows();
    let lines: Vec<usize> = (0..rows).map(|r| first_row + r + 1).collect();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(def.columns.len());
    for (column, position) in def.columns.iter().zip(&layout.positions) {
        let target = column.kind.data_type();
        let source: ArrayRef = match (position, year) {
            (Some(p), _) => Arc::clone(batch.column(*p)),
            (None, Some(y)) if column.name == "year" => Arc::new(Int32Array::from(vec![y; rows])),
            (None, _) => new_null_array(&target, rows),
        };
        // Other string types (Utf8View from DataFusion, LargeUtf8) are text too.
        let source = match source.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 if target == DataType::Utf8 => {
                cast(&source, &DataType::Utf8)?
            }
            _ => source,
        };
        let plain = source.data_type() == &target
            && (target != DataType::Utf8 || clean_text(&source, column));
        let typed = if plain {
            if column.required && source.null_count() > 0 {
                for (r, line) in lines.iter().enumerate() {
                    if source.is_null(r) {
                        problems.push(file.problem(*line, column.name, "", "a value is required"));
                    }
                }
            }
            source
        } else {
            // Through text, exactly as a CSV cell.
            let text = cast(&source, &DataType::Utf8).map_err(|e| {
                Error::input(
                    &file.name,
                    format!("column {} cannot be read as text: {e}", column.name),
                )
            })?;
            let text = text
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to Utf8");
            let cells = (0..rows).map(|r| if text.is_valid(r) { text.value(r) } else { "" });
            type_column(column, cells, &lines, file, problems)?
        };
        columns.push(typed);
    }
    Ok(Chunk {
        batch: RecordBatch::try_new(def.loose_schema(), columns)?,
        lines,
    })
}

/// Text that needs no trimming, holds no empty string and no Chinese word to map.
fn clean_text(array: &ArrayRef, column: &Column) -> bool {
    let Some(text) = array.as_any().downcast_ref::<StringArray>() else {
        return false;
    };
    (0..text.len()).all(|r| {
        if text.is_null(r) {
            return true;
        }
        let v = text.value(r);
        !v.is_empty()
            && v.trim().len() == v.len()
            && (column.allowed.is_none() || canonical_value(column.name, v) == v)
    })
}
