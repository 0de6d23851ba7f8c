//! The edge: one port for every AWS API call, like LocalStack's 4566. Calls are forwarded to
//! moto as they are, except CloudWatch's rpcv2Cbor calls (what the current Rust SDK speaks, and
//! moto does not), which are translated to moto's awsJson1_0 protocol and back ([`cbor`]); and
//! requests under a served stage (`/prod/...`) go to API Gateway ([`crate::apigateway`]),
//! Lambda's Invoke calls to the functions' workers ([`crate::invoke`]), and a memory size set
//! by `UpdateFunctionConfiguration` to them as well ([`crate::configure`]).
//! Anything else unsigned gets API Gateway's 403; sizes and times are bounded ([`limits`]).
//! CloudFormation's `DescribeStacks` answers name the edge as the API's endpoint
//! ([`endpoints`]), so `cdk deploy` and `cdklocal deploy` print a URL that answers.

pub mod cbor;
pub mod endpoints;
pub mod limits;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::apigateway::Routes;
use crate::invoke::Functions;
use crate::pollers::wake::Wakes;
use crate::quota::{Admission, Limits};
use crate::Shutdown;
use limits::plain;

/// rpcv2Cbor request paths: `/service/<service>/operation/<operation>`.
const CLOUDWATCH_CBOR: &str = "/service/GraniteServiceVersion20100801/operation/";
/// awsJson1_0's target prefix for CloudWatch.
const CLOUDWATCH_TARGET: &str = "GraniteServiceVersion20100801";

/// Hop-by-hop and framing headers: never forwarded, the body is re-framed here.
const SKIPPED: [header::HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    header::UPGRADE,
];

/// Most a gzipped CloudWatch body may inflate to: CloudWatch's own limit on a request's
/// payload is 1 MB.
const MAX_INFLATED_BYTES: u64 = 4 << 20;

/// The body, inflated when `Content-Encoding: gzip` says so (the header is then removed).
fn gunzip_if_encoded(headers: &mut http::HeaderMap, body: Bytes) -> Result<Bytes, String> {
    use std::io::Read;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body);
    }
    headers.remove(header::CONTENT_ENCODING);
    let mut inflated = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(&body[..])
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| format!("request body is not valid gzip: {e}"))?;
    if inflated.len() as u64 > MAX_INFLATED_BYTES {
        return Err(format!(
            "request body inflates to more than {MAX_INFLATED_BYTES} bytes"
        ));
    }
    Ok(Bytes::from(inflated))
}

/// The edge's state: where moto is, a keep-alive client to it, the API Gateway routes, and how
/// long moto took per operation.
pub struct Edge {
    moto: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    routes: Arc<Routes>,
    functions: Arc<Functions>,
    /// The pollers to wake when a write reaches their stream ([`crate::pollers::wake`]).
    wakes: Arc<Wakes>,
    calls: Mutex<BTreeMap<String, CallStat>>,
    budget: limits::BodyBudget,
    quotas: Option<Arc<Limits>>,
}

/// moto's answers to one operation: how many, and how long they took (forwarding included).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallStat {
    /// Calls answered (whatever the status).
    pub count: u64,
    /// Their total time.
    pub total: Duration,
    /// The slowest.
    pub max: Duration,
}

impl CallStat {
    fn add(&mut self, took: Duration) {
        self.count += 1;
        self.total += took;
        self.max = self.max.max(took);
    }
}

/// A `DescribeStacks` answer with the API's endpoints rewritten to `edge`.
async fn with_edge_endpoints(response: Response<Full<Bytes>>, edge: &str) -> Response<Full<Bytes>> {
    let (mut parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let rewritten = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| endpoints::rewrite_api_urls(text, edge));
    match rewritten {
        Some(text) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Full::new(Bytes::from(text)))
        }
        None => Response::from_parts(parts, Full::new(bytes)),
    }
}

/// The operation a call to moto names: the JSON protocols' `X-Amz-Target`
/// (`Kinesis_20131202.PutRecord`), else the query protocols' `Action` parameter, else the
/// method and the path's first segment (S3, Lambda's REST API).
pub fn operation(
    headers: &http::HeaderMap,
    path: &str,
    method: &http::Method,
    body: &[u8],
) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.to_owned();
    }
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let action = |text: &str| {
        text.split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned)
    };
    let form = std::str::from_utf8(body).ok().filter(|_| {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
    });
    if let Some(action) = action(query).or_else(|| form.and_then(action)) {
        return action;
    }
    let segment = route
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    format!("{method} /{segment}")
}

impl Edge {
    /// An edge in front of the moto server at `moto`, serving no API yet.
    pub fn new(moto: SocketAddr) -> Arc<Edge> {
        Edge::with_routes(moto, Arc::default())
    }

    /// An edge that also serves `routes` under their stage paths.
    pub fn with_routes(moto: SocketAddr, routes: Arc<Routes>) -> Arc<Edge> {
        Edge::with_budget(moto, routes, limits::BODY_BUDGET)
    }

    /// An edge that holds at most `budget` bytes of request bodies at once.
    pub fn with_budget(moto: SocketAddr, routes: Arc<Routes>, budget: usize) -> Arc<Edge> {
        Edge::with_quotas(moto, routes, budget, None)
    }

    /// An edge that also keeps AWS's quotas (the aws profile), when given them.
    pub fn with_quotas(
        moto: SocketAddr,
        routes: Arc<Routes>,
        budget: usize,
        quotas: Option<Arc<Limits>>,
    ) -> Arc<Edge> {
        Arc::new(Edge {
            moto,
            client: crate::awsjson::moto_client(),
            routes,
            functions: Arc::default(),
            wakes: Arc::default(),
            calls: Mutex::default(),
            budget: limits::BodyBudget::new(budget),
            quotas,
        })
    }

    /// The functions Lambda's Invoke API reaches through this edge (none until set).
    pub fn functions(&self) -> Arc<Functions> {
        self.functions.clone()
    }

    /// The pollers woken when a write to their stream goes through this edge.
    pub fn wakes(&self) -> Arc<Wakes> {
        self.wakes.clone()
    }

    /// moto's answers so far, by operation.
    pub fn call_stats(&self) -> BTreeMap<String, CallStat> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Serves connections from `listener` until `shutdown` says stop.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, mut shutdown: Shutdown) {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors, accept fails at once and would again: pause
                        // so that connections can close, instead of spinning a core.
                        tracing::warn!(%error, "edge: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.stopped() => return,
            };
            let _ = stream.set_nodelay(true);
            let edge = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let edge = edge.clone();
                    async move { Ok::<_, Infallible>(edge.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits::HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        if self.routes.serves(parts.uri.path()) {
            let too_large = || json_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long");
            let read =
                limits::read_body(&parts, body, limits::MAX_API_BODY, &self.budget, too_large);
            let response = match read.await {
                Ok(_) if self.quotas.as_ref().is_some_and(|q| !q.api_request()) => {
                    json_message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")
                }
                Ok(body) => self.routes.handle(&parts, body.bytes.clone()).await,
                Err(response) => response,
            };
            if let (Some(quotas), Some(api)) =
                (&self.quotas, self.routes.api_name(parts.uri.path()))
            {
                quotas.api_answered(&api, response.status().as_u16());
            }
            return response;
        }
        if !limits::is_signed(&parts) {
            // API Gateway's answer for a stage or path it does not serve.
            return json_message(StatusCode::FORBIDDEN, "Missing Authentication Token");
        }
        let too_large = || plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        // Held until the answer is made: the budget counts the body while it is in memory.
        let held =
            match limits::read_body(&parts, body, limits::MAX_AWS_BODY, &self.budget, too_large)
                .await
            {
                Ok(held) => held,
                Err(response) => return response,
            };
        let body = held.bytes.clone();
        if parts.method == http::Method::POST {
            if let Some(name) = Functions::invoked(parts.uri.path()) {
                return self.functions.handle(&name, &parts, body).await;
            }
        }
        if let Some(operation) = parts.uri.path().strip_prefix(CLOUDWATCH_CBOR) {
            let operation = operation.to_owned();
            return self.cloudwatch(&operation, parts, body).await;
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let called = operation(&parts.headers, &path, &parts.method, &body);
        if let Some(quotas) = &self.quotas {
            if let Some(answer) = self
                .within_quota(quotas, &called, &parts, &path, &body)
                .await
            {
                return answer;
            }
        }
        let memory_update = match crate::configure::memory_update(
            &self.functions,
            &parts.method,
            parts.uri.path(),
            &body,
        ) {
            Ok(update) => update,
            Err(refused) => return *refused,
        };
        let describes_stacks = called == "DescribeStacks";
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let written = body.clone();
        match self
            .send(parts.method, &path, &parts.headers, body, None)
            .await
        {
            Ok(response) if describes_stacks => match host {
                Some(host) => with_edge_endpoints(response, &format!("http://{host}")).await,
                None => response,
            },
            Ok(response) if response.status().is_success() => {
                self.wakes.written(&called, &written);
                match memory_update {
                    Some(update) => update
                        .apply()
                        .map_or_else(|refused| *refused, |()| response),
                    None => response,
                }
            }
            Ok(response) => response,
            Err(error) => plain(
                StatusCode::BAD_GATEWAY,
                &format!("moto did not answer: {error}"),
            ),
        }
    }

    /// A data-plane write under AWS's quotas: `None` to forward it as it is, else the answer
    /// (refused, or the admitted part forwarded and moto's answer made whole).
    async fn within_quota(
        &self,
        quotas: &Limits,
        called: &str,
        parts: &http::request::Parts,
        path: &str,
        body: &Bytes,
    ) -> Option<Response<Full<Bytes>>> {
        if !called.starts_with("Kinesis_20131202.Put") && !called.starts_with("DynamoDB_20120810.")
        {
            return None;
        }
        let json: serde_json::Value = serde_json::from_slice(body).ok()?;
        let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
        let answer = |status: u16, value: serde_json::Value| {
            let mut response = plain(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                &value.to_string(),
            );
            if let Some(content_type) = &content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
            }
            response
        };
        match quotas.admit(called, &json).await {
            Admission::Whole => None,
            Admission::Refused(status, error) => Some(answer(status, error)),
            Admission::Answered(value) => Some(answer(200, value)),
            Admission::Part(forwarded, merge) => {
                let sent = self
                    .send(
                        parts.method.clone(),
                        path,
                        &parts.headers,
                        Bytes::from(forwarded.to_string()),
                        None,
                    )
                    .await;
                Some(match sent {
                    Ok(response) if response.status().is_success() => {
                        let (parts, moto_body) = response.into_parts();
                        let bytes = moto_body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let merged =
                            merge.apply(serde_json::from_slice(&bytes).unwrap_or_default());
                        Response::from_parts(parts, Full::new(Bytes::from(merged.to_string())))
                    }
                    Ok(response) => response,
                    Err(error) => plain(
                        StatusCode::BAD_GATEWAY,
                        &format!("moto did not answer: {error}"),
                    ),
                })
            }
        }
    }

    /// Sends a request to moto, copying the end-to-end headers (and replacing some), and reads
    /// the whole answer.
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        headers: &http::HeaderMap,
        body: Bytes,
        replace: Option<&[(header::HeaderName, HeaderValue)]>,
    ) -> Result<Response<Full<Bytes>>, String> {
        let uri = format!("http://{}{path}", self.moto);
        let replaced_target = replace
            .unwrap_or_default()
            .iter()
            .find(|(n, _)| n == "x-amz-target")
            .and_then(|(_, v)| v.to_str().ok());
        let name = match replaced_target {
            Some(target) => target.to_owned(),
            None => operation(headers, path, &method, &body),
        };
        let started = Instant::now();
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            let replaced = replace.is_some_and(|r| r.iter().any(|(n, _)| n == name));
            if !SKIPPED.contains(name) && !replaced {
                request = request.header(name, value);
            }
        }
        for (name, value) in replace.unwrap_or_default() {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let (mut parts, body) = crate::awsjson::exchange(&self.client, request).await?;
        if let Ok(mut calls) = self.calls.lock() {
            calls.entry(name).or_default().add(started.elapsed());
        }
        for name in &SKIPPED {
            parts.headers.remove(name);
        }
        Ok(Response::from_parts(parts, Full::new(body)))
    }

    async fn cloudwatch(
        &self,
        operation: &str,
        mut parts: http::request::Parts,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        // The SDK gzips a PutMetricData body over 10 KB (request compression), as CloudWatch
        // accepts; moto gets the JSON plain.
        let body = match gunzip_if_encoded(&mut parts.headers, body) {
            Ok(body) => body,
            Err(error) => {
                return cbor_error(StatusCode::BAD_REQUEST, "SerializationException", &error)
            }
        };
        let json = match cbor::request_to_json(&body) {
            Ok(json) => json,
            Err(error) => {
                return cbor_error(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    &error.to_string(),
                )
            }
        };
        let target = format!("{CLOUDWATCH_TARGET}.{operation}");
        let replace = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.0"),
            ),
            (header::ACCEPT, HeaderValue::from_static("application/json")),
            (
                header::HeaderName::from_static("x-amz-target"),
                HeaderValue::from_str(&target).unwrap_or(HeaderValue::from_static("")),
            ),
        ];
        let response = match self
            .send(
                http::Method::POST,
                "/",
                &parts.headers,
                Bytes::from(json),
                Some(&replace),
            )
            .await
        {
            Ok(response) => response,
            Err(error) => {
                return cbor_error(
                    StatusCode::BAD_GATEWAY,
                    "ServiceUnavailable",
                    &format!("moto did not answer: {error}"),
                )
            }
        };
        let (mut parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let cbor = match cbor::response_to_cbor(&body) {
            Ok(cbor) => cbor,
            // moto answers some bad requests with an HTML 500: keep its status, say what it said.
            Err(_) => cbor::error_body(
                "InternalFailure",
                &String::from_utf8_lossy(&body)
                    .chars()
                    .take(500)
                    .collect::<String>(),
            ),
        };
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/cbor"),
        );
        parts
            .headers
            .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
        Response::from_parts(parts, Full::new(Bytes::from(cbor)))
    }
}

/// API Gateway's JSON answer `{"message": ...}`.
fn json_message(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = plain(
        status,
        &serde_json::json!({ "message": message }).to_string(),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn cbor_error(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(cbor::error_body(
        error_type, message,
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/cbor"),
    );
    response
        .headers_mut()
        .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_named_by_target_action_or_path() {
        let mut headers = http::HeaderMap::new();
        let post = http::Method::POST;
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("Kinesis_20131202.PutRecord"),
        );
        assert_eq!(
            operation(&headers, "/", &post, b"{}"),
            "Kinesis_20131202.PutRecord"
        );

        let mut form = http::HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let body = b"Action=DescribeStacks&Version=2010-05-15";
        assert_eq!(operation(&form, "/", &post, body), "DescribeStacks");
        let none = http::HeaderMap::new();
        assert_eq!(
            operation(&none, "/?Action=AssumeRole&x=1", &post, b""),
            "AssumeRole"
        );
        // A body that only looks like a form is not read as one.
        assert_eq!(operation(&none, "/", &post, body), "POST /");
        assert_eq!(
            operation(&none, "/cdk-assets/key.zip", &http::Method::GET, b""),
            "GET /cdk-assets"
        );
    }

    #[test]
    fn call_table_puts_the_costliest_first() {
        let stat = |count, ms| CallStat {
            count,
            total: Duration::from_millis(ms),
            max: Duration::from_millis(ms / count.max(1)),
        };
        let calls = BTreeMap::from([
            ("A.Cheap".to_owned(), stat(10, 20)),
            ("B.Costly".to_owned(), stat(4, 4000)),
        ]);
        let table = crate::up::call_table(&calls);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(
            lines[2].starts_with("B.Costly") && lines[2].contains("1000.00"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("A.Cheap") && lines[3].contains("2.00"),
            "{table}"
        );
    }
}
