//! loadgen: a native load generator for the pipeline's API that speaks k6's flags.
//!
//! Each VU owns one keep-alive connection and loops: build the contract's payload (id
//! `<run_id>-<vu>-<iteration>`, timestamp in ms at send), POST it, count the outcome. Durations go
//! into one HdrHistogram for the run, so memory stays flat however long the run, and a VU costs
//! tens of kilobytes.
//!
//! # Layout
//! - [`opts`]: the flags (clap) and their validation into a [`config::Config`].
//! - [`config`]: the validated configuration and the executors, as data.
//! - [`endpoint`]: the URL, from the flags, the environment or a `cdk deploy` outputs file.
//! - [`schedule`]: the arrival-rate curve and when each iteration starts.
//! - [`segment`]: one worker's share of a run spread over several (`--segment I/N`).
//! - [`engine`]: the VU loop, the per-executor gates, the arrival-rate dispatcher, the timeline.
//! - [`client`]: connections and requests over hyper (HTTP/1.1, HTTP/2 over TLS).
//! - [`outcome`]: what one request came to: a response or a failure's kind.
//! - [`stats`]: per-VU counts, and the run's duration histogram.
//! - [`summary`]: the k6-style end-of-test summary and the run file.
//! - [`merge`]: a distributed run's run files added up (`loadgen merge`).
//! - `fanout`: the run from N copies of the worker function on AWS Lambda (`--lambda N`; with
//!   the `lambda` feature).
//! - [`threshold`]: k6 thresholds.
//! - [`error`]: configuration errors.

mod client;
pub mod config;
pub mod endpoint;
mod engine;
pub mod error;
#[cfg(feature = "lambda")]
pub mod fanout;
mod h1;
pub mod merge;
pub mod opts;
mod outcome;
mod progress;
pub mod schedule;
pub mod segment;
pub mod stats;
mod summary;
mod threshold;

use std::sync::Arc;

use anyhow::Context;

pub use config::Config;
pub use engine::Stop;
pub use summary::Summary;

pub use contract::epoch_ms;

/// Runs the load described by `config` until it is done or `stop` is raised, judges the
/// thresholds, writes the run file if asked, and returns the summary. Failed requests are data,
/// not errors: this fails only when the client cannot be built or the run file not written.
pub async fn run(config: Config, stop: Arc<Stop>) -> anyhow::Result<Summary> {
    let client = client::Client::new(&config.endpoint, config.insecure)
        .map_err(anyhow::Error::msg)
        .context("setting up the HTTP client")?;
    if let Some(at) = config.start_at_ms {
        engine::wait_until(at, &stop).await;
    }
    let live = Arc::new(engine::Live::default());
    let progress = if config.progress {
        progress::start(live.clone(), config.executor.duration())
    } else {
        None
    };
    let result = engine::execute(config.clone(), client, stop.clone(), live).await;
    let aborted = stop.cause().map(|(cause, at_ms)| {
        format!(
            "{cause} {:.1} s into the run",
            (at_ms - result.start_ms).max(0) as f64 / 1000.0
        )
    });
    if let Some(progress) = progress {
        progress.finish();
    }
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
        durations_us: result.durations_us,
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
    };
    summary.judge(&config.thresholds);
    if let Some(path) = &config.summary_export {
        std::fs::write(path, summary.run_file().to_json())
            .with_context(|| format!("writing the run file {}", path.display()))?;
    }
    Ok(summary)
}

/// `loadgen merge`: reads the workers' run files, adds them up, judges the thresholds on the
/// whole, writes the merged run file if asked, and returns the summary. A bad threshold is
/// [`error::ConfigError`]; a file that cannot be read or merged, an error naming it.
pub fn merge_files(opts: &opts::MergeOpts) -> anyhow::Result<Summary> {
    let thresholds = opts
        .thresholds
        .iter()
        .map(|t| threshold::parse(t))
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
        std::fs::write(path, summary.run_file().to_json())
            .with_context(|| format!("writing the run file {}", path.display()))?;
    }
    Ok(summary)
}
