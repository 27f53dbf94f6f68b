//! The bucket's configuration, with Cortex's key names and defaults (`blocks_storage.backend`,
//! `blocks_storage.s3.*`, `.gcs.*`, `.azure.*`, `.filesystem.*`), and building the store from it.
//!
//! ```yaml
//! backend: filesystem          # filesystem (default here; Cortex's is s3), s3, gcs, azure
//! filesystem:
//!   dir: ./data/bucket
//! s3:
//!   endpoint: s3.eu-west-1.amazonaws.com   # host[:port], no scheme; empty: AWS for `region`
//!   region: eu-west-1                      # empty: us-east-1 (or AWS_REGION)
//!   bucket_name: blocks
//!   access_key_id: ...                     # both empty: AWS_* variables, then instance roles
//!   secret_access_key: ...
//!   insecure: false                        # true: http instead of https
//!   signature_version: v4                  # only v4
//!   bucket_lookup_type: auto               # auto, virtual-hosted, path
//!   http: {idle_conn_timeout: 1m30s, response_header_timeout: 2m, insecure_skip_verify: false,
//!          tls_handshake_timeout: 10s, max_idle_connections_per_host: 100, ...}
//! gcs:
//!   bucket_name: blocks
//!   service_account: '{"type": "service_account", ...}'  # the key file's JSON; empty: ADC
//! azure:
//!   account_name: ...
//!   account_key: ...                        # empty: managed identity / environment
//!   container_name: blocks
//!   endpoint_suffix: blob.core.windows.net
//!   connection_string: ''                   # Mimir's: if set, account, key and endpoint from it
//!                                           # (e.g. Azurite's), see bucket/azure.rs
//!   max_retries: 20
//!   http: {...}                             # as s3.http
//! ```
//!
//! Cortex's `blocks_storage` also holds `tsdb` and `bucket_store`; serde cannot combine
//! `flatten` with `deny_unknown_fields`, so the embedding config holds these five fields itself
//! and builds a [`BucketConfig`] from them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;

use super::azure::AzureConnection;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use serde::Deserialize;

use super::{BucketError, Result};

/// The whole request may take at most this long (a multipart part, or a get). Cortex has no
/// such limit; `object_store`'s default of 30 s is too short for large objects on slow links.
const REQUEST_TIMEOUT: Duration = Duration::from_mins(10);

/// Which object store holds the blocks (`blocks_storage.backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A local directory: single-node setups and tests.
    #[default]
    Filesystem,
    S3,
    Gcs,
    Azure,
}

/// `blocks_storage.{backend, filesystem, s3, gcs, azure}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketConfig {
    pub backend: Backend,
    pub filesystem: FilesystemConfig,
    pub s3: S3Config,
    pub gcs: GcsConfig,
    pub azure: AzureConfig,
}

/// `blocks_storage.filesystem`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesystemConfig {
    /// The bucket's root directory; created if missing.
    pub dir: PathBuf,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            dir: PathBuf::from("./data/bucket"),
        }
    }
}

/// `blocks_storage.s3`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `host[:port]` of the S3 endpoint, without a scheme; empty for AWS's endpoint of `region`.
    pub endpoint: String,
    /// Empty: `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1` (Cortex asks the bucket's
    /// location instead; set it for AWS buckets elsewhere).
    pub region: String,
    pub bucket_name: String,
    /// Empty (with `secret_access_key`): credentials from `AWS_*` variables, web identity or the
    /// instance's role.
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Use `http://` instead of `https://`.
    pub insecure: bool,
    /// Only `v4` is supported.
    pub signature_version: String,
    pub bucket_lookup_type: BucketLookupType,
    pub http: HttpConfig,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            region: String::new(),
            bucket_name: String::new(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            insecure: false,
            signature_version: "v4".into(),
            bucket_lookup_type: BucketLookupType::Auto,
            http: HttpConfig::default(),
        }
    }
}

/// `blocks_storage.s3.bucket_lookup_type`: how the bucket appears in request URLs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BucketLookupType {
    /// Virtual-hosted for AWS endpoints (or no endpoint), path style for anything else.
    #[default]
    Auto,
    /// `https://<bucket>.<endpoint>/<key>`.
    VirtualHosted,
    /// `https://<endpoint>/<bucket>/<key>`.
    Path,
}

/// `blocks_storage.{s3,azure}.http`: the HTTP client's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// How long an idle pooled connection is kept.
    #[serde(with = "humantime_serde")]
    pub idle_conn_timeout: Duration,
    /// The longest wait for the server between two reads of a response (a stalled server).
    #[serde(with = "humantime_serde")]
    pub response_header_timeout: Duration,
    /// Accept any certificate and host name over https.
    pub insecure_skip_verify: bool,
    /// The longest time to establish a connection, TLS handshake included.
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    /// Accepted for compatibility with Cortex configs; not applied.
    #[serde(with = "humantime_serde")]
    pub expect_continue_timeout: Duration,
    /// Accepted for compatibility with Cortex configs; not applied.
    pub max_idle_connections: usize,
    /// Idle connections kept per host.
    pub max_idle_connections_per_host: usize,
    /// Accepted for compatibility with Cortex configs; not applied.
    pub max_connections_per_host: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            idle_conn_timeout: Duration::from_secs(90),
            response_header_timeout: Duration::from_mins(2),
            insecure_skip_verify: false,
            tls_handshake_timeout: Duration::from_secs(10),
            expect_continue_timeout: Duration::from_secs(1),
            max_idle_connections: 100,
            max_idle_connections_per_host: 100,
            max_connections_per_host: 0,
        }
    }
}

/// `blocks_storage.gcs`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcsConfig {
    pub bucket_name: String,
    /// The JSON of a service account key file (its content, not its path). Empty: Google's
    /// default logic (`GOOGLE_APPLICATION_CREDENTIALS`, then the instance's account).
    pub service_account: Secret,
}

/// `blocks_storage.azure`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfig {
    pub account_name: String,
    /// Empty: managed identity or `AZURE_*` variables.
    pub account_key: Secret,
    pub container_name: String,
    /// The account name is prefixed to it to form the host name.
    pub endpoint_suffix: String,
    /// An Azure storage connection string (Mimir's `connection_string`): when set, the account,
    /// its key and the blob endpoint come from it, and the three fields above are not used.
    pub connection_string: Secret,
    /// Retries of a failed request.
    pub max_retries: usize,
    pub http: HttpConfig,
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig {
            account_name: String::new(),
            account_key: Secret::default(),
            container_name: String::new(),
            endpoint_suffix: "blob.core.windows.net".into(),
            connection_string: Secret::default(),
            max_retries: 20,
            http: HttpConfig::default(),
        }
    }
}

/// A credential: deserialized as a plain string, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

fn invalid(key: String, reason: impl Into<String>) -> BucketError {
    BucketError::Config {
        key,
        reason: reason.into(),
    }
}

fn host_without_scheme(key: String, value: &str) -> Result<()> {
    if value.contains("://") || value.contains('/') {
        return Err(invalid(
            key,
            format!(
                "{value:?} must be a host name with an optional port, without a scheme or path"
            ),
        ));
    }
    Ok(())
}

impl BucketConfig {
    /// Checks the settings of the chosen backend; errors name the key under `blocks_storage`.
    pub fn validate(&self) -> Result<()> {
        self.validate_at("blocks_storage")
    }

    /// As [`BucketConfig::validate`], with the keys under `prefix` (e.g. `ruler_storage`).
    pub fn validate_at(&self, prefix: &str) -> Result<()> {
        let key = |section: &str, name: &str| format!("{prefix}.{section}.{name}");
        match self.backend {
            Backend::Filesystem => {
                if self.filesystem.dir.as_os_str().is_empty() {
                    return Err(invalid(key("filesystem", "dir"), "must be set"));
                }
            }
            Backend::S3 => {
                let s3 = &self.s3;
                if s3.bucket_name.is_empty() {
                    return Err(invalid(
                        key("s3", "bucket_name"),
                        "must be set when the backend is s3",
                    ));
                }
                host_without_scheme(key("s3", "endpoint"), &s3.endpoint)?;
                if s3.signature_version != "v4" {
                    return Err(invalid(
                        key("s3", "signature_version"),
                        format!("{:?} is not supported; use v4", s3.signature_version),
                    ));
                }
                if s3.access_key_id.is_empty() != s3.secret_access_key.is_empty() {
                    return Err(invalid(
                        key("s3", "secret_access_key"),
                        "access_key_id and secret_access_key must be set together",
                    ));
                }
            }
            Backend::Gcs => {
                if self.gcs.bucket_name.is_empty() {
                    return Err(invalid(
                        key("gcs", "bucket_name"),
                        "must be set when the backend is gcs",
                    ));
                }
                let sa = self.gcs.service_account.expose();
                if !sa.is_empty()
                    && !serde_json::from_str::<serde_json::Value>(sa).is_ok_and(|v| v.is_object())
                {
                    return Err(invalid(
                        key("gcs", "service_account"),
                        "must be the JSON content of a service account key file",
                    ));
                }
            }
            Backend::Azure => {
                let azure = &self.azure;
                let by_string = !azure.connection_string.is_empty();
                if by_string {
                    AzureConnection::parse(azure.connection_string.expose())
                        .map_err(|e| invalid(key("azure", "connection_string"), e))?;
                } else if azure.account_name.is_empty() {
                    return Err(invalid(
                        key("azure", "account_name"),
                        "must be set when the backend is azure",
                    ));
                }
                if azure.container_name.is_empty() {
                    return Err(invalid(
                        key("azure", "container_name"),
                        "must be set when the backend is azure",
                    ));
                }
                if !by_string {
                    if azure.endpoint_suffix.is_empty() {
                        return Err(invalid(key("azure", "endpoint_suffix"), "must be set"));
                    }
                    host_without_scheme(key("azure", "endpoint_suffix"), &azure.endpoint_suffix)?;
                }
            }
        }
        Ok(())
    }

    /// The filesystem backend's store (whatever `backend` says), creating its directory.
    pub(crate) fn build_local(&self) -> Result<LocalFileSystem> {
        let dir = &self.filesystem.dir;
        std::fs::create_dir_all(dir).map_err(|e| {
            invalid(
                "blocks_storage.filesystem.dir".into(),
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        Ok(LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| invalid("blocks_storage.filesystem.dir".into(), e.to_string()))?
            .with_automatic_cleanup(true))
    }

    /// Validates the configuration and builds the chosen backend's store. Builds do no I/O
    /// except creating the filesystem backend's directory; credentials are checked on first use.
    pub fn build_store(&self) -> Result<Arc<dyn ObjectStore>> {
        self.validate()?;
        let built = |section: &str, e: object_store::Error| {
            invalid(format!("blocks_storage.{section}"), e.to_string())
        };
        match self.backend {
            Backend::Filesystem => Ok(Arc::new(self.build_local()?)),
            Backend::S3 => {
                install_tls_provider();
                Ok(Arc::new(
                    self.s3_builder().build().map_err(|e| built("s3", e))?,
                ))
            }
            Backend::Gcs => {
                install_tls_provider();
                let gcs = &self.gcs;
                let builder = if gcs.service_account.is_empty() {
                    GoogleCloudStorageBuilder::from_env()
                } else {
                    GoogleCloudStorageBuilder::new()
                        .with_service_account_key(gcs.service_account.expose())
                };
                let store = builder
                    .with_bucket_name(&gcs.bucket_name)
                    .with_client_options(client_options(&HttpConfig::default(), false))
                    .build()
                    .map_err(|e| built("gcs", e))?;
                Ok(Arc::new(store))
            }
            Backend::Azure => {
                install_tls_provider();
                let azure = &self.azure;
                let conn = if azure.connection_string.is_empty() {
                    AzureConnection {
                        account: azure.account_name.clone(),
                        key: Some(azure.account_key.expose().to_string()).filter(|k| !k.is_empty()),
                        endpoint: format!(
                            "https://{}.{}",
                            azure.account_name, azure.endpoint_suffix
                        ),
                    }
                } else {
                    // Checked by `validate` above.
                    AzureConnection::parse(azure.connection_string.expose())
                        .map_err(|e| invalid("blocks_storage.azure.connection_string".into(), e))?
                };
                let mut builder = MicrosoftAzureBuilder::new()
                    .with_account(&conn.account)
                    .with_container_name(&azure.container_name)
                    .with_endpoint(conn.endpoint.clone())
                    .with_retry(RetryConfig {
                        max_retries: azure.max_retries,
                        ..RetryConfig::default()
                    })
                    .with_client_options(client_options(&azure.http, conn.is_http()));
                if let Some(k) = &conn.key {
                    builder = builder.with_access_key(k);
                }
                Ok(Arc::new(builder.build().map_err(|e| built("azure", e))?))
            }
        }
    }

    fn s3_builder(&self) -> AmazonS3Builder {
        let s3 = &self.s3;
        let mut builder = if s3.access_key_id.is_empty() {
            AmazonS3Builder::from_env()
        } else {
            AmazonS3Builder::new()
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(s3.secret_access_key.expose())
        };
        builder = builder
            .with_bucket_name(&s3.bucket_name)
            .with_client_options(client_options(&s3.http, s3.insecure));
        if !s3.region.is_empty() {
            builder = builder.with_region(&s3.region);
        }
        let host = s3.endpoint.split(':').next().unwrap_or_default();
        let virtual_hosted = match s3.bucket_lookup_type {
            BucketLookupType::Auto => s3.endpoint.is_empty() || host.ends_with(".amazonaws.com"),
            BucketLookupType::VirtualHosted => true,
            BucketLookupType::Path => false,
        };
        if !s3.endpoint.is_empty() {
            let scheme = if s3.insecure { "http" } else { "https" };
            builder = builder.with_endpoint(if virtual_hosted {
                format!("{scheme}://{}.{}", s3.bucket_name, s3.endpoint)
            } else {
                format!("{scheme}://{}", s3.endpoint)
            });
        }
        builder.with_virtual_hosted_style_request(virtual_hosted)
    }
}

fn client_options(http: &HttpConfig, allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_allow_invalid_certificates(http.insecure_skip_verify)
        .with_pool_idle_timeout(http.idle_conn_timeout)
        .with_pool_max_idle_per_host(http.max_idle_connections_per_host)
        .with_connect_timeout(http.tls_handshake_timeout)
        .with_read_timeout(http.response_header_timeout)
        .with_timeout(REQUEST_TIMEOUT)
}

/// rustls is built with ring only (no aws-lc: no cmake, nasm or long C build); reqwest's
/// `rustls-no-provider` needs the process default provider set. Setting it twice is harmless.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> BucketConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_are_cortex_s() {
        let cfg = BucketConfig::default();
        assert_eq!(cfg.backend, Backend::Filesystem);
        assert_eq!(cfg.filesystem.dir, PathBuf::from("./data/bucket"));
        assert_eq!(cfg.s3.signature_version, "v4");
        assert_eq!(cfg.s3.http.idle_conn_timeout, Duration::from_secs(90));
        assert_eq!(cfg.azure.endpoint_suffix, "blob.core.windows.net");
        assert_eq!(cfg.azure.max_retries, 20);
        assert_eq!(parse("{}"), cfg);
    }

    #[test]
    fn parses_cortex_keys() {
        let cfg = parse(
            "backend: s3\n\
             s3:\n  endpoint: minio:9000\n  bucket_name: blocks\n  access_key_id: a\n  \
             secret_access_key: s\n  insecure: true\n  bucket_lookup_type: path\n  \
             http:\n    idle_conn_timeout: 30s\n",
        );
        assert_eq!(cfg.backend, Backend::S3);
        assert_eq!(cfg.s3.endpoint, "minio:9000");
        assert!(cfg.s3.insecure);
        assert_eq!(cfg.s3.bucket_lookup_type, BucketLookupType::Path);
        assert_eq!(cfg.s3.secret_access_key.expose(), "s");
        assert_eq!(cfg.s3.http.idle_conn_timeout, Duration::from_secs(30));
        cfg.validate().unwrap();
        let azure = parse(
            "backend: azure\nazure:\n  account_name: acc\n  account_key: a2V5\n  \
             container_name: blocks\n  max_retries: 3\n",
        );
        assert_eq!(azure.azure.max_retries, 3);
        azure.build_store().unwrap();
        let gcs = parse("backend: gcs\ngcs:\n  bucket_name: blocks\n");
        assert_eq!(gcs.gcs.bucket_name, "blocks");
        gcs.build_store().unwrap();
    }

    #[test]
    fn rejects_unknown_keys_and_backends() {
        let err = serde_saphyr::from_str::<BucketConfig>("s3:\n  bucket: x\n").unwrap_err();
        assert!(err.to_string().contains("bucket"), "{err}");
        let err = serde_saphyr::from_str::<BucketConfig>("backend: swift\n").unwrap_err();
        assert!(err.to_string().contains("swift"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let mut cfg = BucketConfig {
            backend: Backend::S3,
            ..BucketConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.starts_with("blocks_storage.s3.bucket_name:"), "{err}");
        cfg.s3.bucket_name = "b".into();
        cfg.s3.endpoint = "https://minio:9000".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.starts_with("blocks_storage.s3.endpoint:"), "{err}");
        cfg.s3.endpoint = "minio:9000".into();
        cfg.s3.signature_version = "v2".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("blocks_storage.s3.signature_version:"),
            "{err}"
        );
        cfg.s3.signature_version = "v4".into();
        cfg.s3.access_key_id = "only-the-id".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("blocks_storage.s3.secret_access_key:"),
            "{err}"
        );

        let gcs = BucketConfig {
            backend: Backend::Gcs,
            gcs: GcsConfig {
                bucket_name: "b".into(),
                service_account: Secret::new("/path/to/key.json"),
            },
            ..BucketConfig::default()
        };
        let err = gcs.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("blocks_storage.gcs.service_account:"),
            "{err}"
        );
        assert!(
            !err.contains("/path/to"),
            "secrets stay out of messages: {err}"
        );

        let azure = BucketConfig {
            backend: Backend::Azure,
            ..BucketConfig::default()
        };
        let err = azure.validate_at("ruler_storage").unwrap_err().to_string();
        assert!(
            err.starts_with("ruler_storage.azure.account_name:"),
            "{err}"
        );
    }

    #[test]
    fn an_azure_connection_string_replaces_account_and_suffix() {
        let cfg = parse(
            "backend: azure\nazure:\n  container_name: blocks\n  endpoint_suffix: ''\n  \
             connection_string: 'AccountName=a;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:1/a'\n",
        );
        cfg.validate()
            .expect("no account_name or endpoint_suffix needed");
        cfg.build_store()
            .expect("an http endpoint is allowed for it");
        let bad = parse(
            "backend: azure\nazure:\n  container_name: blocks\n  \
             connection_string: 'AccountKey=c2VjcmV0'\n",
        );
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("blocks_storage.azure.connection_string: AccountName is missing"),
            "{err}"
        );
        assert!(
            !err.contains("c2VjcmV0"),
            "secrets stay out of messages: {err}"
        );
    }

    #[test]
    fn s3_urls_follow_lookup_type_and_insecure() {
        use object_store::aws::AmazonS3ConfigKey as K;
        let mut cfg = BucketConfig {
            backend: Backend::S3,
            ..BucketConfig::default()
        };
        cfg.s3.bucket_name = "blocks".into();
        cfg.s3.access_key_id = "id".into();
        cfg.s3.secret_access_key = Secret::new("secret");
        cfg.s3.endpoint = "127.0.0.1:9000".into();
        cfg.s3.insecure = true;
        let b = cfg.s3_builder();
        assert_eq!(
            b.get_config_value(&K::Endpoint).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            b.get_config_value(&K::VirtualHostedStyleRequest).as_deref(),
            Some("false")
        );
        cfg.s3.endpoint = "s3.eu-west-1.amazonaws.com".into();
        cfg.s3.insecure = false;
        let b = cfg.s3_builder();
        assert_eq!(
            b.get_config_value(&K::Endpoint).as_deref(),
            Some("https://blocks.s3.eu-west-1.amazonaws.com")
        );
        cfg.build_store().unwrap();
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let cfg = S3Config {
            secret_access_key: Secret::new("hunter2"),
            ..S3Config::default()
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
