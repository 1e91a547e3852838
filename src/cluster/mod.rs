//! Running kpidb's SQL on an Apache Ballista cluster: a scheduler and executors on
//! several machines that reach the same warehouse (a bucket, or a shared directory).
//!
//! A query is planned where it is asked, exactly as locally: kpidb's table functions
//! become plans over the warehouse tables there, at the versions that session reads.
//! The plan then goes to the scheduler with each Delta table written as the list of
//! its snapshot's Parquet files, which the scheduler turns into DataFusion's own
//! Parquet scan, so executors read plain files and never replay a Delta log.
//!
//! Module map:
//! - [`codec`]: how tables and configured functions cross the wire.
//! - [`planner`]: which plans go to the cluster and which stay local.
//! - [`lost`]: an executor lost mid-job fails the job, never answers wrong, and the
//!   client runs it again.
//! - [`process`]: the `kpidb scheduler` and `kpidb executor` processes, and an
//!   in-process cluster.
//! - [`tls`]: mutual TLS between every member; no plain listening beyond loopback.

pub mod codec;
pub mod lost;
pub mod planner;
pub mod process;
pub mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use datafusion::execution::context::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;

use crate::functions::FunctionOptions;
use crate::{Error, Result};

/// The port a scheduler listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 50050;

/// Where a cluster's scheduler listens: `df://HOST[:PORT]`, and how to talk to it
/// (the cluster's mutual TLS, when it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    host: String,
    port: u16,
    tls: Option<tls::ClusterTls>,
}

impl ClusterUrl {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::usage(format!(
                "cluster '{text}': {why}; expected df://HOST:PORT, e.g. df://127.0.0.1:{DEFAULT_PORT}"
            ))
        };
        let url = url::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "df" {
            return Err(bad(&format!("the scheme is '{}', not 'df'", url.scheme())));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(bad("a scheduler address has no path or query"));
        }
        Ok(ClusterUrl {
            host: host.trim_matches(['[', ']']).to_string(),
            port: url.port().unwrap_or(DEFAULT_PORT),
            tls: None,
        })
    }

    /// The same scheduler, reached over the cluster's mutual TLS.
    pub fn with_tls(self, tls: Option<tls::ClusterTls>) -> Self {
        ClusterUrl { tls, ..self }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The scheduler's gRPC endpoint.
    fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "df://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "df://{}:{}", self.host, self.port)
        }
    }
}

/// `config` with kpidb's codecs, which every member of a cluster must share.
pub fn with_codecs(config: SessionConfig) -> SessionConfig {
    config
        .with_ballista_logical_extension_codec(Arc::new(codec::LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(codec::PhysicalCodec::default()))
}

/// The session a scheduler plans in and an executor runs in: DataFusion's defaults
/// plus kpidb's scalar, aggregate and window functions. No tables: those arrive with
/// each plan, as files.
pub fn worker_state(config: SessionConfig, options: FunctionOptions) -> SessionState {
    let mut state = SessionStateBuilder::new()
        .with_config(with_codecs(config))
        .with_default_features()
        .build();
    crate::functions::register_row_functions(&mut state, options);
    state
}

/// A cluster URL is a session hook: `engine.with_hook(&url)` sends the queries that read
/// warehouse tables to the scheduler at `url`.
#[async_trait::async_trait]
impl crate::engine::SessionHook for ClusterUrl {
    async fn attach(&self, state: SessionState, options: FunctionOptions) -> Result<SessionState> {
        connect(state, self, options).await
    }
}

/// Makes `state` (a session with kpidb's tables and functions) send the queries that
/// read warehouse tables to the scheduler at `url`. Fails when the scheduler cannot
/// be reached, so a wrong address is found before the first query.
pub async fn connect(
    state: SessionState,
    url: &ClusterUrl,
    options: FunctionOptions,
) -> Result<SessionState> {
    let stream = reachable(url).await?;
    if url.tls.is_none() && !speaks_plain_grpc(stream).await {
        return Err(Error::usage(format!(
            "the kpidb scheduler at {url} accepts only members of its cluster (mutual TLS): \
             give the cluster's CA, a certificate it signed and its key in [cluster_tls] of \
             kpidb.toml"
        )));
    }
    // The session's catalog is already there: building with the default setting
    // would replace it with an empty one.
    //
    // Ballista's adaptive planner re-plans a stage from the statistics of the stages
    // before it, and can drop a sort key it found constant there, which the executor
    // then cannot rebuild ("Expects PARTITION BY expression to be ordered"). Plans are
    // kept as planned.
    //
    // DataFusion's dynamic filters are built into hash joins when they are planned,
    // and Ballista swaps join inputs afterwards when it schedules a stage; that fails
    // and leaves the job waiting. They are left out of cluster plans.
    let mut config = with_codecs(state.config().clone())
        .with_create_default_catalog_and_schema(false)
        .with_ballista_adaptive_query_planner(false);
    config
        .options_mut()
        .optimizer
        .enable_dynamic_filter_pushdown = false;
    config
        .options_mut()
        .optimizer
        .enable_join_dynamic_filter_pushdown = false;
    // No join is promoted to a collected (broadcast) build side: Ballista 55 can then
    // repartition the probe side under an operator that reads one partition, and
    // rows are lost (indicator_callouts, dept_ranking).
    config
        .options_mut()
        .optimizer
        .hash_join_single_partition_threshold = 0;
    config
        .options_mut()
        .optimizer
        .hash_join_single_partition_threshold_rows = 0;
    // The same for the scheduler, which sets DataFusion's thresholds from Ballista's.
    for key in [
        "ballista.optimizer.broadcast_join_threshold_bytes",
        "ballista.optimizer.broadcast_join_threshold_rows",
    ] {
        config.options_mut().set(key, "0")?;
    }
    // An uncorrelated scalar subquery becomes a join, DataFusion's documented choice
    // for distributed engines: Ballista cannot split its physical form into stages.
    config
        .options_mut()
        .optimizer
        .enable_physical_uncorrelated_scalar_subquery = false;
    if let Some(tls) = &url.tls {
        config = config
            .with_ballista_use_tls(true)
            .with_ballista_override_create_grpc_client_endpoint(tls.load()?.endpoint_override());
    }
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build();
    let planner = planner::ClusterPlanner::new(url.endpoint(), &state);
    let config = state
        .config()
        .clone()
        .with_ballista_query_planner(Arc::new(planner));
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build();
    let mut state = state.upgrade_for_ballista(url.endpoint())?;
    // Ballista's upgrade resets the function lists to its own.
    crate::functions::register_row_functions(&mut state, options);
    Ok(state)
}

/// Whether the server on `stream` answers HTTP/2 in the clear (a plain scheduler
/// sends its SETTINGS frame), rather than expecting TLS.
async fn speaks_plain_grpc(mut stream: tokio::net::TcpStream) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The client preface, then an empty SETTINGS frame.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    if stream.write_all(&hello).await.is_err() {
        return false;
    }
    let mut header = [0u8; 9];
    let answered = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut header));
    matches!(answered.await, Ok(Ok(_)) if header[3] == 4)
}

/// A plain TCP connection to the scheduler, within five seconds.
async fn reachable(url: &ClusterUrl) -> Result<tokio::net::TcpStream> {
    let address = (url.host.as_str(), url.port);
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(Error::usage(format!(
            "cannot reach the kpidb scheduler at {url}: {e}; start one with `kpidb scheduler`"
        ))),
        Err(_) => Err(Error::usage(format!(
            "cannot reach the kpidb scheduler at {url}: no answer within 5 s"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls() {
        let url = ClusterUrl::parse("df://10.0.0.5:6000").unwrap();
        assert_eq!((url.host(), url.port()), ("10.0.0.5", 6000));
        assert_eq!(url.to_string(), "df://10.0.0.5:6000");
        assert_eq!(url.endpoint(), "http://10.0.0.5:6000");
        assert_eq!(
            ClusterUrl::parse("df://sched").unwrap().port(),
            DEFAULT_PORT
        );
        for bad in ["http://a:1", "df://", "sched:50050", "df://a:1/x"] {
            let err = ClusterUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected df://HOST:PORT"), "{bad}: {err}");
        }
    }
}
