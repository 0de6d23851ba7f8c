//! Each function's configuration, read once per cold start from its environment.

use crate::error::ConfigError;

/// Upstream's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// `STREAM_NAME`: the Kinesis stream's name (or ARN) records are put into.
    pub stream_name: String,
}

/// Midstream's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MidstreamConfig {
    /// `TABLE_NAME`: the DynamoDB table items are written to.
    pub table_name: String,
    /// `METRIC_NAMESPACE`: where malformed records are counted.
    pub namespace: String,
}

/// Downstream's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamConfig {
    /// `METRIC_NAMESPACE`: where latencies are published.
    pub namespace: String,
}

/// Reads a variable, treating empty as unset. `env` is `std::env::var` in the binaries.
fn required(
    env: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    function: &'static str,
    what: &'static str,
) -> Result<String, ConfigError> {
    env(var)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing {
            var,
            function,
            what,
        })
}

fn namespace(env: &impl Fn(&str) -> Option<String>) -> String {
    env("METRIC_NAMESPACE")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| contract::metrics::NAMESPACE.to_owned())
}

impl UpstreamConfig {
    /// Reads the configuration through `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(UpstreamConfig {
            stream_name: required(&env, "STREAM_NAME", "upstream", "the Kinesis stream name")?,
        })
    }
}

impl MidstreamConfig {
    /// Reads the configuration through `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(MidstreamConfig {
            table_name: required(&env, "TABLE_NAME", "midstream", "the DynamoDB table name")?,
            namespace: namespace(&env),
        })
    }
}

impl DownstreamConfig {
    /// Reads the configuration through `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(DownstreamConfig {
            namespace: namespace(&env),
        })
    }
}

/// The process environment, as `from_env` takes it.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_missing_variable_says_which_and_why() {
        let err = UpstreamConfig::from_env(env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "STREAM_NAME is not set: the upstream function needs the Kinesis stream name (the CDK stack sets it)"
        );
        let err = MidstreamConfig::from_env(env(&[("TABLE_NAME", " ")])).unwrap_err();
        assert!(
            err.to_string().starts_with("TABLE_NAME is not set"),
            "{err}"
        );
    }

    #[test]
    fn namespace_defaults_to_the_contract() {
        let c = MidstreamConfig::from_env(env(&[("TABLE_NAME", "T")])).unwrap();
        assert_eq!(c.namespace, "ServerlessDataProcessingPipeline/Latencies");
        let c = DownstreamConfig::from_env(env(&[("METRIC_NAMESPACE", "Mine")])).unwrap();
        assert_eq!(c.namespace, "Mine");
        let c = UpstreamConfig::from_env(env(&[("STREAM_NAME", "S")])).unwrap();
        assert_eq!(c.stream_name, "S");
    }
}
