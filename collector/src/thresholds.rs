//! Thresholds on the pipeline's own numbers, in k6's syntax (`contract::threshold`), for
//! `collector stats` and `collector wait`: a crossed one exits 99.
//!
//! | metric | kind | aggregations | from |
//! | --- | --- | --- | --- |
//! | `latency` | trend (ms) | `avg` `min` `med` `max` `p(N)` | end-to-end latency per request (percentiles from buckets, within 2 %) |
//! | `ClientToKinesisLatency`, `KinesisToStoreLatency`, `StoreToDownstreamLatency` | trend (ms) | the same | each hop (percentiles from the hop's buckets, export version 3 on) |
//! | `lost`, `redelivered`, `processed`, `accepted` | counter | `count` `rate` (per second of the active window) | the run table |
//! | `loops_per_s` | gauge | `value` | loops per second over the active window |
//! | `Invocations`, `Errors`, `Throttles`, `ColdStarts` | counter | `count` `rate` | Lambda's own metrics, summed over the three functions (export version 4 on) |
//! | `Duration`, `IteratorAge`, `ConcurrentExecutions` | trend | `max`; `Duration` also `med` `p(50)` `p(99)` | Lambda's own metrics: the highest of the functions' values, so `Duration:p(99)<100` holds when every function's p99 does |
//!
//! Lambda's metrics without data (not available in the window) are "no data", which fails.

use contract::export::StatSummary;
use contract::metrics::Hop;
use contract::run::Run;
use contract::threshold::{Aggregation, Judged, Kind, MetricSource, Threshold};

/// The metrics a collector threshold may name.
pub const METRICS: [(&str, Kind); 16] = [
    ("latency", Kind::Trend),
    ("ClientToKinesisLatency", Kind::Trend),
    ("KinesisToStoreLatency", Kind::Trend),
    ("StoreToDownstreamLatency", Kind::Trend),
    ("lost", Kind::Counter),
    ("redelivered", Kind::Counter),
    ("processed", Kind::Counter),
    ("accepted", Kind::Counter),
    ("loops_per_s", Kind::Gauge),
    ("Invocations", Kind::Counter),
    ("Errors", Kind::Counter),
    ("Throttles", Kind::Counter),
    ("ColdStarts", Kind::Counter),
    ("Duration", Kind::Trend),
    ("IteratorAge", Kind::Trend),
    ("ConcurrentExecutions", Kind::Trend),
];

/// Parses a threshold on the pipeline's metrics (clap's value parser: the error is its line).
pub fn parse(text: &str) -> Result<Threshold, String> {
    Threshold::parse(text, &METRICS).map_err(|e| e.reason)
}

/// A trend's aggregation over a summary and its histogram (percentiles within its bounds).
fn trend(
    summary: Option<&StatSummary>,
    percentile: impl Fn(f64) -> Option<f64>,
    aggregation: Aggregation,
) -> Option<f64> {
    let summary = summary.filter(|s| s.count > 0)?;
    match aggregation {
        Aggregation::Avg => summary.mean_ms(),
        Aggregation::Min => Some(summary.min_ms),
        Aggregation::Max => Some(summary.max_ms),
        Aggregation::Med => percentile(50.0),
        Aggregation::Percentile(q) => percentile(q),
        _ => None,
    }
}

/// The run model's numbers as thresholds read them.
struct Source<'a>(Run<'a>);

impl MetricSource for Source<'_> {
    fn aggregate(&self, metric: &str, aggregation: Aggregation) -> Option<f64> {
        let run = &self.0;
        let active_s = run
            .active_window()
            .map(|(start, end)| (end - start) as f64 / 1000.0)
            .filter(|s| *s > 0.0);
        let counter = |n: Option<u64>| match aggregation {
            Aggregation::Count => n.map(|n| n as f64),
            Aggregation::Rate => Some(n? as f64 / active_s?),
            _ => None,
        };
        match metric {
            "latency" => trend(
                Some(&run.export.latency),
                |q| run.percentile(q),
                aggregation,
            ),
            "lost" => counter(run.lost()),
            "redelivered" => counter(Some(run.redelivered())),
            "processed" => counter(Some(run.processed())),
            "accepted" => counter(run.accepted()),
            "loops_per_s" => run.loops_per_s(),
            "Invocations" | "Errors" | "Throttles" | "ColdStarts" => {
                counter(lambda_total(run, metric))
            }
            "Duration" | "IteratorAge" | "ConcurrentExecutions" => {
                lambda_highest(run, metric, aggregation)
            }
            hop if Hop::ALL.iter().any(|h| h.metric_name() == hop) => {
                trend(run.hop(hop), |q| run.hop_percentile(hop, q), aggregation)
            }
            _ => None,
        }
    }
}

/// Lambda's functions in the run's export, when their metrics are available.
fn functions<'a>(run: &Run<'a>) -> Option<&'a [contract::lambda::FunctionMetrics]> {
    let view = run.export.lambda.as_ref()?;
    (view.unavailable.is_none()).then_some(view.functions.as_slice())
}

/// A count of Lambda's, summed over the functions.
fn lambda_total(run: &Run, metric: &str) -> Option<u64> {
    functions(run)?
        .iter()
        .map(|f| match metric {
            "Invocations" => Some(f.invocations),
            "Errors" => Some(f.errors),
            "Throttles" => Some(f.throttles),
            _ => f.cold_starts,
        })
        .try_fold(0, |sum, n| Some(sum + n?))
}

/// A trend of Lambda's: the highest of the functions' values (those that have one).
fn lambda_highest(run: &Run, metric: &str, aggregation: Aggregation) -> Option<f64> {
    functions(run)?
        .iter()
        .filter_map(|f| match (metric, aggregation) {
            ("Duration", Aggregation::Max) => f.duration_max_ms,
            ("Duration", Aggregation::Med | Aggregation::Percentile(50.0)) => f.duration_p50_ms,
            ("Duration", Aggregation::Percentile(99.0)) => f.duration_p99_ms,
            ("IteratorAge", Aggregation::Max) => f.iterator_age_max_ms,
            ("ConcurrentExecutions", Aggregation::Max) => f.concurrency_max,
            _ => None,
        })
        .reduce(f64::max)
}

/// Judges `thresholds` against a run.
pub fn judge(thresholds: &[Threshold], run: Run<'_>) -> Vec<Judged> {
    let source = Source(run);
    thresholds.iter().map(|t| t.judge(&source)).collect()
}
