//! moto for one test, started as the sandbox starts it (`sandbox::moto::command`, on a loopback
//! listener bound here), stopped (by PID) when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// A running moto server.
pub struct MotoServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// The Python that has moto (the sandbox's rule: beside `MOTO_SERVER`, else the project's
/// `.venv`), checked to exist.
fn python() -> PathBuf {
    let python = sandbox::moto::python(&crate::root());
    assert!(
        python.exists(),
        "{} not found: run `make test`, which installs the pinned moto into .venv \
         (or set MOTO_SERVER to the moto_server of a venv that has it)",
        python.display()
    );
    python
}

impl MotoServer {
    /// Starts moto as the sandbox does (`sandbox/moto_server.py` on a listener bound here) and
    /// waits until it answers.
    pub fn start() -> MotoServer {
        let python = python();
        let root = crate::root();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        // The sandbox's own definition of how moto is started.
        let mut child = sandbox::moto::command(&root, &listener)
            .and_then(|mut command| command.spawn())
            .unwrap_or_else(|e| panic!("start {}: {e}", python.display()));
        drop(listener);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "moto ({} sandbox/moto_server.py) exited: {status}",
                    python.display()
                );
            }
            if sandbox::moto::answers(addr) {
                return MotoServer {
                    child,
                    port: addr.port(),
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "moto ({} sandbox/moto_server.py) did not answer within 60 s",
            python.display()
        );
    }

    /// The endpoint URL for SDK clients.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A raw AWS JSON-protocol call, returning the response's JSON: what Lambda's event source
    /// pollers see, before any SDK turns it into types.
    pub fn aws_json(
        &self,
        service: &str,
        target: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let content_type = if service == "kinesis" { "1.1" } else { "1.0" };
        let body = body.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-amz-json-{content_type}\r\n\
             X-Amz-Target: {target}\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential=testing/20261126/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            port = self.port,
            len = body.len()
        )
        .expect("send to moto");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read from moto");
        let (head, payload) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "{target}: {head}\n{payload}"
        );
        serde_json::from_str(payload).unwrap_or_else(|e| panic!("{target}: {e}: {payload}"))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
