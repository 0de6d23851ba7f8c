//! The Kinesis record: what upstream puts into the stream and midstream reads back.

use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::payload::{Request, MAX_BODY_BYTES, MAX_TIMESTAMP_AGE_MS, MAX_TIMESTAMP_AHEAD_MS};

/// Largest record data midstream reads, in bytes: twice the largest request body, which its
/// encoding never exceeds. Anything larger was written to the stream by something other than
/// upstream and is refused before it can reach DynamoDB (whose items stop at 400 KB).
pub const MAX_RECORD_BYTES: usize = 2 * MAX_BODY_BYTES;

/// A validated request plus the time upstream accepted it. Encoded as one JSON object:
/// `{"id", "message", "timestamp", "run_id"?, "received_at"}`; the partition key is the `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KinesisRecord {
    /// The request, as validated by upstream.
    #[serde(flatten)]
    pub request: Request,
    /// When upstream accepted the request, epoch milliseconds.
    #[serde(rename = "received_at")]
    pub received_at_ms: i64,
}

impl KinesisRecord {
    /// The record for `request`, accepted at `received_at_ms`.
    pub fn new(request: Request, received_at_ms: i64) -> Self {
        KinesisRecord {
            request,
            received_at_ms,
        }
    }

    /// The partition key: the request id, so that one id's records stay in order on one shard.
    pub fn partition_key(&self) -> &str {
        &self.request.id
    }

    /// The record's bytes as put into the stream.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing a struct of strings and integers into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record from the stream's bytes, checking the payload rules again: anything can
    /// be put into a stream, not only what upstream validated.
    pub fn decode(data: &[u8]) -> Result<Self, RecordError> {
        if data.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge {
                bytes: data.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        let record: KinesisRecord =
            serde_json::from_slice(data).map_err(|e| RecordError::Decode(e.to_string()))?;
        record.request.validate()?;
        // The API refuses timestamps outside its window around `received_at`; a record whose
        // timestamp lies outside it did not come through the API (and would skew a run's
        // latencies by up to the timestamp's error).
        let offset_ms = record.request.timestamp_ms - record.received_at_ms;
        if !(-MAX_TIMESTAMP_AGE_MS..=MAX_TIMESTAMP_AHEAD_MS).contains(&offset_ms) {
            return Err(RecordError::Invalid(
                crate::PayloadError::TimestampOutsideWindow { offset_ms },
            ));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            id: "run-0-1".into(),
            message: "hello".into(),
            timestamp_ms: 1_700_000_000_000,
            run_id: Some("run".into()),
        }
    }

    #[test]
    fn round_trips_through_its_wire_form() {
        let record = KinesisRecord::new(request(), 1_700_000_000_042);
        let bytes = record.encode();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"id":"run-0-1","message":"hello","timestamp":1700000000000,"run_id":"run","received_at":1700000000042}"#
        );
        assert_eq!(KinesisRecord::decode(&bytes).unwrap(), record);
        assert_eq!(record.partition_key(), "run-0-1");
    }

    #[test]
    fn refuses_timestamps_the_api_would_have_refused() {
        // Seconds where milliseconds belong: 1000 times too small, 56 years before received_at.
        let seconds =
            br#"{"id":"a","message":"m","timestamp":1700000000,"received_at":1700000000042}"#;
        let err = KinesisRecord::decode(seconds).unwrap_err().to_string();
        assert!(err.contains("within 24 hours before"), "{err}");
        let ahead =
            br#"{"id":"a","message":"m","timestamp":1700000400000,"received_at":1700000000000}"#;
        assert!(KinesisRecord::decode(ahead).is_err());
    }

    #[test]
    fn refuses_records_larger_than_upstream_writes() {
        let largest = format!(
            r#"{{"id":"a","message":"{}","timestamp":1,"received_at":2}}"#,
            "m".repeat(MAX_BODY_BYTES)
        );
        assert!(KinesisRecord::decode(largest.as_bytes()).is_ok());
        let poison = format!(
            r#"{{"id":"a","message":"{}","timestamp":1,"received_at":2}}"#,
            "m".repeat(MAX_RECORD_BYTES)
        );
        let err = KinesisRecord::decode(poison.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("the limit is 131072"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_valid_record() {
        for data in [
            &b"not json"[..],
            br#"{"id":"a","message":"m","timestamp":1}"#,
            br#"{"id":"","message":"m","timestamp":1,"received_at":2}"#,
            br#"{"id":"a","message":"m","timestamp":-1,"received_at":2}"#,
        ] {
            assert!(
                KinesisRecord::decode(data).is_err(),
                "{:?}",
                std::str::from_utf8(data)
            );
        }
    }
}
