//! The Lambda data plane: a function's worker processes (the real `bootstrap` binaries), each
//! with its own Lambda Runtime API server, fed from one queue of invocations.
//!
//! A worker per Runtime API port lets the host know which process holds which invocation: when an
//! invocation passes the function's timeout, that process is killed and restarted (as Lambda
//! recycles an execution environment), and the invocation fails with [`InvokeError::Timeout`]; a
//! process that exits mid-invocation fails it with [`InvokeError::Crashed`].
//!
//! - [`state`]: what a worker's Runtime API and its supervisor share;
//! - [`supervise`]: a worker's process, restarted as needed;
//! - [`runtime_api`]: the Runtime API a process talks to;
//! - [`telemetry`]: Lambda's `START`/`END`/`REPORT` lines and the tally of its metrics.
//!
//! Fault injection ([`FunctionSpec::kill_after_answer`]) kills a worker at the worst moment for
//! delivery accounting: after its side effects, before its answer counts. The caller sees the
//! invocation fail and retries it, so whatever the function wrote is written again.

pub mod cgroup;
mod runtime_api;
mod state;
mod supervise;
pub mod telemetry;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use state::Job;
use supervise::supervise;
use telemetry::Telemetry;

use crate::ShutdownTrigger;

/// Receives each line a function's processes write, with the function's name.
pub type LogSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// A log sink writing `[function] line` to stderr (see [`logs_to`]).
pub fn stderr_logs() -> LogSink {
    logs_to(std::io::stderr())
}

/// A log sink writing `[function] line` to `writer`. A line that cannot be written (stderr is a
/// file on a full disk) is counted, never a panic: the function's output keeps being read, so
/// its workers never block on a full pipe, and once the writer takes lines again the count of
/// those lost is said first.
pub fn logs_to(writer: impl std::io::Write + Send + 'static) -> LogSink {
    let writer = std::sync::Mutex::new((writer, 0u64));
    Arc::new(move |function, line| {
        let mut guard = writer.lock().unwrap_or_else(|p| p.into_inner());
        let (writer, lost) = &mut *guard;
        if *lost > 0
            && writeln!(
                writer,
                "sandbox: {lost} log lines were lost: the log could not be written"
            )
            .and_then(|()| writer.flush())
            .is_ok()
        {
            *lost = 0;
        }
        if writeln!(writer, "[{function}] {line}")
            .and_then(|()| writer.flush())
            .is_err()
        {
            *lost += 1;
        }
    })
}

/// What to run.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Function name.
    pub name: String,
    /// Its ARN (for the invocation headers).
    pub arn: String,
    /// The `bootstrap` to run.
    pub executable: PathBuf,
    /// Environment: the function's variables plus the sandbox's (endpoint, region, credentials).
    pub environment: BTreeMap<String, String>,
    /// Invocation time limit.
    pub timeout: Duration,
    /// Worker processes.
    pub concurrency: usize,
    /// Memory size, MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, which lambda_runtime requires).
    pub memory_mb: u32,
    /// How long an invocation may wait for a worker to start and pick it up, on top of the
    /// timeout ([`INIT_TIMEOUT`], Lambda's init limit, unless a test wants less).
    pub init_timeout: Duration,
    /// Hot reload: when `executable` changes (a rebuild replaced it), each worker is restarted
    /// on the new binary as soon as it is between invocations.
    pub reload_on_change: bool,
    /// What-if: added to each invocation before the function gets it. With hot reload, a
    /// [`DELAY_FILE`] beside the executable overrides it, read each time a worker starts.
    pub delay: Duration,
    /// Fault injection: which invocations' workers are killed right after they answer, before
    /// the answer counts ([`InvokeError::Killed`]).
    pub kill_after_answer: KillAfterAnswer,
    /// Lambda's concurrency limits (the aws profile): past them an invocation is throttled
    /// ([`InvokeError::Throttled`]) instead of waiting for a worker.
    pub concurrency_limit: Option<ConcurrencyLimit>,
    /// The control group giving the workers Lambda's CPU share and memory limit for
    /// `memory_mb` (`--cpu-share`, the aws profile); `None`: a full core each, no limit.
    pub group: Option<Arc<cgroup::FunctionGroup>>,
}

/// The account's concurrency, shared by every function without a reservation: AWS's account
/// limit less what the reserved functions hold.
#[derive(Debug)]
pub struct AccountConcurrency {
    unreserved: u32,
    in_flight: AtomicU32,
}

impl AccountConcurrency {
    /// An account of `limit` concurrent executions, `reserved` of them reserved by functions.
    pub fn new(limit: u32, reserved: u32) -> Arc<AccountConcurrency> {
        Arc::new(AccountConcurrency {
            unreserved: limit.saturating_sub(reserved),
            in_flight: AtomicU32::new(0),
        })
    }
}

/// One function's concurrency limit: its reserved concurrency, or the account's unreserved
/// pool. An invocation counts from the moment it is made until it ends, queued or running: on
/// AWS a queued invocation would be running in an execution environment of its own.
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit {
    /// The function's `ReservedConcurrentExecutions`, if it has one.
    pub reserved: Option<u32>,
    /// The account's pool.
    pub account: Arc<AccountConcurrency>,
}

/// An invocation's place within its concurrency limit, given back when dropped.
struct Slot<'a>(&'a AtomicU32);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes one of `limit` places on `counter`, if one is free.
fn take_slot(counter: &AtomicU32, limit: u32) -> Option<Slot<'_>> {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < limit).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(counter))
}

/// Fault injection's dice: a `fraction` of answers (0 to 1) is drawn to be killed, from an
/// xorshift generator seeded with a number the sandbox prints, so that a failing run can be
/// repeated with the same draws (`sandbox up --seed`). One generator per function, shared by
/// its workers.
#[derive(Debug, Clone, Default)]
pub struct KillAfterAnswer {
    /// The fraction of answers killed.
    pub fraction: f64,
    state: Arc<AtomicU64>,
}

impl KillAfterAnswer {
    /// Kills `fraction` of the answers, drawn from `seed`.
    pub fn new(fraction: f64, seed: u64) -> KillAfterAnswer {
        KillAfterAnswer {
            fraction,
            // xorshift's state must not be 0.
            state: Arc::new(AtomicU64::new(seed.max(1))),
        }
    }

    /// Whether this answer's worker is killed.
    pub fn draw(&self) -> bool {
        if self.fraction <= 0.0 {
            return false;
        }
        let next = |mut x: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let drawn = self
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(next(x)))
            .map_or(1, next);
        ((drawn >> 11) as f64 / (1u64 << 53) as f64) < self.fraction
    }
}

/// The file beside a hot-reload function's executable that sets its delay (`10ms`).
pub const DELAY_FILE: &str = "delay";

/// The delay of a worker starting now: the [`DELAY_FILE`] beside a hot-reload executable when
/// there is one (unreadable: no delay, said on the log), else the spec's.
fn current_delay(spec: &FunctionSpec) -> Result<Duration, String> {
    let file = spec.executable.with_file_name(DELAY_FILE);
    if !spec.reload_on_change || !file.exists() {
        return Ok(spec.delay);
    }
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "{}: {:?} is not a duration: {e}",
            file.display(),
            text.trim()
        )
    })
}

/// How often a hot-reload function's executable is checked for a change.
pub const RELOAD_POLL: Duration = Duration::from_millis(300);

/// A version of a file: modification time, size and inode.
type FileVersion = (std::time::SystemTime, u64, u64);

/// What identifies a version of a file: modification time, size and inode (a rebuild that moves
/// a new file into place changes the inode even within the same mtime tick).
fn file_version(path: &std::path::Path) -> Option<FileVersion> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

/// Lambda's limit on a function's init phase.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an invocation did not return a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The function reported an error (`/error`).
    #[error("function error {error_type}: {message}")]
    Function {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
    /// No answer within the function's timeout; the worker was recycled.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The worker process exited mid-invocation: Lambda's `Runtime exited with error: ...`.
    #[error("{0}")]
    Crashed(String),
    /// Fault injection killed the worker after it answered; the answer was discarded.
    #[error("the worker was killed after it answered (fault injection); its answer is lost")]
    Killed,
    /// The invocation was throttled: Lambda's 429 `TooManyRequestsException` with this
    /// `Reason` (`ReservedFunctionConcurrentInvocationLimitExceeded`,
    /// `ConcurrentInvocationLimitExceeded`).
    #[error("Rate Exceeded. ({0})")]
    Throttled(&'static str),
    /// The host is stopping.
    #[error("the function host has stopped")]
    Stopped,
}

/// A running function: its workers and its queue.
pub struct FunctionHost {
    spec: FunctionSpec,
    queue: mpsc::Sender<Job>,
    stop: ShutdownTrigger,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    telemetry: Arc<Telemetry>,
    /// Invocations made and not ended, queued or running (for a reserved concurrency).
    in_flight: AtomicU32,
    /// The memory size, MB: a change reaches each worker the next time it is idle.
    memory: tokio::sync::watch::Sender<u32>,
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

impl FunctionHost {
    /// Starts `spec.concurrency` workers.
    pub async fn start(spec: FunctionSpec, logs: LogSink) -> anyhow::Result<Arc<FunctionHost>> {
        anyhow::ensure!(
            spec.executable.exists(),
            "{}: {} not found",
            spec.name,
            spec.executable.display()
        );
        let (queue, jobs) = mpsc::channel::<Job>(1024);
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        let stop = ShutdownTrigger::new();
        let telemetry = Arc::new(Telemetry::new(spec.memory_mb));
        let memory = tokio::sync::watch::Sender::new(spec.memory_mb);
        let mut tasks = Vec::new();
        for index in 0..spec.concurrency.max(1) {
            tasks.push(tokio::spawn(supervise(
                spec.clone(),
                index,
                supervise::Queue {
                    jobs: jobs.clone(),
                    requeue: queue.downgrade(),
                },
                logs.clone(),
                telemetry.clone(),
                memory.subscribe(),
                stop.shutdown(),
            )));
        }
        Ok(Arc::new(FunctionHost {
            spec,
            queue,
            stop,
            tasks: Mutex::new(tasks),
            telemetry,
            in_flight: AtomicU32::new(0),
            memory,
        }))
    }

    /// The function's memory size, MB.
    pub fn memory_mb(&self) -> u32 {
        *self.memory.borrow()
    }

    /// Sets the memory size, as `UpdateFunctionConfiguration` does on Lambda: the CPU share and
    /// memory limit (with `--cpu-share`), the REPORT lines and `total_memory` follow at once, and
    /// each worker is replaced by one started with the new size the next time it is idle (Lambda
    /// runs the next invocations in new execution environments: cold starts).
    pub fn set_memory(&self, memory_mb: u32) -> Result<(), String> {
        if let Some(group) = &self.spec.group {
            group.set_memory(memory_mb)?;
        }
        self.telemetry.set_memory_mb(memory_mb);
        self.memory.send_if_modified(|now| {
            let changed = *now != memory_mb;
            *now = memory_mb;
            changed
        });
        Ok(())
    }

    /// The function's tally of Lambda's metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Invokes the function with `payload` (an event's JSON) and waits for its result: at most
    /// the timeout plus the init timeout (a worker that cannot start fails the invocation, as a
    /// failed init does on Lambda).
    pub async fn invoke(&self, payload: Bytes) -> Result<Bytes, InvokeError> {
        let _slot = match self.admit() {
            Ok(slot) => slot,
            Err(throttled) => {
                self.telemetry.throttled();
                return Err(throttled);
            }
        };
        let (reply, result) = oneshot::channel();
        self.queue
            .send(Job { payload, reply })
            .await
            .map_err(|_| InvokeError::Stopped)?;
        let limit = self.spec.timeout + self.spec.init_timeout;
        match tokio::time::timeout(limit, result).await {
            Ok(result) => result.unwrap_or(Err(InvokeError::Stopped)),
            Err(_) => Err(InvokeError::Timeout(limit)),
        }
    }

    /// A place within the function's concurrency limit, or the throttle that refuses it.
    fn admit(&self) -> Result<Option<Slot<'_>>, InvokeError> {
        let Some(limit) = &self.spec.concurrency_limit else {
            return Ok(None);
        };
        match limit.reserved {
            Some(reserved) => {
                take_slot(&self.in_flight, reserved)
                    .map(Some)
                    .ok_or(InvokeError::Throttled(
                        "ReservedFunctionConcurrentInvocationLimitExceeded",
                    ))
            }
            None => take_slot(&limit.account.in_flight, limit.account.unreserved)
                .map(Some)
                .ok_or(InvokeError::Throttled("ConcurrentInvocationLimitExceeded")),
        }
    }

    /// Stops every worker (by PID) and waits for them.
    pub async fn stop(&self) {
        self.stop.stop();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }
}
