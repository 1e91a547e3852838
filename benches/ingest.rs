//! Ingest throughput: reading a CSV and checking every row against the model, the
//! part of `kpidb ingest` that grows with the file.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kpidb::ingest::{read_file, validate};
use kpidb::model::DEPT_SCORES;

fn scores_csv(rows: usize) -> String {
    let mut csv = String::from("year,dept_code,indicator_code,score,max_score\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "{},{},D{:04},{}.50,10\n",
            1950 + i / 10_000,
            101 + (i / 100) % 100,
            i % 100,
            i % 10
        ));
    }
    csv
}

fn ingest_check(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("ingest_check");
    for rows in [1_000usize, 8_000] {
        let path = dir.path().join(format!("scores_{rows}.csv"));
        std::fs::write(&path, scores_csv(rows)).expect("write csv");
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::new("read_csv", rows), &path, |b, path| {
            b.iter(|| read_file(path, None).expect("readable"))
        });
        let raw = read_file(&path, None).expect("readable");
        group.bench_with_input(BenchmarkId::new("check_rows", rows), &raw, |b, raw| {
            b.iter(|| {
                let mut problems = validate::Problems::new("bench", &DEPT_SCORES);
                let rows =
                    validate::check_file(raw, &DEPT_SCORES, &mut problems, &|_| {}).expect("valid");
                assert!(problems.is_empty());
                rows
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ingest_check);
criterion_main!(benches);
