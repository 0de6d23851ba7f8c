//! What the edge accepts, as API Gateway bounds it: a request body of at most 10 MB under a
//! stage (100 MiB for AWS API calls), refused with 413 before it is read whole; a request head
//! within 30 s and a body within 60 s; and, outside the served stages, only signed AWS calls.

use std::time::Duration;

use bytes::Bytes;
use http::{header, request::Parts, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

/// Largest request body under a stage: API Gateway's payload limit (10 MB).
pub const MAX_API_BODY: usize = 10 * 1000 * 1000;
/// Largest body of an AWS API call (code zips and templates are a few MB).
pub const MAX_AWS_BODY: usize = 100 * 1024 * 1024;
/// A request's head must arrive within this long, and an idle keep-alive connection is closed
/// after it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// A request's body must arrive within this long.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads a body of at most `limit` bytes; a larger one (by its Content-Length, unread, or as it
/// arrives) or a late one is the error response.
pub async fn read_body(
    parts: &Parts,
    body: Incoming,
    limit: usize,
    too_large: impl Fn() -> Response<Full<Bytes>>,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(error)) => Err(plain(
            StatusCode::BAD_REQUEST,
            &format!("reading the request: {error}"),
        )),
        Err(_) => Err(plain(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
    }
}

/// Whether a request is a signed AWS API call (SigV4 in the header or the query).
pub fn is_signed(parts: &Parts) -> bool {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
    let query = parts
        .uri
        .query()
        .is_some_and(|q| q.contains("X-Amz-Signature="));
    header || query
}

/// A plain-text response.
pub fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message.to_owned())));
    *response.status_mut() = status;
    response
}
