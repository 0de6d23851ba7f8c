//! A fast local HTTP target for `bench/loadgen_vs.py`: answers every request
//! `200 {"message":"success"}` over keep-alive HTTP/1.1, like the pipeline's API does.
//!
//! Usage: `bench_target [PORT] [THREADS]` (port 0 picks one; prints `listening on ADDR`).

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("listening on {}", listener.local_addr()?);
            std::io::stdout().flush()?;
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |request: Request<hyper::body::Incoming>| async move {
                            // Read the body, as a real API does.
                            let _ = request.into_body().collect().await;
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                br#"{"message":"success"}"#,
                            ))))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
