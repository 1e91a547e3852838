//! Criterion benches of `kpidb serve` on the sample warehouse, with a server started
//! in-process on loopback: one query's round trip over PostgreSQL (simple and
//! prepared) and over HTTP (JSON, Arrow), 32 clients each sending one query at once
//! (throughput = 32 queries per iteration), and a small query while four runaway
//! cross joins run.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kpidb::functions::FunctionOptions;
use kpidb::server::{Overrides, ServerConfig, Settings};
use kpidb::Warehouse;
use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls};

const RANKING: &str =
    "SELECT rank, dept_code, total_score, grade FROM dept_ranking(2023) ORDER BY rank";
const SMALL: &str = "SELECT count(*) FROM dept_scores WHERE year = 2023";
/// Billions of rows to add up: runs until the query timeout stops it.
const RUNAWAY: &str = "SELECT sum(a.score * b.score * c.score) \
     FROM dept_scores a CROSS JOIN dept_scores b CROSS JOIN dept_scores c";
const DEPARTMENTS: &str = "SELECT count(*) FROM departments";

async fn client(pg: &str) -> Client {
    let (host, port) = pg.split_once(':').unwrap();
    let (client, connection) =
        tokio_postgres::connect(&format!("host={host} port={port} user=bench"), NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    client
}

fn serve(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let settings = Settings::resolve(
        &ServerConfig::default(),
        Overrides {
            flags: ServerConfig {
                pg_listen: Some("127.0.0.1:0".into()),
                http_listen: Some("127.0.0.1:0".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    let warehouse = Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap();
    let running = rt
        .block_on(kpidb::server::start(
            warehouse,
            FunctionOptions::default(),
            settings,
            None,
        ))
        .unwrap();
    let pg = running.pg.unwrap().to_string();
    let http = format!("http://{}/api/sql", running.http.unwrap());
    let one = rt.block_on(client(&pg));
    let clients: Vec<Client> = rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..32 {
            clients.push(client(&pg).await);
        }
        clients
    });
    let web = reqwest::Client::new();

    let mut group = c.benchmark_group("serve");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("pg_simple_small", |b| {
        b.iter(|| rt.block_on(one.simple_query(SMALL)).unwrap())
    });
    group.bench_function("pg_simple_dept_ranking", |b| {
        b.iter(|| rt.block_on(one.simple_query(RANKING)).unwrap())
    });
    let prepared = rt.block_on(one.prepare(RANKING)).unwrap();
    group.bench_function("pg_prepared_dept_ranking", |b| {
        b.iter(|| rt.block_on(one.query(&prepared, &[])).unwrap())
    });
    for (name, accept) in [
        ("http_json_dept_ranking", "application/json"),
        (
            "http_arrow_dept_ranking",
            "application/vnd.apache.arrow.stream",
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    web.post(&http)
                        .header("Accept", accept)
                        .body(RANKING)
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap()
                })
            })
        });
    }
    group.throughput(Throughput::Elements(32));
    group.bench_function("pg_32_clients_dept_ranking", |b| {
        b.iter(|| {
            rt.block_on(async {
                let runs = clients.iter().map(|c| c.simple_query(RANKING));
                for result in futures::future::join_all(runs).await {
                    result.unwrap();
                }
            })
        })
    });
    // A small question while four clients each run a runaway cross join: what the
    // server's own runtime for query work and joins that yield buy.
    let runaways: Vec<_> = (0..4)
        .map(|_| {
            let pg = pg.clone();
            rt.spawn(async move {
                let runaway = client(&pg).await;
                loop {
                    let _ = runaway.simple_query(RUNAWAY).await;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    group.bench_function("pg_departments_beside_4_runaways", |b| {
        b.iter(|| rt.block_on(one.simple_query(DEPARTMENTS)).unwrap())
    });
    runaways.iter().for_each(|task| task.abort());
    group.finish();
}

criterion_group!(benches, serve);
criterion_main!(benches);
