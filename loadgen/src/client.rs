//! One connection per VU, like k6: HTTP/1.1 with keep-alive ([`crate::h1`]), or HTTP/2 over hyper
//! when TLS negotiates it (ALPN). A failure says what kind it was, so that it can be counted.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::endpoint::Endpoint;
use crate::h1::H1;
use crate::outcome::FailureKind;
pub use crate::outcome::Response;

/// Builds connections and requests for one endpoint; shared by all VUs.
pub struct Client {
    endpoint: Endpoint,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// An HTTP/1.1 request up to its `Content-Length` value, the same for every request.
    h1_head: Vec<u8>,
    full_uri: Uri,
    /// Every request's headers besides Host, Authorization and Content-Length (for HTTP/2).
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

/// A live connection, owned by one VU.
pub enum Connection {
    /// HTTP/1.1 over TCP, one request at a time, kept alive.
    Http1(H1<TcpStream>),
    /// HTTP/1.1 over TLS.
    Https1(Box<H1<TlsStream<TcpStream>>>),
    /// HTTP/2 (TLS with ALPN h2).
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Client {
    /// A client POSTing JSON to `endpoint`; `insecure` accepts any certificate.
    pub fn new(endpoint: &Endpoint, insecure: bool) -> Result<Client, String> {
        Client::with_headers(endpoint, insecure, &[("Content-Type", "application/json")])
    }

    /// A client POSTing to `endpoint` with `headers` on every request.
    pub fn with_headers(
        endpoint: &Endpoint,
        insecure: bool,
        headers: &[(&'static str, &'static str)],
    ) -> Result<Client, String> {
        let tls = if endpoint.tls {
            let config = tls_config(insecure)?;
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|e| format!("{}: not a TLS server name: {e}", endpoint.host))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        let authorization = match &endpoint.authorization {
            Some(value) => format!("Authorization: {value}\r\n"),
            None => String::new(),
        };
        let lines: String = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        let h1_head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\n{authorization}{lines}Content-Length: ",
            endpoint.path, endpoint.authority
        )
        .into_bytes();
        Ok(Client {
            endpoint: endpoint.clone(),
            tls,
            h1_head,
            full_uri: endpoint.uri_without_credentials.clone(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let name = header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| format!("header {name:?}: {e}"))?;
                    Ok((name, HeaderValue::from_static(value)))
                })
                .collect::<Result<_, String>>()?,
        })
    }

    /// Opens a connection; `timings` gets how long the TCP connect and the TLS handshake took.
    pub async fn connect(&self, timings: &mut ConnectTimings) -> Result<Connection, FailureKind> {
        let mut addrs = tokio::net::lookup_host((self.endpoint.host.as_str(), self.endpoint.port))
            .await
            .map_err(|_| FailureKind::Dns)?;
        let mut last = FailureKind::Dns;
        let stream = loop {
            let Some(addr) = addrs.next() else {
                return Err(last);
            };
            let started = std::time::Instant::now();
            let connected = TcpStream::connect(addr).await;
            timings.connecting += started.elapsed();
            match connected {
                Ok(stream) => break stream,
                Err(e) => last = FailureKind::from_io(&e).unwrap_or(FailureKind::Connect),
            }
        };
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => Ok(Connection::Http1(H1::new(stream))),
            Some((connector, name)) => {
                let started = std::time::Instant::now();
                let tls = connector.connect(name.clone(), stream).await;
                timings.tls_handshaking += started.elapsed();
                let tls = tls.map_err(|e| FailureKind::from_io(&e).unwrap_or(FailureKind::Tls))?;
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    http2_handshake(tls).await
                } else {
                    Ok(Connection::Https1(Box::new(H1::new(tls))))
                }
            }
        }
    }

    /// Sends `body` on `connection` and reads the whole response.
    pub async fn send(
        &self,
        connection: &mut Connection,
        body: Bytes,
    ) -> Result<Response, FailureKind> {
        match connection {
            Connection::Http1(h1) => h1.send(&self.h1_head, &body).await,
            Connection::Https1(h1) => h1.send(&self.h1_head, &body).await,
            Connection::Http2(sender) => {
                let mut request = Request::builder()
                    .method(Method::POST)
                    .uri(self.full_uri.clone());
                for (name, value) in &self.headers {
                    request = request.header(name, value);
                }
                if let Some(value) = &self.endpoint.authorization {
                    request = request.header(header::AUTHORIZATION, value);
                }
                let request = request
                    .body(Full::new(body))
                    .map_err(|_| FailureKind::Protocol)?;
                sender.ready().await.map_err(|e| classify(&e))?;
                let start = std::time::Instant::now();
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| classify(&e))?;
                read_http2(response, start.elapsed()).await
            }
        }
    }
}

impl Connection {
    /// Whether the connection can take another request; an HTTP/1.1 connection the server
    /// closed while it was idle is not.
    pub async fn is_open(&mut self) -> bool {
        match self {
            Connection::Http1(h1) => h1.is_open().await,
            Connection::Https1(h1) => h1.is_open().await,
            Connection::Http2(sender) => !sender.is_closed(),
        }
    }
}

/// How long opening a connection took, as k6 splits it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectTimings {
    /// The TCP connect (`http_req_connecting`).
    pub connecting: std::time::Duration,
    /// The TLS handshake (`http_req_tls_handshaking`).
    pub tls_handshaking: std::time::Duration,
}

/// Reads an HTTP/2 response's body to its end, counting its bytes.
async fn read_http2(
    response: http::Response<hyper::body::Incoming>,
    waiting: std::time::Duration,
) -> Result<Response, FailureKind> {
    let first_byte = std::time::Instant::now();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut body_bytes = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| classify(&e))?;
        if let Some(data) = frame.data_ref() {
            body_bytes += data.len();
        }
    }
    Ok(Response {
        status,
        body_bytes,
        // hyper sends and waits in one call: the whole of it counts as waiting.
        sending: std::time::Duration::ZERO,
        waiting,
        receiving: first_byte.elapsed(),
    })
}

/// HTTP/2 over `tls`: its connection runs in a task of its own, since streams share it.
async fn http2_handshake(tls: TlsStream<TcpStream>) -> Result<Connection, FailureKind> {
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .map_err(|e| classify(&e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Connection::Http2(sender))
}

/// The kind of a hyper failure: a reset or closed connection, a timeout, or a protocol error.
fn classify(error: &hyper::Error) -> FailureKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(kind) = FailureKind::from_io(io) {
                return kind;
            }
        }
        source = e.source();
    }
    if error.is_timeout() {
        FailureKind::Timeout
    } else if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
        FailureKind::Reset
    } else {
        FailureKind::Protocol
    }
}

fn tls_config(insecure: bool) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(
                "no trusted root certificates found on this machine (install \
                        ca-certificates, or pass --insecure)"
                    .into(),
            );
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `--insecure`: any certificate is accepted; signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
