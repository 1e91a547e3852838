//! The server's Prometheus metrics (`GET /metrics`): queries and errors by protocol,
//! a latency histogram, open connections, failed logins, each table's version, plans
//! reused and the bytes of files kept in memory.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Protocol {
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    protocol: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

pub struct Metrics {
    registry: Registry,
    queries: Family<Protocol, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Family<Protocol, Histogram, fn() -> Histogram>,
    connections: Family<Protocol, Gauge>,
    auth_failures: Family<Protocol, Counter>,
    table_versions: Family<TableLabel, Gauge>,
    plans_reused: Counter,
    physical_plans_reused: Counter,
    resident_bytes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("kpidb");
        let queries = Family::<Protocol, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let latency = Family::<Protocol, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let connections = Family::<Protocol, Gauge>::default();
        let auth_failures = Family::<Protocol, Counter>::default();
        let table_versions = Family::<TableLabel, Gauge>::default();
        let plans_reused = Counter::default();
        let physical_plans_reused = Counter::default();
        let resident_bytes = Gauge::default();
        registry.register(
            "queries",
            "Queries that ran to their end, failed or were stopped",
            queries.clone(),
        );
        registry.register(
            "query_errors",
            "Statements that ended in an error, by error code",
            errors.clone(),
        );
        registry.register(
            "query_duration_seconds",
            "Query time from planning to the last row sent",
            latency.clone(),
        );
        registry.register(
            "active_connections",
            "Open client connections (HTTP: requests in flight)",
            connections.clone(),
        );
        registry.register(
            "auth_failures",
            "Refused logins and requests with a wrong password or token",
            auth_failures.clone(),
        );
        registry.register(
            "table_version",
            "The Delta version of each warehouse table the server reads",
            table_versions.clone(),
        );
        registry.register(
            "plans_reused",
            "Queries planned from a plan kept from an earlier run of the same statement",
            plans_reused.clone(),
        );
        registry.register(
            "physical_plans_reused",
            "Runs of a kept plan over few rows that executed a copy of its physical plan",
            physical_plans_reused.clone(),
        );
        registry.register(
            "resident_bytes",
            "Bytes of data files kept in memory for scans of few rows",
            resident_bytes.clone(),
        );
        Arc::new(Metrics {
            registry,
            queries,
            errors,
            latency,
            connections,
            auth_failures,
            table_versions,
            plans_reused,
            physical_plans_reused,
            resident_bytes,
        })
    }

    pub fn query_finished(&self, protocol: &str, elapsed: Duration, _ok: bool) {
        let label = Protocol {
            protocol: protocol.to_string(),
        };
        self.queries.get_or_create(&label).inc();
        self.latency
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    pub fn error(&self, protocol: &str, code: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                protocol: protocol.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    pub fn auth_failed(&self, protocol: &str) {
        self.auth_failures
            .get_or_create(&Protocol {
                protocol: protocol.to_string(),
            })
            .inc();
    }

    /// Counts a connection until the returned guard is dropped.
    pub fn connection(self: &Arc<Self>, protocol: &str) -> ConnectionGuard {
        let gauge = self
            .connections
            .get_or_create(&Protocol {
                protocol: protocol.to_string(),
            })
            .clone();
        gauge.inc();
        ConnectionGuard { gauge }
    }

    pub fn table_version(&self, table: &str, version: Option<u64>) {
        let gauge = self.table_versions.get_or_create(&TableLabel {
            table: table.to_string(),
        });
        gauge.set(version.map(|v| v as i64).unwrap_or(-1));
    }

    pub fn plan_reused(&self) {
        self.plans_reused.inc();
    }

    /// The text exposition format, with the physical plans reused so far and the
    /// bytes of files kept in memory now.
    pub fn render(&self, physical_plans_reused: u64, resident_bytes: usize) -> String {
        // The cache's own count, which only grows; renders at once cannot count twice.
        self.physical_plans_reused
            .inner()
            .fetch_max(physical_plans_reused, std::sync::atomic::Ordering::Relaxed);
        self.resident_bytes
            .set(i64::try_from(resident_bytes).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub struct ConnectionGuard {
    gauge: Gauge,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}
