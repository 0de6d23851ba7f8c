//! midstream: Kinesis batch → DynamoDB items, written with BatchWriteItem.
//!
//! - Each record's data is decoded as the contract's [`KinesisRecord`]; a record that can never
//!   decode is logged with its sequence number, counted in `MalformedRecords`
//!   (`Function=midstream`), and passed over, so it cannot block the shard.
//! - Items go out in requests of at most 25 with distinct ids (DynamoDB refuses a request that
//!   names one key twice): a repeated id starts the next request, so both writes happen, in order.
//! - A request the table refuses for what its items are (`ValidationException`: an item too large,
//!   an attribute it cannot take) is split in halves until the refused item stands alone; that
//!   record is logged with its sequence number, counted in `MalformedRecords` and passed over,
//!   and every other item is written. Retrying it could never succeed and would block the shard.
//! - UnprocessedItems and failed calls are retried with exponential backoff. What still fails is
//!   reported as a partial batch failure by sequence number, together with every record after it,
//!   which is not written: Lambda resumes the shard from the earliest failure, in order.

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use contract::metrics::{DIM_FUNCTION, MALFORMED_RECORDS};
use contract::{Item, KinesisRecord};

use crate::error::StoreError;
use crate::metrics::{plan_requests, MetricBatch, Unit};
use crate::sinks::{ItemStore, MetricSink};
use crate::Clock;

/// Waits between write attempts of one request (so at most 6 attempts).
pub const WRITE_BACKOFF: [Duration; 5] = [
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
];

/// One record on its way to the table.
struct Pending {
    sequence_number: String,
    item: Item,
}

/// The midstream function: its item store, metric sink and clock.
pub struct Midstream<S, M> {
    store: S,
    metrics: M,
    namespace: String,
    clock: Clock,
}

impl<S: ItemStore, M: MetricSink> Midstream<S, M> {
    /// A function writing to `store`, counting malformed records into `namespace` via `metrics`.
    pub fn new(store: S, metrics: M, namespace: String, clock: Clock) -> Self {
        Midstream {
            store,
            metrics,
            namespace,
            clock,
        }
    }

    /// Handles one Kinesis batch; the response lists the records Lambda must deliver again.
    pub async fn handle(&self, event: KinesisEvent) -> KinesisEventResponse {
        let mut pending = Vec::with_capacity(event.records.len());
        let mut malformed = 0u64;
        for record in &event.records {
            match to_item(record) {
                Ok(item) => pending.push(Pending {
                    sequence_number: record.kinesis.sequence_number.clone(),
                    item,
                }),
                Err(error) => {
                    tracing::warn!(
                        sequence_number = %record.kinesis.sequence_number,
                        partition_key = %record.kinesis.partition_key,
                        %error,
                        "malformed record counted and passed over"
                    );
                    malformed += 1;
                }
            }
        }

        let mut failed = Vec::new();
        let chunks = chunk_distinct(pending, S::MAX_BATCH);
        for (index, chunk) in chunks.iter().enumerate() {
            let unwritten = self.write_chunk(chunk, &mut malformed).await;
            if !unwritten.is_empty() {
                failed.extend(
                    chunk
                        .iter()
                        .filter(|p| unwritten.contains(&p.item.id))
                        .map(|p| p.sequence_number.clone()),
                );
                failed.extend(
                    chunks[index + 1..]
                        .iter()
                        .flatten()
                        .map(|p| p.sequence_number.clone()),
                );
                break;
            }
        }

        if malformed > 0 {
            self.count_malformed(malformed).await;
        }
        let mut response = KinesisEventResponse::default();
        response.set_failures(failed);
        response
    }

    /// Writes one request's items, in order; an item the table refuses is passed over and
    /// counted into `malformed`. Returns the ids still unwritten when the attempts run out,
    /// with every id after them.
    async fn write_chunk(&self, chunk: &[Pending], malformed: &mut u64) -> HashSet<String> {
        // Parts still to write, the next one last.
        let mut parts: Vec<&[Pending]> = vec![chunk];
        while let Some(part) = parts.pop() {
            match self.write_with_retries(part).await {
                Written::All => {}
                Written::Short(mut unwritten) => {
                    unwritten.extend(
                        parts
                            .iter()
                            .flat_map(|p| p.iter().map(|r| r.item.id.clone())),
                    );
                    return unwritten;
                }
                Written::Rejected(reason) => match part {
                    [record] => {
                        tracing::warn!(
                            sequence_number = %record.sequence_number,
                            id = %record.item.id,
                            %reason,
                            "record refused by the table counted and passed over"
                        );
                        *malformed += 1;
                    }
                    _ => {
                        let (first, second) = part.split_at(part.len() / 2);
                        parts.push(second);
                        parts.push(first);
                    }
                },
            }
        }
        HashSet::new()
    }

    /// Writes one request's items, retrying what the table did not process.
    async fn write_with_retries(&self, chunk: &[Pending]) -> Written {
        let mut remaining: Vec<Item> = chunk.iter().map(|p| p.item.clone()).collect();
        let mut backoff = WRITE_BACKOFF.iter();
        loop {
            let now = (self.clock)();
            for item in &mut remaining {
                item.stored_at_ms = Some(now);
            }
            let cause = match self.store.write_batch(&remaining).await {
                Ok(unprocessed) if unprocessed.is_empty() => return Written::All,
                Err(StoreError::Rejected(reason)) => return Written::Rejected(reason),
                Ok(unprocessed) => {
                    let unprocessed: HashSet<String> = unprocessed.into_iter().collect();
                    remaining.retain(|item| unprocessed.contains(&item.id));
                    format!("{} items unprocessed", remaining.len())
                }
                Err(error) => error.to_string(),
            };
            match backoff.next() {
                Some(delay) => tokio::time::sleep(*delay).await,
                None => {
                    tracing::error!(items = remaining.len(), %cause, "write failed after retries");
                    return Written::Short(remaining.into_iter().map(|item| item.id).collect());
                }
            }
        }
    }

    async fn count_malformed(&self, malformed: u64) {
        let mut batch = MetricBatch::new();
        batch.add_n(
            MALFORMED_RECORDS,
            Unit::Count,
            &[(DIM_FUNCTION, "midstream")],
            1,
            malformed,
        );
        for request in plan_requests(batch.into_data((self.clock)())) {
            if let Err(error) = self
                .metrics
                .put_metric_data(&self.namespace, &request)
                .await
            {
                // The records are logged with their sequence numbers above; only the count is lost.
                tracing::error!(malformed, %error, "could not count malformed records");
            }
        }
    }
}

/// How one request's write ended.
enum Written {
    /// Every item is in the table.
    All,
    /// These ids are not, after every retry.
    Short(HashSet<String>),
    /// The table refused the request for what its items are (why): no item was written.
    Rejected(String),
}

/// The item for one Kinesis record, or why its data is not a pipeline record.
fn to_item(record: &KinesisEventRecord) -> Result<Item, contract::RecordError> {
    let decoded = KinesisRecord::decode(&record.kinesis.data.0)?;
    let request = decoded.request;
    Ok(Item {
        id: request.id,
        message: request.message,
        timestamp_ms: request.timestamp_ms,
        run_id: request.run_id,
        received_at_ms: Some(decoded.received_at_ms),
        kinesis_arrival_ms: Some(
            record
                .kinesis
                .approximate_arrival_timestamp
                .timestamp_millis(),
        ),
        stored_at_ms: None,
    })
}

/// Splits records, in order, into requests of at most `max` items with distinct ids.
fn chunk_distinct(records: Vec<Pending>, max: usize) -> Vec<Vec<Pending>> {
    let mut chunks = Vec::new();
    let mut current: Vec<Pending> = Vec::new();
    let mut ids: HashSet<String> = HashSet::new();
    for record in records {
        if current.len() == max || ids.contains(&record.item.id) {
            chunks.push(std::mem::take(&mut current));
            ids.clear();
        }
        ids.insert(record.item.id.clone());
        current.push(record);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}
