//! A child that starts children of its own (the CDK CLI: node, and the app it synthesizes), run
//! as a process group of its own, so that stopping it stops all of it: dropped before it ends,
//! the whole group is killed; and should the sandbox itself be killed (`kill -9`, where nothing
//! of its own runs), the kernel tells the group's leader (`PR_SET_PDEATHSIG`), a small shell
//! that then kills the whole group.

use std::ffi::OsStr;
use std::process::{Output, Stdio};

use tokio::io::AsyncReadExt;

/// The group's leader: runs the command in the background, and kills the whole group when told
/// that the sandbox has died (SIGTERM, by the kernel).
const LEADER: &str = r#"trap 'kill -KILL 0' TERM; "$@" & wait $!"#;

/// A command for `program` that [`Group::spawn`] runs in a process group of its own; add its
/// arguments, environment and folder as usual.
pub fn command_in_own_group(program: impl AsRef<OsStr>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("bash");
    command
        .args(["-c", LEADER, "group-leader"])
        .arg(program)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setpgid and prctl are async-signal-safe; the closure allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::setpgid(0, 0) == -1 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// A running process group, killed whole if dropped before it ends.
#[derive(Debug)]
pub struct Group {
    child: tokio::process::Child,
    id: i32,
    ended: bool,
}

impl Group {
    /// Starts `command` (from [`command_in_own_group`]).
    pub fn spawn(mut command: tokio::process::Command) -> std::io::Result<Group> {
        let child = command.spawn()?;
        let id = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| std::io::Error::other("the process group's leader has no pid"))?;
        Ok(Group {
            child,
            id,
            ended: false,
        })
    }

    /// The process group's id (its leader's pid).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Waits for the group's leader to end, with what it wrote.
    pub async fn output(mut self) -> std::io::Result<Output> {
        async fn all(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes).await;
            }
            bytes
        }
        let (stdout, stderr) = (self.child.stdout.take(), self.child.stderr.take());
        let (status, stdout, stderr) = tokio::join!(self.child.wait(), all(stdout), all(stderr));
        let status = status?;
        self.ended = true;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.ended {
            // SAFETY: kill(2) of the process group this value started (id > 1: a child's pid).
            unsafe { libc::kill(-self.id, libc::SIGKILL) };
        }
    }
}
