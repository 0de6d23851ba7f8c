//! The Lambda data plane: a function's worker processes (the real `bootstrap` binaries), each
//! with its own Lambda Runtime API server, fed from one queue of invocations.
//!
//! A worker per Runtime API port lets the host know which process holds which invocation: when an
//! invocation passes the function's timeout, that process is killed and restarted (as Lambda
//! recycles an execution environment), and the invocation fails with [`InvokeError::Timeout`]; a
//! process that exits mid-invocation fails it with [`InvokeError::Crashed`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

/// Receives each line a function's processes write, with the function's name.
pub type LogSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// A log sink writing `[function] line` to stderr.
pub fn stderr_logs() -> LogSink {
    Arc::new(|function, line| eprintln!("[{function}] {line}"))
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
}

/// How often a hot-reload function's executable is checked for a change.
pub const RELOAD_POLL: Duration = Duration::from_millis(300);

/// What identifies a version of a file: modification time, size and inode (a rebuild that moves
/// a new file into place changes the inode even within the same mtime tick).
fn file_version(path: &std::path::Path) -> Option<(std::time::SystemTime, u64, u64)> {
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
    /// The worker process exited mid-invocation.
    #[error("the function's process exited mid-invocation: {0}")]
    Crashed(String),
    /// The host is stopping.
    #[error("the function host has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<Bytes, InvokeError>>;

struct Job {
    payload: Bytes,
    reply: Reply,
}

struct InFlight {
    request_id: String,
    payload: Bytes,
    deadline: Instant,
    reply: Reply,
}

/// One worker's Runtime API state.
struct Worker {
    current: Mutex<Option<InFlight>>,
    changed: Notify,
    /// Bumped (under `current`'s lock) when an idle worker is retired for a new binary: a
    /// `/next` begun before it takes no job, and a job it took anyway goes back to the queue.
    generation: watch::Sender<u64>,
    /// The function's queue, for a job taken by a retired worker's `/next`.
    requeue: mpsc::WeakSender<Job>,
}

impl Worker {
    /// Puts a job back on the function's queue, without waiting (so that cancelling the caller
    /// cannot lose it).
    fn send_back(&self, job: Job) {
        let Some(queue) = self.requeue.upgrade() else {
            let _ = job.reply.send(Err(InvokeError::Stopped));
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(job)) = queue.try_send(job) {
            tokio::spawn(async move {
                let _ = queue.send(job).await;
            });
        }
    }

    /// Sends an invocation handed to a replaced process back to the queue.
    fn requeue_current(&self) {
        let job = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            current.take().map(|c| Job {
                payload: c.payload,
                reply: c.reply,
            })
        };
        if let Some(job) = job {
            self.send_back(job);
        }
    }

    /// Retires the worker if no invocation is in flight: its pending `/next` gives up, and no
    /// job can reach it any more. Returns whether it did.
    fn retire_if_idle(&self) -> bool {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_some() {
            return false;
        }
        self.generation.send_modify(|g| *g += 1);
        true
    }

    fn finish(&self, request_id: Option<&str>, result: Result<Bytes, InvokeError>) -> bool {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let matches = match (&*current, request_id) {
            (Some(job), Some(id)) => job.request_id == id,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if matches {
            if let Some(job) = current.take() {
                let _ = job.reply.send(result);
            }
            self.changed.notify_waiters();
        }
        matches
    }
}

/// A running function: its workers and its queue.
pub struct FunctionHost {
    spec: FunctionSpec,
    queue: mpsc::Sender<Job>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
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
        let (shutdown, stopping) = watch::channel(false);
        let mut tasks = Vec::new();
        for index in 0..spec.concurrency.max(1) {
            tasks.push(tokio::spawn(supervise(
                spec.clone(),
                index,
                jobs.clone(),
                queue.downgrade(),
                logs.clone(),
                stopping.clone(),
            )));
        }
        Ok(Arc::new(FunctionHost {
            spec,
            queue,
            shutdown,
            tasks: Mutex::new(tasks),
        }))
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Invokes the function with `payload` (an event's JSON) and waits for its result: at most
    /// the timeout plus the init timeout (a worker that cannot start fails the invocation, as a
    /// failed init does on Lambda).
    pub async fn invoke(&self, payload: Bytes) -> Result<Bytes, InvokeError> {
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

    /// Stops every worker (by PID) and waits for them.
    pub async fn stop(&self) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Runs worker `index`: its process and, for each process, its own Runtime API server (on a
/// fresh port, so that nothing a replaced process sent can reach its successor), restarted when
/// it exits, times out or (hot reload) its binary changes, until shutdown.
async fn supervise(
    spec: FunctionSpec,
    index: usize,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    requeue: mpsc::WeakSender<Job>,
    logs: LogSink,
    mut stopping: watch::Receiver<bool>,
) {
    let worker = Arc::new(Worker {
        current: Mutex::new(None),
        changed: Notify::new(),
        generation: watch::Sender::new(0),
        requeue,
    });
    let mut backoff = Duration::from_millis(100);
    while !*stopping.borrow() {
        let started = Instant::now();
        let version = file_version(&spec.executable);
        let mut reloaded = false;
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => {
                logs(
                    &spec.name,
                    &format!("worker {index}: no port for its Runtime API: {error}"),
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
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
        let mut command = Command::new(&spec.executable);
        command
            .env_clear()
            .envs(&spec.environment)
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
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
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                logs(
                    &spec.name,
                    &format!("cannot start {}: {error}", spec.executable.display()),
                );
                server.abort();
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
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
            let (logs, name) = (logs.clone(), spec.name.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs(&name, &line);
                }
            });
        }
        // An interval, not a sleep per turn: invocations wake the loop far more often.
        let mut reload_poll = tokio::time::interval(RELOAD_POLL);
        reload_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Set when the binary has changed: the worker is replaced the first time it is idle
        // (checked on every wake-up, so a busy worker is caught between two invocations).
        let mut reload_due = false;
        loop {
            let changed = worker.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if reload_due && worker.retire_if_idle() {
                logs(
                    &spec.name,
                    &format!(
                        "worker {index}: {} changed; restarting it",
                        spec.executable.display()
                    ),
                );
                let _ = child.kill().await;
                reloaded = true;
                break;
            }
            let deadline = worker
                .current
                .lock()
                .ok()
                .and_then(|c| c.as_ref().map(|job| job.deadline));
            tokio::select! {
                status = child.wait() => {
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    if worker.finish(None, Err(InvokeError::Crashed(status.clone()))) {
                        logs(&spec.name, &format!("worker {index} exited mid-invocation ({status}); restarting"));
                    } else if !*stopping.borrow() {
                        logs(&spec.name, &format!("worker {index} exited ({status}); restarting"));
                    }
                    break;
                }
                _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)).await }, if deadline.is_some() => {
                    if worker.finish(None, Err(InvokeError::Timeout(spec.timeout))) {
                        logs(&spec.name, &format!("worker {index} timed out after {:?}; recycling it", spec.timeout));
                        let _ = child.kill().await;
                        break;
                    }
                }
                _ = changed => {}
                _ = reload_poll.tick(), if spec.reload_on_change && !reload_due => {
                    let now = file_version(&spec.executable);
                    reload_due = now.is_some() && now != version;
                }
                _ = stopping.changed() => {
                    let _ = child.kill().await;
                    worker.finish(None, Err(InvokeError::Stopped));
                    break;
                }
            }
        }
        // Nothing of this process's may reach the next: its server and connections go, and an
        // invocation its server handed out as it was replaced goes back to the queue.
        server.abort();
        let _ = server.await;
        if reloaded {
            worker.requeue_current();
        }
        // A worker that dies at once (bad binary, missing variable) is restarted more slowly; one
        // restarted for a new binary, at once.
        backoff = if !reloaded && started.elapsed() < Duration::from_secs(1) {
            (backoff * 2).min(Duration::from_secs(5))
        } else {
            Duration::from_millis(100)
        };
        if !*stopping.borrow() && !reloaded {
            tokio::time::sleep(backoff).await;
        }
    }
}

async fn serve_runtime_api(
    listener: TcpListener,
    spec: FunctionSpec,
    worker: Arc<Worker>,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
) {
    let spec = Arc::new(spec);
    // Connections live in a set: aborting the server drops them all.
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let (spec, worker, jobs) = (spec.clone(), worker.clone(), jobs.clone());
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (spec, worker, jobs) = (spec.clone(), worker.clone(), jobs.clone());
                async move { Ok::<_, Infallible>(runtime_api(request, &spec, &worker, &jobs).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

const PREFIX: &str = "/2018-06-01/runtime/";

async fn runtime_api(
    request: Request<Incoming>,
    spec: &FunctionSpec,
    worker: &Worker,
    jobs: &tokio::sync::Mutex<mpsc::Receiver<Job>>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let route = path.strip_prefix(PREFIX).unwrap_or("");
    match (method, route.split('/').collect::<Vec<_>>().as_slice()) {
        (Method::GET, ["invocation", "next"]) => {
            let retired = || {
                reply(
                    StatusCode::GONE,
                    Bytes::from_static(b"{\"errorMessage\":\"this worker is being replaced\"}"),
                )
            };
            let mut generation = worker.generation.subscribe();
            let started_in = *generation.borrow_and_update();
            let job = tokio::select! {
                job = async { jobs.lock().await.recv().await } => job,
                _ = generation.changed() => return retired(),
            };
            let Some(job) = job else {
                return reply(
                    StatusCode::GONE,
                    Bytes::from_static(b"{\"errorMessage\":\"shutting down\"}"),
                );
            };
            let request_id = format!(
                "{:08x}-sandbox-{}",
                REQUEST_IDS.fetch_add(1, Ordering::Relaxed),
                spec.name
            );
            let deadline = Instant::now() + spec.timeout;
            let deadline_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                + spec.timeout.as_millis();
            let payload = job.payload.clone();
            let taken_back = {
                let mut current = worker.current.lock().unwrap_or_else(|p| p.into_inner());
                if *worker.generation.borrow() != started_in {
                    Some(job)
                } else {
                    *current = Some(InFlight {
                        request_id: request_id.clone(),
                        payload: job.payload.clone(),
                        deadline,
                        reply: job.reply,
                    });
                    None
                }
            };
            if let Some(job) = taken_back {
                // Retired while the job was on its way: it goes to another worker.
                worker.send_back(job);
                return retired();
            }
            worker.changed.notify_waiters();
            let mut response = reply(StatusCode::OK, payload);
            let headers = response.headers_mut();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", request_id),
                ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                ("lambda-runtime-invoked-function-arn", spec.arn.clone()),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
                ),
            ] {
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            response
        }
        (Method::POST, ["invocation", id, "response"]) => finish(worker, id, Ok(body)),
        (Method::POST, ["invocation", id, "error"]) => {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let text = |key: &str| {
                json.get(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let error = InvokeError::Function {
                error_type: text("errorType"),
                message: text("errorMessage"),
            };
            finish(worker, id, Err(error))
        }
        (Method::POST, ["init", "error"]) => reply(
            StatusCode::ACCEPTED,
            Bytes::from_static(b"{\"status\":\"OK\"}"),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"{\"errorMessage\":\"not a Runtime API path\"}"),
        ),
    }
}

/// The answer to `/response` or `/error`: accepted if `id` is the invocation in flight.
fn finish(worker: &Worker, id: &str, result: Result<Bytes, InvokeError>) -> Response<Full<Bytes>> {
    if worker.finish(Some(id), result) {
        reply(
            StatusCode::ACCEPTED,
            Bytes::from_static(b"{\"status\":\"OK\"}"),
        )
    } else {
        reply(
            StatusCode::BAD_REQUEST,
            Bytes::from_static(b"{\"errorMessage\":\"unknown request id\"}"),
        )
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
