//! The run model: what the pipeline measured (the latency export) and, when known, what the load
//! generator sent (the run file), with every verdict the tools give computed here, once: how many
//! requests were accepted and lost (unknown when over-counted), the percentiles (within the run's
//! exact bounds), loops per second over the active window, and the run second by second.
//! `collector stats`, its report and thresholds, `collector compare`, the capacity search and
//! `collector wait`'s export all read a run through [`Run`].

use std::collections::BTreeMap;

use crate::buckets::LatencyHistogram;
use crate::export::{LatencyExport, OverTimeRow, StatSummary};
use crate::runfile::RunFile;

/// One run: its export, its run file when known, and the VUs to count per (a flag may override
/// the run file's).
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// What the pipeline measured.
    pub export: &'a LatencyExport,
    /// What the load generator sent, when known.
    pub load: Option<&'a RunFile>,
    vus: Option<u64>,
}

impl<'a> Run<'a> {
    /// The run of `export`, with its run file `load` when known; `vus` overrides the VUs.
    pub fn new(export: &'a LatencyExport, load: Option<&'a RunFile>, vus: Option<u64>) -> Self {
        Run { export, load, vus }
    }

    /// Requests the API accepted: the run file's count, else what the wait expected.
    pub fn accepted(&self) -> Option<u64> {
        self.load
            .map(|r| r.run.requests_accepted)
            .or(self.export.run.expected)
    }

    /// Requests the pipeline measured.
    pub fn processed(&self) -> u64 {
        self.export.run.processed
    }

    /// Items written again, counted and not measured.
    pub fn redelivered(&self) -> u64 {
        self.export.run.redelivered
    }

    /// Measured beyond the accepted count (requests measured twice, or answered with an error
    /// and processed all the same), when there are any: the counts then cannot show a loss.
    pub fn over_counted(&self) -> Option<u64> {
        self.accepted()
            .and_then(|a| self.processed().checked_sub(a))
            .filter(|n| *n > 0)
    }

    /// Accepted and not measured; `None` when unknown (see [`Run::loss`]).
    pub fn lost(&self) -> Option<u64> {
        self.loss().known()
    }

    /// What the counts say about loss: how many accepted requests were not measured, or why
    /// that is unknown.
    pub fn loss(&self) -> Loss {
        let Some(accepted) = self.accepted() else {
            return Loss::NoAcceptedCount;
        };
        if let Some(load) = self.load {
            let (window_end_ms, load_end_ms) = (self.export.run.window_end_ms, load.run.end_ms);
            if window_end_ms < load_end_ms {
                return Loss::WindowEnded {
                    window_end_ms,
                    load_end_ms,
                };
            }
        }
        match accepted.checked_sub(self.processed()) {
            Some(lost) => Loss::Known(lost),
            None => Loss::OverCounted {
                measured: self.processed(),
                accepted,
            },
        }
    }

    /// Why the load ended before its schedule did (a signal), when it was cut short: the run
    /// is then not the one asked for, whatever its counts say.
    pub fn aborted(&self) -> Option<&'a str> {
        self.load?.run.aborted.as_deref()
    }

    /// The VUs of the run: the override, else the run file's, else the export's.
    pub fn vus(&self) -> Option<u64> {
        self.vus
            .or(self.load.map(|r| r.run.vus_max))
            .or(self.export.run.vus)
    }

    /// From the first second with a completed loop to the end of the last, epoch ms.
    pub fn active_window(&self) -> Option<(i64, i64)> {
        let rows = &self.export.per_second;
        rows.first()
            .zip(rows.last())
            .map(|(first, last)| (first.timestamp_ms, last.timestamp_ms + 1000))
    }

    /// Loops completed per second over the active window.
    pub fn loops_per_s(&self) -> Option<f64> {
        let (start, end) = self.active_window()?;
        Some(self.processed() as f64 / ((end - start) as f64 / 1000.0))
    }

    /// Loops per second per VU.
    pub fn loops_per_s_per_vu(&self) -> Option<f64> {
        let vus = self.vus().filter(|v| *v > 0)?;
        Some(self.loops_per_s()? / vus as f64)
    }

    /// End-to-end percentile `q` (0-100) per request, ms: from the bucket histogram (within
    /// 2 %), within the run's exact minimum and maximum.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        percentile_within(&self.export.histogram, &self.export.latency, q)
    }

    /// A hop's exact summary, by metric name, when it has samples.
    pub fn hop(&self, hop: &str) -> Option<&'a StatSummary> {
        self.export.hops.get(hop).filter(|s| s.count > 0)
    }

    /// A hop's percentile `q`, ms, within the hop's bounds; `None` before export version 3
    /// (no hop histograms).
    pub fn hop_percentile(&self, hop: &str, q: f64) -> Option<f64> {
        percentile_within(self.export.hop_histograms.get(hop)?, self.hop(hop)?, q)
    }

    /// The run second by second: from the run file when there is one, else what the wait had.
    pub fn over_time(&self) -> Vec<OverTimeRow> {
        match self.load {
            None if !self.export.over_time.is_empty() => self.export.over_time.clone(),
            load => over_time(self.export, load),
        }
    }
}

/// Whether `export` measured the run `load` sent: the same run id, and the same load (two runs
/// can share an id). The error says why not, naming `export_name`.
pub fn check_same_run(
    export: &LatencyExport,
    load: &RunFile,
    export_name: &str,
) -> Result<(), String> {
    let (measured, sent) = (&export.run, &load.run);
    if measured.run_id != sent.run_id {
        return Err(format!(
            "{export_name} is run {:?} but the run file is run {:?}: they are not one run",
            measured.run_id, sent.run_id
        ));
    }
    let other_load = match measured.load_start_ms {
        Some(start) => start != sent.start_ms,
        None => sent.start_ms > measured.window_end_ms || sent.end_ms < measured.window_start_ms,
    };
    if other_load {
        return Err(format!(
            "{export_name} and the run file are two runs that share the run id {:?}: the \
             export's load started at {}, the run file's at {} ms",
            sent.run_id,
            measured
                .load_start_ms
                .map_or("an unknown time".to_owned(), |s| format!("{s} ms")),
            sent.start_ms
        ));
    }
    Ok(())
}

/// What the counts say about loss. Every tool words an unknown loss with [`Loss::short`] (a
/// table cell) or [`Loss::why_unknown`] (a sentence), so one situation reads the same everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Accepted requests not measured (0: every one was).
    Known(u64),
    /// More measured than accepted: see [`OVER_COUNT_CAUSES`].
    OverCounted {
        /// Requests measured.
        measured: u64,
        /// Requests accepted.
        accepted: u64,
    },
    /// The export's window ended before the load did (`collector wait --until` during the
    /// run): what was accepted after it is not in the export.
    WindowEnded {
        /// The export's window end, epoch ms.
        window_end_ms: i64,
        /// The load's end, epoch ms.
        load_end_ms: i64,
    },
    /// Nothing says how many were accepted (an export without its run file or expected count).
    NoAcceptedCount,
}

/// What makes a run measure more than it accepted, said wherever a run is over-counted.
pub const OVER_COUNT_CAUSES: &str = "a batch measured twice (its metrics published, then the \
     batch delivered again), or a request the API answered with an error after its record \
     reached the stream; a duplicate can hide a loss, and `collector audit` settles it";

impl Loss {
    /// The loss, when the counts show it.
    pub fn known(&self) -> Option<u64> {
        match self {
            Loss::Known(lost) => Some(*lost),
            _ => None,
        }
    }

    /// The loss as a table cell: the count, or `unknown (...)` with the reason in a few words.
    pub fn short(&self) -> String {
        match self {
            Loss::Known(lost) => lost.to_string(),
            Loss::OverCounted { measured, accepted } => {
                format!("unknown (over-counted by {})", measured - accepted)
            }
            Loss::WindowEnded { .. } => "unknown (the export ends before the load)".into(),
            Loss::NoAcceptedCount => "unknown (no accepted count)".into(),
        }
    }

    /// Why the loss is unknown, as a sentence; `None` when it is known.
    pub fn why_unknown(&self) -> Option<String> {
        match self {
            Loss::Known(_) => None,
            Loss::OverCounted { measured, accepted } => Some(format!(
                "over-counted: {measured} measured of {accepted} accepted: {OVER_COUNT_CAUSES}"
            )),
            Loss::WindowEnded {
                window_end_ms,
                load_end_ms,
            } => Some(format!(
                "the export's window ends {:.1} s before the load did (an export taken during \
                 the run): what was accepted after it is not in the export, so the loss is \
                 unknown; wait again without --until",
                (load_end_ms - window_end_ms) as f64 / 1000.0
            )),
            Loss::NoAcceptedCount => {
                Some("no accepted count: give the run file (--run) to know what was lost".into())
            }
        }
    }
}

/// Percentile `q` of `histogram`, within `summary`'s exact minimum and maximum (a bucket's
/// representative may stray past them); `None` without samples.
pub fn percentile_within(
    histogram: &LatencyHistogram,
    summary: &StatSummary,
    q: f64,
) -> Option<f64> {
    if summary.count == 0 {
        return None;
    }
    histogram
        .percentile(q)
        .map(|v| v.clamp(summary.min_ms, summary.max_ms))
}

fn whole_second(t_ms: i64) -> i64 {
    t_ms.div_euclid(1000) * 1000
}

/// The run second by second: the requests the API accepted (the run file's timeline), the loops
/// the pipeline completed (the export's per-second counts), the backlog between them (accepted
/// so far minus completed so far: what is in flight) and each second's end-to-end p99; every
/// second from the first request (or completed loop) to the last completed loop, seconds
/// without either counted as zero. A growing backlog is a pipeline that does not keep up.
pub fn over_time(export: &LatencyExport, load: Option<&RunFile>) -> Vec<OverTimeRow> {
    let mut accepted: BTreeMap<i64, u64> = BTreeMap::new();
    if let Some(load) = load {
        for sample in &load.timeline {
            *accepted.entry(whole_second(sample.t_ms)).or_default() += sample.accepted();
        }
    }
    let completed: BTreeMap<i64, (u64, Option<f64>)> = export
        .per_second
        .iter()
        .map(|r| (whole_second(r.timestamp_ms), (r.count, r.p99_ms)))
        .collect();
    let first = [accepted.keys().next(), completed.keys().next()]
        .into_iter()
        .flatten()
        .min()
        .copied();
    let last = [accepted.keys().last(), completed.keys().last()]
        .into_iter()
        .flatten()
        .max()
        .copied();
    let (Some(first), Some(last)) = (first, last) else {
        return Vec::new();
    };
    let known = load.is_some();
    let (mut accepted_so_far, mut completed_so_far) = (0i64, 0i64);
    (first..=last)
        .step_by(1000)
        .map(|t_ms| {
            let a = accepted.get(&t_ms).copied().unwrap_or(0);
            let (c, p99_ms) = completed.get(&t_ms).copied().unwrap_or((0, None));
            accepted_so_far += a as i64;
            completed_so_far += c as i64;
            OverTimeRow {
                t_ms,
                accepted: known.then_some(a),
                completed: c,
                backlog: known.then_some(accepted_so_far - completed_so_far),
                p99_ms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::SecondRow;
    use crate::runfile::LoadSample;

    fn export(rows: &[(i64, u64)]) -> LatencyExport {
        let text = r#"{"version":3,"run":{"run_id":"r","namespace":"n","window_start_ms":0,
            "window_end_ms":60000,"expected":null,"processed":0,"state":"complete","vus":null,
            "load_start_ms":null,"load_end_ms":null},"latency":{"count":0,"sum_ms":0,"min_ms":0,
            "max_ms":0},"per_second":[],"histogram":[],"hops":{}}"#;
        let mut export = LatencyExport::from_json(text).unwrap();
        export.per_second = rows
            .iter()
            .map(|&(t, count)| SecondRow {
                timestamp_ms: t,
                count,
                average_ms: 100.0,
                minimum_ms: 100.0,
                maximum_ms: 100.0,
                p99_ms: Some(100.0),
            })
            .collect();
        export.run.processed = rows.iter().map(|r| r.1).sum();
        export
    }

    fn load(accepted: u64) -> RunFile {
        let mut run = RunFile::from_json(
            r#"{"version":3,"run":{"run_id":"r","endpoint":"http://127.0.0.1:1/","executor":
            "constant-vus","start_ms":10400,"end_ms":13400,"vus_max":10,"requests_sent":303,
            "requests_accepted":300,"failures":{"status_500":3},"dropped_iterations":0},
            "metrics":{},"histogram":{"unit":"us","significant_figures":3,"buckets":[]},
            "timeline":[]}"#,
        )
        .unwrap();
        run.run.requests_accepted = accepted;
        run.timeline = (0..3)
            .map(|i| LoadSample {
                t_ms: 10_400 + i * 1000,
                vus: 10,
                requests: 101,
                failures: 1,
                offered: None,
            })
            .collect();
        run
    }

    #[test]
    fn lost_is_unknown_when_over_counted_or_without_an_accepted_count() {
        let measured = export(&[(10_000, 150), (11_000, 150)]);
        let exact = load(300);
        let run = Run::new(&measured, Some(&exact), None);
        assert_eq!((run.lost(), run.over_counted()), (Some(0), None));
        let short = load(310);
        let run = Run::new(&measured, Some(&short), None);
        assert_eq!((run.lost(), run.over_counted()), (Some(10), None));
        // 300 measured of 290 accepted: a duplicate could hide a loss.
        let over = load(290);
        let run = Run::new(&measured, Some(&over), None);
        assert_eq!((run.lost(), run.over_counted()), (None, Some(10)));
        assert_eq!(run.loss().short(), "unknown (over-counted by 10)");
        assert!(run
            .loss()
            .why_unknown()
            .is_some_and(|w| w.starts_with("over-counted: 300 measured of 290 accepted: a batch")));
        let alone = Run::new(&measured, None, None);
        assert_eq!((alone.accepted(), alone.lost()), (None, None));
        assert_eq!(alone.loss(), Loss::NoAcceptedCount);
        assert_eq!(alone.loops_per_s(), Some(150.0));
        assert_eq!(Run::new(&measured, Some(&exact), Some(3)).vus(), Some(3));
    }

    #[test]
    fn an_export_taken_during_the_run_cannot_say_what_was_lost() {
        // The load ran to 13.4 s; the export stopped at 12 s with 150 of 300 measured.
        let mut early = export(&[(10_000, 150)]);
        early.run.window_end_ms = 12_000;
        let whole = load(300);
        let run = Run::new(&early, Some(&whole), None);
        assert_eq!(
            run.loss(),
            Loss::WindowEnded {
                window_end_ms: 12_000,
                load_end_ms: 13_400
            }
        );
        assert_eq!(run.lost(), None, "not 150 lost");
        assert!(run
            .loss()
            .why_unknown()
            .is_some_and(|w| w.starts_with("the export's window ends 1.4 s before the load did")));
    }

    #[test]
    fn percentiles_stay_within_the_exact_bounds() {
        let mut measured = export(&[(10_000, 3)]);
        for latency in [100, 101, 2000] {
            measured.histogram.record(latency);
        }
        measured.latency = StatSummary {
            count: 3,
            sum_ms: 2201.0,
            min_ms: 100.0,
            max_ms: 1990.5,
        };
        let run = Run::new(&measured, None, None);
        assert_eq!(
            run.percentile(100.0),
            Some(1990.5),
            "never past the exact maximum"
        );
        assert!(run.percentile(0.0).unwrap() >= 100.0);
        assert_eq!(run.hop_percentile("ClientToKinesisLatency", 99.0), None);
    }

    #[test]
    fn the_backlog_is_accepted_so_far_minus_completed_so_far() {
        // 100 accepted a second for 3 s (the run started mid-second); the pipeline completes
        // 60, 80, 100, then drains the rest over two seconds.
        let run = load(300);
        let export = export(&[
            (10_000, 60),
            (11_000, 80),
            (12_000, 100),
            (13_000, 40),
            (14_000, 20),
        ]);
        let points = over_time(&export, Some(&run));
        let backlog: Vec<i64> = points.iter().map(|p| p.backlog.unwrap()).collect();
        assert_eq!(backlog, [40, 60, 60, 20, 0]);
        assert_eq!(points[0].accepted, Some(100));
        assert_eq!(points[4].accepted, Some(0));
        assert_eq!(points[0].p99_ms, Some(100.0));
        // Without a run file: completions only.
        let alone = over_time(&export, None);
        assert_eq!(alone.len(), 5);
        assert!(alone.iter().all(|p| p.backlog.is_none()));
        // The run's own view: the run file's when given, else what the export kept.
        let mut kept = export.clone();
        kept.over_time = points.clone();
        assert_eq!(Run::new(&kept, None, None).over_time(), points);
    }
}
