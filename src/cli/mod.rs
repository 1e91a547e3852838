//! The `kpidb` command line: one subcommand per job, each a thin call into the library.

/// `println!` for the command line's results: a closed standard output (`kpidb
/// functions | head -1`) is returned as an error, which `main` ends on quietly,
/// instead of a panic.
macro_rules! outln {
    () => {
        $crate::cli::stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` to standard output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout(format_args!($($arg)*))?
    };
}

pub mod config;
mod print;
mod repl;
pub mod report;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::ingest::{ingest, IngestRequest};
use crate::model::{table_or_err, TABLES};
use crate::sample::{self, SampleOptions};
use crate::storage::{AsOf, Warehouse, WriteMode};
use crate::{Engine, Error, Result};

pub use print::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "kpidb",
    version,
    about = "Budget-performance analytics: SQL over a Delta Lake warehouse"
)]
pub struct Cli {
    /// Warehouse directory [default: the shipped sample warehouse]
    #[arg(long, env = "KPIDB_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Configuration file (kpidb.toml)
    #[arg(long, global = true, env = "KPIDB_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Reports file, for report and serve [default: kpidb.toml's `reports`, else ./reports.toml, else the shipped one]
    #[arg(long, env = "KPIDB_REPORTS", value_name = "FILE")]
    pub reports: Option<PathBuf>,

    /// Ballista scheduler to run queries on, for query, repl, report, serve and bench
    #[arg(long, env = "KPIDB_CLUSTER", value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// `--data`, for the commands that read or write a warehouse (also accepted before
/// the command's name).
#[derive(Debug, Args, Clone, Default)]
pub struct DataArg {
    /// Warehouse directory [default: kpidb.toml's `data`, else the shipped sample warehouse]
    #[arg(long, env = "KPIDB_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// `--cluster`, for the commands that run queries.
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterArg {
    /// Run the queries on a Ballista cluster: its scheduler's df://HOST:PORT [default: kpidb.toml's `cluster`, else here]
    #[arg(long, env = "KPIDB_CLUSTER", value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
}

/// `--reports`, for the commands that run reports.
#[derive(Debug, Args, Clone, Default)]
pub struct ReportsArg {
    /// Reports file [default: kpidb.toml's `reports`, else ./reports.toml, else the shipped one]
    #[arg(long, env = "KPIDB_REPORTS", value_name = "FILE")]
    pub reports: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL and print the result
    Query(QueryArgs),
    /// Interactive SQL shell (\dt tables, \d TABLE, \df functions, \x, \format, \o, \q)
    Repl(ReplArgs),
    /// Check a CSV, XLSX or Parquet file against every rule and load it in one commit
    Ingest(IngestArgs),
    /// List a table's versions with their time and operation
    History {
        /// Table name
        table: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Print every table's current version, a pin that --as-of-version accepts
    Snapshot {
        #[command(flatten)]
        data: DataArg,
    },
    /// Create an empty warehouse
    Init {
        /// Directory for the new warehouse
        dir: PathBuf,
    },
    /// Generate the deterministic sample city warehouse
    GenSample(GenSampleArgs),
    /// Ranking reports from reports.toml: list, run now, or run on their schedules
    Report(ReportArgs),
    /// Serve the warehouse to BI tools and scripts: PostgreSQL wire protocol and HTTP API
    Serve(ServeArgs),
    /// Write the current version of every table as plain, hive-partitioned Parquet
    Export(ExportArgs),
    /// Time a SQL file on the warehouse, or on exported Parquet with plain DataFusion
    Bench(BenchArgs),
    /// Show the rollups (per-year summaries the table functions read), or rebuild them
    Rollups {
        /// Rebuild every rollup from the current data
        #[arg(long)]
        rebuild: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Run a cluster's scheduler: it plans queries sent with --cluster and hands
    /// their tasks to executors
    Scheduler(SchedulerArgs),
    /// Run one of a cluster's executors: it runs tasks from the scheduler, reading the
    /// warehouse's files directly, from its bucket (reached as `[storage]` in --config
    /// or the AWS_* variables say) or at the same path as on every other machine
    Executor(ExecutorArgs),
    /// Describe kpidb's SQL functions
    Functions {
        /// Print FUNCTIONS.md
        #[arg(long)]
        markdown: bool,
    },
}

/// The warehouse, reports file and cluster a command was given.
#[derive(Debug, Default)]
struct Given {
    data: Option<PathBuf>,
    reports: Option<PathBuf>,
    cluster: Option<String>,
}

impl Command {
    fn given(&self) -> Given {
        let on = |data: &DataArg, cluster: Option<&ClusterArg>| Given {
            data: data.data.clone(),
            cluster: cluster.and_then(|c| c.cluster.clone()),
            reports: None,
        };
        match self {
            Command::Query(a) => on(&a.data, Some(&a.cluster)),
            Command::Repl(a) => on(&a.data, Some(&a.cluster)),
            Command::Bench(a) => on(&a.data, Some(&a.cluster)),
            Command::Ingest(a) => on(&a.data, None),
            Command::Export(a) => on(&a.data, None),
            Command::History { data, .. }
            | Command::Snapshot { data }
            | Command::Rollups { data, .. } => on(data, None),
            Command::Report(a) => Given {
                data: a.data.clone(),
                reports: a.reports.clone(),
                cluster: a.cluster.clone(),
            },
            Command::Serve(a) => Given {
                reports: a.reports.reports.clone(),
                ..on(&a.data, Some(&a.cluster))
            },
            Command::Init { .. }
            | Command::GenSample(_)
            | Command::Scheduler(_)
            | Command::Executor(_)
            | Command::Functions { .. } => Given::default(),
        }
    }
}

/// `kpidb report`: its subcommands share the warehouse, reports file and cluster.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Warehouse directory [default: kpidb.toml's `data`, else the shipped sample warehouse]
    #[arg(long, global = true, env = "KPIDB_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Reports file [default: kpidb.toml's `reports`, else ./reports.toml, else the shipped one]
    #[arg(long, global = true, env = "KPIDB_REPORTS", value_name = "FILE")]
    pub reports: Option<PathBuf>,
    /// Run the queries on a Ballista cluster: its scheduler's df://HOST:PORT [default: kpidb.toml's `cluster`, else here]
    #[arg(
        long,
        global = true,
        env = "KPIDB_CLUSTER",
        value_name = "df://HOST:PORT"
    )]
    pub cluster: Option<String>,
    #[command(subcommand)]
    pub command: report::ReportCommand,
}

#[derive(Debug, Args)]
pub struct ReplArgs {
    #[command(flatten)]
    pub pin: PinArgs,
    #[command(flatten)]
    pub data: DataArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
}

#[derive(Debug, Args, Default)]
pub struct PinArgs {
    /// Read the past: one version for every table (N), or table=N pairs (see `kpidb snapshot`)
    #[arg(long, value_name = "N|TABLE=N,…", conflicts_with = "as_of")]
    pub as_of_version: Option<String>,
    /// Read every table as it was at this time: RFC 3339, or 'YYYY-MM-DD HH:MM[:SS]' or
    /// a date (its end) in the configured time zone [default: Asia/Shanghai]
    #[arg(long, alias = "as-of-timestamp", value_name = "TIMESTAMP")]
    pub as_of: Option<String>,
}

impl PinArgs {
    /// The pin; times without an offset are read in `zone`.
    pub fn as_of(&self, zone: &chrono_tz::Tz) -> Result<AsOf> {
        match (&self.as_of_version, &self.as_of) {
            (Some(v), _) => AsOf::parse_version(v),
            (None, Some(ts)) => AsOf::parse_timestamp(ts, zone),
            (None, None) => Ok(AsOf::Latest),
        }
    }
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// SQL to run; several statements may be separated by ';'
    pub sql: Option<String>,
    /// Read the SQL from a file ('-' for standard input)
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "sql"
    )]
    pub file: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Write the result to a file instead of standard output
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub pin: PinArgs,
    #[command(flatten)]
    pub data: DataArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Table to load into
    pub table: String,
    /// CSV (UTF-8 or GBK; comma, semicolon, tab or bar separated), XLSX or Parquet
    /// files, or directories of them (a hive-partitioned export): one commit for all
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// append adds rows; replace-year replaces the years present in the file
    #[arg(long, value_enum, default_value_t = WriteMode::Append)]
    pub mode: WriteMode,
    /// XLSX sheet to read [default: the first]
    #[arg(long)]
    pub sheet: Option<String>,
    /// Check everything, against the warehouse too, and write nothing
    #[arg(long)]
    pub check: bool,
    /// Refuse columns the table does not have [default: ignore them with a notice]
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub data: DataArg,
}

/// `kpidb serve` settings; each overrides the `[server]` table of kpidb.toml.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// PostgreSQL address, or "off" [default: 127.0.0.1:5433]
    #[arg(long, env = "KPIDB_PG_LISTEN", value_name = "HOST:PORT")]
    pub pg_listen: Option<String>,
    /// HTTP address, or "off" [default: 127.0.0.1:8080]
    #[arg(long, env = "KPIDB_HTTP_LISTEN", value_name = "HOST:PORT")]
    pub http_listen: Option<String>,
    /// PEM certificate chain (with --tls-key: TLS only, both protocols)
    #[arg(long, env = "KPIDB_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key
    #[arg(long, env = "KPIDB_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Memory all running queries may hold together, e.g. 2GiB [default: 4GiB]
    #[arg(long, env = "KPIDB_MEMORY_LIMIT", value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Longest a query may run, rows sent included, e.g. 30s [default: 60s]
    #[arg(long, env = "KPIDB_QUERY_TIMEOUT", value_name = "DURATION")]
    pub query_timeout: Option<String>,
    /// Open connections allowed per protocol [default: 64]
    #[arg(long, env = "KPIDB_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    #[command(flatten)]
    pub data: DataArg,
    #[command(flatten)]
    pub reports: ReportsArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format (Parquet: DIR/<table>/year=YYYY/*.parquet for tables with a year)
    #[arg(long, value_enum, default_value_t = ExportFormat::Parquet)]
    pub format: ExportFormat,
    /// New or empty directory to write into
    pub dir: PathBuf,
    #[command(flatten)]
    pub pin: PinArgs,
    #[command(flatten)]
    pub data: DataArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Parquet,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// SQL file to time (one statement)
    pub file: PathBuf,
    /// kpidb: the warehouse with kpidb's functions; datafusion: plain DataFusion over --parquet
    #[arg(long, value_enum, default_value_t = crate::bench::BenchEngine::Kpidb)]
    pub engine: crate::bench::BenchEngine,
    /// Exported Parquet directory (`kpidb export`) for --engine datafusion
    #[arg(long, value_name = "DIR", required_if_eq("engine", "datafusion"))]
    pub parquet: Option<PathBuf>,
    /// Timed runs, after one untimed warm-up run
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Write the last run's result here as CSV
    #[arg(long, value_name = "FILE")]
    pub result: Option<PathBuf>,
    /// Plan every run from its SQL, as a statement's first run is: the plans kept
    /// from earlier runs are dropped before each one
    #[arg(long)]
    pub plan_afresh: bool,
    #[command(flatten)]
    pub data: DataArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address to listen on (port 0: any free port; the address is printed); other
    /// than loopback only with the cluster's TLS
    #[arg(long, default_value_t = std::net::SocketAddr::from(([127, 0, 0, 1], crate::cluster::DEFAULT_PORT)))]
    pub bind: std::net::SocketAddr,
    /// Seconds without word from an executor before its tasks are run elsewhere
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub executor_timeout: u64,
    #[command(flatten)]
    pub tls: ClusterTlsArgs,
}

/// The cluster's mutual TLS for a scheduler or executor [default: [cluster_tls] in kpidb.toml].
#[derive(Debug, Args)]
pub struct ClusterTlsArgs {
    /// The cluster's CA certificate (PEM): only peers it signed are accepted
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// This member's certificate (PEM), signed by the cluster's CA
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// This member's private key (PEM)
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
}

impl ClusterTlsArgs {
    /// The flags' files, else the configuration's.
    fn or(
        self,
        configured: Option<crate::cluster::tls::ClusterTls>,
    ) -> Option<crate::cluster::tls::ClusterTls> {
        match (self.tls_ca, self.tls_cert, self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => {
                Some(crate::cluster::tls::ClusterTls { ca, cert, key })
            }
            _ => configured,
        }
    }
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler to work for
    #[arg(long, value_name = "df://HOST:PORT")]
    pub scheduler: String,
    /// Address to listen on for result fetches; other than loopback only with the
    /// cluster's TLS
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_host: String,
    /// Port to listen on (0: any free port)
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// Name or address other machines reach this one by [default: this machine's address as the scheduler sees it]
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Tasks run at once [default: one per core]
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Directory for intermediate results [default: a temporary directory]
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub tls: ClusterTlsArgs,
}

#[derive(Debug, Args)]
pub struct GenSampleArgs {
    /// Directory for the new warehouse
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed; the seed report's figures hold for every seed
    #[arg(long, default_value_t = SampleOptions::default().seed)]
    pub seed: u64,
    /// Also write each table as CSV into this directory
    #[arg(long, value_name = "DIR")]
    pub csv: Option<PathBuf>,
    /// Benchmark scale: city (the sample), 1m (province), 10m, 50m, 100m (national): dept_scores
    /// rows; SIZE-wide (many departments, 30 indicators), SIZE-deep (few departments, 600
    /// indicators) and SIZE-long (20 years) keep the rows in another shape
    #[arg(long, value_name = "SCALE", conflicts_with_all = ["departments", "first_year", "indicator_fanout"])]
    pub scale: Option<String>,
    /// First-level departments (scale: more departments, more dept_scores)
    #[arg(long, default_value_t = SampleOptions::default().departments)]
    pub departments: usize,
    /// First year of whole-department evaluation (scale: more years)
    #[arg(long, default_value_t = SampleOptions::default().first_year)]
    pub first_year: i32,
    /// Level-3 department indicators per item of the standard tree (scale: more indicators)
    #[arg(long, default_value_t = SampleOptions::default().indicator_fanout)]
    pub indicator_fanout: usize,
}

/// The whole `kpidb` process: parse the command line, start the runtime, run the
/// command on a thread with a large stack and turn its result into an exit code. It
/// lives here rather than in the binary so that the async code under [`run`] is
/// compiled once, in this crate: a binary that awaited `run` itself would compile its
/// own copy of every future below it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_caught_upload_panic();
    // RUST_LOG overrides, e.g. RUST_LOG=kpidb=debug to see every refused statement.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("kpidb=info,warn"))
        .init();
    // Every thread that plans or runs SQL gets a large stack (crate::THREAD_STACK).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::THREAD_STACK)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let main = std::thread::Builder::new()
        .name("kpidb".into())
        .stack_size(crate::THREAD_STACK)
        .spawn(move || runtime.block_on(run(cli)));
    let result = match main.map(|thread| thread.join()) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`kpidb … | head`): nothing more to say, as Unix tools do.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().trim_end());
            ExitCode::FAILURE
        }
    }
}

/// Delta Lake aborts a data-file upload that failed through object_store's
/// `BufWriter::abort`, which panics by design when the upload had begun completing;
/// Delta Lake catches that panic and the write ends as an error naming the file. Keep
/// that one caught panic off the terminal; every other panic prints as usual.
fn quiet_caught_upload_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let caught = info.location().is_some_and(|l| {
            l.file().contains("object_store") && l.file().ends_with("buffered.rs")
        }) && info.payload().downcast_ref::<&str>() == Some(&"Already shut down");
        if !caught {
            default(info);
        }
    }));
}

pub async fn run(cli: Cli) -> Result<()> {
    let config = config::Config::load(cli.config.as_deref())?;
    // The command's own flags win over those given before its name.
    let given = cli.command.given();
    // Resolved only by the commands that read them (the shipped sample and reports
    // are written out of the binary on first use).
    let data_flag = given.data.or(cli.data);
    let config_file = cli.config;
    let sources = config.sources(config_file.as_deref())?;
    let data = || -> Result<WarehouseAt> {
        Ok(WarehouseAt {
            location: config.data_dir(data_flag.clone(), config_file.as_deref())?,
            sources: sources.clone(),
            storage: config.storage.clone(),
        })
    };
    let options = config.function_options();
    let zone = config.zone()?;
    let cluster = config.cluster(
        given.cluster.or(cli.cluster).as_deref(),
        config_file.as_deref(),
    )?;
    let reports_flag = given.reports.or(cli.reports);
    let reports = || {
        crate::report::load(
            reports_flag.clone(),
            config.reports_file(config_file.as_deref()),
            config.archive_dir(config_file.as_deref()),
        )
    };
    match cli.command {
        Command::Report(args) => {
            report::run(args.command, reports()?, data()?, options, cluster, &zone).await
        }
        Command::Serve(args) => {
            let user = match (std::env::var("KPIDB_USER"), std::env::var("KPIDB_PASSWORD")) {
                (Ok(user), Ok(password)) => Some((user, password)),
                (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
                    return Err(Error::usage(
                        "set both KPIDB_USER and KPIDB_PASSWORD, or neither",
                    ))
                }
                _ => None,
            };
            let overrides = crate::server::Overrides {
                flags: crate::server::ServerConfig {
                    pg_listen: args.pg_listen,
                    http_listen: args.http_listen,
                    tls_cert: args.tls_cert,
                    tls_key: args.tls_key,
                    memory_limit: args.memory_limit,
                    query_timeout: args.query_timeout,
                    max_connections: args.max_connections,
                    ..Default::default()
                },
                user,
                token: std::env::var("KPIDB_TOKEN").ok(),
            };
            let settings = crate::server::Settings::resolve(&config.server, overrides)?;
            let reports = Some(reports()?);
            let settings = crate::server::Settings {
                cluster,
                ..settings
            };
            crate::server::serve(data()?.open().await?, options, settings, reports).await
        }
        Command::Query(args) => {
            query(
                data()?.open().await?,
                args,
                options,
                cluster.as_ref(),
                &zone,
            )
            .await
        }
        Command::Repl(ReplArgs { pin, .. }) => {
            let mut engine =
                Engine::open_with(data()?.open().await?, pin.as_of(&zone)?, options).await?;
            if let Some(url) = &cluster {
                engine = engine.with_hook(url).await?;
            }
            repl::run(engine).await
        }
        Command::Scheduler(args) => {
            let settings = crate::cluster::process::SchedulerSettings {
                bind: args.bind,
                executor_timeout: args.executor_timeout,
                tls: args.tls.or(config.cluster_tls(config_file.as_deref())),
            };
            crate::cluster::process::run_scheduler(settings, options, |address| {
                let _ = stdout(format_args!(
                    "kpidb scheduler listening on df://{address}\n"
                ));
            })
            .await
        }
        Command::Executor(args) => {
            let settings = crate::cluster::process::ExecutorSettings {
                scheduler: crate::cluster::ClusterUrl::parse(&args.scheduler)?,
                bind_host: args.bind_host,
                port: args.port,
                external_host: args.external_host,
                cores: args.cores.unwrap_or(0),
                work_dir: args.work_dir,
                storage: config.storage.clone(),
                tls: args.tls.or(config.cluster_tls(config_file.as_deref())),
            };
            crate::cluster::process::run_executor(settings, options).await
        }
        Command::Functions { markdown } => {
            if markdown {
                out!("{}", crate::functions::markdown());
            } else {
                repl::print_functions()?;
            }
            Ok(())
        }
        Command::Ingest(args) => {
            let warehouse = data()?.open().await?;
            let summary = ingest(
                &warehouse,
                IngestRequest {
                    table: &args.table,
                    files: &args.files,
                    mode: args.mode,
                    sheet: args.sheet.as_deref(),
                    progress: std::io::stderr().is_terminal(),
                    check_only: args.check,
                    strict: args.strict,
                },
            )
            .await?;
            if !summary.ignored.is_empty() {
                eprintln!(
                    "notice: ignored column(s) {} that {} does not have (--strict refuses them)",
                    summary.ignored.join(", "),
                    summary.table
                );
            }
            outln!("{summary}");
            Ok(())
        }
        Command::History { table, .. } => {
            let def = table_or_err(&table)?;
            let warehouse = data()?.open().await?;
            outln!(
                "{:>7}  {:<29}  {:<10}  details",
                "version",
                "time",
                "operation"
            );
            for commit in warehouse.history(def).await? {
                let time = commit
                    .timestamp
                    .map(|t| {
                        t.with_timezone(&zone)
                            .format("%Y-%m-%d %H:%M:%S%.3f%:z")
                            .to_string()
                    })
                    .unwrap_or_default();
                outln!(
                    "{:>7}  {:<29}  {:<10}  {}",
                    commit.version,
                    time,
                    commit.operation,
                    commit.details
                );
            }
            Ok(())
        }
        Command::Snapshot { .. } => {
            let versions = data()?.open().await?.versions().await?;
            outln!("{}", AsOf::Versions(versions));
            Ok(())
        }
        Command::Init { dir } => {
            Warehouse::init_at(&dir.to_string_lossy(), &config.storage).await?;
            outln!(
                "created an empty warehouse at {} with tables {}",
                dir.display(),
                TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            );
            Ok(())
        }
        Command::Export(args) => {
            let engine =
                Engine::open_with(data()?.open().await?, args.pin.as_of(&zone)?, options).await?;
            let ExportFormat::Parquet = args.format;
            for (table, rows) in crate::export::parquet(&engine, &args.dir).await? {
                outln!("{table:<15} {rows:>10} rows");
            }
            outln!("exported to {}", args.dir.display());
            Ok(())
        }
        Command::Bench(args) => {
            let sql = std::fs::read_to_string(&args.file).map_err(|e| Error::io(&args.file, e))?;
            let source = match args.engine {
                crate::bench::BenchEngine::Kpidb => {
                    let mut engine =
                        Engine::open_with(data()?.open().await?, AsOf::Latest, options).await?;
                    if let Some(url) = &cluster {
                        engine = engine.with_hook(url).await?;
                    }
                    crate::bench::Source::Warehouse(Box::new(engine))
                }
                crate::bench::BenchEngine::Datafusion => {
                    crate::bench::Source::plain(args.parquet.as_deref().expect("required by clap"))
                        .await?
                }
            };
            let timing = crate::bench::time(&source, &sql, args.runs, args.plan_afresh).await?;
            if let Some(path) = &args.result {
                let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
                let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(file);
                for batch in &timing.result {
                    writer.write(batch)?;
                }
            }
            outln!("{}", timing.json());
            Ok(())
        }
        Command::Rollups { rebuild, .. } => {
            let warehouse = data()?.open().await?;
            if rebuild {
                crate::rollup::rebuild_all(&warehouse).await?;
            }
            for line in crate::rollup::status(&warehouse).await? {
                outln!("{line}");
            }
            Ok(())
        }
        Command::GenSample(args) => {
            let opts = match &args.scale {
                Some(name) => SampleOptions {
                    seed: args.seed,
                    ..SampleOptions::scale(name).ok_or_else(|| {
                        Error::usage(format!(
                            "--scale '{name}' is not a scale; the scales are {}",
                            SampleOptions::SCALES
                        ))
                    })?
                },
                None => SampleOptions {
                    seed: args.seed,
                    departments: args.departments,
                    first_year: args.first_year,
                    indicator_fanout: args.indicator_fanout,
                },
            };
            if opts.first_year > sample::SEED_YEAR || opts.departments < 3 {
                return Err(Error::usage(format!(
                    "--first-year must be at most {} and --departments at least 3",
                    sample::SEED_YEAR
                )));
            }
            let out =
                crate::storage::Location::parse(&args.out.to_string_lossy(), &config.storage)?;
            let counts = sample::write_to(out, &opts, args.csv.as_deref()).await?;
            for (table, rows) in counts {
                outln!("{table:<15} {rows:>10} rows");
            }
            outln!("sample warehouse written to {}", args.out.display());
            Ok(())
        }
    }
}

/// Where the warehouse a command reads is, and how to open it.
pub struct WarehouseAt {
    /// A directory or `s3://BUCKET/PREFIX`.
    pub location: PathBuf,
    pub sources: Vec<crate::storage::Source>,
    pub storage: crate::storage::StoreSettings,
}

impl WarehouseAt {
    pub async fn open(&self) -> Result<Warehouse> {
        let warehouse = Warehouse::open_at(&self.location.to_string_lossy(), &self.storage).await?;
        Ok(warehouse.with_sources(self.sources.clone()))
    }
}

async fn query(
    warehouse: Warehouse,
    args: QueryArgs,
    options: crate::functions::FunctionOptions,
    cluster: Option<&crate::cluster::ClusterUrl>,
    zone: &chrono_tz::Tz,
) -> Result<()> {
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => read_stdin()?,
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
        (None, None) if !std::io::stdin().is_terminal() => read_stdin()?,
        (None, None) => {
            return Err(Error::usage(
                "no SQL given: pass it as an argument, with -f FILE, or on standard input",
            ))
        }
    };
    let mut engine = Engine::open_with(warehouse, args.pin.as_of(zone)?, options).await?;
    if let Some(url) = cluster {
        engine = engine.with_hook(url).await?;
    }
    let statements = engine.parse(&sql)?;
    if statements.is_empty() {
        return Err(Error::usage("the SQL holds no statement"));
    }
    let mut out = print::Output::open(args.output.as_deref(), args.format)?;
    let last = statements.len() - 1;
    for (i, statement) in statements.into_iter().enumerate() {
        let asked = crate::years::asked(&statement);
        let frame = engine.run(statement).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        // A table shows every statement's rows; machine formats hold one result, the last.
        if i == last || matches!(args.format, OutputFormat::Table | OutputFormat::Expanded) {
            out.write(schema, &batches)?;
        }
        if batches.iter().all(|b| b.num_rows() == 0) {
            notice_empty(&engine, &asked).await;
        }
    }
    out.finish()
}

/// On standard error: why an empty answer is empty, when it asked a table function
/// about a year with no data.
pub(crate) async fn notice_empty(engine: &Engine, calls: &[crate::years::Asked]) {
    if calls.is_empty() {
        return;
    }
    if let Ok(notes) = crate::years::empty_result_notes(engine, calls).await {
        for note in notes {
            eprintln!("notice: {note}");
        }
    }
}

/// Writes to standard output; a reader that went away is an error (see [`Error::is_broken_pipe`]).
pub(crate) fn stdout(text: std::fmt::Arguments) -> Result<()> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_fmt(text)
        .map_err(|e| Error::io("standard output", e))
}

fn read_stdin() -> Result<String> {
    let mut sql = String::new();
    std::io::stdin()
        .read_to_string(&mut sql)
        .map_err(|e| Error::io("standard input", e))?;
    Ok(sql)
}
