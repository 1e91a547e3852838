//! Where a warehouse lives: a local directory, or a prefix of an S3-compatible bucket
//! (`s3://bucket/prefix`). Every read and write of the warehouse's own files (Delta
//! tables, rollups, the read-only marker, the commit lock) goes through a [`Location`],
//! so the rest of kpidb does not care which it is.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use super::s3::StoreSettings;
use crate::{Error, Result};

/// A warehouse's place.
#[derive(Clone)]
pub enum Location {
    /// A local directory (absolute).
    Dir(PathBuf),
    /// A prefix of an object-store bucket.
    Bucket(Arc<Bucket>),
}

/// A prefix of a bucket and the store that reaches it.
#[derive(Clone)]
pub struct Bucket {
    /// `s3://bucket/prefix/`, always ending in `/`.
    url: Url,
    /// The bucket's store, rooted at the bucket (not the prefix).
    store: Arc<dyn ObjectStore>,
}

impl Location {
    /// Reads `text` as a warehouse location: `s3://bucket/prefix` is a bucket prefix,
    /// reached with `settings`; `file://` URLs and plain paths are local directories; any
    /// other scheme is refused by name, never taken for a directory.
    pub fn parse(text: &str, settings: &StoreSettings) -> Result<Self> {
        match scheme(text) {
            None => Ok(Location::Dir(absolute(Path::new(text))?)),
            Some(s) if s.eq_ignore_ascii_case("file") => {
                let path = &text[s.len() + 3..];
                Ok(Location::Dir(absolute(Path::new(path))?))
            }
            Some(s) if s.eq_ignore_ascii_case("s3") || s.eq_ignore_ascii_case("s3a") => {
                let mut url = Url::parse(text)
                    .map_err(|e| Error::usage(format!("{text}: not a valid URL: {e}")))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(Error::usage(format!(
                        "{text}: name the bucket, as s3://BUCKET/PREFIX"
                    )));
                }
                if !url.path().ends_with('/') {
                    url.set_path(&format!("{}/", url.path()));
                }
                let store = settings.bucket_store(&url)?;
                Ok(Location::Bucket(Arc::new(Bucket { url, store })))
            }
            Some(s) => Err(Error::usage(format!(
                "{text}: warehouses on {s}:// are not supported; a warehouse is a local \
                 directory (a path or a file:// URL) or an S3-compatible bucket \
                 (s3://BUCKET/PREFIX, see [storage] in kpidb.toml). Nothing was read or written."
            ))),
        }
    }

    /// The local directory, for a warehouse on disk.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Location::Dir(dir) => Some(dir),
            Location::Bucket(_) => None,
        }
    }

    /// The bucket's store and the warehouse's prefix in it, for a warehouse in a bucket.
    pub fn bucket(&self) -> Option<(&Url, &Arc<dyn ObjectStore>, ObjectPath)> {
        match self {
            Location::Dir(_) => None,
            Location::Bucket(b) => Some((&b.url, &b.store, b.prefix())),
        }
    }

    /// The URL of the directory `rel` (`dept_scores`, `_rollups/dept_totals`) holds,
    /// ending in `/`.
    pub fn url(&self, rel: &str) -> Result<Url> {
        match self {
            Location::Dir(dir) => {
                let path = dir.join(rel);
                Url::from_directory_path(&path).map_err(|_| {
                    Error::usage(format!("{} is not a valid directory path", path.display()))
                })
            }
            Location::Bucket(b) if rel.is_empty() => Ok(b.url.clone()),
            Location::Bucket(b) => b
                .url
                .join(&format!("{}/", rel.trim_end_matches('/')))
                .map_err(|e| Error::usage(format!("{}{rel}: {e}", b.url))),
        }
    }

    /// Whether `rel` holds a Delta table (has a `_delta_log`).
    pub async fn holds_table(&self, rel: &str) -> Result<bool> {
        match self {
            Location::Dir(dir) => Ok(dir.join(rel).join("_delta_log").is_dir()),
            Location::Bucket(b) => b.any_under(&format!("{rel}/_delta_log/")).await,
        }
    }

    /// The text of the file `rel`, or `None` when there is none.
    pub async fn read_text(&self, rel: &str) -> Result<Option<String>> {
        match self {
            Location::Dir(dir) => {
                let path = dir.join(rel);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Some(text)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
            Location::Bucket(b) => {
                let path = b.path(rel);
                match b.store.get(&path).await {
                    Ok(got) => {
                        let bytes = got.bytes().await.map_err(|e| b.error(rel, e))?;
                        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(b.error(rel, e)),
                }
            }
        }
    }

    /// Whether anything is stored here yet.
    pub async fn is_empty(&self) -> Result<bool> {
        match self {
            Location::Dir(dir) => match std::fs::read_dir(dir) {
                Ok(mut entries) => Ok(entries.next().is_none()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
                Err(e) => Err(Error::io(dir, e)),
            },
            Location::Bucket(b) => Ok(!b.any_under("").await?),
        }
    }

    /// Makes the directory `rel` ("" for the warehouse itself) where directories exist.
    pub fn prepare(&self, rel: &str) -> Result<()> {
        if let Location::Dir(dir) = self {
            let path = dir.join(rel);
            std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    /// A Delta table at `url` (from [`Location::url`]), not yet loaded.
    pub fn delta(&self, url: Url) -> Result<DeltaTable> {
        self.builder(url.clone())?
            .build()
            .map_err(|e| delta_error(&url, e))
    }

    /// The Delta table at `url`, loaded at `version` (`None`: the latest).
    pub async fn open_delta(&self, url: Url, version: Option<u64>) -> Result<DeltaTable> {
        let mut builder = self.builder(url.clone())?;
        if let Some(version) = version {
            builder = builder.with_version(version);
        }
        builder.load().await.map_err(|e| delta_error(&url, e))
    }

    fn builder(&self, url: Url) -> Result<DeltaTableBuilder> {
        let builder = DeltaTableBuilder::from_url(url)?;
        Ok(match self {
            Location::Dir(_) => builder,
            Location::Bucket(b) => {
                super::s3::register_log_stores();
                builder.with_storage_backend(Arc::clone(&b.store), b.url.clone())
            }
        })
    }
}

impl Bucket {
    fn prefix(&self) -> ObjectPath {
        ObjectPath::from(self.url.path().trim_matches('/'))
    }

    fn path(&self, rel: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{rel}", self.url.path().trim_matches('/')))
    }

    async fn any_under(&self, rel: &str) -> Result<bool> {
        let prefix = match rel {
            "" => self.prefix(),
            rel => self.path(rel.trim_end_matches('/')),
        };
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        match self.store.list(prefix.as_ref()).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(self.error(rel, e)),
        }
    }

    /// An object-store failure, naming the warehouse URL (never a secret).
    pub(crate) fn error(&self, rel: &str, e: object_store::Error) -> Error {
        store_error(&format!("{}{rel}", self.url), e)
    }
}

/// One clear message for an object-store failure at `url`: what went wrong in words,
/// then the store's own message.
pub(crate) fn store_error(url: &str, e: object_store::Error) -> Error {
    store_failure(url, &e.to_string())
}

/// A Delta Lake error at the table `url`: when a store request under it failed (a
/// data file or log entry not written, a listing refused), the store's message
/// naming the URL; any other error as it is.
pub(crate) fn delta_error(url: &Url, e: deltalake::DeltaTableError) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(inner) = cause {
        if let Some(store) = inner.downcast_ref::<object_store::Error>() {
            return store_failure(url.as_str().trim_end_matches('/'), &store.to_string());
        }
        // An upload's writer wraps the store's error in an io::Error, whose `source`
        // skips it.
        cause = match inner.downcast_ref::<std::io::Error>() {
            Some(io) if io.get_ref().is_some() => io.get_ref().map(|e| e as _),
            _ => inner.source(),
        };
    }
    e.into()
}

fn store_failure(url: &str, text: &str) -> Error {
    let what = if text.contains("NoSuchBucket") {
        "the bucket does not exist"
    } else if text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("AccessDenied")
        || text.contains("403 Forbidden")
    {
        "access denied: check the credentials ([storage] in kpidb.toml, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    } else if text.contains("error sending request")
        || text.contains("Connection refused")
        || text.contains("timed out")
    {
        "the object store cannot be reached: check the endpoint ([storage] endpoint, or AWS_ENDPOINT_URL); nothing was committed"
    } else {
        "the object store failed; nothing was committed"
    };
    // The service's XML error body says no more than its code.
    let detail = match text.split_once("<?xml") {
        Some((head, body)) => {
            let code = body
                .split_once("<Code>")
                .and_then(|(_, rest)| rest.split_once("</Code>"))
                .map(|(code, _)| code)
                .unwrap_or("");
            format!("{}: {code}", head.trim_end_matches([' ', ':']))
        }
        None => text.to_string(),
    };
    Error::Store {
        url: url.to_string(),
        message: format!("{what} ({detail})"),
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dir(dir) => write!(f, "{}", dir.display()),
            Location::Bucket(b) => write!(f, "{}", b.url.as_str().trim_end_matches('/')),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// The scheme of `text` when it is a URL (`s3` of `s3://b/w`), else `None`.
fn scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let is_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some(scheme)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}
