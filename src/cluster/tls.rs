//! The cluster's security: mutual TLS between every member. The scheduler, each
//! executor and each client hold a certificate signed by the cluster's CA and trust
//! only that CA, so traffic is encrypted both ways and a peer without such a
//! certificate is refused at the handshake: a client or executor without one cannot
//! submit work or join, and nobody without one can fetch results. Ballista's own
//! hooks carry it: the endpoint override for every outgoing gRPC connection, a Flight
//! server of the executor's, and the scheduler's gRPC service served with TLS.
//!
//! Without TLS a scheduler or executor listens only on loopback: binding any other
//! address refuses to start and says why, as `kpidb serve` does.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::EndpointOverrideFn;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::{Error, Result};

/// `[cluster_tls]` in kpidb.toml, or `--tls-ca/--tls-cert/--tls-key`: the cluster's CA
/// and this member's certificate and key (PEM). One certificate may serve every
/// member if it names every host they are reached by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The loaded PEM files.
#[derive(Clone)]
pub struct Loaded {
    ca: Certificate,
    identity: Identity,
}

impl ClusterTls {
    /// The settings with paths relative to `base` (kpidb.toml's directory).
    pub fn relative_to(&self, base: Option<&Path>) -> ClusterTls {
        let at = |p: &PathBuf| match base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.clone(),
        };
        ClusterTls {
            ca: at(&self.ca),
            cert: at(&self.cert),
            key: at(&self.key),
        }
    }

    /// Reads the three files, naming any that cannot be read.
    pub fn load(&self) -> Result<Loaded> {
        // tonic's TLS takes the process's rustls provider; kpidb's is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let read = |what: &str, path: &Path| {
            let text = std::fs::read(path)
                .map_err(|e| Error::usage(format!("cluster TLS {what} {}: {e}", path.display())))?;
            if !String::from_utf8_lossy(&text).contains("-----BEGIN") {
                return Err(Error::usage(format!(
                    "cluster TLS {what} {}: not a PEM file",
                    path.display()
                )));
            }
            Ok(text)
        };
        let ca = Certificate::from_pem(read("CA", &self.ca)?);
        let identity =
            Identity::from_pem(read("certificate", &self.cert)?, read("key", &self.key)?);
        Ok(Loaded { ca, identity })
    }
}

impl Loaded {
    /// For a gRPC server: present this member's certificate and require the peer's,
    /// signed by the cluster's CA.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
            .client_auth_optional(false)
    }

    /// Every outgoing connection over TLS: Ballista builds `http://` endpoints, which
    /// become `https://` ones trusting only the cluster's CA and presenting this
    /// member's certificate.
    pub fn endpoint_override(&self) -> EndpointOverrideFn {
        let tls = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone());
        Arc::new(move |endpoint: Endpoint| {
            let uri = endpoint.uri().to_string();
            let uri = match uri.strip_prefix("http://") {
                Some(rest) => format!("https://{rest}"),
                None => uri,
            };
            let endpoint = Endpoint::from_shared(uri)?
                .connect_timeout(Duration::from_secs(20))
                .tcp_nodelay(true)
                .tcp_keepalive(Some(Duration::from_secs(3600)))
                .http2_keep_alive_interval(Duration::from_secs(300))
                .keep_alive_timeout(Duration::from_secs(20))
                .keep_alive_while_idle(true)
                .tls_config(tls.clone())?;
            Ok(endpoint)
        })
    }
}

/// Refuses to listen on `host` without TLS unless it is a loopback address.
pub fn require_for(role: &str, host: &str, tls: Option<&ClusterTls>) -> Result<()> {
    if tls.is_some() || is_loopback(host) {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{role}: refusing to listen on {host} without TLS: anyone who can reach it could \
         run work on the cluster or read its results. Give the cluster's certificates \
         (--tls-ca, --tls-cert, --tls-key, or [cluster_tls] in kpidb.toml), or listen on \
         127.0.0.1"
    )))
}

/// Whether `host` is the any-address (`0.0.0.0`, `::`), which names no machine.
pub fn is_unspecified(host: &str) -> bool {
    host.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_listens_without_tls() {
        for host in ["127.0.0.1", "::1", "[::1]", "localhost"] {
            assert!(require_for("scheduler", host, None).is_ok(), "{host}");
        }
        for host in ["0.0.0.0", "10.0.0.5", "::", "machine1"] {
            let err = require_for("scheduler", host, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("without TLS"), "{host}: {err}");
        }
        let tls = ClusterTls {
            ca: "ca.pem".into(),
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        };
        assert!(require_for("executor", "0.0.0.0", Some(&tls)).is_ok());
    }
}
