//! What a server lets a client run. The warehouse is changed only by `kpidb ingest`
//! and the server reads nothing but the warehouse, so only queries and a few harmless
//! session statements pass; everything else is refused before it is planned, which
//! leaves no trace. Planned queries are checked again by [`verify`].

use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Set, Statement};

/// How a server treats one parsed statement.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A query: plan it, [`verify`] the plan, run it.
    Query,
    /// A session statement the PostgreSQL front end answers itself (SET/SHOW of
    /// client settings, transactions, cursors over queries).
    Session,
    /// A harmless client setting kpidb has no use for: answered with this tag, ignored.
    Ignore(&'static str),
    /// Refused, with the message the client sees.
    Refuse(String),
}

/// Client settings the PostgreSQL front end keeps per connection.
const SESSION_SETTINGS: &[&str] = &[
    "statement_timeout",
    "datestyle",
    "intervalstyle",
    "bytea_output",
    "application_name",
    "extra_float_digits",
    "search_path",
];

/// Settings drivers and BI tools send that change nothing here.
const IGNORED_SETTINGS: &[&str] = &[
    "client_encoding",
    "client_min_messages",
    "standard_conforming_strings",
    "timezone",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "default_transaction_read_only",
    "default_transaction_isolation",
    "transaction_isolation",
    "transaction_read_only",
    "jit",
    "join_collapse_limit",
    "from_collapse_limit",
    "geqo",
    "work_mem",
    "max_parallel_workers_per_gather",
    "enable_nestloop",
    "enable_hashjoin",
    "enable_mergejoin",
    "enable_seqscan",
    "row_security",
    "search_path_warning",
    "cursor_tuple_fraction",
];

pub fn classify(statement: &Statement) -> Verdict {
    match statement {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ExplainTable { .. } => Verdict::Query,
        Statement::Explain { statement, .. } => match classify(statement) {
            Verdict::Query => Verdict::Query,
            _ => refuse(statement),
        },
        Statement::ShowVariable { .. } | Statement::ShowVariables { .. } => Verdict::Session,
        Statement::ShowStatus { .. } => Verdict::Session,
        // Savepoints change nothing where nothing can be written (SQLAlchemy uses them).
        Statement::Savepoint { .. } => Verdict::Ignore("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Verdict::Ignore("RELEASE"),
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Verdict::Ignore("ROLLBACK"),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => Verdict::Session,
        Statement::Declare { stmts } => {
            if stmts.iter().all(|d| d.for_query.is_some()) {
                Verdict::Session
            } else {
                refuse(statement)
            }
        }
        Statement::Fetch { .. } | Statement::Close { .. } => Verdict::Session,
        Statement::Discard { .. } => Verdict::Ignore("DISCARD ALL"),
        Statement::Deallocate { .. } => Verdict::Ignore("DEALLOCATE"),
        Statement::Set(set) => classify_set(set),
        _ => refuse(statement),
    }
}

/// [`classify`] for a statement of DataFusion's parser, which adds its own writes
/// (`CREATE EXTERNAL TABLE`, `COPY … TO`) to the SQL ones.
pub fn classify_df(statement: &DFStatement) -> Verdict {
    match statement {
        DFStatement::Statement(statement) => classify(statement),
        DFStatement::Explain(explain) => match classify_df(&explain.statement) {
            Verdict::Query => Verdict::Query,
            _ => refuse_df(&explain.statement),
        },
        other => refuse_df(other),
    }
}

fn refuse_df(statement: &DFStatement) -> Verdict {
    Verdict::Refuse(read_only(&kind_df(statement)))
}

/// [`kind`] for a statement of DataFusion's parser.
pub fn kind_df(statement: &DFStatement) -> String {
    match statement {
        DFStatement::Statement(statement) => kind(statement),
        other => leading_words(&other.to_string()),
    }
}

fn classify_set(set: &Set) -> Verdict {
    match set {
        Set::SingleAssignment {
            variable,
            hivevar: false,
            ..
        } => {
            let name = variable.to_string().to_ascii_lowercase();
            if SESSION_SETTINGS.contains(&name.as_str()) {
                Verdict::Session
            } else if IGNORED_SETTINGS.contains(&name.as_str()) {
                Verdict::Ignore("SET")
            } else {
                Verdict::Refuse(format!(
                    "SET {name} is not allowed on the kpidb server; a client may set {} \
                     (and harmless driver settings such as client_encoding)",
                    SESSION_SETTINGS.join(", ")
                ))
            }
        }
        Set::SetTimeZone { local: false, .. } => Verdict::Session,
        Set::SetTimeZone { local: true, .. }
        | Set::SetNames { .. }
        | Set::SetTransaction { .. }
        | Set::SetSessionParam(_) => Verdict::Ignore("SET"),
        other => Verdict::Refuse(format!(
            "{other} is not allowed on the kpidb server, which is read-only"
        )),
    }
}

fn refuse(statement: &Statement) -> Verdict {
    Verdict::Refuse(read_only(&kind(statement)))
}

fn read_only(kind: &str) -> String {
    format!(
        "kpidb serves the warehouse read-only: {kind} is not allowed (only SELECT, WITH, \
         EXPLAIN, SHOW and client SET statements run; the warehouse is changed only by \
         `kpidb ingest`)"
    )
}

/// The statement's leading keywords ("CREATE EXTERNAL TABLE", "COPY", "INSERT").
pub fn kind(statement: &Statement) -> String {
    leading_words(&statement.to_string())
}

fn leading_words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let take = match words.first().map(|w| w.to_ascii_uppercase()) {
        Some(w) if matches!(w.as_str(), "CREATE" | "DROP" | "ALTER") => {
            if words.get(1).is_some_and(|w| {
                matches!(
                    w.to_ascii_uppercase().as_str(),
                    "EXTERNAL" | "OR" | "TEMPORARY" | "TEMP" | "UNIQUE"
                )
            }) {
                3
            } else {
                2
            }
        }
        _ => 1,
    };
    words
        .iter()
        .take(take)
        .map(|w| w.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The second line of defence: a planned statement must be a pure query.
pub fn verify(plan: &LogicalPlan) -> Result<(), DataFusionError> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
        .map_err(|_| {
            DataFusionError::External(Box::new(ReadOnly(
                "kpidb serves the warehouse read-only: the statement would create, change or \
                 write something (only queries run; the warehouse is changed only by `kpidb ingest`)"
                    .to_string(),
            )))
        })
}

/// A refused statement, carried through DataFusion's error type.
#[derive(Debug)]
pub struct ReadOnly(pub String);

impl std::fmt::Display for ReadOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadOnly {}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn verdict(sql: &str) -> Verdict {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        classify(&statements[0])
    }

    #[test]
    fn queries_pass_and_writes_do_not() {
        assert_eq!(verdict("SELECT 1"), Verdict::Query);
        assert_eq!(
            verdict("WITH t AS (SELECT 1) SELECT * FROM t"),
            Verdict::Query
        );
        assert_eq!(verdict("EXPLAIN SELECT 1"), Verdict::Query);
        assert_eq!(verdict("SET application_name = 'x'"), Verdict::Session);
        assert_eq!(
            verdict("SET client_encoding = 'UTF8'"),
            Verdict::Ignore("SET")
        );
        assert_eq!(verdict("BEGIN"), Verdict::Session);
        for sql in [
            "CREATE TABLE t (a INT)",
            "CREATE VIEW v AS SELECT 1",
            "DROP TABLE dept_scores",
            "INSERT INTO dept_scores VALUES (1)",
            "DELETE FROM dept_scores",
            "COPY dept_scores TO '/tmp/x.csv'",
            "EXPLAIN INSERT INTO t VALUES (1)",
            "SET datafusion.execution.target_partitions = 1",
        ] {
            assert!(matches!(verdict(sql), Verdict::Refuse(_)), "{sql}");
        }
        match verdict("CREATE TABLE t (a INT)") {
            Verdict::Refuse(message) => assert!(message.contains("CREATE TABLE"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}
