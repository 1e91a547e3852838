//! The report of broken rules, and typed rows for inputs built in code (the sample
//! generator). Every problem names file, row, column, value and rule; the caller
//! writes nothing unless the report is empty. The rules themselves run over Arrow
//! batches in `rules.rs` (one row) and `refs.rs` / `stored.rs` (the warehouse).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder, StringBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;

pub use crate::error::{Problem, ValidationReport, SHOWN_PROBLEMS};
use crate::model::{Kind, TableDef};
use crate::{Error, Result};

/// How many problems are kept with their text; beyond it they are only counted, so a
/// file with every one of its hundred million rows wrong still fits in memory.
const KEPT_PROBLEMS: usize = 100_000;

/// A typed cell. Decimals are in units of their column's scale, as stored
/// (hundredths for money and scores, ten-thousandths for measures); dates are days
/// since 1970-01-01.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Text(String),
    Int(i32),
    Dec(i128),
    Bool(bool),
    Date(i32),
}

impl Value {
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn dec(&self) -> Option<i128> {
        match self {
            Value::Dec(d) => Some(*d),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i32> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, ""),
            Value::Text(s) => write!(f, "{s}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Dec(d) => write!(f, "{}", hundredths(*d)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Date(d) => write!(f, "{}", date(*d)),
        }
    }
}

/// A stored decimal (hundredths) as a user writes it: 5.50, -1.00.
pub fn hundredths(value: i128) -> Decimal {
    Decimal::from_i128_with_scale(value, 2)
}

/// A stored date (days since 1970-01-01) as a user writes it: 2024-03-31.
pub fn date(days: i32) -> chrono::NaiveDate {
    // 719,163 days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
    chrono::NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163)).unwrap_or_default()
}

/// Where problems of one input file are written down.
#[derive(Debug, Clone)]
pub struct FileRef {
    pub name: Arc<str>,
    pub order: usize,
}

impl FileRef {
    pub fn new(name: &str, order: usize) -> Self {
        FileRef {
            name: name.into(),
            order,
        }
    }

    pub fn problem(
        &self,
        line: usize,
        column: &str,
        value: impl ToString,
        rule: impl Into<String>,
    ) -> Problem {
        Problem {
            file: Arc::clone(&self.name),
            order: self.order,
            line,
            column: column.to_string(),
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

/// Collects the problems of one ingest.
#[derive(Debug)]
pub struct Problems {
    pub(super) input: String,
    table: &'static str,
    list: Vec<Problem>,
    uncounted: usize,
    note: Option<String>,
}

impl Problems {
    pub fn new(input: &str, def: &TableDef) -> Self {
        Problems {
            input: input.to_string(),
            table: def.name,
            list: Vec::new(),
            uncounted: 0,
            note: None,
        }
    }

    pub fn set_note(&mut self, note: String) {
        self.note = Some(note);
    }

    pub fn add(&mut self, problem: Problem) {
        if self.list.len() < KEPT_PROBLEMS {
            self.list.push(problem);
        } else {
            self.uncounted += 1;
        }
    }

    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        problems.into_iter().for_each(|p| self.add(p));
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.uncounted == 0
    }

    pub fn into_result(self) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        Err(self.into_error())
    }

    /// The report of the problems, sorted by file and row.
    pub fn into_error(mut self) -> Error {
        self.list.sort_by_key(|p| (p.order, p.line));
        Error::from(ValidationReport {
            file: self.input,
            table: self.table.to_string(),
            problems: self.list,
            uncounted: self.uncounted,
            note: self.note,
        })
    }
}

/// Typed rows of one table, with the row number each came from.
#[derive(Debug, Default)]
pub struct Rows {
    pub values: Vec<Vec<Value>>,
    pub lines: Vec<usize>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn push(&mut self, line: usize, row: Vec<Value>) {
        self.lines.push(line);
        self.values.push(row);
    }

    /// Arrow batches of at most `batch_rows` rows in the table's schema.
    pub fn to_batches(&self, def: &TableDef, batch_rows: usize) -> Result<Vec<RecordBatch>> {
        let schema = def.schema();
        let mut batches = Vec::new();
        for chunk in self.values.chunks(batch_rows.max(1)) {
            let columns = def
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| build_column(c.kind, chunk.iter().map(|r| &r[i])))
                .collect::<Result<Vec<_>>>()?;
            batches.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
        }
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(schema));
        }
        Ok(batches)
    }
}

fn build_column<'a>(kind: Kind, values: impl Iterator<Item = &'a Value>) -> Result<ArrayRef> {
    Ok(match kind {
        Kind::Text => {
            let mut b = StringBuilder::new();
            values.for_each(|v| b.append_option(v.text()));
            Arc::new(b.finish())
        }
        Kind::Int => {
            let mut b = Int32Builder::new();
            values.for_each(|v| b.append_option(v.int()));
            Arc::new(b.finish())
        }
        Kind::Money | Kind::Score | Kind::Measure => {
            let mut b = Decimal128Builder::new();
            values.for_each(|v| b.append_option(v.dec()));
            let (p, s) = kind.precision_scale();
            Arc::new(b.finish().with_precision_and_scale(p, s)?)
        }
        Kind::Bool => {
            let mut b = BooleanBuilder::new();
            values.for_each(|v| {
                b.append_option(match v {
                    Value::Bool(x) => Some(*x),
                    _ => None,
                })
            });
            Arc::new(b.finish())
        }
        Kind::Date => {
            let mut b = Date32Builder::new();
            values.for_each(|v| {
                b.append_option(match v {
                    Value::Date(d) => Some(*d),
                    _ => None,
                })
            });
            Arc::new(b.finish())
        }
    })
}
