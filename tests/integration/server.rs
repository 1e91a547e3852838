//! `kpidb serve` end to end: a real server process on loopback, real PostgreSQL
//! (tokio-postgres) and HTTP (reqwest) clients. Every security rule has a test that
//! fails if the rule breaks.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{
    run, sample_copy, stdout, JsonResponse, Served, PASSWORD, SERVER_CONFIG, TOKEN, USER,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use rust_decimal::Decimal;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

async fn connect(served: &Served) -> Client {
    connect_as(served, USER, PASSWORD).await.expect("login")
}

async fn connect_as(
    served: &Served,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) =
        tokio_postgres::connect(&served.pg_url(user, password), NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Rows of a simple (text) query, NULL as "".
async fn text_rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The CLI's answer as CSV rows (header dropped).
fn cli_rows(data: &std::path::Path, sql: &str) -> Vec<Vec<String>> {
    let out = run(data, &["query", "--format", "csv", "--", sql]);
    assert!(out.status.success(), "{sql}: {}", common::stderr(&out));
    let text = stdout(&out);
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// Equal as values: booleans t/true, and numbers compared as numbers.
fn same_cell(a: &str, b: &str) -> bool {
    let norm = |s: &str| match s {
        "t" => "true".to_string(),
        "f" => "false".to_string(),
        other => other.to_string(),
    };
    let (a, b) = (norm(a), norm(b));
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => false,
    }
}

/// Billions of rows to add up: runs until something stops it.
const RUNAWAY: &str = "SELECT sum(a.score * b.score * c.score) \
     FROM dept_scores a CROSS JOIN dept_scores b CROSS JOIN dept_scores c";

fn error_code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("not a server error: {e}"))
}

fn error_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// The CLI's answer as JSON objects.
fn cli_json(data: &std::path::Path, sql: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let out = run(data, &["query", "--format", "json", "--", sql]);
    assert!(out.status.success(), "{sql}: {}", common::stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A JSON value as PostgreSQL's text format would show it (NULL as "").
fn pg_text(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(pg_text).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn pg_answers_every_shipped_query_as_the_cli_does() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let client = connect(&served).await;
    let mut checked = 0;
    for entry in std::fs::read_dir("queries").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "sql") {
            continue; // queries/report/ holds report sections with ${parameters}
        }
        let sql = std::fs::read_to_string(&path).unwrap();
        let expected = cli_json(&data, &sql);
        let messages = client.simple_query(&sql).await.unwrap();
        let rows: Vec<_> = messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .collect();
        assert_eq!(rows.len(), expected.len(), "{}", path.display());
        for (row, want) in rows.iter().zip(&expected) {
            // (The CLI's JSON leaves NULL fields out.)
            assert!(row.len() >= want.len(), "{}", path.display());
            for (i, column) in row.columns().iter().enumerate() {
                let got = row.get(i).unwrap_or("").replace('"', "");
                let want = pg_text(want.get(column.name()).unwrap_or(&serde_json::Value::Null));
                assert!(
                    same_cell(&got, &want),
                    "{} column {}: server {got:?} != cli {want:?}",
                    path.display(),
                    column.name()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} query files");
}

#[tokio::test]
async fn pg_prepared_statement_binds_parameters_and_returns_decimals() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let client = connect(&served).await;
    let statement = client
        .prepare("SELECT dept_code, total_score FROM dept_ranking(2023) WHERE dept_code = $1")
        .await
        .expect("prepare");
    let rows = client.query(&statement, &[&"101"]).await.expect("execute");
    assert_eq!(rows.len(), 1);
    let score: Decimal = rows[0].get(1);
    let expected: Decimal = cli_rows(
        &data,
        "SELECT total_score FROM dept_ranking(2023) WHERE dept_code = '101'",
    )[0][0]
        .parse()
        .unwrap();
    assert_eq!(score, expected);

    // The same statement again with another parameter, and typed parameters.
    let rows = client.query(&statement, &[&"102"]).await.unwrap();
    assert_eq!(rows.len(), 1);
    let code: String = rows[0].get(0);
    assert_eq!(code, "102");
    let rows = client
        .query(
            "SELECT count(*) FROM dept_scores WHERE year = $1 AND score >= $2",
            &[&2022i32, &Decimal::new(450, 2)],
        )
        .await
        .unwrap();
    let count: i64 = rows[0].get(0);
    let expected = common::scalar(
        &data,
        "SELECT count(*) FROM dept_scores WHERE year = 2022 AND score >= 4.50",
    );
    assert_eq!(count.to_string(), expected);

    // Bound parameters as table-function arguments, in every type a driver sends.
    let ranked = common::scalar(&data, "SELECT count(*) FROM dept_ranking(2022)");
    let count = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i64>(0).to_string();
    let sql = "SELECT count(*) FROM dept_ranking($1)";
    assert_eq!(count(client.query(sql, &[&2022i64]).await.unwrap()), ranked);
    let prepared = client
        .prepare(sql)
        .await
        .expect("prepare with a table-function parameter");
    assert_eq!(prepared.params(), &[tokio_postgres::types::Type::INT8]);
    assert_eq!(
        count(client.query(&prepared, &[&2022i64]).await.unwrap()),
        ranked
    );
    assert_eq!(
        count(client.query(&prepared, &[&2023i64]).await.unwrap()),
        common::scalar(&data, "SELECT count(*) FROM dept_ranking(2023)")
    );
    {
        use tokio_postgres::types::{ToSql, Type};
        let sent: [(Type, Box<dyn ToSql + Sync + Send>); 5] = [
            (Type::INT2, Box::new(2022i16)),
            (Type::INT4, Box::new(2022i32)),
            (Type::NUMERIC, Box::new(Decimal::new(2022, 0))),
            (Type::TEXT, Box::new("2022")),
            (Type::UNKNOWN, Box::new("2022")),
        ];
        for (ty, value) in &sent {
            let rows = client
                .query_typed(sql, &[(value.as_ref() as &(dyn ToSql + Sync), ty.clone())])
                .await
                .unwrap_or_else(|e| panic!("{ty}: {}", error_message(&e)));
            assert_eq!(rows[0].get::<_, i64>(0).to_string(), ranked, "{ty}");
        }
    }
    // Every table function, parameters elsewhere in the statement too.
    for (sql, params, expected) in [
        (
            "SELECT count(*) FROM indicator_callouts($1, $2) WHERE score_rate < $3",
            vec![
                Box::new(2023i64) as Box<dyn tokio_postgres::types::ToSql + Sync>,
                Box::new(3i64),
                Box::new(2.0f64),
            ],
            "SELECT count(*) FROM indicator_callouts(2023, 3) WHERE score_rate < 2.0",
        ),
        (
            "SELECT count(*) FROM dept_trend($1, $2)",
            vec![Box::new(2019i64), Box::new(2023i64)],
            "SELECT count(*) FROM dept_trend(2019, 2023)",
        ),
        (
            "SELECT sum(projects) FROM grade_distribution($1, $2)",
            vec![Box::new(2023i64), Box::new("local".to_string())],
            "SELECT sum(projects) FROM grade_distribution(2023, 'local')",
        ),
        (
            "SELECT count(*) FROM exante_summary($1)",
            vec![Box::new(2023i64)],
            "SELECT count(*) FROM exante_summary(2023)",
        ),
        (
            "SELECT count(*) FROM monitoring_warnings($1, $2) WHERE level = 'red'",
            vec![Box::new(2023i64), Box::new(6i64)],
            "SELECT count(*) FROM monitoring_warnings(2023, 6) WHERE level = 'red'",
        ),
        (
            "SELECT count(*) FROM target_deviations($1, $2)",
            vec![Box::new(2023i64), Box::new(0.2f64)],
            "SELECT count(*) FROM target_deviations(2023, 0.2)",
        ),
        (
            "SELECT count(*) FROM self_evaluation($1, $2)",
            vec![Box::new(2023i64), Box::new("dept".to_string())],
            "SELECT count(*) FROM self_evaluation(2023, 'dept')",
        ),
    ] {
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            params.iter().map(|p| p.as_ref()).collect();
        let rows = client
            .query(sql, &refs)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", error_message(&e)));
        let got: String = match rows[0].try_get::<_, i64>(0) {
            Ok(n) => n.to_string(),
            Err(_) => rows[0].get::<_, Decimal>(0).to_string(),
        };
        assert_eq!(got, common::scalar(&data, expected), "{sql}");
    }
    // A wrong value is still the function's own planning error.
    let err = client.query(sql, &[&0i64]).await.expect_err("year 0");
    assert!(
        error_message(&err).contains("dept_ranking: year must be a year from 1 to 9999, got 0"),
        "{}",
        error_message(&err)
    );
    // Unquoted names fold to lower case, as PostgreSQL folds them.
    let rows = client
        .query("SELECT count(*) FROM DEPT_RANKING(2023)", &[])
        .await
        .unwrap();
    assert_eq!(
        count(rows),
        common::scalar(&data, "SELECT count(*) FROM dept_ranking(2023)")
    );
}

#[tokio::test]
async fn pg_refuses_writes_and_files_and_leaves_no_trace() {
    let (dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let client = connect(&served).await;
    let outside = dir.path().join("stolen.csv");
    let outside = outside.display();
    let attempts = [
        "CREATE TABLE t (a INT)".to_string(),
        "CREATE TABLE t AS SELECT * FROM dept_scores".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
        "CREATE SCHEMA s".to_string(),
        "DROP TABLE dept_scores".to_string(),
        "INSERT INTO dept_scores SELECT * FROM dept_scores".to_string(),
        "DELETE FROM dept_scores".to_string(),
        "UPDATE dept_scores SET score = 0".to_string(),
        format!("COPY dept_scores TO '{outside}'"),
        format!("COPY (SELECT * FROM departments) TO '{outside}'"),
        format!("CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{outside}'"),
        "SET datafusion.execution.target_partitions = 1".to_string(),
        "EXPLAIN INSERT INTO dept_scores SELECT * FROM dept_scores".to_string(),
    ];
    for sql in &attempts {
        // Each is a statement DataFusion would run, so its refusal is the policy's, not
        // a syntax error…
        kpidb::shape::parse(sql, &PostgreSqlDialect {})
            .unwrap_or_else(|e| panic!("{sql} must parse, to test its refusal: {e}"));
        // …refused as read-only over the simple protocol…
        let err = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(
            error_code(&err),
            "42501",
            "{sql}: expected read-only, got {}",
            error_message(&err)
        );
        // …and the extended one.
        let err = client.query(sql.as_str(), &[]).await.expect_err(sql);
        assert_eq!(
            error_code(&err),
            "42501",
            "{sql} (extended): {}",
            error_message(&err)
        );
    }
    let err = client
        .simple_query("DROP TABLE dept_scores")
        .await
        .unwrap_err();
    assert!(
        error_message(&err).contains("read-only") && error_message(&err).contains("DROP TABLE"),
        "{}",
        error_message(&err)
    );
    // Reading a file by path is refused too.
    for sql in [
        "SELECT * FROM '/etc/passwd'".to_string(),
        format!(
            "SELECT * FROM '{}/dept_scores/_delta_log/00000000000000000000.json'",
            data.display()
        ),
    ] {
        assert!(client.simple_query(&sql).await.is_err(), "{sql}");
    }

    // Nothing was written or registered, and the data is whole.
    assert!(!dir.path().join("stolen.csv").exists());
    let other = connect(&served).await;
    let names = text_rows(
        &other,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .await;
    let names: Vec<&str> = names.iter().map(|r| r[0].as_str()).collect();
    let mut model: Vec<&str> = kpidb::model::TABLES.iter().map(|t| t.name).collect();
    model.sort_unstable();
    assert_eq!(names, model);
    let count = text_rows(&other, "SELECT count(*) FROM dept_scores").await;
    assert_eq!(
        count[0][0],
        common::scalar(&data, "SELECT count(*) FROM dept_scores")
    );
}

#[tokio::test]
async fn one_connections_settings_are_its_own() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let a = connect(&served).await;
    let b = connect(&served).await;
    let before = text_rows(&b, "SHOW search_path").await;
    a.simple_query("SET search_path = 'elsewhere'")
        .await
        .unwrap();
    a.simple_query("SET application_name = 'a'").await.unwrap();
    assert_eq!(text_rows(&a, "SHOW search_path").await[0][0], "elsewhere");
    assert_eq!(text_rows(&b, "SHOW search_path").await, before);
    // Harmless driver settings are accepted.
    a.simple_query("SET client_encoding = 'UTF8'")
        .await
        .unwrap();
    a.simple_query("SET extra_float_digits = 3").await.unwrap();
}

#[tokio::test]
async fn pg_password_authentication() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    assert!(connect_as(&served, USER, PASSWORD).await.is_ok());
    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD), (USER, "")] {
        let err = match connect_as(&served, user, password).await {
            Ok(_) => panic!("{user}/{password} logged in"),
            Err(e) => e,
        };
        let text = format!("{err} {}", error_message(&err));
        assert!(
            text.contains("password") || error_code(&err) == "28P01",
            "{user}: {text}"
        );
    }
}

#[test]
fn refuses_to_start_exposed_without_credentials_or_with_bad_tls() {
    let (_dir, data) = sample_copy();
    let refusal = |config: &str, flags: &[&str]| match Served::try_start(&data, config, flags, &[])
    {
        Ok(_) => panic!("started with {flags:?}"),
        Err(message) => message,
    };
    let err = refusal("", &["--pg-listen", "0.0.0.0:0"]);
    assert!(err.contains("without credentials"), "{err}");
    let err = refusal("", &["--http-listen", "0.0.0.0:0"]);
    assert!(err.contains("without credentials"), "{err}");

    let missing = refusal(
        SERVER_CONFIG,
        &[
            "--tls-cert",
            "tests/fixtures/tls/cert.pem",
            "--tls-key",
            "no-such-key.pem",
        ],
    );
    assert!(missing.contains("no-such-key.pem"), "{missing}");
    let garbage = refusal(
        SERVER_CONFIG,
        &[
            "--tls-cert",
            "Cargo.toml",
            "--tls-key",
            "tests/fixtures/tls/key.pem",
        ],
    );
    assert!(garbage.contains("Cargo.toml"), "{garbage}");
}

#[tokio::test]
async fn tls_is_required_once_configured() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, common::TLS_FLAGS);
    // Plaintext PostgreSQL is refused…
    let err = connect_as(&served, USER, PASSWORD)
        .await
        .expect_err("plaintext refused");
    assert!(
        error_message(&err).contains("TLS"),
        "{}",
        error_message(&err)
    );
    // …and HTTP is HTTPS only.
    assert!(served.http.starts_with("https://"), "{}", served.http);
    let cert = reqwest::Certificate::from_pem(&std::fs::read("tests/fixtures/tls/ca.pem").unwrap())
        .unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(cert)
        .build()
        .unwrap();
    let url = format!("{}/api/sql", served.http.replace("127.0.0.1", "localhost"));
    let response = https
        .post(&url)
        .bearer_auth(TOKEN)
        .body("SELECT 1 AS one")
        .send()
        .await
        .expect("https works");
    assert_eq!(response.status(), 200);
    let plain = served.http.replace("https://", "http://");
    assert!(reqwest::get(format!("{plain}/healthz")).await.is_err());
}

#[tokio::test]
async fn runaway_query_is_stopped_and_others_are_served() {
    let (_dir, data) = sample_copy();
    // Long enough for the small query below to finish first even on a loaded machine.
    let served = Served::start(&data, SERVER_CONFIG, &["--query-timeout", "10s"]);
    let runaway = connect(&served).await;
    let started = Instant::now();
    let task = tokio::spawn(async move { runaway.simple_query(RUNAWAY).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Another client is served while the runaway runs.
    let other = connect(&served).await;
    let quick = Instant::now();
    let rows = text_rows(&other, "SELECT count(*) FROM departments").await;
    assert!(!rows.is_empty());
    assert!(
        !task.is_finished(),
        "the runaway query should still be running"
    );
    eprintln!(
        "a small query answered in {:?} beside a runaway",
        quick.elapsed()
    );
    let err = task.await.unwrap().expect_err("runaway must fail");
    assert_eq!(error_code(&err), "57014", "{}", error_message(&err));
    assert!(
        error_message(&err).contains("query_timeout"),
        "{}",
        error_message(&err)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // The server is still fine.
    let rows = text_rows(&other, "SELECT count(*) FROM dept_scores").await;
    assert!(!rows.is_empty());
}

#[tokio::test]
async fn memory_limit_stops_a_query_with_a_clear_error() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &["--memory-limit", "8MiB"]);
    let client = connect(&served).await;
    // Twenty million strings gathered into one array, which cannot spill to disk as a
    // GROUP BY's groups can.
    let err = client
        .simple_query(
            "SELECT array_agg(a.dept_code || b.indicator_code) \
             FROM dept_scores a CROSS JOIN dept_scores b",
        )
        .await
        .expect_err("must run out of memory");
    assert_eq!(error_code(&err), "53200", "{}", error_message(&err));
    assert!(
        error_message(&err).contains("memory_limit"),
        "{}",
        error_message(&err)
    );
    assert!(!text_rows(&client, "SELECT 1").await.is_empty());
}

#[tokio::test]
async fn cancel_request_stops_a_running_query() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &["--query-timeout", "60s"]);
    let client = connect(&served).await;
    let token = client.cancel_token();
    let started = Instant::now();
    let task = tokio::spawn(async move { client.simple_query(RUNAWAY).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    token.cancel_query(NoTls).await.expect("cancel sent");
    let err = task.await.unwrap().expect_err("cancelled");
    assert_eq!(error_code(&err), "57014", "{}", error_message(&err));
    // Stopped by the cancel, not by the 60 s query_timeout.
    assert!(
        !error_message(&err).contains("query_timeout"),
        "{}",
        error_message(&err)
    );
    assert!(
        started.elapsed() < Duration::from_secs(59),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn max_connections_refuses_the_one_too_many() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &["--max-connections", "2"]);
    let a = connect(&served).await;
    let b = connect(&served).await;
    let err = connect_as(&served, USER, PASSWORD)
        .await
        .expect_err("third refused");
    assert!(
        format!("{err} {}", error_message(&err)).contains("too many"),
        "{err}"
    );
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(connect_as(&served, USER, PASSWORD).await.is_ok());
    drop(b);
}

#[tokio::test]
async fn http_max_connections_answers_503() {
    let (_dir, data) = sample_copy();
    let served = Served::start(
        &data,
        SERVER_CONFIG,
        &["--max-connections", "1", "--query-timeout", "10s"],
    );
    let url = format!("{}/api/sql", served.http);
    let slow = tokio::spawn({
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(TOKEN)
                .body(RUNAWAY)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(TOKEN)
        .body("SELECT 1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "too_many_connections");
    assert_eq!(slow.await.unwrap(), 504, "the runaway ends with a timeout");
}

#[tokio::test]
async fn http_answers_in_every_format_like_the_cli() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let http = reqwest::Client::new();
    let sql = std::fs::read_to_string("queries/dept_ranking.sql").unwrap();
    let post = |accept: &'static str| {
        http.post(format!("{}/api/sql", served.http))
            .bearer_auth(TOKEN)
            .header("Accept", accept)
            .body(sql.clone())
            .send()
    };

    let cli = |format: &str| {
        let out = run(&data, &["query", "--format", format, "--", &sql]);
        assert!(out.status.success());
        out.stdout
    };
    let csv = post("text/csv").await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(csv.bytes().await.unwrap().to_vec(), cli("csv"));

    let json = post("application/json").await.unwrap();
    assert_eq!(json.status(), 200);
    let got: serde_json::Value = json.json().await.unwrap();
    let expected: serde_json::Value = serde_json::from_slice(&cli("json")).unwrap();
    assert_eq!(got, expected);

    let arrow = post("application/vnd.apache.arrow.stream").await.unwrap();
    assert_eq!(arrow.status(), 200);
    let bytes = arrow.bytes().await.unwrap();
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, expected.as_array().unwrap().len());

    let parquet = post("application/vnd.apache.parquet").await.unwrap();
    assert_eq!(parquet.status(), 200);
    let bytes = parquet.bytes().await.unwrap();
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, expected.as_array().unwrap().len());

    // List columns (lowest_k) are written as text in CSV, as the CLI does.
    let talks = std::fs::read_to_string("queries/talks_list.sql").unwrap();
    let response = http
        .post(format!("{}/api/sql?format=csv", served.http))
        .bearer_auth(TOKEN)
        .body(talks.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let out = run(&data, &["query", "--format", "csv", "--", &talks]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(response.bytes().await.unwrap().to_vec(), out.stdout);

    // ?format= wins over Accept; JSON bodies work; bad Accept is 406.
    let response = http
        .post(format!("{}/api/sql?format=csv", served.http))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(serde_json::json!({"sql": "SELECT 1 AS one"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "one\n1\n");
    let response = post("image/png").await.unwrap();
    assert_eq!(response.status(), 406);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_acceptable");
}

#[tokio::test]
async fn http_errors_auth_tables_health_and_metrics() {
    let (dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", served.http);

    // Authentication.
    let response = http
        .post(url("/api/sql"))
        .body("SELECT 1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = http
        .post(url("/api/sql"))
        .bearer_auth("0123456789abcdef0123456789abcdeX")
        .body("SELECT 1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    let response = http
        .post(url("/api/sql"))
        .basic_auth(USER, Some(PASSWORD))
        .body("SELECT 1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        http.get(url("/metrics")).send().await.unwrap().status(),
        401
    );

    // Errors are JSON {code, message} with the right status.
    let outside = dir.path().join("copied.csv");
    for (sql, status, code) in [
        ("SELEKT 1".to_string(), 400, "syntax_error"),
        ("SELECT * FROM nowhere".to_string(), 400, "undefined_table"),
        ("DROP TABLE dept_scores".to_string(), 403, "read_only"),
        (
            format!("COPY dept_scores TO '{}'", outside.display()),
            403,
            "read_only",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'",
                outside.display()
            ),
            403,
            "read_only",
        ),
        ("SELECT 1; SELECT 2".to_string(), 400, "bad_request"),
    ] {
        let response = http
            .post(url("/api/sql"))
            .bearer_auth(TOKEN)
            .body(sql.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{sql}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{sql}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    assert!(!outside.exists());

    // Tables.
    let tables: serde_json::Value = http
        .get(url("/api/tables"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tables.as_array().unwrap().len(), kpidb::model::TABLES.len());
    let table: serde_json::Value = http
        .get(url("/api/tables/dept_scores"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = data.clone();
    let version = std::thread::spawn(move || common::version(&path, "dept_scores"))
        .join()
        .unwrap();
    assert_eq!(table["version"], version);
    assert_eq!(
        table["rows"].to_string(),
        common::scalar(&data, "SELECT count(*) FROM dept_scores")
    );
    let columns: Vec<&str> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(columns.contains(&"score") && columns.contains(&"indicator_code"));
    let missing = http
        .get(url("/api/tables/nope"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Health (open) and metrics (authenticated).
    let health: serde_json::Value = http
        .get(url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = metrics_text(&http, url("/metrics")).await;
    for name in [
        "kpidb_queries_total",
        "kpidb_query_errors_total",
        "kpidb_query_duration_seconds_bucket",
        "kpidb_active_connections",
        "kpidb_auth_failures_total",
        "kpidb_table_version",
        "kpidb_plans_reused_total",
        "kpidb_physical_plans_reused_total",
        "kpidb_resident_bytes",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn an_ingest_is_seen_by_a_running_server() {
    let (dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let client = connect(&served).await;
    let before = text_rows(&client, "SELECT count(*) FROM departments").await[0][0].clone();
    let csv = dir.path().join("new.csv");
    std::fs::write(
        &csv,
        "dept_code,dept_name,parent_code,sector\n199,市测试局,,党政\n",
    )
    .unwrap();
    let out = run(&data, &["ingest", "departments", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = text_rows(&client, "SELECT count(*) FROM departments").await[0][0].clone();
        if now != before {
            assert_eq!(
                now.parse::<i64>().unwrap(),
                before.parse::<i64>().unwrap() + 1
            );
            break;
        }
        assert!(Instant::now() < deadline, "the server never saw the ingest");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The server's `/metrics` at `url`.
async fn metrics_text(http: &reqwest::Client, url: String) -> String {
    http.get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A statement sent again is planned from the plan kept for it, until an ingest
/// changes what it reads: here the rollup behind dept_ranking, re-scored by the ingest.
#[tokio::test]
async fn a_kept_plan_serves_repeats_until_an_ingest() {
    let (dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let client = connect(&served).await;
    let http = reqwest::Client::new();
    let metric = |name: &'static str| {
        let http = http.clone();
        let url = format!("{}/metrics", served.http);
        async move {
            let metrics = metrics_text(&http, url).await;
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
                .parse::<u64>()
                .unwrap()
        }
    };
    let sql = "SELECT rank, total_score FROM dept_ranking(2023) WHERE dept_code = '153'";
    let before = text_rows(&client, sql).await;
    assert_eq!(text_rows(&client, sql).await, before);
    assert_eq!(text_rows(&connect(&served).await, sql).await, before);
    assert_eq!(
        metric("kpidb_plans_reused_total").await,
        2,
        "both repeats reuse the first plan"
    );
    // Over the sample's few rows the physical plan is reused too, and the rollup's
    // files are kept in memory.
    let physical = metric("kpidb_physical_plans_reused_total").await;
    println!("physical plans reused: {physical}");
    assert!(physical >= 2, "{physical}");
    assert!(metric("kpidb_resident_bytes").await > 0);

    let csv = dir.path().join("rescore.csv");
    let rescored = common::stdout(&run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT year, dept_code, indicator_code, \
             CASE WHEN dept_code = '153' THEN max_score ELSE score END AS score, max_score \
             FROM dept_scores WHERE year = 2023",
        ],
    ));
    std::fs::write(&csv, rescored).unwrap();
    let out = run(
        &data,
        &[
            "ingest",
            "dept_scores",
            csv.to_str().unwrap(),
            "--mode",
            "replace-year",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = text_rows(&client, sql).await;
        if now != before {
            assert_eq!(now, vec![vec!["1".to_string(), "100.00".to_string()]]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server kept answering from the old plan"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// 32 clients query at once for a bounded time; every query must succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_32_concurrent_clients_without_errors() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let queries = [
        "SELECT rank, dept_code, total_score FROM dept_ranking(2023) ORDER BY rank LIMIT 10",
        "SELECT count(*) FROM dept_scores WHERE year = 2022",
        "SELECT * FROM indicator_callouts(2023, 3) LIMIT 20",
    ];
    let run_for = Duration::from_secs(8);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let client = connect(&served).await;
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut latencies = Vec::new();
            let mut n = i;
            while started.elapsed() < run_for {
                let sql = queries[n % queries.len()];
                let t = Instant::now();
                if n % 2 == 0 {
                    client.simple_query(sql).await.map(|_| ())?;
                } else {
                    client.query(sql, &[]).await.map(|_| ())?;
                }
                latencies.push(t.elapsed());
                n += 1;
            }
            Ok::<_, tokio_postgres::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap().expect("no query may fail under load"));
    }
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    eprintln!(
        "load: 32 clients, {} queries in {:?} ({:.0}/s), p50 {:?}, p95 {:?}, max {:?}",
        all.len(),
        run_for,
        all.len() as f64 / run_for.as_secs_f64(),
        p(0.5),
        p(0.95),
        all[all.len() - 1]
    );
    assert!(all.len() >= 32);
}
