//! The SDK adapters: [`crate::sinks`] implemented over Kinesis, DynamoDB and CloudWatch, and the
//! one SDK configuration every client is built from.

pub mod cloudwatch;
pub mod dynamodb;
pub mod kinesis;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// Loads the SDK configuration once per cold start: region, credentials and endpoint from the
/// environment as every AWS SDK reads them (`AWS_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_<SERVICE>`, ...), over an HTTPS client using rustls with ring.
pub async fn load_config() -> SdkConfig {
    loader().load().await
}

/// The configuration loader [`load_config`] uses, for callers that set more (tests: endpoint,
/// region, credentials).
pub fn loader() -> aws_config::ConfigLoader {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client)
}

/// An SDK error with its whole cause chain in one line, each cause in its own words (never
/// the SDK's debug form), for logs and HTTP reasons.
pub(crate) fn describe<E: std::error::Error + 'static>(error: &E) -> String {
    contract::one_line(error)
}
