//! The running sandbox of a state folder: one at a time, and `sandbox down` signals only it.
//!
//! `sandbox up` holds an exclusive lock (`flock`) on `<state>/sandbox.lock` for as long as it
//! runs, taken before it touches anything else in the folder, and writes its pid to
//! `<state>/sandbox.pid`. The kernel drops the lock when the process ends, however it ends, so
//! the lock, not the pid file, says whether a sandbox is running: after a `kill -9` the files
//! are recognised as stale. `sandbox down` signals the process that holds the lock, as the
//! kernel names it (`/proc/locks`), and only when it is a live process of a `sandbox` binary; the
//! pid file is read only where `/proc/locks` cannot be, so a pid file naming another process
//! (another `sandbox` command, say) is never signalled.
//!
//! Ready: the sandbox writes `<state>/outputs.json` whole (renamed into place) once everything
//! runs. A claim removes an earlier run's outputs file before it writes the pid file, so
//! `sandbox wait` counts the outputs file only while the lock is held and when it is not older
//! than the pid file.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

const LOCK: &str = "sandbox.lock";
const PID: &str = "sandbox.pid";
/// The outputs file, whose appearance says the sandbox is ready.
pub const OUTPUTS: &str = "outputs.json";
/// How long `sandbox wait` allows a sandbox started just before it to take its lock.
const START_GRACE: Duration = Duration::from_secs(10);

/// This process's claim on a state folder; dropping it releases the folder.
#[derive(Debug)]
pub struct Instance {
    // Held open: the lock lasts as long as the file descriptor.
    _lock: File,
    pid_file: PathBuf,
}

impl Instance {
    /// Claims `state` for this process, or says which sandbox holds it.
    pub fn claim(state: &Path) -> anyhow::Result<Instance> {
        std::fs::create_dir_all(state)
            .with_context(|| format!("creating the state folder {}", state.display()))?;
        let lock = open_lock(state)?;
        if !try_lock(&lock)? {
            let pid = read_pid(state).map_or("unknown".to_owned(), |p| p.to_string());
            anyhow::bail!(
                "a sandbox (pid {pid}) is already running from {}; `sandbox down --state {}` stops it",
                state.display(),
                state.display()
            );
        }
        // An earlier run's outputs must not read as this run's readiness.
        let _ = std::fs::remove_file(state.join(OUTPUTS));
        let pid_file = state.join(PID);
        std::fs::write(&pid_file, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", pid_file.display()))?;
        Ok(Instance {
            _lock: lock,
            pid_file,
        })
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// `sandbox down`: stops the sandbox running from `state` (SIGTERM, by pid) and waits until it
/// has exited; touches nothing when none is, or when the pid file does not name it.
pub fn stop_running(state: &Path) -> anyhow::Result<String> {
    let pid_file = state.join(PID);
    if !state.join(LOCK).exists() && !pid_file.exists() {
        anyhow::bail!("no sandbox is running from {}", state.display());
    }
    let lock = open_lock(state)?;
    if try_lock(&lock)? {
        // Nothing holds the folder: whatever pid file is left is stale.
        let stale = pid_file.exists();
        let _ = std::fs::remove_file(&pid_file);
        anyhow::bail!(
            "no sandbox is running from {}{}",
            state.display(),
            if stale {
                "; removed the stale pid file it left"
            } else {
                ""
            }
        );
    }
    let holder = lock_holder(&lock);
    drop(lock);
    let pid = match holder {
        Some(pid) => pid,
        None => read_pid(state)?,
    };
    check_is_sandbox(pid)?;
    // SAFETY: kill(2) with a checked pid (> 1, a live sandbox process) and a plain signal.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        anyhow::bail!(
            "could not signal sandbox {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    for _ in 0..300 {
        if !alive(pid) {
            return Ok(format!("stopped sandbox {pid}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("sandbox {pid} did not stop within 30 s")
}

/// `sandbox wait`: blocks until the sandbox running from `state` is ready, at most `timeout`;
/// fails when no sandbox holds the folder (after a short grace for one that is starting).
pub fn wait_ready(state: &Path, timeout: Duration) -> anyhow::Result<String> {
    wait_ready_within(state, timeout, START_GRACE)
}

fn wait_ready_within(state: &Path, timeout: Duration, grace: Duration) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    let outputs = state.join(OUTPUTS);
    loop {
        let held = match state.join(LOCK).exists() {
            true => !try_lock(&open_lock(state)?)?,
            false => false,
        };
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let fresh = match (modified(&outputs), modified(&state.join(PID))) {
            (Some(outputs), Some(pid)) => outputs >= pid,
            _ => false,
        };
        if held && fresh {
            return Ok(format!("ready: {}", outputs.display()));
        }
        if !held && started.elapsed() > grace {
            anyhow::bail!("no sandbox is running from {}", state.display());
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "the sandbox running from {} was not ready within {}",
                state.display(),
                humantime::format_duration(timeout)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The process holding the `flock` on `lock`'s file, as `/proc/locks` names it:
/// `1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF` (major and minor in hex).
fn lock_holder(lock: &File) -> Option<libc::pid_t> {
    use std::os::unix::fs::MetadataExt;
    let meta = lock.metadata().ok()?;
    let dev = meta.dev();
    let file = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    holder_in(&std::fs::read_to_string("/proc/locks").ok()?, &file)
}

/// The pid holding an `flock` on `file` (`major:minor:inode`) in the text of `/proc/locks`.
fn holder_in(locks: &str, file: &str) -> Option<libc::pid_t> {
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Waiters are listed as `1: -> FLOCK ...`; the holder has no arrow.
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, id, ..] if *id == file => pid.parse().ok().filter(|p| *p > 1),
            _ => None,
        }
    })
}

/// Whether `pid` still runs: it exists and is not a zombie waiting for its parent.
fn alive(pid: libc::pid_t) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's closing parenthesis: "pid (comm) S ...".
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn open_lock(state: &Path) -> anyhow::Result<File> {
    let path = state.join(LOCK);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Takes the exclusive lock without waiting: `false` when another process holds it.
fn try_lock(file: &File) -> anyhow::Result<bool> {
    // SAFETY: flock(2) on a descriptor this function's caller owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error).context("locking the state folder")
    }
}

/// The pid in the pid file: a number above 1 (never 0, -1 or init, which kill(2) would read as
/// groups or everyone).
fn read_pid(state: &Path) -> anyhow::Result<libc::pid_t> {
    let path = state.join(PID);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    match text.trim().parse::<libc::pid_t>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => anyhow::bail!(
            "{} holds {:?}, not a sandbox's pid; signalled nothing",
            path.display(),
            text.trim()
        ),
    }
}

/// Whether `pid` is a live process of a binary named `sandbox`.
fn check_is_sandbox(pid: libc::pid_t) -> anyhow::Result<()> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .with_context(|| format!("process {pid} is not running; signalled nothing"))?;
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A rebuilt binary shows as "sandbox (deleted)".
    anyhow::ensure!(
        name == "sandbox" || name.starts_with("sandbox "),
        "process {pid} is {}, not a sandbox; signalled nothing",
        exe.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> testkit::Scratch {
        testkit::Scratch::new(&format!("sandbox-instance-{name}"))
    }

    #[test]
    fn one_claim_at_a_time_and_the_second_touches_nothing() {
        let scratch = folder("claim");
        let state = scratch.path();
        let first = Instance::claim(state).unwrap();
        std::fs::write(state.join("outputs.json"), "{}").unwrap();
        let err = Instance::claim(state).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(state.join("outputs.json").exists());
        assert!(state.join(PID).exists());
        drop(first);
        assert!(!state.join(PID).exists());
        let again = Instance::claim(state).unwrap();
        drop(again);
    }

    #[test]
    fn wait_counts_only_the_running_sandboxs_outputs() {
        let scratch = folder("wait");
        let state = scratch.path();
        // Nothing runs: refused once the grace is over (a stale outputs file changes nothing).
        std::fs::write(state.join(OUTPUTS), "{}").unwrap();
        std::fs::write(state.join(LOCK), "").unwrap();
        let grace = Duration::from_millis(300);
        let err = wait_ready_within(state, Duration::from_secs(5), grace)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("no sandbox is running"), "{err}");
        // A claim removes the stale file; until the new one is written, not ready.
        let instance = Instance::claim(state).unwrap();
        assert!(!state.join(OUTPUTS).exists());
        let err = wait_ready(state, Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(err.contains("was not ready within"), "{err}");
        std::fs::write(state.join(OUTPUTS), "{}").unwrap();
        assert!(wait_ready(state, Duration::from_secs(1))
            .unwrap()
            .starts_with("ready"));
        drop(instance);
    }

    #[test]
    fn down_signals_nothing_for_a_stale_or_forged_pid_file() {
        let scratch = folder("stale");
        let state = scratch.path();
        for forged in ["-1", "0", "1", "junk"] {
            std::fs::write(state.join(PID), forged).unwrap();
            let err = stop_running(state).unwrap_err().to_string();
            assert!(err.contains("stale pid file"), "{forged}: {err}");
            assert!(!state.join(PID).exists());
        }
        // A held lock: whatever the pid file says, the holder is the one considered, and it
        // is not a sandbox (it is this test).
        let lock = open_lock(state).unwrap();
        assert!(try_lock(&lock).unwrap());
        assert_eq!(lock_holder(&lock), Some(std::process::id() as libc::pid_t));
        for pid in ["-1", "1", "999999999", "junk"] {
            std::fs::write(state.join(PID), pid).unwrap();
            let err = stop_running(state).unwrap_err().to_string();
            assert!(
                err.contains(&format!("process {} is", std::process::id())),
                "{pid}: {err}"
            );
            assert!(err.contains("not a sandbox; signalled nothing"), "{err}");
        }
        drop(lock);
        let _ = std::fs::remove_dir_all(state);
        let err = stop_running(state).unwrap_err().to_string();
        assert!(err.starts_with("no sandbox is running"), "{err}");
    }

    #[test]
    fn the_lock_holder_is_read_from_proc_locks() {
        let locks = "1: FLOCK  ADVISORY  WRITE 4242 fd:01:77 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 5151 fd:01:77 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 6161 fd:01:78 0 EOF\n";
        assert_eq!(holder_in(locks, "fd:01:77"), Some(4242));
        assert_eq!(
            holder_in(locks, "fd:01:78"),
            None,
            "a POSIX lock is not the sandbox's"
        );
        assert_eq!(holder_in(locks, "fd:01:79"), None);
    }
}
