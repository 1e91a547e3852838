//! The optional clients: programs the tests drive but kpidb does not build (psql, a
//! Python with the BI packages or with DuckDB, Java with the PostgreSQL JDBC driver).
//!
//! Under `.ci/run` (KPIDB_REQUIRE_CLIENTS=1) a missing client fails its tests. Elsewhere
//! each test that needs one is skipped with a notice written straight to the terminal
//! (libtest does not hold it back), and `zz_skipped_optional_clients`, which sorts after
//! every other test, repeats them all as one summary.

use std::io::Write;
use std::path::Path;
use std::process::Command;

#[derive(Clone, Copy, Debug)]
pub enum Client {
    Psql,
    PythonBi,
    /// Pythons with other SQLAlchemy series than KPIDB_PYTHON's, for the reflection
    /// matrix: `KPIDB_SQLALCHEMY_PYTHONS`, separated by spaces.
    SqlAlchemySeries,
    PythonDuckdb,
    Jdbc,
    /// A Python with Apache Superset installed (tests/clients/requirements-superset.txt):
    /// `KPIDB_SUPERSET_PYTHON`.
    Superset,
    /// An S3-compatible server to run on loopback: moto's, in KPIDB_PYTHON.
    S3Server,
}

impl Client {
    pub const ALL: [Client; 7] = [
        Client::Psql,
        Client::PythonBi,
        Client::SqlAlchemySeries,
        Client::PythonDuckdb,
        Client::Jdbc,
        Client::Superset,
        Client::S3Server,
    ];

    /// The tests that need this client.
    pub fn tests(self) -> &'static [&'static str] {
        match self {
            Client::Psql => &[
                "clients::psql_lists_and_describes_tables_and_queries",
                "clients::psql_over_tls",
            ],
            Client::PythonBi => &[
                "clients::python_psycopg_sqlalchemy_pandas",
                "clients::sqlalchemy_reflection_on_every_series_and_driver",
            ],
            Client::SqlAlchemySeries => {
                &["clients::sqlalchemy_reflection_on_every_series_and_driver"]
            }
            Client::PythonDuckdb => {
                &["compare::every_engine_agrees_on_every_question_at_city_size"]
            }
            Client::Jdbc => &["clients::jdbc_metadata_and_prepared_statements"],
            Client::Superset => &["clients::superset_datasets_charts_and_sql_lab"],
            Client::S3Server => &[
                "s3::a_warehouse_in_a_bucket_answers_like_a_local_one",
                "s3::store_failures_are_named_and_lose_nothing",
                "s3::wrong_credentials_are_named",
                "s3::serve_reads_only_the_warehouse_prefix",
                "s3::a_cluster_with_no_local_copy_answers_like_local",
            ],
        }
    }

    /// `Err` names what is missing and how to get it.
    pub fn probe(self) -> Result<(), String> {
        match self {
            Client::Psql => runs("psql", &["--version"])
                .map_err(|e| format!("psql does not run ({e}); install postgresql-client")),
            Client::PythonBi => runs(
                &python(),
                &["-c", "import psycopg, psycopg2, sqlalchemy, pandas"],
            )
            .map_err(|e| {
                format!(
                    "{} cannot import psycopg, psycopg2, sqlalchemy and pandas ({e}); \
                     install tests/clients/requirements.txt and set KPIDB_PYTHON",
                    python()
                )
            }),
            Client::SqlAlchemySeries => {
                let pythons = sqlalchemy_pythons();
                if pythons.is_empty() {
                    return Err(
                        "KPIDB_SQLALCHEMY_PYTHONS names no Python; make a virtualenv \
                                from each of tests/clients/requirements-sqlalchemy14.txt and \
                                requirements-sqlalchemy21.txt and name their pythons there"
                            .into(),
                    );
                }
                for python in pythons {
                    runs(&python, &["-c", "import sqlalchemy, psycopg2"]).map_err(|e| {
                        format!("{python} cannot import sqlalchemy and psycopg2 ({e})")
                    })?;
                }
                Ok(())
            }
            Client::PythonDuckdb => runs(&python(), &["-c", "import duckdb"]).map_err(|e| {
                format!(
                    "{} cannot import duckdb ({e}); install benches/compare/requirements.txt \
                     and set KPIDB_PYTHON",
                    python()
                )
            }),
            Client::Jdbc => {
                runs("java", &["-version"]).map_err(|e| {
                    format!("java does not run ({e}); install default-jre-headless")
                })?;
                let jar = jdbc_jar();
                if Path::new(&jar).exists() {
                    Ok(())
                } else {
                    Err(format!(
                        "no PostgreSQL JDBC driver at {jar}; install libpostgresql-jdbc-java \
                         or set KPIDB_JDBC_JAR"
                    ))
                }
            }
            Client::S3Server => {
                runs(&python(), &["-c", "import moto.server, flask"]).map_err(|e| {
                    format!(
                    "{} cannot import moto's server ({e}); install tests/clients/requirements.txt \
                     (moto[server]) and set KPIDB_PYTHON",
                    python()
                )
                })
            }
            Client::Superset => match superset_python() {
                None => Err(
                    "KPIDB_SUPERSET_PYTHON names no Python; make a virtualenv from \
                             tests/clients/requirements-superset.txt and name its python there"
                        .into(),
                ),
                Some(python) => runs(&python, &["-c", "import superset, psycopg2, requests"])
                    .map_err(|e| {
                        format!("{python} cannot import superset, psycopg2 and requests ({e})")
                    }),
            },
        }
    }
}

/// The Python the client tests run: `KPIDB_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("KPIDB_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The Pythons of `KPIDB_SQLALCHEMY_PYTHONS`.
pub fn sqlalchemy_pythons() -> Vec<String> {
    std::env::var("KPIDB_SQLALCHEMY_PYTHONS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The Python of `KPIDB_SUPERSET_PYTHON`, if it names one.
pub fn superset_python() -> Option<String> {
    std::env::var("KPIDB_SUPERSET_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
}

pub fn jdbc_jar() -> String {
    std::env::var("KPIDB_JDBC_JAR").unwrap_or_else(|_| "/usr/share/java/postgresql.jar".into())
}

fn required() -> bool {
    std::env::var("KPIDB_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

fn runs(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("exit {}", out.status)),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether a test needing `client` can go on. A missing client panics under
/// KPIDB_REQUIRE_CLIENTS=1; elsewhere it is reported and the test returns early.
pub fn available(client: Client) -> bool {
    match client.probe() {
        Ok(()) => true,
        Err(why) => {
            assert!(!required(), "required by KPIDB_REQUIRE_CLIENTS=1: {why}");
            let _ = writeln!(std::io::stderr(), "SKIPPED ({client:?}): {why}");
            false
        }
    }
}

/// The summary of everything skipped for want of a client; empty when none was.
pub fn summary() -> String {
    let mut text = String::new();
    for client in Client::ALL {
        if let Err(why) = client.probe() {
            for test in client.tests() {
                text.push_str(&format!("  {test}\n"));
            }
            text.push_str(&format!("    because {why}\n"));
        }
    }
    text
}
