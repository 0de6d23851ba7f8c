//! One step of a capacity search: what a constant-rate load and its drain came to
//! ([`measure`]), and whether the pipeline sustained it ([`judge`]).

use std::collections::BTreeMap;

use contract::capacity::CapacityStep;
use contract::export::LatencyExport;
use contract::export::OverTimeRow;
use contract::run::Run;
use contract::runfile::RunFile;

/// At most this share of a step's starts may be dropped for the step to count.
pub const MAX_DROPPED_SHARE: f64 = 0.01;
/// Over the second half of the load, the backlog may grow by at most this share of what was
/// accepted in that half.
pub const MAX_BACKLOG_GROWTH_SHARE: f64 = 0.05;
/// Backlog growth below this many requests is noise whatever the rate.
pub const BACKLOG_NOISE: i64 = 10;

/// The step's numbers from its run file and its latency export (taken after the drain);
/// `rate` is the arrival rate offered for `duration`. Not yet judged.
pub fn measure(
    rate: f64,
    duration: std::time::Duration,
    run: &RunFile,
    export: &LatencyExport,
) -> CapacityStep {
    let info = &run.run;
    let failed: u64 = info.failures.values().sum();
    let model = Run::new(export, Some(run), None);
    let points = model.over_time();
    let load_s = ((info.end_ms - info.start_ms) as f64 / 1000.0).max(1e-3);
    // The schedule's own length, in whole seconds.
    let seconds = duration.as_secs_f64().round().max(1.0);
    let load_seconds = |from: i64, to: i64| -> Vec<&OverTimeRow> {
        points
            .iter()
            .filter(|p| p.t_ms >= from && p.t_ms < to)
            .collect()
    };
    let start = info.start_ms.div_euclid(1000) * 1000;
    let end = start + (seconds as i64) * 1000;
    let during = load_seconds(start, end);
    let completed: u64 = during.iter().map(|p| p.completed).sum();
    // The backlog at the end of the second before `t`.
    let backlog_before = |t: i64| {
        points
            .iter()
            .take_while(|p| p.t_ms < t)
            .last()
            .and_then(|p| p.backlog)
            .unwrap_or(0)
    };
    let middle = start + (seconds as i64 / 2) * 1000;
    let backlog_growth = backlog_before(end) - backlog_before(middle);
    let last_loop = export
        .per_second
        .last()
        .map(|r| r.timestamp_ms + 1000)
        .unwrap_or(info.end_ms);
    let hop_p99_ms: BTreeMap<String, f64> = export
        .hop_histograms
        .keys()
        .filter_map(|hop| Some((hop.clone(), model.hop_percentile(hop, 99.0)?)))
        .collect();
    CapacityStep {
        run_id: info.run_id.clone(),
        rate_per_s: rate,
        scheduled: info.scheduled_iterations.unwrap_or(info.requests_sent),
        dropped: info.dropped_iterations,
        sent: info.requests_sent,
        accepted: info.requests_accepted,
        failed,
        accepted_per_s: info.requests_accepted as f64 / load_s,
        completed_per_s: completed as f64 / seconds,
        processed: model.processed(),
        lost: model.lost(),
        backlog_growth,
        drain_s: ((last_loop - info.end_ms) as f64 / 1000.0).max(0.0),
        p50_ms: model.percentile(50.0),
        p99_ms: model.percentile(99.0),
        hop_p99_ms,
        throttled: BTreeMap::new(),
        sustained: false,
        reasons: Vec::new(),
    }
}

/// How long a record may wait for its mapping's poller, seconds: in the sandbox's default
/// profile an idle shard is read every 50 ms at most; on AWS (and the sandbox's aws profile) an
/// idle Kinesis shard once a second and a DynamoDB stream shard every 250 ms.
pub fn poll_lag_s(profile: Option<&str>) -> f64 {
    match profile {
        Some("default") => 0.05,
        _ => {
            (contract::quota::KINESIS_IDLE_POLL_MS + contract::quota::DYNAMODB_STREAM_POLL_MS)
                as f64
                / 1000.0
        }
    }
}

/// Judges `step` against the SLO (ms): sets `sustained` and says why not. The backlog, read
/// second by second, may move by `poll_lag_s` of arrivals without counting as growth (records
/// waiting for a poller that reads once a second are in flight, not behind).
pub fn judge(step: &mut CapacityStep, slo_ms: f64, poll_lag_s: f64) {
    let mut reasons = Vec::new();
    if step.failed > 0 {
        reasons.push(format!("{} requests failed", step.failed));
    }
    if step.dropped as f64 > MAX_DROPPED_SHARE * step.scheduled as f64 {
        reasons.push(format!(
            "{} of {} starts dropped (no free VU: the API slowed down, or raise --max-vus)",
            step.dropped, step.scheduled
        ));
    }
    match step.lost {
        Some(0) => {}
        Some(lost) => reasons.push(format!("{lost} accepted requests never came through")),
        // More measured than accepted: a duplicate could hide a loss, so the counts cannot
        // show that the step lost nothing.
        None => reasons.extend(
            contract::run::Loss::OverCounted {
                measured: step.processed,
                accepted: step.accepted,
            }
            .why_unknown(),
        ),
    }
    match step.p99_ms {
        Some(p99) if p99 > slo_ms => {
            reasons.push(format!("p99 {p99:.0} ms over the SLO of {slo_ms:.0} ms"))
        }
        None if step.accepted > 0 => reasons.push("no latency measured".to_owned()),
        _ => {}
    }
    let half_accepted = step.accepted as f64 / 2.0;
    let allowed = (MAX_BACKLOG_GROWTH_SHARE * half_accepted)
        .max(BACKLOG_NOISE as f64)
        .max(step.rate_per_s * poll_lag_s);
    if step.backlog_growth as f64 > allowed {
        reasons.push(format!(
            "the backlog kept growing ({} more in flight over the second half of the load)",
            step.backlog_growth
        ));
    }
    step.sustained = reasons.is_empty();
    step.reasons = reasons;
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::export::SecondRow;
    use contract::runfile::LoadSample;

    /// 3 s of 100 accepted a second from 10.4 s, and an export whose seconds completed `done`.
    fn files(done: &[(i64, u64)]) -> (RunFile, LatencyExport) {
        let mut run = RunFile::from_json(
            r#"{"version":3,"run":{"run_id":"cap-s0","endpoint":"http://127.0.0.1:1/",
            "executor":"constant-arrival-rate","start_ms":10400,"end_ms":13400,"vus_max":10,
            "requests_sent":300,"requests_accepted":300,"failures":{},"dropped_iterations":0,
            "scheduled_iterations":300},"metrics":{},"histogram":{"unit":"us",
            "significant_figures":3,"buckets":[]},"timeline":[]}"#,
        )
        .unwrap();
        run.timeline = (0..3)
            .map(|i| LoadSample {
                t_ms: 10_400 + i * 1000,
                vus: 10,
                requests: 100,
                failures: 0,
                offered: Some(100),
            })
            .collect();
        let mut export = LatencyExport::from_json(
            r#"{"version":3,"run":{"run_id":"cap-s0","namespace":"n","window_start_ms":0,
            "window_end_ms":20000,"expected":300,"processed":300,"state":"complete","vus":10,
            "load_start_ms":10400,"load_end_ms":13400},"latency":{"count":300,"sum_ms":30000,
            "min_ms":50,"max_ms":200},"per_second":[],"histogram":[],"hops":{}}"#,
        )
        .unwrap();
        for latency in 50..350 {
            export.histogram.record(latency / 2 + 25);
        }
        export.per_second = done
            .iter()
            .map(|&(t, count)| SecondRow {
                timestamp_ms: t,
                count,
                average_ms: 100.0,
                minimum_ms: 50.0,
                maximum_ms: 200.0,
                p99_ms: Some(190.0),
            })
            .collect();
        (run, export)
    }

    #[test]
    fn a_level_backlog_and_a_growing_one_are_told_apart() {
        let (run, export) = files(&[(10_000, 60), (11_000, 100), (12_000, 100), (13_000, 40)]);
        let three = std::time::Duration::from_secs(3);
        let mut kept_up = measure(100.0, three, &run, &export);
        assert_eq!(kept_up.backlog_growth, 0);
        assert_eq!(
            (kept_up.accepted, kept_up.lost, kept_up.failed),
            (300, Some(0), 0)
        );
        assert!((kept_up.accepted_per_s - 100.0).abs() < 1e-9);
        assert!((kept_up.completed_per_s - 260.0 / 3.0).abs() < 1e-9);
        assert!((kept_up.drain_s - 0.6).abs() < 1e-9, "{}", kept_up.drain_s);
        judge(&mut kept_up, 1000.0, 0.05);
        assert!(kept_up.sustained, "{:?}", kept_up.reasons);

        // 50 a second come through: the backlog grows by 50 every second.
        let (run, mut export) = files(&[
            (10_000, 50),
            (11_000, 50),
            (12_000, 50),
            (13_000, 50),
            (14_000, 50),
            (15_000, 50),
        ]);
        export.run.processed = 300;
        let mut behind = measure(100.0, three, &run, &export);
        assert_eq!(behind.backlog_growth, 100);
        judge(&mut behind, 1000.0, 0.05);
        assert!(!behind.sustained);
        assert!(
            behind.reasons[0].contains("backlog kept growing"),
            "{:?}",
            behind.reasons
        );
    }

    fn step() -> CapacityStep {
        CapacityStep {
            run_id: "cap-s0".into(),
            rate_per_s: 100.0,
            scheduled: 2000,
            dropped: 0,
            sent: 2000,
            accepted: 2000,
            failed: 0,
            accepted_per_s: 100.0,
            completed_per_s: 100.0,
            processed: 2000,
            lost: Some(0),
            backlog_growth: 3,
            drain_s: 0.4,
            p50_ms: Some(120.0),
            p99_ms: Some(400.0),
            hop_p99_ms: BTreeMap::new(),
            throttled: BTreeMap::new(),
            sustained: false,
            reasons: Vec::new(),
        }
    }

    #[test]
    fn a_backlog_within_one_poll_of_arrivals_is_not_growth() {
        // 67.5/s for 20 s: 42 more in flight at the end of the second half than at its start
        // is within a second's arrivals, on a shard read once a second.
        let mut s = step();
        s.rate_per_s = 67.5;
        s.accepted = 1350;
        s.backlog_growth = 42;
        judge(&mut s, 2000.0, poll_lag_s(Some("aws at quota scale 0.1")));
        assert!(s.sustained, "{:?}", s.reasons);
        judge(&mut s, 2000.0, poll_lag_s(Some("default")));
        assert!(!s.sustained);
        s.backlog_growth = 100;
        judge(&mut s, 2000.0, poll_lag_s(None));
        assert!(!s.sustained, "more than 1.25 s of arrivals is growth");
    }

    #[test]
    fn an_over_counted_step_is_never_sustained() {
        // Every other number within its limit, but one request more measured than accepted.
        let (run, mut export) = files(&[(10_000, 60), (11_000, 100), (12_000, 100), (13_000, 41)]);
        export.run.processed = 301;
        let mut over = measure(100.0, std::time::Duration::from_secs(3), &run, &export);
        assert_eq!(over.lost, None, "unknown, not 0");
        judge(&mut over, 1000.0, 0.05);
        assert!(!over.sustained, "{:?}", over.reasons);
        assert!(
            over.reasons[0].starts_with("over-counted"),
            "{:?}",
            over.reasons
        );
    }

    #[test]
    fn a_step_within_every_limit_is_sustained() {
        let mut s = step();
        judge(&mut s, 1000.0, 0.05);
        assert!(s.sustained, "{:?}", s.reasons);
    }

    #[test]
    fn each_limit_is_named() {
        type Spoil = fn(&mut CapacityStep);
        let cases: [(Spoil, &str); 6] = [
            (|s| s.failed = 3, "3 requests failed"),
            (|s| s.dropped = 50, "50 of 2000 starts dropped"),
            (
                |s| s.lost = Some(1),
                "1 accepted requests never came through",
            ),
            (
                |s| {
                    s.processed = 2001;
                    s.lost = None;
                },
                "over-counted: 2001 measured of 2000 accepted",
            ),
            (
                |s| s.p99_ms = Some(1500.0),
                "p99 1500 ms over the SLO of 1000 ms",
            ),
            (
                |s| s.backlog_growth = 400,
                "the backlog kept growing (400 more",
            ),
        ];
        for (spoil, said) in cases {
            let mut s = step();
            spoil(&mut s);
            judge(&mut s, 1000.0, 0.05);
            assert!(!s.sustained);
            assert!(
                s.reasons.iter().any(|r| r.contains(said)),
                "{said}: {:?}",
                s.reasons
            );
        }
    }
}
