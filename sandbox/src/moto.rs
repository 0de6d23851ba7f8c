//! moto, the AWS control plane and data APIs of the sandbox: started on a free loopback port
//! from the project's venv, watched while it runs (an exit the sandbox did not ask for is
//! reported by [`Moto::exited`]), and stopped (by PID) when asked or dropped.
//!
//! How moto behaves is defined once, in `sandbox/moto_server.py` (its changes to moto and its
//! settings); [`command`] is the one way it is started, by the sandbox and by the tests' moto
//! (`testkit::MotoServer`).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

/// A running moto server.
pub struct Moto {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Asks the watcher to stop moto (dropped: the same).
    stop: Option<oneshot::Sender<()>>,
    /// How moto ended, once it has.
    ended: watch::Receiver<Option<String>>,
    watcher: tokio::task::JoinHandle<()>,
}

/// The Python that has moto: the one beside `MOTO_SERVER`, else `.venv/bin/python` under `root`.
pub fn python(root: &Path) -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .and_then(|server| server.parent().map(|bin| bin.join("python")))
        .unwrap_or_else(|| root.join(".venv/bin/python"))
}

/// How moto is started: `sandbox/moto_server.py` (which leaves stream records to the sandbox's
/// pollers) from the project's venv on `127.0.0.1:port`, quiet, stdin closed.
pub fn command(root: &Path, port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(python(root));
    command
        .arg(root.join("sandbox/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it accepts connections.
    pub async fn start(root: &Path) -> anyhow::Result<Moto> {
        let python = python(root);
        anyhow::ensure!(
            python.exists(),
            "{} not found: run `make venv` (the pinned moto is installed into .venv), or set MOTO_SERVER",
            python.display()
        );
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut command = tokio::process::Command::from(command(root, port));
            command.kill_on_drop(true);
            crate::die_with_parent(&mut command);
            let mut child = command.spawn()?;
            let mut up = false;
            for _ in 0..600 {
                if child.try_wait()?.is_some() {
                    break; // lost the port to another process: try another
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !up {
                let _ = child.kill().await;
                continue;
            }
            let (stop, stopping) = oneshot::channel();
            let (ended_tx, ended) = watch::channel(None);
            let watcher = tokio::spawn(async move {
                let how = tokio::select! {
                    status = child.wait() => match status {
                        Ok(status) => format!("moto exited ({status})"),
                        Err(error) => format!("moto could not be waited for: {error}"),
                    },
                    _ = stopping => {
                        let _ = child.kill().await;
                        "stopped".to_owned()
                    }
                };
                let _ = ended_tx.send(Some(how));
            });
            return Ok(Moto {
                addr,
                stop: Some(stop),
                ended,
                watcher,
            });
        }
        anyhow::bail!(
            "moto ({} {}) did not start",
            python.display(),
            root.join("sandbox/moto_server.py").display()
        )
    }

    /// Completes when moto has ended without being asked to, saying how (killed, crashed): the
    /// sandbox cannot serve without it.
    pub async fn exited(&self) -> String {
        let mut ended = self.ended.clone();
        let how = match ended.wait_for(Option::is_some).await {
            Ok(how) => how.clone().unwrap_or_default(),
            // The watcher is gone only once moto has ended.
            Err(_) => "moto ended".to_owned(),
        };
        how
    }

    /// How moto ended, when it has ended without being asked to.
    pub fn ended(&self) -> Option<String> {
        self.ended.borrow().clone()
    }

    /// Stops moto and waits for it to exit.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.watcher).await;
    }
}
