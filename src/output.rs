//! What the CLI and the HTTP API share about writing results.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

/// CSV holds no lists or structs: such columns (lowest_k's lists, say) become their
/// text form, e.g. `[D1101, D2203]`; every other column is left as it is.
pub fn csv_ready(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(cast(column, &DataType::Utf8)?);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// [`csv_ready`] for people: list columns become their elements joined by
/// `separator` (`履职效益、结转结余控制`) instead of `[…]`; other nested columns as in
/// [`csv_ready`].
pub fn lists_joined(batch: &RecordBatch, separator: &str) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        match joined(column.as_ref(), separator)? {
            Some(text) => {
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                columns.push(Arc::new(text));
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    csv_ready(&RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// A list column's rows as text, elements joined by `separator`; `None` for a
/// column that is not a list.
pub fn joined(
    array: &dyn datafusion::arrow::array::Array,
    separator: &str,
) -> Result<Option<datafusion::arrow::array::StringArray>, ArrowError> {
    use datafusion::arrow::array::{Array, AsArray, StringBuilder};
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let rows: Vec<Option<ArrayRef>> = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().iter().collect(),
        DataType::LargeList(_) => array.as_list::<i64>().iter().collect(),
        _ => return Ok(None),
    };
    let options = FormatOptions::default();
    let mut text = StringBuilder::new();
    for row in rows {
        match row {
            None => text.append_null(),
            Some(values) => {
                let formatter = ArrayFormatter::try_new(values.as_ref(), &options)?;
                let parts: Vec<String> = (0..values.len())
                    .filter(|&i| values.is_valid(i))
                    .map(|i| formatter.value(i).to_string())
                    .collect();
                text.append_value(parts.join(separator));
            }
        }
    }
    Ok(Some(text.finish()))
}
