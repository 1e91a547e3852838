//! The commit lock of a warehouse in a bucket, where there is no file to lock: an
//! object created only if absent (`If-None-Match: *`), renewed while held and
//! replaced only by the writer that read it (`If-Match`). A holder that dies stops
//! renewing, and its lease lapses after [`LEASE`], so a killed ingest never blocks
//! the warehouse for longer than that.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

use super::location::store_error;
use crate::Result;

/// How long a lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(30);

/// A held lease; released when dropped.
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    /// The lock object's current ETag, which renewals and the release check.
    etag: Arc<Mutex<Option<String>>>,
    renewal: tokio::task::JoinHandle<()>,
    released: bool,
}

impl Lease {
    /// Waits until the lock object at `path` is free (or lapsed), then holds it.
    pub async fn acquire(store: Arc<dyn ObjectStore>, path: ObjectPath, url: &str) -> Result<Self> {
        let owner = format!("{}-{}", std::process::id(), rand::random::<u64>());
        let mut wait = Duration::from_millis(20);
        loop {
            let body = body(&owner);
            let created = store
                .put_opts(&path, body.into(), PutOptions::from(PutMode::Create))
                .await;
            let etag = match created {
                Ok(put) => Some(put.e_tag),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    take_if_lapsed(&store, &path, &owner, url).await?
                }
                Err(e) => return Err(store_error(url, e)),
            };
            if let Some(etag) = etag {
                return Ok(Lease::held(store, path, etag));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    fn held(store: Arc<dyn ObjectStore>, path: ObjectPath, etag: Option<String>) -> Self {
        let etag = Arc::new(Mutex::new(etag));
        let renewal = tokio::spawn(renew(Arc::clone(&store), path.clone(), Arc::clone(&etag)));
        Lease {
            store,
            path,
            etag,
            renewal,
            released: false,
        }
    }
}

/// The lease at `path` when its holder let it lapse, now ours; `None` while it is held.
async fn take_if_lapsed(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    owner: &str,
    url: &str,
) -> Result<Option<Option<String>>> {
    let got = match store.get(path).await {
        Ok(got) => got,
        // Released between our attempt and this read: try again at once.
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_error(url, e)),
    };
    let etag = got.meta.e_tag.clone();
    let bytes = got.bytes().await.map_err(|e| store_error(url, e))?;
    let expires = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("expires_ms").and_then(|e| e.as_u64()))
        .unwrap_or(0);
    if expires > now_ms() {
        return Ok(None);
    }
    log::warn!("{url}: taking over a commit lock whose holder stopped renewing it");
    let update = PutMode::Update(UpdateVersion {
        e_tag: etag,
        version: None,
    });
    match store
        .put_opts(path, body(owner).into(), PutOptions::from(update))
        .await
    {
        Ok(put) => Ok(Some(put.e_tag)),
        Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
            Ok(None)
        }
        Err(e) => Err(store_error(url, e)),
    }
}

/// Extends the lease every third of its length while it is held.
async fn renew(store: Arc<dyn ObjectStore>, path: ObjectPath, etag: Arc<Mutex<Option<String>>>) {
    let owner = format!("{}-renewed", std::process::id());
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let current = etag.lock().expect("lease etag").clone();
        let update = PutMode::Update(UpdateVersion {
            e_tag: current,
            version: None,
        });
        match store
            .put_opts(&path, body(&owner).into(), PutOptions::from(update))
            .await
        {
            Ok(put) => *etag.lock().expect("lease etag") = put.e_tag,
            Err(e) => log::warn!("could not renew the commit lock {path}: {e}"),
        }
    }
}

impl Lease {
    /// Gives the lease up now.
    pub async fn release(mut self) {
        self.renewal.abort();
        if let Some((store, path, mine)) = self.parts() {
            remove(store, path, mine).await;
        }
    }

    /// What releasing needs, once: taken by `release` or `drop`, whichever comes first.
    fn parts(&mut self) -> Option<(Arc<dyn ObjectStore>, ObjectPath, Option<String>)> {
        if std::mem::replace(&mut self.released, true) {
            return None;
        }
        let mine = self.etag.lock().expect("lease etag").clone();
        Some((Arc::clone(&self.store), self.path.clone(), mine))
    }
}

/// Removes the lock object if it is still the one we hold.
async fn remove(store: Arc<dyn ObjectStore>, path: ObjectPath, mine: Option<String>) {
    let still_mine = match store.head(&path).await {
        Ok(meta) => mine.is_none() || meta.e_tag == mine,
        Err(_) => false,
    };
    if still_mine {
        if let Err(e) = store.delete(&path).await {
            log::warn!("could not release the commit lock {path}: {e}");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        // Released in the background; if the process ends first, the lease lapses.
        if let (Some((store, path, mine)), Ok(runtime)) =
            (self.parts(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(remove(store, path, mine));
        }
    }
}

fn body(owner: &str) -> Vec<u8> {
    serde_json::json!({
        "owner": owner,
        "expires_ms": now_ms() + LEASE.as_millis() as u64,
    })
    .to_string()
    .into_bytes()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
