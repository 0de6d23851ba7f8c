//! The CI gate on a comparison: `--fail-if-slower METRIC=PERCENT` (e.g.
//! `latency:p(99)=10%`, `loops_per_s:value=5%`) fails when that row got slower by more than
//! PERCENT *and* beyond the noise. An inconclusive row does not fail the gate; it is said so.

use serde::Serialize;

use super::{Comparison, Verdict};

/// One gate: a row's metric and the most it may get slower, percent.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The row, in threshold spelling.
    pub metric: String,
    /// Percent.
    pub percent: f64,
}

/// The rows a gate may name.
pub fn metrics() -> Vec<String> {
    super::readings().into_iter().map(|r| r.metric).collect()
}

/// Parses `METRIC=PERCENT` (the `%` optional); clap's value parser.
pub fn parse(text: &str) -> Result<Gate, String> {
    let (metric, percent) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not METRIC=PERCENT, e.g. latency:p(99)=10%"))?;
    let percent: f64 = percent
        .trim()
        .trim_end_matches('%')
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| format!("{text:?}: {percent:?} is not a percentage from 0 up"))?;
    let known = metrics();
    let metric = metric.trim();
    if !known.iter().any(|m| m == metric) {
        return Err(format!(
            "{text:?}: unknown metric {metric:?}; known: {}",
            known.join(", ")
        ));
    }
    Ok(Gate {
        metric: metric.to_owned(),
        percent,
    })
}

/// One gate, judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judged {
    /// The gate as given.
    pub gate: String,
    /// Whether it held.
    pub passed: bool,
    /// What the row said.
    pub said: String,
}

/// Judges each gate against `comparison`.
pub fn judge(gates: &[Gate], comparison: &Comparison) -> Vec<Judged> {
    gates
        .iter()
        .map(|gate| {
            let row = comparison.rows.iter().find(|r| r.metric == gate.metric);
            let (passed, said) = match row {
                None => (false, "no such row".to_owned()),
                Some(row) => {
                    // Slower is a rise for latency and loss, a fall for throughput: the size of
                    // the change either way.
                    let change = row.change_pct.map_or(0.0, f64::abs);
                    let slower = row.verdict == Verdict::Slower;
                    let said = match (row.change_pct, row.noise_pct) {
                        (Some(c), Some(n)) => format!("{c:+.1}% ± {n:.1}%: {}", row.verdict.text()),
                        _ => row.verdict.text(),
                    };
                    (!(slower && change > gate.percent), said)
                }
            };
            Judged {
                gate: format!("{} slower by at most {}%", gate.metric, gate.percent),
                passed,
                said,
            }
        })
        .collect()
}
