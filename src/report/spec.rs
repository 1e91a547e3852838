//! `reports.toml`: named reports, each a list of titled SQL sections with parameters,
//! output formats, an output directory and an optional cron schedule. Everything is
//! checked when the file loads (unknown keys, missing query files, unknown
//! placeholders, bad cron expressions and time zones), and each error names the
//! report and the key, so a typo is found before the first scheduled run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::{Error, Result};

/// The time zone schedules and generation times are read in, unless a report names one.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";
/// Runs kept per report in its output directory, unless a report says `keep`.
pub const DEFAULT_KEEP: usize = 20;

/// A loaded and checked `reports.toml`.
#[derive(Debug, Clone)]
pub struct Reports {
    /// The file the reports came from.
    pub path: PathBuf,
    /// Reports by name, in name order.
    pub reports: BTreeMap<String, Report>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub title: String,
    pub description: Option<String>,
    pub params: BTreeMap<String, Param>,
    pub formats: Vec<Format>,
    /// Where runs are archived, one directory per run under `<output_dir>/<name>/`.
    pub output_dir: PathBuf,
    pub schedule: Option<Schedule>,
    pub timezone: chrono_tz::Tz,
    pub keep: usize,
    /// Whether section CSVs start with a UTF-8 byte-order mark, which Excel needs to
    /// show Chinese in a double-clicked CSV (default true).
    pub csv_bom: bool,
    pub sections: Vec<Section>,
    /// Header labels and display formats of result columns (file-wide, then per report).
    pub columns: BTreeMap<String, ColumnStyle>,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub description: Option<String>,
    /// The SQL with `${param}` placeholders, as written.
    pub sql: String,
    /// The query file, when the SQL came from one.
    pub file: Option<PathBuf>,
    pub chart: Option<Chart>,
    /// Whether HTML and Markdown show the table under the chart (Excel and CSV always hold it).
    pub show_table: bool,
}

/// A parameter's default value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// `"latest"` for `year`: the latest year with department scores.
    LatestYear,
    Int(i64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Xlsx,
    Html,
    Md,
    Csv,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Xlsx, Format::Html, Format::Md, Format::Csv];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Html => "html",
            Format::Md => "md",
            Format::Csv => "csv",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.extension() == text || (text == "markdown" && *f == Format::Md))
    }
}

/// How a result column is shown in Excel, HTML and Markdown (CSV keeps raw values).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnStyle {
    /// The header shown instead of the column name.
    pub label: Option<String>,
    pub format: Option<CellFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellFormat {
    /// A fraction shown as a percentage with two decimals (0.3808 → 38.08%).
    Percent,
    /// 万元 with a thousands separator and two decimals.
    Money,
    /// Two decimals.
    Decimal,
    Integer,
    Text,
}

/// A chart drawn above a section's table in HTML.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Chart {
    /// Horizontal bars, one per row, in row order; `color` names a category column.
    Bar {
        label: String,
        value: String,
        color: Option<String>,
    },
    /// One line per `series` value over `x`.
    Line {
        x: String,
        y: String,
        series: String,
    },
    /// Rows `y` × columns `x`, each cell shaded by `value` (low is dark).
    Heatmap { x: String, y: String, value: String },
}

impl Chart {
    /// The columns the chart reads, to check against the query's result.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Chart::Bar {
                label,
                value,
                color,
            } => [Some(label), Some(value), color.as_ref()]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect(),
            Chart::Line { x, y, series } => vec![x, y, series],
            Chart::Heatmap { x, y, value } => vec![x, y, value],
        }
    }
}

/// A cron expression (5 fields, or 6 with seconds first) in a report's time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub expression: String,
    cron: croner::Cron,
}

impl Schedule {
    pub fn parse(expression: &str) -> std::result::Result<Self, String> {
        let cron = croner::Cron::from_str(expression)
            .map_err(|e| format!("'{expression}' is not a cron expression: {e}"))?;
        Ok(Schedule {
            expression: expression.to_string(),
            cron,
        })
    }

    /// The first run strictly after `after`, in `tz`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::Timelike;
        // Whole seconds: runs are due on the second, not at the caller's nanosecond.
        let after = after.with_nanosecond(0).unwrap_or(after);
        // The search runs on local clock time: in a repeated hour (DST ending) it can
        // answer the first pass of that hour, which is already past. Then search in
        // the offset in force now, and failing that, from an hour later.
        use chrono::Offset;
        let first = self
            .cron
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()?
            .with_timezone(&chrono::Utc);
        if first > after {
            return Some(first);
        }
        let fixed = after.with_timezone(&tz).offset().fix();
        if let Ok(next) = self
            .cron
            .find_next_occurrence(&after.with_timezone(&fixed), false)
        {
            let next = next.with_timezone(&chrono::Utc);
            if next > after && next.with_timezone(&tz).offset().fix() == fixed {
                return Some(next);
            }
        }
        let mut from = after;
        for _ in 0..8 {
            let next = self
                .cron
                .find_next_occurrence(&from.with_timezone(&tz), false)
                .ok()?
                .with_timezone(&chrono::Utc);
            if next > after {
                return Some(next);
            }
            from += chrono::Duration::hours(1);
        }
        None
    }
}

// ---- the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    columns: BTreeMap<String, ColumnStyle>,
    #[serde(default)]
    report: BTreeMap<String, ReportFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportFile {
    title: String,
    description: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    formats: Option<Vec<String>>,
    output_dir: Option<PathBuf>,
    schedule: Option<String>,
    timezone: Option<String>,
    keep: Option<usize>,
    csv_bom: Option<bool>,
    #[serde(default)]
    columns: BTreeMap<String, ColumnStyle>,
    #[serde(default)]
    sections: Vec<SectionFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionFile {
    title: String,
    description: Option<String>,
    /// A query file, relative to reports.toml.
    query: Option<PathBuf>,
    /// Inline SQL.
    sql: Option<String>,
    chart: Option<Chart>,
    #[serde(default = "yes")]
    show_table: bool,
}

fn yes() -> bool {
    true
}

impl Reports {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Checks `text`, read from `path` (query files and output directories are
    /// relative to the file's directory).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |message: String| Error::input(path.display(), message);
        let file: File = toml::from_str(text).map_err(|e| bad(format!("bad reports file: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut reports = BTreeMap::new();
        for (name, report) in file.report {
            let report = check_report(&name, report, &dir, &file.columns)
                .map_err(|m| bad(format!("report '{name}': {m}")))?;
            reports.insert(name, report);
        }
        Ok(Reports {
            path: path.to_path_buf(),
            reports,
        })
    }

    /// Archives every report's runs under `dir` (`<dir>/<report>/<time>/`) instead
    /// of its own `output_dir`.
    pub fn archive_in(mut self, dir: &Path) -> Self {
        for report in self.reports.values_mut() {
            report.output_dir = dir.to_path_buf();
        }
        self
    }

    pub fn get(&self, name: &str) -> Result<&Report> {
        self.reports.get(name).ok_or_else(|| {
            Error::usage(format!(
                "no report '{name}' in {}; the reports are: {}",
                self.path.display(),
                self.reports.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

fn check_report(
    name: &str,
    file: ReportFile,
    dir: &Path,
    shared_columns: &BTreeMap<String, ColumnStyle>,
) -> std::result::Result<Report, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("a report name may use only ASCII letters, digits, '_' and '-' (it names files and URLs)".into());
    }
    let mut params = BTreeMap::new();
    for (key, value) in file.params {
        let param = match value {
            toml::Value::String(s) if s == "latest" && key == "year" => Param::LatestYear,
            toml::Value::String(s) if s == "latest" => {
                return Err(format!(
                    "params.{key}: \"latest\" is understood only for `year` (the latest year with department scores)"
                ))
            }
            toml::Value::String(s) => Param::Text(s),
            toml::Value::Integer(i) => Param::Int(i),
            other => {
                return Err(format!(
                    "params.{key}: expected an integer, text or \"latest\", got {other}"
                ))
            }
        };
        params.insert(key, param);
    }
    let formats = match file.formats {
        None => Format::ALL.to_vec(),
        Some(list) if list.is_empty() => {
            return Err("formats: name at least one of xlsx, html, md, csv".into())
        }
        Some(list) => {
            let mut formats = Vec::new();
            for f in list {
                let format = Format::parse(&f).ok_or_else(|| {
                    format!("formats: unknown format '{f}'; use xlsx, html, md or csv")
                })?;
                if !formats.contains(&format) {
                    formats.push(format);
                }
            }
            formats
        }
    };
    let timezone = match &file.timezone {
        Some(tz) => chrono_tz::Tz::from_str(tz).map_err(|_| {
            format!("timezone: '{tz}' is not an IANA time zone such as Asia/Shanghai")
        })?,
        None => chrono_tz::Tz::from_str(DEFAULT_TIMEZONE).expect("the default zone exists"),
    };
    let schedule = match &file.schedule {
        Some(expression) => {
            Some(Schedule::parse(expression).map_err(|e| format!("schedule: {e}"))?)
        }
        None => None,
    };
    let keep = file.keep.unwrap_or(DEFAULT_KEEP);
    if keep == 0 {
        return Err("keep: must keep at least 1 run".into());
    }
    if file.sections.is_empty() {
        return Err("sections: a report needs at least one [[report.NAME.sections]]".into());
    }
    let mut sections = Vec::new();
    for (i, section) in file.sections.into_iter().enumerate() {
        let at = format!("sections[{i}] ('{}')", section.title);
        let (sql, file) = match (section.query, section.sql) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{at}: give either `query` (a file) or `sql`, not both"
                ))
            }
            (None, None) => return Err(format!("{at}: needs `query` (a file) or `sql`")),
            (None, Some(sql)) => (sql, None),
            (Some(query), None) => {
                let path = dir.join(&query);
                let sql = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{at}.query: cannot read {}: {e}", path.display()))?;
                (sql, Some(path))
            }
        };
        for placeholder in placeholders(&sql).map_err(|e| format!("{at}: {e}"))? {
            if !params.contains_key(&placeholder) {
                return Err(format!(
                    "{at}: the SQL uses ${{{placeholder}}}, which is not in [report.{name}.params]"
                ));
            }
        }
        sections.push(Section {
            title: section.title,
            description: section.description,
            sql,
            file,
            chart: section.chart,
            show_table: section.show_table,
        });
    }
    let mut columns = shared_columns.clone();
    columns.extend(file.columns);
    Ok(Report {
        name: name.to_string(),
        title: file.title,
        description: file.description,
        params,
        formats,
        output_dir: dir.join(file.output_dir.unwrap_or_else(|| PathBuf::from("reports"))),
        schedule,
        timezone,
        keep,
        csv_bom: file.csv_bom.unwrap_or(true),
        sections,
        columns,
    })
}

/// The `${name}` placeholders in `sql`, in order of first use.
pub fn placeholders(sql: &str) -> std::result::Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "a '${' placeholder is not closed by '}'".to_string())?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("'${{{name}}}' is not a parameter name"));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// `sql` with each `${name}` replaced by its value as a SQL literal (text quoted).
/// One pass over `sql`, so a value that itself holds `${…}` is never substituted again.
pub fn substitute(sql: &str, values: &BTreeMap<String, Value>) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find('}')
            .and_then(|end| values.get(&after[..end]).map(|v| (end, v)))
        {
            Some((end, value)) => {
                out.push_str(&value.sql_literal());
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A parameter's value for one run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Text(String),
}

impl Value {
    pub fn sql_literal(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

impl Report {
    /// Checks `--param name=value` overrides against the declared parameters: an
    /// unknown name, or text where a number is declared, is an error.
    pub fn overrides(&self, given: &[(String, String)]) -> Result<BTreeMap<String, Value>> {
        let mut values = BTreeMap::new();
        for (key, text) in given {
            let Some(param) = self.params.get(key) else {
                return Err(Error::usage(format!(
                    "report '{}' has no parameter '{key}'; its parameters are: {}",
                    self.name,
                    if self.params.is_empty() {
                        "(none)".to_string()
                    } else {
                        self.params.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                )));
            };
            let value = match param {
                Param::Text(_) => Value::Text(text.clone()),
                Param::Int(_) | Param::LatestYear => {
                    Value::Int(text.trim().parse().map_err(|_| {
                        Error::usage(format!(
                            "--param {key}={text}: report '{}' expects an integer for {key}",
                            self.name
                        ))
                    })?)
                }
            };
            values.insert(key.clone(), value);
        }
        Ok(values)
    }

    /// `0 8 * * 1 (Asia/Shanghai), next 2026-11-30T08:00:00+08:00`, for listings; None when unscheduled.
    pub fn schedule_summary(&self) -> Option<String> {
        let schedule = self.schedule.as_ref()?;
        let next = schedule
            .next_after(chrono::Utc::now(), self.timezone)
            .map(|t| t.with_timezone(&self.timezone).to_rfc3339())
            .unwrap_or_else(|| "never".into());
        Some(format!(
            "{} ({}), next {next}",
            schedule.expression,
            self.timezone.name()
        ))
    }

    /// The label and format of a result column.
    pub fn style(&self, column: &str) -> ColumnStyle {
        let mut style = self.columns.get(column).cloned().unwrap_or_default();
        if style.label.is_none() {
            style.label = crate::model::aliases::HEADER_ALIASES
                .iter()
                .find(|(_, c)| *c == column)
                .map(|(alias, _)| alias.to_string());
        }
        style
    }
}

/// Parses `name=value` as given to `--param`.
pub fn parse_param(text: &str) -> std::result::Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("'{text}' is not NAME=VALUE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Reports> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("q.sql"), "SELECT ${year} AS year").unwrap();
        Reports::parse(text, &dir.path().join("reports.toml"))
    }

    const GOOD: &str = r#"
        [report.r]
        title = "T"
        params = { year = "latest", scheme = "local" }
        schedule = "0 8 * * 1"
        [[report.r.sections]]
        title = "s"
        query = "q.sql"
        [[report.r.sections]]
        title = "inline"
        sql = "SELECT perf_grade(90, ${scheme})"
        chart = { kind = "bar", label = "a", value = "b" }
    "#;

    #[test]
    fn a_good_file_loads() {
        let reports = load(GOOD).unwrap();
        let r = reports.get("r").unwrap();
        assert_eq!(r.params["year"], Param::LatestYear);
        assert_eq!(r.formats, Format::ALL.to_vec());
        assert_eq!(r.timezone.name(), "Asia/Shanghai");
        assert_eq!(r.sections.len(), 2);
        assert!(r.sections[0].file.is_some());
        let values = BTreeMap::from([
            ("year".to_string(), Value::Int(2023)),
            ("scheme".to_string(), Value::Text("it's".into())),
        ]);
        assert_eq!(
            substitute(&r.sections[1].sql, &values),
            "SELECT perf_grade(90, 'it''s')"
        );
    }

    #[test]
    fn errors_name_the_report_and_key() {
        let cases = [
            (
                GOOD.replace("title = \"T\"", "title = \"T\"\ncolour = 1"),
                "unknown field `colour`",
            ),
            (
                GOOD.replace("q.sql", "missing.sql"),
                "report 'r': sections[0] ('s').query: cannot read",
            ),
            (
                GOOD.replace("0 8 * * 1", "0 25 * * 1"),
                "report 'r': schedule: '0 25 * * 1' is not a cron expression",
            ),
            (
                GOOD.replace("schedule =", "timezone = \"Mars/Base\"\nschedule ="),
                "report 'r': timezone: 'Mars/Base'",
            ),
            (
                GOOD.replace("${scheme}", "${grade}"),
                "uses ${grade}, which is not in [report.r.params]",
            ),
            (
                GOOD.replace("kind = \"bar\"", "kind = \"pie\""),
                "unknown variant `pie`",
            ),
            (
                GOOD.replace("[report.r]", "[report.\"bad name\"]")
                    .replace("report.r.", "report.\"bad name\"."),
                "may use only ASCII",
            ),
        ];
        for (text, expected) in cases {
            let message = load(&text).unwrap_err().to_string();
            assert!(message.contains(expected), "{expected:?} not in {message}");
        }
    }

    #[test]
    fn substitution_is_one_pass() {
        let values = BTreeMap::from([
            ("a".to_string(), Value::Text("${b}".into())),
            ("b".to_string(), Value::Text("x' OR '1'='1".into())),
        ]);
        assert_eq!(
            substitute("SELECT ${a}, ${b}", &values),
            "SELECT '${b}', 'x'' OR ''1''=''1'"
        );
    }

    #[test]
    fn the_repeated_hour_of_dst_never_answers_the_past() {
        let schedule = Schedule::parse("*/15 * * * *").unwrap();
        let tz = chrono_tz::Tz::from_str("America/New_York").unwrap();
        // 2026-11-01 01:05 EST, the second 01:05 of that night (06:05 UTC).
        let mut at: chrono::DateTime<chrono::Utc> = "2026-11-01T06:05:00Z".parse().unwrap();
        for _ in 0..12 {
            let next = schedule.next_after(at, tz).unwrap();
            assert!(
                next > at && next - at <= chrono::Duration::minutes(15),
                "{at} -> {next}"
            );
            at = next;
        }
    }

    #[test]
    fn overrides_are_checked() {
        let reports = load(GOOD).unwrap();
        let r = reports.get("r").unwrap();
        let ok = r.overrides(&[("year".into(), "2022".into())]).unwrap();
        assert_eq!(ok["year"], Value::Int(2022));
        let e = r.overrides(&[("year".into(), "last".into())]).unwrap_err();
        assert!(e.to_string().contains("expects an integer for year"), "{e}");
        let e = r.overrides(&[("yaer".into(), "2022".into())]).unwrap_err();
        assert!(e.to_string().contains("no parameter 'yaer'"), "{e}");
    }

    #[test]
    fn schedules_follow_the_time_zone() {
        let schedule = Schedule::parse("0 8 * * *").unwrap();
        let tz = chrono_tz::Tz::from_str("Asia/Shanghai").unwrap();
        let after = "2026-11-29T00:00:00Z".parse().unwrap();
        // 08:00 in Shanghai is 00:00 UTC: strictly after midnight UTC means the next day.
        assert_eq!(
            schedule.next_after(after, tz).unwrap().to_rfc3339(),
            "2026-11-30T00:00:00+00:00"
        );
        assert!(
            Schedule::parse("*/5 * * * * *").is_ok(),
            "seconds are allowed"
        );
    }
}
