//! loadgen: a native load generator for the pipeline's API that speaks k6's flags and writes
//! k6's files.
//!
//! Each VU owns one keep-alive connection and loops: build the contract's payload (id
//! `<run_id>-<vu>-<iteration>`, timestamp in ms at send), POST it, count the outcome and time its
//! phases as k6 does. The timings go into one set of HdrHistograms for the run, so memory stays
//! flat however long the run, and a VU costs tens of kilobytes.
//!
//! # Layout
//! - [`opts`]: the flags (clap) and their validation into a [`config::Config`].
//! - [`config`]: the validated configuration and the executors, as data.
//! - [`endpoint`]: the URL, from the flags, the environment or a `cdk deploy` outputs file.
//! - [`schedule`]: the arrival-rate curve and when each iteration starts.
//! - `segment`: one worker's share of a run spread over several (`--segment I/N`).
//! - `engine`: the VU loop, the per-executor gates, the arrival-rate dispatcher, the timeline.
//! - `client`: connections and requests (its own HTTP/1.1 in `h1`; hyper for HTTP/2 over TLS).
//! - `outcome`: what one request came to: a response or a failure's kind.
//! - [`stats`]: per-VU counts; `trends`: every request's timings, per status.
//! - `summary`: the run as k6 reports it, its end-of-test text (compact, full, legacy), the run
//!   file (`--summary-export`, k6's shape) and the handleSummary data (`--summary-json`);
//!   `summary_options`: its text mode ([`SummaryMode`]) and trend statistics ([`TrendStat`]).
//! - `hdrlog`: request durations as an HdrHistogram interval log (`--hdr-log`).
//! - `prometheus`: the metrics pushed live to Prometheus, as k6's `experimental-prometheus-rw`;
//!   `live_push`: the pushes of a run under way, each bounded, the last one giving way to a signal.
//! - `merge`: a distributed run's run files added up (`loadgen merge`).
//! - `fanout`: the run from N copies of the worker function on AWS Lambda (`--lambda N`; with
//!   the `lambda` feature).
//! - `thresholds`: k6 thresholds on loadgen's HTTP metrics; [`error`]: configuration errors.

mod client;
pub mod config;
pub mod endpoint;
mod engine;
pub mod error;
#[cfg(feature = "lambda")]
pub mod fanout;
mod h1;
mod hdrlog;
mod live_push;
mod merge;
pub mod opts;
mod outcome;
mod progress;
mod prometheus;
pub mod schedule;
mod segment;
pub mod stats;
mod summary;
mod summary_options;
mod thresholds;
mod trends;

use std::sync::Arc;

use anyhow::Context;

pub use config::Config;
pub use engine::Stop;
pub use summary::Summary;
pub use summary_options::{SummaryMode, TrendStat};

pub use contract::epoch_ms;

/// Runs the load described by `config` until it is done or `stop` is raised, judges the
/// thresholds, writes the run file and the other reports asked for, and returns the summary.
/// Failed requests are data, not errors: this fails only when the client cannot be built or a
/// report not written.
pub async fn run(config: Config, stop: Arc<Stop>) -> anyhow::Result<Summary> {
    let client = client::Client::new(&config.endpoint, config.insecure)
        .map_err(anyhow::Error::msg)
        .context("setting up the HTTP client")?;
    if let Some(at) = config.start_at_ms {
        engine::wait_until(at, &stop).await;
    }
    let live = Arc::new(engine::Counters::default());
    let progress = if config.progress {
        progress::start(live.clone(), config.executor.duration())
    } else {
        None
    };
    let origin = std::time::Instant::now();
    let reports = &config.reports;
    let trends = trends::Trends::new(reports.hdr_log.is_some().then_some(origin));
    let hdr_log = match &reports.hdr_log {
        Some(path) => Some(
            hdrlog::HdrLog::create(path, origin, std::time::SystemTime::now())
                .with_context(|| format!("writing the interval log {}", path.display()))?,
        ),
        None => None,
    };
    let hdr_log = Arc::new(tokio::sync::Mutex::new(hdr_log));
    let following = tokio::spawn(hdrlog::follow(hdr_log.clone(), trends.clone()));
    let live_output = match &reports.remote_write {
        Some(output) => Some(live_push::LivePush::start(
            output,
            prometheus::Source {
                live: live.clone(),
                trends: trends.clone(),
                url: config.endpoint.to_string(),
                vus_max: config.segment.share(config.executor.max_vus()),
                max_duration_us: config.max_duration.as_micros() as u64,
                duration_check: summary::duration_check(config.max_duration),
                arrival: config.executor.arrival_schedule().is_some(),
                testid: config.run_id.clone(),
            },
        )?),
        None => None,
    };
    let result = engine::execute(config.clone(), client, stop.clone(), live, trends.clone()).await;
    let aborted = stop.cause().map(|(cause, at_ms)| {
        format!(
            "{cause} {:.1} s into the run",
            (at_ms - result.start_ms).max(0) as f64 / 1000.0
        )
    });
    if let Some(progress) = progress {
        progress.finish();
    }
    following.abort();
    let mut unwritten = Vec::new();
    if let (Some(log), Some(path)) = (hdr_log.lock().await.take(), &reports.hdr_log) {
        if let Err(e) = log.finish(&trends) {
            unwritten.push(format!("--hdr-log {}: {e}", path.display()));
        }
    }
    let pushed = match live_output {
        Some(live_output) => Some(live_output.finish(&stop).await),
        None => None,
    };
    let mut summary = Summary {
        run_id: config.run_id.clone(),
        endpoint: config.endpoint.to_string(),
        executor: config.executor.name(),
        vus_max: config.segment.share(config.executor.max_vus()),
        segments: if config.segment.is_whole() {
            Vec::new()
        } else {
            vec![config.segment]
        },
        vus_seen: result.vus_seen,
        stats: result.stats,
        trends: trends.by_status(),
        elapsed: result.elapsed,
        start_ms: result.start_ms,
        end_ms: result.end_ms,
        dropped: config.executor.arrival_schedule().map(|_| result.dropped),
        scheduled: config
            .executor
            .arrival_schedule()
            .map(|s| config.segment.share(s.total())),
        timeline: result.timeline,
        max_duration: config.max_duration,
        thresholds: Vec::new(),
        aborted,
        trend_stats: config.reports.trend_stats.clone(),
        pushed,
        unwritten,
    };
    summary.judge(&config.thresholds);
    write_reports(&mut summary, &config);
    Ok(summary)
}

/// Writes the run file (`--summary-export`) and the handleSummary data (`--summary-json`); one
/// that cannot be written is added to the summary's `unwritten`, never an error that would lose
/// the summary with it.
pub fn write_reports(summary: &mut Summary, config: &Config) {
    if let Some(path) = &config.summary_export {
        let text = summary.run_file().to_json();
        if let Err(e) = contract::file::write_whole(path, text.as_bytes()) {
            summary
                .unwritten
                .push(format!("--summary-export {}: {e}", path.display()));
        }
    }
    if let Some(path) = &config.reports.summary_json {
        use std::io::IsTerminal;
        let tty = (
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        );
        let data = serde_json::to_string_pretty(&summary.handle_summary(tty)).unwrap_or_default();
        if let Err(e) = contract::file::write_whole(path, (data + "\n").as_bytes()) {
            summary
                .unwritten
                .push(format!("--summary-json {}: {e}", path.display()));
        }
    }
}

/// `loadgen merge`: reads the workers' run files, adds them up, judges the thresholds on the
/// whole, writes the merged run file if asked, and returns the summary. A bad threshold is
/// [`error::ConfigError`]; a file that cannot be read or merged, an error naming it.
pub fn merge_files(opts: &opts::MergeOpts) -> anyhow::Result<Summary> {
    let thresholds = opts
        .thresholds
        .iter()
        .map(|t| thresholds::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut parts = Vec::with_capacity(opts.files.len());
    for path in &opts.files {
        let name = path.display().to_string();
        let text = contract::file::read_text(path).with_context(|| format!("reading {name}"))?;
        let file = contract::runfile::RunFile::from_json(&text)
            .with_context(|| format!("{name} is not a run file"))?;
        parts.push(merge::Part { name, file });
    }
    let tolerate = merge::Tolerate {
        partial: opts.allow_partial,
        anything: opts.force,
    };
    let mut summary = merge::merge(&parts, tolerate).map_err(anyhow::Error::msg)?;
    summary.judge(&thresholds);
    if let Some(path) = &opts.summary_export {
        let text = summary.run_file().to_json();
        if let Err(e) = contract::file::write_whole(path, text.as_bytes()) {
            summary
                .unwritten
                .push(format!("--summary-export {}: {e}", path.display()));
        }
    }
    Ok(summary)
}
