//! pandas' `Series.describe(percentiles=[.9, .95, .99])`, reproduced: count, mean, sample
//! standard deviation (ddof 1), min, 50 %, 90 %, 95 %, 99 %, max, with percentiles by linear
//! interpolation between closest ranks (numpy's default).

use serde::Serialize;

/// The describe table of one series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Describe {
    /// Values.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation; `None` (pandas' NaN) for one value.
    pub std: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Median.
    #[serde(rename = "50%")]
    pub p50: f64,
    /// 90th percentile.
    #[serde(rename = "90%")]
    pub p90: f64,
    /// 95th percentile.
    #[serde(rename = "95%")]
    pub p95: f64,
    /// 99th percentile.
    #[serde(rename = "99%")]
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

/// Describes `values` (NaNs left out, as pandas does); `None` when nothing is left.
pub fn describe(values: &[f64]) -> Option<Describe> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let std = (n > 1).then(|| {
        let squares: f64 = sorted.iter().map(|v| (v - mean) * (v - mean)).sum();
        (squares / (n - 1) as f64).sqrt()
    });
    Some(Describe {
        count: n as u64,
        mean,
        std,
        min: sorted[0],
        p50: quantile(&sorted, 0.5),
        p90: quantile(&sorted, 0.9),
        p95: quantile(&sorted, 0.95),
        p99: quantile(&sorted, 0.99),
        max: sorted[n - 1],
    })
}

/// The `q`-quantile of sorted values, interpolated linearly: position `(n - 1) q`.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = (sorted.len() - 1) as f64 * q;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    // Expected values are pandas 2.x's `pd.Series(v).describe(percentiles=[.9, .95, .99])`.
    #[test]
    fn matches_pandas_on_known_vectors() {
        let d = describe(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((d.count, d.mean, d.min, d.max), (4, 2.5, 1.0, 4.0));
        assert!(close(d.std.unwrap(), 1.2909944487358056));
        assert!(close(d.p50, 2.5) && close(d.p90, 3.7) && close(d.p95, 3.85) && close(d.p99, 3.97));

        // Odd count, ties.
        let d = describe(&[5.0, 1.0, 5.0, 3.0, 5.0]).unwrap();
        assert_eq!((d.count, d.mean, d.p50), (5, 3.8, 5.0));
        assert!(close(d.std.unwrap(), 1.7888543819998317));
        assert!(close(d.p90, 5.0) && close(d.p99, 5.0));

        // One row: std is NaN, every percentile the value.
        let d = describe(&[42.0]).unwrap();
        assert_eq!(d.std, None);
        assert_eq!((d.min, d.p50, d.p99, d.max), (42.0, 42.0, 42.0, 42.0));

        // NaN is left out; empty is nothing.
        assert_eq!(describe(&[f64::NAN, 2.0]).unwrap().count, 1);
        assert_eq!(describe(&[]), None);
    }
}
