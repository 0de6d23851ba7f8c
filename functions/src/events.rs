//! Event types as the functions receive them, where `aws_lambda_events` needs a correction.
//!
//! [`KinesisPayload`]: `aws_lambda_events` 1.2 reads the fraction of `approximateArrivalTimestamp`
//! (epoch seconds) as a count of milliseconds whatever its digits: `1795678800.5` becomes
//! `.005` s, not `.5` s, and `.02` becomes 2 ms. Lambda's events and JSON encoders drop trailing
//! zeros, so about one timestamp in ten was off by up to 900 ms, which showed as a negative
//! `ClientToKinesisLatency`. The payload reads the number itself and keeps its milliseconds.

use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::event::kinesis::KinesisEvent;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A Kinesis event with each record's arrival time read to the millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisPayload(pub KinesisEvent);

/// Epoch seconds (a number, or a string holding one) as epoch milliseconds, rounded.
pub fn seconds_to_millis(value: &Value) -> Option<i64> {
    let seconds = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    seconds
        .is_finite()
        .then(|| (seconds * 1000.0).round() as i64)
}

impl<'de> Deserialize<'de> for KinesisPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let arrivals: Vec<Option<i64>> = value
            .get("Records")
            .and_then(Value::as_array)
            .map(|records| {
                records
                    .iter()
                    .map(|r| seconds_to_millis(&r["kinesis"]["approximateArrivalTimestamp"]))
                    .collect()
            })
            .unwrap_or_default();
        let mut event: KinesisEvent =
            serde_json::from_value(value).map_err(serde::de::Error::custom)?;
        for (record, arrival) in event.records.iter_mut().zip(arrivals) {
            if let Some(time) = arrival.and_then(chrono::DateTime::from_timestamp_millis) {
                record.kinesis.approximate_arrival_timestamp = SecondTimestamp(time);
            }
        }
        Ok(KinesisPayload(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(arrival: &str) -> String {
        format!(
            r#"{{"Records": [{{"kinesis": {{"kinesisSchemaVersion": "1.0", "partitionKey": "k",
            "sequenceNumber": "1", "data": "e30=", "approximateArrivalTimestamp": {arrival}}},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": "shardId-0:1",
            "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/KinesisStream"}}]}}"#
        )
    }

    fn arrival_ms(payload: &KinesisPayload) -> i64 {
        payload.0.records[0]
            .kinesis
            .approximate_arrival_timestamp
            .timestamp_millis()
    }

    #[test]
    fn arrival_times_keep_their_milliseconds() {
        for (text, ms) in [
            ("1795678800.5", 1_795_678_800_500),
            ("1795678800.02", 1_795_678_800_020),
            ("1795678800.987", 1_795_678_800_987),
            ("1795678800", 1_795_678_800_000),
            ("\"1795678800.25\"", 1_795_678_800_250),
        ] {
            let payload: KinesisPayload = serde_json::from_str(&event(text)).unwrap();
            assert_eq!(arrival_ms(&payload), ms, "{text}");
        }
    }

    #[test]
    fn the_crate_alone_misreads_them() {
        // Why this type exists: if this starts failing, aws_lambda_events has been fixed.
        let event: KinesisEvent = serde_json::from_str(&event("1795678800.5")).unwrap();
        assert_eq!(
            event.records[0]
                .kinesis
                .approximate_arrival_timestamp
                .timestamp_millis(),
            1_795_678_800_005
        );
    }

    #[test]
    fn everything_else_is_the_crate_s() {
        let payload: KinesisPayload = serde_json::from_str(&event("1795678800.5")).unwrap();
        let plain: KinesisEvent = serde_json::from_str(&event("1795678800.5")).unwrap();
        assert_eq!(payload.0.records[0].event_id, plain.records[0].event_id);
        assert_eq!(
            payload.0.records[0].kinesis.data,
            plain.records[0].kinesis.data
        );
        assert!(serde_json::from_str::<KinesisPayload>(r#"{"Records": 3}"#).is_err());
    }
}
