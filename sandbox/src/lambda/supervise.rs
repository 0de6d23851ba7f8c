//! A worker's supervision: its process and, for each process, its own Runtime API server,
//! restarted when the process exits, times out or (hot reload) its binary changes.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use super::runtime_api::serve_runtime_api;
use super::state::{Job, Worker};
use super::telemetry::Telemetry;
use super::{
    current_delay, file_version, FileVersion, FunctionSpec, InvokeError, LogSink, RELOAD_POLL,
};
use crate::Shutdown;

/// Runs worker `index`: its process and, for each process, its own Runtime API server (on a
/// fresh port, so that nothing a replaced process sent can reach its successor), restarted when
/// it exits, times out or (hot reload) its binary changes, until shutdown.
pub(super) async fn supervise(
    spec: FunctionSpec,
    index: usize,
    queue: Queue,
    logs: LogSink,
    telemetry: Arc<Telemetry>,
    mut memory: watch::Receiver<u32>,
    mut stopping: Shutdown,
) {
    let Queue { jobs, requeue } = queue;
    let worker = Arc::new(Worker {
        current: Mutex::new(None),
        changed: Notify::new(),
        generation: watch::Sender::new(0),
        requeue,
        kill: AtomicBool::new(false),
        name: spec.name.clone(),
        logs: logs.clone(),
        telemetry,
        pid: AtomicU32::new(0),
        spawned: Mutex::new(None),
        delay_us: Default::default(),
    });
    let mut backoff = Duration::from_millis(100);
    while !stopping.is_stopping() {
        let started = Instant::now();
        let version = file_version(&spec.executable);
        let memory_mb = *memory.borrow_and_update();
        let Some((server, mut child)) = start(&spec, index, memory_mb, &worker, &jobs, &logs).await
        else {
            stopping.sleep(Duration::from_secs(1)).await;
            continue;
        };
        let watched = Watched {
            version,
            memory: &mut memory,
        };
        let ended = watch_worker(&spec, index, &worker, &mut child, watched, &mut stopping).await;
        // Nothing of this process's may reach the next: its server and connections go, and an
        // invocation its server handed out as it was replaced goes back to the queue.
        server.abort();
        let _ = server.await;
        if ended == Ended::Reloaded {
            worker.requeue_current();
        }
        // A worker that dies at once (bad binary, missing variable) is restarted more slowly; one
        // replaced for a new binary or killed by fault injection, at once.
        if matches!(ended, Ended::Reloaded | Ended::Killed) {
            backoff = Duration::from_millis(100);
            continue;
        }
        backoff = if started.elapsed() < Duration::from_secs(1) {
            (backoff * 2).min(Duration::from_secs(5))
        } else {
            Duration::from_millis(100)
        };
        stopping.sleep(backoff).await;
    }
}

/// The function's queue of invocations, as a worker sees it.
pub(super) struct Queue {
    /// Where invocations are taken from.
    pub jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    /// Where one a replaced process held goes back to.
    pub requeue: mpsc::WeakSender<Job>,
}

/// How a worker process's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Killed by fault injection after it answered.
    Killed,
    /// Replaced, once idle, because its binary changed (hot reload) or its memory size did.
    Reloaded,
    /// It exited by itself (crashed, or was signalled from outside).
    Exited,
    /// An invocation ran past the function's timeout; the process was killed.
    TimedOut,
    /// The sandbox is stopping.
    Stopped,
}

/// Starts worker `index`'s process with its own Runtime API server on a fresh port; `None`
/// (after saying why) when either cannot start.
async fn start(
    spec: &FunctionSpec,
    index: usize,
    memory_mb: u32,
    worker: &Arc<Worker>,
    jobs: &Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    logs: &LogSink,
) -> Option<(tokio::task::JoinHandle<()>, tokio::process::Child)> {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => {
            logs(
                &spec.name,
                &format!("worker {index}: no port for its Runtime API: {error}"),
            );
            return None;
        }
    };
    let api = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = tokio::spawn(serve_runtime_api(
        listener,
        spec.clone(),
        worker.clone(),
        jobs.clone(),
    ));
    let mut command = worker_command(spec, index, memory_mb, &api);
    set_delay(spec, index, worker, logs);
    match command.spawn() {
        Ok(mut child) => {
            worker.spawned(child.id().unwrap_or(0));
            forward_output(&mut child, &spec.name, logs);
            Some((server, child))
        }
        Err(error) => {
            logs(
                &spec.name,
                &format!("cannot start {}: {error}", spec.executable.display()),
            );
            server.abort();
            None
        }
    }
}

/// What a running worker was started with, watched for a change that replaces it.
struct Watched<'a> {
    /// Its binary's version (hot reload).
    version: Option<FileVersion>,
    /// The function's memory size.
    memory: &'a mut watch::Receiver<u32>,
}

/// Watches a running worker process until it ends: killed by fault injection, replaced for a
/// new binary or memory size once idle, exited, past an invocation's timeout, or stopped with
/// the sandbox. The invocation it held, if any, is finished with the matching error.
async fn watch_worker(
    spec: &FunctionSpec,
    index: usize,
    worker: &Worker,
    child: &mut tokio::process::Child,
    watched: Watched<'_>,
    stopping: &mut Shutdown,
) -> Ended {
    let Watched { version, memory } = watched;
    let say = |line: String| (worker.logs)(&spec.name, &line);
    // An interval, not a sleep per turn: invocations wake the loop far more often.
    let mut reload_poll = tokio::time::interval(RELOAD_POLL);
    reload_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set when the binary or the memory size has changed (saying which): the worker is
    // replaced the first time it is idle (checked on every wake-up, so a busy worker is caught
    // between two invocations).
    let mut reload_due: Option<String> = None;
    loop {
        let changed = worker.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if worker.kill.swap(false, Ordering::SeqCst) {
            say(format!(
                "worker {index} killed after it answered (fault injection); restarting"
            ));
            let _ = child.kill().await;
            // An invocation it took after answering dies with it.
            worker.finish(
                None,
                Err(InvokeError::Crashed("killed by fault injection".into())),
            );
            return Ended::Killed;
        }
        if reload_due.is_some() && worker.retire_if_idle() {
            say(format!(
                "worker {index}: {} changed; restarting it",
                reload_due.unwrap_or_default()
            ));
            let _ = child.kill().await;
            return Ended::Reloaded;
        }
        let deadline = worker
            .current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|job| job.deadline));
        tokio::select! {
            status = child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| exit_error(s, spec));
                if worker.finish(None, Err(InvokeError::Crashed(status.clone()))) {
                    say(format!("worker {index} exited mid-invocation ({status}); restarting"));
                } else if !stopping.is_stopping() {
                    say(format!("worker {index} exited ({status}); restarting"));
                }
                return Ended::Exited;
            }
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)).await }, if deadline.is_some() => {
                if worker.finish(None, Err(InvokeError::Timeout(spec.timeout))) {
                    say(format!("worker {index} timed out after {:?}; recycling it", spec.timeout));
                    let _ = child.kill().await;
                    return Ended::TimedOut;
                }
            }
            _ = changed => {}
            _ = reload_poll.tick(), if spec.reload_on_change && reload_due.is_none() => {
                let now = file_version(&spec.executable);
                if now.is_some() && now != version {
                    reload_due = Some(spec.executable.display().to_string());
                }
            }
            Ok(()) = memory.changed(), if reload_due.is_none() => {
                reload_due = Some(format!("the memory size ({} MB)", *memory.borrow()));
            }
            _ = stopping.stopped() => {
                let _ = child.kill().await;
                worker.finish(None, Err(InvokeError::Stopped));
                return Ended::Stopped;
            }
        }
    }
}

/// The command that starts a worker process: the function's environment and what Lambda sets,
/// its Runtime API at `api`, its output piped to the log, killed with the sandbox.
fn worker_command(spec: &FunctionSpec, index: usize, memory_mb: u32, api: &str) -> Command {
    let mut command = Command::new(&spec.executable);
    command
        .env_clear()
        .envs(&spec.environment)
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        )
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("sandbox/worker-{index}"),
        )
        .env("_HANDLER", "bootstrap")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::die_with_parent(&mut command);
    if let Some(group) = &spec.group {
        group.enter_on_start(index, &mut command);
    }
    command
}

/// How Lambda words a runtime that exited: `Runtime exited with error: signal: killed` (with
/// the memory limit named when the kernel killed it for that), `... exit status 1`.
fn exit_error(status: std::process::ExitStatus, spec: &FunctionSpec) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(libc::SIGKILL)) => "signal: killed".to_owned(),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    };
    let memory = match &spec.group {
        Some(group) if status.signal() == Some(libc::SIGKILL) && group.killed_for_memory() => {
            format!(
                " (out of memory: over the function's {} MB)",
                group.memory_mb()
            )
        }
        _ => String::new(),
    };
    format!("Runtime exited with error: {how}{memory}")
}

/// The delay of the process starting now (said on the log by the first worker when a hot-reload
/// function's changes).
fn set_delay(spec: &FunctionSpec, index: usize, worker: &Worker, logs: &LogSink) {
    let delay = current_delay(spec).unwrap_or_else(|error| {
        logs(&spec.name, &format!("worker {index}: no delay: {error}"));
        Duration::ZERO
    });
    let micros = delay.as_micros() as u64;
    let before = worker.delay_us.swap(micros, Ordering::Relaxed);
    if spec.reload_on_change && before != micros && index == 0 {
        logs(
            &spec.name,
            &format!("each invocation is delayed by {delay:?}"),
        );
    }
}

/// Each line the process writes, to the log under the function's name.
fn forward_output(child: &mut tokio::process::Child, name: &str, logs: &LogSink) {
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let (logs, name) = (logs.clone(), name.to_owned());
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                logs(&name, &line);
            }
        });
    }
}
