//! Real client programs against a real `kpidb serve`: psql (\dt, \d), Python
//! (psycopg, SQLAlchemy, pandas), the PostgreSQL JDBC driver, and the startup SQL of
//! Metabase, Grafana, DBeaver and Superset replayed as fixtures.
//!
//! The clients are optional (`optional.rs`): `.ci/run` installs them and requires them;
//! elsewhere a missing client skips its test with a notice and a summary at the end.

use crate::common;

use std::path::Path;
use std::process::Command;

use crate::common::{sample_copy, Served, PASSWORD, SERVER_CONFIG, USER};
use crate::optional::{self, Client};

fn client_env(served: &Served, data: &Path) -> Vec<(String, String)> {
    let score = common::scalar(
        data,
        "SELECT total_score FROM dept_ranking(2023) WHERE dept_code = '101'",
    );
    let ranked = common::scalar(data, "SELECT count(*) FROM dept_ranking(2023)");
    vec![
        ("KPIDB_PG_HOST".into(), served.pg_host().into()),
        ("KPIDB_PG_PORT".into(), served.pg_port().to_string()),
        ("KPIDB_PG_USER".into(), USER.into()),
        ("KPIDB_PG_PASSWORD".into(), PASSWORD.into()),
        ("KPIDB_EXPECTED_SCORE".into(), score),
        ("KPIDB_EXPECTED_RANKED".into(), ranked),
    ]
}

fn run_checked(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

fn psql(served: &Served, sslmode: &str, command: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.arg(format!(
        "host={} port={} user={USER} dbname=kpidb sslmode={sslmode}",
        served.pg_host(),
        served.pg_port()
    ))
    .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", command])
    .env("PGPASSWORD", PASSWORD)
    .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

#[test]
fn psql_lists_and_describes_tables_and_queries() {
    if !optional::available(Client::Psql) {
        return;
    }
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let tables = run_checked(psql(&served, "disable", "\\dt"), "psql \\dt");
    for table in ["departments", "dept_scores", "indicators", "projects"] {
        assert!(tables.contains(table), "\\dt lacks {table}:\n{tables}");
    }
    let describe = run_checked(psql(&served, "disable", "\\d dept_scores"), "psql \\d");
    for column in ["year", "dept_code", "indicator_code", "score"] {
        assert!(describe.contains(column), "\\d lacks {column}:\n{describe}");
    }
    // \d+ adds each column's description (its Chinese header) and the key's index.
    let detailed = run_checked(psql(&served, "disable", "\\d+ dept_scores"), "psql \\d+");
    assert!(
        detailed
            .lines()
            .any(|l| l.starts_with(" dept_code") && l.trim_end().ends_with("部门编码")),
        "{detailed}"
    );
    assert!(
        detailed
            .contains("\"dept_scores_pkey\" PRIMARY KEY, btree (year, dept_code, indicator_code)")
            && !detailed.contains("ERROR"),
        "{detailed}"
    );
    // \df lists kpidb's functions with their arguments and results.
    let functions = run_checked(psql(&served, "disable", "\\df"), "psql \\df");
    for (name, shown) in [
        ("perf_grade", "score NUMERIC [, scheme TEXT]"),
        ("dept_ranking", "TABLE(rank bigint"),
        ("lowest_k", "agg"),
        ("prior_year", "window"),
    ] {
        assert!(
            functions
                .lines()
                .any(|l| l.contains(name) && l.contains(shown)),
            "\\df lacks {name} with {shown}:\n{functions}"
        );
    }
    assert!(
        !functions.contains("pg_catalog"),
        "PostgreSQL's own stay out of \\df: {functions}"
    );
    // \dt+ shows each table's description; \dn, \dv, \l and \conninfo answer.
    let described = run_checked(psql(&served, "disable", "\\dt+"), "psql \\dt+");
    assert!(
        described.lines().any(|l| l.contains("dept_scores")
            && l.contains("one score per department, indicator and year")),
        "{described}"
    );
    let schemas = run_checked(psql(&served, "disable", "\\dn"), "psql \\dn");
    assert!(schemas.contains("public"), "{schemas}");
    let views = run_checked(psql(&served, "disable", "\\dv"), "psql \\dv");
    assert!(views.contains("Did not find any relations"), "{views}");
    let databases = run_checked(psql(&served, "disable", "\\l"), "psql \\l");
    assert!(databases.contains("List of databases"), "{databases}");
    // The database is kpidb, as the README names it, in pg_database and
    // current_database() (DBeaver looks its database up there by name).
    assert!(
        databases
            .lines()
            .any(|l| l.trim_start().starts_with("kpidb ")),
        "{databases}"
    );
    let database = run_checked(
        psql(
            &served,
            "disable",
            "SELECT current_database() AS db, count(*) AS n FROM pg_catalog.pg_database WHERE datname = 'kpidb'",
        ),
        "current_database",
    );
    assert!(
        database
            .lines()
            .any(|l| l.contains("kpidb") && l.contains("| 1")),
        "{database}"
    );
    // pg_roles lists the owner and the configured user, who is the one connected.
    let roles = run_checked(
        psql(
            &served,
            "disable",
            "SELECT r.rolname, r.rolcanlogin, r.rolsuper, current_user, session_user \
             FROM pg_catalog.pg_roles r ORDER BY r.oid",
        ),
        "pg_roles",
    );
    assert!(
        roles
            .lines()
            .any(|l| l.contains("postgres") && l.contains("| f") && l.contains("| t")),
        "{roles}"
    );
    assert!(
        roles.lines().any(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            cells == [USER, "t", "f", USER, USER]
        }),
        "{roles}"
    );
    let info = run_checked(psql(&served, "disable", "\\conninfo"), "psql \\conninfo");
    assert!(info.contains(&format!("as user \"{USER}\"")), "{info}");
    // Columns carry their Chinese headers as descriptions, for BI tools.
    let headers = run_checked(
        psql(
            &served,
            "disable",
            "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid WHERE c.relname = 'dept_scores' ORDER BY a.attnum",
        ),
        "col_description",
    );
    assert!(
        headers
            .lines()
            .any(|l| l.contains("dept_code") && l.contains("部门编码")),
        "{headers}"
    );
    let count = run_checked(
        psql(
            &served,
            "disable",
            "SELECT count(*) AS n FROM dept_ranking(2023)",
        ),
        "psql query",
    );
    let expected = common::scalar(&data, "SELECT count(*) FROM dept_ranking(2023)");
    assert!(count.contains(&expected), "{count}");

    // information_schema as PostgreSQL shapes it: type names, positions from 1, and
    // the data model's keys (Metabase's field sync reads them there).
    let columns = run_checked(
        psql(
            &served,
            "disable",
            "SELECT c.column_name, c.ordinal_position, c.data_type, c.udt_name, k.constraint_name \
             FROM information_schema.columns c LEFT JOIN information_schema.key_column_usage k \
             ON k.table_name = c.table_name AND k.column_name = c.column_name AND k.constraint_name LIKE '%_pkey' \
             WHERE c.table_name = 'dept_scores' ORDER BY c.ordinal_position",
        ),
        "information_schema",
    );
    for (column, position, data_type, udt, key) in [
        ("year", 1, "integer", "int4", "dept_scores_pkey"),
        ("indicator_code", 3, "text", "text", "dept_scores_pkey"),
        ("score", 4, "numeric", "numeric", ""),
    ] {
        assert!(
            columns.lines().any(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                cells == [column, &position.to_string(), data_type, udt, key]
            }),
            "{column} {position} {data_type} {udt} {key}:\n{columns}"
        );
    }
    // `show timezone;`, as Metabase asks it, says the session's zone.
    let zone = run_checked(psql(&served, "disable", "show timezone;"), "show timezone");
    assert!(zone.lines().any(|l| l.trim() == "UTC"), "{zone}");
    // The server grants reading and nothing that writes (Metabase asks per table).
    let privileges = run_checked(
        psql(
            &served,
            "disable",
            "SELECT has_table_privilege('public.dept_scores', 'select') AS r, \
             has_table_privilege(current_user, 'public.dept_scores', 'delete') AS d, \
             has_schema_privilege('public', 'CREATE') AS c",
        ),
        "privileges",
    );
    assert!(
        privileges.lines().any(|l| l.replace(' ', "") == "t|f|f"),
        "{privileges}"
    );
    // Unaliased expressions are named as PostgreSQL names them: BI tools show these
    // names as headers, and ORDER BY may use them.
    let mut named = psql(
        &served,
        "disable",
        "SELECT count(*), perf_grade(91), 1 + 1, CAST(year AS text), CASE WHEN year > 2020 THEN 1 END, \
         (SELECT max(score) FROM dept_scores), upper('a') FROM dept_scores GROUP BY year \
         ORDER BY count DESC LIMIT 1",
    );
    named.arg("--csv");
    let out = run_checked(named, "psql expression names");
    assert_eq!(
        out.lines().next(),
        Some("count,perf_grade,?column?,year,case,max,upper"),
        "{out}"
    );
    // Names may repeat, as in PostgreSQL.
    let mut repeated = psql(
        &served,
        "disable",
        "SELECT count(*), count(*), current_database(), current_database(), 1, 1, \
         dept_code, dept_code FROM departments GROUP BY dept_code ORDER BY dept_code LIMIT 1",
    );
    repeated.arg("--csv");
    let out = run_checked(repeated, "psql repeated names");
    assert_eq!(
        out.lines().take(2).collect::<Vec<_>>(),
        [
            "count,count,current_database,current_database,?column?,?column?,dept_code,dept_code",
            "1,1,kpidb,kpidb,1,1,101,101"
        ],
        "{out}"
    );

    let mut wrong = psql(&served, "disable", "SELECT 1");
    wrong.env("PGPASSWORD", "wrong");
    let out = wrong.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "password authentication failed for user \"{USER}\""
        )),
        "{stderr}"
    );
}

#[test]
fn psql_over_tls() {
    if !optional::available(Client::Psql) {
        return;
    }
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, common::TLS_FLAGS);
    let out = run_checked(
        psql(
            &served,
            "require",
            "SELECT count(*) AS over_tls FROM departments",
        ),
        "psql sslmode=require",
    );
    assert!(out.contains("over_tls"), "{out}");
    let plain = psql(&served, "disable", "SELECT 1").output().unwrap();
    assert!(!plain.status.success(), "plaintext must be refused");
    assert!(String::from_utf8_lossy(&plain.stderr).contains("TLS"));
}

#[test]
fn python_psycopg_sqlalchemy_pandas() {
    if !optional::available(Client::PythonBi) {
        return;
    }
    let python = optional::python();
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let mut cmd = Command::new(&python);
    cmd.arg("tests/clients/check_python.py")
        .envs(client_env(&served, &data));
    let out = run_checked(cmd, "python clients");
    assert!(out.contains("all python checks passed"), "{out}");
}

/// Apache Superset from PyPI, set up from nothing and driven through its REST API
/// (tests/clients/check_superset.py): the database tested and added, tables listed and
/// described, datasets on a table and on `dept_ranking(2023)`, charts from both and
/// SQL Lab with and without a template, each answer held to kpidb's own.
#[test]
fn superset_datasets_charts_and_sql_lab() {
    if !optional::available(Client::Superset) {
        return;
    }
    let python = optional::superset_python().expect("probed");
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let mut cmd = Command::new(&python);
    cmd.arg("tests/clients/check_superset.py")
        .envs(client_env(&served, &data));
    let out = run_checked(cmd, "superset");
    assert!(out.contains("all superset checks passed"), "{out}");
}

/// SQLAlchemy's whole reflection (tests/clients/check_reflection.py) on each series
/// installed (KPIDB_PYTHON's and KPIDB_SQLALCHEMY_PYTHONS'), over psycopg2 and, from
/// 2.0 on, psycopg 3: keys, references and descriptions as the data model has them.
#[test]
fn sqlalchemy_reflection_on_every_series_and_driver() {
    if !optional::available(Client::PythonBi) || !optional::available(Client::SqlAlchemySeries) {
        return;
    }
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let mut pythons = vec![optional::python()];
    pythons.extend(optional::sqlalchemy_pythons());
    let mut series = Vec::new();
    for python in pythons {
        let version = run_checked(
            {
                let mut cmd = Command::new(&python);
                cmd.args(["-c", "import sqlalchemy; print(sqlalchemy.__version__)"]);
                cmd
            },
            "sqlalchemy version",
        );
        let version = version.trim().to_string();
        let mut drivers = vec!["psycopg2"];
        if !version.starts_with("1.") {
            drivers.push("psycopg");
        }
        for driver in drivers {
            let mut cmd = Command::new(&python);
            cmd.arg("tests/clients/check_reflection.py")
                .env("KPIDB_SA_DRIVER", driver)
                .envs(client_env(&served, &data));
            let out = run_checked(cmd, &format!("SQLAlchemy {version} + {driver}"));
            assert!(out.contains("all reflection checks passed"), "{out}");
        }
        series.push(version[..3].to_string());
    }
    for wanted in ["1.4", "2.0", "2.1"] {
        assert!(
            series.iter().any(|s| s == wanted),
            "SQLAlchemy {wanted} not among {series:?}"
        );
    }
}

#[test]
fn jdbc_metadata_and_prepared_statements() {
    if !optional::available(Client::Jdbc) {
        return;
    }
    let jar = optional::jdbc_jar();
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    let mut cmd = Command::new("java");
    cmd.args(["-cp", &jar, "tests/clients/JdbcCheck.java"])
        .envs(client_env(&served, &data));
    let out = run_checked(cmd, "JDBC");
    assert!(out.contains("all jdbc checks passed"), "{out}");
}

#[tokio::test]
async fn bi_tool_startup_sql_replays() {
    let (_dir, data) = sample_copy();
    let served = Served::start(&data, SERVER_CONFIG, &[]);
    for tool in ["metabase", "grafana", "dbeaver", "superset", "pgjdbc"] {
        let path = format!("tests/fixtures/bi/{tool}.sql");
        let text = std::fs::read_to_string(&path).unwrap();
        let statements: Vec<&str> = text
            .split("\n;\n")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert!(statements.len() >= 4, "{path}");
        let (client, connection) =
            tokio_postgres::connect(&served.pg_url(USER, PASSWORD), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        for sql in statements {
            client
                .simple_query(sql)
                .await
                .unwrap_or_else(|e| panic!("{tool}: {sql}\n→ {}", describe(&e)));
            let lower = sql.to_ascii_lowercase();
            if ["select", "with", "show"]
                .iter()
                .any(|k| lower.starts_with(k))
            {
                client
                    .query(sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{tool} (extended): {sql}\n→ {}", describe(&e)));
            }
        }
    }
}

fn describe(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| format!("{}: {}", d.code().code(), d.message()))
        .unwrap_or_else(|| e.to_string())
}
