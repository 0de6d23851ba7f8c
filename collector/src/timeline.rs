//! The run second by second: the requests the API accepted (the run file's timeline), the loops
//! the pipeline completed (the export's per-second counts), the backlog between them (accepted
//! so far minus completed so far: what is in flight) and each second's end-to-end p99.
//!
//! A growing backlog is a pipeline that does not keep up: it completes fewer loops per second
//! than it is offered.

use std::collections::BTreeMap;

use contract::export::LatencyExport;
use contract::runfile::RunFile;

/// One second of the run (the export's row type).
pub use contract::export::OverTimeRow as SecondPoint;

fn whole_second(t_ms: i64) -> i64 {
    t_ms.div_euclid(1000) * 1000
}

/// Every second from the first request (or the first completed loop) to the last completed
/// loop, seconds without either counted as zero.
pub fn over_time(export: &LatencyExport, run: Option<&RunFile>) -> Vec<SecondPoint> {
    let mut accepted: BTreeMap<i64, u64> = BTreeMap::new();
    if let Some(run) = run {
        for sample in &run.timeline {
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
    let known = run.is_some();
    let (mut accepted_so_far, mut completed_so_far) = (0i64, 0i64);
    (first..=last)
        .step_by(1000)
        .map(|t_ms| {
            let a = accepted.get(&t_ms).copied().unwrap_or(0);
            let (c, p99_ms) = completed.get(&t_ms).copied().unwrap_or((0, None));
            accepted_so_far += a as i64;
            completed_so_far += c as i64;
            SecondPoint {
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
    use contract::export::SecondRow;
    use contract::runfile::LoadSample;

    fn export(rows: &[(i64, u64)]) -> LatencyExport {
        let text = r#"{"version":3,"run":{"run_id":"r","namespace":"n","window_start_ms":0,
            "window_end_ms":0,"expected":null,"processed":0,"state":"complete","vus":null,
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
        export
    }

    #[test]
    fn the_backlog_is_accepted_so_far_minus_completed_so_far() {
        // 100 accepted a second for 3 s (the run started mid-second); the pipeline completes
        // 60, 80, 100, then drains the rest over two seconds.
        let mut run = RunFile::from_json(
            r#"{"version":3,"run":{"run_id":"r","endpoint":"http://127.0.0.1:1/","executor":
            "constant-vus","start_ms":10400,"end_ms":13400,"vus_max":10,"requests_sent":303,
            "requests_accepted":300,"failures":{"status_500":3},"dropped_iterations":0},
            "metrics":{},"histogram":{"unit":"us","significant_figures":3,"buckets":[]},
            "timeline":[]}"#,
        )
        .unwrap();
        run.timeline = (0..3)
            .map(|i| LoadSample {
                t_ms: 10_400 + i * 1000,
                vus: 10,
                requests: 101,
                failures: 1,
                offered: None,
            })
            .collect();
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
    }
}
