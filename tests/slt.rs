//! sqllogictest harness over the Engine: every `tests/slt/*.slt` file runs against a
//! fresh Engine on the shipped sample warehouse, or, when its first line is
//! `# fixture: NAME`, on a new warehouse made by ingesting the CSV files of
//! `tests/fixtures/NAME` (one per table, named after it) through the real pipeline:
//! small data shaped for a function's edge cases. New cases need no Rust.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use kpidb::{Engine, Warehouse};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

struct KpiDb {
    engine: Engine,
}

#[async_trait]
impl AsyncDB for KpiDb {
    type Error = kpidb::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, kpidb::Error> {
        let frame = self.engine.sql(sql).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        let types = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                    DefaultColumnType::Text
                }
                t if t.is_integer() => DefaultColumnType::Integer,
                t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
                    DefaultColumnType::FloatingPoint
                }
                _ => DefaultColumnType::Any,
            })
            .collect();
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for i in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| {
                            let cell = f.value(i).to_string();
                            if cell.is_empty() {
                                "(empty)".to_string()
                            } else {
                                cell
                            }
                        })
                        .collect(),
                );
            }
        }
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "kpidb"
    }
}

/// The warehouse `file` runs on: the shipped sample, or its fixture's, made anew in a
/// temporary directory (kept alive by the first value returned).
async fn fixture(file: &Path) -> kpidb::Result<(Option<tempfile::TempDir>, PathBuf)> {
    let text = std::fs::read_to_string(file).map_err(|e| kpidb::Error::io(file, e))?;
    let Some(name) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# fixture:"))
        .map(str::trim)
    else {
        return Ok((None, kpidb::sample::shipped::warehouse()?));
    };
    let csvs = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().map_err(|e| kpidb::Error::io(&csvs, e))?;
    let root = dir.path().join("warehouse");
    let warehouse = Warehouse::init(&root).await?;
    for def in kpidb::model::TABLES {
        let csv = csvs.join(format!("{}.csv", def.name));
        if !csv.is_file() {
            continue;
        }
        let request = kpidb::ingest::IngestRequest {
            table: def.name,
            files: &[csv],
            mode: kpidb::WriteMode::Append,
            sheet: None,
            progress: false,
            check_only: false,
            strict: true,
        };
        kpidb::ingest::ingest(&warehouse, request).await?;
    }
    Ok((Some(dir), root))
}

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let mut failures = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let (_fixture, root) = match fixture(file).await {
            Ok(made) => made,
            Err(e) => {
                failures += 1;
                println!("slt {name} ... FAILED making its fixture: {e}");
                continue;
            }
        };
        let mut runner = sqllogictest::Runner::new(|| async {
            let warehouse = Warehouse::open(root.clone())?;
            Ok(KpiDb {
                engine: Engine::open(warehouse).await?,
            })
        });
        match runner.run_file_async(file).await {
            Ok(()) => println!("slt {name} ... ok"),
            Err(e) => {
                failures += 1;
                println!("slt {name} ... FAILED\n{e}");
            }
        }
    }
    assert!(
        !files.is_empty(),
        "no .slt files found in {}",
        dir.display()
    );
    if failures > 0 {
        panic!("{failures} slt file(s) failed");
    }
}
