//! Typing and checking rows against the data model. Every rule of DESIGN.md that a
//! single file can break is checked here, over the whole file, and every problem is
//! reported with file, row, column, value and rule; the caller writes nothing unless
//! the report is empty. Rules that need the stored tables are in `stored.rs`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, Int32Builder, StringBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;

use super::raw::RawTable;
use crate::model::aliases::{canonical_column, canonical_value};
use crate::model::{Kind, TableDef};
use crate::{Error, Result};

/// How many problems a report prints; the rest are counted.
pub const SHOWN_PROBLEMS: usize = 30;

/// A typed cell. Decimals are hundredths (scale 2), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Text(String),
    Int(i32),
    Dec(i128),
    Bool(bool),
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
            Value::Dec(d) => write!(f, "{}", Decimal::from_i128_with_scale(*d, 2)),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone)]
pub struct Problem {
    pub line: usize,
    pub column: String,
    pub value: String,
    pub rule: String,
}

/// Every problem found in one input; nothing is written when it is not empty.
#[derive(Debug, Clone)]
pub struct ValidationReport {
    pub file: String,
    pub table: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {n} problem{} found; nothing was written to {}",
            self.file,
            if n == 1 { "" } else { "s" },
            self.table
        )?;
        for p in self.problems.iter().take(SHOWN_PROBLEMS) {
            writeln!(
                f,
                "  {} row {}, column {}, value \"{}\": {}",
                self.file, p.line, p.column, p.value, p.rule
            )?;
        }
        if n > SHOWN_PROBLEMS {
            writeln!(f, "  … and {} more problems", n - SHOWN_PROBLEMS)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationReport {}

/// Collects problems for one file.
#[derive(Debug)]
pub struct Problems {
    file: String,
    table: &'static str,
    list: Vec<Problem>,
}

impl Problems {
    pub fn new(file: &str, def: &TableDef) -> Self {
        Problems {
            file: file.to_string(),
            table: def.name,
            list: Vec::new(),
        }
    }

    pub fn push(
        &mut self,
        line: usize,
        column: &str,
        value: impl ToString,
        rule: impl Into<String>,
    ) {
        self.list.push(Problem {
            line,
            column: column.to_string(),
            value: value.to_string(),
            rule: rule.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn into_result(mut self) -> Result<()> {
        if self.list.is_empty() {
            return Ok(());
        }
        self.list.sort_by_key(|p| p.line);
        Err(Error::from(ValidationReport {
            file: self.file,
            table: self.table.to_string(),
            problems: self.list,
        }))
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

    /// The distinct years present, sorted.
    pub fn years(&self, def: &TableDef) -> Vec<i32> {
        let Some(i) = def.column_index("year") else {
            return Vec::new();
        };
        let mut years: Vec<i32> = self.values.iter().filter_map(|r| r[i].int()).collect();
        years.sort_unstable();
        years.dedup();
        years
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
        Kind::Money | Kind::Score => {
            let mut b = Decimal128Builder::new();
            values.for_each(|v| b.append_option(v.dec()));
            let (p, s) = match kind.data_type() {
                datafusion::arrow::datatypes::DataType::Decimal128(p, s) => (p, s),
                _ => unreachable!("decimal kinds are Decimal128"),
            };
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
    })
}

/// Maps the file's headers to the table's columns: every column must be named once,
/// and no header may be left over.
fn map_headers(raw: &RawTable, def: &TableDef, problems: &mut Problems) -> Vec<Option<usize>> {
    let mut positions = vec![None; def.columns.len()];
    for (i, header) in raw.headers.iter().enumerate() {
        let name = canonical_column(header);
        match def.column_index(&name) {
            Some(c) if positions[c].is_some() => problems.push(
                1,
                header,
                header,
                format!("column {name} is named twice in the header"),
            ),
            Some(c) => positions[c] = Some(i),
            None => problems.push(
                1,
                header,
                header,
                format!(
                    "unknown column for table {}; its columns are {}",
                    def.name,
                    def.columns
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    for (c, column) in def.columns.iter().enumerate() {
        if positions[c].is_none() && column.required {
            problems.push(
                1,
                column.name,
                "",
                "required column is missing from the header",
            );
        }
    }
    positions
}

/// Types every cell and checks every rule one file can break by itself. Header
/// problems end the check at once; row problems are collected in `problems` and the
/// rows that typed cleanly are returned, so later checks can report theirs too.
pub fn check_file(
    raw: &RawTable,
    def: &TableDef,
    problems: &mut Problems,
    progress: &dyn Fn(u64),
) -> Result<Rows> {
    if raw.rows.is_empty() {
        problems.push(
            1,
            "",
            "",
            "the file has a header but no data rows; there is nothing to ingest",
        );
    }
    let positions = map_headers(raw, def, problems);
    if !problems.is_empty() {
        let header_problems = std::mem::replace(problems, Problems::new(&raw.path, def));
        return header_problems.into_result().map(|()| Rows::default());
    }
    let mut rows = Rows::default();
    for (n, raw_row) in raw.rows.iter().enumerate() {
        if n % 10_000 == 0 {
            progress(n as u64);
        }
        if raw_row.cells.len() != raw.headers.len() {
            problems.push(
                raw_row.line,
                "",
                raw_row.cells.join(","),
                format!(
                    "row has {} fields but the header has {} (a truncated or misaligned row)",
                    raw_row.cells.len(),
                    raw.headers.len()
                ),
            );
            continue;
        }
        let mut ok = true;
        let row: Vec<Value> = def
            .columns
            .iter()
            .zip(&positions)
            .map(|(column, position)| {
                let mut text = position.map(|p| raw_row.cells[p].trim()).unwrap_or("");
                if column.allowed.is_some() {
                    text = canonical_value(column.name, text);
                }
                match parse_cell(text, column.kind) {
                    Ok(Value::Null) if column.required => {
                        ok = false;
                        problems.push(raw_row.line, column.name, text, "a value is required");
                        Value::Null
                    }
                    Ok(value) => value,
                    Err(rule) => {
                        ok = false;
                        problems.push(raw_row.line, column.name, text, rule);
                        Value::Null
                    }
                }
            })
            .collect();
        if ok {
            rows.push(raw_row.line, row);
        }
    }
    progress(raw.rows.len() as u64);
    check_rows(def, &rows, problems);
    Ok(rows)
}

/// Rules on typed rows: allowed values, ranges, cross-column rules and uniqueness
/// within the rows. Used for files and for generated sample data alike.
pub fn check_rows(def: &TableDef, rows: &Rows, problems: &mut Problems) {
    let idx = |name: &str| def.column_index(name).expect("rule column is in the model");
    let mut seen: HashMap<Vec<&Value>, usize> = HashMap::with_capacity(rows.len());
    let key: Vec<usize> = def.key.iter().map(|k| idx(k)).collect();
    for (row, &line) in rows.values.iter().zip(&rows.lines) {
        for (column, value) in def.columns.iter().zip(row) {
            if let (Some(allowed), Value::Text(text)) = (column.allowed, value) {
                if !allowed.contains(&text.as_str()) {
                    problems.push(
                        line,
                        column.name,
                        text,
                        format!("must be one of {}", allowed.join(", ")),
                    );
                }
            }
            if column.name == "year" {
                if let Value::Int(year) = value {
                    if !(1949..=2100).contains(year) {
                        problems.push(line, "year", year, "a year must be between 1949 and 2100");
                    }
                }
            }
            if matches!(column.kind, Kind::Money) {
                if let Value::Dec(amount) = value {
                    if *amount < 0 {
                        problems.push(line, column.name, value, "an amount must not be negative");
                    }
                }
            }
        }
        row_rules(def, row, line, problems);
        let key_values: Vec<&Value> = key.iter().map(|&i| &row[i]).collect();
        if let Some(first) = seen.insert(key_values.clone(), line) {
            problems.push(
                line,
                &def.key.join(", "),
                key_values
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                format!(
                    "duplicate key ({}): the same key is on row {first}",
                    def.key.join(", ")
                ),
            );
        }
    }
}

/// The per-row rules of DESIGN.md's data-model table.
fn row_rules(def: &TableDef, row: &[Value], line: usize, problems: &mut Problems) {
    let get = |name: &str| &row[def.column_index(name).expect("rule column is in the model")];
    match def.name {
        "departments" => {
            if let (Value::Text(code), Value::Text(parent)) = (get("dept_code"), get("parent_code"))
            {
                if code == parent {
                    problems.push(
                        line,
                        "parent_code",
                        parent,
                        "a department cannot be its own parent",
                    );
                }
            }
        }
        "dept_scores" | "project_scores" => {
            let (score, max) = (get("score").dec(), get("max_score").dec());
            if let Some(max) = max {
                if max <= 0 {
                    problems.push(
                        line,
                        "max_score",
                        get("max_score"),
                        "max_score must be greater than 0",
                    );
                }
            }
            if let Some(score) = score {
                if score < 0 {
                    problems.push(line, "score", get("score"), "a score must not be negative");
                } else if let Some(max) = max.filter(|m| score > *m) {
                    problems.push(
                        line,
                        "score",
                        get("score"),
                        format!("score is above its max_score {}", Value::Dec(max)),
                    );
                }
            }
        }
        "exante_reviews" => {
            let requested = get("requested_amount").dec();
            let approved = get("approved_amount").dec();
            let conclusion = get("conclusion").text().unwrap_or("");
            if let (Some(r), Some(a)) = (requested, approved) {
                if a > r {
                    problems.push(
                        line,
                        "approved_amount",
                        get("approved_amount"),
                        format!(
                            "approved_amount is above requested_amount {}",
                            Value::Dec(r)
                        ),
                    );
                }
            }
            match (conclusion, approved) {
                ("reject", Some(a)) if a != 0 => problems.push(
                    line,
                    "approved_amount",
                    get("approved_amount"),
                    "a rejected project must have approved_amount 0",
                ),
                ("reject", None) => problems.push(
                    line,
                    "approved_amount",
                    "",
                    "a rejected project must have approved_amount 0",
                ),
                ("returned", Some(_)) => problems.push(
                    line,
                    "approved_amount",
                    get("approved_amount"),
                    "a returned project is not reviewed: approved_amount must be empty",
                ),
                ("support" | "partial", None) => problems.push(
                    line,
                    "approved_amount",
                    "",
                    "a reviewed project needs an approved_amount",
                ),
                _ => {}
            }
        }
        "evaluations" => {
            if let Some(score) = get("total_score").dec() {
                if !(0..=10_000).contains(&score) {
                    problems.push(
                        line,
                        "total_score",
                        get("total_score"),
                        "total_score must be between 0 and 100",
                    );
                }
            }
            if let Some(n) = get("suggestions").int() {
                if n < 0 {
                    problems.push(line, "suggestions", n, "suggestions must not be negative");
                }
            }
        }
        _ => {}
    }
}

/// Parses one cell; `Err` holds the rule the text breaks.
pub fn parse_cell(text: &str, kind: Kind) -> std::result::Result<Value, String> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    match kind {
        Kind::Text => Ok(Value::Text(text.to_string())),
        Kind::Int => text
            .parse::<i32>()
            .map(Value::Int)
            .map_err(|_| "must be a whole number".to_string()),
        Kind::Money | Kind::Score => parse_decimal(text, kind),
        Kind::Bool => match text.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "是" | "有" => Ok(Value::Bool(true)),
            "false" | "f" | "no" | "n" | "0" | "否" | "无" => Ok(Value::Bool(false)),
            _ => Err("must be true or false (also 1/0, yes/no, 是/否)".to_string()),
        },
    }
}

fn parse_decimal(text: &str, kind: Kind) -> std::result::Result<Value, String> {
    let what = if kind == Kind::Money {
        "an amount in 万元"
    } else {
        "a score"
    };
    // Spreadsheets group thousands with commas: 24,053.22.
    let cleaned: Cow<str> = if text.contains(',') {
        Cow::Owned(text.replace(',', ""))
    } else {
        Cow::Borrowed(text)
    };
    let mut value = Decimal::from_str(&cleaned).map_err(|_| format!("must be {what}, a number"))?;
    value = value.normalize();
    if value.scale() > 2 {
        return Err(format!("{what} has at most two decimals"));
    }
    value.rescale(2);
    let hundredths = value.mantissa();
    let limit = kind.decimal_limit().expect("decimal kind");
    if hundredths.abs() > limit {
        return Err(format!("{what} is too large for the column"));
    }
    Ok(Value::Dec(hundredths))
}

use std::borrow::Cow;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_two_places_exactly() {
        assert_eq!(
            parse_cell("24,053.22", Kind::Money),
            Ok(Value::Dec(2_405_322))
        );
        assert_eq!(parse_cell("12.5", Kind::Score), Ok(Value::Dec(1250)));
        assert_eq!(parse_cell("7.000", Kind::Score), Ok(Value::Dec(700)));
        assert!(parse_cell("1.234", Kind::Money)
            .unwrap_err()
            .contains("two decimals"));
        assert!(parse_cell("abc", Kind::Score)
            .unwrap_err()
            .contains("number"));
        assert!(parse_cell("100000", Kind::Score)
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn booleans_in_english_and_chinese() {
        assert_eq!(parse_cell("是", Kind::Bool), Ok(Value::Bool(true)));
        assert_eq!(parse_cell("FALSE", Kind::Bool), Ok(Value::Bool(false)));
        assert!(parse_cell("maybe", Kind::Bool).is_err());
    }
}
