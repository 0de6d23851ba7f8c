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
            client: Client::builder(TokioExecutor::new()).build_http(),
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
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(e.to_string()))?
            .to_bytes();
        Ok((status, bytes))
    }

    fn authorization(&self, service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{}/{service}/aws4_request, SignedHeaders=host, Signature=0",
            self.region
        )
    }
}
