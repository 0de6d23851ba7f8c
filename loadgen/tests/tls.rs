//! HTTPS: loadgen speaks HTTP/2 when the server offers it over TLS (ALPN), HTTP/1.1 with
//! keep-alive when it does not, accepts a self-signed certificate only with --insecure, and counts
//! a refused certificate as `tls`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use loadgen::stats::FailureKind;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What a TLS server saw.
#[derive(Default)]
struct Served {
    connections: AtomicU64,
    http2: AtomicU64,
    http11: AtomicU64,
}

/// A TLS server on a loopback port with a fresh self-signed certificate for `localhost`,
/// offering the protocols `alpn` names; counts connections and requests by HTTP version.
async fn tls_server(alpn: &[&[u8]]) -> (u16, Arc<Served>, tokio::task::JoinHandle<()>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(Served::default());
    let counter = served.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                counter.connections.fetch_add(1, Ordering::Relaxed);
                let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        async move {
                            match request.version() {
                                Version::HTTP_2 => counter.http2.fetch_add(1, Ordering::Relaxed),
                                Version::HTTP_11 => counter.http11.fetch_add(1, Ordering::Relaxed),
                                _ => 0,
                            };
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                br#"{"message":"success"}"#,
                            ))))
                        }
                    });
                if is_h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });
    (port, served, task)
}

async fn run(args: &[&str]) -> loadgen::Summary {
    let mut argv = vec!["loadgen", "--quiet"];
    argv.extend_from_slice(args);
    let config = loadgen::opts::Opts::try_parse_from(argv)
        .unwrap()
        .into_config(|_| None, 0)
        .unwrap();
    loadgen::run(config, loadgen::Stop::new()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_insecure_speaks_http2() {
    let (port, served, task) = tls_server(&[b"h2", b"http/1.1"]).await;
    let url = format!("https://localhost:{port}/prod/");
    let summary = run(&[&url, "--insecure", "--iterations", "20", "--vus", "2"]).await;
    assert_eq!(
        (summary.stats.requests, summary.stats.accepted),
        (20, 20),
        "{:?}",
        summary.stats.failures
    );
    assert_eq!(
        served.http2.load(Ordering::Relaxed),
        20,
        "every request went over HTTP/2"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_without_http2_keeps_http1_1_connections_alive() {
    let (port, served, task) = tls_server(&[b"http/1.1"]).await;
    let url = format!("https://localhost:{port}/prod/");
    let summary = run(&[&url, "--insecure", "--iterations", "40", "--vus", "2"]).await;
    assert_eq!(
        (summary.stats.requests, summary.stats.accepted),
        (40, 40),
        "{:?}",
        summary.stats.failures
    );
    assert_eq!(served.http11.load(Ordering::Relaxed), 40, "over HTTP/1.1");
    // At most one kept-alive connection per VU (a VU that found no iteration left opens none).
    let connections = served.connections.load(Ordering::Relaxed);
    assert!((1..=2).contains(&connections), "{connections} connections");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_counted_as_a_tls_failure() {
    let (port, _, task) = tls_server(&[b"h2", b"http/1.1"]).await;
    let url = format!("https://localhost:{port}/");
    let summary = run(&[&url, "--iterations", "3", "--vus", "1"]).await;
    assert_eq!(
        summary.stats.failures,
        BTreeMap::from([(FailureKind::Tls, 3)])
    );
    task.abort();
}
