//! The Lambda Runtime API one worker process talks to: `/next` hands it the next invocation,
//! `/response` and `/error` finish it.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::state::{InFlight, Job, Worker};
use super::{FunctionSpec, InvokeError, REQUEST_IDS};

/// Serves the Runtime API for one worker process on `listener` until aborted.
pub(super) async fn serve_runtime_api(
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
        (Method::GET, ["invocation", "next"]) => next_invocation(spec, worker, jobs).await,
        (Method::POST, ["invocation", id, "response"]) if spec.kill_after_answer.draw() => {
            let response = finish(worker, id, Err(InvokeError::Killed));
            worker.kill.store(true, Ordering::SeqCst);
            worker.changed.notify_waiters();
            response
        }
        (Method::POST, ["invocation", id, "response"]) => finish(worker, id, Ok(body)),
        (Method::POST, ["invocation", id, "error"]) => {
            finish(worker, id, Err(function_error(&body)))
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

/// `GET /invocation/next`: waits for the next invocation and hands it to the worker, with
/// Lambda's headers (request id, deadline, function ARN, trace id); 410 Gone when the worker is
/// being replaced or the sandbox is stopping.
async fn next_invocation(
    spec: &FunctionSpec,
    worker: &Worker,
    jobs: &tokio::sync::Mutex<mpsc::Receiver<Job>>,
) -> Response<Full<Bytes>> {
    let retired = || {
        reply(
            StatusCode::GONE,
            Bytes::from_static(b"{\"errorMessage\":\"this worker is being replaced\"}"),
        )
    };
    // A process's init ends when it first asks for an invocation.
    let init = worker.take_init();
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
                started: Instant::now(),
                init,
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
    (worker.logs)(&spec.name, &worker.telemetry.started(&request_id));
    // What-if: the function is that much slower (the worker is busy meanwhile).
    let delay = worker.delay_us.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(delay)).await;
    }
    invocation(spec, request_id, deadline_ms, payload)
}

/// The invocation as the Runtime API hands it over: the payload, with Lambda's headers.
fn invocation(
    spec: &FunctionSpec,
    request_id: String,
    deadline_ms: u128,
    payload: Bytes,
) -> Response<Full<Bytes>> {
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

/// The error a function reported (`errorType`, `errorMessage`; empty when the body is not JSON).
fn function_error(body: &[u8]) -> InvokeError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |key: &str| {
        json.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    InvokeError::Function {
        error_type: text("errorType"),
        message: text("errorMessage"),
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
