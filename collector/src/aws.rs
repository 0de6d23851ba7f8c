//! [`MetricsApi`] and [`ItemKeys`] over the AWS SDK, and the SDK configuration from the AWS
//! CLI's flags.

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_cloudwatch::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::api::{ApiError, DataPage, DataRequest, MetricsApi, QueryResult};
use crate::audit::{Found, ItemKeys, LookupError, Stored};
use crate::opts::AwsOpts;
use contract::cli::one_line;

/// Region used when none is configured anywhere (the emulators' default).
pub const FALLBACK_REGION: &str = "us-east-1";

/// The SDK configuration: the flags first, then the SDK's usual chain (environment, profile,
/// and on AWS the instance metadata), else [`FALLBACK_REGION`]. With an endpoint URL and no
/// credentials named anywhere, the emulators' dummy credentials.
pub async fn sdk_config(aws: &AwsOpts) -> SdkConfig {
    let region = match &aws.region {
        Some(region) => Some(Region::new(region.clone())),
        // An emulator: the environment and the profile only (instance metadata is AWS's, and
        // asking for it off AWS costs a timeout).
        None if aws.endpoint_url.is_some() => {
            let mut profile = aws_config::profile::region::ProfileFileRegionProvider::builder();
            if let Some(name) = &aws.profile {
                profile = profile.profile_name(name);
            }
            RegionProviderChain::first_try(
                aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
            )
            .or_else(profile.build())
            .region()
            .await
        }
        // AWS: the loader's own chain, which reaches instance metadata through its HTTP client.
        None => None,
    };
    let config = loader(aws, region).load().await;
    if config.region().is_some() {
        return config;
    }
    loader(aws, Some(Region::new(FALLBACK_REGION))).load().await
}

fn loader(aws: &AwsOpts, region: Option<Region>) -> aws_config::ConfigLoader {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    // Every call bounded: an endpoint that accepts and never answers cannot hold a command past
    // its own --timeout (the wait loop retries at its next poll).
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(20))
        .operation_timeout(std::time::Duration::from_secs(60))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts);
    if let Some(profile) = &aws.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(region);
    }
    if let Some(endpoint) = &aws.endpoint_url {
        loader = loader.endpoint_url(endpoint);
        let named = std::env::var_os("AWS_ACCESS_KEY_ID").is_some() || aws.profile.is_some();
        if !named {
            loader = loader.credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "collector-emulator-default",
            ));
        }
    }
    loader
}

/// GetMetricData through the SDK.
#[derive(Debug, Clone)]
pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    /// An adapter over `client`.
    pub fn new(client: Client) -> Self {
        CloudWatch { client }
    }
}

impl MetricsApi for CloudWatch {
    async fn get_metric_data(&self, request: &DataRequest) -> Result<DataPage, ApiError> {
        let queries = request
            .queries
            .iter()
            .map(|q| {
                let dimensions = q
                    .dimensions
                    .iter()
                    .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                    .collect();
                let metric = Metric::builder()
                    .namespace(&request.namespace)
                    .metric_name(&q.metric_name)
                    .set_dimensions(Some(dimensions))
                    .build();
                let stat = MetricStat::builder()
                    .metric(metric)
                    .period(q.period_s as i32)
                    .stat(q.stat.as_str())
                    .build();
                MetricDataQuery::builder()
                    .id(&q.id)
                    .metric_stat(stat)
                    .return_data(true)
                    .build()
            })
            .collect();
        let output = self
            .client
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(DateTime::from_millis(request.start_ms))
            .end_time(DateTime::from_millis(request.end_ms))
            .scan_by(ScanBy::TimestampAscending)
            .set_next_token(request.next_token.clone())
            .send()
            .await
            .map_err(|error| {
                let code = error.code().unwrap_or_default();
                let message = one_line(&error);
                if code.contains("Throttl") || code == "LimitExceeded" || code == "TooManyRequests"
                {
                    ApiError::Throttled(message)
                } else {
                    ApiError::Failed(message)
                }
            })?;
        let results = output
            .metric_data_results
            .unwrap_or_default()
            .into_iter()
            .map(|r| QueryResult {
                id: r.id.unwrap_or_default(),
                timestamps_ms: r
                    .timestamps
                    .unwrap_or_default()
                    .iter()
                    .map(|t| t.to_millis().unwrap_or(0))
                    .collect(),
                values: r.values.unwrap_or_default(),
            })
            .collect();
        Ok(DataPage {
            results,
            next_token: output.next_token,
        })
    }
}

/// BatchGetItem by id through the SDK, projecting the key and `received_at`.
#[derive(Debug, Clone)]
pub struct DynamoKeys {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoKeys {
    /// Looks ids up in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        DynamoKeys { client, table }
    }
}

impl ItemKeys for DynamoKeys {
    async fn lookup(&self, ids: &[String]) -> Result<Found, LookupError> {
        use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
        let id = contract::item::attr::ID;
        let received_at = contract::item::attr::RECEIVED_AT;
        let keys = ids
            .iter()
            .map(|v| [(id.to_owned(), AttributeValue::S(v.clone()))].into())
            .collect();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .projection_expression("#id, #r")
            .expression_attribute_names("#id", id)
            .expression_attribute_names("#r", received_at)
            .build()
            .map_err(|e| LookupError(e.to_string()))?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(|e| LookupError(one_line(&e)))?;
        let key_of = |item: &std::collections::HashMap<String, AttributeValue>| match item.get(id) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let present = output
            .responses
            .and_then(|mut tables| tables.remove(&self.table))
            .unwrap_or_default()
            .iter()
            .filter_map(|item| {
                Some(Stored {
                    id: key_of(item)?,
                    received_at_ms: match item.get(received_at) {
                        Some(AttributeValue::N(n)) => n.parse().ok(),
                        _ => None,
                    },
                })
            })
            .collect();
        let unprocessed = output
            .unprocessed_keys
            .and_then(|mut tables| tables.remove(&self.table))
            .map(|k| k.keys.iter().filter_map(key_of).collect())
            .unwrap_or_default();
        Ok(Found {
            present,
            unprocessed,
        })
    }
}
