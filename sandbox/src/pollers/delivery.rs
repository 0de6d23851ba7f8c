//! One delivery of a batch: the event Lambda would build, the invocation, and what the
//! function's answer says is done.

use bytes::Bytes;
use serde_json::{json, Value};

use super::record::{arrival_ms, sequence_number};
use super::{Invoker, PollerConfig, SourceKind};
use crate::lambda::InvokeError;

/// How one delivery went.
#[derive(Debug, PartialEq)]
pub(super) enum Delivery {
    /// Every record done.
    Done,
    /// Records before this index are done; from it on, not.
    FailedFrom(usize),
    /// The whole batch failed.
    Failed(String),
    /// Lambda throttled the invocation: retried, and not counted as a retry attempt.
    Throttled(String),
}

pub(super) async fn deliver<I: Invoker>(
    config: &PollerConfig,
    shard_id: &str,
    invoker: &I,
    batch: &[&Value],
) -> Delivery {
    let event = event(config, shard_id, batch);
    // Lambda's IteratorAge: now, minus when the batch's last record reached the stream.
    if let Some(arrived) = batch.last().and_then(|r| arrival_ms(config.kind, r)) {
        let age_ms = contract::epoch_ms() - arrived;
        invoker.batch_delivered(std::time::Duration::from_millis(age_ms.max(0) as u64));
    }
    let response = match invoker.invoke(Bytes::from(event.to_string())).await {
        Ok(response) => response,
        Err(error @ InvokeError::Throttled(_)) => return Delivery::Throttled(error.to_string()),
        Err(error) => return Delivery::Failed(error.to_string()),
    };
    if !config.report_batch_item_failures {
        return Delivery::Done;
    }
    let response: Value = serde_json::from_slice(&response).unwrap_or(Value::Null);
    let failures = match response.get("batchItemFailures").and_then(Value::as_array) {
        Some(failures) if !failures.is_empty() => failures,
        _ => return Delivery::Done,
    };
    // Lambda resumes at the earliest reported record; an identifier it cannot match fails the
    // whole batch.
    let mut first = batch.len();
    for failure in failures {
        let id = failure
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match batch
            .iter()
            .position(|record| sequence_number(config.kind, record) == Some(id))
        {
            Some(index) => first = first.min(index),
            None => {
                return Delivery::Failed(format!(
                    "batchItemFailures names an unknown record {id:?}"
                ))
            }
        }
    }
    Delivery::FailedFrom(first)
}

/// The Lambda event for raw records of shard `shard_id` from GetRecords.
pub fn event(config: &PollerConfig, shard_id: &str, records: &[&Value]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| match config.kind {
            SourceKind::Kinesis => {
                let sequence = r["SequenceNumber"].as_str().unwrap_or_default();
                json!({
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r["PartitionKey"],
                        "sequenceNumber": sequence,
                        "data": r["Data"],
                        "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"],
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": format!("{shard_id}:{sequence}"),
                    "eventName": "aws:kinesis:record",
                    "awsRegion": config.region,
                    "eventSourceARN": config.source_arn,
                })
            }
            SourceKind::DynamoDbStream => {
                let mut record = (*r).clone();
                if let Some(object) = record.as_object_mut() {
                    object.insert(
                        "eventSourceARN".into(),
                        Value::String(config.source_arn.clone()),
                    );
                }
                record
            }
        })
        .collect();
    json!({ "Records": records })
}
