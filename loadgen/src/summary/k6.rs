//! The run as k6 1.1.0 reports the same run: every metric it writes (checks, data, the eight
//! timing trends and `http_req_duration{expected_response:true}`, `http_req_failed`, the
//! counters, the VU gauges), each with its type, what it contains, its values and its
//! thresholds. Computed once from the [`Summary`]; every k6-shaped output renders it.

use contract::threshold::{Aggregation, Judged};

use super::Summary;
use crate::summary_options::TrendStat;
use crate::trends::{Trend, TrendSet};

/// A metric's kind, as k6 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `counter`: `count`, `rate` (per second).
    Counter,
    /// `gauge`: `value`, `min`, `max`.
    Gauge,
    /// `rate`: `rate` (or `value`), `passes`, `fails`.
    Rate,
    /// `trend`: the summary's trend statistics.
    Trend,
}

impl Kind {
    /// k6's word.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Rate => "rate",
            Kind::Trend => "trend",
        }
    }
}

/// What a metric's values are: plain numbers, times (ms) or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contains {
    /// `default`.
    Default,
    /// `time`, in milliseconds.
    Time,
    /// `data`, in bytes.
    Data,
}

impl Contains {
    /// k6's word.
    pub fn name(self) -> &'static str {
        match self {
            Contains::Default => "default",
            Contains::Time => "time",
            Contains::Data => "data",
        }
    }
}

/// One metric as k6 reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Its name (`http_req_duration{expected_response:true}` for the submetric).
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// What its values are.
    pub contains: Contains,
    /// Its values in k6's order: the trend statistics, `count` and `rate`, `rate` `passes`
    /// `fails`, or `value` `min` `max`.
    pub values: Vec<(String, f64)>,
    /// Its thresholds.
    pub thresholds: Vec<Judged>,
}

impl Metric {
    /// The value named `key`.
    pub fn value(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

impl Summary {
    /// Every metric k6 writes for this run, in k6's order (by name).
    pub fn k6_metrics(&self) -> Vec<Metric> {
        let s = &self.stats;
        let mut metrics = Vec::new();
        let (passes, fails) = self.checks();
        metrics.push(self.metric("checks", Kind::Rate, Contains::Default, rate(passes, fails)));
        let counter = |n: u64| {
            vec![
                ("count".into(), n as f64),
                ("rate".into(), self.per_second(n)),
            ]
        };
        metrics.push(self.metric(
            "data_received",
            Kind::Counter,
            Contains::Data,
            counter(s.bytes_received),
        ));
        metrics.push(self.metric(
            "data_sent",
            Kind::Counter,
            Contains::Data,
            counter(s.bytes_sent),
        ));
        if let Some(dropped) = self.dropped.filter(|d| *d > 0) {
            metrics.push(self.metric(
                "dropped_iterations",
                Kind::Counter,
                Contains::Default,
                counter(dropped),
            ));
        }
        let all = self.all_trends();
        let expected = self.expected_trends();
        for trend in Trend::ALL {
            if all.requests() == 0 {
                break;
            }
            if trend == Trend::Iteration {
                continue;
            }
            metrics.push(self.trend(trend.name(), &all, trend));
            if trend == Trend::Duration {
                if let Some(expected) = &expected {
                    metrics.push(self.trend(
                        "http_req_duration{expected_response:true}",
                        expected,
                        trend,
                    ));
                }
            }
        }
        if s.requests > 0 {
            metrics.push(self.metric(
                "http_req_failed",
                Kind::Rate,
                Contains::Default,
                rate(s.http_failed, s.requests - s.http_failed),
            ));
        }
        metrics.push(self.metric(
            "http_reqs",
            Kind::Counter,
            Contains::Default,
            counter(s.requests),
        ));
        if all.requests() > 0 {
            metrics.push(self.trend(Trend::Iteration.name(), &all, Trend::Iteration));
        }
        metrics.push(self.metric(
            "iterations",
            Kind::Counter,
            Contains::Default,
            counter(s.requests),
        ));
        let gauge = |value: u64, min: u64, max: u64| {
            vec![
                ("value".into(), value as f64),
                ("min".into(), min as f64),
                ("max".into(), max as f64),
            ]
        };
        metrics.push(self.metric(
            "vus",
            Kind::Gauge,
            Contains::Default,
            gauge(self.vus_seen.1, self.vus_seen.0, self.vus_seen.1),
        ));
        metrics.push(self.metric(
            "vus_max",
            Kind::Gauge,
            Contains::Default,
            gauge(self.vus_max, self.vus_max, self.vus_max),
        ));
        metrics.sort_by(|a, b| a.name.cmp(&b.name));
        metrics
    }

    fn trend(&self, name: &str, set: &TrendSet, trend: Trend) -> Metric {
        let values = self
            .trend_stats
            .iter()
            .map(|stat| {
                let value = match stat {
                    TrendStat::Avg => Summary::trend_ms(set, trend, Aggregation::Avg),
                    TrendStat::Min => Summary::trend_ms(set, trend, Aggregation::Min),
                    TrendStat::Med => Summary::trend_ms(set, trend, Aggregation::Med),
                    TrendStat::Max => Summary::trend_ms(set, trend, Aggregation::Max),
                    TrendStat::Count => Some(set.get(trend).len() as f64),
                    TrendStat::Percentile(p) => {
                        Summary::trend_ms(set, trend, Aggregation::Percentile(*p))
                    }
                };
                (stat.name(), value.unwrap_or(0.0))
            })
            .collect();
        self.metric(name, Kind::Trend, Contains::Time, values)
    }

    fn metric(
        &self,
        name: &str,
        kind: Kind,
        contains: Contains,
        values: Vec<(String, f64)>,
    ) -> Metric {
        let thresholds = self
            .thresholds
            .iter()
            .filter(|j| j.threshold.metric == name)
            .cloned()
            .collect();
        Metric {
            name: name.to_owned(),
            kind,
            contains,
            values,
            thresholds,
        }
    }
}

/// A rate's values: the fraction of true samples, how many were true and how many false.
fn rate(yes: u64, no: u64) -> Vec<(String, f64)> {
    let total = yes + no;
    let fraction = if total == 0 {
        0.0
    } else {
        yes as f64 / total as f64
    };
    vec![
        ("rate".into(), fraction),
        ("passes".into(), yes as f64),
        ("fails".into(), no as f64),
    ]
}

/// A number as k6 (Go's JSON) writes it: a whole number without a fraction (`14292`, not
/// `14292.0`), anything else as a float; NaN and infinities, which JSON cannot hold, as 0.
pub fn number(value: f64) -> serde_json::Value {
    if !value.is_finite() {
        return serde_json::Value::from(0);
    }
    if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 {
        return serde_json::Value::from(value as i64);
    }
    serde_json::Number::from_f64(value)
        .map_or(serde_json::Value::from(0), serde_json::Value::Number)
}

/// The id k6 gives a group or a check: the MD5 of its path, in hex.
pub fn id(path: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(path.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_go_writes_them() {
        assert_eq!(number(14292.0).to_string(), "14292");
        assert_eq!(number(0.0).to_string(), "0");
        assert_eq!(number(46.07).to_string(), "46.07");
        assert_eq!(number(f64::NAN).to_string(), "0");
    }

    #[test]
    fn ids_are_the_md5_of_the_path_as_in_k6() {
        // Read off k6 1.1.0's summary export.
        assert_eq!(id(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(id("::status is 200"), "6210a8cd14cd70477eba5c5e4cb3fb5f");
        assert_eq!(id("::duration < 4s"), "33029669f829dc4851526a250cb50693");
    }
}
