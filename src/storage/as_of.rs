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

    /// Parses `--as-of`: RFC 3339 or `YYYY-MM-DD HH:MM[:SS]±HH:MM` (any offset), else
    /// `YYYY-MM-DD HH:MM[:SS]` in `zone`, or `YYYY-MM-DD` (the end of that day in `zone`).
    pub fn parse_timestamp(text: &str, zone: &chrono_tz::Tz) -> Result<Self> {
        use chrono::TimeZone;
        let text = text.trim();
        if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
            return Ok(AsOf::Timestamp(ts.with_timezone(&Utc)));
        }
        for format in [
            "%Y-%m-%d %H:%M:%S%:z",
            "%Y-%m-%d %H:%M:%S%z",
            "%Y-%m-%d %H:%M%:z",
        ] {
            if let Ok(ts) = DateTime::parse_from_str(text, format) {
                return Ok(AsOf::Timestamp(ts.with_timezone(&Utc)));
            }
        }
        let local = |naive: NaiveDateTime| -> Result<Self> {
            match zone.from_local_datetime(&naive).earliest() {
                Some(ts) => Ok(AsOf::Timestamp(ts.with_timezone(&Utc))),
                None => Err(Error::usage(format!(
                    "--as-of '{text}': {naive} does not exist in {} (the clocks skip it)",
                    zone.name()
                ))),
            }
        };
        for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                return local(naive);
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let end = date.and_hms_milli_opt(23, 59, 59, 999).expect("valid time");
            return local(end);
        }
        Err(Error::usage(format!(
            "--as-of '{text}' is not a timestamp; use RFC 3339 (2024-03-01T12:00:00+08:00), \
             'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD' (in {}, the configured time zone; an \
             explicit offset such as +08:00 or Z is always accepted)",
            zone.name()
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
    fn timestamps_read_in_the_zone_unless_they_carry_an_offset() {
        let beijing = chrono_tz::Asia::Shanghai;
        let at = |text: &str, zone: &chrono_tz::Tz| match AsOf::parse_timestamp(text, zone) {
            Ok(AsOf::Timestamp(ts)) => ts.to_rfc3339(),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            at("2024-03-01T12:00:00+08:00", &beijing),
            "2024-03-01T04:00:00+00:00"
        );
        assert_eq!(
            at("2024-03-01 12:00:00Z", &beijing),
            "2024-03-01T12:00:00+00:00"
        );
        assert_eq!(
            at("2024-03-01 12:00:00+08:00", &chrono_tz::UTC),
            "2024-03-01T04:00:00+00:00"
        );
        assert_eq!(
            at("2024-03-01 12:00", &beijing),
            "2024-03-01T04:00:00+00:00"
        );
        assert_eq!(
            at("2024-03-01 12:00", &chrono_tz::UTC),
            "2024-03-01T12:00:00+00:00"
        );
        // A date is the end of that day where the user is.
        assert_eq!(at("2026-12-01", &beijing), "2026-12-01T15:59:59.999+00:00");
        // A local time the clocks skip is refused by name.
        let skipped = AsOf::parse_timestamp("2024-03-10 02:30", &chrono_tz::America::New_York);
        assert!(skipped.unwrap_err().to_string().contains("does not exist"));
        let bad = AsOf::parse_timestamp("yesterday", &beijing).unwrap_err();
        assert!(bad.to_string().contains("Asia/Shanghai"), "{bad}");
    }
}
