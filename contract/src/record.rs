//! The Kinesis record: what upstream puts into the stream and midstream reads back.

use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::payload::Request;

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
        let record: KinesisRecord =
            serde_json::from_slice(data).map_err(|e| RecordError::Decode(e.to_string()))?;
        record.request.validate()?;
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
