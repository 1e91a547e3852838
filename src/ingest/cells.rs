//! From what a file holds to the table's Arrow types: which field is which column
//! ([`Layout`], from the header), and text cells typed straight into Arrow builders
//! ([`TextColumns`]), each cell that does not parse reported with the rule it breaks
//! and left NULL, so the row's other cells are still checked.

use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder, StringBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;

use super::validate::{FileRef, Problem};
use crate::model::aliases::{canonical_column, canonical_value};
use crate::model::{Column, Kind, TableDef};
use crate::Result;

/// Where each of the table's columns is in the file's fields.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Per table column, the field holding it (None: absent, so NULL).
    pub positions: Vec<Option<usize>>,
    /// Fields in the header; a data row with more is misaligned.
    pub width: usize,
    /// Fields up to the last named header: a row may lack the empty columns after it
    /// (Excel's trailing empty columns), but no fewer.
    pub needed: usize,
}

/// What reading a header found besides the layout.
#[derive(Debug, Default)]
pub struct HeaderCheck {
    pub problems: Vec<Problem>,
    /// Columns the table does not have, ignored (without `--strict`).
    pub ignored: Vec<String>,
}

impl Layout {
    /// Maps `headers` to `def`'s columns: every required column must be named, none
    /// twice. A header the table lacks is ignored and listed, or a problem when
    /// `strict`; an empty header (Excel's trailing empty columns) is ignored.
    pub fn new(
        def: &TableDef,
        headers: &[String],
        header_line: usize,
        strict: bool,
        file: &FileRef,
    ) -> (Layout, HeaderCheck) {
        let mut check = HeaderCheck::default();
        let mut positions = vec![None; def.columns.len()];
        for (i, header) in headers.iter().enumerate() {
            let name = canonical_column(header);
            match def.column_index(&name) {
                Some(c) if positions[c].is_some() => check.problems.push(file.problem(
                    header_line,
                    header,
                    header,
                    format!("column {name} is named twice in the header"),
                )),
                Some(c) => positions[c] = Some(i),
                None if name.is_empty() => {}
                None if strict => check.problems.push(file.problem(
                    header_line,
                    header,
                    header,
                    format!(
                        "unknown column for table {}; its columns are {}",
                        def.name,
                        column_names(def)
                    ),
                )),
                None => check.ignored.push(header.trim().to_string()),
            }
        }
        for (c, column) in def.columns.iter().enumerate() {
            if positions[c].is_none() && column.required {
                check.problems.push(file.problem(
                    header_line,
                    column.name,
                    "",
                    "required column is missing from the header",
                ));
            }
        }
        let needed = headers
            .iter()
            .rposition(|h| !h.trim().is_empty())
            .map_or(0, |i| i + 1);
        let layout = Layout {
            positions,
            width: headers.len(),
            needed,
        };
        (layout, check)
    }

    /// How many of `headers` name a column of `def`: how a header row is told from a
    /// title row above it, and one delimiter from another.
    pub fn known_columns(def: &TableDef, headers: &[String]) -> usize {
        let mut seen = vec![false; def.columns.len()];
        for header in headers {
            if let Some(c) = def.column_index(&canonical_column(header)) {
                seen[c] = true;
            }
        }
        seen.iter().filter(|s| **s).count()
    }
}

pub fn column_names(def: &TableDef) -> String {
    def.columns
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Typed rows as the rules see them: a batch in the table's schema and the row
/// number each row came from.
#[derive(Debug)]
pub struct Chunk {
    pub batch: RecordBatch,
    pub lines: Vec<usize>,
}

/// Builders for one chunk of text rows.
pub struct TextColumns<'a> {
    def: &'static TableDef,
    layout: &'a Layout,
    file: &'a FileRef,
    builders: Vec<Builder>,
    lines: Vec<usize>,
}

enum Builder {
    Text(StringBuilder),
    Int(Int32Builder),
    Dec(Decimal128Builder, Kind),
    Bool(BooleanBuilder),
    Date(Date32Builder),
}

impl<'a> TextColumns<'a> {
    pub fn new(def: &'static TableDef, layout: &'a Layout, file: &'a FileRef, rows: usize) -> Self {
        let builders = def.columns.iter().map(|c| Builder::new(c, rows)).collect();
        TextColumns {
            def,
            layout,
            file,
            builders,
            lines: Vec::with_capacity(rows),
        }
    }

    /// Types one row of `cells` found on `line`; `cell(i)` is field i. A row of the
    /// wrong width is reported whole and left out; a cell that does not parse is
    /// reported and NULL.
    pub fn push<'c>(
        &mut self,
        line: usize,
        width: usize,
        cell: impl Fn(usize) -> &'c str,
        problems: &mut Vec<Problem>,
    ) {
        if width > self.layout.width || width < self.layout.needed {
            let row: Vec<&str> = (0..width).map(&cell).collect();
            problems.push(self.file.problem(
                line,
                "",
                row.join(","),
                format!(
                    "row has {width} fields but the header has {} (a truncated or misaligned row)",
                    self.layout.width
                ),
            ));
            return;
        }
        self.lines.push(line);
        for ((column, position), builder) in self
            .def
            .columns
            .iter()
            .zip(&self.layout.positions)
            .zip(&mut self.builders)
        {
            let text = position.filter(|p| *p < width).map(&cell).unwrap_or("");
            builder.push_cell(column, text, line, self.file, problems);
        }
    }

    pub fn finish(self) -> Result<Chunk> {
        let columns = self
            .builders
            .into_iter()
            .map(Builder::finish)
            .collect::<Result<Vec<_>>>()?;
        Ok(Chunk {
            batch: RecordBatch::try_new(self.def.loose_schema(), columns)?,
            lines: self.lines,
        })
    }
}

/// One column typed from text cells, `lines[i]` being cell i's row.
pub fn type_column<'c>(
    column: &Column,
    cells: impl Iterator<Item = &'c str>,
    lines: &[usize],
    file: &FileRef,
    problems: &mut Vec<Problem>,
) -> Result<ArrayRef> {
    let mut builder = Builder::new(column, lines.len());
    for (text, line) in cells.zip(lines) {
        builder.push_cell(column, text, *line, file, problems);
    }
    builder.finish()
}

impl Builder {
    fn new(column: &Column, rows: usize) -> Self {
        match column.kind {
            Kind::Text => Builder::Text(StringBuilder::with_capacity(rows, rows * 8)),
            Kind::Int => Builder::Int(Int32Builder::with_capacity(rows)),
            Kind::Money | Kind::Score | Kind::Measure => {
                Builder::Dec(Decimal128Builder::with_capacity(rows), column.kind)
            }
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Date => Builder::Date(Date32Builder::with_capacity(rows)),
        }
    }

    /// Appends the cell `text` of `column` on `line`: trimmed, its Chinese word
    /// mapped to the model's value, empty as NULL (a problem when required), and a
    /// text that does not parse as NULL with the rule it breaks.
    fn push_cell(
        &mut self,
        column: &Column,
        text: &str,
        line: usize,
        file: &FileRef,
        problems: &mut Vec<Problem>,
    ) {
        let mut text = text.trim();
        if column.allowed.is_some() {
            text = canonical_value(column.name, text);
        }
        if text.is_empty() {
            self.append_null();
            if column.required {
                problems.push(file.problem(line, column.name, "", "a value is required"));
            }
            return;
        }
        if let Err(rule) = self.append_text(text) {
            self.append_null();
            problems.push(file.problem(line, column.name, text, rule));
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Text(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Dec(b, _) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
        }
    }

    /// Appends the value `text` (not empty) spells, or the rule it breaks.
    fn append_text(&mut self, text: &str) -> std::result::Result<(), String> {
        match self {
            Builder::Text(b) => b.append_value(text),
            Builder::Int(b) => b.append_value(parse_int(text)?),
            Builder::Dec(b, kind) => b.append_value(parse_decimal(text, *kind)?),
            Builder::Bool(b) => b.append_value(parse_bool(text)?),
            Builder::Date(b) => b.append_value(parse_date(text)?),
        }
        Ok(())
    }

    fn finish(self) -> Result<ArrayRef> {
        Ok(match self {
            Builder::Text(mut b) => Arc::new(b.finish()),
            Builder::Int(mut b) => Arc::new(b.finish()),
            Builder::Dec(mut b, kind) => {
                let (p, s) = kind.precision_scale();
                Arc::new(b.finish().with_precision_and_scale(p, s)?)
            }
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
        })
    }
}

pub fn parse_int(text: &str) -> std::result::Result<i32, String> {
    text.parse::<i32>()
        .map_err(|_| "must be a whole number".to_string())
}

pub fn parse_bool(text: &str) -> std::result::Result<bool, String> {
    match text.to_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "是" | "有" => Ok(true),
        "false" | "f" | "no" | "n" | "0" | "否" | "无" => Ok(false),
        _ => Err("must be true or false (also 1/0, yes/no, 是/否)".to_string()),
    }
}

/// A decimal exactly, in units of the kind's scale (hundredths for money and
/// scores, ten-thousandths for measures): at most that many decimals, within the
/// column's precision. Plain `[-]digits[.dd]` is read without allocating; anything
/// else (thousands separators, exponents, trailing zeros) goes through `rust_decimal`.
pub fn parse_decimal(text: &str, kind: Kind) -> std::result::Result<i128, String> {
    let limit = kind.decimal_limit().unwrap_or(i128::MAX);
    let scale = kind.precision_scale().1.max(0) as u32;
    let what = match kind {
        Kind::Money => "an amount in 万元",
        Kind::Measure => "a value",
        _ => "a score",
    };
    let units = match plain_units(text.as_bytes(), scale) {
        Some(v) => v,
        None => {
            // Spreadsheets group thousands with commas: 24,053.22.
            let cleaned = text.replace(',', "");
            let mut value =
                Decimal::from_str(&cleaned).map_err(|_| format!("must be {what}, a number"))?;
            value = value.normalize();
            if value.scale() > scale {
                return Err(format!("{what} has at most {} decimals", words(scale)));
            }
            value.rescale(scale);
            value.mantissa()
        }
    };
    if units.abs() > limit {
        return Err(format!("{what} is too large for the column"));
    }
    Ok(units)
}

fn words(n: u32) -> String {
    match n {
        2 => "two".to_string(),
        4 => "four".to_string(),
        n => n.to_string(),
    }
}

/// `[-+]digits[.d…]` with at most `scale` decimals, in units of the scale; None for
/// any other spelling.
fn plain_units(bytes: &[u8], scale: u32) -> Option<i128> {
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    let mut decimals: Option<u32> = None;
    let mut any_digit = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                value = value * 10 + i64::from(b - b'0');
                any_digit = true;
                if let Some(d) = decimals.as_mut() {
                    *d += 1;
                    if *d > scale {
                        return None;
                    }
                }
            }
            b'.' if decimals.is_none() => decimals = Some(0),
            _ => return None,
        }
    }
    if !any_digit {
        return None;
    }
    let scaled = i128::from(value) * 10i128.pow(scale - decimals.unwrap_or(0));
    Some(if negative { -scaled } else { scaled })
}

/// A date as days since 1970-01-01: `2024-03-31`, `2024/3/31`, `2024.03.31`,
/// `20240331` or `2024年3月31日`; a time of day after it (spreadsheets write dates as
/// midnight datetimes) is ignored.
pub fn parse_date(text: &str) -> std::result::Result<i32, String> {
    let wrong = || {
        "must be a date such as 2024-03-31 (also 2024/3/31, 20240331, 2024年3月31日)".to_string()
    };
    let day = text
        .split([' ', 'T'])
        .next()
        .unwrap_or(text)
        .trim_end_matches('日');
    let parts: Vec<&str> = if day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()) {
        vec![&day[0..4], &day[4..6], &day[6..8]]
    } else {
        day.split(['-', '/', '.', '年', '月']).collect()
    };
    let [y, m, d] = parts.as_slice() else {
        return Err(wrong());
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return Err(wrong());
    };
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d)
        .ok_or_else(|| format!("{text} is not a day of the calendar"))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch");
    Ok((date - epoch).num_days() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_two_places_exactly() {
        assert_eq!(parse_decimal("24,053.22", Kind::Money), Ok(2_405_322));
        assert_eq!(parse_decimal("12.5", Kind::Score), Ok(1250));
        assert_eq!(parse_decimal("-1", Kind::Score), Ok(-100));
        assert_eq!(parse_decimal(".5", Kind::Score), Ok(50));
        assert_eq!(parse_decimal("7.000", Kind::Score), Ok(700));
        assert!(parse_decimal("1.234", Kind::Money)
            .unwrap_err()
            .contains("two decimals"));
        assert!(parse_decimal("abc", Kind::Score)
            .unwrap_err()
            .contains("number"));
        assert!(parse_decimal(".", Kind::Score)
            .unwrap_err()
            .contains("number"));
        assert!(parse_decimal("100000", Kind::Score)
            .unwrap_err()
            .contains("too large"));
        assert!(parse_decimal("99999999999999999999", Kind::Money)
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn measures_keep_four_places_and_may_be_negative() {
        assert_eq!(parse_decimal("98.5", Kind::Measure), Ok(985_000));
        assert_eq!(parse_decimal("-0.1234", Kind::Measure), Ok(-1234));
        assert_eq!(parse_decimal("1,000", Kind::Measure), Ok(10_000_000));
        assert!(parse_decimal("0.12345", Kind::Measure)
            .unwrap_err()
            .contains("four decimals"));
    }

    #[test]
    fn dates_in_the_spellings_spreadsheets_use() {
        let day = parse_date("2024-03-31").unwrap();
        assert_eq!(day, 19_813);
        for text in [
            "2024/3/31",
            "2024.03.31",
            "20240331",
            "2024年3月31日",
            "2024-03-31 00:00:00",
        ] {
            assert_eq!(parse_date(text), Ok(day), "{text}");
        }
        assert!(parse_date("2024-02-30").unwrap_err().contains("calendar"));
        assert!(parse_date("March").unwrap_err().contains("2024-03-31"));
    }

    #[test]
    fn booleans_in_english_and_chinese() {
        assert_eq!(parse_bool("是"), Ok(true));
        assert_eq!(parse_bool("FALSE"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }
}
