//! `collector compare BASE CANDIDATE`: two sets of runs (one latency export or several per side,
//! for repeated runs), number by number, each change set against the noise.
//!
//! Each row is one number: throughput (`loops_per_s:value`), loss (`lost:count`), the end-to-end
//! mean and percentiles (`latency:avg`, `latency:p(50)` ... `latency:p(99)`) and each hop's p50
//! and p99. It gives the base value, the candidate value, the change in percent, the noise in
//! percent (the 95 % half-width of the difference, [`noise`]) and a verdict: `faster`, `slower`,
//! `no significant change` (the change is within the noise) or `inconclusive` (too few requests
//! or seconds to say). For throughput, fewer loops per second is slower; for latency, more
//! milliseconds; for loss, more lost requests is `slower`, whatever the noise.
//!
//! [`paired`] judges runs made as pairs (`--paired`, what `make ab` makes) on the pairs'
//! differences, with each row's minimum detectable effect.
//!
//! [`gate`] turns chosen rows into CI's verdict: `--fail-if-slower latency:p(99)=10%` exits 99
//! when that number got slower by more than 10 % *and* beyond the noise.

pub mod gate;
pub mod noise;
pub mod paired;
mod render;

pub use render::{html_page, render};

use contract::export::LatencyExport;
use contract::metrics::Hop;
use serde::Serialize;

use noise::{Estimate, Inconclusive};

/// One side of a comparison: its runs' exports.
#[derive(Debug, Clone)]
pub struct Side {
    /// Where each came from, for the header.
    pub files: Vec<String>,
    /// The exports.
    pub exports: Vec<LatencyExport>,
}

/// How a number changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "reason")]
pub enum Verdict {
    /// Better beyond the noise.
    Faster,
    /// Worse beyond the noise.
    Slower,
    /// Within the noise.
    NoSignificantChange,
    /// Too little data to say.
    Inconclusive(String),
}

impl Verdict {
    /// As the table says it.
    pub fn text(&self) -> String {
        match self {
            Verdict::Faster => "faster".into(),
            Verdict::Slower => "slower".into(),
            Verdict::NoSignificantChange => "no significant change".into(),
            Verdict::Inconclusive(why) => format!("inconclusive ({why})"),
        }
    }
}

/// One number, compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The number, in threshold spelling (`latency:p(99)`).
    pub metric: String,
    /// Its unit.
    pub unit: &'static str,
    /// Base value (the mean over its runs), when it could be read.
    pub base: Option<Estimate>,
    /// Candidate value.
    pub candidate: Option<Estimate>,
    /// Candidate over base, percent.
    pub change_pct: Option<f64>,
    /// The difference's 95 % half-width, percent of the base.
    pub noise_pct: Option<f64>,
    /// The smallest change this comparison finds 80 % of the time, percent (paired only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mde_pct: Option<f64>,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The base's files.
    pub base: Vec<String>,
    /// The candidate's files.
    pub candidate: Vec<String>,
    /// Whether run-to-run noise is in the intervals (two or more runs on each side).
    pub run_to_run: bool,
    /// Paired: the pairs the verdicts stand on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<usize>,
    /// Paired: the pairs left out, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// The rows, in order.
    pub rows: Vec<Row>,
}

/// Reads one number, with its noise, from one export.
type Read = Box<dyn Fn(&LatencyExport) -> Result<Estimate, Inconclusive>>;

/// How to read one number from one export.
struct Reading {
    metric: String,
    unit: &'static str,
    /// Whether more is worse (latency, loss) or better (throughput).
    more_is_worse: bool,
    /// Whether any change is significant (counts without noise: loss).
    exact: bool,
    read: Read,
}

fn readings() -> Vec<Reading> {
    let mut list = vec![
        Reading {
            metric: "loops_per_s:value".into(),
            unit: "/s",
            more_is_worse: false,
            exact: false,
            read: Box::new(|e| noise::per_second(&loops_per_second(e))),
        },
        Reading {
            metric: "lost:count".into(),
            unit: "",
            more_is_worse: true,
            exact: true,
            read: Box::new(|e| {
                let loss = contract::run::Run::new(e, None, None).loss();
                match loss.known() {
                    Some(lost) => Ok(Estimate::sampled(lost as f64, 0.0)),
                    None => Err(loss.short()),
                }
            }),
        },
        Reading {
            metric: "latency:avg".into(),
            unit: "ms",
            more_is_worse: true,
            exact: false,
            read: Box::new(|e| {
                let mean = e.latency.mean_ms().ok_or("no requests")?;
                noise::mean(mean, e.latency.count, &e.histogram)
            }),
        },
    ];
    for q in [50.0, 90.0, 95.0, 99.0] {
        list.push(Reading {
            metric: format!("latency:p({q})"),
            unit: "ms",
            more_is_worse: true,
            exact: false,
            read: Box::new(move |e| noise::percentile(&e.histogram, q)),
        });
    }
    for hop in Hop::ALL {
        for q in [50.0, 99.0] {
            let name = hop.metric_name();
            list.push(Reading {
                metric: format!("{name}:p({q})"),
                unit: "ms",
                more_is_worse: true,
                exact: false,
                read: Box::new(move |e| {
                    let histogram = e
                        .hop_histograms
                        .get(name)
                        .ok_or("no histogram of this hop (exports before version 3 have none)")?;
                    noise::percentile(histogram, q)
                }),
            });
        }
    }
    list
}

/// Loops completed in each second of the active window (seconds without one count 0).
fn loops_per_second(export: &LatencyExport) -> Vec<f64> {
    let (Some(first), Some(last)) = (export.per_second.first(), export.per_second.last()) else {
        return Vec::new();
    };
    let mut counts = vec![0.0; ((last.timestamp_ms - first.timestamp_ms) / 1000 + 1) as usize];
    for row in &export.per_second {
        counts[((row.timestamp_ms - first.timestamp_ms) / 1000) as usize] += row.count as f64;
    }
    counts
}

/// Reads `reading` from every export of a side.
fn side_runs(reading: &Reading, side: &Side) -> Result<Vec<Estimate>, Inconclusive> {
    let runs = side
        .exports
        .iter()
        .map(|e| (reading.read)(e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(runs)
}

/// Compares `base` with `candidate`.
pub fn compare(base: &Side, candidate: &Side) -> Comparison {
    let rows = readings()
        .iter()
        .map(|reading| {
            let b = side_runs(reading, base);
            let c = side_runs(reading, candidate);
            let compared = match (&b, &c) {
                (Ok(b), Ok(c)) => Ok(noise::compare_runs(b, c)),
                (Err(why), _) => Err(format!("base: {why}")),
                (_, Err(why)) => Err(format!("candidate: {why}")),
            };
            let (verdict, change_pct, noise_pct) = match &compared {
                Ok(compared) => judge(reading, compared),
                Err(why) => (Verdict::Inconclusive(why.clone()), None, None),
            };
            let one_side = |runs: &Result<Vec<Estimate>, Inconclusive>| {
                runs.as_ref().ok().map(|r| noise::combine(r))
            };
            Row {
                metric: reading.metric.clone(),
                unit: reading.unit,
                base: compared
                    .as_ref()
                    .ok()
                    .map(|c| c.base)
                    .or_else(|| one_side(&b)),
                candidate: compared
                    .as_ref()
                    .ok()
                    .map(|c| c.candidate)
                    .or_else(|| one_side(&c)),
                change_pct,
                noise_pct,
                mde_pct: None,
                verdict,
            }
        })
        .collect();
    Comparison {
        base: base.files.clone(),
        candidate: candidate.files.clone(),
        run_to_run: base.exports.len() > 1 && candidate.exports.len() > 1,
        pairs: None,
        dropped: Vec::new(),
        rows,
    }
}

fn judge(reading: &Reading, compared: &noise::Compared) -> (Verdict, Option<f64>, Option<f64>) {
    let (b, c, noise) = (&compared.base, &compared.candidate, compared.noise);
    let difference = c.value - b.value;
    let pct = |x: f64| (b.value != 0.0).then(|| x / b.value.abs() * 100.0);
    let significant = if reading.exact {
        difference != 0.0
    } else {
        difference.abs() > noise
    };
    let verdict = if !significant {
        Verdict::NoSignificantChange
    } else if (difference > 0.0) == reading.more_is_worse {
        Verdict::Slower
    } else {
        Verdict::Faster
    };
    (verdict, pct(difference), pct(noise))
}
