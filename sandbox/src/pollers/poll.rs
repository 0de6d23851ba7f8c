//! One shard's loop, as Lambda's event source mapping runs it: read records (gathering for the
//! batching window), discard those past the maximum age, deliver the batch at the head, and on a
//! failure split it, retry it with backoff, or give it up once the retries are spent.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;

use super::delivery::{deliver, Delivery};
use super::destination::{Condition, GivenUp};
use super::{expiry, Invoker, PollerConfig, ShardSource, SourceKind};
use super::{RETRY_MAX, RETRY_MIN};
use crate::awsjson::CallError;
use crate::lambda::LogSink;
use crate::quota::ShardReads;
use crate::Shutdown;

/// Lambda's limit on a synchronous invocation's payload (6 MB): a batch takes no more records
/// than fit ("Lambda quotas").
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// About what a record adds to the event: its data (base64, as the event carries it), its key
/// and image, and the fields Lambda wraps around them.
fn record_bytes(record: &Value) -> usize {
    let data = record["Data"].as_str().map_or(0, str::len);
    let image = record["dynamodb"].to_string().len();
    data + image + 512
}

/// Now, epoch milliseconds, for the read quota's seconds.
fn now_ms() -> u64 {
    contract::epoch_ms().max(0) as u64
}

/// What delivering the head batch came to.
enum Head {
    /// Every record done (or the done ones dropped and the rest retried at once).
    Done,
    /// The batch was split in halves; splitting is not a retry (Lambda's rule).
    Split,
    /// The batch failed, for this reason: a retry.
    Failed(String),
    /// Lambda throttled the invocation: tried again after a wait, not a retry attempt.
    Throttled,
}

/// A shard's poller and what it holds between rounds.
struct Poller<S, I> {
    config: PollerConfig,
    source: S,
    invoker: I,
    logs: LogSink,
    function: String,
    stop: Shutdown,
    /// Records read and not yet done, in order.
    pending: VecDeque<Value>,
    /// How many records the next batch takes (smaller after a split).
    size: usize,
    idle: Duration,
    retry: Duration,
    /// Failed deliveries of the batch at the head, splits aside.
    retries: u32,
    /// The shard's read quota (the aws profile, Kinesis).
    reads: Option<ShardReads>,
}

/// Consumes one shard until `stop` says stop.
pub async fn poll_shard<S: ShardSource, I: Invoker>(
    config: PollerConfig,
    source: S,
    invoker: I,
    logs: LogSink,
    function: String,
    stop: Shutdown,
) {
    let size = config.batch_size.max(1);
    let reads = match (&config.quotas, config.kind) {
        (Some(quotas), SourceKind::Kinesis) => Some(ShardReads::kinesis(&quotas.profile)),
        _ => None,
    };
    let idle = config.cadence.idle_min;
    let poller = Poller {
        config,
        source,
        invoker,
        logs,
        function,
        stop,
        pending: VecDeque::new(),
        size,
        idle,
        retry: RETRY_MIN,
        retries: 0,
        reads,
    };
    poller.run().await;
}

impl<S: ShardSource, I: Invoker> Poller<S, I> {
    /// Consumes the shard until told to stop.
    async fn run(mut self) {
        while !self.stop.is_stopping() {
            if self.pending.is_empty() && !self.read().await {
                continue;
            }
            if self.discard_expired().await {
                continue;
            }
            match self.deliver_head().await {
                Head::Done => continue,
                Head::Split | Head::Throttled => {}
                Head::Failed(reason) => {
                    self.retries += 1;
                    if self.config.expiry.retries_exhausted(self.retries) {
                        let why = format!(
                            "retried {} times, the mapping's MaximumRetryAttempts; last: {reason}",
                            self.retries - 1
                        );
                        let n = self.batch_len();
                        self.give_up(n, Condition::RetryAttemptsExhausted, &why)
                            .await;
                        continue;
                    }
                }
            }
            self.stop.sleep(self.retry).await;
            self.retry = (self.retry * 2).min(RETRY_MAX);
        }
    }

    fn log(&self, line: &str) {
        (self.logs)(&self.function, line);
    }

    /// Reads more records, then gathers for the batching window; whether there are any.
    /// Nothing yet, or a failed read, waits before the caller asks again.
    async fn read(&mut self) -> bool {
        match self.get_records(self.config.batch_size).await {
            Ok(records) if records.is_empty() => {
                self.idle = if self.wait_idle(self.idle).await {
                    self.config.cadence.idle_min
                } else {
                    (self.idle * 2).min(self.config.cadence.idle_max)
                };
                false
            }
            Ok(records) => {
                self.idle = self.config.cadence.idle_min;
                self.pending.extend(records);
                self.gather().await;
                true
            }
            Err(error) => {
                self.log(&format!(
                    "poller: reading {}: {error}",
                    self.config.source_arn
                ));
                self.stop.sleep(RETRY_MAX).await;
                false
            }
        }
    }

    /// Waits `wait` on an idle shard, or less when the stream is written meanwhile ([`wake`]):
    /// whether a write woke it (the back-off then starts again).
    ///
    /// [`wake`]: super::wake
    async fn wait_idle(&mut self, wait: Duration) -> bool {
        let Some(wake) = self.config.wake.clone() else {
            self.stop.sleep(wait).await;
            return false;
        };
        tokio::select! {
            _ = self.stop.sleep(wait) => false,
            _ = wake.notified() => true,
        }
    }

    /// One GetRecords call within the shard's read quota: a call the quota refuses is counted
    /// (`ReadProvisionedThroughputExceeded`) and waits for the next second, as Lambda's poller
    /// backs off.
    async fn get_records(&mut self, limit: usize) -> Result<Vec<Value>, CallError> {
        if let Some(reads) = &mut self.reads {
            while let Err(wait) = reads.call(now_ms()) {
                if let Some(quotas) = &self.config.quotas {
                    quotas.read_refused(super::kinesis_stream_name(&self.config.source_arn));
                }
                self.stop.sleep(wait).await;
                if self.stop.is_stopping() {
                    return Ok(Vec::new());
                }
            }
        }
        let records = self.source.next_records(limit).await?;
        if let Some(reads) = &mut self.reads {
            let bytes: usize = records
                .iter()
                .map(|r| crate::quota::kinesis::decoded_len(r["Data"].as_str().unwrap_or_default()))
                .sum();
            reads.returned(now_ms(), bytes);
        }
        Ok(records)
    }

    /// The batching window: reads more until the batch is full or the window, counted from the
    /// first record, has passed.
    async fn gather(&mut self) {
        if self.config.batching_window.is_zero() {
            return;
        }
        let deadline = tokio::time::Instant::now() + self.config.batching_window;
        let mut idle = self.config.cadence.idle_min;
        let wanted = self.config.batch_size;
        while self.pending.len() < wanted && !self.stop.is_stopping() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.get_records(wanted - self.pending.len()).await {
                Ok(records) if records.is_empty() => {
                    idle = if self.wait_idle(idle.min(left)).await {
                        self.config.cadence.idle_min
                    } else {
                        (idle * 2).min(self.config.cadence.idle_max)
                    };
                }
                Ok(records) => {
                    idle = self.config.cadence.idle_min;
                    self.pending.extend(records);
                }
                Err(error) => {
                    // Invoke with what there is; the next read reports again if it persists.
                    self.log(&format!(
                        "poller: reading {}: {error}",
                        self.config.source_arn
                    ));
                    return;
                }
            }
        }
    }

    /// Gives up the records past the mapping's maximum age, from the head (none without a
    /// limit); whether there were any.
    async fn discard_expired(&mut self) -> bool {
        let expired =
            self.config
                .expiry
                .expired(self.config.kind, &self.pending, contract::epoch_ms());
        if expired == 0 {
            return false;
        }
        let age = self.config.expiry.max_record_age.unwrap_or_default();
        let why = format!(
            "older than the mapping's MaximumRecordAgeInSeconds ({} s)",
            age.as_secs()
        );
        self.give_up(expired, Condition::RecordAgeExceeded, &why)
            .await;
        true
    }

    /// How many records the head batch takes: at most `size`, and no more than fit in Lambda's
    /// 6 MB invocation payload (at least one).
    fn batch_len(&self) -> usize {
        let mut bytes = 0;
        let fitting = self
            .pending
            .iter()
            .take(self.size)
            .take_while(|record| {
                bytes += record_bytes(record);
                bytes <= MAX_PAYLOAD_BYTES
            })
            .count();
        fitting.max(1).min(self.pending.len())
    }

    /// Delivers the batch at the head and drops from `pending` what the function finished.
    async fn deliver_head(&mut self) -> Head {
        let n = self.batch_len();
        let batch: Vec<&Value> = self.pending.iter().take(n).collect();
        let delivery = deliver(&self.config, self.source.shard_id(), &self.invoker, &batch).await;
        match delivery {
            Delivery::Done => {
                self.pending.drain(..n);
                self.size = self.config.batch_size.max(1);
                (self.retry, self.retries) = (RETRY_MIN, 0);
                Head::Done
            }
            Delivery::FailedFrom(index) => {
                self.log(&format!(
                    "poller: {index} of {n} records done; retrying from record {index}"
                ));
                self.pending.drain(..index);
                Head::Failed(format!(
                    "the function reported record {index} of {n} failed"
                ))
            }
            Delivery::Throttled(reason) => {
                self.log(&format!(
                    "poller: batch of {n} throttled ({reason}); trying again"
                ));
                Head::Throttled
            }
            Delivery::Failed(reason) if self.config.bisect_on_error && n > 1 => {
                self.size = (n / 2).max(1);
                self.log(&format!(
                    "poller: batch of {n} failed ({reason}); retrying with {} records",
                    self.size
                ));
                Head::Split
            }
            Delivery::Failed(reason) => {
                self.log(&format!("poller: batch of {n} failed ({reason}); retrying"));
                Head::Failed(reason)
            }
        }
    }

    /// Discards the first `n` pending records: logged with their sequence numbers, recorded to
    /// the mapping's on-failure destination, and the shard moves on with a fresh batch.
    async fn give_up(&mut self, n: usize, condition: Condition, why: &str) {
        let records: Vec<&Value> = self.pending.iter().take(n).collect();
        self.log(&expiry::discarded(self.config.kind, &records, why));
        if let Some(destination) = &self.config.on_failure {
            let given_up = GivenUp {
                kind: self.config.kind,
                stream_arn: &self.config.source_arn,
                shard_id: self.source.shard_id(),
                function_arn: &self.config.function_arn,
                condition,
                invocations: self.retries,
                records: &records,
                at_ms: contract::epoch_ms(),
            };
            // Sent once, as Lambda does (it does not retry a destination either).
            let line = match destination.send(&given_up).await {
                Ok(()) => format!(
                    "poller: the record of the discarded batch sent to {}",
                    destination.arn
                ),
                Err(error) => format!(
                    "poller: the record of the discarded batch not sent to {}: {error}",
                    destination.arn
                ),
            };
            self.log(&line);
        }
        self.pending.drain(..n);
        self.size = self.config.batch_size.max(1);
        (self.retry, self.retries) = (RETRY_MIN, 0);
    }
}
