//! The CloudWatch adapter through the SDK's mock interceptor: moto does not speak the SDK's
//! CloudWatch protocol (rpcv2Cbor); the sandbox's edge covers that path end to end.

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::operation::put_metric_data::{
    PutMetricDataError, PutMetricDataInput, PutMetricDataOutput,
};
use aws_sdk_cloudwatch::types::error::InternalServiceFault;
use aws_sdk_cloudwatch::types::StandardUnit;
use aws_sdk_cloudwatch::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use functions::aws::cloudwatch::CloudWatchSink;
use functions::metrics::{MetricBatch, Unit};
use functions::sinks::MetricSink;

#[tokio::test]
async fn put_metric_data_carries_every_field_of_the_contract() {
    let seen: Arc<Mutex<Vec<PutMetricDataInput>>> = Arc::default();
    let capture = seen.clone();
    let rule = mock!(Client::put_metric_data)
        .match_requests(move |input| {
            capture.lock().unwrap().push(input.clone());
            true
        })
        .then_output(|| PutMetricDataOutput::builder().build());
    let client = mock_client!(aws_sdk_cloudwatch, [&rule]);

    let mut batch = MetricBatch::new();
    batch.add("Latency", Unit::Milliseconds, &[("RunId", "r1")], 120);
    batch.add("Latency", Unit::Milliseconds, &[("RunId", "r1")], 120);
    batch.add("Latency", Unit::Milliseconds, &[("RunId", "r1")], 95);
    batch.add_n(
        "MalformedRecords",
        Unit::Count,
        &[("Function", "downstream")],
        1,
        4,
    );
    let data = batch.into_data(1_795_678_800_123);
    CloudWatchSink::new(client)
        .put_metric_data("Pipeline/Test", &data)
        .await
        .unwrap();

    assert_eq!(rule.num_calls(), 1);
    let seen = seen.lock().unwrap();
    let input = &seen[0];
    assert_eq!(input.namespace(), Some("Pipeline/Test"));
    let sent = input.metric_data();
    assert_eq!(sent.len(), 2);
    let latency = sent
        .iter()
        .find(|d| d.metric_name() == Some("Latency"))
        .unwrap();
    assert_eq!(latency.values(), [95.0, 120.0]);
    assert_eq!(latency.counts(), [1.0, 2.0]);
    assert_eq!(latency.unit(), Some(&StandardUnit::Milliseconds));
    assert_eq!(latency.storage_resolution(), Some(1));
    assert_eq!(
        latency.timestamp().unwrap().to_millis().unwrap(),
        1_795_678_800_123
    );
    let dims: Vec<(&str, &str)> = latency
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap(), d.value().unwrap()))
        .collect();
    assert_eq!(dims, [("RunId", "r1")]);
    let malformed = sent
        .iter()
        .find(|d| d.metric_name() == Some("MalformedRecords"))
        .unwrap();
    assert_eq!(
        (malformed.values(), malformed.counts()),
        (&[1.0][..], &[4.0][..])
    );
    assert_eq!(malformed.unit(), Some(&StandardUnit::Count));
}

#[tokio::test]
async fn a_service_error_becomes_a_metric_error_with_its_message() {
    let rule = mock!(Client::put_metric_data).then_error(|| {
        PutMetricDataError::InternalServiceFault(
            InternalServiceFault::builder().message("try later").build(),
        )
    });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let mut batch = MetricBatch::new();
    batch.add("Latency", Unit::Milliseconds, &[], 1);
    let error = CloudWatchSink::new(client)
        .put_metric_data("NS", &batch.into_data(0))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("CloudWatch PutMetricData failed"),
        "{error}"
    );
    assert!(error.to_string().contains("try later"), "{error}");
}
