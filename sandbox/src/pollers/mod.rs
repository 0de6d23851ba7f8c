//! Event source mappings: one poller per shard, reading Kinesis or a DynamoDB stream and invoking
//! the function with the event Lambda would build.
//!
//! Semantics, per shard, as Lambda's: records are delivered in order, at most `batch_size` at a
//! time. A batch the function fails (error, timeout, crash) is retried with backoff, split in
//! halves first when bisect-on-error is set (a split is not a retry); with
//! ReportBatchItemFailures, delivery resumes at the first failed record. A batch retried more
//! than `MaximumRetryAttempts` times, or records older than `MaximumRecordAgeInSeconds`, are
//! discarded and reported on the log with their sequence numbers ([`expiry`]) and to the
//! mapping's on-failure destination ([`destination`]), and the shard moves on; without those
//! limits a failing batch holds the shard until it succeeds.
//!
//! - `poll`: one shard's loop: read, discard what expired, deliver, split, retry, give up;
//! - [`delivery`]: the event, the invocation, and what the answer says is done;
//! - [`shard`]: reading a shard through moto's API;
//! - [`expiry`]: when a failing batch is given up;
//! - [`destination`]: the record of a batch given up, sent where the mapping says;
//! - [`record`]: a stream record's sequence number and arrival time;
//! - [`wake`]: an idle poller woken when its stream is written (the default profile).

mod delivery;
pub mod destination;
pub mod expiry;
mod poll;
mod record;
mod shard;
pub mod wake;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::awsjson::CallError;
use crate::lambda::{FunctionHost, InvokeError};
pub use crate::quota::Cadence;
use crate::quota::Limits;
pub use delivery::event;
pub use destination::OnFailure;
pub use expiry::Expiry;
pub use poll::poll_shard;
pub use shard::{kinesis_stream_name, Shard};

/// What a mapping reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A Kinesis stream.
    Kinesis,
    /// A DynamoDB stream.
    DynamoDbStream,
}

/// Where a new mapping starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record.
    TrimHorizon,
    /// Only new records.
    Latest,
}

/// How a shard is consumed.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// What is read.
    pub kind: SourceKind,
    /// The stream's ARN (the events' `eventSourceARN`).
    pub source_arn: String,
    /// Most records per invocation.
    pub batch_size: usize,
    /// How long to gather records before invoking with fewer than `batch_size` (Lambda's
    /// `MaximumBatchingWindowInSeconds`; zero: invoke with what one read returns).
    pub batching_window: Duration,
    /// Split a failing batch in halves.
    pub bisect_on_error: bool,
    /// The function reports partial failures (`batchItemFailures`).
    pub report_batch_item_failures: bool,
    /// The events' `awsRegion`.
    pub region: String,
    /// When a failing batch is given up.
    pub expiry: Expiry,
    /// The function's ARN (in the record of a batch given up).
    pub function_arn: String,
    /// Where the record of a batch given up is sent, if anywhere.
    pub on_failure: Option<OnFailure>,
    /// How often an idle shard is read ([`Cadence::FAST`], or Lambda's in the aws profile).
    pub cadence: Cadence,
    /// AWS's quotas (the aws profile): a Kinesis shard's reads count against its read quota.
    pub quotas: Option<Arc<Limits>>,
    /// Woken when the stream is written ([`wake`], the default profile): an idle shard is read
    /// at once rather than at the end of its back-off.
    pub wake: Option<Arc<tokio::sync::Notify>>,
}

/// Delays before retrying a failed batch (growing). How long an idle shard waits is the
/// mapping's [`Cadence`].
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Reads one shard's records, in order.
pub trait ShardSource: Send + Sync {
    /// The shard's id (`shardId-000000000000`).
    fn shard_id(&self) -> &str;

    /// Up to `limit` more records (possibly none yet).
    fn next_records(
        &mut self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Value>, CallError>> + Send;
}

/// Invokes the function.
pub trait Invoker: Send + Sync {
    /// One synchronous invocation.
    fn invoke(&self, payload: Bytes) -> impl Future<Output = Result<Bytes, InvokeError>> + Send;

    /// A batch whose last record reached the stream `age` ago is being handed over (Lambda's
    /// `IteratorAge`).
    fn batch_delivered(&self, _age: Duration) {}
}

impl Invoker for Arc<FunctionHost> {
    fn invoke(&self, payload: Bytes) -> impl Future<Output = Result<Bytes, InvokeError>> + Send {
        FunctionHost::invoke(self, payload)
    }

    fn batch_delivered(&self, age: Duration) {
        self.telemetry().batch_delivered(age);
    }
}

#[cfg(test)]
mod tests;
