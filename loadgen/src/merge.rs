//! `loadgen merge`: the run files of a distributed run's workers (`--segment I/N`) added up into
//! the whole run's. Counts, failures by kind, checks, accepted ids and the per-second timeline
//! add exactly; so do the request-duration histograms (the same buckets at the same precision),
//! so the merged percentiles are the ones one process would have measured. The window runs from
//! the earliest start to the latest end.
//!
//! Files of different runs or configurations, a share given twice, or a missing share are
//! refused: each would make the totals wrong without saying so. `allow_partial` merges what is
//! there and says which shares are missing; `force` merges anything.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use contract::runfile::{LoadSample, RunFile};

use crate::outcome::FailureKind;
use crate::segment::Segment;
use crate::stats::Stats;
use crate::summary::{Summary, STATUS_CHECK};
use crate::summary_options::TrendStat;
use crate::trends::{Trend, TrendSet};

/// What `merge` tolerates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tolerate {
    /// Missing shares (the totals are then a part of the run, and say so).
    pub partial: bool,
    /// Anything: different run ids or configurations, files without a share, repeated shares.
    pub anything: bool,
}

/// One worker's run file, named for messages.
pub struct Part {
    /// Where it came from.
    pub name: String,
    /// Its content.
    pub file: RunFile,
}

/// The whole run from its workers' files.
pub fn merge(parts: &[Part], tolerate: Tolerate) -> Result<Summary, String> {
    let first = parts.first().ok_or("no run files to merge")?;
    let segments = check(parts, tolerate)?;
    let mut stats = Stats::default();
    let mut trends: BTreeMap<u16, TrendSet> = BTreeMap::new();
    let mut timeline: BTreeMap<i64, LoadSample> = BTreeMap::new();
    let (mut vus_max, mut vus_min_seen, mut vus_max_seen) = (0, 0, 0);
    let (mut dropped, mut scheduled) = (0, None::<u64>);
    for Part { name, file } in parts {
        let run = &file.run;
        add_counts(&mut stats, name, file)?;
        add_trends(&mut trends, file).map_err(|e| format!("{name}: {e}"))?;
        add_timeline(&mut timeline, file);
        vus_max += run.vus_max;
        let [min, max] = run.vus_seen.unwrap_or_else(|| {
            let vus = file.legacy_metric("vus");
            let of = |v: Option<f64>| v.unwrap_or(0.0) as u64;
            [
                of(vus.as_ref().and_then(|m| m.min)),
                of(vus.as_ref().and_then(|m| m.max)),
            ]
        });
        vus_min_seen += min;
        vus_max_seen += max;
        dropped += run.dropped_iterations;
        if let Some(n) = run.scheduled_iterations {
            *scheduled.get_or_insert(0) += n;
        }
    }
    stats.accepted_ids.normalize();
    stats.unaccepted_ids.normalize();
    // The VUs iterating at once: the fewest and most of the workers' per-second samples added
    // up second by second, as one process samples them. Only without a timeline, the sums of
    // each worker's own fewest and most (an upper bound: their peaks need not coincide).
    let sums = timeline.values().map(|s| s.vus);
    let vus_seen = match (sums.clone().min(), sums.max()) {
        (Some(min), Some(max)) => (min, max),
        _ => (vus_min_seen, vus_max_seen),
    };
    let start_ms = parts.iter().map(|p| p.file.run.start_ms).min().unwrap_or(0);
    let end_ms = parts.iter().map(|p| p.file.run.end_ms).max().unwrap_or(0);
    Ok(Summary {
        run_id: first.file.run.run_id.clone(),
        endpoint: first.file.run.endpoint.clone(),
        executor: executor_name(&first.file.run.executor),
        vus_max,
        vus_seen,
        stats,
        trends,
        elapsed: Duration::from_millis(end_ms.saturating_sub(start_ms).max(0) as u64),
        start_ms,
        end_ms,
        dropped: scheduled.map(|_| dropped),
        scheduled,
        timeline: timeline.into_values().collect(),
        max_duration: Duration::from_millis(first.file.run.max_duration_ms.unwrap_or(4000)),
        thresholds: Vec::new(),
        segments,
        trend_stats: TrendStat::defaults(),
        pushed: None,
        unwritten: Vec::new(),
        aborted: {
            let aborted: Vec<String> = parts
                .iter()
                .filter_map(|p| Some(format!("{}: {}", p.name, p.file.run.aborted.as_deref()?)))
                .collect();
            (!aborted.is_empty()).then(|| aborted.join("; "))
        },
    })
}

/// Adds a run file's counts, failures by kind, checks and ids to `stats`.
fn add_counts(stats: &mut Stats, name: &str, file: &RunFile) -> Result<(), String> {
    let run = &file.run;
    let attempted = run.requests_attempted.unwrap_or(run.requests_sent);
    stats.requests += attempted;
    stats.unsent += attempted.saturating_sub(run.requests_sent);
    stats.accepted += run.requests_accepted;
    stats.interrupted += run.interrupted_iterations;
    for (label, n) in &run.failures {
        let kind = FailureKind::from_label(label)
            .ok_or_else(|| format!("{name}: unknown failure kind {label:?}"))?;
        *stats.failures.entry(kind).or_default() += n;
    }
    // Version 6 has these counts in `run`; before, loadgen's own metric shapes held them.
    let metric = |metric: &str| file.legacy_metric(metric);
    stats.http_failed += run.http_failed.unwrap_or_else(|| {
        metric("http_req_failed")
            .and_then(|m| m.passes)
            .unwrap_or(0)
    });
    let [sent, received] = run.data_bytes.unwrap_or_else(|| {
        let count = |name| metric(name).and_then(|m| m.count).unwrap_or(0.0) as u64;
        [count("data_sent"), count("data_received")]
    });
    stats.bytes_sent += sent;
    stats.bytes_received += received;
    for (check, [passes, fails]) in run.checks.iter().flatten() {
        let counts = if check == STATUS_CHECK {
            &mut stats.status_check
        } else {
            &mut stats.duration_check
        };
        counts.0 += passes;
        counts.1 += fails;
    }
    if let Some(ids) = &file.accepted_ids {
        stats.accepted_ids.merge(ids);
    }
    if let Some(ids) = &file.unaccepted_ids {
        stats.unaccepted_ids.merge(ids);
    }
    Ok(())
}

/// Adds a run file's per-second load to the run's, second by second.
fn add_timeline(timeline: &mut BTreeMap<i64, LoadSample>, file: &RunFile) {
    for sample in &file.timeline {
        let merged = timeline.entry(sample.t_ms).or_insert(LoadSample {
            t_ms: sample.t_ms,
            vus: 0,
            requests: 0,
            failures: 0,
            offered: None,
        });
        merged.vus += sample.vus;
        merged.requests += sample.requests;
        merged.failures += sample.failures;
        if let Some(offered) = sample.offered {
            *merged.offered.get_or_insert(0) += offered;
        }
    }
}

/// Adds a run file's timings to `trends`: every trend per status (version 6), or, before, the
/// request durations (counted as the duration and the iteration of a 200).
fn add_trends(trends: &mut BTreeMap<u16, TrendSet>, file: &RunFile) -> Result<(), String> {
    let mut add = |status: u16, trend: Trend, buckets: &[[u64; 2]]| -> Result<(), String> {
        let histogram = trends.entry(status).or_default().get_mut(trend);
        for [value, count] in buckets {
            histogram
                .record_n(*value, *count)
                .map_err(|e| format!("{} value {value}: {e}", trend.name()))?;
        }
        Ok(())
    };
    if let Some(all) = &file.trends {
        for (status, by_trend) in &all.by_status {
            let status: u16 = status
                .parse()
                .map_err(|_| format!("status {status:?} is not a number"))?;
            for (name, buckets) in by_trend {
                if let Some(trend) = Trend::named(name) {
                    add(status, trend, buckets)?;
                }
            }
        }
    } else if let Some(histogram) = &file.histogram {
        add(200, Trend::Duration, &histogram.buckets)?;
        add(200, Trend::Iteration, &histogram.buckets)?;
    }
    Ok(())
}

/// The checks before adding up: one run, one configuration, each share once, every share.
/// Returns the shares, in order.
fn check(parts: &[Part], tolerate: Tolerate) -> Result<Vec<Segment>, String> {
    let first = &parts[0];
    let mut seen: BTreeSet<Segment> = BTreeSet::new();
    let mut count = None;
    for Part { name, file } in parts {
        if tolerate.anything {
            for text in file.run.segments.iter().flatten() {
                seen.extend(Segment::parse(text).ok());
            }
            continue;
        }
        let (a, b) = (&first.file.run, &file.run);
        for (what, x, y) in [
            ("run id", &a.run_id, &b.run_id),
            ("executor", &a.executor, &b.executor),
            ("endpoint", &a.endpoint, &b.endpoint),
        ] {
            if x != y {
                return Err(format!(
                    "{name} has {what} {y:?}, {} has {x:?}: not one run (--force merges anyway)",
                    first.name
                ));
            }
        }
        if a.max_duration_ms != b.max_duration_ms {
            return Err(format!(
                "{name} and {} checked durations against different limits (--force merges anyway)",
                first.name
            ));
        }
        let shares = file.run.segments.as_deref().unwrap_or_default();
        if shares.is_empty() {
            return Err(format!(
                "{name} is not a worker's share (no segments: run workers with --segment I/N)"
            ));
        }
        for text in shares {
            let segment = Segment::parse(text).map_err(|e| format!("{name}: {e}"))?;
            if *count.get_or_insert(segment.count()) != segment.count() {
                return Err(format!(
                    "{name} holds share {segment} of a run split {} ways, not {}",
                    segment.count(),
                    count.unwrap_or_default()
                ));
            }
            if !seen.insert(segment) {
                return Err(format!(
                    "share {segment} is given twice ({name} repeats it): it would count twice"
                ));
            }
        }
    }
    if let Some(count) = count {
        let missing: Vec<String> = (1..=count)
            .filter_map(|i| Segment::new(i, count).ok())
            .filter(|s| !seen.contains(s))
            .map(|s| s.to_string())
            .collect();
        if !missing.is_empty() && !tolerate.partial {
            return Err(format!(
                "shares {} of {count} are missing: their load would be left out of the totals \
                 (--allow-partial merges what is here and says so)",
                missing.join(", ")
            ));
        }
    }
    Ok(seen.into_iter().collect())
}

/// The executor's k6 name as the summary holds it.
fn executor_name(name: &str) -> &'static str {
    [
        "constant-vus",
        "shared-iterations",
        "ramping-vus",
        "constant-arrival-rate",
        "ramping-arrival-rate",
    ]
    .into_iter()
    .find(|known| *known == name)
    .unwrap_or("merged")
}

#[cfg(test)]
mod tests {
    use contract::runfile::{DurationHistogram, RunInfo};

    use super::*;
    use crate::trends::duration_histogram;

    /// A worker's run file of version 5 (one histogram of request durations) holding
    /// `durations_us`.
    fn part(segment: &str, durations_us: &[u64]) -> Part {
        let mut histogram = duration_histogram();
        for d in durations_us {
            histogram.record(*d).unwrap();
        }
        Part {
            name: segment.into(),
            file: RunFile {
                version: 5,
                run: RunInfo {
                    run_id: "r".into(),
                    endpoint: "http://127.0.0.1:1/".into(),
                    executor: "constant-vus".into(),
                    start_ms: 1_000,
                    end_ms: 2_000,
                    vus_max: 1,
                    requests_sent: durations_us.len() as u64,
                    requests_attempted: Some(durations_us.len() as u64),
                    requests_accepted: durations_us.len() as u64,
                    failures: BTreeMap::new(),
                    dropped_iterations: 0,
                    interrupted_iterations: 0,
                    scheduled_iterations: None,
                    segments: Some(vec![segment.into()]),
                    checks: None,
                    max_duration_ms: Some(4000),
                    aborted: None,
                    http_failed: None,
                    data_bytes: None,
                    vus_seen: None,
                },
                root_group: None,
                metrics: BTreeMap::new(),
                trends: None,
                histogram: Some(DurationHistogram {
                    unit: "us".into(),
                    significant_figures: crate::trends::SIGNIFICANT_FIGURES,
                    buckets: histogram
                        .iter_recorded()
                        .map(|v| [v.value_iterated_to(), v.count_at_value()])
                        .collect(),
                }),
                timeline: Vec::new(),
                accepted_ids: None,
                unaccepted_ids: None,
            },
        }
    }

    #[test]
    fn merged_percentiles_are_those_of_all_the_requests_in_one_histogram() {
        // Three workers with different latency shapes, values across four decades.
        let mut all = Vec::new();
        let mut parts = Vec::new();
        for (i, scale) in [(1u64, 7u64), (2, 131), (3, 2_741)] {
            let values: Vec<u64> = (1..=997u64).map(|k| k * scale % 1_000_003 + k).collect();
            all.extend_from_slice(&values);
            parts.push(part(&format!("{i}/3"), &values));
        }
        let merged = merge(&parts, Tolerate::default()).unwrap();
        let mut one = duration_histogram();
        for v in &all {
            one.record(*v).unwrap();
        }
        let merged_durations = merged.all_trends().get(Trend::Duration).clone();
        assert_eq!(merged_durations.len(), one.len());
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged_durations.value_at_quantile(q),
                one.value_at_quantile(q),
                "quantile {q}"
            );
        }
        assert_eq!(merged_durations.mean(), one.mean());
        assert_eq!(merged.stats.requests, all.len() as u64);
    }

    #[test]
    fn the_vus_gauge_is_the_workers_seconds_added_up() {
        let sample = |t_ms, vus| LoadSample {
            t_ms,
            vus,
            requests: 1,
            failures: 0,
            offered: None,
        };
        let gauge = |min: f64, max: f64| serde_json::json!({"min": min, "max": max});
        // Worker 1 peaks in the first second, worker 2 in the second: 5 at most at once, not
        // the 6 their own peaks add up to.
        let mut one = part("1/2", &[5]);
        one.file.timeline = vec![sample(0, 3), sample(1000, 2)];
        one.file.metrics.insert("vus".into(), gauge(2.0, 3.0));
        let mut two = part("2/2", &[5]);
        two.file.timeline = vec![sample(0, 1), sample(1000, 3)];
        two.file.metrics.insert("vus".into(), gauge(1.0, 3.0));
        let mut parts = [one, two];
        let merged = merge(&parts, Tolerate::default()).unwrap();
        assert_eq!(merged.vus_seen, (4, 5));
        // Without timelines, the sums of the workers' own gauges.
        for part in &mut parts {
            part.file.timeline.clear();
        }
        let merged = merge(&parts, Tolerate::default()).unwrap();
        assert_eq!(merged.vus_seen, (3, 6));
    }

    #[test]
    fn different_runs_are_refused_unless_forced() {
        let mut other = part("2/2", &[5]);
        other.file.run.run_id = "other".into();
        let parts = [part("1/2", &[5]), other];
        let refused = merge(&parts, Tolerate::default()).err().unwrap();
        assert!(refused.contains("run id"), "{refused}");
        let forced = Tolerate {
            anything: true,
            ..Tolerate::default()
        };
        assert_eq!(merge(&parts, forced).unwrap().stats.requests, 2);
    }
}
