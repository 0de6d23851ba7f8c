//! What the edge accepts, as API Gateway bounds it: a request body of at most 10 MB under a
//! stage (100 MiB for AWS API calls), refused with 413 before it is read whole; a request head
//! within 30 s and a body within 60 s; and, outside the served stages, only signed AWS calls.
//!
//! The bodies held at once share one budget ([`BodyBudget`], 128 MiB): a body that would pass
//! it is refused with 503 and `Retry-After`, which AWS's SDKs retry, so that many large uploads
//! at once cannot take the machine's memory. A refused body is still read and thrown away in
//! the background (up to [`DRAIN_MAX`] bytes, [`DRAIN_TIME`]), as nginx and API Gateway do, so
//! that a client that writes its whole body before it reads gets the answer, not a broken pipe.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, request::Parts, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest request body under a stage: API Gateway's payload limit (10 MB).
pub const MAX_API_BODY: usize = 10 * 1000 * 1000;
/// Largest body of an AWS API call (code zips and templates are a few MB).
pub const MAX_AWS_BODY: usize = 100 * 1024 * 1024;
/// The bodies the edge holds at once, in all.
pub const BODY_BUDGET: usize = 128 * 1024 * 1024;
/// A request's head must arrive within this long, and an idle keep-alive connection is closed
/// after it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// A request's body must arrive within this long.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Most of a refused body read and thrown away before the connection is closed.
pub const DRAIN_MAX: u64 = 64 * 1024 * 1024;
/// Longest a refused body is read and thrown away.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);
/// A refused body that sends nothing for this long is not waited for any more (nginx's
/// `lingering_timeout`).
pub const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// The bytes of request bodies the edge may hold at once, shared by every connection.
#[derive(Debug, Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget(Arc::new(Semaphore::new(bytes)))
    }

    /// Takes `bytes` of the budget now, or `None` when that much is not free.
    fn take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let bytes = u32::try_from(bytes).ok()?;
        self.0.clone().try_acquire_many_owned(bytes).ok()
    }
}

impl Default for BodyBudget {
    fn default() -> BodyBudget {
        BodyBudget::new(BODY_BUDGET)
    }
}

/// A body read whole, and its share of the budget, held until it is dropped.
#[derive(Debug)]
pub struct HeldBody {
    /// The bytes.
    pub bytes: Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

/// Reads a body of at most `limit` bytes within the budget; a larger one (by its
/// Content-Length, unread, or as it arrives), one the budget cannot hold, or a late one is the
/// error response. A refused body's rest is drained in the background.
pub async fn read_body(
    parts: &Parts,
    body: Incoming,
    limit: usize,
    budget: &BodyBudget,
    too_large: impl Fn() -> Response<Full<Bytes>>,
) -> Result<HeldBody, Response<Full<Bytes>>> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body);
        return Err(closing(too_large()));
    }
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut hold = |permit: OwnedSemaphorePermit| match &mut held {
        Some(held) => held.merge(permit),
        None => held = Some(permit),
    };
    if let Some(n) = declared {
        match budget.take(n as usize) {
            Some(permit) => hold(permit),
            None => {
                drain(body);
                return Err(closing(busy()));
            }
        }
    }
    let mut body = body;
    let mut bytes = BytesMut::new();
    let reading = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                plain(
                    StatusCode::BAD_REQUEST,
                    &format!("reading the request: {e}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            if bytes.len() + data.len() > limit {
                return Err(too_large());
            }
            if declared.is_none() {
                hold(budget.take(data.len()).ok_or_else(busy)?);
            }
            bytes.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, reading).await {
        Ok(Ok(())) => Ok(HeldBody {
            bytes: bytes.freeze(),
            _held: held,
        }),
        Ok(Err(response)) => {
            drain(body);
            Err(closing(response))
        }
        Err(_) => Err(plain(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
    }
}

/// AWS's answer when it cannot take a request now; the SDKs retry it.
fn busy() -> Response<Full<Bytes>> {
    let mut response = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "SlowDown: the edge holds as many request bodies as it may; retry",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    response
}

/// The connection closes after this answer (once the refused body is drained): nothing more of
/// the client's can be read on it.
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

/// Reads and throws away the rest of a refused body in the background, at most [`DRAIN_MAX`]
/// bytes for at most [`DRAIN_TIME`], and no longer than [`DRAIN_IDLE`] without data, so that
/// the answer reaches a client still writing.
fn drain(mut body: Incoming) {
    tokio::spawn(async move {
        let mut left = DRAIN_MAX;
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            while let Ok(Some(Ok(frame))) = tokio::time::timeout(DRAIN_IDLE, body.frame()).await {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
        })
        .await;
    });
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
