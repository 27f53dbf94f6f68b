//! The configuration file: Cortex's shape and key names. Every section is one component's config
//! struct; unknown keys are errors that name the key.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;
use strata_engine::config::{
    BlocksStorageConfig, DistributorConfig, IngesterConfig, QuerierConfig,
};
use strata_engine::limits::Limits;
use strata_engine::validation::NameValidationScheme;

/// Which roles this process runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every role in one process.
    #[default]
    All,
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub target: Target,
    /// Require `X-Scope-OrgID` on every request; when false every request is tenant `anonymous`.
    pub auth_enabled: bool,
    /// `utf8` (Prometheus 3.x) or `legacy` metric and label names.
    pub name_validation_scheme: NameValidationScheme,
    pub server: ServerConfig,
    pub distributor: DistributorConfig,
    pub ingester: IngesterConfig,
    pub querier: QuerierConfig,
    pub blocks_storage: BlocksStorageConfig,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target: Target::All,
            auth_enabled: true,
            name_validation_scheme: NameValidationScheme::Utf8,
            server: ServerConfig::default(),
            distributor: DistributorConfig::default(),
            ingester: IngesterConfig::default(),
            querier: QuerierConfig::default(),
            blocks_storage: BlocksStorageConfig::default(),
            limits: Limits::default(),
        }
    }
}

/// `server:`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; empty means every interface.
    pub http_listen_address: String,
    pub http_listen_port: u16,
    /// `debug`, `info`, `warn` or `error`.
    pub log_level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_listen_address: String::new(),
            http_listen_port: 9009,
            log_level: "info".into(),
        }
    }
}

impl ServerConfig {
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let ip = if self.http_listen_address.is_empty() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            self.http_listen_address.parse().map_err(|_| {
                format!(
                    "server.http_listen_address: {:?} is not an IP address",
                    self.http_listen_address
                )
            })?
        };
        Ok(SocketAddr::new(ip, self.http_listen_port))
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Parses YAML text; unknown keys are errors.
    pub fn from_yaml(text: &str, path: &str) -> Result<Config, ConfigError> {
        let cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        Config::from_yaml(&text, &p)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.listen_addr().map_err(ConfigError::Invalid)?;
        self.limits.validate().map_err(ConfigError::Invalid)?;
        self.blocks_storage
            .bucket()
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.querier.validate().map_err(ConfigError::Invalid)?;
        if self.distributor.max_recv_msg_size == 0 {
            return Err(ConfigError::Invalid(
                "distributor.max_recv_msg_size must be positive".into(),
            ));
        }
        if !matches!(
            self.server.log_level.as_str(),
            "debug" | "info" | "warn" | "error"
        ) {
            return Err(ConfigError::Invalid(format!(
                "server.log_level: {:?} is not one of debug, info, warn, error",
                self.server.log_level
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_is_the_defaults() {
        let text = include_str!("../strata.example.yaml");
        let cfg = Config::from_yaml(text, "strata.example.yaml").unwrap();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_yaml("server:\n  http_listen_prot: 1\n", "x.yaml").unwrap_err();
        assert!(err.to_string().contains("http_listen_prot"), "{err}");
        let err = Config::from_yaml("limitz: {}\n", "x.yaml").unwrap_err();
        assert!(err.to_string().contains("limitz"), "{err}");
    }

    #[test]
    fn values_are_read() {
        let cfg = Config::from_yaml(
            "auth_enabled: false\nserver:\n  http_listen_port: 1234\nlimits:\n  ingestion_rate: 1e6\n  reject_old_samples_max_age: 1h\nname_validation_scheme: legacy\n",
            "x.yaml",
        )
        .unwrap();
        assert!(!cfg.auth_enabled);
        assert_eq!(cfg.server.http_listen_port, 1234);
        assert_eq!(cfg.limits.ingestion_rate, 1e6);
        assert_eq!(
            cfg.limits.reject_old_samples_max_age,
            std::time::Duration::from_hours(1)
        );
        assert_eq!(cfg.name_validation_scheme, NameValidationScheme::Legacy);
        assert!(Config::from_yaml("limits:\n  ingestion_rate: -1\n", "x.yaml").is_err());
    }
}
