//! The paired comparison (`collector compare --paired`): runs made as pairs, the base's i-th run
//! beside the candidate's i-th, minutes apart on the same machine (`make ab`). Each number is
//! judged on the pairs' relative differences, `c_i / b_i − 1`, so that the machine's drift from
//! pair to pair, which moves both runs of a pair alike, cancels.
//!
//! For `n` pairs with differences of mean `d` and standard deviation `s`:
//! - the change is `d` (percent of the base), its 95 % interval `d ± (t(0.975, n−1) · s/√n + r)`,
//!   where `r` is the buckets' resolution (a percentile's bucket representative is within it of
//!   the true value, on each side: a bound, not a random error, so it is added, as in the
//!   unpaired comparison; without it, a few pairs whose percentiles fall in the same 1 ms
//!   buckets would show no spread and call any difference significant; latencies are whole
//!   milliseconds, so `r` is at least what half a millisecond on each side makes of the ratio);
//! - the verdict is `slower` or `faster` when the interval excludes 0, else `no significant
//!   change`;
//! - the minimum detectable effect, the smallest change this design finds 80 % of the time, is
//!   `(t(0.975, n−1) + t(0.80, n−1)) · s/√n + r`.
//!
//! A pair whose runs lost requests, ended over-counted or did not complete is dropped and named:
//! a number from a run that lost data is not compared.

use contract::export::{LatencyExport, WaitState};

use super::noise::{self, Estimate};
use super::{readings, Comparison, Row, Side, Verdict};

/// Student's t quantiles for `df` degrees of freedom: two-sided 95 % and one-sided 80 %.
pub fn t_quantiles(df: usize) -> (f64, f64) {
    const T975: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    const T80: [f64; 30] = [
        1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879, 0.876, 0.873, 0.870,
        0.868, 0.866, 0.865, 0.863, 0.862, 0.861, 0.860, 0.859, 0.858, 0.858, 0.857, 0.856, 0.856,
        0.855, 0.855, 0.854, 0.854,
    ];
    match df {
        0 => (f64::INFINITY, f64::INFINITY),
        1..=30 => (T975[df - 1], T80[df - 1]),
        31..=60 => (2.00, 0.848),
        _ => (1.96, 0.842),
    }
}

/// One number over the pairs: the mean relative change, its 95 % half-width and the minimum
/// detectable effect (all fractions of the base), or why there is none.
pub fn judge_pairs(base: &[Estimate], candidate: &[Estimate]) -> Result<(f64, f64, f64), String> {
    let pairs: Vec<(&Estimate, &Estimate)> = base
        .iter()
        .zip(candidate)
        .filter(|(b, c)| b.value > 0.0 && c.value > 0.0)
        .collect();
    let ratios: Vec<f64> = pairs.iter().map(|(b, c)| c.value / b.value - 1.0).collect();
    let n = ratios.len();
    if n < 2 {
        return Err(format!(
            "{n} pair with a base above 0: no spread to judge by"
        ));
    }
    let mean = ratios.iter().sum::<f64>() / n as f64;
    let sd = (ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt();
    let se = sd / (n as f64).sqrt();
    let (t975, t80) = t_quantiles(n - 1);
    // How far each pair's ratio may be off by the buckets' resolution alone, on average.
    let resolution = pairs
        .iter()
        .map(|(b, c)| {
            let ratio = c.value / b.value;
            let high = if b.value > b.resolution {
                (c.value + c.resolution) / (b.value - b.resolution) - ratio
            } else {
                f64::INFINITY
            };
            let low = ratio - (c.value - c.resolution) / (b.value + b.resolution);
            high.max(low)
        })
        .sum::<f64>()
        / n as f64;
    Ok((mean, t975 * se + resolution, (t975 + t80) * se + resolution))
}

/// Why a run cannot be compared, if it cannot.
fn unfit(export: &LatencyExport) -> Option<String> {
    let run = contract::run::Run::new(export, None, None);
    match run.loss() {
        contract::run::Loss::Known(0) | contract::run::Loss::NoAcceptedCount => {}
        contract::run::Loss::Known(lost) => return Some(format!("lost {lost}")),
        unknown => return Some(format!("lost {}", unknown.short())),
    }
    (export.run.state != WaitState::Complete)
        .then(|| format!("ended {}", crate::stats::state_text(export.run.state)))
}

/// Compares pairs: `base.exports[i]` with `candidate.exports[i]`. The sides must be as long.
pub fn compare_paired(base: &Side, candidate: &Side) -> Result<Comparison, String> {
    let n = base.exports.len();
    if n != candidate.exports.len() {
        return Err(format!(
            "--paired needs as many runs a side: {n} base, {} candidate",
            candidate.exports.len()
        ));
    }
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..n {
        let why = [
            (&base.files[i], &base.exports[i]),
            (&candidate.files[i], &candidate.exports[i]),
        ]
        .into_iter()
        .filter_map(|(file, export)| unfit(export).map(|why| format!("{file} {why}")))
        .collect::<Vec<_>>();
        if why.is_empty() {
            kept.push(i);
        } else {
            dropped.push(format!("pair {}: {}", i + 1, why.join(", ")));
        }
    }
    let rows = readings()
        .iter()
        .map(|reading| {
            let side = |s: &Side| -> Result<Vec<Estimate>, String> {
                kept.iter()
                    .map(|&i| (reading.read)(&s.exports[i]))
                    .collect()
            };
            let (b, c) = match (side(base), side(candidate)) {
                (Ok(b), Ok(c)) => (whole_ms(b, reading.unit), whole_ms(c, reading.unit)),
                (Err(why), _) => return inconclusive(reading, format!("base: {why}")),
                (_, Err(why)) => return inconclusive(reading, format!("candidate: {why}")),
            };
            let mut row = Row {
                metric: reading.metric.clone(),
                unit: reading.unit,
                base: (!b.is_empty()).then(|| noise::combine(&b)),
                candidate: (!c.is_empty()).then(|| noise::combine(&c)),
                change_pct: None,
                noise_pct: None,
                mde_pct: None,
                verdict: Verdict::NoSignificantChange,
            };
            if reading.exact {
                // Kept pairs lost nothing: an exact count has nothing to judge.
                return row;
            }
            match judge_pairs(&b, &c) {
                Ok((change, half, mde)) => {
                    row.change_pct = Some(change * 100.0);
                    row.noise_pct = Some(half * 100.0);
                    row.mde_pct = Some(mde * 100.0);
                    row.verdict = if change.abs() <= half {
                        Verdict::NoSignificantChange
                    } else if (change > 0.0) == reading.more_is_worse {
                        Verdict::Slower
                    } else {
                        Verdict::Faster
                    };
                }
                Err(why) => row.verdict = Verdict::Inconclusive(why),
            }
            row
        })
        .collect();
    Ok(Comparison {
        base: base.files.clone(),
        candidate: candidate.files.clone(),
        run_to_run: true,
        pairs: Some(kept.len()),
        dropped,
        rows,
    })
}

/// Latencies are whole milliseconds: a percentile of them is within half a millisecond of the
/// value it stands for at best, whatever its bucket.
fn whole_ms(runs: Vec<Estimate>, unit: &str) -> Vec<Estimate> {
    let floor = if unit == "ms" { 0.5 } else { 0.0 };
    runs.into_iter()
        .map(|e| Estimate {
            resolution: e.resolution.max(floor),
            ..e
        })
        .collect()
}

fn inconclusive(reading: &super::Reading, why: String) -> Row {
    Row {
        metric: reading.metric.clone(),
        unit: reading.unit,
        base: None,
        candidate: None,
        change_pct: None,
        noise_pct: None,
        mde_pct: None,
        verdict: Verdict::Inconclusive(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift, for repeatable noise.
    struct Rng(u64);

    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        /// A standard normal draw (Box-Muller).
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform().max(1e-12), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// `pairs` pairs on a drifting machine: each pair's level drifts by ±30 %, each run adds
    /// 3 % of its own noise, and the candidate is `effect` slower.
    fn trial(rng: &mut Rng, pairs: usize, effect: f64) -> (Vec<f64>, Vec<f64>) {
        (0..pairs)
            .map(|_| {
                let level = 100.0 * (1.0 + 0.3 * rng.normal()).max(0.2);
                let base = level * (1.0 + 0.03 * rng.normal());
                let candidate = level * (1.0 + effect) * (1.0 + 0.03 * rng.normal());
                (base, candidate)
            })
            .unzip()
    }

    #[test]
    fn identical_builds_are_called_different_about_5_percent_of_the_time() {
        let mut rng = Rng(7);
        let trials = 4000;
        let wrong = (0..trials)
            .filter(|_| {
                let (b, c) = trial(&mut rng, 5, 0.0);
                let (change, half, _) = judge_pairs(&exact(&b), &exact(&c)).unwrap();
                change.abs() > half
            })
            .count();
        let rate = wrong as f64 / trials as f64;
        assert!((0.03..0.07).contains(&rate), "false verdicts: {rate}");
    }

    #[test]
    fn a_planted_effect_is_found_and_the_mde_says_how_small_it_may_be() {
        let mut rng = Rng(11);
        let trials = 2000;
        let mut found = 0;
        let mut mdes = Vec::new();
        for _ in 0..trials {
            let (b, c) = trial(&mut rng, 5, 0.10);
            let (change, half, mde) = judge_pairs(&exact(&b), &exact(&c)).unwrap();
            found += usize::from(change - half > 0.0);
            mdes.push(mde);
        }
        mdes.sort_by(f64::total_cmp);
        let median_mde = mdes[mdes.len() / 2];
        // 30 % drift between pairs, 3 % within: pairing leaves √2·3 % of noise, so a 10 %
        // slowdown is well above the minimum detectable effect and found nearly always.
        assert!(median_mde < 0.10, "median MDE {median_mde}");
        assert!(
            found as f64 / trials as f64 > 0.9,
            "found {found} of {trials}"
        );
        // The same runs unpaired would see the 30 % drift: the pairs are what makes 10 % visible.
        let (b, c) = trial(&mut Rng(3), 5, 0.10);
        let spread = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt() / m
        };
        assert!(spread(&b) > 0.10 && spread(&c) > 0.10);
    }

    fn exact(values: &[f64]) -> Vec<Estimate> {
        values.iter().map(|&v| Estimate::sampled(v, 0.0)).collect()
    }

    #[test]
    fn percentiles_in_the_same_buckets_are_not_a_change_beyond_their_resolution() {
        // Two pairs whose p50s fell in the same 1 ms buckets: 6 ms against 5 ms both times.
        let bucket = |v: f64| Estimate {
            resolution: 0.5,
            ..Estimate::sampled(v, 0.0)
        };
        let (change, half, _) =
            judge_pairs(&[bucket(6.0), bucket(6.0)], &[bucket(5.0), bucket(5.0)]).unwrap();
        assert!((change + 1.0 / 6.0).abs() < 1e-9);
        assert!(change.abs() <= half, "{change} within ±{half}");
    }

    #[test]
    fn one_pair_has_no_spread_to_judge_by() {
        assert!(judge_pairs(&exact(&[100.0]), &exact(&[110.0])).is_err());
        assert!(judge_pairs(&exact(&[0.0, 0.0]), &exact(&[1.0, 1.0])).is_err());
    }

    #[test]
    fn the_quantiles_fall_towards_the_normal() {
        assert_eq!(t_quantiles(4), (2.776, 0.941));
        assert_eq!(t_quantiles(1000), (1.96, 0.842));
        let mut last = f64::INFINITY;
        for df in 1..70 {
            let (t, _) = t_quantiles(df);
            assert!(t <= last, "df {df}");
            last = t;
        }
    }
}
