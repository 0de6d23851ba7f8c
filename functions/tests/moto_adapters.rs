//! The Kinesis and DynamoDB adapters, and DynamoDB stream images, against a real moto server.

mod common;

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use aws_lambda_events::event::kinesis::KinesisEvent;
use common::{fixture, sdk_config, FakeMetrics};
use contract::metrics::NAMESPACE;
use contract::{Item, KinesisRecord};
use functions::aws::{dynamodb::DynamoStore, kinesis::KinesisSink};
use functions::error::{PutError, StoreError};
use functions::events::{DynamoDbPayload, KinesisPayload};
use functions::sinks::{ItemStore, RecordSink};
use functions::{downstream::Downstream, midstream::Midstream, system_clock, upstream::Upstream};
use serde_json::json;
use testkit::aws::{create_stream, create_table};
use testkit::MotoServer;

/// Every record of a one-shard Kinesis stream, as raw JSON from the API.
fn kinesis_records(moto: &MotoServer, stream: &str) -> Vec<serde_json::Value> {
    let shards = moto.aws_json(
        "kinesis",
        "Kinesis_20131202.ListShards",
        json!({"StreamName": stream}),
    );
    let shard = shards["Shards"][0]["ShardId"].as_str().unwrap().to_owned();
    let iterator = moto.aws_json(
        "kinesis",
        "Kinesis_20131202.GetShardIterator",
        json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    );
    let records = moto.aws_json(
        "kinesis",
        "Kinesis_20131202.GetRecords",
        json!({"ShardIterator": iterator["ShardIterator"], "Limit": 10000}),
    );
    records["Records"].as_array().unwrap().clone()
}

/// Every record of a one-shard DynamoDB stream, as raw JSON from the Streams API.
fn stream_records(moto: &MotoServer, stream_arn: &str) -> Vec<serde_json::Value> {
    let described = moto.aws_json(
        "dynamodb",
        "DynamoDBStreams_20120810.DescribeStream",
        json!({"StreamArn": stream_arn}),
    );
    let shard = described["StreamDescription"]["Shards"][0]["ShardId"]
        .as_str()
        .unwrap()
        .to_owned();
    let iterator = moto.aws_json(
        "dynamodb",
        "DynamoDBStreams_20120810.GetShardIterator",
        json!({"StreamArn": stream_arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    );
    let records = moto.aws_json(
        "dynamodb",
        "DynamoDBStreams_20120810.GetRecords",
        json!({"ShardIterator": iterator["ShardIterator"], "Limit": 1000}),
    );
    records["Records"].as_array().unwrap().clone()
}

/// A Lambda Kinesis event built from raw GetRecords records, as the Lambda service builds it.
/// The event as the midstream binary reads it (`KinesisPayload`, not the crate's own type).
fn kinesis_event(records: &[serde_json::Value], stream_arn: &str) -> KinesisEvent {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": r["Data"],
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"],
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{}", r["SequenceNumber"].as_str().unwrap()),
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    let text = json!({ "Records": records }).to_string();
    serde_json::from_str::<KinesisPayload>(&text).unwrap().0
}

#[tokio::test]
async fn kinesis_sink_puts_records_by_name_and_by_arn() {
    let moto = MotoServer::start();
    let client = aws_sdk_kinesis::Client::new(&sdk_config(&moto.endpoint()).await);
    let arn = create_stream(&client, "KinesisStream").await;

    KinesisSink::new(client.clone(), "KinesisStream".into())
        .put_record("key-1", b"first".to_vec())
        .await
        .unwrap();
    KinesisSink::new(client.clone(), arn)
        .put_record("key-2", b"second".to_vec())
        .await
        .unwrap();

    let records = kinesis_records(&moto, "KinesisStream");
    let read: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r["PartitionKey"].as_str().unwrap().to_owned(),
                r["Data"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("key-1".to_owned(), "Zmlyc3Q=".to_owned()),
            ("key-2".to_owned(), "c2Vjb25k".to_owned())
        ]
    );

    let error = KinesisSink::new(client, "NoSuchStream".into())
        .put_record("k", b"x".to_vec())
        .await
        .unwrap_err();
    match error {
        PutError::Failed(message) => assert!(message.contains("ResourceNotFound"), "{message}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn dynamo_store_writes_items_that_read_back_equal() {
    let moto = MotoServer::start();
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&moto.endpoint()).await);
    create_table(&client, "PipelineTable").await;

    let items: Vec<Item> = (0..25)
        .map(|i| Item {
            id: format!("item-{i}"),
            message: "m".into(),
            timestamp_ms: 1_795_678_800_000 + i,
            run_id: (i % 2 == 0).then(|| "run1".to_owned()),
            received_at_ms: Some(1_795_678_800_100),
            kinesis_arrival_ms: Some(1_795_678_800_200),
            stored_at_ms: Some(1_795_678_800_300),
        })
        .collect();
    let store = DynamoStore::new(client.clone(), "PipelineTable".into());
    assert_eq!(
        store.write_batch(&items).await.unwrap(),
        Vec::<String>::new()
    );

    for item in [&items[0], &items[7]] {
        let got = client
            .get_item()
            .table_name("PipelineTable")
            .key(
                "id",
                aws_sdk_dynamodb::types::AttributeValue::S(item.id.clone()),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        assert_eq!(&Item::from_attributes(&got).unwrap(), item);
    }

    let error = DynamoStore::new(client, "NoSuchTable".into())
        .write_batch(&items[..1])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("ResourceNotFound"), "{error}");
}

#[tokio::test]
async fn an_item_the_table_refuses_is_rejected_not_retried() {
    // Over DynamoDB's 400 KB item limit: moto answers ValidationException as DynamoDB does, and
    // the adapter says the items can never be written (midstream then splits the batch until
    // the item stands alone, and passes it over).
    let moto = MotoServer::start();
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&moto.endpoint()).await);
    create_table(&client, "PipelineTable").await;
    let item = Item {
        id: "huge".into(),
        message: "m".repeat(450_000),
        timestamp_ms: 1_795_678_800_000,
        run_id: None,
        received_at_ms: Some(1_795_678_800_100),
        kinesis_arrival_ms: None,
        stored_at_ms: None,
    };
    let error = DynamoStore::new(client, "PipelineTable".into())
        .write_batch(&[item])
        .await
        .unwrap_err();
    match error {
        StoreError::Rejected(message) => {
            assert!(
                message.contains("ValidationException") || message.contains("size"),
                "{message}"
            )
        }
        other => panic!("expected the items rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_stream_is_a_502_whose_reason_is_one_readable_line() {
    let port = testkit::free_port();
    let config = sdk_config(&format!("http://127.0.0.1:{port}")).await;
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(&config), "S".into());
    let mut post: ApiGatewayProxyRequest = fixture("apigw-post.json");
    post.body = Some(
        json!({"id": "u-0-0", "message": "m", "timestamp": functions::system_clock()}).to_string(),
    );
    let response = Upstream::new(sink, system_clock).handle(post).await;
    assert_eq!(response.status_code, 502);
    let body = match response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => text,
        other => panic!("a text body, got {other:?}"),
    };
    let message = serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("Kinesis did not take the record: "),
        "{message}"
    );
    // The causes in their own words, not the SDK's debug form.
    for debug in ["DispatchFailure", "ConnectorError", " { ", "Some("] {
        assert!(!message.contains(debug), "{debug:?} in {message}");
    }
    assert!(!message.contains('\n'), "{message}");
}

/// The three handlers chained through moto's Kinesis, DynamoDB and DynamoDB Streams APIs, with
/// events built from the raw records as Lambda builds them: every accepted request is measured.
#[tokio::test]
async fn accepted_requests_flow_through_moto_and_are_all_measured() {
    let moto = MotoServer::start();
    let sdk = sdk_config(&moto.endpoint()).await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let stream_arn = create_stream(&kinesis, "KinesisStream").await;
    let table_stream_arn = create_table(&dynamodb, "PipelineTable").await;

    // 30 accepted requests (chain-0 twice), one refused.
    let upstream = Upstream::new(
        KinesisSink::new(kinesis, "KinesisStream".into()),
        system_clock,
    );
    let template: ApiGatewayProxyRequest = fixture("apigw-post.json");
    let sent_at = system_clock();
    for i in 0..30 {
        let mut event = template.clone();
        let id = format!("chain-{}", i % 29);
        event.body = Some(
            json!({"id": id, "message": "m", "timestamp": sent_at + i, "run_id": "chain"})
                .to_string(),
        );
        assert_eq!(upstream.handle(event).await.status_code, 200);
    }
    let mut bad = template.clone();
    bad.body = Some(r#"{"id":"x","message":"m"}"#.into());
    assert_eq!(upstream.handle(bad).await.status_code, 400);

    let records = kinesis_records(&moto, "KinesisStream");
    assert_eq!(records.len(), 30, "only accepted requests reach the stream");
    let first =
        KinesisRecord::decode(&base64_decode(records[0]["Data"].as_str().unwrap())).unwrap();
    assert_eq!(first.request.run_id.as_deref(), Some("chain"));

    let metrics = FakeMetrics::accepting();
    let midstream = Midstream::new(
        DynamoStore::new(dynamodb.clone(), "PipelineTable".into()),
        &metrics,
        NAMESPACE.into(),
        system_clock,
    );
    let response = midstream.handle(kinesis_event(&records, &stream_arn)).await;
    assert!(response.batch_item_failures.is_empty());
    let scanned = dynamodb
        .scan()
        .table_name("PipelineTable")
        .send()
        .await
        .unwrap();
    assert_eq!(scanned.count, 29);
    let repeated = scanned
        .items()
        .iter()
        .map(|attrs| Item::from_attributes(attrs).unwrap())
        .find(|item| item.id == "chain-0")
        .unwrap();
    assert_eq!(
        repeated.timestamp_ms,
        sent_at + 29,
        "the later write of a repeated id wins"
    );
    // One clock: the record reached Kinesis after it was sent and before it was stored (the
    // arrival time is read to the millisecond; the crate alone can be 900 ms early).
    let arrival = repeated.kinesis_arrival_ms.unwrap();
    assert!(
        (sent_at..=repeated.stored_at_ms.unwrap()).contains(&arrival),
        "{sent_at} <= {arrival} <= {:?}",
        repeated.stored_at_ms
    );

    let stream = stream_records(&moto, &table_stream_arn);
    let names: Vec<&str> = stream
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "INSERT").count(), 29);
    assert_eq!(names.iter().filter(|n| **n == "MODIFY").count(), 1);
    let event = serde_json::from_str::<DynamoDbPayload>(&json!({ "Records": stream }).to_string())
        .unwrap()
        .0;

    let downstream = Downstream::new(&metrics, NAMESPACE.into(), system_clock);
    let response = downstream.handle(event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    // Each request is measured once: the repeated id's second request (a MODIFY whose old image
    // was sent and received at another time) is a loop of its own, not a rewrite, so accepted
    // == measured and nothing is counted as redelivered.
    let latency = metrics.find("Latency", &[("RunId", "chain")]);
    assert_eq!(latency.len(), 1);
    assert_eq!(
        latency[0].sample_count(),
        30.0,
        "each request measured once"
    );
    assert!(metrics
        .find("RedeliveredRecords", &[("RunId", "chain")])
        .is_empty());
    assert!(
        latency[0]
            .values
            .iter()
            .all(|&v| (0.0..60_000.0).contains(&v)),
        "{:?}",
        latency[0].values
    );
    let buckets: f64 = metrics
        .data()
        .iter()
        .filter(|d| d.name == "LatencyBucket")
        .map(|d| d.sample_count())
        .sum();
    assert_eq!(buckets, 30.0);
    assert!(metrics
        .find("MalformedRecords", &[("Function", "downstream")])
        .is_empty());
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
