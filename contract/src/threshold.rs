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
        let aggregation = match aggregation {
            "avg" => Aggregation::Avg,
            "min" => Aggregation::Min,
            "med" => Aggregation::Med,
            "max" => Aggregation::Max,
            "rate" => Aggregation::Rate,
            "count" => Aggregation::Count,
            "value" => Aggregation::Value,
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

    /// Whether the run passes this threshold, and the value it was judged on. A metric the run
    /// has no data for fails.
    pub fn evaluate(&self, source: &impl MetricSource) -> (bool, Option<f64>) {
        match source.aggregate(&self.metric, self.aggregation) {
            Some(actual) => (self.op.holds(actual, self.value), Some(actual)),
            None => (false, None),
        }
    }
}

/// k6's way of printing a number in a threshold line: at most two decimals, trailing zeros off.
pub fn format_value(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
