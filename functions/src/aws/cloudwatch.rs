//! [`MetricSink`] over CloudWatch PutMetricData.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum as SdkDatum, StandardUnit};
use aws_sdk_cloudwatch::Client;

use super::describe;
use crate::error::MetricError;
use crate::metrics::{MetricDatum, Unit};
use crate::sinks::MetricSink;

/// Publishes metric data with one PutMetricData call per request.
#[derive(Debug, Clone)]
pub struct CloudWatchSink {
    client: Client,
}

impl CloudWatchSink {
    /// A sink over `client`.
    pub fn new(client: Client) -> Self {
        CloudWatchSink { client }
    }
}

/// The SDK's form of one datum.
pub fn to_sdk(datum: &MetricDatum) -> SdkDatum {
    let dimensions = datum
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
        .collect();
    SdkDatum::builder()
        .metric_name(datum.name)
        .set_dimensions(Some(dimensions))
        .set_values(Some(datum.values.clone()))
        .set_counts(Some(datum.counts.clone()))
        .unit(match datum.unit {
            Unit::Milliseconds => StandardUnit::Milliseconds,
            Unit::Count => StandardUnit::Count,
        })
        .storage_resolution(datum.storage_resolution_s)
        .timestamp(DateTime::from_millis(datum.timestamp_ms))
        .build()
}

impl MetricSink for CloudWatchSink {
    async fn put_metric_data(
        &self,
        namespace: &str,
        data: &[MetricDatum],
    ) -> Result<(), MetricError> {
        self.client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data.iter().map(to_sdk).collect()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| MetricError(describe(&e)))
    }
}
