//! What a finished run says: one model of the numbers ([`Summary`]), judged against the
//! thresholds, rendered as k6's end-of-test text ([`text`]) and as the run file ([`export`]).

mod export;
mod text;

pub(crate) use text::STATUS_CHECK;

use std::time::Duration;

use contract::runfile::LoadSample;
use hdrhistogram::Histogram;

use crate::segment::Segment;
use crate::stats::Stats;
use crate::threshold::{Aggregation, MetricSource, Threshold};

/// Everything the summary and the run file say about a finished run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The run id.
    pub run_id: String,
    /// The URL.
    pub endpoint: String,
    /// k6's executor name.
    pub executor: &'static str,
    /// VUs the run could use.
    pub vus_max: u64,
    /// Fewest and most VUs seen iterating.
    pub vus_seen: (u64, u64),
    /// Merged counts.
    pub stats: Stats,
    /// Request durations, µs.
    pub durations_us: Histogram<u64>,
    /// Wall time.
    pub elapsed: Duration,
    /// First send, epoch ms.
    pub start_ms: i64,
    /// End, epoch ms.
    pub end_ms: i64,
    /// Dropped arrival-rate starts (`None` for other executors).
    pub dropped: Option<u64>,
    /// Arrival-rate starts the schedule called for (`None` for other executors).
    pub scheduled: Option<u64>,
    /// Per-second load.
    pub timeline: Vec<LoadSample>,
    /// The duration check's limit.
    pub max_duration: Duration,
    /// Thresholds, each with whether it passed and the value it was judged on.
    pub thresholds: Vec<(Threshold, bool, Option<f64>)>,
    /// Which workers' shares of a distributed run this is (empty: a run from one process).
    pub segments: Vec<Segment>,
    /// Why the run ended before its schedule did, when it was cut short from outside (k6: "test
    /// run was aborted"); the exit code is then 105, as k6's.
    pub aborted: Option<String>,
}

impl Summary {
    /// Judges `thresholds` against this summary.
    pub fn judge(&mut self, thresholds: &[Threshold]) {
        self.thresholds = thresholds
            .iter()
            .map(|t| {
                let (passed, value) = t.evaluate(&*self);
                (t.clone(), passed, value)
            })
            .collect();
    }

    /// Whether every threshold passed.
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|(_, passed, _)| *passed)
    }

    fn per_second(&self, n: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    }

    /// A request-duration aggregation, ms.
    fn duration_ms(&self, aggregation: Aggregation) -> Option<f64> {
        let h = &self.durations_us;
        if h.is_empty() {
            return None;
        }
        let us = match aggregation {
            Aggregation::Avg => h.mean(),
            Aggregation::Min => h.min() as f64,
            Aggregation::Max => h.max() as f64,
            Aggregation::Med => h.value_at_quantile(0.5) as f64,
            Aggregation::Percentile(p) => h.value_at_quantile(p / 100.0) as f64,
            Aggregation::Rate | Aggregation::Count | Aggregation::Value => return None,
        };
        Some(us / 1000.0)
    }
}

impl MetricSource for Summary {
    fn aggregate(&self, metric: &str, aggregation: Aggregation) -> Option<f64> {
        let s = &self.stats;
        let fraction = |yes: u64, total: u64| (total > 0).then(|| yes as f64 / total as f64);
        match (metric, aggregation) {
            ("http_req_duration" | "iteration_duration", agg) => self.duration_ms(agg),
            ("http_req_failed", Aggregation::Rate) => fraction(s.http_failed, s.requests),
            ("checks", Aggregation::Rate) => {
                let yes = s.status_check.0 + s.duration_check.0;
                fraction(yes, yes + s.status_check.1 + s.duration_check.1)
            }
            ("http_reqs" | "iterations", Aggregation::Count) => Some(s.requests as f64),
            ("http_reqs" | "iterations", Aggregation::Rate) => Some(self.per_second(s.requests)),
            ("dropped_iterations", Aggregation::Count) => Some(self.dropped.unwrap_or(0) as f64),
            ("dropped_iterations", Aggregation::Rate) => {
                Some(self.per_second(self.dropped.unwrap_or(0)))
            }
            _ => None,
        }
    }
}
