//! Lambda's Invoke API for the functions the sandbox runs: `POST
//! /2015-03-31/functions/{name}/invocations` on the edge goes to the function's workers instead
//! of moto (whose own Invoke needs Docker), so `aws lambda invoke` and the SDKs work against the
//! sandbox as against AWS:
//!
//! - `RequestResponse` (the default): 200 with the function's answer; a function error, timeout
//!   or crash is 200 with `X-Amz-Function-Error: Unhandled` and Lambda's error document;
//! - `Event`: 202 at once, the invocation runs on (its failure is logged);
//! - `DryRun`: 204;
//! - an unknown function: 404 `ResourceNotFoundException`;
//! - past a concurrency limit (the aws profile): 429 `TooManyRequestsException` with its
//!   `Reason`.
//!
//! The function is named as Lambda allows: its name, its ARN or a partial ARN
//! (`123456789012:function:name`), with or without a `:qualifier` (every qualifier is
//! `$LATEST` here).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::lambda::{FunctionHost, InvokeError, LogSink};

const PREFIX: &str = "/2015-03-31/functions/";
const SUFFIX: &str = "/invocations";

/// The functions the Invoke API reaches, by name.
#[derive(Default)]
pub struct Functions {
    hosts: RwLock<BTreeMap<String, Arc<FunctionHost>>>,
    logs: RwLock<Option<LogSink>>,
}

impl Functions {
    /// Replaces the functions, and where an `Event` invocation's failure is logged.
    pub fn set(&self, hosts: impl IntoIterator<Item = Arc<FunctionHost>>, logs: LogSink) {
        let hosts = hosts
            .into_iter()
            .map(|h| (h.name().to_owned(), h))
            .collect();
        *self.hosts.write().unwrap_or_else(|p| p.into_inner()) = hosts;
        *self.logs.write().unwrap_or_else(|p| p.into_inner()) = Some(logs);
    }

    /// The function a request path invokes, if it is an Invoke path.
    pub fn invoked(path: &str) -> Option<String> {
        let name = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
        (!name.is_empty() && !name.contains('/')).then(|| percent_decode(name))
    }

    /// The function `name` (its name, ARN or partial ARN, with or without a qualifier) names.
    pub fn host(&self, name: &str) -> Option<Arc<FunctionHost>> {
        let key = function_name(name);
        self.hosts
            .read()
            .ok()
            .and_then(|hosts| hosts.get(key).cloned())
    }

    /// Serves one Invoke call for `name` (as the path gives it).
    pub async fn handle(
        &self,
        name: &str,
        parts: &http::request::Parts,
        payload: Bytes,
    ) -> Response<Full<Bytes>> {
        let Some(host) = self.host(name) else {
            return error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Function not found: {name}"),
            );
        };
        let kind = parts
            .headers
            .get("x-amz-invocation-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("RequestResponse");
        match kind {
            "RequestResponse" => answer(host.invoke(payload).await),
            "Event" => {
                let logs = self.logs.read().ok().and_then(|l| l.clone());
                tokio::spawn(async move {
                    if let (Err(e), Some(logs)) = (host.invoke(payload).await, logs) {
                        logs(host.name(), &format!("event invocation failed: {e}"));
                    }
                });
                empty(StatusCode::ACCEPTED)
            }
            "DryRun" => empty(StatusCode::NO_CONTENT),
            other => error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("X-Amz-Invocation-Type {other:?} is not RequestResponse, Event or DryRun"),
            ),
        }
    }
}

/// The function's name in any of the forms Lambda takes, without a qualifier.
fn function_name(given: &str) -> &str {
    let name = match given.split_once("function:") {
        Some((_, rest)) => rest,
        None => given,
    };
    name.split(':').next().unwrap_or(name)
}

/// A RequestResponse invocation's answer, as Lambda gives it.
fn answer(result: Result<Bytes, InvokeError>) -> Response<Full<Bytes>> {
    let (error_type, message) = match result {
        Ok(payload) => return with_version(Response::builder().status(StatusCode::OK), payload),
        Err(InvokeError::Function {
            error_type,
            message,
        }) => (error_type, message),
        Err(InvokeError::Timeout(limit)) => (
            "Sandbox.Timedout".to_owned(),
            format!("Task timed out after {:.2} seconds", limit.as_secs_f64()),
        ),
        Err(InvokeError::Throttled(reason)) => {
            return Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("x-amzn-errortype", "TooManyRequestsException")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(
                    json!({"Reason": reason, "Type": "User", "message": "Rate Exceeded."})
                        .to_string(),
                )))
                .unwrap_or_default()
        }
        Err(InvokeError::Stopped) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceException",
                "the sandbox is stopping",
            )
        }
        Err(other) => ("Runtime.ExitError".to_owned(), other.to_string()),
    };
    let document = json!({"errorType": error_type, "errorMessage": message});
    with_version(
        Response::builder()
            .status(StatusCode::OK)
            .header("x-amz-function-error", "Unhandled"),
        Bytes::from(document.to_string()),
    )
}

fn with_version(builder: http::response::Builder, body: Bytes) -> Response<Full<Bytes>> {
    builder
        .header("x-amz-executed-version", "$LATEST")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .unwrap_or_default()
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

/// A REST-JSON error as Lambda's API answers it.
pub(crate) fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("x-amzn-errortype", kind)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            json!({"Type": "User", "Message": message}).to_string(),
        )))
        .unwrap_or_default()
}

/// `%3A` → `:` and so on (an ARN in a path is percent-encoded).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_arns_and_qualifiers_name_the_function() {
        assert_eq!(
            Functions::invoked("/2015-03-31/functions/midstream/invocations").as_deref(),
            Some("midstream")
        );
        let arn = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3APipelineStack-Up%3A%24LATEST/invocations";
        let given = Functions::invoked(arn).unwrap();
        assert_eq!(
            given,
            "arn:aws:lambda:us-east-1:123456789012:function:PipelineStack-Up:$LATEST"
        );
        assert_eq!(function_name(&given), "PipelineStack-Up");
        assert_eq!(function_name("123456789012:function:f"), "f");
        assert_eq!(function_name("f:live"), "f");
        assert_eq!(Functions::invoked("/2015-03-31/functions/"), None);
        assert_eq!(
            Functions::invoked("/2015-03-31/functions/a/b/invocations"),
            None
        );
        assert_eq!(Functions::invoked("/2015-03-31/functions/f"), None);
    }
}
