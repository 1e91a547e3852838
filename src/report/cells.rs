//! A section's result as typed cells with a label and a display format per column:
//! what Excel, HTML and Markdown all render, so the three show the same numbers.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::spec::{CellFormat, Report};
use crate::Result;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    /// Exact: money and scores stay decimals until they are drawn.
    Decimal(Decimal),
    Bool(bool),
    Text(String),
}

impl Cell {
    /// The value as a number, for Excel and charts.
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) if f.is_finite() => Some(*f),
            Cell::Decimal(d) => d.to_f64(),
            _ => None,
        }
    }

    /// The value as shown in HTML and Markdown.
    pub fn display(&self, format: CellFormat) -> String {
        match (self, format) {
            (Cell::Null, _) => String::new(),
            (Cell::Text(s), _) => s.clone(),
            (Cell::Bool(b), _) => if *b { "是" } else { "否" }.to_string(),
            (Cell::Int(i), CellFormat::Percent) => match i.checked_mul(100) {
                Some(p) => format!("{p}%"),
                None => format!("{}%", *i as f64 * 100.0),
            },
            (Cell::Int(i), _) => i.to_string(),
            (Cell::Decimal(d), CellFormat::Percent) => match d.checked_mul(Decimal::ONE_HUNDRED) {
                Some(p) => format!("{p:.2}%"),
                None => format!("{d}"),
            },
            (Cell::Decimal(d), CellFormat::Money) => thousands(&format!("{:.2}", d)),
            (Cell::Decimal(d), CellFormat::Integer) => d.round().to_string(),
            (Cell::Decimal(d), _) => format!("{:.2}", d),
            (Cell::Float(f), CellFormat::Percent) => format!("{:.2}%", f * 100.0),
            (Cell::Float(f), CellFormat::Money) => thousands(&format!("{f:.2}")),
            (Cell::Float(f), CellFormat::Integer) => format!("{f:.0}"),
            (Cell::Float(f), _) => format!("{f:.2}"),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            other => other.display(CellFormat::Text),
        }
    }
}

/// `1234567.80` → `1,234,567.80`.
fn thousands(plain: &str) -> String {
    let (sign, digits) = plain.strip_prefix('-').map_or(("", plain), |d| ("-", d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub label: String,
    pub format: CellFormat,
}

/// A result ready to render.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn from_batches(
        schema: &datafusion::arrow::datatypes::Schema,
        batches: &[RecordBatch],
        report: &Report,
    ) -> Result<Table> {
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                let style = report.style(field.name());
                Column {
                    name: field.name().clone(),
                    label: style.label.unwrap_or_else(|| field.name().clone()),
                    format: style
                        .format
                        .unwrap_or_else(|| infer_format(field.name(), field.data_type())),
                }
            })
            .collect();
        let mut rows = Vec::new();
        for batch in batches {
            let cells: Vec<Vec<Cell>> = batch
                .columns()
                .iter()
                .map(|array| cells(array.as_ref()))
                .collect::<Result<_>>()?;
            for row in 0..batch.num_rows() {
                rows.push(cells.iter().map(|column| column[row].clone()).collect());
            }
        }
        Ok(Table { columns, rows })
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The table as a heat map shows it: a row per `y`, a column per `x` (both in
    /// order of first appearance), each cell the `value` of that pair. `None` when a
    /// column is missing.
    pub fn pivot(&self, x: &str, y: &str, value: &str) -> Option<Table> {
        let (xi, yi, vi) = (self.column(x)?, self.column(y)?, self.column(value)?);
        let mut xs: Vec<String> = Vec::new();
        let mut ys: Vec<String> = Vec::new();
        let mut cells = std::collections::HashMap::new();
        for row in &self.rows {
            let (xv, yv) = (row[xi].text(), row[yi].text());
            if !xs.contains(&xv) {
                xs.push(xv.clone());
            }
            if !ys.contains(&yv) {
                ys.push(yv.clone());
            }
            cells.insert((xv, yv), row[vi].clone());
        }
        let mut columns = vec![self.columns[yi].clone()];
        columns.extend(xs.iter().map(|x| Column {
            name: x.clone(),
            label: x.clone(),
            format: self.columns[vi].format,
        }));
        let rows = ys
            .iter()
            .map(|y| {
                std::iter::once(Cell::Text(y.clone()))
                    .chain(xs.iter().map(|x| {
                        cells
                            .get(&(x.clone(), y.clone()))
                            .cloned()
                            .unwrap_or(Cell::Null)
                    }))
                    .collect()
            })
            .collect();
        Some(Table { columns, rows })
    }
}

/// The format a column gets when reports.toml does not say: fractions named
/// `*rate` are percentages, two-decimal amounts of money precision are 万元.
fn infer_format(name: &str, data_type: &DataType) -> CellFormat {
    match data_type {
        DataType::Float32 | DataType::Float64 if name.ends_with("rate") => CellFormat::Percent,
        DataType::Float32 | DataType::Float64 => CellFormat::Decimal,
        DataType::Decimal128(precision, _) if *precision >= 15 => CellFormat::Money,
        DataType::Decimal128(..) | DataType::Decimal256(..) => CellFormat::Decimal,
        t if t.is_integer() => CellFormat::Integer,
        _ => CellFormat::Text,
    }
}

fn cells(array: &dyn Array) -> Result<Vec<Cell>> {
    macro_rules! ints {
        ($t:ty) => {
            array
                .as_primitive::<$t>()
                .iter()
                .map(|v| v.map_or(Cell::Null, |v| Cell::Int(v as i64)))
                .collect()
        };
    }
    Ok(match array.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Float32 => array
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map_or(Cell::Null, |v| Cell::Float(v as f64)))
            .collect(),
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map_or(Cell::Null, Cell::Float))
            .collect(),
        DataType::Decimal128(_, scale) => {
            let scale = *scale as u32;
            array
                .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
                .iter()
                .map(|v| {
                    v.and_then(|v| Decimal::try_from_i128_with_scale(v, scale).ok())
                        .map_or(Cell::Null, Cell::Decimal)
                })
                .collect()
        }
        DataType::Boolean => array
            .as_boolean()
            .iter()
            .map(|v| v.map_or(Cell::Null, Cell::Bool))
            .collect(),
        DataType::List(_) | DataType::LargeList(_) => {
            // Lists (lowest_k): their elements joined, as a Chinese list is written.
            let text = crate::output::joined(array, LIST_SEPARATOR)?.expect("a list column");
            (0..text.len())
                .map(|i| match text.is_null(i) {
                    true => Cell::Null,
                    false => Cell::Text(text.value(i).to_string()),
                })
                .collect()
        }
        _ => {
            // Text, dates: their display form.
            let options = FormatOptions::default();
            let formatter = ArrayFormatter::try_new(array, &options)?;
            (0..array.len())
                .map(|i| {
                    if array.is_null(i) {
                        Cell::Null
                    } else {
                        Cell::Text(formatter.value(i).to_string())
                    }
                })
                .collect()
        }
    })
}

/// Between the items of a list in a cell: 履职效益、结转结余控制.
pub const LIST_SEPARATOR: &str = "、";

/// Display width in Excel character units: CJK characters take two.
pub fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let d = Decimal::new(1234567, 2);
        assert_eq!(Cell::Decimal(d).display(CellFormat::Money), "12,345.67");
        assert_eq!(Cell::Decimal(-d).display(CellFormat::Money), "-12,345.67");
        assert_eq!(Cell::Float(0.380_83).display(CellFormat::Percent), "38.08%");
        assert_eq!(Cell::Null.display(CellFormat::Percent), "");
        assert_eq!(display_width("部门A"), 5);
    }

    #[test]
    fn a_heat_map_table_pivots_to_its_matrix() {
        let column = |name: &str, format| Column {
            name: name.into(),
            label: name.into(),
            format,
        };
        let table = Table {
            columns: vec![
                column("dept", CellFormat::Text),
                column("level2", CellFormat::Text),
                column("rate", CellFormat::Percent),
            ],
            rows: [("A", "x", 0.5), ("A", "y", 0.75), ("B", "y", 1.0)]
                .iter()
                .map(|(d, l, r)| {
                    vec![
                        Cell::Text(d.to_string()),
                        Cell::Text(l.to_string()),
                        Cell::Float(*r),
                    ]
                })
                .collect(),
        };
        let matrix = table.pivot("level2", "dept", "rate").unwrap();
        let names: Vec<&str> = matrix.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["dept", "x", "y"]);
        assert_eq!(matrix.columns[2].format, CellFormat::Percent);
        assert_eq!(
            matrix.rows[0],
            [Cell::Text("A".into()), Cell::Float(0.5), Cell::Float(0.75)]
        );
        assert_eq!(
            matrix.rows[1],
            [Cell::Text("B".into()), Cell::Null, Cell::Float(1.0)]
        );
        assert!(table.pivot("nope", "dept", "rate").is_none());
    }
}
