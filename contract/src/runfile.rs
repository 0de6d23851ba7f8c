//! The run file: `loadgen --summary-export run.json`, read by `collector`.
//!
//! From version 6 it is, key for key, the file k6 1.1.0 writes with `--summary-export` (`metrics`
//! in k6's shapes and JSON types, `root_group` with the checks), so that a k6 user's scripts and
//! tools read it unchanged; what loadgen adds has keys of its own, which k6's readers pass over:
//! `version`, `run` (the run's id, window, endpoint, sent and accepted counts, failures by kind),
//! `trends` (each k6 timing trend as a histogram, per response status), `timeline` (the load
//! second by second), `accepted_ids` and `unaccepted_ids`.
//!
//! Durations in `metrics` are milliseconds, as in k6's export; histograms are in microseconds.
//!
//! Versions: 2 adds `accepted_ids`, the ids of the accepted requests as ranges, which
//! `collector audit` checks against the table, and `run.interrupted_iterations`. Version 3 adds,
//! for the arrival-rate executors, `run.scheduled_iterations` and each second's `offered` starts,
//! and `run.requests_attempted`, with `requests_sent` counting only requests that went out on a
//! connection. Version 4 adds, for runs spread over several machines, `run.segments` (which
//! workers' shares the file holds: `loadgen --segment I/N` writes one, `loadgen merge` all), and
//! `run.checks` and `run.max_duration_ms`, so that merged runs print the same summary.
//! Version 5 adds `unaccepted_ids`: the requests sent and not answered 2xx, which the API may
//! have taken all the same (an answer lost after the record was written), so that the audit
//! can say which of them reached the table; and `run.aborted`, why a run ended before its
//! schedule did. Version 6 writes `metrics` in k6's own shapes (a rate's `value`, integers as
//! integers, every timing trend k6 writes, `thresholds` as k6 writes them) with `root_group`,
//! and replaces `histogram` (one histogram of request durations) with `trends` (every trend, per
//! status), with the counts merging needs in `run`. Files of versions 1 to 5 are still read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of this format; bumped when a field changes meaning.
pub const RUN_FILE_VERSION: u32 = 6;

/// The whole run file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    /// Format version ([`RUN_FILE_VERSION`]).
    pub version: u32,
    /// What the collector needs to find and judge the run's metrics.
    pub run: RunInfo,
    /// k6's summary-export `root_group`: the checks, with their ids (version 6 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_group: Option<serde_json::Value>,
    /// k6's summary-export metrics by name (`http_req_duration`, `http_reqs`, ...), in k6's
    /// shapes: `{avg, min, med, max, p(90), p(95)}` for a trend, `{count, rate}` for a counter,
    /// `{passes, fails, value}` for a rate, `{value, min, max}` for a gauge, with `thresholds`
    /// (`{"p(95)<500": crossed}`). Before version 6, loadgen's own shapes.
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// Each k6 timing trend as a histogram, per response status (version 6 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trends: Option<TrendHistograms>,
    /// Request durations (send to last response byte), merged over every VU (before version 6;
    /// `trends` holds them since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<DurationHistogram>,
    /// The load, second by second.
    pub timeline: Vec<LoadSample>,
    /// Which requests were accepted (version 2 on; `None` in version 1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_ids: Option<IdRanges>,
    /// Which requests were sent and not accepted: answered with an error status, timed out,
    /// cut off, or interrupted in flight (version 5 on). The API may have written some of them
    /// to the stream before its answer was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unaccepted_ids: Option<IdRanges>,
}

/// A set of the run's request ids, compactly: loadgen's ids are `<run_id>-<vu>-<iteration>`,
/// each VU's iterations counted from 0, so one VU's accepted iterations are a few ranges (one,
/// when none failed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdRanges {
    /// `[vu, first, end]`: VU `vu`'s iterations `first..end` (end exclusive) were accepted.
    /// Ascending by VU, then by iteration; ranges of one VU neither touch nor overlap.
    pub ranges: Vec<[u64; 3]>,
}

impl IdRanges {
    /// Adds VU `vu`'s iteration `iteration`; one VU's iterations come in order.
    pub fn push(&mut self, vu: u64, iteration: u64) {
        match self.ranges.last_mut() {
            Some([v, _, end]) if *v == vu && *end == iteration => *end += 1,
            _ => self.ranges.push([vu, iteration, iteration + 1]),
        }
    }

    /// Adds another set (other VUs, or later iterations). Cheap: call [`IdRanges::normalize`]
    /// once after the last merge.
    pub fn merge(&mut self, other: &IdRanges) {
        self.ranges.extend_from_slice(&other.ranges);
    }

    /// Sorts the ranges and joins those that touch.
    pub fn normalize(&mut self) {
        self.ranges.sort_unstable();
        let mut merged: Vec<[u64; 3]> = Vec::with_capacity(self.ranges.len());
        for range in self.ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if last[0] == range[0] && last[2] >= range[1] => {
                    last[2] = last[2].max(range[2]);
                }
                _ => merged.push(range),
            }
        }
        self.ranges = merged;
    }

    /// How many ids.
    pub fn count(&self) -> u64 {
        self.ranges
            .iter()
            .map(|[_, first, end]| end.saturating_sub(*first))
            .sum()
    }

    /// Every id of run `run_id`, in order.
    pub fn ids<'a>(&'a self, run_id: &'a str) -> impl Iterator<Item = String> + 'a {
        self.ranges.iter().flat_map(move |&[vu, first, end]| {
            (first..end).map(move |i| format!("{run_id}-{vu}-{i}"))
        })
    }
}

/// How far the clocks on a request's way (the client's, the API's, the functions') may differ,
/// ms: a time stamped on the way may lie this far outside the run's window.
pub const CLOCK_SLACK_MS: i64 = 5_000;

/// The run's identity, window and counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The `run_id` every request carried (the `RunId` metric dimension).
    pub run_id: String,
    /// The URL requests were POSTed to.
    pub endpoint: String,
    /// Executor: `constant-vus`, `shared-iterations`, `ramping-vus` or `constant-arrival-rate`.
    pub executor: String,
    /// First request's send time, epoch ms.
    pub start_ms: i64,
    /// Last response's arrival, epoch ms.
    pub end_ms: i64,
    /// Most VUs the run could use.
    pub vus_max: u64,
    /// Requests sent on a connection (whatever their outcome). Before version 3 this counted
    /// the attempts, those that never got a connection included.
    pub requests_sent: u64,
    /// Requests attempted, those that never got a connection (refused, DNS, TLS) included
    /// (version 3 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_attempted: Option<u64>,
    /// Requests answered 2xx: the number the pipeline must process.
    pub requests_accepted: u64,
    /// Failed requests by kind (`status_500`, `timeout`, `refused`, `reset`, `connect`, ...).
    pub failures: BTreeMap<String, u64>,
    /// Iterations the arrival-rate executor could not start for want of a free VU.
    pub dropped_iterations: u64,
    /// Requests abandoned in flight (version 2 on): whether the API accepted them is unknown,
    /// so a pipeline count may exceed `requests_accepted` by up to this many.
    #[serde(default)]
    pub interrupted_iterations: u64,
    /// Arrival-rate executors (version 3 on): iterations the schedule called for, started or
    /// dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_iterations: Option<u64>,
    /// The workers' shares of a distributed run this file holds (version 4 on): `["2/4"]` from
    /// worker 2 of 4 (`loadgen --segment 2/4`), every worker's share after `loadgen merge`;
    /// absent for a run from one process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
    /// Each check's passes and fails, by name (version 4 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, [u64; 2]>>,
    /// The duration check's limit, ms (version 4 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_ms: Option<u64>,
    /// Why the run ended before its schedule did, when it did (version 5 on): e.g. `loadgen
    /// received SIGINT (interrupt) 3.0 s into the run`. The counts are the run's up to then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// Requests k6 counts as failed (`http_req_failed`: no answer, or a status outside
    /// 200-399), version 6 on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_failed: Option<u64>,
    /// Request bytes sent and response bytes received (`data_sent`, `data_received`), version 6
    /// on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_bytes: Option<[u64; 2]>,
    /// The fewest and most VUs iterating at once (`vus`' min and max), version 6 on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus_seen: Option<[u64; 2]>,
}

/// One metric's summary as loadgen wrote it before version 6 (read with
/// [`RunFile::legacy_metric`]); which fields are set depends on the metric type.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Counter: total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
    /// Counter: per second; rate metrics: fraction of passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Rate metric: samples that were true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes: Option<u64>,
    /// Rate metric: samples that were false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fails: Option<u64>,
    /// Gauge: last value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Trend: mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg: Option<f64>,
    /// Trend or gauge: minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Trend: median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<f64>,
    /// Trend or gauge: maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Trend: 90th percentile.
    #[serde(default, rename = "p(90)", skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    /// Trend: 95th percentile.
    #[serde(default, rename = "p(95)", skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    /// Trend: 99th percentile.
    #[serde(default, rename = "p(99)", skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
}

/// Every k6 timing trend of the run as a sparse histogram, per response status (`"200"`, and
/// `"0"` for requests without an answer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrendHistograms {
    /// Unit of the values: always `us`.
    pub unit: String,
    /// HdrHistogram precision the buckets were recorded with.
    pub significant_figures: u8,
    /// Status → trend name (`http_req_duration`, `http_req_waiting`, ...) → `[value_us, count]`,
    /// ascending by value.
    pub by_status: BTreeMap<String, BTreeMap<String, Vec<[u64; 2]>>>,
}

/// A sparse histogram: every non-empty HdrHistogram bucket as `[value_us, count]`, where
/// `value_us` is the highest value equivalent to the bucket's samples.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DurationHistogram {
    /// Unit of the values: always `us`.
    pub unit: String,
    /// HdrHistogram precision the buckets were recorded with.
    pub significant_figures: u8,
    /// `[value_us, count]`, ascending by value.
    pub buckets: Vec<[u64; 2]>,
}

/// The load during one second of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadSample {
    /// Start of the second, epoch ms: a whole second of the wall clock from version 3 on (the
    /// first and last partial), so that it lines up with the pipeline's per-second metrics;
    /// before, seconds counted from the run's start.
    pub t_ms: i64,
    /// Active VUs at the end of the second.
    pub vus: u64,
    /// Requests completed in the second.
    pub requests: u64,
    /// Of those, failed.
    pub failures: u64,
    /// Arrival-rate executors (version 3 on): iterations the schedule started in the second,
    /// dropped ones included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered: Option<u64>,
}

impl LoadSample {
    /// Requests the API accepted in the second.
    pub fn accepted(&self) -> u64 {
        self.requests.saturating_sub(self.failures)
    }
}

impl RunInfo {
    /// Whether `at_ms` (epoch ms, stamped on a request's way) lies within the run's window,
    /// give or take [`CLOCK_SLACK_MS`].
    pub fn holds(&self, at_ms: i64) -> bool {
        (self.start_ms - CLOCK_SLACK_MS..=self.end_ms + CLOCK_SLACK_MS).contains(&at_ms)
    }
}

impl RunFile {
    /// A metric of a file before version 6, in loadgen's own shape of then.
    pub fn legacy_metric(&self, name: &str) -> Option<MetricSummary> {
        serde_json::from_value(self.metrics.get(name)?.clone()).ok()
    }

    /// Parses a run file, saying what is wrong with one that is not.
    pub fn from_json(text: &str) -> Result<RunFile, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The run file as pretty JSON.
    pub fn to_json(&self) -> String {
        // Maps with string keys, numbers and strings: serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_ids_are_ranges_per_vu() {
        let mut a = IdRanges::default();
        for i in [0, 1, 2, 4, 5] {
            a.push(0, i);
        }
        let mut b = IdRanges::default();
        b.push(1, 0);
        b.push(0, 6);
        a.merge(&b);
        a.normalize();
        assert_eq!(a.ranges, [[0, 0, 3], [0, 4, 7], [1, 0, 1]]);
        assert_eq!(a.count(), 7);
        let ids: Vec<String> = a.ids("r").collect();
        assert_eq!(
            ids,
            ["r-0-0", "r-0-1", "r-0-2", "r-0-4", "r-0-5", "r-0-6", "r-1-0"]
        );
    }

    #[test]
    fn version_1_and_5_files_are_read() {
        let mut file = sample();
        file.version = 1;
        file.accepted_ids = None;
        file.unaccepted_ids = None;
        file.root_group = None;
        file.trends = None;
        file.histogram = Some(DurationHistogram {
            unit: "us".into(),
            significant_figures: 3,
            buckets: vec![[1000, 4], [9000, 1]],
        });
        file.metrics = [(
            "http_req_failed".to_owned(),
            serde_json::json!({"rate": 0.2, "passes": 1, "fails": 4}),
        )]
        .into();
        let json = file.to_json();
        assert!(!json.contains("accepted_ids") && !json.contains("trends"));
        let read = RunFile::from_json(&json).unwrap();
        assert_eq!(read, file);
        let failed = read.legacy_metric("http_req_failed").unwrap();
        assert_eq!((failed.passes, failed.rate), (Some(1), Some(0.2)));
    }

    #[test]
    fn round_trips_with_k6s_number_types() {
        let file = sample();
        let json = file.to_json();
        // An integer stays an integer, as in k6's export.
        assert!(json.contains(r#""count": 14292"#), "{json}");
        assert!(json.contains(r#""p(95)": 3.5"#), "{json}");
        assert_eq!(RunFile::from_json(&json).unwrap(), file);
    }

    fn sample() -> RunFile {
        let metrics = [
            (
                "http_req_duration".to_owned(),
                serde_json::json!({"avg": 1.5, "min": 1, "med": 1.4, "max": 9, "p(90)": 2, "p(95)": 3.5}),
            ),
            (
                "http_reqs".to_owned(),
                serde_json::json!({"count": 14292, "rate": 1426.6}),
            ),
        ]
        .into();
        RunFile {
            version: RUN_FILE_VERSION,
            run: RunInfo {
                run_id: "r".into(),
                endpoint: "http://127.0.0.1:1/prod/".into(),
                executor: "constant-vus".into(),
                start_ms: 1,
                end_ms: 2,
                vus_max: 10,
                requests_sent: 5,
                requests_accepted: 4,
                failures: [("status_500".to_owned(), 1)].into(),
                dropped_iterations: 0,
                interrupted_iterations: 0,
                scheduled_iterations: None,
                requests_attempted: None,
                segments: None,
                checks: None,
                max_duration_ms: None,
                aborted: None,
                http_failed: Some(1),
                data_bytes: Some([500, 100]),
                vus_seen: Some([10, 10]),
            },
            root_group: Some(
                serde_json::json!({"name": "", "path": "", "groups": {}, "checks": {}}),
            ),
            metrics,
            trends: Some(TrendHistograms {
                unit: "us".into(),
                significant_figures: 3,
                by_status: [(
                    "200".to_owned(),
                    [("http_req_duration".to_owned(), vec![[1000, 4], [9000, 1]])].into(),
                )]
                .into(),
            }),
            histogram: None,
            timeline: vec![LoadSample {
                t_ms: 1,
                vus: 10,
                requests: 5,
                failures: 1,
                offered: None,
            }],
            accepted_ids: Some(IdRanges {
                ranges: vec![[0, 0, 4]],
            }),
            unaccepted_ids: Some(IdRanges {
                ranges: vec![[0, 4, 5]],
            }),
        }
    }
}
