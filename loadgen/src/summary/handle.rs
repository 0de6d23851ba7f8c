//! `--summary-json FILE`: the data object k6 1.1.0 hands a script's `handleSummary(data)`
//! (`root_group` with the checks as a list, `options`, `state`, and `metrics` as `{type,
//! contains, values, thresholds}`), which the reporters k6 users run (k6-html-reporter, ...)
//! read.

use serde_json::{json, Map, Value};

use super::k6::{id, number};
use super::Summary;

impl Summary {
    /// The handleSummary data; `tty` says whether stdout and stderr are terminals.
    pub fn handle_summary(&self, tty: (bool, bool)) -> Value {
        let checks: Vec<Value> = self
            .check_counts()
            .into_iter()
            .map(|(name, passes, fails)| {
                let path = format!("::{name}");
                json!({"name": name, "path": path, "id": id(&path), "passes": passes,
                       "fails": fails})
            })
            .collect();
        let metrics: Map<String, Value> = self
            .k6_metrics()
            .into_iter()
            .map(|m| {
                let values: Map<String, Value> = m
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), number(*v)))
                    .collect();
                let mut metric = json!({"type": m.kind.name(), "contains": m.contains.name(),
                                        "values": values});
                if !m.thresholds.is_empty() {
                    let judged: Map<String, Value> = m
                        .thresholds
                        .iter()
                        .map(|j| (j.threshold.expression().to_owned(), json!({"ok": j.passed})))
                        .collect();
                    metric["thresholds"] = Value::Object(judged);
                }
                (m.name, metric)
            })
            .collect();
        let trend_stats: Vec<String> = self.trend_stats.iter().map(|t| t.name()).collect();
        json!({
            "root_group": {"name": "", "path": "", "id": id(""), "groups": [], "checks": checks},
            "options": {"summaryTrendStats": trend_stats, "summaryTimeUnit": "", "noColor": false},
            "state": {"isStdOutTTY": tty.0, "isStdErrTTY": tty.1,
                      "testRunDurationMs": self.elapsed.as_secs_f64() * 1000.0},
            "metrics": metrics,
        })
    }
}
