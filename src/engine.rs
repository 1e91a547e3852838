//! The Engine: the only place a DataFusion `SessionContext` is built. It registers
//! every warehouse table (pinned as the caller asks) and kpidb's functions, so the
//! CLI, REPL, servers, reports, tests and benches all see the same SQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::functions::FunctionOptions;
use crate::model::TABLES;
use crate::storage::{AsOf, UnavailableTable, Warehouse};
use crate::{Error, Result};

pub struct Engine {
    ctx: SessionContext,
    warehouse: Warehouse,
    as_of: AsOf,
    /// The Delta version each table is read at; `None` when the pin cannot be met.
    versions: BTreeMap<String, Option<u64>>,
}

impl Engine {
    /// Opens the warehouse with every table at its latest version.
    pub async fn open(warehouse: Warehouse) -> Result<Self> {
        Self::open_at(warehouse, AsOf::Latest).await
    }

    /// Opens the warehouse with every table pinned by `as_of`.
    pub async fn open_at(warehouse: Warehouse, as_of: AsOf) -> Result<Self> {
        Self::open_with(warehouse, as_of, FunctionOptions::default()).await
    }

    /// Opens the warehouse pinned by `as_of`, with the functions configured by `options`.
    pub async fn open_with(
        warehouse: Warehouse,
        as_of: AsOf,
        options: FunctionOptions,
    ) -> Result<Self> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(num_cpus());
        let ctx = SessionContext::new_with_config(config);
        crate::functions::register_all(&ctx, options);

        let mut versions = BTreeMap::new();
        for def in TABLES {
            match warehouse.load(def, &as_of).await? {
                Ok(table) => {
                    versions.insert(def.name.to_string(), table.version());
                    table
                        .update_datafusion_session(&ctx.state())
                        .map_err(Error::from)?;
                    let provider = table.table_provider().await?;
                    ctx.register_table(def.name, provider)?;
                }
                Err(reason) => {
                    versions.insert(def.name.to_string(), None);
                    ctx.register_table(
                        def.name,
                        Arc::new(UnavailableTable::new(def.schema(), reason)),
                    )?;
                }
            }
        }
        Ok(Engine {
            ctx,
            warehouse,
            as_of,
            versions,
        })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    pub fn as_of(&self) -> &AsOf {
        &self.as_of
    }

    /// The Delta version each table is read at (`None`: not readable at the pin).
    pub fn versions(&self) -> &BTreeMap<String, Option<u64>> {
        &self.versions
    }

    /// Splits `sql` into statements, so a script of several `;`-separated statements runs in order.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?;
        Ok(statements.into_iter().collect())
    }

    /// Plans one statement. The warehouse is written only by ingest, where every
    /// rule is checked, so SQL that would modify data (INSERT, COPY …) is refused.
    pub async fn run(&self, statement: Statement) -> Result<DataFrame> {
        let state = self.ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        SQLOptions::new()
            .with_allow_dml(false)
            .verify_plan(&plan)
            .map_err(|_| {
                Error::usage(
                    "the warehouse is changed only by `kpidb ingest`, where every rule is checked; \
                     SQL INSERT, UPDATE, DELETE and COPY are not allowed",
                )
            })?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// Runs one statement and returns its DataFrame.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        let mut statements = self.parse(sql)?;
        if statements.len() != 1 {
            return Err(Error::usage(format!(
                "expected exactly one SQL statement, found {}",
                statements.len()
            )));
        }
        self.run(statements.remove(0)).await
    }

    /// Runs one statement and collects its rows.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.sql(sql).await?.collect().await?)
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
