//! Criterion benches of the shipped annual ranking report on the sample warehouse:
//! running its eight sections, then rendering each format from the results.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use kpidb::report::{html, markdown, run, shipped_reports, xlsx, Reports};
use kpidb::{Engine, Warehouse};
use tokio::runtime::Runtime;

fn report(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let engine = rt
        .block_on(Engine::open(
            Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap(),
        ))
        .unwrap();
    let reports = Reports::load(&shipped_reports().unwrap()).unwrap();
    let spec = reports.get("annual_ranking").unwrap();
    let mut group = c.benchmark_group("report/annual_ranking");
    group.sample_size(10);
    group.bench_function("run_sections", |b| {
        b.iter(|| {
            rt.block_on(run::execute(&engine, spec, BTreeMap::new(), false))
                .unwrap()
        })
    });
    let outcome = rt
        .block_on(run::execute(&engine, spec, BTreeMap::new(), false))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.xlsx");
    group.bench_function("render_xlsx", |b| {
        b.iter(|| xlsx::write(&outcome, &path).unwrap())
    });
    group.bench_function("render_html", |b| b.iter(|| html::render(&outcome)));
    group.bench_function("render_markdown", |b| b.iter(|| markdown::render(&outcome)));
    group.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
