//! `[server]` in kpidb.toml, merged with `kpidb serve` flags and environment
//! variables (which win), checked once at start-up so that a server never runs with
//! a setting it did not understand. The checks fail closed: a non-loopback address
//! with no credentials, half a TLS pair, or an unreadable secret stop the start.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// The `[server]` table of kpidb.toml. Unknown keys are errors.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// PostgreSQL wire protocol address, or "off" [default: 127.0.0.1:5433]
    pub pg_listen: Option<String>,
    /// HTTP API address, or "off" [default: 127.0.0.1:8080]
    pub http_listen: Option<String>,
    /// PEM certificate chain; with `tls_key`, both protocols speak only TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Memory all running queries may hold together, e.g. "2GiB" [default: 4GiB]
    pub memory_limit: Option<String>,
    /// Longest a query may run, planning and sending rows included, e.g. "30s" [default: 60s]
    pub query_timeout: Option<String>,
    /// Open connections allowed per protocol [default: 64]
    pub max_connections: Option<usize>,
    /// How often the server looks for new ingests [default: 2s]
    pub refresh_interval: Option<String>,
    /// PostgreSQL users (password authentication, SCRAM-SHA-256); also HTTP Basic.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// HTTP bearer tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// The password itself (keep the file private), or…
    pub password: Option<String>,
    /// …the name of an environment variable holding it.
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token (shown in logs, never the token).
    pub name: String,
    pub token: Option<String>,
    pub token_env: Option<String>,
}

/// What `kpidb serve` flags and environment variables override: the same keys as
/// the file (users and tokens excepted), plus one user and one token.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub flags: ServerConfig,
    /// KPIDB_USER / KPIDB_PASSWORD: one more user.
    pub user: Option<(String, String)>,
    /// KPIDB_TOKEN: one more bearer token.
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub name: String,
    pub secret: String,
}

/// The checked settings a server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub pg_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub memory_limit: usize,
    pub query_timeout: Duration,
    pub max_connections: usize,
    pub refresh_interval: Duration,
    pub users: Vec<Credential>,
    pub tokens: Vec<Credential>,
    /// Run queries and report runs on this Ballista cluster (kpidb.toml's `cluster`).
    pub cluster: Option<crate::cluster::ClusterUrl>,
}

impl Settings {
    pub fn resolve(config: &ServerConfig, overrides: Overrides) -> Result<Settings> {
        let flags = overrides.flags;
        let pick = |flag: Option<String>, file: &Option<String>| flag.or_else(|| file.clone());
        let pg_listen = listen(
            "pg_listen",
            pick(flags.pg_listen, &config.pg_listen),
            "127.0.0.1:5433",
        )?;
        let http_listen = listen(
            "http_listen",
            pick(flags.http_listen, &config.http_listen),
            "127.0.0.1:8080",
        )?;
        if pg_listen.is_none() && http_listen.is_none() {
            return Err(Error::usage(
                "server: both pg_listen and http_listen are off; nothing to serve",
            ));
        }
        let tls = match (
            flags.tls_cert.or_else(|| config.tls_cert.clone()),
            flags.tls_key.or_else(|| config.tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::usage(
                    "server: tls_cert is set but tls_key is not; give both or neither",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::usage(
                    "server: tls_key is set but tls_cert is not; give both or neither",
                ))
            }
        };
        let memory_limit = parse_size(
            "memory_limit",
            &pick(flags.memory_limit, &config.memory_limit).unwrap_or("4GiB".into()),
        )?;
        let query_timeout = parse_duration(
            "query_timeout",
            &pick(flags.query_timeout, &config.query_timeout).unwrap_or("60s".into()),
        )?;
        let refresh_interval = parse_duration(
            "refresh_interval",
            &pick(flags.refresh_interval, &config.refresh_interval).unwrap_or("2s".into()),
        )?;
        let max_connections = flags
            .max_connections
            .or(config.max_connections)
            .unwrap_or(64);
        if max_connections == 0 {
            return Err(Error::usage("server: max_connections must be at least 1"));
        }

        let mut users = Vec::new();
        for user in &config.users {
            let secret = secret(
                &format!("server.users '{}'", user.name),
                "password",
                &user.password,
                &user.password_env,
            )?;
            users.push(Credential {
                name: user.name.clone(),
                secret,
            });
        }
        if let Some((name, secret)) = overrides.user {
            users.push(Credential { name, secret });
        }
        let mut tokens = Vec::new();
        for token in &config.tokens {
            let secret = secret(
                &format!("server.tokens '{}'", token.name),
                "token",
                &token.token,
                &token.token_env,
            )?;
            tokens.push(Credential {
                name: token.name.clone(),
                secret,
            });
        }
        if let Some(secret) = overrides.token {
            tokens.push(Credential {
                name: "KPIDB_TOKEN".into(),
                secret,
            });
        }
        check_credentials(&users, &tokens)?;

        let settings = Settings {
            pg_listen,
            http_listen,
            tls,
            memory_limit,
            query_timeout,
            max_connections,
            refresh_interval,
            users,
            tokens,
            cluster: None,
        };
        settings.check_exposure()?;
        Ok(settings)
    }

    /// Whether clients must authenticate: always once any credential is configured.
    pub fn auth_required(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// Refuses to serve beyond this machine with nobody to authenticate against.
    fn check_exposure(&self) -> Result<()> {
        if let Some(addr) = self.pg_listen {
            if !addr.ip().is_loopback() && self.users.is_empty() {
                return Err(Error::usage(format!(
                    "refusing to serve PostgreSQL on {addr} without credentials: anyone who can \
                     reach it could read the warehouse. Add [[server.users]] to kpidb.toml \
                     (or set KPIDB_USER and KPIDB_PASSWORD), or listen on 127.0.0.1"
                )));
            }
        }
        if let Some(addr) = self.http_listen {
            if !addr.ip().is_loopback() && !self.auth_required() {
                return Err(Error::usage(format!(
                    "refusing to serve HTTP on {addr} without credentials: anyone who can reach \
                     it could read the warehouse. Add [[server.tokens]] or [[server.users]] to \
                     kpidb.toml (or set KPIDB_TOKEN), or listen on 127.0.0.1"
                )));
            }
        }
        Ok(())
    }
}

fn listen(key: &str, value: Option<String>, default: &str) -> Result<Option<SocketAddr>> {
    let value = value.unwrap_or_else(|| default.to_string());
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let mut addrs = value.to_socket_addrs().map_err(|e| {
        Error::usage(format!(
            "server: {key} = '{value}' is not an address (HOST:PORT): {e}"
        ))
    })?;
    addrs
        .next()
        .map(Some)
        .ok_or_else(|| Error::usage(format!("server: {key} = '{value}' resolves to no address")))
}

fn secret(what: &str, key: &str, inline: &Option<String>, env: &Option<String>) -> Result<String> {
    let value = match (inline, env) {
        (Some(value), None) => value.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            Error::usage(format!(
                "{what}: {key}_env names the environment variable {var}, which is not set"
            ))
        })?,
        (Some(_), Some(_)) => {
            return Err(Error::usage(format!(
                "{what}: give {key} or {key}_env, not both"
            )))
        }
        (None, None) => {
            return Err(Error::usage(format!(
                "{what}: {key} or {key}_env is required"
            )))
        }
    };
    if value.is_empty() {
        return Err(Error::usage(format!("{what}: the {key} is empty")));
    }
    Ok(value)
}

fn check_credentials(users: &[Credential], tokens: &[Credential]) -> Result<()> {
    let mut names = std::collections::BTreeSet::new();
    for user in users {
        if user.name.is_empty() {
            return Err(Error::usage("server.users: a user has an empty name"));
        }
        if !names.insert(user.name.as_str()) {
            return Err(Error::usage(format!(
                "server.users: user '{}' is configured twice",
                user.name
            )));
        }
    }
    for token in tokens {
        if token.secret.chars().count() < 16 {
            return Err(Error::usage(format!(
                "server.tokens '{}': the token is shorter than 16 characters; \
                 use a long random string (e.g. `openssl rand -hex 32`)",
                token.name
            )));
        }
    }
    Ok(())
}

/// "4GiB", "512MB", "1.5G", "1048576" → bytes.
pub fn parse_size(key: &str, text: &str) -> Result<usize> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| bad(key, text, "a size like 2GiB or 512MB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad(key, text, "a size like 2GiB or 512MB")),
    };
    let bytes = number * scale;
    if bytes < 1024.0 * 1024.0 {
        return Err(bad(key, text, "at least 1MiB"));
    }
    Ok(bytes as usize)
}

/// "30s", "500ms", "2m", "1h", "45" (seconds) → a duration.
pub fn parse_duration(key: &str, text: &str) -> Result<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| bad(key, text, "a duration like 30s or 500ms"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(bad(key, text, "a duration like 30s or 500ms")),
    };
    if seconds <= 0.0 {
        return Err(bad(key, text, "a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn bad(key: &str, text: &str, expected: &str) -> Error {
    Error::usage(format!("server: {key} = '{text}' is not {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("m", "2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("m", "512MB").unwrap(), 512 << 20);
        assert!(parse_size("m", "lots").is_err());
        assert!(parse_size("m", "10").is_err());
        assert_eq!(
            parse_duration("t", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("t", "2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("t", "0s").is_err());
        assert!(parse_duration("t", "soon").is_err());
    }

    #[test]
    fn fails_closed() {
        let open = ServerConfig {
            pg_listen: Some("0.0.0.0:5433".into()),
            ..Default::default()
        };
        let err = Settings::resolve(&open, Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("without credentials"), "{err}");

        let half_tls = ServerConfig {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        };
        let err = Settings::resolve(&half_tls, Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("tls_key"), "{err}");

        let short = ServerConfig {
            tokens: vec![TokenConfig {
                name: "bi".into(),
                token: Some("short".into()),
                token_env: None,
            }],
            ..Default::default()
        };
        assert!(Settings::resolve(&short, Overrides::default()).is_err());

        let loopback = Settings::resolve(&ServerConfig::default(), Overrides::default()).unwrap();
        assert!(!loopback.auth_required());
    }
}
