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
//! - [`delivery`]: the event, the invocation, and what the answer says is done;
//! - [`shard`]: reading a shard through moto's API;
//! - [`expiry`]: when a failing batch is given up;
//! - [`destination`]: the record of a batch given up, sent where the mapping says;
//! - [`record`]: a stream record's sequence number and arrival time.

mod delivery;
pub mod destination;
pub mod expiry;
mod record;
mod shard;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::awsjson::CallError;
use crate::lambda::{FunctionHost, InvokeError, LogSink};
use crate::Shutdown;
pub use delivery::event;
use delivery::{deliver, Delivery};
pub use destination::OnFailure;
use destination::{Condition, GivenUp};
pub use expiry::Expiry;
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
}

/// Delays: between empty polls (growing), and before retrying a failed batch (growing). An idle
/// shard is read 20 times a second at most: the first records after a quiet spell wait at most
/// 50 ms per stream (at 200 ms, the first second of a benchmark averaged 300 ms end to end).
const IDLE_MIN: Duration = Duration::from_millis(10);
const IDLE_MAX: Duration = Duration::from_millis(50);
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

/// Consumes one shard until `stop` says stop.
pub async fn poll_shard<S: ShardSource, I: Invoker>(
    config: PollerConfig,
    mut source: S,
    invoker: I,
    logs: LogSink,
    function: String,
    mut stop: Shutdown,
) {
    let mut pending: VecDeque<Value> = VecDeque::new();
    let mut size = config.batch_size.max(1);
    let mut idle = IDLE_MIN;
    let mut retry = RETRY_MIN;
    // Failed deliveries of the batch at the head, splits aside.
    let mut retries = 0u32;
    while !stop.is_stopping() {
        if pending.is_empty() {
            match source.next_records(config.batch_size).await {
                Ok(records) if records.is_empty() => {
                    stop.sleep(idle).await;
                    idle = (idle * 2).min(IDLE_MAX);
                    continue;
                }
                Ok(records) => {
                    idle = IDLE_MIN;
                    pending.extend(records);
                    gather(
                        &config,
                        &mut source,
                        &mut pending,
                        &mut stop,
                        &logs,
                        &function,
                    )
                    .await;
                }
                Err(error) => {
                    logs(
                        &function,
                        &format!("poller: reading {}: {error}", config.source_arn),
                    );
                    stop.sleep(RETRY_MAX).await;
                    continue;
                }
            }
        }
        // Records past the mapping's maximum age, from the head (none without a limit).
        let expired = config
            .expiry
            .expired(config.kind, &pending, contract::epoch_ms());
        if expired > 0 {
            let head: Vec<&Value> = pending.iter().take(expired).collect();
            let age = config.expiry.max_record_age.unwrap_or_default();
            let why = format!(
                "older than the mapping's MaximumRecordAgeInSeconds ({} s)",
                age.as_secs()
            );
            logs(&function, &expiry::discarded(config.kind, &head, &why));
            let given_up = given_up(
                &config,
                &source,
                Condition::RecordAgeExceeded,
                retries,
                &head,
            );
            record_given_up(&config, &given_up, &logs, &function).await;
            pending.drain(..expired);
            (size, retries) = (config.batch_size.max(1), 0);
            continue;
        }
        let n = size.min(pending.len());
        let batch: Vec<&Value> = pending.iter().take(n).collect();
        // Why the batch is retried (`None`: it was split, which is not a retry).
        let failed = match deliver(&config, source.shard_id(), &invoker, &batch).await {
            Delivery::Done => {
                pending.drain(..n);
                size = config.batch_size.max(1);
                (retry, retries) = (RETRY_MIN, 0);
                continue;
            }
            Delivery::FailedFrom(index) => {
                logs(
                    &function,
                    &format!("poller: {index} of {n} records done; retrying from record {index}"),
                );
                pending.drain(..index);
                Some(format!(
                    "the function reported record {index} of {n} failed"
                ))
            }
            Delivery::Failed(reason) if config.bisect_on_error && n > 1 => {
                // Splitting is not a retry (Lambda's rule).
                size = (n / 2).max(1);
                logs(
                    &function,
                    &format!(
                        "poller: batch of {n} failed ({reason}); retrying with {size} records"
                    ),
                );
                None
            }
            Delivery::Failed(reason) => {
                logs(
                    &function,
                    &format!("poller: batch of {n} failed ({reason}); retrying"),
                );
                Some(reason)
            }
        };
        if let Some(reason) = failed {
            retries += 1;
            if config.expiry.retries_exhausted(retries) {
                let n = size.min(pending.len());
                let batch: Vec<&Value> = pending.iter().take(n).collect();
                let why = format!(
                    "retried {} times, the mapping's MaximumRetryAttempts; last: {reason}",
                    retries - 1
                );
                logs(&function, &expiry::discarded(config.kind, &batch, &why));
                let given_up = given_up(
                    &config,
                    &source,
                    Condition::RetryAttemptsExhausted,
                    retries,
                    &batch,
                );
                record_given_up(&config, &given_up, &logs, &function).await;
                pending.drain(..n);
                (size, retry, retries) = (config.batch_size.max(1), RETRY_MIN, 0);
                continue;
            }
        }
        stop.sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

fn given_up<'a, S: ShardSource>(
    config: &'a PollerConfig,
    source: &'a S,
    condition: Condition,
    invocations: u32,
    records: &'a [&'a Value],
) -> GivenUp<'a> {
    GivenUp {
        kind: config.kind,
        stream_arn: &config.source_arn,
        shard_id: source.shard_id(),
        function_arn: &config.function_arn,
        condition,
        invocations,
        records,
        at_ms: contract::epoch_ms(),
    }
}

/// Sends the record of a batch given up to the mapping's on-failure destination, once (as
/// Lambda, which does not retry a destination either); the log says how it went.
async fn record_given_up(
    config: &PollerConfig,
    given_up: &GivenUp<'_>,
    logs: &LogSink,
    function: &str,
) {
    let Some(destination) = &config.on_failure else {
        return;
    };
    let line = match destination.send(given_up).await {
        Ok(()) => format!(
            "poller: the record of the discarded batch sent to {}",
            destination.arn
        ),
        Err(error) => format!(
            "poller: the record of the discarded batch not sent to {}: {error}",
            destination.arn
        ),
    };
    logs(function, &line);
}

/// The batching window: reads more until the batch is full or the window, counted from the first
/// record, has passed.
async fn gather<S: ShardSource>(
    config: &PollerConfig,
    source: &mut S,
    pending: &mut VecDeque<Value>,
    stop: &mut Shutdown,
    logs: &LogSink,
    function: &str,
) {
    if config.batching_window.is_zero() {
        return;
    }
    let deadline = tokio::time::Instant::now() + config.batching_window;
    let mut idle = IDLE_MIN;
    while pending.len() < config.batch_size && !stop.is_stopping() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        match source.next_records(config.batch_size - pending.len()).await {
            Ok(records) if records.is_empty() => {
                stop.sleep(idle.min(left)).await;
                idle = (idle * 2).min(IDLE_MAX);
            }
            Ok(records) => {
                idle = IDLE_MIN;
                pending.extend(records);
            }
            Err(error) => {
                // Invoke with what there is; the next read reports again if it persists.
                logs(
                    function,
                    &format!("poller: reading {}: {error}", config.source_arn),
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
