//! collector: knows when the pipeline has drained, then reports latency and throughput.
//!
//! `collector wait` polls CloudWatch for the run's processed count until every accepted request
//! has come through (or nothing new arrives for a while), then exports the run's per-second
//! datapoints, bucket histogram and per-hop summaries (`contract::export`). `collector stats`
//! prints tables from that export, or from the AWS sample's bare array of per-second averages.
//!
//! # Layout
//! - [`opts`]: the flags (clap), with the AWS CLI's `--region`, `--profile`, `--endpoint-url`;
//!   `config`: the AWS subcommands' flags validated into what they run.
//! - [`api`]: GetMetricData as a small trait; [`aws`] implements it over the SDK.
//! - `query`: fetching within the API's limits (queries, datapoints, pages, throttling) and
//!   the run's numbers built from it.
//! - [`wait`]: the wait loop and its end states; the export.
//! - `stats`: the report's tables, from the run model (`contract::run`); `stats_aws`: its
//!   tables of Lambda's metrics and the run's cost; `table`, what a table is; `describe`:
//!   pandas' describe().
//! - [`report`]: the run as an HTML page with SVG charts (`collector report`).
//! - `compare`: two runs (or sets of runs) number by number against the noise, and the gate.
//! - `thresholds`: k6-style thresholds on the pipeline's numbers (`--threshold`).
//! - `audit`: the run's items in DynamoDB against the accepted ids (`collector audit`).
//! - `lambda`: Lambda's own metrics per function over the run's window (the export's
//!   `lambda`); `throttles`: AWS's throttle metrics over it, which limit gave (`throttles`).
//! - `push`: the pipeline's series into Prometheus while waiting (`collector wait -o
//!   experimental-prometheus-rw`).

pub mod api;
mod audit;
pub mod aws;
mod compare;
mod config;
mod describe;
pub mod lambda;
pub mod opts;
mod push;
mod query;
pub mod report;
mod stats;
mod stats_aws;
mod table;
mod thresholds;
pub mod throttles;
pub mod wait;

pub use audit::Audit;
pub use compare::noise;
pub use query::{RunMetrics, Window};
pub use stats::{report as stats_report, Input, Report};

use std::path::Path;

use anyhow::Context;
use contract::export::{LatencyExport, WaitState};
use contract::runfile::RunFile;

use crate::api::MetricsApi;
use crate::opts::{CompareOpts, InputOpts, ReportOpts, StatsOpts};
use crate::wait::{Clock, WaitOutcome};

/// Reads a run file, saying which file was wrong.
pub fn read_run_file(path: &Path) -> anyhow::Result<RunFile> {
    config::read_run_file(path).map_err(anyhow::Error::msg)
}

/// What `collector wait` came to.
#[derive(Debug)]
pub struct Waited {
    /// How the wait ended.
    pub outcome: WaitOutcome,
    /// The line for stderr.
    pub message: String,
    /// The thresholds, judged on the export.
    pub thresholds: Vec<contract::threshold::Judged>,
    /// How the pushes to Prometheus went, when asked for.
    pub pushed: Option<push::Pushed>,
}

impl Waited {
    /// Complete (0), not (3), or complete with a threshold crossed (99).
    pub fn exit(&self) -> contract::cli::Exit {
        use contract::cli::Exit;
        match wait_exit(&self.outcome) {
            Exit::Success if !contract::threshold::all_passed(&self.thresholds) => {
                Exit::ThresholdCrossed
            }
            exit => exit,
        }
    }
}

/// `collector wait` over any metrics API: waits, writes the export, judges the thresholds, and
/// says how it ended.
pub async fn run_wait<A: MetricsApi>(
    config: &config::Wait,
    api: A,
    now_ms: i64,
) -> anyhow::Result<Waited> {
    let metrics = RunMetrics {
        api: api::Counting::new(api),
        namespace: config.namespace.clone(),
        run_id: config.run_id.clone(),
    };
    let run = config.run.as_ref();
    let clock = Clock::starting_at(now_ms);
    let (processed, watching) = tokio::sync::watch::channel(0);
    let waiting = async move {
        let outcome = wait::wait_watched(&metrics, &config.wait, clock, &processed).await;
        drop(processed);
        (outcome, metrics)
    };
    let mut pusher = config
        .push
        .clone()
        .map(|output| push::Pusher::new(output, &config.run_id));
    let ((outcome, metrics), ()) = match &mut pusher {
        Some(pusher) => tokio::join!(waiting, pusher.follow(watching, config.wait.expected)),
        None => (waiting.await, ()),
    };
    let outcome = outcome.context("polling CloudWatch")?;
    let mut export = wait::export(&metrics, &outcome, config.wait.expected, run)
        .await
        .context("fetching the run's latencies")?;
    export.lambda = Some(lambda::view(&metrics.api, &config.functions, outcome.window).await);
    export.throttles = Some(throttles::view(&metrics.api, &config.resources, outcome.window).await);
    export.run.metrics_requested = Some(metrics.api.requested());
    std::fs::write(&config.out, export.to_json())
        .with_context(|| format!("writing {}", config.out.display()))?;
    let model = contract::run::Run::new(&export, run, None);
    let counts = Counts {
        expected: config.wait.expected,
        unaccepted: run
            .and_then(|r| r.unaccepted_ids.as_ref())
            .map(|ids| ids.count()),
    };
    let mut message = message(
        &outcome,
        counts,
        (&metrics.run_id, &metrics.namespace),
        &config.out,
    );
    if let Some(pusher) = &mut pusher {
        let hop_seconds = metrics
            .hop_seconds(outcome.window, &export.hops)
            .await
            .unwrap_or_else(|e| {
                eprintln!(
                    "collector: {}: each hop's seconds: {e}; pushed without them",
                    push::OUTPUT
                );
                Default::default()
            });
        pusher
            .push(push::run_series(&model, &hop_seconds, contract::epoch_ms()))
            .await;
        let pushed = pusher.pushed;
        message.push_str(&format!(
            "; {}: {} pushes, {} failed",
            push::OUTPUT,
            pushed.ok + pushed.failed,
            pushed.failed
        ));
    }
    Ok(Waited {
        outcome,
        message,
        thresholds: thresholds::judge(&config.thresholds, model),
        pushed: pusher.map(|p| p.pushed),
    })
}

/// What the run file says the wait should find.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Accepted requests.
    expected: Option<u64>,
    /// Requests sent and not accepted (5xx, or no answer): the API may have failed some after
    /// their record reached the stream.
    unaccepted: Option<u64>,
}

/// The line `collector wait` ends with.
fn message(
    outcome: &WaitOutcome,
    counts: Counts,
    (run_id, namespace): (&str, &str),
    out: &Path,
) -> String {
    let Counts {
        expected,
        unaccepted,
    } = counts;
    let waited =
        humantime::format_duration(std::time::Duration::from_secs(outcome.waited.as_secs()));
    let of = expected.map_or(String::new(), |e| format!(" of {e} accepted"));
    let missing = expected.map_or(String::new(), |e| {
        format!(", {} missing", e.saturating_sub(outcome.processed))
    });
    let head = match outcome.state {
        _ if outcome.processed == 0 => {
            return format!(
                "nothing was published for run id {run_id:?} in namespace {namespace:?}: check \
                 that the stack is deployed (downstream publishes the metrics) and that the run \
                 id is right; wrote {}",
                out.display()
            )
        }
        WaitState::Complete => format!("complete: {}{of} requests processed", outcome.processed),
        WaitState::OverCounted => {
            let more = outcome.processed - expected.unwrap_or(0);
            let why = match unaccepted {
                Some(failed) if failed >= more => format!(
                    "{failed} requests were answered with an error (or not at all), and one the \
                     API failed after its record reached the stream is processed all the same \
                     (or a batch reached downstream twice)"
                ),
                _ => "a batch reached downstream twice".to_owned(),
            };
            format!(
                "over-counted: {}{of} requests processed, {more} more than accepted: {why}, so \
                 the counts cannot show that none was lost (`collector audit` checks each id in \
                 the table)",
                outcome.processed,
            )
        }
        WaitState::DrainedShort => format!(
            "drained short: {}{of} requests processed{missing}",
            outcome.processed
        ),
        WaitState::TimedOut => format!(
            "timed out: {}{of} requests processed{missing}",
            outcome.processed
        ),
    };
    format!("{head} (waited {waited}); wrote {}", out.display())
}

/// How a wait exits: complete (0) when something was measured, not complete (3) otherwise.
pub fn wait_exit(outcome: &WaitOutcome) -> contract::cli::Exit {
    match outcome.state {
        WaitState::Complete if outcome.processed > 0 => contract::cli::Exit::Success,
        _ => contract::cli::Exit::NotComplete,
    }
}

/// Reads what `stats` and `report` take: the export (or bare array) and the run file.
/// The price file of `--prices`, else the shipped one; a file that does not parse is refused
/// (exit 2).
fn read_prices(opts: &InputOpts) -> anyhow::Result<contract::cost::PriceFile> {
    let Some(path) = &opts.prices else {
        return Ok(contract::cost::PriceFile::shipped());
    };
    let text = contract::file::read_text(path)
        .map_err(|e| Refused(format!("--prices {}: {e}", path.display())))?;
    Ok(contract::cost::PriceFile::parse(&text)
        .map_err(|e| Refused(format!("--prices {}: {e}", path.display())))?)
}

fn read_inputs(opts: &InputOpts) -> anyhow::Result<(stats::Input, Option<RunFile>)> {
    let file = &opts.file;
    let text =
        contract::file::read_text(file).with_context(|| format!("reading {}", file.display()))?;
    let input = stats::read_input(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("reading {}", file.display()))?;
    let run = opts.run.as_deref().map(read_run_file).transpose()?;
    if let (stats::Input::Export(export), Some(run)) = (&input, &run) {
        contract::run::check_same_run(export, run, &file.display().to_string())
            .map_err(anyhow::Error::msg)?;
    }
    Ok((input, run))
}

/// `collector stats`: the report as text or JSON, and whether every threshold held.
pub fn run_stats(opts: &StatsOpts) -> anyhow::Result<(String, bool)> {
    let (input, run) = read_inputs(&opts.input)?;
    let prices = read_prices(&opts.input)?;
    let report = stats::report(&input, run.as_ref(), opts.input.vus, &prices);
    let judged = match &input {
        stats::Input::Export(export) => thresholds::judge(
            &opts.thresholds,
            contract::run::Run::new(export, run.as_ref(), opts.input.vus),
        ),
        stats::Input::Averages(_) if !opts.thresholds.is_empty() => anyhow::bail!(
            "thresholds need a latency export (from `collector wait --out`), not the AWS sample's \
             bare array"
        ),
        stats::Input::Averages(_) => Vec::new(),
    };
    let passed = contract::threshold::all_passed(&judged);
    let text = if opts.json {
        #[derive(serde::Serialize)]
        struct WithThresholds<'a> {
            #[serde(flatten)]
            report: &'a stats::Report,
            thresholds: &'a [contract::threshold::Judged],
        }
        serde_json::to_string_pretty(&WithThresholds {
            report: &report,
            thresholds: &judged,
        })? + "\n"
    } else {
        let mut out = Vec::new();
        stats::render(&report, &mut out)?;
        String::from_utf8_lossy(&out).into_owned() + &contract::threshold::render(&judged)
    };
    Ok((text, passed))
}

/// Reads one side of a comparison: comma-separated export paths.
fn read_side(list: &str) -> anyhow::Result<compare::Side> {
    let files: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!files.is_empty(), "no export named in {list:?}");
    let mut exports = Vec::new();
    for file in &files {
        let text = contract::file::read_text(Path::new(file))
            .with_context(|| format!("reading {file}"))?;
        let export = LatencyExport::from_json(&text).with_context(|| {
            format!("{file} is not a latency export (from `collector wait --out`)")
        })?;
        exports.push(export);
    }
    Ok(compare::Side { files, exports })
}

/// Input the command refuses to judge (exit 2, as a bad flag): the one line says why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Refuses a run given twice, on one side or across both: repeated, it would count as two
/// runs and shrink the noise by repetition alone.
fn check_distinct(base: &compare::Side, candidate: &compare::Side) -> Result<(), Refused> {
    let mut seen: std::collections::HashMap<String, &str> = Default::default();
    for side in [base, candidate] {
        for (file, export) in side.files.iter().zip(&side.exports) {
            let path = std::fs::canonicalize(file)
                .map_or_else(|_| file.clone(), |p| p.display().to_string());
            let keys = [
                Some(format!("file {path}")),
                Some(format!("run {}", export.run.run_id))
                    .filter(|_| !export.run.run_id.is_empty()),
            ];
            for key in keys.into_iter().flatten() {
                if let Some(first) = seen.insert(key.clone(), file) {
                    return Err(Refused(format!(
                        "{key} is given twice ({first} and {file}): each run counts once, or \
                         repetition alone would shrink the noise"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `collector compare`: the table (or JSON) with the gates' verdicts, and whether every gate
/// held.
pub fn run_compare(opts: &CompareOpts) -> anyhow::Result<(String, bool)> {
    let base = read_side(&opts.base)?;
    let candidate = read_side(&opts.candidate)?;
    check_distinct(&base, &candidate)?;
    let comparison = if opts.paired {
        compare::paired::compare_paired(&base, &candidate).map_err(Refused)?
    } else {
        compare::compare(&base, &candidate)
    };
    let gates = compare::gate::judge(&opts.fail_if_slower, &comparison);
    let passed = gates.iter().all(|g| g.passed);
    if let Some(out) = &opts.out {
        let page = compare::html_page(&comparison, (&base, &candidate))?;
        std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))?;
    }
    let text = if opts.json {
        #[derive(serde::Serialize)]
        struct WithGates<'a> {
            #[serde(flatten)]
            comparison: &'a compare::Comparison,
            gates: &'a [compare::gate::Judged],
        }
        serde_json::to_string_pretty(&WithGates {
            comparison: &comparison,
            gates: &gates,
        })? + "\n"
    } else {
        let mut text = compare::render(&comparison);
        if !gates.is_empty() {
            text.push_str("\ngates:\n");
            for g in &gates {
                text.push_str(&contract::threshold::line(g.passed, &g.gate, &g.said));
            }
        }
        text
    };
    Ok((text, passed))
}

/// `collector report`: writes the page and returns the line for stderr.
pub fn run_report(opts: &ReportOpts) -> anyhow::Result<String> {
    let (input, run) = read_inputs(&opts.input)?;
    let sources = report::Sources {
        export: opts.input.file.display().to_string(),
        run: opts.input.run.as_ref().map(|p| p.display().to_string()),
    };
    let prices = read_prices(&opts.input)?;
    let page = report::html(&input, run.as_ref(), opts.input.vus, &sources, &prices)?;
    std::fs::write(&opts.out, page).with_context(|| format!("writing {}", opts.out.display()))?;
    Ok(format!("wrote {}", opts.out.display()))
}

/// `collector audit` over any table: the audit, also written to `--out` when given.
pub async fn run_audit<T: audit::ItemKeys>(
    config: &config::Audit,
    table: &T,
) -> anyhow::Result<audit::Audit> {
    let result = audit::audit(&config.run, table)
        .await
        .with_context(|| format!("auditing table {}", config.table))?;
    if let Some(out) = &config.out {
        std::fs::write(out, serde_json::to_string_pretty(&result)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(result)
}

pub use contract::epoch_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_over_count_is_explained_by_the_requests_the_api_failed_when_it_can_be() {
        let outcome = WaitOutcome {
            state: WaitState::OverCounted,
            processed: 1230,
            window: Window {
                start_ms: 0,
                end_ms: 1000,
            },
            waited: std::time::Duration::from_secs(3),
        };
        let said = |unaccepted| {
            let counts = Counts {
                expected: Some(1228),
                unaccepted,
            };
            message(&outcome, counts, ("r", "ns"), Path::new("t.json"))
        };
        let failed = said(Some(2));
        assert!(
            failed.starts_with("over-counted: 1230 of 1228 accepted requests processed, 2 more"),
            "{failed}"
        );
        assert!(
            failed.contains("2 requests were answered with an error"),
            "{failed}"
        );
        assert!(failed.contains("`collector audit`"), "{failed}");
        for unexplained in [said(Some(1)), said(None)] {
            assert!(
                unexplained.contains("2 more than accepted: a batch reached downstream twice"),
                "{unexplained}"
            );
        }
    }
}
