//! The GetMetricData adapter through the SDK's mock interceptor (moto does not speak the SDK's
//! CloudWatch protocol; the sandbox's edge covers that path end to end).

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::error::ErrorMetadata;
use aws_sdk_cloudwatch::operation::get_metric_data::{
    GetMetricDataError, GetMetricDataInput, GetMetricDataOutput,
};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{MetricDataResult, ScanBy};
use aws_sdk_cloudwatch::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use collector::api::{ApiError, DataRequest, MetricQuery, MetricsApi, Stat};
use collector::aws::CloudWatch;

fn request() -> DataRequest {
    DataRequest {
        namespace: "NS".into(),
        queries: vec![MetricQuery {
            id: "q0".into(),
            metric_name: "Latency".into(),
            dimensions: vec![("RunId".into(), "r1".into())],
            stat: Stat::SampleCount,
            period_s: 60,
        }],
        start_ms: 1_795_680_000_000,
        end_ms: 1_795_680_060_000,
        next_token: Some("page-2".into()),
    }
}

#[tokio::test]
async fn queries_and_results_map_both_ways() {
    let seen: Arc<Mutex<Vec<GetMetricDataInput>>> = Arc::default();
    let capture = seen.clone();
    let rule = mock!(Client::get_metric_data)
        .match_requests(move |input| {
            capture.lock().unwrap().push(input.clone());
            true
        })
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("q0")
                        .timestamps(DateTime::from_millis(1_795_680_000_000))
                        .values(42.0)
                        .build(),
                )
                .next_token("page-3")
                .build()
        });
    let api = CloudWatch::new(mock_client!(aws_sdk_cloudwatch, [&rule]));
    let page = api.get_metric_data(&request()).await.unwrap();
    assert_eq!(page.next_token.as_deref(), Some("page-3"));
    assert_eq!(page.results[0].id, "q0");
    assert_eq!(
        (
            page.results[0].timestamps_ms.as_slice(),
            page.results[0].values.as_slice()
        ),
        (&[1_795_680_000_000][..], &[42.0][..])
    );

    let input = &seen.lock().unwrap()[0];
    assert_eq!(
        input.start_time().unwrap().to_millis().unwrap(),
        1_795_680_000_000
    );
    assert_eq!(
        input.end_time().unwrap().to_millis().unwrap(),
        1_795_680_060_000
    );
    assert_eq!(input.next_token(), Some("page-2"));
    assert_eq!(input.scan_by(), Some(&ScanBy::TimestampAscending));
    let query = &input.metric_data_queries()[0];
    assert_eq!(query.id(), Some("q0"));
    let stat = query.metric_stat().unwrap();
    assert_eq!(
        (stat.stat(), stat.period()),
        (Some("SampleCount"), Some(60))
    );
    let metric = stat.metric().unwrap();
    assert_eq!(
        (metric.namespace(), metric.metric_name()),
        (Some("NS"), Some("Latency"))
    );
    assert_eq!(metric.dimensions()[0].value(), Some("r1"));
}

#[tokio::test]
async fn a_throttling_error_is_classified_for_retry() {
    let rule = mock!(Client::get_metric_data).then_error(|| {
        GetMetricDataError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("slow down")
                .build(),
        )
    });
    let api = CloudWatch::new(mock_client!(
        aws_sdk_cloudwatch,
        RuleMode::MatchAny,
        [&rule]
    ));
    match api.get_metric_data(&request()).await {
        Err(ApiError::Throttled(message)) => assert!(message.contains("slow down"), "{message}"),
        other => panic!("expected throttling, got {other:?}"),
    }
}
