//! The Engine: the only place a DataFusion `SessionContext` is built. It registers
//! every warehouse table (pinned as the caller asks) and kpidb's functions, so the
//! CLI, REPL, servers, reports, tests and benches all see the same SQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use deltalake::DeltaTable;

use crate::functions::FunctionOptions;
use crate::model::{TableDef, TABLES};
use crate::plans::{Parsed, PlanCache};
use crate::rollup::Rollups;
use crate::storage::{
    AsOf, BucketRegistry, DeltaSnapshotTable, LiveTable, Resident, Snapshot, UnavailableTable,
    Warehouse,
};
use crate::{Error, Result};

/// How the layers above change where an [`Engine`]'s plans run, without the Engine
/// knowing them: given the session state the Engine built (tables, functions, rollups),
/// the state to run with instead.
#[async_trait::async_trait]
pub trait SessionHook: Send + Sync + std::fmt::Debug {
    async fn attach(&self, state: SessionState, options: FunctionOptions) -> Result<SessionState>;
}

pub struct Engine {
    ctx: SessionContext,
    warehouse: Warehouse,
    as_of: AsOf,
    /// Every warehouse table as registered in the session, by name.
    tables: BTreeMap<String, Arc<LiveTable>>,
    /// The rollups the table functions read while they are fresh.
    rollups: Arc<Rollups>,
    options: FunctionOptions,
    /// The optimised plans of the queries run, while nothing they read has changed.
    plans: PlanCache,
    /// The statements of texts parsed before.
    parsed: Parsed,
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
        // Sources and cluster plans read buckets with the warehouse's settings.
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::new(BucketRegistry::new(warehouse.storage().clone())))
            .build_arc()?;
        let state = SessionStateBuilder::new()
            .with_config(Self::session_config()?)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        Self::open_in(warehouse, as_of, options, state).await
    }

    /// Opens the warehouse pinned by `as_of` with the table functions reading only
    /// the raw tables (what the rollups themselves are built from).
    pub async fn open_raw(warehouse: Warehouse, as_of: AsOf) -> Result<Self> {
        let options = FunctionOptions {
            rollups: false,
            ..FunctionOptions::default()
        };
        Self::open_with(warehouse, as_of, options).await
    }

    /// The session settings every kpidb session starts from: DataFusion's defaults,
    /// then any `DATAFUSION_*` environment variable (as `datafusion-cli` reads them, e.g.
    /// `DATAFUSION_EXECUTION_TARGET_PARTITIONS=4`), with the information schema on and
    /// small scans' files kept in memory ([`Resident`], its default budget).
    pub fn session_config() -> Result<SessionConfig> {
        Ok(datafusion_config()?
            .with_information_schema(true)
            .with_extension(Arc::new(Resident::default())))
    }

    /// Opens the warehouse into a session state the caller built (a server adds
    /// limits and leaves out file access); kpidb's tables and functions are added.
    pub async fn open_in(
        warehouse: Warehouse,
        as_of: AsOf,
        options: FunctionOptions,
        state: SessionState,
    ) -> Result<Self> {
        let state = SessionStateBuilder::new_from_existing(state)
            .with_physical_optimizer_rule(Arc::new(crate::functions::UnreachedLimits))
            .with_physical_optimizer_rule(Arc::new(crate::decimal::ExactDecimalProducts))
            .with_physical_optimizer_rule(Arc::new(crate::runs::AggregateByRuns))
            .with_query_planner(Arc::new(crate::sizing::SizedPlanner))
            .build();
        let ctx = SessionContext::new_with_state(state);
        // A warehouse in a bucket: plans that read its data files directly (on a
        // cluster) find the bucket, unless the caller registered a store for it already
        // (a server registers one confined to the warehouse).
        if let Some((url, store, _)) = warehouse.location().bucket() {
            let bucket = url::Url::parse(&format!("{}://{}", url.scheme(), url.authority()))
                .map_err(|e| Error::usage(format!("{url}: {e}")))?;
            if ctx
                .runtime_env()
                .object_store_registry
                .get_store(&bucket)
                .is_err()
            {
                ctx.register_object_store(&bucket, Arc::clone(store));
            }
        }
        if as_of == AsOf::Latest {
            match warehouse.add_later_tables().await {
                Ok(added) if !added.is_empty() => log::info!(
                    "{}: added the table(s) {} this warehouse was made without",
                    warehouse.location(),
                    added.join(", ")
                ),
                Ok(_) => {}
                // Read as empty until the first ingest into each.
                Err(e) => log::warn!("could not add the later tables: {e}"),
            }
        }
        // The tables' logs are read concurrently: most of a short command's start-up.
        let snapshots = futures::future::try_join_all(
            TABLES
                .iter()
                .map(|def| Self::snapshot(&ctx, &warehouse, def, &as_of)),
        )
        .await?;
        let mut tables = BTreeMap::new();
        for (def, snapshot) in TABLES.iter().zip(snapshots) {
            let table = Arc::new(LiveTable::new(snapshot));
            ctx.register_table(def.name, table.clone())?;
            tables.insert(def.name.to_string(), table);
        }
        for source in warehouse.sources() {
            let table = source.table(&ctx, warehouse.storage()).await?;
            ctx.register_table(source.name.as_str(), table)?;
        }
        let rollups = Arc::new(Rollups::open(&ctx, &warehouse, &tables, options.rollups).await?);
        crate::functions::register_all(&ctx, options, Some(Arc::clone(&rollups)));
        // Plain SQL aggregates over dept_scores read a fresh rollup too.
        ctx.add_optimizer_rule(Arc::new(crate::rollup::ReadRollups::new(Arc::clone(
            &rollups,
        ))));
        Ok(Engine {
            ctx,
            warehouse,
            as_of,
            tables,
            rollups,
            options,
            plans: PlanCache::new(),
            parsed: Parsed::default(),
        })
    }

    async fn snapshot(
        ctx: &SessionContext,
        warehouse: &Warehouse,
        def: &TableDef,
        as_of: &AsOf,
    ) -> Result<Snapshot> {
        if !warehouse.has(def) {
            // A later table this warehouse was made without: empty.
            let empty = datafusion::datasource::MemTable::try_new(def.schema(), vec![vec![]])?;
            return Ok(Snapshot {
                version: None,
                provider: Arc::new(empty),
            });
        }
        Ok(match warehouse.load(def, as_of).await? {
            Ok(table) => Self::readable(ctx, table).await?,
            Err(reason) => Snapshot {
                version: None,
                provider: Arc::new(UnavailableTable::new(def.schema(), reason)),
            },
        })
    }

    async fn readable(ctx: &SessionContext, table: DeltaTable) -> Result<Snapshot> {
        table
            .update_datafusion_session(&ctx.state())
            .map_err(Error::from)?;
        Ok(Snapshot {
            version: table.version(),
            provider: Arc::new(DeltaSnapshotTable::open(&table).await?),
        })
    }

    /// For an engine reading the latest versions: picks up the commits made since it
    /// opened (or last refreshed), table by table. Returns the tables that changed,
    /// with their new versions. A pinned engine never changes.
    pub async fn refresh(&self) -> Result<Vec<(String, u64)>> {
        if self.as_of != AsOf::Latest {
            return Ok(Vec::new());
        }
        let mut changed = Vec::new();
        for def in TABLES {
            let table = &self.tables[def.name];
            if !self.warehouse.has(def) {
                continue;
            }
            // One read of the log per table: the table just opened is the new snapshot.
            let latest = self.warehouse.latest(def).await?;
            if let Some(version) = latest.version() {
                if Some(version) != table.version() {
                    table.replace(Self::readable(&self.ctx, latest).await?);
                    changed.push((def.name.to_string(), version));
                }
            }
        }
        self.rollups.refresh(&self.ctx).await?;
        Ok(changed)
    }

    /// Runs this engine's plans the way `hook` says (a Ballista cluster plugs in here);
    /// planning stays here, so the answers are those of this engine, pins and rollups
    /// included.
    pub async fn with_hook(mut self, hook: &dyn SessionHook) -> Result<Self> {
        let state = hook.attach(self.ctx.state(), self.options).await?;
        self.ctx = SessionContext::new_with_state(state);
        self.plans = PlanCache::logical_only();
        Ok(self)
    }

    /// The rollups, and which of them the table functions read now.
    pub fn rollups(&self) -> &Rollups {
        &self.rollups
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

    /// The Delta version each table is read at now (`None`: not readable at the pin).
    pub fn versions(&self) -> BTreeMap<String, Option<u64>> {
        self.tables
            .iter()
            .map(|(name, table)| (name.clone(), table.version()))
            .collect()
    }

    /// Splits `sql` into statements, so a script of several `;`-separated statements runs in order.
    /// A text parsed before is not parsed again ([`Parsed`]).
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        self.parsed.get_or_parse(sql, |sql| {
            crate::shape::parse(sql, &GenericDialect {}).map_err(|e| match e.find_root() {
                DataFusionError::External(inner) if inner.is::<crate::shape::TooComplex>() => {
                    Error::usage(inner.to_string())
                }
                _ => Error::from(e),
            })
        })
    }

    /// Plans one statement. The warehouse is written only by ingest, where every
    /// rule is checked, so SQL that would modify data (INSERT, COPY …) is refused.
    /// A query run before is not planned again while nothing it reads has changed
    /// ([`PlanCache`]).
    pub async fn run(&self, statement: Statement) -> Result<DataFrame> {
        let state = self.ctx.state();
        let (lookup, kept) = self
            .plans
            .lookup(&state, &statement, self.generation())
            .await;
        if let Some(plan) = kept {
            return Ok(crate::plans::frame(state, plan));
        }
        let relations = relations_written(&statement);
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| name_missing_table(e, &relations))?;
        SQLOptions::new()
            .with_allow_dml(false)
            .verify_plan(&plan)
            .map_err(|_| {
                Error::usage(
                    "the warehouse is changed only by `kpidb ingest`, where every rule is checked; \
                     SQL INSERT, UPDATE, DELETE and COPY are not allowed",
                )
            })?;
        if !crate::plans::is_query(&plan) {
            return Ok(self.ctx.execute_logical_plan(plan).await?);
        }
        let optimized = state.optimize(&plan)?;
        let optimized = self
            .plans
            .keep(lookup, &plan, optimized, &self.generation());
        Ok(crate::plans::frame(state, optimized))
    }

    /// What decides a kept plan besides its SQL, settings and relations: the version
    /// of every warehouse table and of every rollup the functions read.
    pub fn generation(&self) -> Vec<Option<u64>> {
        let mut generation: Vec<Option<u64>> =
            self.tables.values().map(|table| table.version()).collect();
        let in_use = self.rollups.in_use();
        generation.extend(crate::rollup::ROLLUPS.iter().map(|def| {
            in_use
                .iter()
                .find(|(name, ..)| *name == def.name)
                .map(|(_, v, _)| *v)
        }));
        generation
    }

    /// The optimised plans kept for reuse.
    pub fn plans(&self) -> &PlanCache {
        &self.plans
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

/// The relations a statement names, as written, each with the name DataFusion
/// resolves it by (its last part, folded to lower case unless quoted): what
/// [`name_missing_table`] needs, gathered before planning consumes the statement.
pub fn relations_written(statement: &Statement) -> Vec<(String, String)> {
    use datafusion::sql::sqlparser::ast::visit_relations;
    let inner = match statement {
        Statement::Statement(s) => Some(s.as_ref()),
        Statement::Explain(explain) => match explain.statement.as_ref() {
            Statement::Statement(s) => Some(s.as_ref()),
            _ => None,
        },
        _ => None,
    };
    let mut names = Vec::new();
    if let Some(inner) = inner {
        let _ = visit_relations(inner, |name| {
            if let Some(ident) = name.0.last().and_then(|part| part.as_ident()) {
                let folded = match ident.quote_style {
                    Some(_) => ident.value.clone(),
                    None => ident.value.to_lowercase(),
                };
                names.push((folded, name.to_string()));
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    names
}

/// DataFusion's `table 'datafusion.public.dept_score' not found`, told as the user
/// wrote the name (`relations` from [`relations_written`]), with the closest table of
/// the warehouse: `table 'dept_score' not found; did you mean dept_scores?`. Other
/// errors pass.
pub fn name_missing_table(
    error: DataFusionError,
    relations: &[(String, String)],
) -> DataFusionError {
    let DataFusionError::Plan(message) = error.find_root() else {
        return error;
    };
    if let Some(function) = message
        .strip_prefix("table function '")
        .and_then(|m| m.strip_suffix("' not found"))
    {
        let names = crate::functions::YEAR_ARGUMENTS
            .iter()
            .map(|(name, _, _)| *name);
        let hint = match closest(function, names.clone()) {
            Some(name) => format!("did you mean {name}?"),
            None => format!("kpidb's are {}", names.collect::<Vec<_>>().join(", ")),
        };
        return DataFusionError::Plan(format!("table function '{function}' not found; {hint}"));
    }
    let Some(missing) = message
        .strip_prefix("table '")
        .and_then(|m| m.strip_suffix("' not found"))
    else {
        return error;
    };
    let bare = missing.rsplit('.').next().unwrap_or(missing);
    let written = relations
        .iter()
        .find(|(folded, _)| folded == bare)
        .map(|(_, written)| written.clone());
    let written = written.unwrap_or_else(|| bare.to_string());
    let hint = match closest(bare, TABLES.iter().map(|t| t.name)) {
        Some(name) => format!("; did you mean {name}?"),
        None => format!(
            "; the tables are {}",
            TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        ),
    };
    DataFusionError::Plan(format!("table '{written}' not found{hint}"))
}

/// The name of `names` nearest to `written` (a few letters off at most).
fn closest<'a>(written: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|name| (strsim::levenshtein(&written.to_lowercase(), name), name))
        .filter(|(distance, name)| *distance <= 3.max(name.len() / 3))
        .min()
        .map(|(_, name)| name)
}

/// DataFusion's default settings with its `DATAFUSION_*` environment variables applied;
/// one that is not a valid setting is the user's error, named.
pub(crate) fn datafusion_config() -> Result<SessionConfig> {
    SessionConfig::from_env().map_err(|e| {
        Error::usage(format!(
            "a DATAFUSION_* environment variable is not a valid setting: {e}"
        ))
    })
}
