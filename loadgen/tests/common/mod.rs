//! An in-process HTTP server on a loopback port for loadgen's tests, recording what it receives.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use loadgen::opts::Opts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the server answers.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// 200 `{"message":"success"}`.
    Ok,
    /// Every request with this status.
    Status(u16),
    /// Every `n`-th request (1-based) with 500, the others 200.
    FailEvery(u64),
    /// 200 after a delay.
    Delay(Duration),
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When, since the server started.
    pub at: Duration,
    /// When, in epoch milliseconds (to compare with a run's `start_ms`).
    pub at_epoch_ms: i64,
    /// The body.
    pub body: Vec<u8>,
    /// The Host and Authorization headers.
    pub host: Option<String>,
    pub authorization: Option<String>,
}

/// A running test server.
pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: Request<hyper::body::Incoming>| {
                            let record = record.clone();
                            async move {
                                let header = |name: hyper::header::HeaderName| {
                                    request
                                        .headers()
                                        .get(name)
                                        .and_then(|v| v.to_str().ok())
                                        .map(str::to_owned)
                                };
                                let host = header(hyper::header::HOST);
                                let authorization = header(hyper::header::AUTHORIZATION);
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let n = {
                                    let mut seen = record.lock().unwrap();
                                    seen.push(Seen {
                                        at: started.elapsed(),
                                        at_epoch_ms: contract::epoch_ms(),
                                        body: body.to_vec(),
                                        host,
                                        authorization,
                                    });
                                    seen.len() as u64
                                };
                                let status = match mode {
                                    Mode::Ok => 200,
                                    Mode::Status(code) => code,
                                    Mode::FailEvery(k) => {
                                        if n % k == 0 {
                                            500
                                        } else {
                                            200
                                        }
                                    }
                                    Mode::Delay(d) => {
                                        tokio::time::sleep(d).await;
                                        200
                                    }
                                };
                                let text = if status == 200 {
                                    r#"{"message":"success"}"#
                                } else {
                                    r#"{"message":"failed"}"#
                                };
                                Ok::<_, Infallible>(
                                    Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::from_static(text.as_bytes())))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { addr, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/prod/", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server that reads each request and closes the connection without answering.
pub async fn closing_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
            });
        }
    });
    (addr, task)
}

/// A server that answers 200 with keep-alive, then closes a connection that stays idle for
/// `idle`, as servers and load balancers do, without saying so in the answer; counts the
/// connections it accepted.
pub async fn idle_closing_server(
    idle: Duration,
) -> (SocketAddr, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let counter = connections.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    // A request is whole when its body (a JSON object) has arrived.
                    let read = tokio::time::timeout(idle, stream.read(&mut buf)).await;
                    let Ok(Ok(n @ 1..)) = read else {
                        return;
                    };
                    seen.extend_from_slice(&buf[..n]);
                    if seen.ends_with(b"}") {
                        seen.clear();
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, connections, task)
}

/// A loopback port with nothing listening.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs loadgen in process with these flags (no environment), quietly.
pub async fn run(args: &[&str]) -> loadgen::Summary {
    let mut argv = vec!["loadgen", "--quiet"];
    argv.extend_from_slice(args);
    let config = Opts::try_parse_from(argv)
        .unwrap()
        .into_config(|_| None, 1_795_678_800_000)
        .unwrap();
    loadgen::run(config, loadgen::Stop::new()).await.unwrap()
}
