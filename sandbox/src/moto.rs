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

/// The moto_server to run: `MOTO_SERVER`, else `.venv/bin/moto_server` under `root`.
pub fn executable(root: &Path) -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/moto_server"))
}

impl Moto {
    /// Starts `executable` on a free loopback port and waits until it accepts connections.
    pub async fn start(executable: &Path) -> anyhow::Result<Moto> {
        anyhow::ensure!(
            executable.exists(),
            "{} not found: run `make venv` (the pinned moto is installed into .venv), or set MOTO_SERVER",
            executable.display()
        );
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut command = Command::new(executable);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
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
        anyhow::bail!("{} did not start", executable.display())
    }

    /// Stops moto and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
