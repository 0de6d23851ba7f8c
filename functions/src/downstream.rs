//! downstream: DynamoDB stream batch → latency metrics in CloudWatch.
//!
//! For each INSERT record with a NewImage, the item's first arrival in the table: the end-to-end
//! latency, the per-hop latencies and the latency bucket, aggregated per run into Values/Counts
//! and published in one PutMetricData call (more only when the API's limits require). A MODIFY
//! record is the same item written again (midstream's batch delivered again after a failure):
//! it is counted in `RedeliveredRecords` and not measured, so each accepted request is measured
//! once. A MODIFY whose old image was received (or sent) at another time is not a rewrite but a
//! new request that reused an id (a run id given twice): it is measured as the loop it is.
//! REMOVE records are ignored. A
//! record that can never be measured (no NewImage, an image that breaks the contract) is logged
//! with its event id and sequence number and counted in `MalformedRecords`
//! (`Function=downstream`). If publishing fails, every measured record is reported as a partial
//! batch failure, so that Lambda delivers the batch again.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use contract::metrics::{
    end_to_end_ms, Hop, DIM_BUCKET, DIM_FUNCTION, DIM_HOP, DIM_RUN_ID, HOP_LATENCY_BUCKET, LATENCY,
    LATENCY_BUCKET, MALFORMED_RECORDS, REDELIVERED_RECORDS,
};
use contract::{Bucket, Item};

use crate::error::HandlerError;
use crate::metrics::{plan_requests, MetricBatch, Unit};
use crate::sinks::MetricSink;
use crate::Clock;

/// The downstream function: its metric sink and clock.
pub struct Downstream<M> {
    metrics: M,
    namespace: String,
    clock: Clock,
}

impl<M: MetricSink> Downstream<M> {
    /// A function publishing into `namespace` through `metrics`.
    pub fn new(metrics: M, namespace: String, clock: Clock) -> Self {
        Downstream {
            metrics,
            namespace,
            clock,
        }
    }

    /// Handles one stream batch; the response lists the records Lambda must deliver again.
    pub async fn handle(&self, event: Event) -> Result<DynamoDbEventResponse, HandlerError> {
        let now = (self.clock)();
        let mut batch = MetricBatch::new();
        let mut measured: Vec<&EventRecord> = Vec::with_capacity(event.records.len());
        let mut malformed = 0u64;
        for record in &event.records {
            match measure(record) {
                Measure::Ignore => {}
                Measure::Item(item) => {
                    record_latencies(&mut batch, &item, now);
                    measured.push(record);
                }
                Measure::Redelivered(item) => {
                    let run = run_dimension(&item);
                    batch.add_n(REDELIVERED_RECORDS, Unit::Count, &run, 1, 1);
                    measured.push(record);
                }
                Measure::Malformed(error) => {
                    tracing::warn!(
                        event_id = %record.event_id,
                        sequence_number = record.change.sequence_number.as_deref().unwrap_or("-"),
                        %error,
                        "malformed stream record counted and passed over"
                    );
                    malformed += 1;
                }
            }
        }
        if malformed > 0 {
            let dims = [(DIM_FUNCTION, "downstream")];
            batch.add_n(MALFORMED_RECORDS, Unit::Count, &dims, 1, malformed);
        }

        let mut response = DynamoDbEventResponse::default();
        for request in plan_requests(batch.into_data(now)) {
            if let Err(error) = self
                .metrics
                .put_metric_data(&self.namespace, &request)
                .await
            {
                tracing::error!(records = measured.len(), %error, "publishing failed; batch reported for retry");
                let mut failures = Vec::with_capacity(measured.len());
                for record in measured {
                    match &record.change.sequence_number {
                        Some(sequence_number) => failures.push(sequence_number.clone()),
                        None => {
                            return Err(HandlerError::Unreportable {
                                event_id: record.event_id.clone(),
                                cause: error.to_string(),
                            })
                        }
                    }
                }
                response.batch_item_failures = failures
                    .into_iter()
                    .map(|id| {
                        let mut failure =
                            aws_lambda_events::event::streams::DynamoDbBatchItemFailure::default();
                        failure.item_identifier = Some(id);
                        failure
                    })
                    .collect();
                break;
            }
        }
        Ok(response)
    }
}

enum Measure {
    Ignore,
    Item(Item),
    Redelivered(Item),
    Malformed(String),
}

fn measure(record: &EventRecord) -> Measure {
    match record.event_name.as_str() {
        "REMOVE" => Measure::Ignore,
        "INSERT" | "MODIFY" if record.change.new_image.is_empty() => Measure::Malformed(
            "no NewImage: the table's stream view type must include new images".to_owned(),
        ),
        name @ ("INSERT" | "MODIFY") => match Item::from_attributes(&record.change.new_image) {
            Ok(item) if name == "INSERT" => Measure::Item(item),
            Ok(item) if is_another_request(&item, record) => Measure::Item(item),
            Ok(item) => Measure::Redelivered(item),
            Err(error) => Measure::Malformed(error.to_string()),
        },
        other => Measure::Malformed(format!("unknown event name {other:?}")),
    }
}

/// Whether a MODIFY's new image is another request than its old image: received or sent at
/// another time. A rewrite of the same record (a batch delivered again) keeps both; without an
/// old image (a stream without old images) it counts as a rewrite.
fn is_another_request(item: &Item, record: &EventRecord) -> bool {
    if record.change.old_image.is_empty() {
        return false;
    }
    match Item::from_attributes(&record.change.old_image) {
        Ok(old) => {
            old.received_at_ms != item.received_at_ms || old.timestamp_ms != item.timestamp_ms
        }
        Err(_) => false,
    }
}

/// The `RunId` dimension of `item`'s metrics, when it has a run.
fn run_dimension(item: &Item) -> Vec<(&'static str, &str)> {
    item.run_id
        .as_deref()
        .map(|run_id| (DIM_RUN_ID, run_id))
        .into_iter()
        .collect()
}

/// Adds one item's end-to-end, per-hop and bucket observations, seen at `now_ms`.
fn record_latencies(batch: &mut MetricBatch, item: &Item, now_ms: i64) {
    let run = run_dimension(item);
    let latency = end_to_end_ms(item, now_ms);
    batch.add(LATENCY, Unit::Milliseconds, &run, latency);
    for hop in Hop::ALL {
        if let Some(value) = hop.latency_ms(item, now_ms) {
            batch.add(hop.metric_name(), Unit::Milliseconds, &run, value);
            let label = Bucket::of(value).label();
            let mut dims = run.clone();
            dims.push((DIM_HOP, hop.metric_name()));
            dims.push((DIM_BUCKET, &label));
            batch.add(HOP_LATENCY_BUCKET, Unit::Milliseconds, &dims, value);
        }
    }
    let label = Bucket::of(latency).label();
    let mut dims = run;
    dims.push((DIM_BUCKET, &label));
    batch.add(LATENCY_BUCKET, Unit::Milliseconds, &dims, latency);
}
