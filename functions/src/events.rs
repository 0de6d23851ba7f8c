//! Event types as the functions receive them, where `aws_lambda_events` needs a correction.
//!
//! `aws_lambda_events` 1.2 reads the fraction of an epoch-seconds time (Kinesis's
//! `approximateArrivalTimestamp`, the DynamoDB stream's `ApproximateCreationDateTime`) as a count
//! of milliseconds whatever its digits: `1795678800.5` becomes `.005` s, not `.5` s, and a
//! fraction of more than three digits (`1796028491.6323977`, valid JSON) fails the whole event
//! with `invalid timestamp`. Lambda's encoders drop trailing zeros, so about one arrival time in
//! ten would be off by up to 900 ms, and a batch with a long fraction retried until it expired.
//!
//! [`KinesisPayload`] and [`DynamoDbPayload`] read these times with [`seconds_to_millis`] (any
//! JSON number or numeric string of seconds, any precision) before the crate's types see them:
//! the crate is handed whole seconds, and the milliseconds are set afterwards.

use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::kinesis::KinesisEvent;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A Kinesis event with each record's arrival time read to the millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisPayload(pub KinesisEvent);

/// A DynamoDB stream event with each record's creation time read to the millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamoDbPayload(pub DynamoDbEvent);

/// Epoch seconds (a number, or a string holding one) as epoch milliseconds, rounded; `None` for
/// anything else or a time `chrono` cannot hold.
pub fn seconds_to_millis(value: &Value) -> Option<i64> {
    let seconds = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let millis = (seconds * 1000.0).round();
    (millis.is_finite() && millis.abs() < 8.0e15).then_some(millis as i64)
}

/// Reads each `Records[i].<record>.<field>` with [`seconds_to_millis`] and replaces what it read
/// with whole seconds, which the crate parses exactly; returns the times read, in record order.
fn take_times(value: &mut Value, record: &str, field: &str) -> Vec<Option<DateTime<Utc>>> {
    let Some(records) = value.get_mut("Records").and_then(Value::as_array_mut) else {
        return Vec::new();
    };
    records
        .iter_mut()
        .map(|r| {
            let slot = r.get_mut(record)?.get_mut(field)?;
            let time = DateTime::from_timestamp_millis(seconds_to_millis(slot)?)?;
            *slot = Value::from(time.timestamp());
            Some(time)
        })
        .collect()
}

/// Parses `value` as `T` after [`take_times`], then hands each record and its time to `set`.
fn parse_with_times<'de, D, T, R>(
    deserializer: D,
    record: &str,
    field: &str,
    records: impl FnOnce(&mut T) -> &mut Vec<R>,
    set: impl Fn(&mut R, DateTime<Utc>),
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let mut value = Value::deserialize(deserializer)?;
    let times = take_times(&mut value, record, field);
    let mut event: T = serde_json::from_value(value).map_err(serde::de::Error::custom)?;
    for (r, time) in records(&mut event).iter_mut().zip(times) {
        if let Some(time) = time {
            set(r, time);
        }
    }
    Ok(event)
}

impl<'de> Deserialize<'de> for KinesisPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_with_times(
            deserializer,
            "kinesis",
            "approximateArrivalTimestamp",
            |e: &mut KinesisEvent| &mut e.records,
            |r, time| r.kinesis.approximate_arrival_timestamp = SecondTimestamp(time),
        )
        .map(KinesisPayload)
    }
}

impl<'de> Deserialize<'de> for DynamoDbPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_with_times(
            deserializer,
            "dynamodb",
            "ApproximateCreationDateTime",
            |e: &mut DynamoDbEvent| &mut e.records,
            |r, time| r.change.approximate_creation_date_time = time,
        )
        .map(DynamoDbPayload)
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
    fn long_fractions_do_not_fail_the_event() {
        // The crate alone refuses this event whole ("invalid timestamp").
        assert!(serde_json::from_str::<KinesisEvent>(&event("1796028491.6323977")).is_err());
        let payload: KinesisPayload = serde_json::from_str(&event("1796028491.6323977")).unwrap();
        assert_eq!(arrival_ms(&payload), 1_796_028_491_632);
    }

    proptest::proptest! {
        /// Any spelling of a time in seconds, as a number of any precision or as a string, is
        /// read to the nearest millisecond.
        #[test]
        fn any_spelling_of_seconds_is_read_to_the_millisecond(
            millis in 0i64..4_000_000_000_000,
            extra in 0u32..1000,
            digits in 0usize..10,
            quoted: bool,
        ) {
            // millis ms plus extra micro-fractions, printed with `digits` fractional digits.
            let seconds = millis as f64 / 1000.0 + extra as f64 / 1e7;
            let mut text = format!("{seconds:.digits$}");
            if quoted {
                text = format!("\"{text}\"");
            }
            let payload: KinesisPayload = serde_json::from_str(&event(&text)).unwrap();
            let printed: f64 = text.trim_matches('"').parse().unwrap();
            proptest::prop_assert_eq!(arrival_ms(&payload), (printed * 1000.0).round() as i64);
        }
    }

    #[test]
    fn dynamodb_creation_times_are_read_the_same_way() {
        let text = r#"{"Records": [{"eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": 1796028491.6323977,
              "Keys": {"id": {"S": "a"}}, "NewImage": {"id": {"S": "a"}},
              "SequenceNumber": "1", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/x"}]}"#;
        let payload: DynamoDbPayload = serde_json::from_str(text).unwrap();
        assert_eq!(
            payload.0.records[0]
                .change
                .approximate_creation_date_time
                .timestamp_millis(),
            1_796_028_491_632
        );
        assert_eq!(payload.0.records[0].change.new_image.len(), 1);
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
