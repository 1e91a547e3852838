//! Pinning the whole warehouse at one point in its past. Delta versions are per
//! table, so a pin is either a timestamp (every table as it was then), a snapshot
//! naming each table's version (`departments=0,dept_scores=3`, as `kpidb snapshot`
//! prints and reports record), or one version number applied to every table.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AsOf {
    #[default]
    Latest,
    /// The same version number for every table.
    Version(u64),
    /// A version per table; tables not named are read at their latest version.
    Versions(BTreeMap<String, u64>),
    /// Every table as it was at this instant.
    Timestamp(DateTime<Utc>),
}

impl AsOf {
    /// Parses `--as-of-version`: `N`, or `table=N[,table=N…]`.
    pub fn parse_version(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Ok(v) = text.parse::<u64>() {
            return Ok(AsOf::Version(v));
        }
        let mut versions = BTreeMap::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (table, version) = part.split_once('=').ok_or_else(|| bad_version(text))?;
            let table = crate::model::table_or_err(table.trim())?;
            let version = version.trim().parse().map_err(|_| bad_version(text))?;
            versions.insert(table.name.to_string(), version);
        }
        if versions.is_empty() {
            return Err(bad_version(text));
        }
        Ok(AsOf::Versions(versions))
    }

    /// Parses `--as-of`: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (end of day UTC).
    pub fn parse_timestamp(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
            return Ok(AsOf::Timestamp(ts.with_timezone(&Utc)));
        }
        for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
            if let Ok(ts) = NaiveDateTime::parse_from_str(text, format) {
                return Ok(AsOf::Timestamp(ts.and_utc()));
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let end = date.and_hms_milli_opt(23, 59, 59, 999).expect("valid time");
            return Ok(AsOf::Timestamp(end.and_utc()));
        }
        Err(Error::usage(format!(
            "--as-of '{text}' is not a timestamp; use RFC 3339 (2024-03-01T12:00:00+08:00), \
             'YYYY-MM-DD HH:MM:SS' (UTC) or 'YYYY-MM-DD'"
        )))
    }

    /// The pin for one table: `Latest`, `Version` or `Timestamp`.
    pub fn version_for(&self, table: &str) -> AsOf {
        match self {
            AsOf::Versions(map) => map
                .get(table)
                .map(|v| AsOf::Version(*v))
                .unwrap_or(AsOf::Latest),
            other => other.clone(),
        }
    }
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsOf::Latest => write!(f, "latest"),
            AsOf::Version(v) => write!(f, "{v}"),
            AsOf::Versions(map) => {
                let parts: Vec<String> = map.iter().map(|(t, v)| format!("{t}={v}")).collect();
                write!(f, "{}", parts.join(","))
            }
            AsOf::Timestamp(ts) => write!(f, "{}", ts.to_rfc3339()),
        }
    }
}

fn bad_version(text: &str) -> Error {
    Error::usage(format!(
        "--as-of-version '{text}' is not a version; use a number (every table) \
         or table=N pairs such as departments=0,dept_scores=3 (see `kpidb snapshot`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(AsOf::parse_version("3").unwrap(), AsOf::Version(3));
        let pinned = AsOf::parse_version("dept_scores=2, departments=0").unwrap();
        assert_eq!(pinned.version_for("dept_scores"), AsOf::Version(2));
        assert_eq!(pinned.version_for("projects"), AsOf::Latest);
        assert_eq!(
            AsOf::parse_version(&pinned.to_string()).unwrap(),
            pinned,
            "the printed snapshot parses back"
        );
        assert!(AsOf::parse_version("nope=1").is_err());
        assert!(AsOf::parse_version("x").is_err());
    }

    #[test]
    fn parses_timestamps() {
        assert!(AsOf::parse_timestamp("2024-03-01T12:00:00+08:00").is_ok());
        assert!(AsOf::parse_timestamp("2024-03-01 04:00:00").is_ok());
        assert!(AsOf::parse_timestamp("2024-03-01").is_ok());
        assert!(AsOf::parse_timestamp("yesterday").is_err());
    }
}
