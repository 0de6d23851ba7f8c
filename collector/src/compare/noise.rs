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
//! - Several runs on a side: their mean, with a standard error of `√(within² + s²/k)`, where
//!   `within` is the runs' own standard errors combined (`√Σse²/k`) and `s` the spread of the
//!   runs' values (on `k − 1` degrees of freedom, combined by Satterthwaite).
//! - A difference: `t(df) · √(se_b² + se_c²)` plus both resolutions. With two or more runs on
//!   each side, the run-to-run spread is the machine's, the same for both sides, so it is pooled
//!   over both (Student's two-sample t on `k_b + k_c − 2` degrees of freedom); with one run on a
//!   side, Welch–Satterthwaite degrees of freedom (normal for one run against one).

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
    /// Degrees of freedom of the sampling part (infinite within one run).
    #[serde(skip)]
    pub df: f64,
}

impl Estimate {
    /// A value with a normal 95 % half-width and no resolution limit.
    pub fn sampled(value: f64, half_width: f64) -> Estimate {
        Estimate {
            value,
            half_width,
            resolution: 0.0,
            df: f64::INFINITY,
        }
    }

    /// The standard error of the sampling part.
    fn se(&self) -> f64 {
        self.half_width / t95(self.df)
    }

    /// The whole uncertainty: sampling and resolution.
    pub fn uncertainty(&self) -> f64 {
        self.half_width + self.resolution
    }
}

/// The 95 % half-width of `candidate − base` (Welch, plus both resolutions).
pub fn difference_noise(base: &Estimate, candidate: &Estimate) -> f64 {
    let (vb, vc) = (base.se().powi(2), candidate.se().powi(2));
    let term = |v: f64, df: f64| if df.is_finite() { v * v / df } else { 0.0 };
    let denominator = term(vb, base.df) + term(vc, candidate.df);
    let df = if denominator > 0.0 {
        (vb + vc).powi(2) / denominator
    } else {
        f64::INFINITY
    };
    t95(df) * (vb + vc).sqrt() + base.resolution + candidate.resolution
}

/// Both sides of one number, and the noise of their difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compared {
    /// The base, over its runs.
    pub base: Estimate,
    /// The candidate, over its runs.
    pub candidate: Estimate,
    /// The 95 % half-width of `candidate − base`.
    pub noise: f64,
}

/// One number's runs on each side, compared (see the module's rule).
pub fn compare_runs(base: &[Estimate], candidate: &[Estimate]) -> Compared {
    if base.len() < 2 || candidate.len() < 2 {
        let (b, c) = (combine(base), combine(candidate));
        return Compared {
            base: b,
            candidate: c,
            noise: difference_noise(&b, &c),
        };
    }
    let spread = |runs: &[Estimate]| {
        let values: Vec<f64> = runs.iter().map(|e| e.value).collect();
        let (mean, s) = mean_and_sd(&values);
        (mean, s * s * (runs.len() - 1) as f64)
    };
    let within = |runs: &[Estimate]| {
        runs.iter().map(|e| e.se().powi(2)).sum::<f64>().sqrt() / runs.len() as f64
    };
    let (kb, kc) = (base.len() as f64, candidate.len() as f64);
    let ((mb, ssb), (mc, ssc)) = (spread(base), spread(candidate));
    let df = kb + kc - 2.0;
    let pooled = (ssb + ssc) / df;
    let t = t95(df);
    let side = |mean: f64, k: f64, runs: &[Estimate]| Estimate {
        value: mean,
        half_width: t * (pooled / k + within(runs).powi(2)).sqrt(),
        resolution: runs.iter().map(|e| e.resolution).sum::<f64>() / k,
        df,
    };
    let (b, c) = (side(mb, kb, base), side(mc, kc, candidate));
    let se =
        (pooled * (1.0 / kb + 1.0 / kc) + within(base).powi(2) + within(candidate).powi(2)).sqrt();
    Compared {
        base: b,
        candidate: c,
        noise: t * se + b.resolution + c.resolution,
    }
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
        df: f64::INFINITY,
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

/// Student's t, two-sided 95 %, for `df` degrees of freedom (rounded down; infinite: normal).
fn t95(df: f64) -> f64 {
    const TABLE: [f64; 10] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    ];
    if !df.is_finite() || df > 30.0 {
        return 1.96;
    }
    // Rounding error must not turn 1 degree of freedom into 0.
    match (df + 1e-9).floor().max(1.0) as usize {
        0 => f64::INFINITY,
        d @ 1..=10 => TABLE[d - 1],
        _ => 2.1,
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
    let within = runs.iter().map(|e| e.se().powi(2)).sum::<f64>().sqrt() / k;
    let between = s * s / k;
    let se = (within.powi(2) + between).sqrt();
    // Satterthwaite: the within-run part is known (infinite degrees of freedom), the spread of
    // the runs has k − 1.
    let df = if between > 0.0 {
        se.powi(4) / (between * between / (k - 1.0))
    } else {
        f64::INFINITY
    };
    Estimate {
        value,
        half_width: t95(df) * se,
        resolution: runs.iter().map(|e| e.resolution).sum::<f64>() / k,
        df,
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
        let tight = Estimate::sampled(100.0, 1.0);
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
        // s = 20, t(2) = 4.303: 4.303 · 20 / √3 ≈ 49.7 (the runs' own 1s add a little).
        assert!((disagree.half_width - 49.7).abs() < 0.5, "{disagree:?}");
        // Welch: two sides of three such runs, df = 4: 2.776 · √(2 · 20²/3) ≈ 45.3.
        let noise = difference_noise(&disagree, &disagree);
        assert!((noise - 45.3).abs() < 0.5, "{noise}");
        // Pooled over both sides' runs, df = 4: the same here, since the spreads are equal.
        let runs = [
            tight,
            Estimate::sampled(120.0, 1.0),
            Estimate::sampled(80.0, 1.0),
        ];
        let pooled = compare_runs(&runs, &runs);
        assert!((pooled.noise - 45.3).abs() < 0.5, "{pooled:?}");
    }
}
