//! Raw AWS JSON-protocol calls to moto (Kinesis, DynamoDB Streams): what Lambda's pollers see,
//! before any SDK turns it into types. moto does not check signatures; the credential scope only
//! names the service.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A call that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No answer.
    #[error("{target}: moto did not answer: {message}")]
    Transport {
        /// The operation.
        target: String,
        /// What happened.
        message: String,
    },
    /// An error answer.
    #[error("{target}: {status} {error_type}: {message}")]
    Service {
        /// The operation.
        target: String,
        /// HTTP status.
        status: u16,
        /// `__type`.
        error_type: String,
        /// `message`.
        message: String,
    },
}

/// A client for moto's JSON-protocol APIs.
/// The longest a connection to moto may take to open.
const CONNECT_BOUND: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest one call to moto may take, the answer's body included: a moto that stops
/// answering fails the call instead of holding a poller or a request for ever.
pub const CALL_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

/// An HTTP client for moto: connections open within [`CONNECT_BOUND`].
pub fn moto_client() -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_BOUND));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Sends `request` with `client` and reads the whole answer within [`CALL_BOUND`]; the error
/// is one line.
pub async fn exchange(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(http::response::Parts, Bytes), String> {
    exchange_within(client, request, CALL_BOUND).await
}

/// As [`exchange`], within `bound`.
async fn exchange_within(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
    bound: std::time::Duration,
) -> Result<(http::response::Parts, Bytes), String> {
    let call = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts, body))
    };
    tokio::time::timeout(bound, call)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {bound:?}")))
}

#[derive(Clone)]
pub struct AwsJson {
    endpoint: SocketAddr,
    region: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl AwsJson {
    /// A client for the moto server at `endpoint`, in `region`.
    pub fn new(endpoint: SocketAddr, region: &str) -> AwsJson {
        AwsJson {
            endpoint,
            region: region.to_owned(),
            client: moto_client(),
        }
    }

    /// A REST call (Lambda's and API Gateway's REST-JSON APIs, S3's GET): the answer's body.
    pub async fn rest(
        &self,
        service: &str,
        method: http::Method,
        path: &str,
    ) -> Result<Bytes, CallError> {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.endpoint))
            .header(header::AUTHORIZATION, self.authorization(service))
            .body(Full::new(Bytes::new()));
        let (status, bytes) = self.send(path, request).await?;
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(CallError::Service {
                target: path.to_owned(),
                status: status.as_u16(),
                error_type: String::new(),
                message: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            })
        }
    }

    /// A REST call answered with JSON.
    pub async fn rest_json(&self, service: &str, path: &str) -> Result<Value, CallError> {
        let bytes = self.rest(service, http::Method::GET, path).await?;
        serde_json::from_slice(&bytes).map_err(|e| CallError::Transport {
            target: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Calls `target` (e.g. `Kinesis_20131202.GetRecords`) of `service` (the signing name:
    /// `kinesis`, `dynamodb`).
    pub async fn call(
        &self,
        service: &str,
        target: &str,
        body: &Value,
    ) -> Result<Value, CallError> {
        let version = if service == "kinesis" { "1.1" } else { "1.0" };
        let request = Request::post(format!("http://{}/", self.endpoint))
            .header(
                header::CONTENT_TYPE,
                format!("application/x-amz-json-{version}"),
            )
            .header("x-amz-target", target)
            .header(header::AUTHORIZATION, self.authorization(service))
            .body(Full::new(Bytes::from(body.to_string())));
        let (status, bytes) = self.send(target, request).await?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(json)
        } else {
            let text = |key: &str| {
                json.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Err(CallError::Service {
                target: target.to_owned(),
                status: status.as_u16(),
                error_type: text("__type"),
                message: if json.is_null() {
                    String::from_utf8_lossy(&bytes).chars().take(300).collect()
                } else {
                    text("message")
                },
            })
        }
    }

    /// Sends a request and reads the whole answer; `target` names the call in errors.
    async fn send(
        &self,
        target: &str,
        request: Result<Request<Full<Bytes>>, http::Error>,
    ) -> Result<(http::StatusCode, Bytes), CallError> {
        let transport = |message: String| CallError::Transport {
            target: target.to_owned(),
            message,
        };
        let request = request.map_err(|e| transport(e.to_string()))?;
        let (parts, bytes) = exchange(&self.client, request).await.map_err(transport)?;
        Ok((parts.status, bytes))
    }

    fn authorization(&self, service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{}/{service}/aws4_request, SignedHeaders=host, Signature=0",
            self.region
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_moto_that_never_answers_fails_the_call_within_its_bound() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts, reads the request and never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let request = Request::post(format!("http://{address}/"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let bound = std::time::Duration::from_millis(300);
        let outcome = exchange_within(&moto_client(), request, bound).await;
        assert_eq!(outcome.unwrap_err(), "no answer within 300ms");
    }
}
