//! The data contract every part of the pipeline shares, so that the load generator, the three
//! functions and the collector cannot disagree about a shape that crosses a process boundary.
//!
//! # Layout
//! - [`payload`]: the request body POSTed to the API, and its validation rules.
//! - [`record`]: the Kinesis record upstream writes and midstream reads.
//! - [`item`]: the DynamoDB item midstream writes and downstream reads from the table's stream.
//! - [`metrics`]: CloudWatch namespace, metric names, dimensions, per-hop latencies.
//! - [`lambda`]: Lambda's own metrics (`AWS/Lambda`, `LambdaInsights`) and a run's view of them.
//! - [`buckets`]: the latency bucket scheme and the histogram percentiles are read from.
//! - [`runfile`]: `loadgen --summary-export run.json`, as the collector reads it.
//! - [`outputs`]: the stack's outputs file (`cdk deploy --outputs-file`, `sandbox up`).
//! - [`export`]: `collector wait --out timestamps.json`, as `collector stats` reads it.
//! - [`run`]: the run model: an export and its run file, with every verdict computed once
//!   (accepted, lost, over-counted, percentiles, loops per second, the run over time).
//! - [`cost`]: what a run would cost on AWS, from one price table (`prices/us-east-1.json`).
//! - [`quota`]: AWS's data-plane quotas and cadences (the sandbox's `aws` profile), and the
//!   metrics AWS publishes when one is hit.
//! - [`capacity`]: `capacity --out DIR`'s `capacity.json`: the steps of a capacity search.
//! - [`tune`]: `tune --out DIR`'s `tune.json`: one step per memory size, and the sizes it
//!   recommends.
//! - [`threshold`]: k6's threshold syntax, over whichever metrics a tool offers.
//! - [`file`]: reading those files with bounded memory.
//! - `remote_write`: Prometheus remote write's messages and encoding (feature `remote-write`).
//! - `cli`: the command lines' shared rules: the error line, exit codes, time and duration
//!   flags (feature `cli`).
//! - [`error`]: why a payload, record or item breaks the contract.
//!
//! # Features
//! - `dynamodb`: [`item::Item`] to and from aws-sdk-dynamodb attribute maps.
//! - `streams`: [`item::Item`] from DynamoDB stream images (serde_dynamo, as aws_lambda_events has them).
//! - `cli`: the command lines' shared handling of flags and exit codes.
//! - `remote-write`: Prometheus remote write, for the live outputs of loadgen and the collector.

pub mod buckets;
pub mod capacity;
#[cfg(feature = "cli")]
pub mod cli;
pub mod cost;
pub mod error;
pub mod export;
pub mod file;
pub mod item;
pub mod lambda;
pub mod metrics;
pub mod outputs;
pub mod payload;
pub mod quota;
pub mod record;
#[cfg(feature = "remote-write")]
pub mod remote_write;
pub mod run;
pub mod runfile;
pub mod threshold;
pub mod tune;

pub use buckets::{Bucket, LatencyHistogram};
pub use error::{one_line, ItemError, PayloadError, RecordError};
pub use item::Item;
pub use payload::Request;
pub use record::KinesisRecord;

/// Now, epoch milliseconds: the clock every time in the contract is read from.
pub fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
