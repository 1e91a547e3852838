//! A bounded, grammar-based SQL fuzzer against a real `kpidb serve` under a tight
//! memory limit, over both protocols, and malformed-protocol traffic on both
//! listeners. After every statement: the server process is alive, its peak resident
//! size (VmHWM) is under memory_limit + the documented slack, and every error is a
//! proper SQLSTATE / HTTP status, never an internal error or a dropped connection.
//!
//! `KPIDB_FUZZ_SECONDS` (default 45) bounds the random part; `KPIDB_FUZZ_SEED` picks
//! the stream (default: fixed, so CI is repeatable; the seed is printed either way).

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::Served;
use futures::StreamExt;
use kpidb::model::{Kind, TABLES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const MEMORY_LIMIT: u64 = 512 << 20;
/// `kpidb::server::budget::SLACK`, as the README documents it.
const SLACK: u64 = 512 << 20;

fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn serve() -> (tempfile::TempDir, Served) {
    let (dir, data) = common::sample_copy();
    let served = Served::start(
        &data,
        "",
        &["--memory-limit", "512MiB", "--query-timeout", "10s"],
    );
    (dir, served)
}

async fn connect(served: &Served) -> Client {
    let url = format!(
        "host={} port={} user=fuzz dbname=kpidb",
        served.pg_host(),
        served.pg_port()
    );
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// What one statement did, for the summary.
#[derive(Default)]
struct Tally {
    statements: usize,
    answered: usize,
    errors: std::collections::BTreeMap<String, usize>,
}

struct Harness {
    served: Served,
    client: Client,
    http: reqwest::Client,
    tally: Tally,
}

impl Harness {
    async fn new(served: Served) -> Harness {
        let client = connect(&served).await;
        Harness {
            served,
            client,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            tally: Tally::default(),
        }
    }

    fn check_alive(&mut self, sql: &str) {
        assert!(self.served.alive(), "the server died on: {}", shown(sql));
        let peak = peak_rss(self.served.pid());
        assert!(
            peak <= MEMORY_LIMIT + SLACK,
            "peak RSS {} MiB passed memory_limit + slack ({} MiB) on: {}",
            peak >> 20,
            (MEMORY_LIMIT + SLACK) >> 20,
            shown(sql)
        );
    }

    async fn pg(&mut self, sql: &str) {
        self.tally.statements += 1;
        match self.client.simple_query(sql).await {
            Ok(messages) => {
                let _ = messages
                    .iter()
                    .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                    .count();
                self.tally.answered += 1;
            }
            Err(e) => {
                let Some(db) = e.as_db_error() else {
                    panic!("pg: not a SQL error ({e}) on: {}", shown(sql));
                };
                let code = db.code().code().to_string();
                assert_ne!(code, "XX000", "pg internal error {db} on: {}", shown(sql));
                assert!(
                    !db.message().contains("Internal error")
                        && !db.message().contains("likely caused by a bug"),
                    "pg internal error text {db} on: {}",
                    shown(sql)
                );
                *self.tally.errors.entry(format!("pg {code}")).or_default() += 1;
            }
        }
        assert!(
            !self.client.is_closed(),
            "pg connection dropped on: {}",
            shown(sql)
        );
        self.check_alive(sql);
    }

    async fn http(&mut self, sql: &str) {
        self.tally.statements += 1;
        let response = self
            .http
            .post(format!("{}/api/sql", self.served.http))
            .header("content-type", "text/plain")
            .body(sql.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("http: no response ({e}) on: {}", shown(sql)));
        let status = response.status();
        // A failure past the first MiB of an answer ends the body early, by design.
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => body.extend_from_slice(&bytes),
                Err(e) => {
                    assert!(
                        body.len() >= 1 << 20,
                        "http: body cut off after {} bytes ({e}) on: {}",
                        body.len(),
                        shown(sql)
                    );
                    break;
                }
            }
        }
        let body = String::from_utf8_lossy(&body);
        assert!(
            status.as_u16() != 500
                && (status.is_success()
                    || !body.contains("\"internal\"")
                        && !body.contains("Internal error")
                        && !body.contains("likely caused by a bug")),
            "http {status} {} on: {}",
            shown(&body),
            shown(sql)
        );
        if status.is_success() {
            self.tally.answered += 1;
        } else {
            *self
                .tally
                .errors
                .entry(format!("http {}", status.as_u16()))
                .or_default() += 1;
        }
        self.check_alive(sql);
    }

    async fn both(&mut self, sql: &str) {
        self.pg(sql).await;
        self.http(sql).await;
    }
}

fn shown(sql: &str) -> String {
    if sql.len() <= 300 {
        sql.to_string()
    } else {
        let head: String = sql.chars().take(200).collect();
        format!("{head}… ({} bytes)", sql.len())
    }
}

/// Every statement that once broke the server, kept as a regression case.
fn regressions() -> Vec<String> {
    let mut cases = vec![
        // Expression output past the memory limit, then past all memory.
        "SELECT max(length(repeat(dept_code, 1000000))) FROM dept_scores".to_string(),
        "SELECT max(length(repeat(dept_code, 100000000))) FROM dept_scores".to_string(),
        "SELECT length(lpad('x', 2000000000))".to_string(),
        "SELECT cardinality(range(1, 10000000000))".to_string(),
        "SELECT cardinality(array_repeat(dept_code, 1000000000)) FROM dept_scores".to_string(),
        "SELECT max(length(concat(repeat(dept_code, 10000000), repeat(dept_code, 10000000)))) \
         FROM dept_scores"
            .to_string(),
        "SELECT length(replace(repeat('ab', 100000), '', repeat('x', 10000)))".to_string(),
        "SELECT length(string_agg(repeat(dept_code, 10000), ',')) FROM dept_scores".to_string(),
        "SELECT count(*) FROM generate_series(1, 100000000000)".to_string(),
        // A function refusing a value inside a filter pushed into the Parquet reader
        // came back as an internal error.
        "SELECT count(*) FROM departments WHERE NOT repeat(sector, 3) = perf_grade(1e308)"
            .to_string(),
        // The logical plan said float8, the rows came as decimals: not encodable.
        "SELECT avg(CASE WHEN FALSE THEN 79514959 ELSE coalesce(year, max_score) END) \
         FROM project_scores"
            .to_string(),
        // An error in the rows after the first batch cut the HTTP body off.
        "SELECT abs(approved_amount), CAST(approved_amount AS int), cardinality(range(1, 357)) \
         FROM exante_reviews UNION ALL SELECT requested_amount, min(project_code), count(*) \
         FROM exante_reviews GROUP BY requested_amount"
            .to_string(),
        // The year before the smallest integer overflowed (a panic, caught).
        "SELECT * FROM dept_ranking(-9223372036854775808) LIMIT 5".to_string(),
        "SELECT * FROM dept_trend(-9223372036854775808, 9223372036854775807)".to_string(),
        // Flags that are not regular-expression flags.
        "SELECT regexp_replace('教育局', '局', 'x', INTERVAL '1 day')".to_string(),
        // SHOW with no name panicked in datafusion-postgres.
        "SHOW".to_string(),
        // Deep nesting: refused by the parser's recursion limit.
        format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500)),
    ];
    // Long chains: 50,000 `+` overflowed the stack; OR lists must answer.
    cases.push(format!("SELECT {}", vec!["1"; 50_000].join(" + ")));
    cases.push(format!(
        "SELECT count(*) FROM dept_scores WHERE {}",
        (0..20_000)
            .map(|i| format!("score = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    ));
    cases.push(format!(
        "SELECT count(*) FROM dept_scores WHERE {}",
        (0..100_000)
            .map(|i| format!("score = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    ));
    cases.push(format!("SELECT {}", vec!["true"; 100_000].join(" AND ")));
    cases.push(vec!["SELECT 1"; 3_000].join(" UNION ALL "));
    cases.push(vec!["SELECT 1"; 5_000].join(" UNION ALL "));
    cases.push(format!("SELECT 1{}", "::int".repeat(5_000)));
    cases.push(format!("SELECT 'a'{}", " || 'a'".repeat(4_000)));
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_sql_never_kills_the_server_or_passes_its_memory() {
    let (_dir, served) = serve();
    let mut harness = Harness::new(served).await;
    let started = Instant::now();
    for sql in regressions() {
        harness.both(&sql).await;
    }
    let regressions = harness.tally.statements;

    let seconds: u64 = std::env::var("KPIDB_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(45);
    let seed: u64 = std::env::var("KPIDB_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let mut grammar = Grammar::new(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let sql = grammar.statement();
        if grammar.rng.random_bool(0.5) {
            harness.pg(&sql).await;
        } else {
            harness.http(&sql).await;
        }
    }
    // The connection and the server still answer plainly after all that.
    harness.both("SELECT count(*) FROM dept_scores").await;
    let tally = &harness.tally;
    println!(
        "fuzz: seed {seed}: {} statements ({regressions} regression cases) in {:.0?}: \
         {} answered, errors {:?}; peak RSS {} MiB",
        tally.statements,
        started.elapsed(),
        tally.answered,
        tally.errors,
        peak_rss(harness.served.pid()) >> 20
    );
    assert!(
        tally.answered > tally.statements / 10,
        "most statements should not all fail"
    );
}

/// The types [`Grammar::typed`] builds expressions of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Num,
    Text,
    Bool,
}

impl Ty {
    fn of(kind: Kind) -> Ty {
        match kind {
            // Dates compare with text literals ('2024-03-31').
            Kind::Text | Kind::Date => Ty::Text,
            Kind::Bool => Ty::Bool,
            Kind::Int | Kind::Money | Kind::Score | Kind::Measure => Ty::Num,
        }
    }
}

/// Random statements from kpidb's tables, columns and functions.
struct Grammar {
    rng: ChaCha8Rng,
}

const SCALARS: &[(&str, usize)] = &[
    ("abs", 1),
    ("round", 2),
    ("coalesce", 2),
    ("nullif", 2),
    ("length", 1),
    ("upper", 1),
    ("substr", 3),
    ("concat", 3),
    ("concat_ws", 3),
    ("repeat", 2),
    ("lpad", 2),
    ("rpad", 3),
    ("replace", 3),
    ("regexp_replace", 4),
    ("translate", 3),
    ("left", 2),
    ("reverse", 1),
    ("split_part", 3),
    ("string_to_array", 2),
    ("array_repeat", 2),
    ("range", 3),
    ("generate_series", 2),
    ("make_array", 3),
    ("array_length", 1),
    ("cardinality", 1),
    ("md5", 1),
    ("to_hex", 1),
    ("power", 2),
    ("sqrt", 1),
    ("ln", 1),
    ("date_trunc", 2),
    ("to_char", 2),
    ("perf_grade", 1),
    ("score_rate", 2),
    ("cut_rate", 2),
    ("yoy_pct", 2),
    ("current_setting", 1),
    ("version", 0),
];

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "string_agg",
    "array_agg",
    "median",
    "stddev",
    "lowest_k",
    "coverage_rate",
];

const TABLE_FUNCTIONS: &[&str] = &[
    "dept_ranking",
    "indicator_callouts",
    "dept_trend",
    "grade_distribution",
    "exante_summary",
];

const OPERATORS: &[&str] = &[
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "=",
    "<>",
    "<",
    ">=",
    "AND",
    "OR",
    "IS DISTINCT FROM",
];

impl Grammar {
    fn new(seed: u64) -> Self {
        Grammar {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn number(&mut self) -> String {
        match self.rng.random_range(0..12) {
            0 => "0".into(),
            1 => "-1".into(),
            2 => "2147483648".into(),
            3 => "9223372036854775807".into(),
            4 => "-9223372036854775808".into(),
            5 => "99999999999999999999999999999999999999".into(),
            6 => "1e308".into(),
            7 => "-0.000001".into(),
            8 => format!("{}", self.rng.random_range(0..100_000_000u64)),
            9 => "2023".into(),
            10 => format!(
                "{}.{}",
                self.rng.random_range(0..100),
                self.rng.random_range(0..100)
            ),
            _ => format!("{}", self.rng.random_range(-10..100)),
        }
    }

    fn literal(&mut self) -> String {
        match self.rng.random_range(0..9) {
            0 => "NULL".into(),
            1 => "'A01'".into(),
            2 => "''".into(),
            3 => "'教育局'".into(),
            4 => "TRUE".into(),
            5 => "DATE '2023-06-30'".into(),
            6 => "INTERVAL '1 day'".into(),
            _ => self.number(),
        }
    }

    fn column(&mut self, table: usize) -> String {
        let def = &TABLES[table];
        def.columns[self.rng.random_range(0..def.columns.len())]
            .name
            .to_string()
    }

    fn expr(&mut self, table: Option<usize>, depth: u32) -> String {
        let leaf = depth == 0 || self.rng.random_bool(0.3);
        if leaf {
            return match table {
                Some(t) if self.rng.random_bool(0.6) => self.column(t),
                _ => self.literal(),
            };
        }
        let d = depth - 1;
        match self.rng.random_range(0..12) {
            0..=2 => {
                let (name, arity) = *self.pick(SCALARS);
                let arity = if self.rng.random_bool(0.1) {
                    self.rng.random_range(0..5)
                } else {
                    arity
                };
                let args: Vec<String> = (0..arity).map(|_| self.expr(table, d)).collect();
                format!("{name}({})", args.join(", "))
            }
            3..=5 => {
                let op = *self.pick(OPERATORS);
                format!("{} {op} {}", self.expr(table, d), self.expr(table, d))
            }
            6 => format!(
                "CASE WHEN {} THEN {} ELSE {} END",
                self.expr(table, d),
                self.expr(table, d),
                self.expr(table, d)
            ),
            7 => {
                let ty = *self.pick(&["int", "bigint", "text", "decimal(5,2)", "date", "double"]);
                format!("CAST({} AS {ty})", self.expr(table, d))
            }
            8 => {
                let n = *self.pick(&[1usize, 3, 50, 2_000]);
                let items: Vec<String> = (0..n).map(|_| self.literal()).collect();
                format!("{} IN ({})", self.expr(table, d), items.join(", "))
            }
            9 => format!("({})", self.expr(table, d)),
            10 => format!("{} IS NULL", self.expr(table, d)),
            _ => format!(
                "(SELECT {} FROM {} LIMIT 1)",
                self.expr(None, d),
                self.pick(TABLES).name
            ),
        }
    }

    /// A column of `table` of type `ty`, if it has one.
    fn column_of(&mut self, table: Option<usize>, ty: Ty) -> Option<String> {
        let def = &TABLES[table?];
        let columns: Vec<&str> = def
            .columns
            .iter()
            .filter(|c| Ty::of(c.kind) == ty)
            .map(|c| c.name)
            .collect();
        (!columns.is_empty()).then(|| self.pick(&columns).to_string())
    }

    /// An expression of type `ty`, mostly well-typed (so that it plans and runs), and
    /// now and then anything at all.
    fn typed(&mut self, ty: Ty, table: Option<usize>, depth: u32) -> String {
        if self.rng.random_bool(0.08) {
            return self.expr(table, depth.min(2));
        }
        if depth == 0 || self.rng.random_bool(0.3) {
            if self.rng.random_bool(0.7) {
                if let Some(column) = self.column_of(table, ty) {
                    return column;
                }
            }
            return match ty {
                Ty::Num => self.number(),
                Ty::Text => (*self.pick(&["'A01'", "''", "'教育局'", "'x-y'", "NULL"])).into(),
                Ty::Bool => (*self.pick(&["TRUE", "FALSE", "NULL"])).into(),
            };
        }
        let d = depth - 1;
        let n = |g: &mut Self| g.typed(Ty::Num, table, d);
        let t = |g: &mut Self| g.typed(Ty::Text, table, d);
        let b = |g: &mut Self| g.typed(Ty::Bool, table, d);
        match ty {
            Ty::Num => match self.rng.random_range(0..12) {
                0 => format!("abs({})", n(self)),
                1 => format!("round({}, 2)", n(self)),
                2..=4 => {
                    let op = *self.pick(&["+", "-", "*", "/", "%"]);
                    format!("({} {op} {})", n(self), n(self))
                }
                5 => format!("length({})", t(self)),
                6 => format!(
                    "CASE WHEN {} THEN {} ELSE {} END",
                    b(self),
                    n(self),
                    n(self)
                ),
                7 => format!("coalesce({}, {})", n(self), n(self)),
                8 => {
                    let f = *self.pick(&["score_rate", "cut_rate", "yoy_pct", "power"]);
                    format!("{f}({}, {})", n(self), n(self))
                }
                9 => format!("cardinality(range(1, {}))", self.rng.random_range(0..1000)),
                10 => format!("CAST({} AS bigint)", t(self)),
                _ => "(SELECT max(score) FROM dept_scores)".into(),
            },
            Ty::Text => match self.rng.random_range(0..11) {
                0 => format!("upper({})", t(self)),
                1 => format!("concat({}, {})", t(self), t(self)),
                2 => format!("({} || {})", t(self), t(self)),
                3 => format!("substr({}, 1, 3)", t(self)),
                4 => format!("repeat({}, {})", t(self), self.rng.random_range(0..50)),
                5 => format!("lpad({}, {})", t(self), self.rng.random_range(0..50)),
                6 => format!("replace({}, 'A', 'B')", t(self)),
                7 => format!("perf_grade({})", n(self)),
                8 => format!("CAST({} AS text)", n(self)),
                9 => format!("split_part({}, '-', 1)", t(self)),
                _ => format!("md5({})", t(self)),
            },
            Ty::Bool => match self.rng.random_range(0..9) {
                0 | 1 => {
                    let op = *self.pick(&["=", "<>", "<", ">=", "IS DISTINCT FROM"]);
                    format!("{} {op} {}", n(self), n(self))
                }
                2 => format!("{} = {}", t(self), t(self)),
                3 => format!("{} LIKE 'A%'", t(self)),
                4 => format!("({} AND {})", b(self), b(self)),
                5 => format!("({} OR {})", b(self), b(self)),
                6 => format!("NOT {}", b(self)),
                7 => {
                    let items: Vec<String> = (0..self.rng.random_range(1..200))
                        .map(|_| self.number())
                        .collect();
                    format!("{} IN ({})", n(self), items.join(", "))
                }
                _ => format!("{} IS NULL", t(self)),
            },
        }
    }

    fn aggregate(&mut self, table: usize) -> String {
        let t = Some(table);
        match self.rng.random_range(0..8) {
            0 => "count(*)".into(),
            7 => {
                // Any aggregate, kpidb's too, on any argument.
                let agg = *self.pick(AGGREGATES);
                format!("{agg}({})", self.typed(Ty::Num, t, 1))
            }
            1 => format!("sum({})", self.typed(Ty::Num, t, 2)),
            2 => format!("avg({})", self.typed(Ty::Num, t, 2)),
            3 => format!("min({})", self.typed(Ty::Text, t, 2)),
            4 => format!("max({})", self.typed(Ty::Num, t, 2)),
            5 => format!("string_agg({}, ',')", self.typed(Ty::Text, t, 2)),
            _ => format!("count(DISTINCT {})", self.typed(Ty::Text, t, 1)),
        }
    }

    fn select(&mut self) -> String {
        let table = self.rng.random_range(0..TABLES.len());
        let name = TABLES[table].name;
        let t = Some(table);
        let (items, group) = match self.rng.random_range(0..3) {
            0 => {
                let column = self.column(table);
                let aggs: Vec<String> = (0..self.rng.random_range(1..3))
                    .map(|_| self.aggregate(table))
                    .collect();
                (format!("{column}, {}", aggs.join(", ")), Some(column))
            }
            1 => {
                let aggs: Vec<String> = (0..self.rng.random_range(1..4))
                    .map(|_| self.aggregate(table))
                    .collect();
                (aggs.join(", "), None)
            }
            _ => {
                let items: Vec<String> = (0..self.rng.random_range(1..4))
                    .map(|_| {
                        let ty = *self.pick(&[Ty::Num, Ty::Text, Ty::Bool]);
                        self.typed(ty, t, 3)
                    })
                    .collect();
                (items.join(", "), None)
            }
        };
        let mut sql = format!("SELECT {items} FROM {name}");
        if self.rng.random_bool(0.5) {
            sql += &format!(" WHERE {}", self.typed(Ty::Bool, t, 3));
        }
        if let Some(column) = group {
            sql += &format!(" GROUP BY {column}");
            if self.rng.random_bool(0.3) {
                sql += " ORDER BY 1";
            }
        } else if self.rng.random_bool(0.3) && !items.contains('(') {
            sql += " ORDER BY 1";
        }
        if self.rng.random_bool(0.5) {
            sql += &format!(" LIMIT {}", self.rng.random_range(0..100));
        }
        sql
    }

    fn statement(&mut self) -> String {
        match self.rng.random_range(0..21) {
            0..=9 => self.select(),
            10 => format!("SELECT {}", self.expr(None, 4)),
            19 => format!(
                "SELECT * FROM dept_ranking({}) WHERE {} LIMIT 10",
                self.rng.random_range(2019..2025),
                self.typed(Ty::Bool, None, 2)
            ),
            11 => {
                let f = *self.pick(TABLE_FUNCTIONS);
                let args: Vec<String> = (0..self.rng.random_range(0..3))
                    .map(|_| self.literal())
                    .collect();
                format!("SELECT * FROM {f}({}) LIMIT 5", args.join(", "))
            }
            12 => format!("{} UNION ALL {}", self.select(), self.select()),
            13 => {
                let n = self.rng.random_range(1..5_000);
                let table = self.rng.random_range(0..TABLES.len());
                let column = self.column(table);
                let terms: Vec<String> = (0..n)
                    .map(|_| format!("{column} = {}", self.literal()))
                    .collect();
                format!(
                    "SELECT count(*) FROM {} WHERE {}",
                    TABLES[table].name,
                    terms.join(" OR ")
                )
            }
            14 => {
                let n = self.rng.random_range(1..6_000);
                let op = *self.pick(OPERATORS);
                let terms: Vec<String> = (0..n).map(|_| self.literal()).collect();
                format!("SELECT {}", terms.join(&format!(" {op} ")))
            }
            15 => {
                let n = self.rng.random_range(1..80);
                format!(
                    "SELECT {}{}{}",
                    "(".repeat(n),
                    self.expr(None, 2),
                    ")".repeat(n)
                )
            }
            16 => {
                let table = self.rng.random_range(0..TABLES.len());
                let column = self.column(table);
                let n = self.number();
                let f = *self.pick(&["repeat", "lpad", "rpad", "array_repeat"]);
                format!(
                    "SELECT max(length(CAST({f}({column}, {n}) AS text))) FROM {}",
                    TABLES[table].name
                )
            }
            17 => format!("EXPLAIN {}", self.select()),
            18 => {
                let words = [
                    "SHOW",
                    "SET",
                    "BEGIN",
                    "COMMIT",
                    "DEALLOCATE",
                    "SELECT",
                    "FROM",
                    "(",
                    ")",
                    ",",
                    "'",
                    "$1",
                    ";",
                    "WITH",
                    "RECURSIVE",
                    "x",
                    "*",
                ];
                let n = self.rng.random_range(1..8);
                (0..n)
                    .map(|_| *self.pick(&words))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            _ => format!("WITH t AS ({}) SELECT count(*) FROM t", self.select()),
        }
    }
}

/// Reads what the server sends until it closes the connection or goes quiet.
fn drain(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn startup(user: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608i32.to_be_bytes());
    for s in ["user", user, "database", "kpidb"] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protocol_traffic_is_refused_and_the_server_goes_on() {
    let (_dir, served) = serve();
    let mut harness = Harness::new(served).await;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let pg = harness.served.pg.clone();
    let http = harness
        .served
        .http
        .trim_start_matches("http://")
        .to_string();
    let random = |rng: &mut ChaCha8Rng| -> Vec<u8> {
        let n = rng.random_range(1..2000);
        (0..n).map(|_| rng.random::<u8>()).collect()
    };
    let mut sessions: Vec<(String, Vec<u8>)> = Vec::new();
    for _ in 0..20 {
        // Random bytes instead of a startup message, and after one.
        sessions.push((pg.clone(), random(&mut rng)));
        let mut after = startup("fuzz");
        after.extend(random(&mut rng));
        sessions.push((pg.clone(), after));
        sessions.push((http.clone(), random(&mut rng)));
    }
    // Truncated messages: a query that says it is longer than what comes.
    let mut truncated = startup("fuzz");
    truncated.extend_from_slice(b"Q");
    truncated.extend_from_slice(&1000i32.to_be_bytes());
    truncated.extend_from_slice(b"SELECT 1");
    sessions.push((pg.clone(), truncated));
    sessions.push((pg.clone(), startup("fuzz")[..7].to_vec()));
    // Oversized: a message that claims a gigabyte, and lengths below the minimum.
    let mut oversized = startup("fuzz");
    oversized.extend_from_slice(b"Q");
    oversized.extend_from_slice(&0x3fff_fff0i32.to_be_bytes());
    oversized.extend(std::iter::repeat_n(b'x', 1 << 20));
    sessions.push((pg.clone(), oversized));
    let mut negative = startup("fuzz");
    negative.extend_from_slice(b"Q");
    negative.extend_from_slice(&(-5i32).to_be_bytes());
    sessions.push((pg.clone(), negative));
    sessions.push((pg.clone(), 0x7fff_ffffi32.to_be_bytes().to_vec()));
    // HTTP: a truncated request, a body shorter than its length, a huge header.
    sessions.push((
        http.clone(),
        b"POST /api/sql HTTP/1.1\r\nHost: x\r\nContent-Le".to_vec(),
    ));
    sessions.push((
        http.clone(),
        b"POST /api/sql HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nSELECT".to_vec(),
    ));
    let mut header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    header.extend(std::iter::repeat_n(b'a', 4 << 20));
    header.extend_from_slice(b"\r\n\r\n");
    sessions.push((http.clone(), header));
    sessions.push((
        http.clone(),
        b"POST /api/sql HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
    ));

    let count = sessions.len();
    for (addr, bytes) in sessions {
        let mut stream = TcpStream::connect(&addr).expect("connect");
        let _ = stream.write_all(&bytes);
        drain(&mut stream);
        drop(stream);
        harness.check_alive("(malformed traffic)");
    }
    // Both listeners still answer real clients.
    harness.both("SELECT count(*) FROM dept_scores").await;
    println!(
        "malformed: {count} sessions; peak RSS {} MiB",
        peak_rss(harness.served.pid()) >> 20
    );
}
