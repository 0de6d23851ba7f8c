//! A stream record's fields as GetRecords returns them, for either kind of stream.

use serde_json::Value;

use super::SourceKind;

/// A record's sequence number in its shard.
pub(super) fn sequence_number(kind: SourceKind, record: &Value) -> Option<&str> {
    match kind {
        SourceKind::Kinesis => record["SequenceNumber"].as_str(),
        SourceKind::DynamoDbStream => record["dynamodb"]["SequenceNumber"].as_str(),
    }
}

/// When a record reached its stream, epoch ms (Kinesis `ApproximateArrivalTimestamp`, DynamoDB
/// `ApproximateCreationDateTime`: epoch seconds).
pub(super) fn arrival_ms(kind: SourceKind, record: &Value) -> Option<i64> {
    let seconds = match kind {
        SourceKind::Kinesis => &record["ApproximateArrivalTimestamp"],
        SourceKind::DynamoDbStream => &record["dynamodb"]["ApproximateCreationDateTime"],
    };
    seconds.as_f64().map(|s| (s * 1000.0).round() as i64)
}
