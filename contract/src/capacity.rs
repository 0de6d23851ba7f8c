//! The capacity file: `capacity --out DIR` writes `DIR/capacity.json`.
//!
//! A capacity search offers the pipeline steps of constant arrival rate, each under its own run
//! id, drains each step, and judges it. A step is **sustained** when every request was accepted
//! (no failure), the schedule held (at most 1 % of the starts dropped), nothing was lost (exactly
//! the accepted count measured after the drain), the end-to-end p99 stayed within the SLO, and
//! the backlog did not keep growing (over the second half of the load, the backlog grew by at
//! most 5 % of what was accepted in that half, or 10 requests). The capacity is the highest
//! sustained step's accepted rate: every request accepted in it came through with the backlog
//! level, so the pipeline completed loops as fast as the API accepted them.
//!
//! An over-counted step (more measured than accepted) has `lost: null` and is never sustained:
//! its counts cannot show that nothing was lost.
//!
//! Versions: 2 writes `lost` as `null` for an over-counted step (version 1 wrote 0 and could
//! call it sustained); 3 adds what AWS's throttle metrics counted in each step (`throttled`)
//! and the the quota that gave on the way up (`limiting_quota`); versions 1 and 2 are still read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of this format; bumped when a field changes meaning.
pub const CAPACITY_VERSION: u32 = 3;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityFile {
    /// Format version ([`CAPACITY_VERSION`]).
    pub version: u32,
    /// The steps' run ids are `<run_prefix>-s<step>`.
    pub run_prefix: String,
    /// The end-to-end p99 a sustained step stays within, ms.
    pub slo_ms: f64,
    /// Each step's load, seconds.
    pub step_duration_s: f64,
    /// Loops per second the pipeline sustained: the highest sustained step's accepted rate;
    /// `None` when no step was sustained.
    pub sustained_loops_per_s: Option<f64>,
    /// The arrival rate of that step, per second.
    pub sustained_rate_per_s: Option<f64>,
    /// The lowest rate that was not sustained, per second; `None` when the search ended first
    /// (time limit or highest rate reached).
    pub limit_rate_per_s: Option<f64>,
    /// Why the search ended, in words.
    pub ended: String,
    /// The hop whose latency grew first and most on the way to the limit, when a limit was
    /// found.
    pub saturating_hop: Option<SaturatingHop>,
    /// The quota that gave (version 3 on), when one refused anything: the throttle that counted
    /// most at the limit, with the lowest rate at which it first counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limiting_quota: Option<QuotaHit>,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

/// Which hop gave first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaturatingHop {
    /// The hop whose p99 first grew past twice its value at the lowest step (and by 10 ms).
    pub first_to_grow: Option<String>,
    /// The hop whose p99 grew most, in ms, from the lowest step to the limit.
    pub grew_most: String,
    /// That hop's p99 at the lowest step and at the limit, ms.
    pub p99_ms: [f64; 2],
}

/// The quota a capacity search hit first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaHit {
    /// The lowest rate at which it refused something, per second.
    pub rate_per_s: f64,
    /// What it counts ([`crate::quota::ThrottleMetric::label`]).
    pub label: String,
    /// AWS's metric.
    pub metric: String,
    /// The resource (a stream, a table, an API, a function).
    pub resource: String,
    /// How many it refused in that step.
    pub refused: u64,
    /// The quota in words, AWS's figure and the one in force ([`crate::quota::advice`]).
    pub quota: String,
    /// What would lift it.
    pub lift: String,
}

/// One step of constant arrival rate, drained and judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    /// The step's run id.
    pub run_id: String,
    /// Arrival rate offered, per second.
    pub rate_per_s: f64,
    /// Starts the schedule called for.
    pub scheduled: u64,
    /// Starts dropped for want of a free VU.
    pub dropped: u64,
    /// Requests sent.
    pub sent: u64,
    /// Requests the API accepted.
    pub accepted: u64,
    /// Requests that failed (non-2xx, timeouts, connection errors).
    pub failed: u64,
    /// Accepted per second of load.
    pub accepted_per_s: f64,
    /// Loops completed per second during the load's whole seconds (a step of a few seconds
    /// reads low: the last second's loops complete after it).
    pub completed_per_s: f64,
    /// Loops measured after the drain.
    pub processed: u64,
    /// Accepted and not measured after the drain; `None` when over-counted (more measured than
    /// accepted: a duplicate could hide a loss), which is never sustained. Version 1 files
    /// wrote 0 for an over-counted step.
    pub lost: Option<u64>,
    /// Backlog growth over the second half of the load, requests.
    pub backlog_growth: i64,
    /// Seconds from the load's end until the last loop completed.
    pub drain_s: f64,
    /// End-to-end median, ms (from buckets, within 2 %).
    pub p50_ms: Option<f64>,
    /// End-to-end p99, ms (from buckets, within 2 %).
    pub p99_ms: Option<f64>,
    /// Each hop's p99 by metric name, ms (from buckets, within 2 %).
    pub hop_p99_ms: BTreeMap<String, f64>,
    /// What AWS's throttle metrics counted in the step, by `"<metric> <resource>"` (version 3
    /// on; only those above 0).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttled: BTreeMap<String, u64>,
    /// Whether the step was sustained.
    pub sustained: bool,
    /// Why not, in words (empty when sustained).
    pub reasons: Vec<String>,
}

impl CapacityFile {
    /// Parses a capacity file.
    pub fn from_json(text: &str) -> Result<CapacityFile, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The file as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_files_are_read_and_an_unknown_loss_is_null() {
        let v1 = r#"{"version":1,"run_prefix":"cap","slo_ms":1000.0,"step_duration_s":20.0,
            "sustained_loops_per_s":null,"sustained_rate_per_s":null,"limit_rate_per_s":null,
            "ended":"x","saturating_hop":null,"steps":[{"run_id":"cap-s0","rate_per_s":20.0,
            "scheduled":400,"dropped":0,"sent":400,"accepted":400,"failed":0,
            "accepted_per_s":20.0,"completed_per_s":20.0,"processed":401,"lost":0,
            "backlog_growth":0,"drain_s":0.5,"p50_ms":null,"p99_ms":null,"hop_p99_ms":{},
            "sustained":false,"reasons":[]}]}"#;
        let mut file = CapacityFile::from_json(v1).unwrap();
        assert_eq!(file.steps[0].lost, Some(0));
        file.steps[0].lost = None;
        assert!(file.to_json().contains(r#""lost": null"#));
    }
}
