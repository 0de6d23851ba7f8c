//! CloudWatch metrics: the namespace, names, dimensions and how each latency is computed.
//!
//! Downstream publishes, per invocation batch, in one PutMetricData call (Values/Counts arrays,
//! StorageResolution 1, unit Milliseconds), each with the dimension `RunId` when the item has one:
//!
//! | metric | dimensions | value |
//! | --- | --- | --- |
//! | `Latency` | RunId | end to end: downstream's clock − client `timestamp` |
//! | `ClientToKinesisLatency` | RunId | Kinesis arrival − client `timestamp` |
//! | `KinesisToStoreLatency` | RunId | `stored_at` − Kinesis arrival |
//! | `StoreToDownstreamLatency` | RunId | downstream's clock − `stored_at` |
//! | `LatencyBucket` | RunId, Bucket | end-to-end latency, counted per bucket ([`crate::buckets`]) |
//! | `HopLatencyBucket` | RunId, Hop, Bucket | each hop's latency, counted per bucket; `Hop` is the hop's metric name |
//! | `RedeliveredRecords` | RunId | items written again (a MODIFY in the stream): counted, not measured (unit Count) |
//! | `MalformedRecords` | Function | records that can never be processed (unit Count) |
//!
//! Each request is measured once, when its item first arrives in the table (an INSERT in the
//! table's stream). A run creates 4 latency metrics, one `LatencyBucket` metric per bucket its
//! end-to-end latencies touch and one `HopLatencyBucket` metric per hop and bucket its hop
//! latencies touch (at most about 125 buckets over two decades of latency, see
//! [`crate::buckets`]; a typical run touches 40 to 100 per series), and `RedeliveredRecords` if
//! anything was delivered twice: 150 to 500 custom metrics. AWS bills custom metrics per
//! metric-month, pro rata by the hour a metric receives data: at $0.30 per metric-month, 500
//! metrics for one hour cost about 500 × 0.30 / 730 ≈ $0.21 per run, plus GetMetricData at $0.01
//! per 1,000 metrics requested (the collector's queries for a run: a few thousand).

use crate::item::Item;

/// Default namespace (the AWS sample's), overridden by `METRIC_NAMESPACE`.
pub const NAMESPACE: &str = "ServerlessDataProcessingPipeline/Latencies";

/// End-to-end latency, ms.
pub const LATENCY: &str = "Latency";
/// End-to-end latency counted per bucket, ms; read as SampleCount per `Bucket`.
pub const LATENCY_BUCKET: &str = "LatencyBucket";
/// Each hop's latency counted per bucket, ms; read as SampleCount per `Hop` and `Bucket`.
pub const HOP_LATENCY_BUCKET: &str = "HopLatencyBucket";
/// Items written to the table again and not measured again (stream MODIFY events), count.
pub const REDELIVERED_RECORDS: &str = "RedeliveredRecords";
/// Records logged and skipped because they can never be processed, count.
pub const MALFORMED_RECORDS: &str = "MalformedRecords";

/// Dimension: the load-test run id.
pub const DIM_RUN_ID: &str = "RunId";
/// Dimension: a latency bucket's label ([`crate::buckets::Bucket::label`]).
pub const DIM_BUCKET: &str = "Bucket";
/// Dimension: a hop, by its latency metric's name ([`Hop::metric_name`]).
pub const DIM_HOP: &str = "Hop";
/// Dimension: the function that counted a malformed record (`midstream`, `downstream`).
pub const DIM_FUNCTION: &str = "Function";

/// Storage resolution of every metric, seconds (high resolution).
pub const STORAGE_RESOLUTION_S: i32 = 1;

/// One hop of the pipeline, with its own latency metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hop {
    /// Client send → Kinesis arrival (API Gateway, upstream, PutRecord).
    ClientToKinesis,
    /// Kinesis arrival → item stored (polling, midstream, BatchWriteItem).
    KinesisToStore,
    /// Item stored → downstream running (DynamoDB stream, polling).
    StoreToDownstream,
}

impl Hop {
    /// All hops, in pipeline order.
    pub const ALL: [Hop; 3] = [
        Hop::ClientToKinesis,
        Hop::KinesisToStore,
        Hop::StoreToDownstream,
    ];

    /// The hop's metric name.
    pub fn metric_name(self) -> &'static str {
        match self {
            Hop::ClientToKinesis => "ClientToKinesisLatency",
            Hop::KinesisToStore => "KinesisToStoreLatency",
            Hop::StoreToDownstream => "StoreToDownstreamLatency",
        }
    }

    /// The hop's latency for `item` seen by downstream at `now_ms`, when the item has the times.
    pub fn latency_ms(self, item: &Item, now_ms: i64) -> Option<i64> {
        match self {
            Hop::ClientToKinesis => Some(item.kinesis_arrival_ms? - item.timestamp_ms),
            Hop::KinesisToStore => Some(item.stored_at_ms? - item.kinesis_arrival_ms?),
            Hop::StoreToDownstream => Some(now_ms - item.stored_at_ms?),
        }
    }
}

/// End-to-end latency of `item` seen by downstream at `now_ms`.
pub fn end_to_end_ms(item: &Item, now_ms: i64) -> i64 {
    now_ms - item.timestamp_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_add_up_to_the_end_to_end_latency() {
        let item = Item {
            id: "i".into(),
            message: "m".into(),
            timestamp_ms: 1_000,
            run_id: None,
            received_at_ms: Some(1_005),
            kinesis_arrival_ms: Some(1_010),
            stored_at_ms: Some(1_050),
        };
        let hops: Vec<i64> = Hop::ALL
            .iter()
            .map(|h| h.latency_ms(&item, 1_200).unwrap())
            .collect();
        assert_eq!(hops, [10, 40, 150]);
        assert_eq!(hops.iter().sum::<i64>(), end_to_end_ms(&item, 1_200));
        let partial = Item {
            stored_at_ms: None,
            ..item
        };
        assert_eq!(Hop::KinesisToStore.latency_ms(&partial, 1_200), None);
        assert_eq!(Hop::ClientToKinesis.latency_ms(&partial, 1_200), Some(10));
    }
}
