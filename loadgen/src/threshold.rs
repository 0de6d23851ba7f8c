//! Thresholds in k6's syntax: `METRIC:AGGREGATION OP VALUE`, e.g. `http_req_duration:p(95)<500`.
//!
//! | metric | kind | aggregations |
//! | --- | --- | --- |
//! | `http_req_duration`, `iteration_duration` | trend (ms) | `avg` `min` `med` `max` `p(N)` |
//! | `http_req_failed`, `checks` | rate (0..1) | `rate` |
//! | `http_reqs`, `iterations`, `dropped_iterations` | counter | `count` `rate` (per second) |

use crate::error::ConfigError;

/// What a threshold is computed over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Median.
    Med,
    /// Maximum.
    Max,
    /// Percentile, 0..=100.
    Percentile(f64),
    /// Rate (fraction for rate metrics, per second for counters).
    Rate,
    /// Total.
    Count,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The text as given, for the summary.
    pub source: String,
    /// Metric name.
    pub metric: String,
    /// Aggregation.
    pub aggregation: Aggregation,
    /// Comparison.
    pub op: Op,
    /// Right-hand side.
    pub value: f64,
}

const TRENDS: [&str; 2] = ["http_req_duration", "iteration_duration"];
const RATES: [&str; 2] = ["http_req_failed", "checks"];
const COUNTERS: [&str; 3] = ["http_reqs", "iterations", "dropped_iterations"];

/// Anything thresholds can be evaluated against.
pub trait MetricSource {
    /// The value of `aggregation` over `metric`, if the run has it.
    fn aggregate(&self, metric: &str, aggregation: Aggregation) -> Option<f64>;
}

impl Threshold {
    /// Parses `METRIC:AGGREGATION OP VALUE`.
    pub fn parse(text: &str) -> Result<Threshold, ConfigError> {
        let fail = |reason: &str| ConfigError::Threshold {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (metric, expr) = text
            .split_once(':')
            .ok_or_else(|| fail("expected METRIC:EXPRESSION, e.g. http_req_duration:p(95)<500"))?;
        let metric = metric.trim();
        let expr: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
        let op_at = expr
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| fail("no comparison: use <, <=, >, >=, == or !="))?;
        let (aggregation, rest) = expr.split_at(op_at);
        let (op, value) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(symbol, op)| rest.strip_prefix(symbol).map(|v| (*op, v)))
        .ok_or_else(|| fail("no comparison: use <, <=, >, >=, == or !="))?;
        let value: f64 = value
            .parse()
            .map_err(|_| fail(&format!("{value:?} is not a number")))?;
        let aggregation = match aggregation {
            "avg" => Aggregation::Avg,
            "min" => Aggregation::Min,
            "med" => Aggregation::Med,
            "max" => Aggregation::Max,
            "rate" => Aggregation::Rate,
            "count" => Aggregation::Count,
            p if p.starts_with("p(") && p.ends_with(')') => {
                let n: f64 = p[2..p.len() - 1]
                    .parse()
                    .map_err(|_| fail(&format!("{p:?} is not a percentile like p(95)")))?;
                if !(0.0..=100.0).contains(&n) {
                    return Err(fail("a percentile is between p(0) and p(100)"));
                }
                Aggregation::Percentile(n)
            }
            other => return Err(fail(&format!("unknown aggregation {other:?}"))),
        };
        let allowed = if TRENDS.contains(&metric) {
            matches!(
                aggregation,
                Aggregation::Avg
                    | Aggregation::Min
                    | Aggregation::Med
                    | Aggregation::Max
                    | Aggregation::Percentile(_)
            )
        } else if RATES.contains(&metric) {
            aggregation == Aggregation::Rate
        } else if COUNTERS.contains(&metric) {
            matches!(aggregation, Aggregation::Count | Aggregation::Rate)
        } else {
            return Err(fail(&format!(
                "unknown metric {metric:?}; known: {}",
                [&TRENDS[..], &RATES[..], &COUNTERS[..]].concat().join(", ")
            )));
        };
        if !allowed {
            return Err(fail(&format!("{metric} has no such aggregation")));
        }
        Ok(Threshold {
            source: text.trim().to_owned(),
            metric: metric.to_owned(),
            aggregation,
            op,
            value,
        })
    }

    /// Whether the run passes this threshold, and the value it was judged on. A metric the run
    /// has no data for (no request at all) fails.
    pub fn evaluate(&self, source: &impl MetricSource) -> (bool, Option<f64>) {
        match source.aggregate(&self.metric, self.aggregation) {
            Some(actual) => (self.op.holds(actual, self.value), Some(actual)),
            None => (false, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl MetricSource for Fixed {
        fn aggregate(&self, metric: &str, aggregation: Aggregation) -> Option<f64> {
            match (metric, aggregation) {
                ("http_req_duration", Aggregation::Percentile(95.0)) => Some(420.0),
                ("http_req_failed", Aggregation::Rate) => Some(0.02),
                _ => None,
            }
        }
    }

    #[test]
    fn parses_k6_syntax() {
        let t = Threshold::parse("http_req_duration: p(95) < 500").unwrap();
        assert_eq!(
            (t.aggregation, t.op, t.value),
            (Aggregation::Percentile(95.0), Op::Lt, 500.0)
        );
        let t = Threshold::parse("http_req_failed:rate<=0.01").unwrap();
        assert_eq!((t.aggregation, t.op), (Aggregation::Rate, Op::Le));
        assert_eq!(Threshold::parse("http_reqs:count>=100").unwrap().op, Op::Ge);
        assert_eq!(Threshold::parse("checks:rate==1").unwrap().op, Op::Eq);
        assert_eq!(
            Threshold::parse("http_req_duration:p(99.9)<2000")
                .unwrap()
                .aggregation,
            Aggregation::Percentile(99.9)
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        for (text, reason) in [
            ("p(95)<500", "expected METRIC:EXPRESSION"),
            ("http_req_duration:p(95)", "no comparison"),
            ("http_req_duration:p(95)<fast", "is not a number"),
            ("http_req_duration:p(x)<1", "not a percentile"),
            ("http_req_duration:p(101)<1", "between p(0) and p(100)"),
            ("http_req_duration:rate<1", "has no such aggregation"),
            ("http_req_failed:avg<1", "has no such aggregation"),
            ("latency:avg<1", "unknown metric"),
            ("http_reqs:sum>1", "unknown aggregation"),
        ] {
            let err = Threshold::parse(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn evaluates_and_fails_without_data() {
        assert_eq!(
            Threshold::parse("http_req_duration:p(95)<500")
                .unwrap()
                .evaluate(&Fixed),
            (true, Some(420.0))
        );
        assert_eq!(
            Threshold::parse("http_req_failed:rate<0.01")
                .unwrap()
                .evaluate(&Fixed),
            (false, Some(0.02))
        );
        assert_eq!(
            Threshold::parse("http_req_duration:avg<500")
                .unwrap()
                .evaluate(&Fixed),
            (false, None)
        );
    }
}
