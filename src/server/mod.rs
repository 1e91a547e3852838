//! `kpidb serve`: the warehouse over the PostgreSQL wire protocol ([`pg`]) and an
//! HTTP API ([`http`]), for BI tools and scripts. Both read the same live tables
//! through the same [`Engine`], so they answer exactly as `kpidb query` does.
//!
//! - [`config`]: `[server]` settings, checked at start-up (failing closed).
//! - [`auth`]: users (SCRAM-SHA-256, HTTP Basic) and bearer tokens.
//! - [`policy`]: the read-only statement policy both protocols apply.
//! - [`limits`]: memory pool, query deadline and cancel, warehouse-only file access.
//! - [`budget`]: the memory ceiling no SQL can pass: expanding functions claim their
//!   output first, and the pool refuses at the ceiling.
//! - [`bound`]: bound parameters as table-function arguments (`dept_ranking($1)`).
//! - [`errors`]: one mapping from failures to HTTP statuses and SQLSTATEs.
//! - [`metrics`]: Prometheus metrics.
//! - [`reports`]: the report endpoints; the scheduler itself is [`crate::report::schedule`].
//! - [`tls`]: certificate loading.
//! - [`current_setting`], [`is_visible`], [`to_regtype`], [`to_regclass`], [`format`], [`privileges`], [`version`]: PostgreSQL functions that
//!   drivers and BI tools call on connect; [`pg_proc`]: kpidb's functions in pg_catalog
//!   (psql's `\df`); [`database`]: the database's name, `kpidb`; [`roles`]: pg_roles and the connected user; [`information_schema`]: its `columns` as PostgreSQL shapes them; [`descriptions`]: tables' and columns' descriptions (`\d+`);
//!   [`pg_keys`]: the data model's primary and foreign keys (pg_constraint, pg_index)
//!   and descriptions (pg_description); [`overlay`]: pg_catalog with those tables
//!   replaced; [`oids`]: the oids pg_catalog gives the warehouse's tables;
//!   [`json_build_object`]; [`like_escape`]: LIKE patterns with other escapes; [`compat`]: rewrites for
//!   their catalog SQL; [`output_names`]: result columns named as PostgreSQL names them.

pub mod auth;
pub mod bound;
pub mod budget;
pub mod compat;
pub mod config;
pub mod current_setting;
pub mod database;
pub mod descriptions;
pub mod errors;
pub mod format;
pub mod http;
pub mod information_schema;
pub mod is_visible;
pub mod json_build_object;
pub mod like_escape;
pub mod limits;
pub mod metrics;
pub mod oids;
pub mod output_names;
pub mod overlay;
pub mod pg;
pub mod pg_keys;
pub mod pg_proc;
pub mod policy;
pub mod privileges;
pub mod reports;
pub mod roles;
pub mod tls;
pub mod to_regclass;
pub mod to_regtype;
pub mod version;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;

use crate::engine::SessionHook;
use crate::functions::FunctionOptions;
use crate::plans::PlanCache;
use crate::report::{Clock, Reports, Scheduler};
use crate::storage::{AsOf, Resident, Warehouse};
use crate::{Engine, Error, Result};

pub use config::{Overrides, ServerConfig, Settings};

/// What every connection and request shares.
pub struct Shared {
    pub engine: Engine,
    /// The engine's session with pg_catalog added; sessions are cut from it.
    pub base: SessionContext,
    pub settings: Settings,
    pub accounts: Arc<auth::Accounts>,
    pub metrics: Arc<metrics::Metrics>,
    /// The memory ceiling every query's expressions and long statements claim from.
    pub budget: Arc<budget::Budget>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The reports of reports.toml, run on their schedules while the server runs.
    pub reports: Option<Arc<Scheduler>>,
    /// What a report run needs besides the warehouse: the function settings and
    /// where the queries run.
    pub options: crate::functions::FunctionOptions,
    pub cluster: Option<Arc<dyn SessionHook>>,
    /// The optimised plans of the queries clients sent, shared by every session
    /// ([`crate::plans`]); a session's own settings or views are part of what a plan
    /// is kept for.
    pub plans: PlanCache,
}

impl Shared {
    /// A session of its own for one connection or request, under `limits`.
    pub fn session(&self, limits: limits::Limits) -> SessionContext {
        let state = SessionStateBuilder::new_from_existing(self.base.state())
            .with_query_planner(Arc::new(limits::LimitedPlanner::new(limits)))
            .build();
        SessionContext::new_with_state(state)
    }
}

/// A started server: where it listens. Dropping it does not stop it; the tasks run
/// until the process ends.
pub struct Running {
    pub pg: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub shared: Arc<Shared>,
}

/// Opens the warehouse, binds the listeners and starts serving in the background.
pub async fn start(
    warehouse: Warehouse,
    options: FunctionOptions,
    settings: Settings,
    reports: Option<Reports>,
) -> Result<Running> {
    // TLS first: a bad certificate must stop the start before anything listens.
    let tls = match &settings.tls {
        Some((cert, key)) => Some(tls::load(cert, key)?),
        None => None,
    };
    let budget = budget::Budget::new(settings.memory_limit);
    let state = SessionStateBuilder::new()
        // Files kept in memory count against memory_limit: a sixteenth of it at most.
        .with_config(
            Engine::session_config()?.with_extension(Arc::new(Resident::new(
                (settings.memory_limit / 16).min(Resident::DEFAULT_BUDGET),
            ))),
        )
        .with_runtime_env(limits::runtime(&budget, settings.memory_limit, &warehouse)?)
        .with_default_features()
        // No CREATE EXTERNAL TABLE formats: the server reads only the warehouse.
        .with_table_factories(HashMap::new())
        .with_physical_optimizer_rule(Arc::new(limits::YieldingJoins))
        .build();
    let scheduled_warehouse = warehouse.clone();
    let engine = Engine::open_in(warehouse, AsOf::Latest, options, state).await?;
    let engine = match &settings.cluster {
        Some(url) => engine.with_hook(url).await?,
        None => engine,
    };
    let cluster = settings
        .cluster
        .clone()
        .map(|url| Arc::new(url) as Arc<dyn SessionHook>);
    let base = engine.context().clone();
    setup_pg_catalog(&base, "datafusion", EmptyContextProvider).map_err(|e| Error::from(*e))?;
    pg_proc::install(&base, "datafusion").await?;
    {
        let state = base.state_ref();
        let mut state = state.write();
        datafusion_postgres::datafusion_pg_functions::register_all(&mut *state);
    }
    let oids = oids::Oids::read(&base).await?;
    descriptions::install(&base, &oids);
    pg_keys::install(&base, "datafusion", &oids).await?;
    current_setting::install_settings(&base, "datafusion").await?;
    database::install(&base, "datafusion").await?;
    let users: Vec<String> = settings.users.iter().map(|u| u.name.clone()).collect();
    roles::install(&base, "datafusion", &users).await?;
    to_regclass::install(&base).await?;
    information_schema::install(&base, "datafusion").await?;
    base.register_udf(format::udf());
    for udf in privileges::udfs() {
        base.register_udf(udf);
    }
    base.register_udf(current_setting::udf());
    base.register_udf(version::udf());
    base.register_udf(to_regtype::udf());
    base.register_udf(like_escape::udf());
    base.register_udf(json_build_object::udf());
    for udf in is_visible::udfs() {
        base.register_udf(udf);
    }
    budget::install(&base, &budget);
    let metrics = metrics::Metrics::new();
    for (table, version) in engine.versions() {
        metrics.table_version(&table, version);
    }
    let accounts = auth::Accounts::new(&settings);
    let pg_listener = match settings.pg_listen {
        Some(addr) => Some(bind(addr, "pg_listen").await?),
        None => None,
    };
    let http_listener = match settings.http_listen {
        Some(addr) => Some(bind(addr, "http_listen").await?),
        None => None,
    };
    let shared = Arc::new(Shared {
        engine,
        base,
        settings,
        accounts,
        metrics,
        budget,
        tls,
        reports: reports.map(|r| Scheduler::new(r, Clock::system())),
        options,
        cluster: cluster.clone(),
        plans: PlanCache::new(),
    });

    let mut running = Running {
        pg: None,
        http: None,
        shared: shared.clone(),
    };
    if let Some(listener) = pg_listener {
        running.pg = Some(
            listener
                .local_addr()
                .map_err(|e| Error::io("pg_listen", e))?,
        );
        tokio::spawn(pg::run(listener, shared.clone()));
    }
    if let Some(listener) = http_listener {
        running.http = Some(
            listener
                .local_addr()
                .map_err(|e| Error::io("http_listen", e))?,
        );
        let app = http::router(shared.clone());
        match shared.tls.clone() {
            Some(config) => {
                let mut config = (*config).clone();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let listener = listener
                    .into_std()
                    .map_err(|e| Error::io("http_listen", e))?;
                let server = axum_server::from_tcp_rustls(
                    listener,
                    axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
                )
                .map_err(|e| Error::io("http_listen", e))?
                .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()));
                tokio::spawn(async move {
                    if let Err(e) = server.serve(app.into_make_service()).await {
                        log::error!("http: server stopped: {e}");
                    }
                });
            }
            None => {
                // As for PostgreSQL: replies go out as they are written.
                let listener = listener.tap_io(|socket| {
                    if let Err(e) = socket.set_nodelay(true) {
                        log::debug!("http: TCP_NODELAY: {e}");
                    }
                });
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        log::error!("http: server stopped: {e}");
                    }
                });
            }
        }
    }
    if let Some(scheduler) = shared.reports.clone() {
        let job = move |report, _due| {
            crate::report::scheduled_run(
                scheduled_warehouse.clone(),
                options,
                cluster.clone(),
                report,
            )
        };
        tokio::spawn(scheduler.run(job, std::future::pending()));
    }
    tokio::spawn(refresh(shared));
    Ok(running)
}

async fn bind(addr: SocketAddr, key: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::usage(format!("server: cannot listen on {addr} ({key}): {e}")))
}

/// Picks up ingests made while the server runs.
async fn refresh(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.settings.refresh_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match shared.engine.refresh().await {
            Ok(changed) => {
                for (table, version) in changed {
                    log::info!("{table} is now at version {version}");
                    shared.metrics.table_version(&table, Some(version));
                }
            }
            Err(e) => log::warn!("could not look for new ingests: {e}"),
        }
    }
}

/// `kpidb serve`: start, say where, and serve until interrupted.
pub async fn serve(
    warehouse: Warehouse,
    options: FunctionOptions,
    settings: Settings,
    reports: Option<Reports>,
) -> Result<()> {
    let root = warehouse.location().to_string();
    let running = start(warehouse, options, settings, reports).await?;
    let shared = &running.shared;
    let tls = if shared.tls.is_some() {
        "TLS"
    } else {
        "plaintext"
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "kpidb serve: warehouse {root}");
    for (table, version) in shared.engine.versions() {
        let version = version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unreadable".into());
        let _ = writeln!(out, "  {table} at version {version}");
    }
    if let Some(addr) = running.pg {
        let auth = if shared.accounts.pg_required() {
            "password (SCRAM-SHA-256)"
        } else {
            "no password: loopback only"
        };
        let _ = writeln!(out, "listening: pg {addr} ({tls}, {auth})");
    }
    if let Some(addr) = running.http {
        let auth = if shared.settings.auth_required() {
            "bearer token or Basic"
        } else {
            "no credentials: loopback only"
        };
        let scheme = if shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let _ = writeln!(out, "listening: http {scheme}://{addr} ({auth})");
    }
    if let Some(scheduler) = &shared.reports {
        let _ = writeln!(out, "reports: {}", scheduler.reports.path.display());
        for report in scheduler.reports.reports.values() {
            let when = report
                .schedule_summary()
                .unwrap_or_else(|| "not scheduled".into());
            let _ = writeln!(
                out,
                "  {} {when}, runs kept in {}",
                report.name,
                crate::report::archive::report_dir(report).display()
            );
        }
    }
    let _ = out.flush();
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Error::io("signal", e))?;
    let _ = writeln!(out, "kpidb serve: stopped");
    Ok(())
}
