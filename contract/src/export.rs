//! The latency export: `collector wait --out timestamps.json`, read by `collector stats`.
//!
//! The run's metadata, expected vs processed counts, the per-second datapoints of the `Latency`
//! metric, the bucket histogram (per-request percentiles), and per-hop summaries. pandas loads
//! the per-second table in one line:
//!
//! ```text
//! import json, pandas as pd; df = pd.DataFrame(json.load(open("timestamps.json"))["per_second"])
//! ```
//!
//! `collector stats` also reads the AWS sample's export: a bare JSON array of per-second averages.
//!
//! Versions: 2 adds `run.redelivered` and the `over-counted` state, and `complete` means that
//! exactly the expected count was measured (version 1 said so for at least). 3 adds each hop's
//! bucket histogram (`hop_histograms`), each second's end-to-end p99 (`per_second[].p99_ms`) and,
//! when the wait had the run file, the run second by second (`over_time`: accepted, completed,
//! backlog, p99).
//! 4 adds what Lambda's own metrics say about the run's window (`lambda`: per function
//! invocations, errors, throttles, duration, concurrency, cold starts, memory, iterator age).
//! 5 adds what AWS's throttle metrics say about the window (`throttles`: Kinesis records and
//! reads refused, DynamoDB writes throttled, the API's 4xx and 5xx answers, Lambda's throttles),
//! and the sandbox's profile.
//! Version 1 and 2 exports are still read (`redelivered` 0, no hop histograms, no p99 per
//! second).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::buckets::LatencyHistogram;

/// Version of this format; bumped when a field changes meaning.
pub const EXPORT_VERSION: u32 = 5;

/// How `collector wait` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitState {
    /// Exactly the expected count was measured.
    Complete,
    /// More were measured than the API accepted: a batch reached downstream twice, so the
    /// counts cannot show that nothing was lost (a duplicate can hide a loss);
    /// `collector audit` checks the table.
    OverCounted,
    /// No new datapoint for the quiet period, short of the expected count.
    DrainedShort,
    /// The time limit passed first.
    TimedOut,
}

/// The whole export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyExport {
    /// Format version ([`EXPORT_VERSION`]).
    pub version: u32,
    /// Which run, where, and how the wait ended.
    pub run: ExportRun,
    /// End-to-end latency: exact count, sum, minimum and maximum over the run.
    pub latency: StatSummary,
    /// The `Latency` metric per second (seconds with no datapoint are left out).
    pub per_second: Vec<SecondRow>,
    /// Per-request end-to-end latencies, counted per bucket (SampleCount of `LatencyBucket`).
    pub histogram: LatencyHistogram,
    /// Per-hop summaries by metric name (`ClientToKinesisLatency`, ...).
    pub hops: BTreeMap<String, StatSummary>,
    /// Per-request latencies of each hop, counted per bucket (SampleCount of `HopLatencyBucket`),
    /// by the hop's metric name; empty before version 3.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hop_histograms: BTreeMap<String, LatencyHistogram>,
    /// The run second by second, when the wait had the run file (version 3 on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub over_time: Vec<OverTimeRow>,
    /// Lambda's own metrics over the window (version 4 on; `None` before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<crate::lambda::LambdaView>,
    /// AWS's throttle metrics over the window (version 5 on; `None` before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttles: Option<crate::quota::ThrottleView>,
}

/// One second of the run: what the API accepted, what the pipeline completed, the backlog
/// between them (accepted so far minus completed so far: what is in flight) and the p99 of the
/// loops completed in it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OverTimeRow {
    /// Start of the second, epoch ms (whole seconds).
    pub t_ms: i64,
    /// Requests the API accepted in the second; `None` without the run file.
    pub accepted: Option<u64>,
    /// Loops completed (measured by downstream) in the second.
    pub completed: u64,
    /// Accepted so far minus completed so far at the end of the second; `None` without the
    /// run file.
    pub backlog: Option<i64>,
    /// End-to-end p99 of the loops completed in the second, ms.
    pub p99_ms: Option<f64>,
}

/// The run's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRun {
    /// The `RunId` dimension queried.
    pub run_id: String,
    /// The metric namespace queried.
    pub namespace: String,
    /// Start of the queried window, epoch ms.
    pub window_start_ms: i64,
    /// End of the queried window, epoch ms.
    pub window_end_ms: i64,
    /// Requests accepted by the API (from the run file), when known.
    pub expected: Option<u64>,
    /// Requests measured by downstream (SampleCount of `Latency`).
    pub processed: u64,
    /// Items written to the table again, counted and not measured (`RedeliveredRecords`).
    #[serde(default)]
    pub redelivered: u64,
    /// How the wait ended.
    pub state: WaitState,
    /// VUs of the run (from the run file), when known.
    pub vus: Option<u64>,
    /// The load's window from the run file (first send, last response), epoch ms.
    pub load_start_ms: Option<i64>,
    /// See `load_start_ms`.
    pub load_end_ms: Option<i64>,
    /// Metrics the collector requested from GetMetricData for this run (what its reads cost on
    /// AWS; version 4 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_requested: Option<u64>,
}

/// One second of the `Latency` metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SecondRow {
    /// Start of the second, epoch ms.
    pub timestamp_ms: i64,
    /// Requests that completed the loop in this second.
    pub count: u64,
    /// Their mean end-to-end latency, ms.
    pub average_ms: f64,
    /// Their smallest latency, ms.
    pub minimum_ms: f64,
    /// Their largest latency, ms.
    pub maximum_ms: f64,
    /// Their 99th percentile, ms, from the second's bucket counts (within 2 %); version 3 on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// Exact statistics of one metric over the window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StatSummary {
    /// Samples.
    pub count: u64,
    /// Sum of the values, ms.
    pub sum_ms: f64,
    /// Smallest value, ms (0 when there is none).
    pub min_ms: f64,
    /// Largest value, ms (0 when there is none).
    pub max_ms: f64,
}

impl StatSummary {
    /// Mean, ms; `None` without samples.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms / self.count as f64)
    }
}

impl LatencyExport {
    /// Parses an export.
    pub fn from_json(text: &str) -> Result<LatencyExport, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The export as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut histogram = LatencyHistogram::new();
        histogram.record(120);
        histogram.record(130);
        let export = LatencyExport {
            version: EXPORT_VERSION,
            run: ExportRun {
                run_id: "r".into(),
                namespace: "NS".into(),
                window_start_ms: 0,
                window_end_ms: 2000,
                expected: Some(2),
                processed: 2,
                redelivered: 1,
                state: WaitState::Complete,
                vus: Some(10),
                load_start_ms: Some(0),
                load_end_ms: Some(1000),
                metrics_requested: Some(12),
            },
            latency: StatSummary {
                count: 2,
                sum_ms: 250.0,
                min_ms: 120.0,
                max_ms: 130.0,
            },
            per_second: vec![SecondRow {
                timestamp_ms: 1000,
                count: 2,
                average_ms: 125.0,
                minimum_ms: 120.0,
                maximum_ms: 130.0,
                p99_ms: Some(130.0),
            }],
            histogram: histogram.clone(),
            hops: BTreeMap::from([("ClientToKinesisLatency".to_owned(), StatSummary::default())]),
            hop_histograms: BTreeMap::from([("ClientToKinesisLatency".to_owned(), histogram)]),
            over_time: vec![OverTimeRow {
                t_ms: 1000,
                accepted: Some(2),
                completed: 2,
                backlog: Some(0),
                p99_ms: Some(130.0),
            }],
            lambda: Some(crate::lambda::LambdaView::default()),
            throttles: Some(crate::quota::ThrottleView {
                profile: Some("aws at quota scale 0.1".into()),
                ..Default::default()
            }),
        };
        let json = export.to_json();
        assert!(json.contains(r#""state": "complete""#), "{json}");
        assert_eq!(LatencyExport::from_json(&json).unwrap(), export);
        assert_eq!(export.latency.mean_ms(), Some(125.0));

        // Version 1: no `redelivered`.
        let v1 = json.replace(r#""redelivered": 1,"#, "");
        assert_ne!(v1, json);
        assert_eq!(LatencyExport::from_json(&v1).unwrap().run.redelivered, 0);

        // Version 2: no hop histograms, no p99 per second.
        let mut v2 = export.clone();
        v2.hop_histograms.clear();
        v2.over_time.clear();
        v2.lambda = None;
        v2.per_second[0].p99_ms = None;
        let text = v2.to_json();
        assert!(
            !text.contains("hop_histograms")
                && !text.contains("p99_ms")
                && !text.contains("lambda"),
            "{text}"
        );
        assert_eq!(LatencyExport::from_json(&text).unwrap(), v2);
    }
}
