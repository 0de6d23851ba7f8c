//! When a failing batch is given up, as Lambda does: after `MaximumRetryAttempts` retries, or
//! when its records are older than `MaximumRecordAgeInSeconds`. What is given up is discarded
//! and reported (logged with its sequence numbers), and the shard moves on.

use std::time::Duration;

use serde_json::Value;

use super::record::{arrival_ms, sequence_number};
use super::SourceKind;

/// A mapping's limits; `None` is Lambda's -1: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expiry {
    /// Retries of a failing batch before its records are discarded.
    pub max_retry_attempts: Option<u32>,
    /// Records older than this (since they reached the stream) are discarded unprocessed.
    pub max_record_age: Option<Duration>,
}

impl Expiry {
    /// Reads a mapping's `MaximumRetryAttempts` and `MaximumRecordAgeInSeconds` (absent or -1:
    /// no limit).
    pub fn from_mapping(mapping: &Value) -> Expiry {
        let limit = |name: &str| mapping[name].as_i64().filter(|v| *v >= 0);
        Expiry {
            max_retry_attempts: limit("MaximumRetryAttempts").map(|v| v as u32),
            max_record_age: limit("MaximumRecordAgeInSeconds")
                .map(|v| Duration::from_secs(v as u64)),
        }
    }

    /// Whether a batch that has been retried `retries` times must be given up.
    pub fn retries_exhausted(&self, retries: u32) -> bool {
        self.max_retry_attempts.is_some_and(|max| retries > max)
    }

    /// How many records at the head of `records` are too old at `now_ms`.
    pub fn expired<'a>(
        &self,
        kind: SourceKind,
        records: impl IntoIterator<Item = &'a Value>,
        now_ms: i64,
    ) -> usize {
        let Some(age) = self.max_record_age else {
            return 0;
        };
        let oldest_kept = now_ms - age.as_millis() as i64;
        records
            .into_iter()
            .take_while(|r| arrival_ms(kind, r).is_some_and(|t| t < oldest_kept))
            .count()
    }
}

/// The line that reports discarded records: how many, their sequence numbers, and why.
pub fn discarded(kind: SourceKind, records: &[&Value], why: &str) -> String {
    let first = records.first().and_then(|r| sequence_number(kind, r));
    let last = records.last().and_then(|r| sequence_number(kind, r));
    format!(
        "poller: discarded {} records (sequence numbers {} to {}): {why}",
        records.len(),
        first.unwrap_or("-"),
        last.unwrap_or("-")
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_mapping_as_lambda_does() {
        let e = Expiry::from_mapping(
            &json!({"MaximumRetryAttempts": 10, "MaximumRecordAgeInSeconds": 3600}),
        );
        assert_eq!(e.max_retry_attempts, Some(10));
        assert_eq!(e.max_record_age, Some(Duration::from_secs(3600)));
        assert!(!e.retries_exhausted(10));
        assert!(e.retries_exhausted(11));
        let unlimited = Expiry::from_mapping(&json!({"MaximumRetryAttempts": -1}));
        assert_eq!(unlimited, Expiry::default());
        assert!(!unlimited.retries_exhausted(u32::MAX));
    }

    #[test]
    fn only_the_head_of_a_batch_expires() {
        let e = Expiry {
            max_record_age: Some(Duration::from_secs(60)),
            ..Expiry::default()
        };
        let now = 1_800_000_000_000;
        let at = |s: f64| json!({"SequenceNumber": "1", "ApproximateArrivalTimestamp": s});
        let old = at(1_799_999_900.0);
        let fresh = at(1_799_999_990.5);
        let missing = json!({"SequenceNumber": "2"});
        assert_eq!(
            e.expired(SourceKind::Kinesis, [&old, &old, &fresh, &old], now),
            2
        );
        assert_eq!(e.expired(SourceKind::Kinesis, [&missing, &old], now), 0);
        assert_eq!(
            Expiry::default().expired(SourceKind::Kinesis, [&old], now),
            0
        );
        let stream = json!({"dynamodb": {"ApproximateCreationDateTime": 1_799_999_000, "SequenceNumber": "9"}});
        assert_eq!(e.expired(SourceKind::DynamoDbStream, [&stream], now), 1);
        assert_eq!(
            discarded(SourceKind::DynamoDbStream, &[&stream], "too old"),
            "poller: discarded 1 records (sequence numbers 9 to 9): too old"
        );
    }
}
