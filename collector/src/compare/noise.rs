//! How sure a number is: a 95 % interval for each number a comparison reads, within one run
//! (from the run's own samples) and across runs (from their spread).
//!
//! - A percentile from the bucket histogram: the nearest-rank order statistic's distribution-free
//!   interval (ranks `n·q ± 1.96·√(n·q·(1−q))`, read as the buckets' representatives), plus the
//!   bucket's resolution: its representative is within `(upper − lower)/(upper + lower)` (under
//!   2 %) of any value in it. Resolution is a bound, not a random error, so a difference's noise
//!   adds both sides' resolutions to its statistical part (`√(s_b² + s_c²) + r_b + r_c`).
//!   Fewer than 5 samples on either side of the percentile: inconclusive.
//! - The mean: `1.96 · s/√n`, `s` from the buckets; below 30 requests, inconclusive.
//! - Throughput (loops per second over the active window): `1.96 · s/√k` over the `k` seconds'
//!   counts; below 5 seconds, inconclusive.
//! - Several runs on a side: their mean, with a half-width of `√(within² + between²)`, where
//!   `within` is the runs' own half-widths combined (`√Σh²/k`) and `between` is
//!   `t(k−1) · s/√k` over the runs' values (Student's t, 95 %).

use contract::buckets::LatencyHistogram;

/// One number with its 95 % half-width.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The value.
    pub value: f64,
    /// Half the width of its 95 % interval from sampling (same unit).
    pub half_width: f64,
    /// How far the value may be from the truth by the buckets' resolution alone (same unit).
    pub resolution: f64,
}

impl Estimate {
    fn sampled(value: f64, half_width: f64) -> Estimate {
        Estimate {
            value,
            half_width,
            resolution: 0.0,
        }
    }

    /// The whole uncertainty: sampling and resolution.
    pub fn uncertainty(&self) -> f64 {
        self.half_width + self.resolution
    }
}

/// The 95 % half-width of `candidate − base`.
pub fn difference_noise(base: &Estimate, candidate: &Estimate) -> f64 {
    (base.half_width.powi(2) + candidate.half_width.powi(2)).sqrt()
        + base.resolution
        + candidate.resolution
}

/// Why a number cannot be compared.
pub type Inconclusive = String;

/// The `q`-th percentile (0..100) of `histogram`, with the larger side of its interval as the
/// half-width.
pub fn percentile(histogram: &LatencyHistogram, q: f64) -> Result<Estimate, Inconclusive> {
    let n = histogram.count() as f64;
    let p = q / 100.0;
    if n * p < 5.0 || n * (1.0 - p) < 5.0 {
        return Err(format!(
            "{} requests: fewer than 5 on a side of p({q})",
            histogram.count()
        ));
    }
    let bucket = histogram
        .bucket_at_rank(contract::buckets::nearest_rank(q, histogram.count()))
        .ok_or_else(|| "no requests".to_owned())?;
    let value = bucket.representative_ms();
    let spread = 1.96 * (n * p * (1.0 - p)).sqrt();
    let low_rank = ((n * p - spread).floor() as u64).max(1);
    let high_rank = ((n * p + spread).ceil() as u64).min(histogram.count());
    let at = |rank| {
        histogram
            .bucket_at_rank(rank)
            .map_or(value, |b| b.representative_ms())
    };
    let (lower, upper) = (bucket.lower_ms() as f64, bucket.upper_ms() as f64);
    Ok(Estimate {
        value,
        half_width: (value - at(low_rank)).max(at(high_rank) - value).max(0.0),
        resolution: value * (upper - lower) / (upper + lower).max(1.0),
    })
}

/// The exact `mean` of `count` requests, with the spread from `histogram`.
pub fn mean(mean: f64, count: u64, histogram: &LatencyHistogram) -> Result<Estimate, Inconclusive> {
    if count < 30 {
        return Err(format!("{count} requests: fewer than 30"));
    }
    let s = histogram.std_dev().unwrap_or(0.0);
    Ok(Estimate::sampled(mean, 1.96 * s / (count as f64).sqrt()))
}

/// The mean of per-second `counts` (seconds without a loop counted as 0).
pub fn per_second(counts: &[f64]) -> Result<Estimate, Inconclusive> {
    let k = counts.len();
    if k < 5 {
        return Err(format!("{k} seconds of loops: fewer than 5"));
    }
    let (value, s) = mean_and_sd(counts);
    Ok(Estimate::sampled(value, 1.96 * s / (k as f64).sqrt()))
}

fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let k = values.len() as f64;
    let mean = values.iter().sum::<f64>() / k;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0);
    (mean, var.sqrt())
}

/// Student's t, two-sided 95 %, for `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const TABLE: [f64; 10] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    ];
    match df {
        0 => f64::INFINITY,
        1..=10 => TABLE[df - 1],
        11..=30 => 2.1,
        _ => 1.96,
    }
}

/// Several runs' estimates of one number, as one: see the module's rule.
pub fn combine(runs: &[Estimate]) -> Estimate {
    if runs.len() == 1 {
        return runs[0];
    }
    let k = runs.len() as f64;
    let values: Vec<f64> = runs.iter().map(|e| e.value).collect();
    let (value, s) = mean_and_sd(&values);
    let within = runs
        .iter()
        .map(|e| e.half_width.powi(2))
        .sum::<f64>()
        .sqrt()
        / k;
    let between = t95(runs.len() - 1) * s / k.sqrt();
    Estimate {
        value,
        half_width: (within.powi(2) + between.powi(2)).sqrt(),
        resolution: runs.iter().map(|e| e.resolution).sum::<f64>() / k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentile_interval_narrows_with_more_requests() {
        let mut small = LatencyHistogram::new();
        let mut large = LatencyHistogram::new();
        for i in 0..1_000 {
            small.record(100 + i % 100);
            for _ in 0..100 {
                large.record(100 + i % 100);
            }
        }
        let a = percentile(&small, 50.0).unwrap();
        let b = percentile(&large, 50.0).unwrap();
        assert!((a.value - 150.0).abs() <= 3.0, "{a:?}");
        assert!(b.half_width < a.half_width, "{a:?} {b:?}");
        // However many samples, the bucket's resolution stays.
        assert!(
            b.resolution > 0.0 && b.resolution <= 0.019 * b.value,
            "{b:?}"
        );
    }

    #[test]
    fn too_few_requests_for_a_tail_percentile_is_inconclusive() {
        let mut h = LatencyHistogram::new();
        for i in 0..100 {
            h.record(i);
        }
        assert!(percentile(&h, 50.0).is_ok());
        assert!(percentile(&h, 99.0).unwrap_err().contains("fewer than 5"));
        assert!(mean(50.0, 20, &h).is_err());
        assert!(per_second(&[1.0, 2.0, 3.0]).is_err());
    }

    #[test]
    fn runs_that_disagree_widen_the_interval() {
        let tight = Estimate {
            value: 100.0,
            half_width: 1.0,
            resolution: 0.0,
        };
        let agree = combine(&[tight, tight, tight]);
        let disagree = combine(&[
            tight,
            Estimate {
                value: 120.0,
                ..tight
            },
            Estimate {
                value: 80.0,
                ..tight
            },
        ]);
        assert_eq!(agree.value, 100.0);
        assert!(agree.half_width < 1.0);
        assert_eq!(disagree.value, 100.0);
        // s = 20, t(2) = 4.303: 4.303 · 20 / √3 ≈ 49.7.
        assert!((disagree.half_width - 49.7).abs() < 0.5, "{disagree:?}");
    }
}
