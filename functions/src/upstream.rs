//! upstream: API Gateway REST proxy event → validate → Kinesis PutRecord → response.
//!
//! | outcome | status | body |
//! | --- | --- | --- |
//! | record in the stream | 200 | `{"message":"success"}` |
//! | body breaks the contract | 400 | `{"message":"<reason>"}`, nothing written |
//! | not a POST | 405 | `Allow: POST` |
//! | Kinesis throttled, after brief retries | 503 | the reason, `Retry-After: 1` |
//! | any other Kinesis failure | 502 | the reason |

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{header, HeaderMap, HeaderValue, Method};
use base64::Engine;
use contract::{KinesisRecord, Request};

use crate::error::PutError;
use crate::sinks::RecordSink;
use crate::Clock;

/// How long to wait before each retry of a throttled PutRecord (the SDK has retried too).
pub const THROTTLE_BACKOFF: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
];

/// The upstream function: its record sink and clock.
pub struct Upstream<S> {
    sink: S,
    clock: Clock,
}

impl<S: RecordSink> Upstream<S> {
    /// A function that writes to `sink` and stamps `received_at` with `clock`.
    pub fn new(sink: S, clock: Clock) -> Self {
        Upstream { sink, clock }
    }

    /// Handles one API Gateway proxy request. Never fails: every outcome is an HTTP response.
    pub async fn handle(&self, event: ApiGatewayProxyRequest) -> ApiGatewayProxyResponse {
        if event.http_method != Method::POST {
            let mut response = respond(
                405,
                &format!(
                    "method {} is not allowed; POST a JSON body",
                    event.http_method
                ),
            );
            response
                .headers
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let body = match decode_body(&event) {
            Ok(body) => body,
            Err(reason) => return respond(400, &reason),
        };
        // One reading of the clock both judges the timestamp and stamps `received_at`: with
        // two, a request valid at the first could be out of the window at the second, and
        // midstream would refuse a request the API had accepted.
        let now_ms = (self.clock)();
        let request = match Request::parse_at(&body, now_ms) {
            Ok(request) => request,
            Err(reason) => return respond(400, &reason.to_string()),
        };
        let record = KinesisRecord::new(request, now_ms);
        let data = record.encode();
        let mut backoff = THROTTLE_BACKOFF.iter();
        loop {
            match self
                .sink
                .put_record(record.partition_key(), data.clone())
                .await
            {
                Ok(()) => return respond(200, "success"),
                Err(PutError::Throttled(_)) if backoff.len() > 0 => {
                    if let Some(delay) = backoff.next() {
                        tokio::time::sleep(*delay).await;
                    }
                }
                Err(error @ PutError::Throttled(_)) => {
                    tracing::warn!(id = %record.request.id, %error, "throttled after retries");
                    let mut response = respond(503, &error.to_string());
                    response
                        .headers
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    return response;
                }
                Err(error) => {
                    tracing::error!(id = %record.request.id, %error, "put record failed");
                    return respond(502, &error.to_string());
                }
            }
        }
    }
}

/// The request body as bytes, decoding base64 when API Gateway says it is encoded.
fn decode_body(event: &ApiGatewayProxyRequest) -> Result<Vec<u8>, String> {
    let body = event.body.as_deref().unwrap_or_default();
    if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("request body is marked base64 but does not decode: {e}"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// A JSON response `{"message": message}`.
fn respond(status: i64, message: &str) -> ApiGatewayProxyResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(Body::Text(
        serde_json::json!({ "message": message }).to_string(),
    ));
    response
}
