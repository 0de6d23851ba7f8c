//! Thresholds in k6's syntax, `METRIC:AGGREGATION OP VALUE` (e.g. `http_req_duration:p(95)<500`):
//! the syntax, and checking a threshold against the metrics a tool offers. loadgen judges its
//! HTTP metrics with it, the collector the pipeline's.

use std::fmt;

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
    /// A gauge's value.
    Value,
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
    /// Whether `left OP right`.
    pub fn holds(self, left: f64, right: f64) -> bool {
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

/// What kind of metric a name is, which says which aggregations it has (k6's kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Values with a distribution: `avg` `min` `med` `max` `p(N)`.
    Trend,
    /// A fraction: `rate`.
    Rate,
    /// A count: `count` and `rate` (per second).
    Counter,
    /// One value: `value`.
    Gauge,
}

impl Kind {
    fn allows(self, aggregation: Aggregation) -> bool {
        match self {
            Kind::Trend => matches!(
                aggregation,
                Aggregation::Avg
                    | Aggregation::Min
                    | Aggregation::Med
                    | Aggregation::Max
                    | Aggregation::Percentile(_)
            ),
            Kind::Rate => aggregation == Aggregation::Rate,
            Kind::Counter => matches!(aggregation, Aggregation::Count | Aggregation::Rate),
            Kind::Gauge => aggregation == Aggregation::Value,
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

/// Why a threshold does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError {
    /// The text as given.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "threshold {:?}: {}", self.text, self.reason)
    }
}

impl std::error::Error for ThresholdError {}

/// Anything thresholds can be evaluated against.
pub trait MetricSource {
    /// The value of `aggregation` over `metric`, if the run has it.
    fn aggregate(&self, metric: &str, aggregation: Aggregation) -> Option<f64>;
}

impl Threshold {
    /// Parses `METRIC:AGGREGATION OP VALUE` against the metrics on offer, `(name, kind)`.
    pub fn parse(text: &str, metrics: &[(&str, Kind)]) -> Result<Threshold, ThresholdError> {
        let fail = |reason: &str| ThresholdError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let example = metrics.first().map_or("metric", |m| m.0);
        let (metric, expr) = text.split_once(':').ok_or_else(|| {
            fail(&format!(
                "expected METRIC:EXPRESSION, e.g. {example}:p(95)<500"
            ))
        })?;
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
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| fail(&format!("{value:?} is not a finite number")))?;
        let aggregation = if let Some(n) = percentile(aggregation) {
            Aggregation::Percentile(n.map_err(|e| fail(&e))?)
        } else {
            match aggregation {
                "avg" => Aggregation::Avg,
                "min" => Aggregation::Min,
                "med" => Aggregation::Med,
                "max" => Aggregation::Max,
                "rate" => Aggregation::Rate,
                "count" => Aggregation::Count,
                "value" => Aggregation::Value,
                other => return Err(fail(&format!("unknown aggregation {other:?}"))),
            }
        };
        let Some((_, kind)) = metrics.iter().find(|(name, _)| *name == metric) else {
            let known: Vec<&str> = metrics.iter().map(|m| m.0).collect();
            return Err(fail(&format!(
                "unknown metric {metric:?}; known: {}",
                known.join(", ")
            )));
        };
        if !kind.allows(aggregation) {
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

    /// The expression without its metric, as k6 keys a threshold (`p(95)<500`).
    pub fn expression(&self) -> &str {
        self.source
            .split_once(':')
            .map_or(self.source.as_str(), |(_, e)| e)
            .trim()
    }

    /// Judges this threshold against a run's metrics. A metric the run has no data for fails.
    pub fn judge(&self, source: &impl MetricSource) -> Judged {
        let value = source.aggregate(&self.metric, self.aggregation);
        Judged {
            threshold: self.clone(),
            passed: value.is_some_and(|actual| self.op.holds(actual, self.value)),
            value,
        }
    }
}

/// One threshold, judged: whether it held and the value it was judged on. loadgen's summaries
/// (k6's shapes), the collector's stats and `wait` all carry this one type.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// The threshold.
    pub threshold: Threshold,
    /// Whether it held.
    pub passed: bool,
    /// The value it was judged on (`None`: no data, which fails).
    pub value: Option<f64>,
}

/// In JSON, as the collector's `--json` writes it: `{"threshold": "latency:p(99)<500",
/// "passed": true, "value": 218.9}`.
impl serde::Serialize for Judged {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut judged = serializer.serialize_struct("Judged", 3)?;
        judged.serialize_field("threshold", &self.threshold.source)?;
        judged.serialize_field("passed", &self.passed)?;
        judged.serialize_field("value", &self.value)?;
        judged.end()
    }
}

/// Whether every one held.
pub fn all_passed(judged: &[Judged]) -> bool {
    judged.iter().all(|j| j.passed)
}

/// One judged line as the terminal shows it: `  ✓ WHAT (SAID)`, `✗` when it did not hold. The
/// collector's thresholds and `collector compare`'s gates print this way.
pub fn line(passed: bool, what: &str, said: &str) -> String {
    let mark = if passed { '✓' } else { '✗' };
    format!("  {mark} {what} ({said})\n")
}

/// Thresholds as the collector prints them: `✓ latency:p(99)<500 (was 218.9)`, under a heading;
/// nothing when there are none.
pub fn render(judged: &[Judged]) -> String {
    if judged.is_empty() {
        return String::new();
    }
    let mut text = String::from("\nthresholds:\n");
    for j in judged {
        let was = j.value.map_or("no data".to_owned(), format_value);
        text.push_str(&line(j.passed, &j.threshold.source, &format!("was {was}")));
    }
    text
}

/// Reads `p(N)`, a percentile from 0 to 100: `None` when `text` is not of that form, an error
/// when N is not such a number.
pub fn percentile(text: &str) -> Option<Result<f64, String>> {
    let inner = text.strip_prefix("p(")?.strip_suffix(')')?;
    Some(match inner.parse::<f64>() {
        Ok(n) if (0.0..=100.0).contains(&n) => Ok(n),
        Ok(_) => Err(format!("{text:?}: a percentile is between p(0) and p(100)")),
        Err(_) => Err(format!("{text:?} is not a percentile like p(95)")),
    })
}

/// k6's way of printing a number in a threshold line: at most two decimals, trailing zeros off.
pub fn format_value(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl MetricSource for Fixed {
        fn aggregate(&self, metric: &str, _: Aggregation) -> Option<f64> {
            (metric == "latency").then_some(218.94)
        }
    }

    const METRICS: [(&str, Kind); 2] = [("latency", Kind::Trend), ("lost", Kind::Counter)];

    #[test]
    fn judged_thresholds_render_and_serialise_as_given() {
        let judged: Vec<Judged> = ["latency:p(99)<500", "latency: max < 100", "lost:count==0"]
            .iter()
            .map(|t| Threshold::parse(t, &METRICS).unwrap().judge(&Fixed))
            .collect();
        assert!(!all_passed(&judged));
        assert_eq!(
            render(&judged),
            "\nthresholds:\n  ✓ latency:p(99)<500 (was 218.94)\n  \
             ✗ latency: max < 100 (was 218.94)\n  ✗ lost:count==0 (was no data)\n"
        );
        assert_eq!(judged[1].threshold.expression(), "max < 100");
        assert_eq!(
            serde_json::to_value(&judged[0]).unwrap(),
            serde_json::json!({"threshold": "latency:p(99)<500", "passed": true, "value": 218.94})
        );
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn percentiles_are_read_once_for_thresholds_and_trend_statistics() {
        assert_eq!(percentile("p(99.9)"), Some(Ok(99.9)));
        assert_eq!(percentile("avg"), None);
        assert!(percentile("p(101)")
            .unwrap()
            .unwrap_err()
            .contains("between p(0) and p(100)"));
        assert!(percentile("p(x)")
            .unwrap()
            .unwrap_err()
            .contains("not a percentile"));
        let err = Threshold::parse("latency:p(101)<5", &METRICS).unwrap_err();
        assert!(err.reason.contains("between p(0) and p(100)"), "{err}");
    }
}
