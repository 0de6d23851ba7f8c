//! The run file (`--summary-export`, `contract::runfile` version 6): key for key what k6 1.1.0's
//! `--summary-export` writes (`root_group` with the checks, `metrics` in k6's shapes and number
//! types), plus loadgen's own keys.

use std::collections::BTreeMap;

use contract::runfile::{RunFile, RunInfo, TrendHistograms, RUN_FILE_VERSION};
use serde_json::{json, Map, Value};

use super::k6::{id, number, Kind, Metric};
use super::text::{duration_check, STATUS_CHECK};
use super::Summary;
use crate::trends::{Trend, SIGNIFICANT_FIGURES};

/// A metric as k6's summary export writes it: its values (a rate's fraction as `value`, after
/// `passes` and `fails`), and its thresholds as `{expression: crossed}`.
fn exported(metric: &Metric) -> Value {
    let mut fields = Map::new();
    for (key, value) in &metric.values {
        let key = if metric.kind == Kind::Rate && key == "rate" {
            "value"
        } else {
            key.as_str()
        };
        fields.insert(key.to_owned(), number(*value));
    }
    if !metric.thresholds.is_empty() {
        let crossed: Map<String, Value> = metric
            .thresholds
            .iter()
            .map(|j| (j.threshold.expression().to_owned(), Value::Bool(!j.passed)))
            .collect();
        fields.insert("thresholds".into(), Value::Object(crossed));
    }
    Value::Object(fields)
}

impl Summary {
    /// The checks by name, with their passes and fails, in the order they run.
    pub fn check_counts(&self) -> Vec<(String, u64, u64)> {
        let s = &self.stats;
        vec![
            (STATUS_CHECK.to_owned(), s.status_check.0, s.status_check.1),
            (
                duration_check(self.max_duration),
                s.duration_check.0,
                s.duration_check.1,
            ),
        ]
    }

    /// k6's `root_group` of the summary export: no groups, the checks by name.
    fn root_group(&self) -> Value {
        let checks: Map<String, Value> = self
            .check_counts()
            .into_iter()
            .map(|(name, passes, fails)| {
                let path = format!("::{name}");
                let check = json!({"id": id(&path), "passes": passes, "fails": fails,
                                   "name": name, "path": path});
                (name, check)
            })
            .collect();
        json!({"groups": {}, "checks": checks, "name": "", "path": "", "id": id("")})
    }

    /// Every trend's histogram, per status, as sparse `[value_us, count]` buckets.
    fn trend_histograms(&self) -> TrendHistograms {
        let by_status = self
            .trends
            .iter()
            .map(|(status, set)| {
                let trends = Trend::ALL
                    .iter()
                    .map(|&trend| {
                        let buckets = set
                            .get(trend)
                            .iter_recorded()
                            .map(|v| [v.value_iterated_to(), v.count_at_value()])
                            .collect();
                        (trend.name().to_owned(), buckets)
                    })
                    .collect();
                (status.to_string(), trends)
            })
            .collect();
        TrendHistograms {
            unit: "us".into(),
            significant_figures: SIGNIFICANT_FIGURES,
            by_status,
        }
    }

    /// The run file for `--summary-export`.
    pub fn run_file(&self) -> RunFile {
        let s = &self.stats;
        let metrics: BTreeMap<String, Value> = self
            .k6_metrics()
            .iter()
            .map(|m| (m.name.clone(), exported(m)))
            .collect();
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
                    self.check_counts()
                        .into_iter()
                        .map(|(name, passes, fails)| (name, [passes, fails]))
                        .collect(),
                ),
                max_duration_ms: Some(self.max_duration.as_millis() as u64),
                aborted: self.aborted.clone(),
                http_failed: Some(s.http_failed),
                data_bytes: Some([s.bytes_sent, s.bytes_received]),
                vus_seen: Some([self.vus_seen.0, self.vus_seen.1]),
            },
            root_group: Some(self.root_group()),
            metrics,
            trends: Some(self.trend_histograms()),
            histogram: None,
            timeline: self.timeline.clone(),
            accepted_ids: Some(s.accepted_ids.clone()),
            unaccepted_ids: Some(s.unaccepted_ids.clone()),
        }
    }
}
