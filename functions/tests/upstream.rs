//! upstream's behaviour over a fake stream, from real API Gateway event fixtures.

mod common;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use common::{clock, fixture, FakeStream, NOW_MS};
use contract::KinesisRecord;
use functions::error::PutError;
use functions::upstream::Upstream;

fn body(response: &ApiGatewayProxyResponse) -> serde_json::Value {
    match &response.body {
        Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a JSON text body, got {other:?}"),
    }
}

fn post(body: &str) -> ApiGatewayProxyRequest {
    let mut event: ApiGatewayProxyRequest = fixture("apigw-post.json");
    event.body = Some(body.to_owned());
    event
}

#[tokio::test]
async fn a_valid_post_puts_one_record_keyed_by_id_and_answers_success() {
    let stream = FakeStream::accepting();
    let function = Upstream::new(&stream, clock);
    let response = function.handle(fixture("apigw-post.json")).await;
    assert_eq!(response.status_code, 200);
    assert_eq!(body(&response), serde_json::json!({"message": "success"}));
    assert_eq!(response.headers["content-type"], "application/json");

    let puts = stream.puts.lock().unwrap();
    assert_eq!(puts.len(), 1);
    let (key, data) = &puts[0];
    assert_eq!(key, "run1-0-0");
    let record = KinesisRecord::decode(data).unwrap();
    assert_eq!(record.request.message, "Hello from loadgen");
    assert_eq!(record.request.timestamp_ms, 1_795_678_799_990);
    assert_eq!(record.request.run_id.as_deref(), Some("run1"));
    assert_eq!(record.received_at_ms, NOW_MS);
}

#[tokio::test]
async fn a_base64_body_is_decoded() {
    let stream = FakeStream::accepting();
    let response = Upstream::new(&stream, clock)
        .handle(fixture("apigw-post-base64.json"))
        .await;
    assert_eq!(response.status_code, 200);
    assert_eq!(stream.puts.lock().unwrap()[0].0, "run1-0-0");

    let mut event: ApiGatewayProxyRequest = fixture("apigw-post-base64.json");
    event.body = Some("%%%".into());
    let response = Upstream::new(&stream, clock).handle(event).await;
    assert_eq!(response.status_code, 400);
    assert!(body(&response)["message"]
        .as_str()
        .unwrap()
        .contains("base64"));
    assert_eq!(stream.put_count(), 1);
}

#[tokio::test]
async fn invalid_bodies_get_400_with_the_reason_and_write_nothing() {
    let stream = FakeStream::accepting();
    let function = Upstream::new(&stream, clock);
    let cases = [
        (
            "",
            "request body is empty; send a JSON object with `id`, `message` and `timestamp`",
        ),
        (r#"{"message":"m","timestamp":1}"#, "missing field `id`"),
        (
            r#"{"id":"a","message":"","timestamp":1}"#,
            "`message` must not be empty",
        ),
        (
            r#"{"id":"a","message":"m","timestamp":"now"}"#,
            "`timestamp` must be a number: epoch milliseconds (or epoch seconds)",
        ),
        (
            r#"{"id":"a","message":"m","timestamp":1,"run_id":"no spaces"}"#,
            "`run_id` must be 1 to 64 characters of A-Z, a-z, 0-9, `_` or `-`",
        ),
    ];
    for (text, reason) in cases {
        let response = function.handle(post(text)).await;
        assert_eq!(response.status_code, 400, "{text}");
        assert_eq!(body(&response)["message"], reason, "{text}");
    }
    let mut no_body = post("");
    no_body.body = None;
    assert_eq!(function.handle(no_body).await.status_code, 400);
    assert_eq!(stream.put_count(), 0);
}

#[tokio::test]
async fn other_methods_get_405_and_write_nothing() {
    let stream = FakeStream::accepting();
    let response = Upstream::new(&stream, clock)
        .handle(fixture("apigw-get.json"))
        .await;
    assert_eq!(response.status_code, 405);
    assert_eq!(response.headers["allow"], "POST");
    assert_eq!(
        body(&response)["message"],
        "method GET is not allowed; POST a JSON body"
    );
    assert_eq!(stream.put_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_briefly_then_succeeds() {
    let stream = FakeStream::scripted(|call| {
        if call < 2 {
            Err(PutError::Throttled(
                "ProvisionedThroughputExceededException".into(),
            ))
        } else {
            Ok(())
        }
    });
    let response = Upstream::new(&stream, clock)
        .handle(fixture("apigw-post.json"))
        .await;
    assert_eq!(response.status_code, 200);
    assert_eq!(stream.put_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn persistent_throttling_is_a_503_with_the_reason() {
    let stream = FakeStream::scripted(|_| Err(PutError::Throttled("slow down".into())));
    let started = tokio::time::Instant::now();
    let response = Upstream::new(&stream, clock)
        .handle(fixture("apigw-post.json"))
        .await;
    assert_eq!(response.status_code, 503);
    assert_eq!(response.headers["retry-after"], "1");
    assert_eq!(
        body(&response)["message"],
        "Kinesis throttled the write: slow down"
    );
    assert_eq!(stream.put_count(), 4);
    // "Briefly": the retries add 350 ms, far inside API Gateway's 29 s.
    assert_eq!(started.elapsed().as_millis(), 350);
}

#[tokio::test(start_paused = true)]
async fn other_kinesis_failures_are_a_502_without_retry() {
    let stream = FakeStream::scripted(|_| {
        Err(PutError::Failed(
            "ResourceNotFoundException: stream gone".into(),
        ))
    });
    let response = Upstream::new(&stream, clock)
        .handle(fixture("apigw-post.json"))
        .await;
    assert_eq!(response.status_code, 502);
    assert_eq!(
        body(&response)["message"],
        "Kinesis did not take the record: ResourceNotFoundException: stream gone"
    );
    assert_eq!(stream.put_count(), 1);
}
