//! moto, the AWS control plane and data APIs of the sandbox: started on a free loopback port
//! from the project's venv, watched while it runs (an exit the sandbox did not ask for is
//! reported by [`Moto::exited`]), and stopped (by PID) when asked or dropped.
//!
//! How moto behaves is defined once, in `sandbox/moto_server.py` (its changes to moto and its
//! settings); [`command`] is the one way it is started, by the sandbox and by the tests' moto
//! (`testkit::MotoServer`).

use std::net::SocketAddr;
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
/// pollers) from the project's venv, quiet, stdin closed, serving on `listener` (bound on
/// 127.0.0.1 by the caller and handed to moto as its descriptor 3, so that no other process can
/// take the port between its choice and moto listening). Connections queue on the listener
/// until moto accepts them: whether moto is up is known from an answer ([`answers`]).
pub fn command(
    root: &Path,
    listener: &std::net::TcpListener,
) -> std::io::Result<std::process::Command> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let port = listener.local_addr()?.port();
    let fd = listener.as_raw_fd();
    let mut command = std::process::Command::new(python(root));
    command
        .arg(root.join("sandbox/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string(), "--fd", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only dup2 and fcntl run, both async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            let kept = if fd == 3 {
                // dup2 onto itself keeps close-on-exec: clear it instead.
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if kept == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(command)
}

/// Whether moto at `addr` answers an HTTP request within a second.
pub fn answers(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let mut first = [0u8; 1];
    stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .and_then(|()| stream.read_exact(&mut first))
        .is_ok()
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut command = tokio::process::Command::from(command(root, &listener)?);
        command.kill_on_drop(true);
        crate::die_with_parent(&mut command);
        let mut child = command.spawn()?;
        // moto has its own copy of the listener now.
        drop(listener);
        let mut up = false;
        for _ in 0..60 {
            if child.try_wait()?.is_some() {
                break;
            }
            if tokio::task::spawn_blocking(move || answers(addr)).await? {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !up {
            let _ = child.kill().await;
            anyhow::bail!(
                "moto ({} {}) did not start",
                python.display(),
                root.join("sandbox/moto_server.py").display()
            );
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
        Ok(Moto {
            addr,
            stop: Some(stop),
            ended,
            watcher,
        })
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
