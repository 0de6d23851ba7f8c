//! The run file (`--summary-export`, `contract::runfile`), built from the summary's numbers.

use std::collections::BTreeMap;

use contract::runfile::{DurationHistogram, MetricSummary, RunFile, RunInfo, RUN_FILE_VERSION};

use super::text::{duration_check, STATUS_CHECK};
use super::Summary;
use crate::stats::SIGNIFICANT_FIGURES;
use crate::threshold::Aggregation;

impl Summary {
    /// The run file for `--summary-export`.
    pub fn run_file(&self) -> RunFile {
        let s = &self.stats;
        let mut metrics = BTreeMap::new();
        let trend = MetricSummary {
            avg: self.duration_ms(Aggregation::Avg),
            min: self.duration_ms(Aggregation::Min),
            med: self.duration_ms(Aggregation::Med),
            max: self.duration_ms(Aggregation::Max),
            p90: self.duration_ms(Aggregation::Percentile(90.0)),
            p95: self.duration_ms(Aggregation::Percentile(95.0)),
            p99: self.duration_ms(Aggregation::Percentile(99.0)),
            ..Default::default()
        };
        metrics.insert("http_req_duration".into(), trend.clone());
        metrics.insert("iteration_duration".into(), trend);
        let count = |n: u64| MetricSummary {
            count: Some(n as f64),
            rate: Some(self.per_second(n)),
            ..Default::default()
        };
        metrics.insert("http_reqs".into(), count(s.requests));
        metrics.insert("iterations".into(), count(s.requests));
        metrics.insert("data_sent".into(), count(s.bytes_sent));
        metrics.insert("data_received".into(), count(s.bytes_received));
        if let Some(dropped) = self.dropped {
            metrics.insert("dropped_iterations".into(), count(dropped));
        }
        let rate = |(yes, no): (u64, u64)| MetricSummary {
            rate: Some(if yes + no == 0 {
                0.0
            } else {
                yes as f64 / (yes + no) as f64
            }),
            passes: Some(yes),
            fails: Some(no),
            ..Default::default()
        };
        metrics.insert(
            "http_req_failed".into(),
            rate((s.http_failed, s.requests - s.http_failed)),
        );
        metrics.insert(
            "checks".into(),
            rate((
                s.status_check.0 + s.duration_check.0,
                s.status_check.1 + s.duration_check.1,
            )),
        );
        let gauge = |value: u64, min: u64, max: u64| MetricSummary {
            value: Some(value as f64),
            min: Some(min as f64),
            max: Some(max as f64),
            ..Default::default()
        };
        metrics.insert(
            "vus".into(),
            gauge(self.vus_seen.1, self.vus_seen.0, self.vus_seen.1),
        );
        metrics.insert(
            "vus_max".into(),
            gauge(self.vus_max, self.vus_max, self.vus_max),
        );
        RunFile {
            version: RUN_FILE_VERSION,
            run: RunInfo {
                run_id: self.run_id.clone(),
                endpoint: self.endpoint.clone(),
                executor: self.executor.to_owned(),
                start_ms: self.start_ms,
                end_ms: self.end_ms,
                vus_max: self.vus_max,
                requests_sent: s.sent(),
                requests_attempted: Some(s.requests),
                requests_accepted: s.accepted,
                failures: s.failures.iter().map(|(k, n)| (k.label(), *n)).collect(),
                dropped_iterations: self.dropped.unwrap_or(0),
                interrupted_iterations: s.interrupted,
                scheduled_iterations: self.scheduled,
                segments: (!self.segments.is_empty())
                    .then(|| self.segments.iter().map(ToString::to_string).collect()),
                checks: Some(
                    [
                        (
                            STATUS_CHECK.to_owned(),
                            [s.status_check.0, s.status_check.1],
                        ),
                        (
                            duration_check(self.max_duration),
                            [s.duration_check.0, s.duration_check.1],
                        ),
                    ]
                    .into(),
                ),
                max_duration_ms: Some(self.max_duration.as_millis() as u64),
                aborted: self.aborted.clone(),
            },
            metrics,
            histogram: DurationHistogram {
                unit: "us".into(),
                significant_figures: SIGNIFICANT_FIGURES,
                buckets: self
                    .durations_us
                    .iter_recorded()
                    .map(|v| [v.value_iterated_to(), v.count_at_value()])
                    .collect(),
            },
            timeline: self.timeline.clone(),
            accepted_ids: Some(s.accepted_ids.clone()),
            unaccepted_ids: Some(s.unaccepted_ids.clone()),
        }
    }
}
