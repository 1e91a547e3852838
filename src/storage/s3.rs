//! S3-compatible object storage (AWS S3, MinIO, Aliyun OSS, Tencent COS, Huawei OBS):
//! kpidb.toml's `[storage]` settings, the stores built from them with object_store's
//! S3 client, Delta Lake's commit protocol on them, and the registry a DataFusion
//! runtime (a session, a cluster executor) finds them through.
//!
//! Settings come from `[storage]`, then the standard `AWS_*` environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …). Secrets are read from the environment only
//! (a variable `[storage]` names, or the standard ones) and never printed.

use std::sync::{Arc, Once};
use std::time::Duration;

use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use deltalake::logstore::{default_logstore, logstore_factories, LogStore, LogStoreFactory};
use deltalake::logstore::{ObjectStoreRef, StorageConfig};
use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::{Error, Result};

/// `[storage]` in kpidb.toml: how to reach an S3-compatible object store.
#[derive(Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// The service's endpoint, e.g. `https://oss-cn-beijing.aliyuncs.com` or
    /// `http://127.0.0.1:9000` [default: AWS_ENDPOINT_URL, else AWS S3].
    pub endpoint: Option<String>,
    /// The region [default: AWS_REGION, else us-east-1].
    pub region: Option<String>,
    /// Accept a plain-HTTP endpoint [default: false, or AWS_ALLOW_HTTP].
    pub allow_http: Option<bool>,
    /// Address buckets as `https://BUCKET.endpoint` instead of `endpoint/BUCKET`
    /// [default: false, path-style].
    pub virtual_hosted_style: Option<bool>,
    /// The environment variable holding the access key id [default: AWS_ACCESS_KEY_ID].
    pub access_key_id_env: Option<String>,
    /// The environment variable holding the secret key [default: AWS_SECRET_ACCESS_KEY].
    pub secret_access_key_env: Option<String>,
    /// The environment variable holding a session token [default: AWS_SESSION_TOKEN].
    pub session_token_env: Option<String>,
    /// Seconds to wait for a connection [default: 5].
    pub connect_timeout: Option<u64>,
    /// How many times a failed request is retried [default: 3].
    pub retries: Option<usize>,
}

impl std::fmt::Debug for StoreSettings {
    /// Only names and addresses: the settings hold no secret, but say so plainly.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .finish_non_exhaustive()
    }
}

impl StoreSettings {
    /// The store of the bucket `url` names (`s3://BUCKET/...`), rooted at the bucket.
    pub fn bucket_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let bucket = url.host_str().unwrap_or_default();
        let connect = Duration::from_secs(self.connect_timeout.unwrap_or(5));
        let mut builder = AmazonS3Builder::new()
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(connect)
                    .with_timeout(Duration::from_secs(60)),
            )
            .with_retry(RetryConfig {
                max_retries: self.retries.unwrap_or(3),
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        for (key, value) in std::env::vars() {
            if key.starts_with("AWS_") {
                if let Ok(config) = key.to_ascii_lowercase().parse() {
                    builder = builder.with_config(config, value);
                }
            }
        }
        builder = builder.with_bucket_name(bucket);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some(allow) = self.allow_http {
            builder = builder.with_allow_http(allow);
        }
        if let Some(virtual_hosted) = self.virtual_hosted_style {
            builder = builder.with_virtual_hosted_style_request(virtual_hosted);
        }
        if let Some(value) = secret("access_key_id_env", &self.access_key_id_env)? {
            builder = builder.with_access_key_id(value);
        }
        if let Some(value) = secret("secret_access_key_env", &self.secret_access_key_env)? {
            builder = builder.with_secret_access_key(value);
        }
        if let Some(value) = secret("session_token_env", &self.session_token_env)? {
            builder = builder.with_token(value);
        }
        let store = builder.build().map_err(|e| {
            Error::usage(format!(
                "{}: cannot reach the bucket with these settings ([storage] in kpidb.toml, AWS_*): {e}",
                url.as_str().trim_end_matches('/')
            ))
        })?;
        Ok(Arc::new(store))
    }
}

/// The value of the variable a `[storage]` key names; an unset variable is an error
/// naming the variable (its value is never shown).
fn secret(key: &str, variable: &Option<String>) -> Result<Option<String>> {
    let Some(variable) = variable else {
        return Ok(None);
    };
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Ok(Some(value)),
        _ => Err(Error::usage(format!(
            "[storage] {key} names the environment variable {variable}, which is not set"
        ))),
    }
}

/// Delta Lake's own commit protocol on S3-compatible stores: a commit is a
/// put-if-absent (`If-None-Match: *`) of the next log entry, which AWS S3, MinIO and
/// most S3-compatible services honour, so two writers can never both win a version.
#[derive(Debug, Default)]
struct ConditionalPutLogStores;

impl LogStoreFactory for ConditionalPutLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Lets Delta Lake commit to `s3://` tables (once per process).
pub(crate) fn register_log_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let factory: Arc<dyn LogStoreFactory> = Arc::new(ConditionalPutLogStores);
        for scheme in ["s3://", "s3a://"] {
            let url = Url::parse(scheme).expect("scheme URL");
            logstore_factories().insert(url, Arc::clone(&factory));
        }
    });
}

/// A DataFusion object-store registry that also reaches `s3://` buckets with
/// `settings`, building each bucket's store the first time a plan reads it.
#[derive(Debug)]
pub struct BucketRegistry {
    known: DefaultObjectStoreRegistry,
    settings: StoreSettings,
}

impl BucketRegistry {
    pub fn new(settings: StoreSettings) -> Self {
        BucketRegistry {
            known: DefaultObjectStoreRegistry::new(),
            settings,
        }
    }
}

impl ObjectStoreRegistry for BucketRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        match self.known.get_store(url) {
            Ok(store) => Ok(store),
            Err(_) if matches!(url.scheme(), "s3" | "s3a") => {
                let store = self
                    .settings
                    .bucket_store(url)
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                let bucket = Url::parse(&format!("{}://{}", url.scheme(), url.authority()))
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                self.known.register_store(&bucket, Arc::clone(&store));
                Ok(store)
            }
            Err(e) => Err(e),
        }
    }
}
