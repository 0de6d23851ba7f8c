//! One connection per VU, like k6: HTTP/1.1 with keep-alive, or HTTP/2 when TLS negotiates it
//! (ALPN), over hyper directly. A failure says what kind it was, so that it can be counted.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::endpoint::Endpoint;
use crate::outcome::FailureKind;
pub use crate::outcome::Response;

/// Builds connections and requests for one endpoint; shared by all VUs.
pub struct Client {
    endpoint: Endpoint,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    host: HeaderValue,
    full_uri: Uri,
}

/// A live connection, owned by one VU.
pub enum Connection {
    /// HTTP/1.1, one request at a time, kept alive.
    Http1(http1::SendRequest<Full<Bytes>>),
    /// HTTP/2 (TLS with ALPN h2).
    Http2(http2::SendRequest<Full<Bytes>>),
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Client {
    /// A client for `endpoint`; `insecure` accepts any certificate.
    pub fn new(endpoint: &Endpoint, insecure: bool) -> Result<Client, String> {
        let tls = if endpoint.tls {
            let config = tls_config(insecure)?;
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|e| format!("{}: not a TLS server name: {e}", endpoint.host))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        let host = HeaderValue::from_str(endpoint.authority.as_str())
            .map_err(|e| format!("{}: {e}", endpoint.authority))?;
        Ok(Client {
            endpoint: endpoint.clone(),
            tls,
            host,
            full_uri: endpoint.uri.clone(),
        })
    }

    /// Opens a connection.
    pub async fn connect(&self) -> Result<Connection, FailureKind> {
        let mut addrs = tokio::net::lookup_host((self.endpoint.host.as_str(), self.endpoint.port))
            .await
            .map_err(|_| FailureKind::Dns)?;
        let mut last = FailureKind::Dns;
        let stream = loop {
            let Some(addr) = addrs.next() else {
                return Err(last);
            };
            match TcpStream::connect(addr).await {
                Ok(stream) => break stream,
                Err(e) => last = io_kind(&e).unwrap_or(FailureKind::Connect),
            }
        };
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => handshake(stream, false).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| io_kind(&e).unwrap_or(FailureKind::Tls))?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                handshake(tls, h2).await
            }
        }
    }

    /// A POST of `body` for `connection`'s protocol.
    pub fn request(&self, connection: &Connection, body: Bytes) -> Request<Full<Bytes>> {
        let builder = Request::builder().method(Method::POST);
        let builder = match connection {
            Connection::Http1(_) => builder
                .uri(Uri::from(self.endpoint.path.clone()))
                .header(header::HOST, self.host.clone()),
            Connection::Http2(_) => builder.uri(self.full_uri.clone()),
        };
        let mut request = builder
            .body(Full::new(body))
            .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())));
        request.headers_mut().insert(header::CONTENT_TYPE, JSON);
        request
    }
}

impl Connection {
    /// Sends one request and reads the whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Response, FailureKind> {
        let response = match self {
            Connection::Http1(sender) => {
                sender.ready().await.map_err(|e| classify(&e))?;
                sender.send_request(request).await
            }
            Connection::Http2(sender) => {
                sender.ready().await.map_err(|e| classify(&e))?;
                sender.send_request(request).await
            }
        }
        .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut body_bytes = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(&e))?;
            if let Some(data) = frame.data_ref() {
                body_bytes += data.len();
            }
        }
        Ok(Response { status, body_bytes })
    }

    /// Whether the connection can take another request.
    pub fn is_open(&self) -> bool {
        match self {
            Connection::Http1(sender) => !sender.is_closed(),
            Connection::Http2(sender) => !sender.is_closed(),
        }
    }
}

async fn handshake<IO>(io: IO, h2: bool) -> Result<Connection, FailureKind>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    if h2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| classify(&e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection::Http2(sender))
    } else {
        // Answers here are small: a 4 KiB read buffer (hyper starts at 8 KiB and adapts) keeps
        // a VU's connection small; a larger answer is read in more calls.
        let (sender, connection) = http1::Builder::new()
            .read_buf_exact_size(Some(4096))
            .handshake(io)
            .await
            .map_err(|e| classify(&e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection::Http1(sender))
    }
}

fn io_kind(error: &std::io::Error) -> Option<FailureKind> {
    use std::io::ErrorKind::*;
    match error.kind() {
        ConnectionRefused => Some(FailureKind::Refused),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
            Some(FailureKind::Reset)
        }
        TimedOut => Some(FailureKind::Timeout),
        _ => None,
    }
}

/// The kind of a hyper failure: a reset or closed connection, a timeout, or a protocol error.
fn classify(error: &hyper::Error) -> FailureKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(kind) = io_kind(io) {
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
