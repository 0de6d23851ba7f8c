//! The run: one VU loop for every executor, and a gate per executor that says when each VU may
//! start its next iteration.
//!
//! - constant VUs: every VU iterates until the deadline;
//! - shared iterations: VUs take iterations from one counter;
//! - ramping VUs: VU `i` iterates while the interpolated target exceeds `i`, idles otherwise;
//! - constant and ramping arrival rate: a dispatcher hands each start the rate curve
//!   ([`crate::schedule`]) calls for to an idle VU, or counts it as dropped when none is idle;
//!   the VU measures from the scheduled start.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use contract::runfile::LoadSample;
use tokio::sync::{mpsc, Notify};

use crate::client::{Client, ConnectTimings, Connection, Response};
use crate::config::{Config, Executor};
use crate::epoch_ms;
use crate::schedule::RateSchedule;
use crate::stats::{FailureKind, Stats};
use crate::trends::{Timings, Trends};
use timeline::{sample_vus, Seconds};

mod timeline;

/// Asks a run to stop: gracefully first (no new iterations), then at once.
#[derive(Debug, Default)]
pub struct Stop {
    graceful: AtomicBool,
    abort: AtomicBool,
    /// How many stops were asked for, in all.
    requests: AtomicU64,
    notify: Notify,
    /// Why the run was cut short from outside (a signal), and when (epoch ms), when it was.
    cause: Mutex<Option<(String, i64)>>,
}

impl Stop {
    /// A stop signal nobody has raised.
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    /// First call: start no new iteration. Second call: abandon requests in flight.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.graceful.swap(true, Ordering::SeqCst) {
            self.abort.store(true, Ordering::SeqCst);
        }
        self.notify.notify_waiters();
    }

    /// Abandons requests in flight now.
    pub fn abort(&self) {
        self.graceful.store(true, Ordering::SeqCst);
        self.abort.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// As [`Stop::request`], from outside the run (a signal): the run is then aborted, and
    /// `cause` says why (the first cause is kept).
    pub fn request_because(&self, cause: String) {
        if let Ok(mut kept) = self.cause.lock() {
            kept.get_or_insert((cause, epoch_ms()));
        }
        self.request();
    }

    /// Why the run was cut short from outside, and when (epoch ms), if it was.
    pub fn cause(&self) -> Option<(String, i64)> {
        self.cause.lock().ok().and_then(|c| c.clone())
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.graceful.load(Ordering::SeqCst)
    }

    /// Resolves at the next stop asked for after this call (whatever came before): what cuts
    /// short the work after the load, such as the last push.
    pub async fn next_request(&self) {
        let seen = self.requests.load(Ordering::SeqCst);
        loop {
            let notified = self.notify.notified();
            if self.requests.load(Ordering::SeqCst) > seen {
                return;
            }
            notified.await;
        }
    }

    async fn aborted(&self) {
        loop {
            let notified = self.notify.notified();
            if self.abort.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// Counters the progress line and the timeline read while the run goes on.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests completed.
    pub requests: AtomicU64,
    /// Of those, failed.
    pub failures: AtomicU64,
    /// VUs iterating now.
    pub active_vus: AtomicU64,
    /// Arrival-rate starts dropped for want of an idle VU.
    pub dropped: AtomicU64,
    /// Arrival-rate starts scheduled so far, dropped ones included.
    pub offered: AtomicU64,
    /// Request body bytes sent (for requests that got an answer).
    pub bytes_sent: AtomicU64,
    /// Response body bytes received.
    pub bytes_received: AtomicU64,
    /// Whether a connection speaks HTTP/2.
    pub http2: AtomicBool,
}

/// What the VUs share.
struct Shared {
    client: Client,
    config: Config,
    stop: Arc<Stop>,
    live: Arc<Counters>,
    start: Instant,
    deadline: Instant,
    iterations_left: AtomicU64,
    /// Arrival rate: VUs waiting for a start, by index.
    idle: Mutex<Vec<usize>>,
    /// The message as a JSON string literal.
    message_json: String,
    /// Every VU's request timings.
    trends: Arc<Trends>,
    /// The load second by second.
    seconds: Arc<Seconds>,
}

/// What a run produced.
pub struct RunResult {
    /// Every VU's counts, merged.
    pub stats: Stats,
    /// First request's send time, epoch ms.
    pub start_ms: i64,
    /// When the last VU finished, epoch ms.
    pub end_ms: i64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Dropped arrival-rate starts.
    pub dropped: u64,
    /// Per-second load.
    pub timeline: Vec<LoadSample>,
    /// Fewest and most VUs seen iterating at a time.
    pub vus_seen: (u64, u64),
}

/// Runs `config`'s schedule against its endpoint until done or stopped; every request's timings
/// go to `trends`.
pub async fn execute(
    config: Config,
    client: Client,
    stop: Arc<Stop>,
    live: Arc<Counters>,
    trends: Arc<Trends>,
) -> RunResult {
    // This worker's share (the whole run unless --segment).
    let vus = config.segment.share(config.executor.max_vus()) as usize;
    let start = Instant::now();
    let start_ms = epoch_ms();
    let iterations = match config.executor {
        Executor::SharedIterations { iterations, .. } => config.segment.share(iterations),
        _ => 0,
    };
    let seconds = Arc::new(Seconds::new(
        start,
        start_ms,
        config.executor.duration() + config.graceful_stop,
    ));
    let shared = Arc::new(Shared {
        message_json: serde_json::Value::String(config.message.clone()).to_string(),
        deadline: start + config.executor.duration(),
        seconds: seconds.clone(),
        client,
        stop: stop.clone(),
        live: live.clone(),
        start,
        iterations_left: AtomicU64::new(iterations),
        idle: Mutex::new(Vec::with_capacity(vus)),
        trends,
        config,
    });

    let mut handles = Vec::with_capacity(vus);
    let mut dispatch = None;
    let arrival = shared.config.executor.arrival_schedule();
    if let Some(schedule) = arrival.clone() {
        let mut senders = Vec::with_capacity(vus);
        for vu in 0..vus {
            let (tx, rx) = mpsc::channel(1);
            senders.push(tx);
            handles.push(tokio::spawn(vu_loop(shared.clone(), vu, Gate::Arrival(rx))));
        }
        dispatch = Some(tokio::spawn(dispatcher(shared.clone(), schedule, senders)));
    } else {
        if !matches!(shared.config.executor, Executor::RampingVus { .. }) {
            live.active_vus.store(vus as u64, Ordering::Relaxed);
        }
        for vu in 0..vus {
            handles.push(tokio::spawn(vu_loop(shared.clone(), vu, Gate::Scheduled)));
        }
    }
    // k6's gracefulStop: requests still in flight this long after the schedule ends are
    // abandoned, instead of waiting for each one's own timeout.
    let graceful_end = shared.deadline + shared.config.graceful_stop;
    let watchdog = tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::time::sleep_until(graceful_end.into()).await;
            stop.abort();
        }
    });
    let sampler = tokio::spawn(sample_vus(live.clone(), seconds.clone()));

    let mut stats = Stats::default();
    for handle in handles {
        if let Ok(vu_stats) = handle.await {
            stats.merge(&vu_stats);
        }
    }
    stats.accepted_ids.normalize();
    stats.unaccepted_ids.normalize();
    watchdog.abort();
    if let Some(dispatch) = dispatch {
        dispatch.abort();
    }
    sampler.abort();
    let _ = sampler.await;
    let (timeline, vus_seen) = seconds.samples(vus as u64, arrival.is_some());
    RunResult {
        stats,
        start_ms,
        end_ms: epoch_ms(),
        elapsed: start.elapsed(),
        dropped: live.dropped.load(Ordering::Relaxed),
        timeline,
        vus_seen,
    }
}

enum Gate {
    /// Constant, shared-iterations and ramping VUs: the schedule is a function of time.
    Scheduled,
    /// Arrival rate: starts come from the dispatcher.
    Arrival(mpsc::Receiver<Instant>),
}

/// When VU `vu` starts its next iteration: the instant its latency is measured from (the
/// scheduled start for arrival rate, so that a late start counts; now for the other executors),
/// or `None` when it is done.
async fn next_iteration(
    shared: &Shared,
    vu: usize,
    gate: &mut Gate,
    active: &mut bool,
) -> Option<Instant> {
    loop {
        if shared.stop.requested() || Instant::now() >= shared.deadline {
            return None;
        }
        match (&shared.config.executor, &mut *gate) {
            (Executor::ConstantVus { .. }, _) => return Some(Instant::now()),
            (Executor::SharedIterations { .. }, _) => {
                let took = shared.iterations_left.fetch_update(
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                    |n| n.checked_sub(1),
                );
                return took.is_ok().then(Instant::now);
            }
            (Executor::RampingVus { .. }, _) => {
                let target = shared.config.executor.target_vus(shared.start.elapsed());
                let should = (vu as u64) < shared.config.segment.share(target);
                if should != *active {
                    *active = should;
                    if should {
                        shared.live.active_vus.fetch_add(1, Ordering::Relaxed);
                    } else {
                        shared.live.active_vus.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                if should {
                    return Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (
                Executor::ConstantArrivalRate { .. } | Executor::RampingArrivalRate { .. },
                Gate::Arrival(starts),
            ) => {
                if let Ok(mut idle) = shared.idle.lock() {
                    idle.push(vu);
                }
                return starts.recv().await;
            }
            (
                Executor::ConstantArrivalRate { .. } | Executor::RampingArrivalRate { .. },
                Gate::Scheduled,
            ) => return None,
        }
    }
}

async fn vu_loop(shared: Arc<Shared>, vu: usize, mut gate: Gate) -> Stats {
    let mut stats = Stats::default();
    let mut trends = shared.trends.buffer();
    let mut connection: Option<Connection> = None;
    let mut active = false;
    let mut iteration = 0u64;
    let config = &shared.config;
    // The VU's run-wide number: unique across the workers of a distributed run.
    let id = config.segment.global(vu as u64);
    while let Some(begin) = next_iteration(&shared, vu, &mut gate, &mut active).await {
        let arrival = matches!(gate, Gate::Arrival(_));
        if arrival {
            shared.live.active_vus.fetch_add(1, Ordering::Relaxed);
        }
        let body = payload(&config.run_id, id, iteration, &shared.message_json);
        let sent = body.len();
        let mut connect = Connecting::default();
        let attempt = tokio::time::timeout(
            config.timeout,
            send(&shared.client, &mut connection, body, &mut connect),
        );
        let outcome = tokio::select! {
            result = attempt => result.unwrap_or(Err(FailureKind::Timeout)),
            _ = shared.stop.aborted() => {
                stats.interrupted += 1;
                stats.unaccepted_ids.push(id, iteration);
                break;
            }
        };
        if outcome.is_err() {
            connection = None;
        }
        let done = Instant::now();
        let timings = timings(&outcome, &connect, begin, done);
        if let Ok(response) = &outcome {
            let live = &shared.live;
            live.bytes_sent.fetch_add(sent as u64, Ordering::Relaxed);
            live.bytes_received
                .fetch_add(response.body_bytes as u64, Ordering::Relaxed);
            if connect.http2 {
                live.http2.store(true, Ordering::Relaxed);
            }
        }
        stats.record(&outcome, timings.duration(), sent, config.max_duration);
        trends.record(done, timings);
        shared.live.requests.fetch_add(1, Ordering::Relaxed);
        let accepted = matches!(
            outcome,
            Ok(Response {
                status: 200..=299,
                ..
            })
        );
        shared.seconds.request(Instant::now(), !accepted);
        match outcome {
            Ok(Response {
                status: 200..=299, ..
            }) => stats.accepted_ids.push(id, iteration),
            // A request that never got a connection cannot have reached the API.
            Err(kind) if kind.never_sent() => {
                shared.live.failures.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                stats.unaccepted_ids.push(id, iteration);
                shared.live.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        if arrival {
            shared.live.active_vus.fetch_sub(1, Ordering::Relaxed);
        }
        iteration += 1;
    }
    if active
        || matches!(
            config.executor,
            Executor::ConstantVus { .. } | Executor::SharedIterations { .. }
        )
    {
        shared.live.active_vus.fetch_sub(1, Ordering::Relaxed);
    }
    stats
}

/// How long a request waited for its connection, and when it started waiting.
#[derive(Debug, Clone, Copy, Default)]
struct Connecting {
    /// When the request's turn came (`None`: it never came).
    started: Option<Instant>,
    /// When a connection was ready.
    ready: Option<Instant>,
    /// The TCP connect and TLS handshake, when a new connection was made.
    opened: ConnectTimings,
    /// Whether the connection speaks HTTP/2.
    http2: bool,
}

/// One request's timings, as k6 splits them, from its outcome and its connection's.
fn timings(
    outcome: &Result<Response, FailureKind>,
    connect: &Connecting,
    begin: Instant,
    done: Instant,
) -> Timings {
    let blocked = match (connect.started, connect.ready) {
        (Some(started), Some(ready)) => ready - started,
        _ => Duration::ZERO,
    };
    let base = Timings {
        blocked,
        connecting: connect.opened.connecting,
        tls_handshaking: connect.opened.tls_handshaking,
        iteration: done - begin,
        ..Timings::default()
    };
    match outcome {
        Ok(response) => Timings {
            status: response.status,
            sending: response.sending,
            waiting: response.waiting,
            receiving: response.receiving,
            ..base
        },
        // No answer (k6's status 0): the time spent after the connection was ready, waiting.
        Err(_) => Timings {
            waiting: connect.ready.map_or(Duration::ZERO, |ready| done - ready),
            ..base
        },
    }
}

/// Sends one body, (re)connecting first when needed; `connect` gets how long that took.
async fn send(
    client: &Client,
    connection: &mut Option<Connection>,
    body: Bytes,
    connect: &mut Connecting,
) -> Result<Response, FailureKind> {
    connect.started = Some(Instant::now());
    let open = match connection.as_mut() {
        Some(open) => open.is_open().await,
        None => false,
    };
    if !open {
        // Boxed: connecting (TLS, HTTP/2 handshakes) is the largest state a VU goes through, and
        // it is passed once per connection; on the heap only then, it leaves every VU's future
        // a fraction of its size.
        *connection = Some(Box::pin(client.connect(&mut connect.opened)).await?);
    }
    let Some(open) = connection.as_mut() else {
        return Err(FailureKind::Connect);
    };
    connect.ready = Some(Instant::now());
    connect.http2 = matches!(open, Connection::Http2(_));
    client.send(open, body).await
}

/// The contract's request body: id `<run_id>-<vu>-<iteration>`, timestamp in ms at send.
pub fn payload(run_id: &str, vu: u64, iteration: u64, message_json: &str) -> Bytes {
    let mut body = Vec::with_capacity(64 + run_id.len() * 2 + message_json.len());
    // Writing into a Vec cannot fail.
    let _ = write!(
        body,
        r#"{{"id":"{run_id}-{vu}-{iteration}","message":{message_json},"timestamp":{},"run_id":"{run_id}"}}"#,
        epoch_ms()
    );
    Bytes::from(body)
}

/// Hands each start `schedule` calls for (this worker's share of them) to an idle VU; counts the
/// ones no VU was free for.
async fn dispatcher(
    shared: Arc<Shared>,
    schedule: RateSchedule,
    senders: Vec<mpsc::Sender<Instant>>,
) {
    let segment = shared.config.segment;
    let mut k: u64 = 0;
    let mut next = schedule
        .start_of(segment.global(0))
        .map(|at| shared.start + at);
    while let Some(due) = next {
        if due >= shared.deadline || shared.stop.requested() {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        // Every start that is due now (several per timer tick at high rates).
        while let Some(start) = next.filter(|s| *s <= now && *s < shared.deadline) {
            let vu = shared.idle.lock().ok().and_then(|mut idle| idle.pop());
            match vu {
                Some(vu) => {
                    let _ = senders[vu].try_send(start);
                }
                None => {
                    shared.live.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            shared.live.offered.fetch_add(1, Ordering::Relaxed);
            shared.seconds.offered(start);
            k += 1;
            next = schedule
                .start_of(segment.global(k))
                .map(|at| shared.start + at);
        }
    }
    // The run lasts its duration, as k6's does: the rate is the starts over the whole duration,
    // not over the time to the last start (`--rate 1 --duration 3s` is 1/s, not 1.5/s).
    while !shared.stop.requested() && Instant::now() < shared.deadline {
        tokio::select! {
            () = tokio::time::sleep_until(shared.deadline.into()) => {}
            () = shared.stop.next_request() => {}
        }
    }
    // Dropping the senders ends every VU's wait.
}

/// Waits until `at_ms` (epoch ms), or until a stop is asked for; says so on stderr when the
/// moment has passed already.
pub async fn wait_until(at_ms: i64, stop: &Stop) {
    let late = epoch_ms() - at_ms;
    if late > 0 {
        eprintln!("loadgen: --start-at was {late} ms ago; starting now");
        return;
    }
    let deadline = Instant::now() + Duration::from_millis((-late) as u64);
    while !stop.requested() && Instant::now() < deadline {
        let notified = stop.notify.notified();
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = notified => {}
        }
    }
}
