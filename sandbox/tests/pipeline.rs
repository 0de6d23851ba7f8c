//! The pipeline in processes: the three real function binaries behind the sandbox's Runtime API,
//! moto behind the edge, and the pollers between them. Every accepted request comes out the
//! other end; invalid requests produce nothing; a malformed record does not block the shard.

mod common;

use collector::epoch_ms as now_ms;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_kinesis::primitives::Blob;
use bytes::Bytes;
use collector::query::{RunMetrics, Window};
use common::{function_binary, function_env, kinesis_with_stream, root, sdk, Stack};
use sandbox::awsjson::AwsJson;
use sandbox::lambda::{FunctionHost, FunctionSpec, LogSink};
use sandbox::pollers::{poll_shard, PollerConfig, Shard, SourceKind, StartingPosition};

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
    let table = dynamodb
        .create_table()
        .table_name("PipelineTable")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let table_stream_arn = table.table_description.unwrap().latest_stream_arn.unwrap();

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
                kill_after_answer: 0.0,
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
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let consumer = |kind, arn: &str| PollerConfig {
        batching_window: Duration::ZERO,
        kind,
        source_arn: arn.to_owned(),
        batch_size: 100,
        bisect_on_error: true,
        report_batch_item_failures: true,
        region: "us-east-1".into(),
        expiry: Default::default(),
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
            stopping.clone(),
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
            stopping.clone(),
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

    let _ = stop.send(true);
    for poller in pollers {
        let _ = poller.await;
    }
    for host in [upstream, midstream, downstream] {
        host.stop().await;
    }
    stack.stop().await;
}
