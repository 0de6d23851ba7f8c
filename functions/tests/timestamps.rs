//! The client's timestamp through all three functions, as the binaries read their events: a body
//! in seconds or in milliseconds is normalised once, by upstream, stored as sent, and measured
//! against it; a timestamp outside the API's window never gets in.

mod common;

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use common::{clock, fixture, FakeMetrics, FakeStream, FakeTable, NOW_MS};
use contract::metrics::NAMESPACE;
use functions::downstream::Downstream;
use functions::events::{DynamoDbPayload, KinesisPayload};
use functions::midstream::Midstream;
use functions::upstream::Upstream;
use serde_json::json;

/// The latency downstream measures for a body with this `timestamp`, with every function's
/// clock at [`NOW_MS`], and the timestamp stored in the table.
async fn through_the_pipeline(timestamp: serde_json::Value) -> (i64, f64) {
    let stream = FakeStream::accepting();
    let mut post: ApiGatewayProxyRequest = fixture("apigw-post.json");
    post.body = Some(
        json!({"id": "t-0-0", "message": "m", "timestamp": timestamp, "run_id": "t"}).to_string(),
    );
    let response = Upstream::new(&stream, clock).handle(post).await;
    assert_eq!(response.status_code, 200, "{:?}", response.body);

    // Kinesis → midstream, with the arrival time spelled as Lambda may spell it.
    let (_, data) = stream.puts.lock().unwrap()[0].clone();
    let event = json!({"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "t-0-0", "sequenceNumber": "1",
                    "data": base64(&data), "approximateArrivalTimestamp": NOW_MS as f64 / 1000.0 + 0.0001234},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": "shardId-0:1",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/S"}]});
    let event: KinesisPayload = serde_json::from_str(&event.to_string()).unwrap();
    let table = FakeTable::accepting();
    let metrics = FakeMetrics::accepting();
    let response = Midstream::new(&table, &metrics, NAMESPACE.into(), clock)
        .handle(event.0)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let item = table.calls()[0][0].clone();

    // The table's stream → downstream.
    let image: serde_json::Map<String, serde_json::Value> = item
        .numbers()
        .into_iter()
        .map(|(name, n)| (name.to_owned(), json!({"N": n.to_string()})))
        .chain([
            ("id".to_owned(), json!({"S": item.id})),
            ("message".to_owned(), json!({"S": item.message})),
            ("run_id".to_owned(), json!({"S": "t"})),
        ])
        .collect();
    let event = json!({"Records": [{"eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"ApproximateCreationDateTime": NOW_MS as f64 / 1000.0, "Keys": {"id": {"S": "t-0-0"}},
                     "NewImage": image, "SequenceNumber": "1", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/x"}]});
    let event: DynamoDbPayload = serde_json::from_str(&event.to_string()).unwrap();
    let metrics = FakeMetrics::accepting();
    Downstream::new(&metrics, NAMESPACE.into(), clock)
        .handle(event.0)
        .await
        .unwrap();
    let latency = metrics.find("Latency", &[("RunId", "t")]);
    (item.timestamp_ms, latency[0].values[0])
}

fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test]
async fn seconds_and_milliseconds_are_normalised_once_and_measured_against_the_send_time() {
    let sent_ms = NOW_MS - 1_250;
    for (timestamp, stored) in [
        (json!(sent_ms), sent_ms),
        (json!(sent_ms / 1000), sent_ms / 1000 * 1000),
        (json!(sent_ms as f64 / 1000.0), sent_ms),
    ] {
        let (stored_ms, latency) = through_the_pipeline(timestamp.clone()).await;
        assert_eq!(
            stored_ms, stored,
            "{timestamp}: stored as sent, converted once"
        );
        assert_eq!(latency, (NOW_MS - stored) as f64, "{timestamp}");
    }
}

#[tokio::test]
async fn a_timestamp_outside_the_window_is_refused_and_never_written() {
    for timestamp in [1, NOW_MS - 25 * 3_600_000, NOW_MS + 3_600_000] {
        let stream = FakeStream::accepting();
        let mut post: ApiGatewayProxyRequest = fixture("apigw-post.json");
        post.body = Some(json!({"id": "t", "message": "m", "timestamp": timestamp}).to_string());
        let response = Upstream::new(&stream, clock).handle(post).await;
        assert_eq!(response.status_code, 400, "{timestamp}");
        assert_eq!(stream.put_count(), 0);
    }
}

/// A clock that moves on by a millisecond at each reading, from [`NOW_MS`].
fn ticking_clock() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static READINGS: AtomicI64 = AtomicI64::new(0);
    NOW_MS + READINGS.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn a_request_accepted_at_the_window_edge_is_a_record_midstream_accepts() {
    // The oldest timestamp the API takes at its clock's first reading: judged and stamped with
    // that same reading, the record lies within the window midstream checks again.
    let stream = FakeStream::accepting();
    let mut post: ApiGatewayProxyRequest = fixture("apigw-post.json");
    let oldest = NOW_MS - contract::payload::MAX_TIMESTAMP_AGE_MS;
    post.body = Some(json!({"id": "edge", "message": "m", "timestamp": oldest}).to_string());
    let response = Upstream::new(&stream, ticking_clock).handle(post).await;
    assert_eq!(response.status_code, 200, "{:?}", response.body);
    let (_, data) = stream.puts.lock().unwrap()[0].clone();
    let record = contract::KinesisRecord::decode(&data)
        .expect("an accepted request is never a record midstream refuses");
    assert_eq!(record.received_at_ms, NOW_MS);
}
