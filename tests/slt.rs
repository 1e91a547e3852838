//! sqllogictest harness over the Engine: every `tests/slt/*.slt` file runs against a
//! fresh Engine on the shipped sample warehouse. New cases need no Rust.

use std::path::PathBuf;

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
        let mut runner = sqllogictest::Runner::new(|| async {
            let warehouse = Warehouse::open(kpidb::sample::shipped::warehouse()?)?;
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
