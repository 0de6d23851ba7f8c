//! Test support for the workspace's tests (a dev-dependency only): moto on a free loopback port,
//! Prometheus, free ports, SDK configuration for an emulator, and the pipeline's stream and table.
//!
//! - [`MotoServer`]: the same moto the sandbox runs (`sandbox/moto_server.py` from the project's
//!   venv), started for one test and stopped by PID;
//! - [`aws`]: an SDK configuration for an endpoint, the pipeline's Kinesis stream and DynamoDB
//!   table;
//! - [`Prometheus`]: Prometheus with its remote-write receiver, for the live outputs' tests;
//! - [`Scratch`]: a test's own temporary folder, removed when the test is done.

pub mod aws;
mod moto;
mod prometheus;
mod scratch;

use std::net::TcpListener;
use std::path::PathBuf;

pub use moto::MotoServer;
pub use prometheus::Prometheus;
pub use scratch::Scratch;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the repository")
        .to_path_buf()
}

/// A loopback port nothing listens on just now (another process may take it before the caller
/// does: callers that bind it retry with another).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}
