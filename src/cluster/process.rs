//! The cluster's processes: `kpidb scheduler`, `kpidb executor`, and both inside one
//! process for tests and trying things out. Each is Ballista's own, with kpidb's
//! functions and codecs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::error::BallistaError;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::ArrowFlightServerProvider;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tonic::transport::server::TcpIncoming;

use super::tls::{self, ClusterTls};
use super::{codec, lost, worker_state, ClusterUrl};
use crate::functions::FunctionOptions;
use crate::storage::{BucketRegistry, StoreSettings};
use crate::{Error, Result};

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// Where to listen (port 0: any free port, printed at start).
    pub bind: SocketAddr,
    /// Seconds without a heartbeat after which an executor is taken for dead and
    /// its tasks are run again elsewhere.
    pub executor_timeout: u64,
    /// The cluster's mutual TLS; required to listen on anything but loopback.
    pub tls: Option<ClusterTls>,
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    pub scheduler: ClusterUrl,
    /// Address to listen on for other executors and clients fetching results.
    pub bind_host: String,
    /// Port for that (0: any free port).
    pub port: u16,
    /// The name other machines reach this one by [default: bind_host].
    pub external_host: Option<String>,
    /// Tasks run at once [0: one per core].
    pub cores: usize,
    /// Where intermediate results are kept [default: a temporary directory].
    pub work_dir: Option<PathBuf>,
    /// How this executor reaches a warehouse in a bucket, with its own credentials.
    pub storage: StoreSettings,
    /// The cluster's mutual TLS; required to listen on anything but loopback.
    pub tls: Option<ClusterTls>,
}

/// Runs a scheduler until the process ends. `on_listen` learns the address first.
pub async fn run_scheduler(
    settings: SchedulerSettings,
    options: FunctionOptions,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<()> {
    tls::require_for(
        "scheduler",
        &settings.bind.ip().to_string(),
        settings.tls.as_ref(),
    )?;
    let tls = settings.tls.as_ref().map(ClusterTls::load).transpose()?;
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|e| {
            Error::usage(format!(
                "scheduler: cannot listen on {}: {e}",
                settings.bind
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::usage(e.to_string()))?;
    let mut config = SchedulerConfig::default()
        .with_hostname(address.ip().to_string())
        .with_port(address.port())
        .with_scheduler_policy(TaskSchedulingPolicy::PullStaged)
        .with_override_session_builder(Arc::new(move |config: SessionConfig| {
            Ok(worker_state(config, options))
        }));
    config.executor_timeout_seconds = settings.executor_timeout.max(1);
    config.expire_dead_executor_interval_seconds = (settings.executor_timeout / 3).clamp(1, 15);
    config.no_executors_grace_period_seconds = config.executor_timeout_seconds;
    config.override_logical_codec = Some(Arc::new(codec::LogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(codec::PhysicalCodec::default()));
    config.stage_max_failures = lost::STAGE_MAX_FAILURES;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista)?;
    let cluster = BallistaCluster::new(
        cluster.cluster_state(),
        Arc::new(lost::RerunGuard::new(cluster.job_state())),
    );
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .map_err(ballista)?;
    on_listen(address);
    let Some(tls) = tls else {
        return start_grpc_service_with_listener(listener, scheduler)
            .await
            .map_err(ballista);
    };
    // Over TLS, the scheduler's gRPC service alone (no REST API, no Flight proxy:
    // clients fetch results from the executors, over TLS too).
    let service = SchedulerGrpcServer::new(scheduler)
        .max_encoding_message_size(MAX_MESSAGE)
        .max_decoding_message_size(MAX_MESSAGE);
    tonic::transport::Server::builder()
        .tls_config(tls.server())
        .map_err(|e| Error::usage(format!("scheduler: TLS: {e}")))?
        .add_service(service)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
        .map_err(|e| Error::usage(format!("scheduler: {e}")))
}

/// The largest gRPC message a scheduler or executor accepts or sends over TLS
/// (Ballista's default).
const MAX_MESSAGE: usize = 16 << 20;

/// Runs an executor until the process ends (or its scheduler asks it to stop).
pub async fn run_executor(settings: ExecutorSettings, options: FunctionOptions) -> Result<()> {
    tls::require_for("executor", &settings.bind_host, settings.tls.as_ref())?;
    let tls = settings.tls.as_ref().map(ClusterTls::load).transpose()?;
    // Over TLS the executor says the name its certificate is checked against (the
    // scheduler cannot see a peer's address there).
    let mut settings = settings;
    if tls.is_some() && settings.external_host.is_none() {
        if tls::is_unspecified(&settings.bind_host) {
            return Err(Error::usage(format!(
                "executor: with TLS and --bind-host {}, give --external-host: the name \
                 (in this executor's certificate) the others reach it by",
                settings.bind_host
            )));
        }
        settings.external_host = Some(settings.bind_host.clone());
    }
    let port = match settings.port {
        // Ballista registers the port before it listens; take a free one now.
        0 => std::net::TcpListener::bind((settings.bind_host.as_str(), 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| {
                Error::usage(format!(
                    "executor: no free port on {}: {e}",
                    settings.bind_host
                ))
            })?
            .port(),
        port => port,
    };
    let state = worker_state(SessionConfig::new(), options);
    // Tasks read the warehouse's data files where they lie: on this machine's disk,
    // or in a bucket reached with this executor's own settings.
    let registry = Arc::new(BucketRegistry::new(settings.storage.clone()));
    let spill_dir = settings.work_dir.clone();
    let runtime: ballista_core::RuntimeProducer = Arc::new(move |_: &SessionConfig| {
        let mut builder = RuntimeEnvBuilder::new().with_object_store_registry(registry.clone());
        if let Some(dir) = &spill_dir {
            builder = builder.with_temp_file_path(dir);
        }
        Ok(Arc::new(builder.build()?))
    });
    let mut config = ExecutorProcessConfig {
        bind_host: settings.bind_host.clone(),
        external_host: settings.external_host.clone(),
        port,
        scheduler_host: settings.scheduler.host().to_string(),
        scheduler_port: settings.scheduler.port(),
        scheduler_connect_timeout_seconds: 30,
        vcores: settings.cores,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: settings
            .work_dir
            .as_ref()
            .map(|dir| dir.display().to_string()),
        override_function_registry: Some(Arc::new((&state).into())),
        override_runtime_producer: Some(runtime),
        override_logical_codec: Some(Arc::new(codec::LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(codec::PhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    if let Some(tls) = tls {
        // To the scheduler and to other executors' results over TLS; its own results
        // served over TLS; and tasks told to fetch over TLS.
        let connect = tls.endpoint_override();
        config.override_create_grpc_client_endpoint = Some(connect.clone());
        config.override_arrow_flight_service = Some(flight_over_tls(tls));
        config.override_config_producer = Some(Arc::new(move || {
            super::with_codecs(SessionConfig::new_with_ballista())
                .with_ballista_use_tls(true)
                .with_ballista_override_create_grpc_client_endpoint(connect.clone())
        }));
    }
    eprintln!(
        "kpidb executor on {}:{port}, scheduler {}",
        settings
            .external_host
            .as_deref()
            .unwrap_or(&settings.bind_host),
        settings.scheduler
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista)
}

/// Starts a scheduler and one executor with `cores` task slots inside this process,
/// on loopback, and returns the scheduler's address. They run on a runtime of their
/// own, as separate processes would, until the process ends.
pub fn standalone(
    options: FunctionOptions,
    cores: usize,
    storage: StoreSettings,
) -> Result<ClusterUrl> {
    let (tx, rx) = std::sync::mpsc::channel();
    let cluster = move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_stack_size(crate::THREAD_STACK)
            .enable_all()
            .build();
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = tx.send(Err(Error::usage(format!("in-process cluster: {e}"))));
                return;
            }
        };
        runtime.block_on(async move {
            let settings = SchedulerSettings {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                executor_timeout: 30,
                tls: None,
            };
            let (listening, address) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let started = run_scheduler(settings, options, |address| {
                    let _ = listening.send(address);
                });
                if let Err(e) = started.await {
                    log::error!("in-process scheduler stopped: {e}");
                }
            });
            let Ok(address) = address.await else {
                let _ = tx.send(Err(Error::usage("the in-process scheduler did not start")));
                return;
            };
            let url = match ClusterUrl::parse(&format!("df://{address}")) {
                Ok(url) => url,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(url.clone()));
            let settings = ExecutorSettings {
                scheduler: url,
                bind_host: "127.0.0.1".into(),
                port: 0,
                external_host: Some("127.0.0.1".into()),
                cores: cores.max(1),
                work_dir: None,
                storage: storage.clone(),
                tls: None,
            };
            if let Err(e) = run_executor(settings, options).await {
                log::error!("in-process executor stopped: {e}");
            }
        });
    };
    std::thread::Builder::new()
        .name("kpidb-cluster".into())
        .stack_size(crate::THREAD_STACK)
        .spawn(cluster)
        .map_err(|e| Error::usage(format!("in-process cluster: {e}")))?;
    rx.recv()
        .map_err(|_| Error::usage("the in-process cluster did not start"))?
}

/// The executor's Arrow Flight service (where clients and other executors fetch
/// results), served with the cluster's mutual TLS.
fn flight_over_tls(tls: tls::Loaded) -> Arc<ArrowFlightServerProvider> {
    Arc::new(move |work_dir, address, mut shutdown, _grpc| {
        let config = tls.server();
        tokio::spawn(async move {
            let service = FlightServiceServer::new(BallistaFlightService::new(work_dir))
                .max_encoding_message_size(MAX_MESSAGE)
                .max_decoding_message_size(MAX_MESSAGE);
            tonic::transport::Server::builder()
                .tls_config(config)
                .map_err(BallistaError::TonicError)?
                .add_service(service)
                .serve_with_shutdown(address, shutdown.recv())
                .await
                .map_err(BallistaError::TonicError)
        })
    })
}

fn ballista(e: ballista_core::error::BallistaError) -> Error {
    Error::usage(format!("cluster: {e}"))
}
