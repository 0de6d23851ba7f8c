//! The pipeline in processes: the three real function binaries behind the sandbox's Runtime API,
//! moto behind the edge, and the pollers between them. Every accepted request comes out the
//! other end; invalid requests produce nothing; a malformed record does not block the shard; a
//! batch given up is recorded in the mapping's SQS destination.

mod common;

use collector::epoch_ms as now_ms;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use bytes::Bytes;
use collector::{RunMetrics, Window};
use common::{function_binary, function_env, kinesis_with_stream, root, sdk, Stack};
use sandbox::awsjson::AwsJson;
use sandbox::lambda::{FunctionHost, FunctionSpec, LogSink};
use sandbox::pollers::{
    poll_shard, Expiry, OnFailure, PollerConfig, Shard, SourceKind, StartingPosition,
};

const NAMESPACE: &str = "Pipeline/E2E";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_request_is_processed_and_nothing_else() {
    let root = root();
    let stack = Stack::start(Default::default()).await;
    let edge_url = stack.edge_url.clone();
    let sdk = sdk(&edge_url).await;
    let kinesis = kinesis_with_stream(&sdk).await;
    let stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/KinesisStream".to_owned();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table_stream_arn = testkit::aws::create_table(&dynamodb, "PipelineTable").await;

    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    let logs: LogSink =
        Arc::new(move |f: &str, l: &str| sink.lock().unwrap().push(format!("[{f}] {l}")));
    let common = function_env(&edge_url, &[("METRIC_NAMESPACE", NAMESPACE)]);
    let host = |name: &str, extra: &[(&str, &str)]| {
        let environment = common
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FunctionHost::start(
            FunctionSpec {
                name: name.into(),
                arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
                executable: function_binary(name),
                environment,
                timeout: Duration::from_secs(30),
                concurrency: 1,
                memory_mb: 256,
                init_timeout: sandbox::lambda::INIT_TIMEOUT,
                reload_on_change: false,
                delay: std::time::Duration::ZERO,
                kill_after_answer: Default::default(),
                concurrency_limit: None,
                group: None,
            },
            logs.clone(),
        )
    };
    let upstream = host("upstream", &[("STREAM_NAME", "KinesisStream")])
        .await
        .unwrap();
    let midstream = host("midstream", &[("TABLE_NAME", "PipelineTable")])
        .await
        .unwrap();
    let downstream = host("downstream", &[]).await.unwrap();

    let api = AwsJson::new(stack.moto.addr, "us-east-1");
    let stop = sandbox::ShutdownTrigger::new();
    let consumer = |kind, arn: &str| PollerConfig {
        batching_window: Duration::ZERO,
        kind,
        source_arn: arn.to_owned(),
        batch_size: 100,
        bisect_on_error: true,
        report_batch_item_failures: true,
        region: "us-east-1".into(),
        expiry: Default::default(),
        function_arn: String::new(),
        on_failure: None,
        cadence: sandbox::pollers::Cadence::FAST,
        quotas: None,
        wake: None,
    };
    let mut pollers = Vec::new();
    for shard in Shard::open_all(
        &api,
        SourceKind::Kinesis,
        &stream_arn,
        StartingPosition::TrimHorizon,
    )
    .await
    .unwrap()
    {
        pollers.push(tokio::spawn(poll_shard(
            consumer(SourceKind::Kinesis, &stream_arn),
            shard,
            midstream.clone(),
            logs.clone(),
            "midstream".into(),
            stop.shutdown(),
        )));
    }
    for shard in Shard::open_all(
        &api,
        SourceKind::DynamoDbStream,
        &table_stream_arn,
        StartingPosition::TrimHorizon,
    )
    .await
    .unwrap()
    {
        pollers.push(tokio::spawn(poll_shard(
            consumer(SourceKind::DynamoDbStream, &table_stream_arn),
            shard,
            downstream.clone(),
            logs.clone(),
            "downstream".into(),
            stop.shutdown(),
        )));
    }

    // 40 requests through upstream, one invalid, one malformed record straight into the stream.
    let start = now_ms();
    let template: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("functions/tests/fixtures/apigw-post.json")).unwrap(),
    )
    .unwrap();
    let post = |body: String| {
        let mut event = template.clone();
        event["body"] = serde_json::Value::String(body);
        Bytes::from(event.to_string())
    };
    let mut accepted = 0;
    for i in 0..40 {
        let body = serde_json::json!({"id": format!("e2e-{i}"), "message": "m", "timestamp": now_ms(), "run_id": "e2e"});
        let response: serde_json::Value =
            serde_json::from_slice(&upstream.invoke(post(body.to_string())).await.unwrap())
                .unwrap();
        assert_eq!(response["statusCode"], 200, "{response}");
        accepted += 1;
        if i == 20 {
            kinesis
                .put_record()
                .stream_name("KinesisStream")
                .partition_key("junk")
                .data(Blob::new("not a record"))
                .send()
                .await
                .unwrap();
        }
    }
    let refused: serde_json::Value = serde_json::from_slice(
        &upstream
            .invoke(post(r#"{"id":"bad","message":"m"}"#.into()))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(refused["statusCode"], 400);

    let metrics = RunMetrics {
        api: collector::aws::CloudWatch::new(aws_sdk_cloudwatch::Client::new(&sdk)),
        namespace: NAMESPACE.into(),
        run_id: "e2e".into(),
    };
    let window = || Window {
        start_ms: start - 5_000,
        end_ms: now_ms() + 5_000,
    };
    let mut processed = 0;
    for _ in 0..120 {
        processed = metrics.processed(window()).await.unwrap();
        if processed >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        processed,
        accepted,
        "accepted == processed\n{}",
        lines.lock().unwrap().join("\n")
    );
    let items = dynamodb
        .scan()
        .table_name("PipelineTable")
        .send()
        .await
        .unwrap()
        .count;
    assert_eq!(items, 40, "accepted == items in DynamoDB");
    let summary = metrics
        .summary(contract::metrics::LATENCY, window())
        .await
        .unwrap();
    assert_eq!(summary.count, 40);
    assert!(
        summary.min_ms >= 0.0 && summary.max_ms < 60_000.0,
        "{summary:?}"
    );
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("[midstream]") && l.contains("malformed record")),
        "the malformed record is logged"
    );

    stop.stop();
    for poller in pollers {
        let _ = poller.await;
    }
    for host in [upstream, midstream, downstream] {
        host.stop().await;
    }
    stack.stop().await;
}

/// A batch the mapping gives up (here after one retry) is recorded in its on-failure
/// destination, an SQS queue in moto, as Lambda's invocation record; the shard moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_given_up_is_recorded_in_the_sqs_destination() {
    let stack = Stack::start(Default::default()).await;
    let sdk = sdk(&stack.edge_url).await;
    let kinesis = kinesis_with_stream(&sdk).await;
    for i in 0..3 {
        kinesis
            .put_record()
            .stream_name("KinesisStream")
            .partition_key("k")
            .data(Blob::new(format!("record {i}")))
            .send()
            .await
            .unwrap();
    }
    let api = AwsJson::new(stack.moto.addr, "us-east-1");
    let queue = api
        .call(
            "sqs",
            "AmazonSQS.CreateQueue",
            &serde_json::json!({"QueueName": "failed-batches"}),
        )
        .await
        .unwrap()["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    let logs: LogSink = Arc::new(move |_: &str, l: &str| sink.lock().unwrap().push(l.into()));
    let failing = FunctionHost::start(
        common::spec(
            "failing",
            common::bash_runtime(),
            &[("MODE", "error")],
            5_000,
            1,
        ),
        logs.clone(),
    )
    .await
    .unwrap();
    let stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/KinesisStream";
    let config = PollerConfig {
        batching_window: Duration::ZERO,
        kind: SourceKind::Kinesis,
        source_arn: stream_arn.into(),
        batch_size: 100,
        bisect_on_error: false,
        report_batch_item_failures: false,
        region: "us-east-1".into(),
        expiry: Expiry {
            max_retry_attempts: Some(1),
            max_record_age: None,
        },
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:failing".into(),
        on_failure: Some(OnFailure::in_moto(
            api.clone(),
            "arn:aws:sqs:us-east-1:123456789012:failed-batches",
        )),
        cadence: sandbox::pollers::Cadence::FAST,
        quotas: None,
        wake: None,
    };
    let shard = Shard::open_all(
        &api,
        SourceKind::Kinesis,
        stream_arn,
        StartingPosition::TrimHorizon,
    )
    .await
    .unwrap()
    .remove(0);
    let stop = sandbox::ShutdownTrigger::new();
    let poller = tokio::spawn(poll_shard(
        config,
        shard,
        failing.clone(),
        logs,
        "failing".into(),
        stop.shutdown(),
    ));

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let messages = loop {
        let answer = api
            .call(
                "sqs",
                "AmazonSQS.ReceiveMessage",
                &serde_json::json!({"QueueUrl": queue, "WaitTimeSeconds": 1}),
            )
            .await
            .unwrap();
        if let Some(messages) = answer["Messages"].as_array().filter(|m| !m.is_empty()) {
            break messages.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing in the queue: {:?}",
            lines.lock().unwrap()
        );
    };
    stop.stop();
    poller.await.unwrap();
    failing.stop().await;
    stack.stop().await;

    assert_eq!(messages.len(), 1, "{messages:?}");
    let record: serde_json::Value =
        serde_json::from_str(messages[0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(
        record["requestContext"]["condition"], "RetryAttemptsExhausted",
        "{record}"
    );
    assert_eq!(
        record["requestContext"]["approximateInvokeCount"], 2,
        "{record}"
    );
    let batch = &record["KinesisBatchInfo"];
    assert_eq!(batch["batchSize"], 3, "{record}");
    assert_eq!(batch["shardId"], "shardId-000000000000", "{record}");
    assert_eq!(batch["streamArn"], stream_arn, "{record}");
    assert_ne!(
        batch["startSequenceNumber"], batch["endSequenceNumber"],
        "{record}"
    );
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("poller: discarded 3 records")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l
            == "poller: the record of the discarded batch sent to arn:aws:sqs:us-east-1:123456789012:failed-batches"),
        "{lines:?}"
    );
}
