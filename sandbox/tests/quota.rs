//! The aws profile's quotas through the real clients: the AWS SDK for Rust and boto3 against
//! the edge in front of moto, and the real midstream code under DynamoDB's write quota.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::primitives::Blob;
use common::{bash_runtime, sdk, spec, Stack};
use contract::quota as aws;
use sandbox::awsjson::AwsJson;
use sandbox::lambda::{AccountConcurrency, ConcurrencyLimit, FunctionHost, InvokeError, LogSink};
use sandbox::pollers::{PollerConfig, SourceKind};
use serde_json::{json, Value};

/// What the quotas counted of `metric`, in all.
fn counted(limits: &sandbox::quota::Limits, metric: &str) -> f64 {
    limits
        .counts
        .totals()
        .iter()
        .filter(|(what, _)| what.metric == metric)
        .map(|(_, n)| n)
        .sum()
}

/// At a scale of 0.1 a shard takes 100 records a second: a PutRecords of 300 writes 100 and
/// answers 200 with AWS's error code in place; PutRecord past the quota is AWS's
/// ProvisionedThroughputExceededException as the SDK reads it; the next second takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_takes_its_write_quota_and_refuses_the_rest_as_kinesis_does() {
    let (stack, limits) = Stack::aws_profile(Arc::default(), 0.1).await;
    let config = sdk(&stack.edge_url).await;
    testkit::aws::create_stream(&aws_sdk_kinesis::Client::new(&config), "KinesisStream").await;
    let kinesis = aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );

    let mut put = kinesis.put_records().stream_name("KinesisStream");
    for i in 0..300 {
        put = put.records(
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .partition_key(format!("key-{i}"))
                .data(Blob::new(format!("record {i}")))
                .build()
                .unwrap(),
        );
    }
    let answer = put.send().await.unwrap();
    assert_eq!(answer.failed_record_count(), Some(200));
    let refused: Vec<_> = answer
        .records()
        .iter()
        .filter(|r| r.error_code().is_some())
        .collect();
    assert_eq!(refused.len(), 200);
    assert!(refused.iter().all(|r| {
        r.error_code() == Some("ProvisionedThroughputExceededException")
            && r.error_message().unwrap_or_default().starts_with(
                "Rate exceeded for shard shardId-000000000000 in stream KinesisStream under account",
            )
    }));
    // The first 100 were written, in order.
    assert!(answer.records()[..100]
        .iter()
        .all(|r| r.sequence_number().is_some()));

    // PutRecord until the quota refuses one (this second's or the next's): AWS's 400.
    let mut refusal = None;
    for i in 0..250 {
        let put = kinesis
            .put_record()
            .stream_name("KinesisStream")
            .partition_key(format!("single-{i}"))
            .data(Blob::new("x"))
            .send()
            .await;
        if let Err(error) = put {
            refusal = Some(error.into_service_error());
            break;
        }
    }
    let refusal = refusal.expect("250 PutRecords in well under 2.5 s: one was refused");
    assert!(
        refusal.is_provisioned_throughput_exceeded_exception(),
        "{refusal:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    kinesis
        .put_record()
        .stream_name("KinesisStream")
        .partition_key("after")
        .data(Blob::new("x"))
        .send()
        .await
        .expect("a new second takes the record");
    assert!(counted(&limits, aws::WRITE_THROTTLED) >= 201.0);
    stack.stop().await;
}

/// midstream's real code and the real SDK against a table that takes 8 write units a second
/// (partitions of 2): BatchWriteItem returns what does not fit in UnprocessedItems (or refuses
/// the call), midstream and the SDK retry it, what is still left is reported for the poller's
/// retry, and every record ends up stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprocessed_items_are_retried_until_the_last_one_is_stored() {
    let (stack, limits) = Stack::aws_profile(Arc::default(), 0.002).await;
    let through_edge = sdk(&stack.edge_url).await;
    let moto = format!("http://{}", stack.moto.addr);
    let direct = sdk(&moto).await;
    let kinesis = aws_sdk_kinesis::Client::new(&direct);
    let stream_arn = testkit::aws::create_stream(&kinesis, "KinesisStream").await;
    testkit::aws::create_table(&aws_sdk_dynamodb::Client::new(&direct), "PipelineTable").await;

    // 40 accepted requests in the stream, written to moto directly.
    let now = contract::epoch_ms();
    for i in 0..40 {
        let request = contract::Request::parse_at(
            json!({"id": format!("q-{i}"), "message": "m", "timestamp": now, "run_id": "quota"})
                .to_string()
                .as_bytes(),
            now,
        )
        .unwrap();
        let record = contract::KinesisRecord::new(request, now);
        kinesis
            .put_record()
            .stream_name("KinesisStream")
            .partition_key(record.partition_key())
            .data(Blob::new(record.encode()))
            .send()
            .await
            .unwrap();
    }
    let api = AwsJson::new(stack.moto.addr, "us-east-1");
    let shard = sandbox::pollers::Shard::open_all(
        &api,
        SourceKind::Kinesis,
        &stream_arn,
        sandbox::pollers::StartingPosition::TrimHorizon,
    )
    .await
    .unwrap()
    .pop()
    .unwrap();
    let mut shard = shard;
    let mut records: Vec<Value> = sandbox::pollers::ShardSource::next_records(&mut shard, 1000)
        .await
        .unwrap();
    assert_eq!(records.len(), 40);

    let midstream = functions::midstream::Midstream::new(
        functions::aws::dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&through_edge),
            "PipelineTable".into(),
        ),
        functions::aws::cloudwatch::CloudWatchSink::new(aws_sdk_cloudwatch::Client::new(
            &through_edge,
        )),
        contract::metrics::NAMESPACE.into(),
        functions::system_clock,
    );
    let config = PollerConfig {
        kind: SourceKind::Kinesis,
        source_arn: stream_arn.clone(),
        batch_size: 100,
        batching_window: Duration::ZERO,
        bisect_on_error: false,
        report_batch_item_failures: true,
        region: "us-east-1".into(),
        expiry: Default::default(),
        function_arn: String::new(),
        on_failure: None,
        cadence: sandbox::pollers::Cadence::FAST,
        quotas: None,
        wake: None,
    };
    // The poller's part, as Lambda does it: deliver, resume at the first failed record.
    let mut deliveries = 0;
    while !records.is_empty() {
        deliveries += 1;
        assert!(deliveries <= 40, "{} records never stored", records.len());
        let batch: Vec<&Value> = records.iter().collect();
        let event: KinesisEvent = serde_json::from_value(sandbox::pollers::event(
            &config,
            "shardId-000000000000",
            &batch,
        ))
        .unwrap();
        let answer = midstream.handle(event).await;
        let first_failed = answer
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.as_deref())
            .filter_map(|id| {
                records
                    .iter()
                    .position(|r| r["SequenceNumber"].as_str() == Some(id))
            })
            .min();
        match first_failed {
            Some(index) => {
                records.drain(..index);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            None => records.clear(),
        }
    }
    let scanned = aws_sdk_dynamodb::Client::new(&direct)
        .scan()
        .table_name("PipelineTable")
        .send()
        .await
        .unwrap();
    assert_eq!(scanned.count(), 40, "every record stored");
    // 40 items at 8 a second: the quota refused writes, and nothing was lost to it.
    assert!(counted(&limits, aws::WRITE_THROTTLE_EVENTS) > 0.0);
    stack.stop().await;
}

/// A reserved concurrency of 1: while one invocation is in flight a second is throttled, as
/// Lambda's 429 `TooManyRequestsException` with its `Reason` through the Invoke API (boto3),
/// and counted in `Throttles`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_concurrency_of_one_throttles_a_second_concurrent_invoke() {
    let stack = Stack::start(Arc::default()).await;
    let logs: LogSink = Arc::new(|_, _| {});
    let mut slow = spec("slow", bash_runtime(), &[("MODE", "hang")], 3_000, 2);
    slow.concurrency_limit = Some(ConcurrencyLimit {
        reserved: Some(1),
        account: AccountConcurrency::new(aws::LAMBDA_ACCOUNT_CONCURRENCY, 1),
    });
    let host = FunctionHost::start(slow, logs.clone()).await.unwrap();
    stack.functions.set([host.clone()], logs);

    let first = tokio::spawn({
        let host = host.clone();
        async move { host.invoke(bytes::Bytes::from_static(b"{}")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        host.invoke(bytes::Bytes::from_static(b"{}")).await,
        Err(InvokeError::Throttled(
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        ))
    );
    let script = r#"
import json, sys, boto3
client = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing",
                      config=boto3.session.Config(retries={"total_max_attempts": 1}))
try:
    client.invoke(FunctionName="slow", Payload=b"{}")
    print(json.dumps({"throttled": False}))
except client.exceptions.TooManyRequestsException as e:
    print(json.dumps({"code": e.response["Error"]["Code"], "reason": e.response.get("Reason"),
                      "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}))
"#;
    let python = sandbox::moto::python(&common::root());
    let edge_url = stack.edge_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", script, &edge_url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        out,
        json!({"code": "TooManyRequestsException",
               "reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "status": 429}),
    );
    // The first one times out (it hangs); its place is given back and the next is taken.
    assert!(matches!(first.await.unwrap(), Err(InvokeError::Timeout(_))));
    assert_eq!(host.telemetry().take().throttles, 2);
    host.stop().await;
    stack.stop().await;
}
