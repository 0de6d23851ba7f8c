//! The tuning file: `tune --out DIR` writes `DIR/tune.json`.
//!
//! Tuning runs the pipeline at one arrival rate for one step per memory size, with that size set
//! on the tuned functions (all three, or one) through Lambda's `UpdateFunctionConfiguration`, and
//! records per step what the load came to (a capacity step, judged against the SLO as a capacity
//! search judges it) and what Lambda's own metrics say of each function over the step: its
//! duration p50 and p99, billed GB-seconds and cold starts. A step's Lambda cost is what its
//! invocations and billed GB-seconds cost at the price file's list prices; the other services'
//! costs do not depend on the memory size and are left out. Cost per 1,000 loops is that cost
//! over the loops the step measured.
//!
//! A step is **usable** when its load was sustained (nothing failed or lost, the schedule held,
//! no growing backlog) with the end-to-end p99 within the SLO. The **cheapest** size is the
//! usable step of the lowest cost per 1,000 loops. The **fastest** is found among the steps that
//! lost and failed nothing (within the SLO or not): the lowest end-to-end p99, and every step
//! whose p99 is within noise of it (the difference within `√(a² + b²)` of the two p99s' 95 %
//! half-widths) is as fast; of those, the cheapest is the pick, and the others are named. A
//! step that lost requests is never recommended. A change against the current sizes' step
//! states its noise the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::capacity::CapacityStep;

/// Version of this format; bumped when a field changes meaning.
pub const TUNE_VERSION: u32 = 1;

/// Lambda's smallest memory size, MB.
pub const MIN_MEMORY_MB: u32 = 128;
/// Lambda's largest memory size, MB.
pub const MAX_MEMORY_MB: u32 = 10_240;
/// The sizes tried when none are given, MB (AWS Lambda Power Tuning's usual list, with the
/// size of one full vCPU).
pub const DEFAULT_SIZES_MB: [u32; 6] = [128, 256, 512, 1024, 1769, 3008];

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneFile {
    /// Format version ([`TUNE_VERSION`]).
    pub version: u32,
    /// The steps' run ids are `<run_prefix>-m<memory MB>`.
    pub run_prefix: String,
    /// The roles whose memory size each step set (`upstream`, `midstream`, `downstream`).
    pub tuned: Vec<String>,
    /// Each step's arrival rate, per second.
    pub rate_per_s: f64,
    /// Each step's load, seconds.
    pub step_duration_s: f64,
    /// The end-to-end p99 a usable step stays within, ms.
    pub slo_ms: f64,
    /// Each function's memory size before tuning (restored after it), MB, by role.
    pub current_mb: BTreeMap<String, u32>,
    /// The price file's region and month.
    pub prices: String,
    /// Every step, in the order run.
    pub steps: Vec<TuneStep>,
    /// The usable step of the lowest cost per 1,000 loops.
    pub cheapest: Option<Pick>,
    /// The step of the lowest end-to-end p99 among those that lost and failed nothing.
    pub fastest: Option<Pick>,
    /// The step run at the functions' current sizes, when one was: what the picks are
    /// compared with.
    pub current_step: Option<u32>,
}

/// One memory size's step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneStep {
    /// The memory size set on the tuned functions, MB.
    pub memory_mb: u32,
    /// Every function's size during the step, MB, by role.
    pub sizes: BTreeMap<String, u32>,
    /// The load and what came of it, judged against the SLO.
    pub load: CapacityStep,
    /// The 95 % half-width of the end-to-end p99, ms: the nearest-rank order statistic's
    /// distribution-free interval plus the histogram bucket's resolution; `None` with fewer than
    /// 5 requests on a side of the p99.
    pub p99_noise_ms: Option<f64>,
    /// Lambda's metrics of each function over the step; empty when they could not be read
    /// (`lambda_unavailable` says why).
    pub functions: Vec<TuneFunction>,
    /// Why Lambda's metrics could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_unavailable: Option<String>,
    /// The step's Lambda cost (requests and billed duration of the three functions), in the
    /// price file's currency.
    pub lambda_cost: Option<f64>,
    /// That cost per 1,000 loops measured.
    pub cost_per_1000_loops: Option<f64>,
    /// Sustained, with the end-to-end p99 within the SLO.
    pub usable: bool,
}

/// One function's numbers over a step, from Lambda's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneFunction {
    /// `upstream`, `midstream` or `downstream`.
    pub role: String,
    /// Its memory size during the step, MB.
    pub memory_mb: u32,
    /// `Invocations`.
    pub invocations: u64,
    /// `Duration` p50, ms.
    pub duration_p50_ms: Option<f64>,
    /// `Duration` p99, ms.
    pub duration_p99_ms: Option<f64>,
    /// Billed GB-seconds: each duration rounded up to the ms, init included, times the size.
    pub billed_gb_seconds: f64,
    /// Cold starts (init phases).
    pub cold_starts: u64,
    /// Their mean init duration, ms.
    pub init_avg_ms: Option<f64>,
}

/// A recommended size, and what it changes against the current sizes' step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    /// The memory size, MB.
    pub memory_mb: u32,
    /// Its cost per 1,000 loops.
    pub cost_per_1000_loops: Option<f64>,
    /// Its end-to-end p99, ms.
    pub p99_ms: Option<f64>,
    /// Cost per 1,000 loops against the current sizes' step, percent (negative: cheaper).
    pub cost_change_percent: Option<f64>,
    /// End-to-end p99 against the current sizes' step, percent (negative: faster).
    pub p99_change_percent: Option<f64>,
    /// The 95 % half-width of that change, percent; a change within it is noise.
    pub p99_change_noise_percent: Option<f64>,
    /// Other sizes whose p99 is the same within noise (for the fastest pick), MB.
    pub as_fast: Vec<u32>,
}

impl TuneFile {
    /// Reads a tuning file.
    pub fn from_json(text: &str) -> Result<TuneFile, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The file as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Sets [`TuneFile::cheapest`] and [`TuneFile::fastest`] from the steps, each compared with
    /// the current sizes' step when there is one.
    pub fn recommend(&mut self) {
        let by_cost = |a: &&TuneStep, b: &&TuneStep| {
            let cost = |s: &&TuneStep| s.cost_per_1000_loops.unwrap_or(f64::INFINITY);
            cost(a).total_cmp(&cost(b))
        };
        let cheapest = self
            .steps
            .iter()
            .filter(|s| s.usable && s.cost_per_1000_loops.is_some())
            .min_by(by_cost);
        let clean: Vec<&TuneStep> = self
            .steps
            .iter()
            .filter(|s| s.load.failed == 0 && s.load.lost == Some(0) && s.load.p99_ms.is_some())
            .collect();
        let lowest = clean.iter().copied().min_by(|a, b| {
            let p99 = |s: &&TuneStep| s.load.p99_ms.unwrap_or(f64::INFINITY);
            p99(a).total_cmp(&p99(b))
        });
        let as_fast: Vec<&TuneStep> = match lowest {
            Some(lowest) => clean
                .iter()
                .copied()
                .filter(|s| same_within_noise(s, lowest))
                .collect(),
            None => Vec::new(),
        };
        let fastest = as_fast.iter().copied().min_by(by_cost);
        let current = self
            .current_step
            .and_then(|mb| self.steps.iter().find(|s| s.memory_mb == mb));
        let pick = |step: &TuneStep, others: &[&TuneStep]| {
            let change = |now: Option<f64>, then: Option<f64>| match (now, then) {
                (Some(now), Some(then)) if then > 0.0 => Some((now / then - 1.0) * 100.0),
                _ => None,
            };
            Pick {
                memory_mb: step.memory_mb,
                cost_per_1000_loops: step.cost_per_1000_loops,
                p99_ms: step.load.p99_ms,
                cost_change_percent: current
                    .and_then(|c| change(step.cost_per_1000_loops, c.cost_per_1000_loops)),
                p99_change_percent: current.and_then(|c| change(step.load.p99_ms, c.load.p99_ms)),
                p99_change_noise_percent: current.and_then(|c| {
                    let noise = step.p99_noise_ms?.hypot(c.p99_noise_ms?);
                    Some(noise / c.load.p99_ms.filter(|&p| p > 0.0)? * 100.0)
                }),
                as_fast: others
                    .iter()
                    .map(|s| s.memory_mb)
                    .filter(|&mb| mb != step.memory_mb)
                    .collect(),
            }
        };
        self.cheapest = cheapest.map(|s| pick(s, &[]));
        self.fastest = fastest.map(|s| pick(s, &as_fast));
    }
}

/// Whether two steps' end-to-end p99s are the same within noise: their difference within
/// `√(a² + b²)` of their 95 % half-widths (a step without one is only the same as itself).
fn same_within_noise(a: &TuneStep, b: &TuneStep) -> bool {
    match (a.load.p99_ms, b.load.p99_ms, a.p99_noise_ms, b.p99_noise_ms) {
        (Some(pa), Some(pb), Some(na), Some(nb)) => (pa - pb).abs() <= na.hypot(nb),
        _ => a.memory_mb == b.memory_mb,
    }
}

/// A memory size as a flag gives it: a whole number of MB from [`MIN_MEMORY_MB`] to
/// [`MAX_MEMORY_MB`]; the error is the one line to print.
pub fn parse_memory_mb(text: &str) -> Result<u32, String> {
    let mb: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("memory size {text:?} is not a whole number of MB"))?;
    if !(MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&mb) {
        return Err(format!(
            "memory size {mb} MB is outside Lambda's {MIN_MEMORY_MB} to {MAX_MEMORY_MB} MB"
        ));
    }
    Ok(mb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(memory_mb: u32, cost: f64, p99: f64, usable: bool, lost: u64) -> TuneStep {
        let load = CapacityStep {
            run_id: format!("t-m{memory_mb}"),
            rate_per_s: 10.0,
            scheduled: 100,
            dropped: 0,
            sent: 100,
            accepted: 100,
            failed: 0,
            accepted_per_s: 10.0,
            completed_per_s: 10.0,
            processed: 100 - lost,
            lost: Some(lost),
            backlog_growth: 0,
            drain_s: 0.5,
            p50_ms: Some(p99 / 2.0),
            p99_ms: Some(p99),
            hop_p99_ms: BTreeMap::new(),
            throttled: BTreeMap::new(),
            sustained: usable,
            reasons: Vec::new(),
        };
        TuneStep {
            memory_mb,
            sizes: BTreeMap::new(),
            load,
            p99_noise_ms: Some(p99 * 0.02),
            functions: Vec::new(),
            lambda_unavailable: None,
            lambda_cost: Some(cost / 10.0),
            cost_per_1000_loops: Some(cost),
            usable,
        }
    }

    fn file(steps: Vec<TuneStep>) -> TuneFile {
        TuneFile {
            version: TUNE_VERSION,
            run_prefix: "t".into(),
            tuned: vec!["midstream".into()],
            rate_per_s: 10.0,
            step_duration_s: 10.0,
            slo_ms: 1000.0,
            current_mb: BTreeMap::new(),
            prices: "us-east-1, 2026-11".into(),
            steps,
            cheapest: None,
            fastest: None,
            current_step: Some(256),
        }
    }

    #[test]
    fn the_cheapest_usable_and_the_fastest_clean_step_are_picked_against_the_current() {
        let mut f = file(vec![
            // Cheapest of all, but over the SLO: not usable.
            step(128, 0.010, 1500.0, false, 0),
            step(256, 0.020, 800.0, true, 0),
            step(512, 0.016, 500.0, true, 0),
            step(1024, 0.030, 300.0, true, 0),
            // Fastest of all, but it lost a request: never picked.
            step(1769, 0.050, 200.0, false, 1),
        ]);
        f.recommend();
        let cheapest = f.cheapest.clone().unwrap();
        assert_eq!(cheapest.memory_mb, 512);
        assert!((cheapest.cost_change_percent.unwrap() + 20.0).abs() < 1e-9);
        assert!((cheapest.p99_change_percent.unwrap() + 37.5).abs() < 1e-9);
        let fastest = f.fastest.clone().unwrap();
        assert_eq!(fastest.memory_mb, 1024);
        assert!((fastest.cost_change_percent.unwrap() - 50.0).abs() < 1e-9);
        // 2 % of 300 ms and of 800 ms, over 800 ms.
        let noise = 6f64.hypot(16.0) / 800.0 * 100.0;
        assert!((fastest.p99_change_noise_percent.unwrap() - noise).abs() < 1e-9);
        assert!(fastest.as_fast.is_empty());
        let back = TuneFile::from_json(&f.to_json()).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn sizes_as_fast_within_noise_give_the_cheapest_of_them_as_the_fastest() {
        let mut f = file(vec![
            step(128, 0.010, 105.0, true, 0),
            step(256, 0.012, 104.0, true, 0),
            step(1024, 0.020, 101.0, true, 0),
            step(3008, 0.030, 80.0, true, 0),
        ]);
        for s in &mut f.steps {
            s.p99_noise_ms = Some(5.0);
        }
        f.recommend();
        // 101 is the lowest; 104 and 105 are within √(5² + 5²) ≈ 7.1 ms of it, 80 is lower
        // still: the lowest is 80 alone.
        assert_eq!(f.fastest.as_ref().unwrap().memory_mb, 3008);
        assert!(f.fastest.as_ref().unwrap().as_fast.is_empty());
        f.steps.pop();
        f.recommend();
        let fastest = f.fastest.unwrap();
        assert_eq!(fastest.memory_mb, 128, "the cheapest of three as fast");
        assert_eq!(fastest.as_fast, vec![256, 1024]);
        let change = fastest.p99_change_percent.unwrap();
        assert!(
            change.abs() <= fastest.p99_change_noise_percent.unwrap(),
            "{change}"
        );
    }

    #[test]
    fn nothing_usable_recommends_nothing_cheapest() {
        let mut f = file(vec![step(128, 0.01, 1500.0, false, 0)]);
        f.current_step = None;
        f.recommend();
        assert_eq!(f.cheapest, None);
        let fastest = f.fastest.unwrap();
        assert_eq!(
            (fastest.memory_mb, fastest.cost_change_percent),
            (128, None)
        );
    }

    #[test]
    fn sizes_lambda_refuses_are_one_line() {
        assert_eq!(parse_memory_mb("1769"), Ok(1769));
        for (bad, said) in [
            ("64", "outside Lambda's 128 to 10240 MB"),
            ("10241", "outside"),
            ("1.5", "not a whole number"),
            ("big", "not a whole number"),
        ] {
            let error = parse_memory_mb(bad).unwrap_err();
            assert!(error.contains(said), "{bad}: {error}");
            assert!(!error.contains('\n'));
        }
    }
}
