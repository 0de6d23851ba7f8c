//! The edge: one port for every AWS API call, like LocalStack's 4566. Calls are forwarded to
//! moto as they are, except CloudWatch's rpcv2Cbor calls (what the current Rust SDK speaks, and
//! moto does not), which are translated to moto's awsJson1_0 protocol and back ([`cbor`]); and
//! requests under a served stage (`/prod/...`) go to API Gateway ([`crate::apigateway`]).

pub mod cbor;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::apigateway::Routes;

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

/// The edge's state: where moto is, a keep-alive client to it, and the API Gateway routes.
pub struct Edge {
    moto: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    routes: Arc<Routes>,
}

impl Edge {
    /// An edge in front of the moto server at `moto`, serving no API yet.
    pub fn new(moto: SocketAddr) -> Arc<Edge> {
        Edge::with_routes(moto, Arc::default())
    }

    /// An edge that also serves `routes` under their stage paths.
    pub fn with_routes(moto: SocketAddr, routes: Arc<Routes>) -> Arc<Edge> {
        Arc::new(Edge {
            moto,
            client: Client::builder(TokioExecutor::new()).build_http(),
            routes,
        })
    }

    /// Serves connections from `listener` until `shutdown` completes.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "edge: accept failed");
                        continue;
                    }
                },
                _ = &mut shutdown => return,
            };
            let _ = stream.set_nodelay(true);
            let edge = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let edge = edge.clone();
                    async move { Ok::<_, Infallible>(edge.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    &format!("reading the request: {error}"),
                )
            }
        };
        if self.routes.serves(parts.uri.path()) {
            return self.routes.handle(&parts, body).await;
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
        match self
            .send(parts.method, &path, &parts.headers, body, None)
            .await
        {
            Ok(response) => response,
            Err(error) => plain(
                StatusCode::BAD_GATEWAY,
                &format!("moto did not answer: {error}"),
            ),
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
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (mut parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        for name in &SKIPPED {
            parts.headers.remove(name);
        }
        Ok(Response::from_parts(parts, Full::new(body)))
    }

    async fn cloudwatch(
        &self,
        operation: &str,
        parts: http::request::Parts,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
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

fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message.to_owned())));
    *response.status_mut() = status;
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
