//! The live output of a run under way (`-o experimental-prometheus-rw`): a task pushing every
//! interval, and the last push of the whole run once the load is done.
//!
//! Every push is bounded ([`prometheus::PUSH_BOUND`] per attempt, connecting included), a push
//! cut short by the end of the load counts as failed, and the last push gives way to any signal
//! that comes while it is under way: a stalled receiver never holds the run's summary back.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::client::{Client, Connection};
use crate::config::RemoteWrite;
use crate::engine::Stop;
use crate::prometheus::{self, Pushed, Source};

/// The longest the last push may take, its retries included.
const LAST_PUSH_BOUND: Duration = Duration::from_secs(15);

/// What the pushing task and the last push share.
#[derive(Default)]
struct PushState {
    /// The connection to the receiver, kept alive between pushes.
    connection: Option<Connection>,
    /// How the pushes went so far.
    pushed: Pushed,
    /// Whether a failure was said on stderr (once a run).
    said: bool,
    /// Whether a push is under way (a push the end of the load cuts short is a failed one).
    in_flight: bool,
}

impl PushState {
    /// Counts a push's outcome, saying the first failure.
    fn record(&mut self, outcome: Result<(), String>, url: &impl std::fmt::Display) {
        self.in_flight = false;
        match outcome {
            Ok(()) => self.pushed.ok += 1,
            Err(e) => {
                self.pushed.failed += 1;
                if !std::mem::replace(&mut self.said, true) {
                    eprintln!(
                        "loadgen: experimental-prometheus-rw: a push to {url} failed ({e}); the \
                         run goes on, failed pushes are counted in the summary"
                    );
                }
            }
        }
    }
}

/// The pushes of a run under way.
pub struct LivePush {
    follow: tokio::task::JoinHandle<()>,
    client: Arc<Client>,
    source: Arc<Source>,
    state: Arc<tokio::sync::Mutex<PushState>>,
    output: RemoteWrite,
}

impl LivePush {
    /// Starts pushing `output` from the run's counters.
    pub fn start(output: &RemoteWrite, source: Source) -> anyhow::Result<LivePush> {
        let client = Arc::new(
            prometheus::client(output)
                .map_err(anyhow::Error::msg)
                .context("setting up experimental-prometheus-rw")?,
        );
        let source = Arc::new(source);
        let state = Arc::new(tokio::sync::Mutex::new(PushState::default()));
        let follow = tokio::spawn(follow(
            output.clone(),
            client.clone(),
            source.clone(),
            state.clone(),
        ));
        Ok(LivePush {
            follow,
            client,
            source,
            state,
            output: output.clone(),
        })
    }

    /// Stops the pushes under way (one cut short counts as failed) and makes the last one, of
    /// the whole run, within [`LAST_PUSH_BOUND`] unless a stop is asked for meanwhile; how the
    /// pushes went.
    pub async fn finish(self, stop: &Stop) -> Pushed {
        self.follow.abort();
        let _ = self.follow.await;
        let mut state = self.state.lock().await;
        if std::mem::take(&mut state.in_flight) {
            state.record(
                Err("cut short by the end of the load".into()),
                &self.output.url,
            );
        }
        let outcome = {
            let state = &mut *state;
            let last = prometheus::push(
                &self.client,
                &mut state.connection,
                &self.source,
                &self.output,
            );
            tokio::select! {
                outcome = tokio::time::timeout(LAST_PUSH_BOUND, last) => outcome.unwrap_or_else(|_| {
                    Err(format!("the last push took over {} s", LAST_PUSH_BOUND.as_secs()))
                }),
                () = stop.next_request() => Err("the last push was given up on a signal".into()),
            }
        };
        state.record(outcome, &self.output.url);
        state.pushed
    }
}

/// Pushes every `push_interval` until aborted.
async fn follow(
    output: RemoteWrite,
    client: Arc<Client>,
    source: Arc<Source>,
    state: Arc<tokio::sync::Mutex<PushState>>,
) {
    let mut ticker = tokio::time::interval(output.push_interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let mut state = state.lock().await;
        state.in_flight = true;
        let outcome = prometheus::push(&client, &mut state.connection, &source, &output).await;
        state.record(outcome, &output.url);
    }
}
