//! External sources: `[[sources]]` in kpidb.toml attaches Parquet, CSV or Delta data
//! outside the warehouse as read-only tables under their own names, so an analyst can
//! join the warehouse with other data. They are read where they lie, never written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

use super::{Location, StoreSettings};
use crate::{Error, Result};

/// How a source's files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Parquet,
    Csv,
    Delta,
}

/// One `[[sources]]` entry.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The table name SQL uses: letters, digits and `_`, not a warehouse table's.
    pub name: String,
    pub format: SourceFormat,
    /// A file or directory (relative to kpidb.toml), or `s3://BUCKET/PATH` (reached
    /// with `[storage]`); every file under a directory with the format's extension is
    /// read (Delta: the table's directory).
    pub location: PathBuf,
    /// CSV: whether the first line names the columns (default true).
    #[serde(default)]
    pub has_header: Option<bool>,
    /// CSV: the field separator (default `,`).
    #[serde(default)]
    pub delimiter: Option<char>,
}

impl Source {
    /// Checks the name and resolves the location against `base` (kpidb.toml's directory).
    pub fn resolved(&self, base: Option<&Path>) -> Result<Source> {
        let name = &self.name;
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(Error::usage(format!(
                "[[sources]] name '{name}': use lower-case letters, digits and _ (starting with a letter)"
            )));
        }
        if crate::model::table(name).is_some() {
            return Err(Error::usage(format!(
                "[[sources]] name '{name}' is a warehouse table; give the source another name"
            )));
        }
        let location = match (base, self.url()) {
            (_, Some(url)) if !matches!(url.scheme(), "s3" | "s3a") => {
                return Err(Error::usage(format!(
                    "[[sources]] {name}: {} is not supported; a source is a local file or \
                     directory, or s3://BUCKET/PATH",
                    self.location.display()
                )))
            }
            (Some(base), None) if self.location.is_relative() => base.join(&self.location),
            _ => self.location.clone(),
        };
        Ok(Source {
            location,
            ..self.clone()
        })
    }

    /// The location as a URL, when it is one (`s3://…`).
    pub fn url(&self) -> Option<url::Url> {
        let text = self.location.to_string_lossy();
        text.contains("://")
            .then(|| url::Url::parse(&text).ok())
            .flatten()
    }

    /// The source as a read-only table; one in a bucket is reached with `storage`.
    pub async fn table(
        &self,
        ctx: &SessionContext,
        storage: &StoreSettings,
    ) -> Result<Arc<dyn TableProvider>> {
        let place = || format!("source {} ({})", self.name, self.location.display());
        if let Some(url) = self.url() {
            if self.format == SourceFormat::Delta {
                let location = Location::parse(url.as_str(), storage)?;
                let table = location
                    .open_delta(location.url("")?, None)
                    .await
                    .map_err(|e| Error::usage(format!("{}: not a Delta table: {e}", place())))?;
                return Ok(Arc::new(super::DeltaSnapshotTable::open(&table).await?));
            }
            return self.listing(ctx, url.as_str()).await;
        }
        if !self.location.exists() {
            return Err(Error::usage(format!(
                "{}: no such file or directory",
                place()
            )));
        }
        let location =
            std::path::absolute(&self.location).map_err(|e| Error::io(&self.location, e))?;
        if self.format == SourceFormat::Delta {
            let url = url::Url::from_directory_path(&location)
                .map_err(|_| Error::usage(format!("{}: not a directory", place())))?;
            let table = deltalake::open_table(url)
                .await
                .map_err(|e| Error::usage(format!("{}: not a Delta table: {e}", place())))?;
            return Ok(Arc::new(super::DeltaSnapshotTable::open(&table).await?));
        }
        let text = match location.is_dir() {
            true => format!("{}/", location.display()),
            false => location.display().to_string(),
        };
        self.listing(ctx, &text).await
    }

    /// Parquet or CSV files at `text` (a path or URL; a directory ends in `/`).
    async fn listing(&self, ctx: &SessionContext, text: &str) -> Result<Arc<dyn TableProvider>> {
        let place = format!("source {} ({})", self.name, self.location.display());
        let url = ListingTableUrl::parse(text)?;
        let format: Arc<dyn FileFormat> = match self.format {
            SourceFormat::Csv => Arc::new(
                CsvFormat::default()
                    .with_has_header(self.has_header.unwrap_or(true))
                    .with_delimiter(self.delimiter.unwrap_or(',') as u8),
            ),
            _ => Arc::new(ParquetFormat::default()),
        };
        let extension = match self.format {
            SourceFormat::Csv => ".csv",
            _ => ".parquet",
        };
        let options = ListingOptions::new(format).with_file_extension(extension);
        let state = ctx.state();
        let schema = options
            .infer_schema(&state, &url)
            .await
            .map_err(|e| Error::usage(format!("{place}: cannot be read: {e}")))?;
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }
}
