//! API Gateway REST proxy integrations, served on the edge under the stage path (`/prod/...`):
//! the request becomes an API Gateway proxy event, the function's answer becomes the HTTP
//! response. As API Gateway does: 502 when the function fails or answers something that is not
//! a proxy response, 504 when it times out, 500 when Lambda throttles it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use crate::lambda::{FunctionHost, InvokeError};

/// One method on one resource, proxied to a function.
#[derive(Clone)]
pub struct Route {
    /// The REST API's id.
    pub api_id: String,
    /// The REST API's name (API Gateway's metrics are by name).
    pub api_name: String,
    /// The stage (`prod`).
    pub stage: String,
    /// The resource path (`/`, `/items`).
    pub resource_path: String,
    /// The HTTP method, or `ANY`.
    pub method: String,
    /// The integration's function.
    pub function: Arc<FunctionHost>,
}

/// The routes the edge serves.
#[derive(Default)]
pub struct Routes {
    routes: RwLock<Vec<Route>>,
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// What a path under a stage matched.
pub enum Matched {
    /// A route for this method.
    Route(Route),
    /// The resource exists, but not for this method: API Gateway answers 403 Missing Authentication Token
    /// for unknown paths and methods alike.
    NoMethod,
}

impl Routes {
    /// Replaces the routes.
    pub fn set(&self, routes: Vec<Route>) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }

    /// Whether `path` is under a served stage.
    pub fn serves(&self, path: &str) -> bool {
        let stage = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        self.routes
            .read()
            .map(|r| r.iter().any(|route| route.stage == stage))
            .unwrap_or(false)
    }

    /// The name of the API whose stage `path` is under.
    pub fn api_name(&self, path: &str) -> Option<String> {
        let stage = path.trim_start_matches('/').split('/').next()?;
        let routes = self.routes.read().ok()?;
        routes
            .iter()
            .find(|route| route.stage == stage)
            .map(|route| route.api_name.clone())
    }

    fn find(&self, method: &str, path: &str) -> Option<Matched> {
        let trimmed = path.trim_start_matches('/');
        let (stage, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        let resource = format!("/{}", rest.trim_end_matches('/'));
        let routes = self.routes.read().ok()?;
        let on_resource: Vec<&Route> = routes
            .iter()
            .filter(|r| r.stage == stage && r.resource_path == resource)
            .collect();
        if on_resource.is_empty() {
            return Some(Matched::NoMethod);
        }
        on_resource
            .iter()
            .find(|r| r.method == method || r.method == "ANY")
            .map(|r| Matched::Route((*r).clone()))
            .or(Some(Matched::NoMethod))
    }

    /// Serves one request under a stage.
    pub async fn handle(&self, parts: &http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
        let path = parts.uri.path();
        let route = match self.find(parts.method.as_str(), path) {
            Some(Matched::Route(route)) => route,
            _ => return message(StatusCode::FORBIDDEN, "Missing Authentication Token"),
        };
        let event = proxy_event(&route, parts, &body);
        match route.function.invoke(Bytes::from(event.to_string())).await {
            Ok(answer) => proxy_response(&answer)
                .unwrap_or_else(|| message(StatusCode::BAD_GATEWAY, "Internal server error")),
            Err(InvokeError::Timeout(_)) => {
                message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
            }
            // Lambda's 429 behind a proxy integration: API Gateway's 500.
            Err(InvokeError::Throttled(_)) => {
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
            Err(_) => message(StatusCode::BAD_GATEWAY, "Internal server error"),
        }
    }
}

/// The REST API proxy event for a request.
pub fn proxy_event(route: &Route, parts: &http::request::Parts, body: &Bytes) -> Value {
    let mut headers = Map::new();
    let mut multi: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(name.as_str().to_owned(), Value::String(value.clone()));
        multi
            .entry(name.as_str().to_owned())
            .or_default()
            .push(Value::String(value));
    }
    let (query, multi_query) = match parts.uri.query() {
        None => (Value::Null, Value::Null),
        Some(q) => {
            let mut single = Map::new();
            let mut all: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                single.insert(k.to_owned(), Value::String(v.to_owned()));
                all.entry(k.to_owned())
                    .or_default()
                    .push(Value::String(v.to_owned()));
            }
            (Value::Object(single), json!(all))
        }
    };
    let (body, base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(base64(body)), true),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    json!({
        "resource": route.resource_path,
        "path": route.resource_path,
        "httpMethod": parts.method.as_str(),
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "resourcePath": route.resource_path,
            "httpMethod": parts.method.as_str(),
            "path": parts.uri.path(),
            "stage": route.stage,
            "requestId": format!("sandbox-{}", REQUEST_IDS.fetch_add(1, Ordering::Relaxed)),
            "requestTimeEpoch": now,
            "apiId": route.api_id,
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "identity": { "sourceIp": "127.0.0.1" },
        },
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// The HTTP response for a function's proxy answer, if it is one.
fn proxy_response(answer: &[u8]) -> Option<Response<Full<Bytes>>> {
    let answer: Value = serde_json::from_slice(answer).ok()?;
    let status =
        StatusCode::from_u16(u16::try_from(answer.get("statusCode")?.as_u64()?).ok()?).ok()?;
    let body = match answer.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if answer["isBase64Encoded"] == true => unbase64(text)?,
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(_) => return None,
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    for (name, value) in answer
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::try_from(name.as_str()),
            value.as_str().map(HeaderValue::from_str),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    Some(response)
}

fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        json!({ "message": text }).to_string(),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for text in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\x00\x10"] {
            assert_eq!(unbase64(&base64(text)).unwrap(), text);
        }
        assert_eq!(base64(b"hello"), "aGVsbG8=");
    }

    #[test]
    fn only_proxy_answers_become_responses() {
        let ok =
            proxy_response(br#"{"statusCode":201,"headers":{"x-a":"1"},"body":"hi"}"#).unwrap();
        assert_eq!(
            (ok.status(), ok.headers()["x-a"].to_str().unwrap()),
            (StatusCode::CREATED, "1")
        );
        assert!(proxy_response(br#"{"Records":[]}"#).is_none());
        assert!(proxy_response(b"not json").is_none());
        assert!(proxy_response(br#"{"statusCode":200,"body":{"a":1}}"#).is_none());
    }
}
