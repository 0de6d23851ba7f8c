//! What a finished run says: one model of the numbers ([`Summary`]), judged against the
//! thresholds; the same run as k6 reports it ([`k6`]: every metric k6 1.1.0 writes, with its
//! values); and one renderer per format: the end-of-test text in k6's three modes ([`text`]:
//! compact, full, legacy), the run file that `--summary-export` writes in k6's shape ([`export`]),
//! the data k6 hands `handleSummary()` (`--summary-json`, [`handle`]).

mod export;
mod handle;
pub mod k6;
mod text;

pub(crate) use text::{duration_check, STATUS_CHECK};

use std::collections::BTreeMap;
use std::time::Duration;

use contract::runfile::LoadSample;

use crate::segment::Segment;
use crate::stats::Stats;
use crate::summary_options::TrendStat;
use crate::thresholds::{Aggregation, Judged, MetricSource, Threshold};
use crate::trends::{Trend, TrendSet};

/// Everything the summaries and the run file say about a finished run.
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
    /// Every request's timings, by response status (0: no answer).
    pub trends: BTreeMap<u16, TrendSet>,
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
    pub thresholds: Vec<Judged>,
    /// Which workers' shares of a distributed run this is (empty: a run from one process).
    pub segments: Vec<Segment>,
    /// Why the run ended before its schedule did, when it was cut short from outside (k6: "test
    /// run was aborted"); the exit code is then 105, as k6's.
    pub aborted: Option<String>,
    /// The trend statistics the summaries show (k6's `summaryTrendStats`).
    pub trend_stats: Vec<TrendStat>,
    /// How the live output's pushes went, when there was one.
    pub pushed: Option<crate::prometheus::Pushed>,
    /// The reports asked for that could not be written, each as one line (the file and why):
    /// the summary is still printed, and the exit code is 1.
    pub unwritten: Vec<String>,
}

impl Summary {
    /// Judges `thresholds` against this summary.
    pub fn judge(&mut self, thresholds: &[Threshold]) {
        self.thresholds = thresholds.iter().map(|t| t.judge(&*self)).collect();
    }

    /// Whether every threshold passed.
    pub fn passed(&self) -> bool {
        contract::threshold::all_passed(&self.thresholds)
    }

    fn per_second(&self, n: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    }

    /// The timings of every request, whatever its status.
    pub fn all_trends(&self) -> TrendSet {
        let mut all = TrendSet::default();
        for set in self.trends.values() {
            all.add(set);
        }
        all
    }

    /// The timings of the requests k6 calls expected (`expected_response:true`: an answer with a
    /// status from 200 to 399), when there are any.
    pub fn expected_trends(&self) -> Option<TrendSet> {
        let mut expected = TrendSet::default();
        let mut any = false;
        for (_, set) in self.trends.range(200..400) {
            expected.add(set);
            any = true;
        }
        any.then_some(expected)
    }

    /// A trend's aggregation over `set`, ms.
    pub fn trend_ms(set: &TrendSet, trend: Trend, aggregation: Aggregation) -> Option<f64> {
        let h = set.get(trend);
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

    /// The checks' passes and fails, both checks together.
    pub fn checks(&self) -> (u64, u64) {
        let s = &self.stats;
        (
            s.status_check.0 + s.duration_check.0,
            s.status_check.1 + s.duration_check.1,
        )
    }
}

impl MetricSource for Summary {
    fn aggregate(&self, metric: &str, aggregation: Aggregation) -> Option<f64> {
        let s = &self.stats;
        let fraction = |yes: u64, total: u64| (total > 0).then(|| yes as f64 / total as f64);
        let counter = |n: u64| match aggregation {
            Aggregation::Count => Some(n as f64),
            Aggregation::Rate => Some(self.per_second(n)),
            _ => None,
        };
        if let Some(trend) = Trend::named(metric) {
            return Summary::trend_ms(&self.all_trends(), trend, aggregation);
        }
        match (metric, aggregation) {
            ("http_req_failed", Aggregation::Rate) => fraction(s.http_failed, s.requests),
            ("checks", Aggregation::Rate) => {
                let (yes, no) = self.checks();
                fraction(yes, yes + no)
            }
            ("http_reqs" | "iterations", _) => counter(s.requests),
            ("dropped_iterations", _) => counter(self.dropped.unwrap_or(0)),
            ("data_sent", _) => counter(s.bytes_sent),
            ("data_received", _) => counter(s.bytes_received),
            ("vus", Aggregation::Value) => Some(self.vus_seen.1 as f64),
            ("vus_max", Aggregation::Value) => Some(self.vus_max as f64),
            _ => None,
        }
    }
}
