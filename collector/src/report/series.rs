//! The charts' data, computed from the export and the run file: what each chart plots, apart
//! from how it is drawn.

use std::collections::BTreeMap;

use contract::export::{LatencyExport, SecondRow, StatSummary};
use contract::metrics::Hop;
use contract::runfile::RunFile;

/// Where time starts on the time axes: the load's first second, else the first datapoint's.
pub(super) fn origin_ms(export: &LatencyExport, run: Option<&RunFile>) -> Option<i64> {
    let load = run
        .map(|r| r.run.start_ms)
        .or(export.run.load_start_ms)
        .map(|ms| ms - ms.rem_euclid(1000));
    let first = export.per_second.first().map(|r| r.timestamp_ms);
    match (load, first) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub(super) fn seconds(ms: i64, origin_ms: i64) -> f64 {
    (ms - origin_ms) as f64 / 1000.0
}

/// Loops per second, with the seconds without a datapoint (none completed) filled with zeros.
pub fn loops_per_second(rows: &[SecondRow], origin_ms: i64) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Vec::new();
    };
    let counts: BTreeMap<i64, u64> = rows.iter().map(|r| (r.timestamp_ms, r.count)).collect();
    (first.timestamp_ms..=last.timestamp_ms)
        .step_by(1000)
        .map(|t| {
            (
                seconds(t, origin_ms),
                counts.get(&t).copied().unwrap_or(0) as f64,
            )
        })
        .collect()
}

/// Load end, epoch ms.
pub(super) fn load_end_ms(export: &LatencyExport, run: Option<&RunFile>) -> Option<i64> {
    run.map(|r| r.run.end_ms).or(export.run.load_end_ms)
}

/// The percentile curve: `(x, latency_ms)` where `x = 1 / (1 - q)` (so 50 % is 2, 99 % is 100),
/// from 0 % up to the highest percentile the sample count resolves (at most 99.999 %).
pub fn percentile_curve(export: &LatencyExport, points: usize) -> Vec<(f64, f64)> {
    let n = export.histogram.count();
    if n == 0 {
        return Vec::new();
    }
    let x_max = (n as f64).clamp(2.0, 100_000.0);
    let (lo, hi) = (export.latency.min_ms, export.latency.max_ms);
    (0..points)
        .map(|i| {
            let x = x_max.powf(i as f64 / (points - 1) as f64);
            let q = 100.0 * (1.0 - 1.0 / x);
            let ms = export.histogram.percentile(q).unwrap_or(f64::NAN);
            (x, if hi >= lo { ms.clamp(lo, hi) } else { ms })
        })
        .collect()
}

/// The hops in pipeline order (unknown names after them), then end to end: `(label, summary)`.
pub fn hop_bars(export: &LatencyExport) -> Vec<(String, StatSummary)> {
    let known = |name: &str| Hop::ALL.iter().any(|h| h.metric_name() == name);
    let label = |hop: Hop| match hop {
        Hop::ClientToKinesis => "client → Kinesis",
        Hop::KinesisToStore => "Kinesis → DynamoDB",
        Hop::StoreToDownstream => "DynamoDB → downstream",
    };
    Hop::ALL
        .iter()
        .filter_map(|hop| {
            export
                .hops
                .get(hop.metric_name())
                .map(|s| (label(*hop).to_owned(), *s))
        })
        .chain(
            export
                .hops
                .iter()
                .filter(|(name, _)| !known(name))
                .map(|(name, s)| (name.clone(), *s)),
        )
        .chain(std::iter::once(("end to end".to_owned(), export.latency)))
        .filter(|(_, s)| s.count > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_without_a_datapoint_count_zero_loops() {
        let row = |t: i64, count: u64| SecondRow {
            timestamp_ms: t,
            count,
            average_ms: 1.0,
            minimum_ms: 1.0,
            maximum_ms: 1.0,
            p99_ms: None,
        };
        let loops = loops_per_second(&[row(2000, 5), row(5000, 7)], 1000);
        assert_eq!(loops, vec![(1.0, 5.0), (2.0, 0.0), (3.0, 0.0), (4.0, 7.0)]);
    }
}
