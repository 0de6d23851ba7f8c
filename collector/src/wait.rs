//! `collector wait`: poll the run's processed count until the pipeline has drained, then build the
//! latency export.
//!
//! It ends in one of four states: complete (exactly the expected count measured; with no
//! expected count, nothing new for the quiet period), over-counted (more measured than accepted:
//! a batch reached downstream twice, so a duplicate could hide a loss), drained short (nothing
//! new for the quiet period, short of the expected count), timed out. The quiet period starts counting at the first
//! datapoint: a pipeline can take a while to deliver its first loop (cold starts, and CloudWatch's
//! ingestion delay on AWS).

use std::io::IsTerminal;
use std::time::Duration;

use contract::export::{ExportRun, LatencyExport, WaitState, EXPORT_VERSION};
use contract::metrics::LATENCY;
use contract::runfile::RunFile;
use tokio::time::Instant;

use crate::api::{ApiError, MetricsApi};
use crate::query::{RunMetrics, Window};

/// What to wait for.
#[derive(Debug, Clone)]
pub struct WaitConfig {
    /// Window start, epoch ms.
    pub since_ms: i64,
    /// Window end, epoch ms; `None`: now, moving.
    pub until_ms: Option<i64>,
    /// Requests accepted by the API, when known.
    pub expected: Option<u64>,
    /// Time between polls.
    pub poll: Duration,
    /// How long without a new datapoint means drained.
    pub quiet: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// Draw a progress bar (when stderr is a terminal).
    pub progress: bool,
}

/// How the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOutcome {
    /// The end state.
    pub state: WaitState,
    /// Requests processed.
    pub processed: u64,
    /// The window queried last.
    pub window: Window,
    /// How long it waited.
    pub waited: Duration,
}

/// Epoch milliseconds that follow tokio's clock (so paused-time tests control it).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch_ms: i64,
    instant: Instant,
}

impl Clock {
    /// A clock reading `epoch_ms` now.
    pub fn starting_at(epoch_ms: i64) -> Clock {
        Clock {
            epoch_ms,
            instant: Instant::now(),
        }
    }

    /// Now, epoch ms.
    pub fn now_ms(&self) -> i64 {
        self.epoch_ms + self.instant.elapsed().as_millis() as i64
    }
}

impl WaitConfig {
    /// Waiting for the run of `run`: from its first request (less the clocks' slack), for its
    /// accepted count.
    pub fn for_run(run: &RunFile, poll: Duration, quiet: Duration, timeout: Duration) -> Self {
        WaitConfig {
            since_ms: run.run.start_ms - contract::runfile::CLOCK_SLACK_MS,
            until_ms: None,
            expected: Some(run.run.requests_accepted),
            poll,
            quiet,
            timeout,
            progress: false,
        }
    }
}

/// Waits until the run has drained ([`wait`]), then fetches its export ([`export`]): what
/// `collector wait` and each step of the capacity search do.
pub async fn drain<A: MetricsApi>(
    metrics: &RunMetrics<A>,
    config: &WaitConfig,
    run: Option<&RunFile>,
    clock: Clock,
) -> anyhow::Result<(WaitOutcome, LatencyExport)> {
    use anyhow::Context;
    let outcome = wait(metrics, config, clock)
        .await
        .context("polling CloudWatch")?;
    let export = export(metrics, &outcome, config.expected, run)
        .await
        .context("fetching the run's latencies")?;
    Ok((outcome, export))
}

/// What the polls have seen so far: the input of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The run's processed count at the last poll.
    pub processed: u64,
    /// How long ago the count last changed (`None`: nothing processed yet).
    pub since_change: Option<Duration>,
    /// How long the wait has run.
    pub elapsed: Duration,
    /// Whether the window lies wholly in the past, beyond the quiet period: it holds
    /// everything it ever will, so one look is enough.
    pub settled: bool,
}

/// How a wait ends, given what it has seen; `None`: poll again. Pure: the whole policy of
/// [`wait`] in one place.
pub fn decide(config: &WaitConfig, seen: &Seen) -> Option<WaitState> {
    let quiet = seen.since_change.is_some_and(|d| d >= config.quiet)
        || (seen.settled && seen.processed > 0);
    match config.expected {
        Some(expected) if seen.processed == expected => Some(WaitState::Complete),
        Some(expected) if seen.processed > expected => Some(WaitState::OverCounted),
        Some(_) if quiet => Some(WaitState::DrainedShort),
        None if quiet => Some(WaitState::Complete),
        _ if seen.elapsed >= config.timeout || seen.settled => Some(WaitState::TimedOut),
        _ => None,
    }
}

/// Polls until drained, complete or timed out. A poll that fails or hangs is retried at the
/// next poll (said once on stderr) until `config.timeout`; then the last error is returned.
/// The last poll is made in time: the wait never sleeps past the timeout, and when the
/// timeout comes between two polls that answered, it ends as [`WaitState::TimedOut`].
pub async fn wait<A: MetricsApi>(
    metrics: &RunMetrics<A>,
    config: &WaitConfig,
    clock: Clock,
) -> Result<WaitOutcome, ApiError> {
    wait_watched(metrics, config, clock, &tokio::sync::watch::Sender::new(0)).await
}

/// [`wait`], with each poll's processed count sent to `processed` (for a live output).
pub async fn wait_watched<A: MetricsApi>(
    metrics: &RunMetrics<A>,
    config: &WaitConfig,
    clock: Clock,
    processed_so_far: &tokio::sync::watch::Sender<u64>,
) -> Result<WaitOutcome, ApiError> {
    let started = Instant::now();
    let progress = Progress::new(config);
    // The count and when it last changed.
    let mut last: Option<(u64, Instant)> = None;
    // The last poll that answered, to end with when the timeout comes between polls.
    let mut answered: Option<WaitOutcome> = None;
    let mut hinted = false;
    // The error of the last poll, while polls fail.
    let mut failing: Option<ApiError> = None;
    let finish = |outcome: WaitOutcome| {
        progress.finish();
        Ok(outcome)
    };
    loop {
        let left = config.timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            if let (Some(outcome), None) = (answered, &failing) {
                return finish(WaitOutcome {
                    state: WaitState::TimedOut,
                    waited: started.elapsed(),
                    ..outcome
                });
            }
        }
        let now_ms = clock.now_ms();
        let window = Window {
            start_ms: config.since_ms,
            end_ms: config.until_ms.unwrap_or(now_ms + 1000),
        };
        let processed = match poll(metrics, window, left, config.timeout).await {
            Ok(processed) => {
                failing = None;
                processed
            }
            // The last answer says more than "no answer" does.
            Err(error) if started.elapsed() >= config.timeout => {
                return Err(failing.unwrap_or(error))
            }
            Err(error) => {
                if failing.replace(error.clone()).is_none() {
                    progress.say(format!("collector: {error}; retrying until the --timeout"));
                }
                tokio::time::sleep(config.poll.min(left)).await;
                continue;
            }
        };
        processed_so_far.send_replace(processed);
        if processed > 0 && last.is_none_or(|(seen, _)| seen != processed) {
            last = Some((processed, Instant::now()));
        }
        progress.set(processed);
        let seen = Seen {
            processed,
            since_change: last.map(|(_, at)| at.elapsed()),
            elapsed: started.elapsed(),
            settled: config
                .until_ms
                .is_some_and(|until| now_ms > until + config.quiet.as_millis() as i64),
        };
        let outcome = |state| WaitOutcome {
            state,
            processed,
            window,
            waited: started.elapsed(),
        };
        if let Some(state) = decide(config, &seen) {
            return finish(outcome(state));
        }
        answered = Some(outcome(WaitState::TimedOut));
        if processed == 0 && !hinted && seen.elapsed >= config.quiet {
            hinted = true;
            progress.say(format!(
                "collector: no datapoint yet for run id {:?} in {:?}; still waiting (if this \
                 persists, check that the stack is deployed and the run id is right)",
                metrics.run_id, metrics.namespace
            ));
        }
        tokio::time::sleep(
            config
                .poll
                .min(config.timeout.saturating_sub(started.elapsed())),
        )
        .await;
    }
}

/// One poll of the processed count, bounded by what is left of the timeout.
async fn poll<A: MetricsApi>(
    metrics: &RunMetrics<A>,
    window: Window,
    left: Duration,
    timeout: Duration,
) -> Result<u64, ApiError> {
    match tokio::time::timeout(left, metrics.processed(window)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::Failed(format!(
            "no answer within the --timeout of {}",
            humantime::format_duration(timeout)
        ))),
    }
}

/// The progress bar on a terminal (when asked for), and notes printed above it (or on stderr).
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(config: &WaitConfig) -> Progress {
        Progress(progress_bar(config))
    }

    fn say(&self, note: String) {
        match &self.0 {
            Some(bar) => bar.println(note),
            None => eprintln!("{note}"),
        }
    }

    fn set(&self, processed: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(processed);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn progress_bar(config: &WaitConfig) -> Option<indicatif::ProgressBar> {
    if !config.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        config.expected,
        indicatif::ProgressDrawTarget::stderr(),
    );
    let template = if config.expected.is_some() {
        "{spinner} processed {pos}/{len} {wide_bar} {per_sec} eta {eta} ({elapsed})"
    } else {
        "{spinner} processed {pos} {per_sec} ({elapsed})"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// Everything the export holds, fetched for `outcome`'s window.
pub async fn export<A: MetricsApi>(
    metrics: &RunMetrics<A>,
    outcome: &WaitOutcome,
    expected: Option<u64>,
    run: Option<&RunFile>,
) -> Result<LatencyExport, ApiError> {
    let window = outcome.window;
    let latency = metrics.summary(LATENCY, window).await?;
    let mut per_second = metrics.per_second(window).await?;
    let (histogram, seconds) = if latency.count > 0 {
        metrics
            .histogram(window, latency.min_ms, latency.max_ms)
            .await?
    } else {
        Default::default()
    };
    for row in &mut per_second {
        let bounds = contract::export::StatSummary {
            count: row.count,
            sum_ms: row.average_ms * row.count as f64,
            min_ms: row.minimum_ms,
            max_ms: row.maximum_ms,
        };
        row.p99_ms = seconds
            .get(&row.timestamp_ms)
            .and_then(|h| contract::run::percentile_within(h, &bounds, 99.0));
    }
    let hops = metrics.hops(window).await?;
    let hop_histograms = metrics.hop_histograms(window, &hops).await?;
    let redelivered = metrics.redelivered(window).await?;
    let mut export = LatencyExport {
        version: EXPORT_VERSION,
        run: ExportRun {
            run_id: metrics.run_id.clone(),
            namespace: metrics.namespace.clone(),
            window_start_ms: window.start_ms,
            window_end_ms: window.end_ms,
            expected,
            processed: latency.count.max(outcome.processed),
            redelivered,
            state: outcome.state,
            vus: run.map(|r| r.run.vus_max),
            load_start_ms: run.map(|r| r.run.start_ms),
            load_end_ms: run.map(|r| r.run.end_ms),
            metrics_requested: None,
        },
        latency,
        per_second,
        histogram,
        hops,
        hop_histograms,
        over_time: Vec::new(),
        lambda: None,
        throttles: None,
    };
    if run.is_some() {
        export.over_time = contract::run::over_time(&export, run);
    }
    Ok(export)
}
