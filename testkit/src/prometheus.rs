//! Prometheus for one test: Debian's `prometheus` (or `$PROMETHEUS`) with its remote-write
//! receiver, on a free loopback port, its data in the test's directory, stopped by PID when
//! dropped; queried over its HTTP API.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary: `$PROMETHEUS`, else Debian's.
fn binary() -> PathBuf {
    let path = std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    assert!(
        path.exists(),
        "{} not found: run `make test`, which installs Debian's prometheus (or set PROMETHEUS)",
        path.display()
    );
    path
}

/// Prometheus with its remote-write receiver, on a free loopback port, stopped by PID when
/// dropped.
pub struct Prometheus {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Prometheus {
    /// Starts Prometheus with its data in `dir` and waits until it is ready.
    pub fn start(dir: &Path) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
        let port = crate::free_port();
        let child = Command::new(binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !prometheus.get("/-/ready").starts_with("HTTP/1.0 200") {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 60 s: {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    /// Its remote-write endpoint.
    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// The whole response to `GET path` (HTTP/1.0: no chunks), or "" when it cannot connect.
    pub fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    }

    /// `path` with `query`'s pairs, answered as JSON `data`.
    pub fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let encode = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let response = self.get(&format!("{path}?{}", query.join("&")));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("");
        let json: Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("{path}: {response}"));
        assert_eq!(json["status"], "success", "{path}: {json}");
        json["data"].clone()
    }

    /// Every k6 series, as its labels (`__name__` among them).
    pub fn series(&self) -> BTreeSet<String> {
        let data = self.api("/api/v1/series", &[("match[]", "{__name__=~\"k6_.+\"}")]);
        data.as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect()
    }

    /// An instant query's one value.
    pub fn value(&self, query: &str) -> f64 {
        let data = self.api("/api/v1/query", &[("query", query)]);
        let result = data["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "{query}: {data}");
        result[0]["value"][1].as_str().unwrap().parse().unwrap()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
