//! Wake-ups on write, in the default profile: the edge tells a stream's pollers when a write to
//! it went through (a Kinesis `PutRecord`/`PutRecords`, a DynamoDB write to a table with a
//! stream), and an idle shard's poller reads at once instead of at the end of its idle back-off.
//! Without them a record waited for the poller's timer (10 to 50 ms, at a phase that differs
//! from run to run), which made end-to-end latency at low rates depend on the timer and paired
//! comparisons noisy. The aws profile keeps Lambda's own cadence and registers no poller here.
//!
//! Each shard's poller has its own [`Notify`]: a write stores a wake-up for every shard of the
//! stream, taken the next time the poller waits (a write during a read wakes it once more, a
//! read that finds nothing).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::SourceKind;

/// The pollers to wake, by what their stream is written through.
#[derive(Debug, Default)]
pub struct Wakes {
    by_key: Mutex<HashMap<String, Vec<Arc<Notify>>>>,
}

impl Wakes {
    /// A wake-up for one shard's poller of the stream at `source_arn`.
    pub fn register(&self, kind: SourceKind, source_arn: &str) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        self.by_key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key_of_source(kind, source_arn))
            .or_default()
            .push(notify.clone());
        notify
    }

    /// A call `called` (an `X-Amz-Target`) with `body` went through: wakes the pollers of what
    /// it wrote to.
    pub fn written(&self, called: &str, body: &[u8]) {
        let keys = keys_written(called, body);
        if keys.is_empty() {
            return;
        }
        let by_key = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        for notify in keys.iter().filter_map(|k| by_key.get(k)).flatten() {
            notify.notify_one();
        }
    }
}

/// `kinesis/<stream>` for a Kinesis stream's ARN, `dynamodb/<table>` for a DynamoDB stream's
/// (`arn:...:table/<table>/stream/<label>`).
fn key_of_source(kind: SourceKind, source_arn: &str) -> String {
    match kind {
        SourceKind::Kinesis => format!("kinesis/{}", super::kinesis_stream_name(source_arn)),
        SourceKind::DynamoDbStream => {
            let table = source_arn
                .split_once(":table/")
                .map_or(source_arn, |(_, rest)| {
                    rest.split('/').next().unwrap_or(rest)
                });
            format!("dynamodb/{table}")
        }
    }
}

/// What a write call wrote to, as [`key_of_source`] names it; nothing for any other call.
fn keys_written(called: &str, body: &[u8]) -> Vec<String> {
    let Some((service, operation)) = called.split_once('.') else {
        return Vec::new();
    };
    let kinesis = service.starts_with("Kinesis_");
    let dynamodb = service.starts_with("DynamoDB_");
    let writes = match (kinesis, dynamodb) {
        (true, _) => matches!(operation, "PutRecord" | "PutRecords"),
        (_, true) => matches!(
            operation,
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
        ),
        _ => false,
    };
    if !writes {
        return Vec::new();
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    if kinesis {
        let stream = json["StreamName"]
            .as_str()
            .or_else(|| json["StreamARN"].as_str().map(super::kinesis_stream_name));
        return stream
            .map(|s| vec![format!("kinesis/{s}")])
            .unwrap_or_default();
    }
    let mut tables: Vec<String> = Vec::new();
    if let Some(table) = json["TableName"].as_str() {
        tables.push(table.to_owned());
    }
    if let Some(items) = json["RequestItems"].as_object() {
        tables.extend(items.keys().cloned());
    }
    for item in json["TransactItems"].as_array().into_iter().flatten() {
        for kind in ["Put", "Update", "Delete"] {
            if let Some(table) = item[kind]["TableName"].as_str() {
                tables.push(table.to_owned());
            }
        }
    }
    tables.sort();
    tables.dedup();
    tables
        .into_iter()
        .map(|t| format!("dynamodb/{t}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_names_the_stream_its_pollers_read() {
        assert_eq!(
            key_of_source(
                SourceKind::Kinesis,
                "arn:aws:kinesis:us-east-1:123456789012:stream/KinesisStream"
            ),
            "kinesis/KinesisStream"
        );
        assert_eq!(
            key_of_source(
                SourceKind::DynamoDbStream,
                "arn:aws:dynamodb:us-east-1:123456789012:table/Items/stream/2026-12-06T00:00:00.000"
            ),
            "dynamodb/Items"
        );
        assert_eq!(
            keys_written(
                "Kinesis_20131202.PutRecords",
                br#"{"StreamName":"KinesisStream","Records":[]}"#
            ),
            ["kinesis/KinesisStream"]
        );
        assert_eq!(
            keys_written(
                "Kinesis_20131202.PutRecord",
                br#"{"StreamARN":"arn:aws:kinesis:us-east-1:1:stream/S","Data":""}"#
            ),
            ["kinesis/S"]
        );
        assert_eq!(
            keys_written(
                "DynamoDB_20120810.BatchWriteItem",
                br#"{"RequestItems":{"Items":[],"Other":[]}}"#
            ),
            ["dynamodb/Items", "dynamodb/Other"]
        );
        assert_eq!(
            keys_written(
                "DynamoDB_20120810.TransactWriteItems",
                br#"{"TransactItems":[{"Put":{"TableName":"A"}},{"Delete":{"TableName":"A"}}]}"#
            ),
            ["dynamodb/A"]
        );
        assert!(keys_written("DynamoDB_20120810.GetItem", br#"{"TableName":"A"}"#).is_empty());
        assert!(keys_written("Kinesis_20131202.GetRecords", b"{}").is_empty());
        assert!(keys_written("Kinesis_20131202.PutRecord", b"not json").is_empty());
    }

    #[tokio::test]
    async fn every_shard_of_the_stream_written_is_woken_once() {
        let wakes = Wakes::default();
        let arn = "arn:aws:kinesis:us-east-1:1:stream/S";
        let (a, b) = (
            wakes.register(SourceKind::Kinesis, arn),
            wakes.register(SourceKind::Kinesis, arn),
        );
        let other = wakes.register(SourceKind::Kinesis, "arn:aws:kinesis:us-east-1:1:stream/T");
        wakes.written("Kinesis_20131202.PutRecord", br#"{"StreamName":"S"}"#);
        let soon = std::time::Duration::from_millis(50);
        assert!(tokio::time::timeout(soon, a.notified()).await.is_ok());
        assert!(tokio::time::timeout(soon, b.notified()).await.is_ok());
        assert!(tokio::time::timeout(soon, other.notified()).await.is_err());
        // Taken once: the next wait waits.
        assert!(tokio::time::timeout(soon, a.notified()).await.is_err());
    }
}
