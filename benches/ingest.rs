//! Ingest throughput: a dept_scores CSV and the same rows as Parquet, checked against
//! every rule and committed to a copy of the shipped sample warehouse (replace-year,
//! so every run does the same work). The scale comparison with DuckDB is in
//! `benches/compare` (`run.py --ingest`).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datafusion::arrow::array::Array;
use kpidb::ingest::{ingest, IngestRequest};
use kpidb::{Engine, Warehouse, WriteMode};

/// `rows` valid scores over the sample's departments and dept indicators, a year
/// after another from 1950.
async fn scores_csv(warehouse: &Warehouse, rows: usize) -> String {
    let engine = Engine::open(warehouse.clone()).await.expect("engine");
    let pairs: Vec<(String, String)> = engine
        .query(
            "SELECT d.dept_code, i.indicator_code FROM departments d CROSS JOIN indicators i \
             WHERE i.framework = 'dept' ORDER BY 1, 2",
        )
        .await
        .expect("codes")
        .iter()
        .flat_map(|b| {
            let text = |i: usize| {
                datafusion::arrow::compute::cast(
                    b.column(i),
                    &datafusion::arrow::datatypes::DataType::Utf8,
                )
                .expect("text")
            };
            let (d, i) = (text(0), text(1));
            let (d, i) = (
                d.as_any()
                    .downcast_ref::<datafusion::arrow::array::StringArray>()
                    .unwrap()
                    .clone(),
                i.as_any()
                    .downcast_ref::<datafusion::arrow::array::StringArray>()
                    .unwrap()
                    .clone(),
            );
            (0..d.len())
                .map(|r| (d.value(r).to_string(), i.value(r).to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut csv = String::from("year,dept_code,indicator_code,score,max_score\n");
    for n in 0..rows {
        let (dept, indicator) = &pairs[n % pairs.len()];
        let year = 1950 + n / pairs.len();
        csv.push_str(&format!("{year},{dept},{indicator},{}.50,10\n", n % 10));
    }
    csv
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        // The copy is the bench's own, to write into.
        if entry.file_name() == kpidb::storage::READ_ONLY {
            continue;
        }
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

async fn load(warehouse: &Warehouse, file: &Path) {
    ingest(
        warehouse,
        IngestRequest {
            table: "dept_scores",
            files: &[file.to_path_buf()],
            mode: WriteMode::ReplaceYear,
            sheet: None,
            progress: false,
            check_only: false,
            strict: false,
        },
    )
    .await
    .expect("valid scores ingest");
}

fn ingest_bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let root: PathBuf = dir.path().join("warehouse");
    copy_dir(&kpidb::sample::shipped::warehouse().unwrap(), &root);
    let warehouse = Warehouse::open(&root).expect("warehouse");
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    for rows in [10_000usize, 100_000] {
        let csv = dir.path().join(format!("scores_{rows}.csv"));
        std::fs::write(&csv, runtime.block_on(scores_csv(&warehouse, rows))).expect("csv");
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("csv", rows), &csv, |b, file| {
            b.iter(|| runtime.block_on(load(&warehouse, file)))
        });
    }
    group.finish();
}

criterion_group!(benches, ingest_bench);
criterion_main!(benches);
