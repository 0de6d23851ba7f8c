//! moto, the AWS control plane and data APIs of the sandbox: started on a free loopback port
//! from the project's venv, stopped (by PID) when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// The Python that has moto: the one beside `MOTO_SERVER`, else `.venv/bin/python` under `root`.
pub fn python(root: &Path) -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .and_then(|server| server.parent().map(|bin| bin.join("python")))
        .unwrap_or_else(|| root.join(".venv/bin/python"))
}

impl Moto {
    /// Starts moto (through `sandbox/moto_server.py`, which leaves stream records to the
    /// sandbox's pollers) on a free loopback port and waits until it accepts connections.
    pub async fn start(root: &Path) -> anyhow::Result<Moto> {
        let python = python(root);
        let script = root.join("sandbox/moto_server.py");
        anyhow::ensure!(
            python.exists(),
            "{} not found: run `make venv` (the pinned moto is installed into .venv), or set MOTO_SERVER",
            python.display()
        );
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut command = Command::new(&python);
            command
                .arg(&script)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // Hot-reload functions name code in a bucket that holds none (LocalStack's
                // `hot-reload`): moto must not insist on fetching it.
                .env("VALIDATE_LAMBDA_S3", "false")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            crate::die_with_parent(&mut command);
            let mut child = command.spawn()?;
            for _ in 0..600 {
                if child.try_wait()?.is_some() {
                    break; // lost the port to another process: try another
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    return Ok(Moto { child, addr });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill().await;
        }
        anyhow::bail!(
            "moto ({} {}) did not start",
            python.display(),
            script.display()
        )
    }

    /// Stops moto and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
