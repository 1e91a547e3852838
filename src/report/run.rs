//! Running a report: resolve its parameters, run each section's SQL on one pinned
//! engine (so every section reads the same table versions), and note which tables
//! each section read at which version, for the stamp every output carries.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

use super::cells::Table;
use super::spec::{substitute, Chart, Param, Report, Value};
use crate::storage::AsOf;
use crate::{Engine, Error, Result};

/// A report's results, ready to render in every format.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub params: BTreeMap<String, Value>,
    pub generated_at: DateTime<Utc>,
    /// The version of every warehouse table the run read from.
    pub versions: BTreeMap<String, u64>,
    pub sections: Vec<SectionOutcome>,
    /// What the reader should know about the data: a newer year passed over as
    /// incomplete, sections with no rows.
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub struct SectionOutcome {
    pub title: String,
    pub description: Option<String>,
    /// The SQL as run, parameters substituted.
    pub sql: String,
    /// The warehouse tables the SQL read (through table functions too).
    pub tables: Vec<String>,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub table: Table,
    pub chart: Option<Chart>,
    /// Whether HTML and Markdown show the table (Excel and CSV always hold it).
    pub show_table: bool,
}

impl Outcome {
    /// The pin that reproduces this run: `kpidb report run … --as-of-version <pin>`.
    pub fn pin(&self) -> String {
        AsOf::Versions(self.versions.clone()).to_string()
    }

    /// `kpidb report run` with the parameters and pin of this run.
    pub fn rerun_command(&self) -> String {
        let mut command = format!("kpidb report run {}", self.report.name);
        for (name, value) in &self.params {
            command.push_str(&format!(" --param {name}={value}"));
        }
        command.push_str(&format!(" --as-of-version {}", self.pin()));
        command
    }

    /// The parameters as a reader of the circular wants them: each headed as its
    /// column would be (`year` → 年度, from reports.toml's `[columns]` or the data
    /// model's Chinese headers), a grade scheme with its grades.
    pub fn param_rows(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .map(|(name, value)| {
                let label = self
                    .report
                    .style(name)
                    .label
                    .unwrap_or_else(|| name.clone());
                let scheme = match value {
                    Value::Text(text) if name == "scheme" => {
                        crate::functions::GradeScheme::parse(text)
                    }
                    _ => None,
                };
                let value = match scheme {
                    Some(scheme) => format!("{value}（{}）", scheme.labels().join("/")),
                    None => value.to_string(),
                };
                (label, value)
            })
            .collect()
    }

    /// The generation time in the report's time zone.
    pub fn generated_local(&self) -> String {
        self.generated_at
            .with_timezone(&self.report.timezone)
            .format(&format!(
                "%Y-%m-%d %H:%M:%S (UTC%:z, {})",
                self.report.timezone.name()
            ))
            .to_string()
    }

    /// File names: the report name and its year, `annual_ranking-2023`.
    pub fn file_stem(&self) -> String {
        match self.params.get("year") {
            Some(year) => {
                let year: String = year
                    .to_string()
                    .chars()
                    .map(|c| {
                        if c.is_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("{}-{year}", self.report.name)
            }
            None => self.report.name.clone(),
        }
    }
}

/// Runs every section of `report` on `engine`, with `overrides` over its default
/// parameters. A year with no data in any table, or a run whose sections are all
/// empty, is refused (naming the years there are) unless `allow_empty`.
pub async fn execute(
    engine: &Engine,
    report: &Report,
    overrides: BTreeMap<String, Value>,
    allow_empty: bool,
) -> Result<Outcome> {
    let generated_at = Utc::now();
    let mut versions = BTreeMap::new();
    for (table, version) in engine.versions() {
        if let Some(version) = version {
            versions.insert(table, version);
        }
    }
    let (params, mut notes) = resolve(engine, report, overrides).await?;
    let refuse = |what: String, years: &std::collections::BTreeSet<i32>| {
        Error::usage(format!(
            "report '{}': {what}; the years with data are {} (--allow-empty writes it anyway)",
            report.name,
            crate::years::describe(years)
        ))
    };
    if let Some(Value::Int(year)) = params.get("year") {
        let years = crate::years::with_data(engine).await?;
        if !years.iter().any(|&y| i64::from(y) == *year) && !allow_empty {
            return Err(refuse(
                format!("no table holds rows for year={year}"),
                &years,
            ));
        }
    }
    let mut sections = Vec::new();
    for (i, section) in report.sections.iter().enumerate() {
        let at = |e: Error| {
            Error::usage(format!(
                "report '{}', section {} ('{}'): {e}",
                report.name,
                i + 1,
                section.title
            ))
        };
        let sql = substitute(&section.sql, &params);
        let frame = engine.sql(&sql).await.map_err(at)?;
        let tables = tables_read(&frame).map_err(at)?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.map_err(|e| at(e.into()))?;
        let table = Table::from_batches(&schema, &batches, report).map_err(at)?;
        if let Some(chart) = &section.chart {
            for column in chart.columns() {
                if table.column(column).is_none() {
                    return Err(at(Error::usage(format!(
                        "the chart reads column '{column}', which the query does not return (it returns {})",
                        table.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                    ))));
                }
            }
        }
        sections.push(SectionOutcome {
            title: section.title.clone(),
            description: section.description.clone(),
            sql,
            tables,
            schema,
            batches,
            table,
            chart: section.chart.clone(),
            show_table: section.show_table,
        });
    }
    let empty: Vec<&str> = sections
        .iter()
        .filter(|s| s.table.rows.is_empty())
        .map(|s| s.title.as_str())
        .collect();
    if !sections.is_empty() && empty.len() == sections.len() {
        if !allow_empty {
            let asked = params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            let years = crate::years::with_data(engine).await?;
            return Err(refuse(
                format!("every section is empty for {asked}"),
                &years,
            ));
        }
        notes.push("every section is empty".to_string());
    } else {
        for title in empty {
            notes.push(format!("section '{title}' has no rows"));
        }
    }
    Ok(Outcome {
        report: report.clone(),
        params,
        generated_at,
        versions,
        sections,
        notes,
    })
}

/// Each parameter's value: the override, else the default, with `latest` looked up
/// (the newest complete year), and notes on what `latest` passed over.
async fn resolve(
    engine: &Engine,
    report: &Report,
    mut overrides: BTreeMap<String, Value>,
) -> Result<(BTreeMap<String, Value>, Vec<String>)> {
    let mut values = BTreeMap::new();
    let mut notes = Vec::new();
    for (name, param) in &report.params {
        let value = match (overrides.remove(name), param) {
            (Some(value), _) => value,
            (None, Param::Int(i)) => Value::Int(*i),
            (None, Param::Text(s)) => Value::Text(s.clone()),
            (None, Param::LatestYear) => {
                let (year, passed_over) =
                    crate::years::latest_complete(engine)
                        .await?
                        .ok_or_else(|| {
                            Error::usage(format!(
                            "report '{}': dept_scores holds no rows, so there is no latest year; \
                             give --param year=YYYY",
                            report.name
                        ))
                        })?;
                notes.extend(passed_over);
                Value::Int(i64::from(year))
            }
        };
        values.insert(name.clone(), value);
    }
    Ok((values, notes))
}

/// The warehouse tables a query reads, table functions and subqueries included; a
/// rollup counts as the tables it summarises (at the versions the run records).
fn tables_read(frame: &datafusion::dataframe::DataFrame) -> Result<Vec<String>> {
    let plan = frame.clone().into_optimized_plan()?;
    let mut tables = BTreeSet::new();
    crate::plans::Kept::unwrap(&plan).apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.table();
            if scan.table_name.catalog() == Some(crate::rollup::CATALOG) {
                let rollup = crate::rollup::ROLLUPS.iter().find(|r| r.name == name);
                for source in rollup.map(|r| r.sources).unwrap_or_default() {
                    tables.insert(source.to_string());
                }
            } else if crate::model::TABLES.iter().any(|t| t.name == name) {
                tables.insert(name.to_string());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(tables.into_iter().collect())
}
