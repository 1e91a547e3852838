//! Rollups: per-year summaries of dept_scores that the table functions read instead
//! of the raw scores. A national warehouse holds a hundred million scores but only a
//! few hundred thousand department totals, so `dept_ranking`, `dept_trend` and
//! `indicator_callouts` answer from thousands of rows instead of millions.
//!
//! Each rollup is a Delta table under `<warehouse>/_rollups/<name>`, partitioned by
//! year. Every commit to it records the version of each source table it summarises
//! (`kpidb.sources = "dept_scores=7,indicators=0"`). A session uses a rollup only at a
//! version whose recorded sources are exactly the versions the session reads
//! ([`Rollups::fresh`]), so a rollup behind its sources, or a session pinned in the
//! past with no rollup of that past, reads the raw tables instead.
//!
//! Ingest keeps them current ([`after_commit`]): the years a commit touched are
//! recomputed from the new version, or everything when the rollup was not exactly one
//! commit behind. `kpidb rollups --rebuild` rebuilds them from scratch.

mod fresh;
mod ranked;
mod rewrite;

pub use fresh::Rollups;
pub use rewrite::ReadRollups;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{col, lit};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::DeltaTable;
use url::Url;

use crate::storage::{AsOf, Warehouse};
use crate::{Engine, Result};

/// The catalog a table function names a rollup in: `kpidb_rollup.public.<name>`.
pub const CATALOG: &str = "kpidb_rollup";

/// One rollup: its name, the tables it summarises, and the query that builds it
/// (`{where}` is replaced by a year filter on dept_scores `s`, or nothing).
pub struct RollupDef {
    pub name: &'static str,
    pub sources: &'static [&'static str],
    pub description: &'static str,
    /// Which columns this kpidb writes, recorded with every commit: a rollup written
    /// with another layout is never read, and the next ingest rebuilds it whole.
    pub layout: u32,
    sql: &'static str,
}

/// Every rollup.
pub const ROLLUPS: &[RollupDef] = &[
    RollupDef {
        name: "dept_totals",
        sources: &["dept_scores"],
        description: "per year and department: total score, indicators scored, total \
                      max_score, lowest and highest score; with the indicators scored in the year",
        layout: 2,
        sql: "WITH t AS (
                SELECT s.year, s.dept_code, sum(s.score) AS total_score,
                       count(*) AS indicators_scored, sum(s.max_score) AS total_max_score,
                       min(s.score) AS lowest_score, max(s.score) AS highest_score
                FROM dept_scores s {where} GROUP BY s.year, s.dept_code),
              y AS (
                SELECT s.year, count(DISTINCT s.indicator_code) AS year_indicators
                FROM dept_scores s {where} GROUP BY s.year)
              SELECT t.year, t.dept_code, t.total_score, t.indicators_scored, y.year_indicators,
                     t.total_max_score, t.lowest_score, t.highest_score
              FROM t JOIN y ON y.year = t.year",
    },
    RollupDef {
        name: "level2_totals",
        sources: &["dept_scores", "indicators"],
        description: "per year, department and level-2 indicator: score and max_score, the \
                      score rate and its rank from the bottom among the year's departments",
        layout: 2,
        // Pre-ranked (a year is always rebuilt whole) and stored lowest rank first, so
        // the bottom n of a year are the first rows of its file, and the pages' rank
        // statistics skip the rest.
        sql: "WITH t AS (
                SELECT s.year, s.dept_code, i.level1, i.level2,
                       sum(s.score) AS score, sum(s.max_score) AS max_score
                FROM dept_scores s
                JOIN indicators i ON i.indicator_code = s.indicator_code AND i.framework = 'dept'
                {where}
                GROUP BY s.year, s.dept_code, i.level1, i.level2)
              SELECT year, dept_code, level1, level2, score, max_score,
                     score_rate(score, max_score) AS score_rate,
                     CAST(RANK() OVER (PARTITION BY year, level1, level2
                                       ORDER BY score_rate(score, max_score) ASC) AS BIGINT)
                       AS rank_from_bottom
              FROM t
              ORDER BY year, rank_from_bottom, level1, level2, dept_code",
    },
];

/// Source table → version, as a rollup commit records it.
pub type Sources = BTreeMap<String, u64>;

fn format_sources(sources: &Sources) -> String {
    sources
        .iter()
        .map(|(t, v)| format!("{t}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_sources(text: &str) -> Option<Sources> {
    text.split(',')
        .map(|part| {
            let (t, v) = part.split_once('=')?;
            Some((t.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The rollup's place in the warehouse, beside the tables.
fn rel(def: &RollupDef) -> String {
    format!("_rollups/{}", def.name)
}

fn url(warehouse: &Warehouse, def: &RollupDef) -> Result<Url> {
    warehouse.location().url(&rel(def))
}

async fn exists(warehouse: &Warehouse, def: &RollupDef) -> Result<bool> {
    warehouse.location().holds_table(&rel(def)).await
}

/// The rollup at its latest version.
async fn open(warehouse: &Warehouse, def: &RollupDef) -> Result<DeltaTable> {
    warehouse
        .location()
        .open_delta(url(warehouse, def)?, None)
        .await
}

/// The newest `limit` commits of a rollup (all when `None`), newest first: (version,
/// the sources it summarises if written in `def`'s layout). A commit of another
/// layout (before the layout was recorded: 1) summarises nothing this kpidb reads.
async fn commits(
    def: &RollupDef,
    table: &DeltaTable,
    limit: Option<usize>,
) -> Result<Vec<(u64, Option<Sources>)>> {
    Ok(crate::storage::commit_infos(table, limit)
        .await?
        .into_iter()
        .map(|(version, info)| {
            let layout = info
                .info
                .get("kpidb.layout")
                .and_then(|v| v.as_u64())
                .unwrap_or(1);
            let sources = info
                .info
                .get("kpidb.sources")
                .and_then(|v| v.as_str())
                .and_then(parse_sources)
                .filter(|_| layout == u64::from(def.layout));
            (version, sources)
        })
        .collect())
}

/// Builds every rollup from the latest data.
pub async fn rebuild_all(warehouse: &Warehouse) -> Result<()> {
    warehouse.writable()?;
    for def in ROLLUPS {
        build(warehouse, def, None, AsOf::Latest).await?;
    }
    Ok(())
}

/// Keeps the rollups of `table` current after a commit made it `version`, touching
/// `years`. A rollup exactly one commit behind recomputes only those years; any other
/// recomputes everything.
pub async fn after_commit(
    warehouse: &Warehouse,
    table: &str,
    version: u64,
    years: &[i32],
) -> Result<()> {
    let current = warehouse.versions().await?;
    for def in ROLLUPS.iter().filter(|d| d.sources.contains(&table)) {
        let recorded = match exists(warehouse, def).await? {
            true => {
                let rollup = open(warehouse, def).await?;
                commits(def, &rollup, Some(1))
                    .await?
                    .into_iter()
                    .next()
                    .and_then(|c| c.1)
            }
            false => None,
        };
        let one_behind = recorded.as_ref().is_some_and(|recorded| {
            // Only a table split by year (dept_scores) is recomputed by year; a change
            // to another source (indicators) is rare and may touch every year.
            crate::model::table(table).is_some_and(|t| t.partitioned())
                && version > 0
                && recorded.get(table) == Some(&(version - 1))
        });
        let others_same = recorded.as_ref().is_some_and(|recorded| {
            def.sources
                .iter()
                .filter(|s| **s != table)
                .all(|s| recorded.get(*s) == current.get(*s))
        });
        if one_behind && others_same {
            // Pinned at this commit: a later commit's years are its own ingest's work.
            let pin = AsOf::Versions([(table.to_string(), version)].into_iter().collect());
            build(warehouse, def, Some(years), pin).await?;
        } else {
            build(warehouse, def, None, AsOf::Latest).await?;
        }
    }
    Ok(())
}

/// Scores summarised by one rollup query and commit, at most (a year may be more).
const GROUP_ROWS: i64 = 12_000_000;

fn year_list(years: &[i32]) -> String {
    years
        .iter()
        .map(|y| y.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Computes `def` from the data `pin` reads (only `years`, when given) and commits it,
/// recording the source versions the computation read.
async fn build(
    warehouse: &Warehouse,
    def: &RollupDef,
    years: Option<&[i32]>,
    pin: AsOf,
) -> Result<()> {
    let engine = Engine::open_raw(warehouse.clone(), pin).await?;
    let versions = engine.versions();
    let mut sources = Sources::new();
    for source in def.sources {
        match versions.get(*source).copied().flatten() {
            Some(v) => sources.insert(source.to_string(), v),
            None => return Ok(()), // a source that cannot be read has nothing to summarise
        };
    }
    // A few years at a time (about GROUP_ROWS scores each), so memory holds that many
    // scores' groups however many years there are. Every commit but the last records
    // no sources: a reader never takes a rollup half built for one (it reads the raw
    // tables until the last commit).
    let all = years.is_none();
    let filter = match years {
        Some([]) => "WHERE false".to_string(),
        Some(years) => format!("WHERE year IN ({})", year_list(years)),
        None => String::new(),
    };
    let sql =
        format!("SELECT year, count(*) FROM dept_scores {filter} GROUP BY year ORDER BY year");
    let mut counts: Vec<(i32, i64)> = Vec::new();
    for batch in engine.query(&sql).await? {
        let years = cast(batch.column(0), &DataType::Int32)?;
        let years = years
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int32Array>()
            .expect("cast to Int32");
        let rows = cast(batch.column(1), &DataType::Int64)?;
        let rows = rows
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .expect("cast to Int64");
        counts.extend(
            years
                .iter()
                .zip(rows.iter())
                .filter_map(|(y, n)| Some((y?, n?))),
        );
    }
    // Years asked for with no scores left are recomputed too (to nothing).
    for year in years.unwrap_or(&[]) {
        if !counts.iter().any(|(y, _)| y == year) {
            counts.push((*year, 0));
        }
    }
    let mut groups: Vec<Vec<i32>> = Vec::new();
    let mut in_group = i64::MAX;
    for (year, rows) in counts {
        if in_group.saturating_add(rows) > GROUP_ROWS {
            groups.push(Vec::new());
            in_group = 0;
        }
        in_group += rows;
        groups.last_mut().expect("a group").push(year);
    }
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    for (i, group) in groups.iter().enumerate() {
        let filter = match group.as_slice() {
            [] => "WHERE false".to_string(),
            years => format!("WHERE s.year IN ({})", year_list(years)),
        };
        let frame = engine.sql(&def.sql.replace("{where}", &filter)).await?;
        let schema = plain_schema(frame.schema().inner());
        let mut batches = frame
            .collect()
            .await?
            .iter()
            .map(|b| plain_batch(b, &schema))
            .collect::<Result<Vec<_>>>()?;
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(schema.clone()));
        }
        let recorded = match i + 1 == groups.len() {
            true => format_sources(&sources),
            false => String::new(),
        };
        let table = if exists(warehouse, def).await? {
            open(warehouse, def).await?
        } else {
            warehouse.location().prepare(&rel(def))?;
            warehouse.location().delta(url(warehouse, def)?)?
        };
        let properties = CommitProperties::default().with_metadata([
            ("kpidb.sources".to_string(), serde_json::json!(recorded)),
            ("kpidb.mode".to_string(), serde_json::json!("rollup")),
            ("kpidb.layout".to_string(), serde_json::json!(def.layout)),
        ]);
        let mut write = table
            .write(batches)
            .with_table_name(def.name)
            .with_description(def.description)
            .with_partition_columns(["year"])
            .with_save_mode(SaveMode::Overwrite)
            .with_writer_properties(crate::storage::writer_properties())
            .with_commit_properties(properties);
        // A full rebuild's first commit replaces everything, columns too (a rollup of
        // another layout); every other, its years.
        let replaces_all = all && i == 0;
        if replaces_all {
            write = write.with_schema_mode(SchemaMode::Overwrite);
        }
        if !(replaces_all || group.is_empty()) {
            let years = group.iter().map(|y| lit(*y)).collect();
            write = write.with_replace_where(col("year").in_list(years, false));
        }
        write.await?;
    }
    Ok(())
}

/// One line per rollup: its version, what it summarises, and whether that is current.
pub async fn status(warehouse: &Warehouse) -> Result<Vec<String>> {
    let current = warehouse.versions().await?;
    let mut lines = Vec::new();
    for def in ROLLUPS {
        if !exists(warehouse, def).await? {
            lines.push(format!(
                "{:<14} none: the table functions read the raw tables (build it with `kpidb rollups --rebuild`)",
                def.name
            ));
            continue;
        }
        let table = open(warehouse, def).await?;
        let latest = commits(def, &table, Some(1)).await?.into_iter().next();
        let sources = latest
            .as_ref()
            .and_then(|c| c.1.clone())
            .unwrap_or_default();
        let fresh = def
            .sources
            .iter()
            .all(|s| sources.get(*s) == current.get(*s));
        lines.push(format!(
            "{:<14} version {:<4} summarises {:<28} {}",
            def.name,
            table.version().unwrap_or(0),
            format_sources(&sources),
            if fresh {
                "current".to_string()
            } else {
                "stale: the table functions read the raw tables until the next ingest or `kpidb rollups --rebuild`".to_string()
            }
        ));
    }
    Ok(lines)
}

/// The schema with text as plain Utf8, which every Delta reader accepts.
fn plain_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let t = match f.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                    other => other.clone(),
                };
                Field::new(f.name(), t, f.is_nullable())
            })
            .collect::<Vec<_>>(),
    ))
}

fn plain_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                cast(c.as_ref(), f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip() {
        let sources: Sources = [
            ("dept_scores".to_string(), 7),
            ("indicators".to_string(), 0),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            parse_sources(&format_sources(&sources)).as_ref(),
            Some(&sources)
        );
        assert_eq!(parse_sources("dept_scores=x"), None);
    }
}
