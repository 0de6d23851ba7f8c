//! The request body the load generator (or curl, or the AWS sample's k6 script) POSTs to the API.
//!
//! `{"id": string, "message": string, "timestamp": integer, "run_id": string?}`; unknown fields are
//! ignored. Validation turns a body into a [`Request`] or a [`PayloadError`] whose message says what
//! was wrong in words a user can act on: the upstream function returns it as the 400 reason.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::PayloadError;

/// Largest accepted request body, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest accepted `id`, in characters: the id is the Kinesis partition key, which allows 256.
pub const MAX_ID_CHARS: usize = 256;

/// Longest accepted `run_id`, in characters.
pub const MAX_RUN_ID_CHARS: usize = 64;

/// Timestamps below this are epoch **seconds** (the AWS sample's seconds-based payload); at or above
/// it, epoch milliseconds. 10^11 s is the year 5138; 10^11 ms is March 1973.
pub const SECONDS_THRESHOLD: i64 = 100_000_000_000;

/// Latest accepted timestamp, in epoch milliseconds (9999-12-31T23:59:59.999Z).
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// How far before the API's clock a request's `timestamp` may lie (24 hours): older requests are
/// refused, since their latency would be a clock error, not the pipeline's.
pub const MAX_TIMESTAMP_AGE_MS: i64 = 24 * 60 * 60 * 1000;

/// How far after the API's clock a request's `timestamp` may lie (5 minutes of clock skew).
pub const MAX_TIMESTAMP_AHEAD_MS: i64 = 5 * 60 * 1000;

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Caller's id for this request; non-empty, at most [`MAX_ID_CHARS`] characters.
    pub id: String,
    /// Free text; non-empty.
    pub message: String,
    /// When the client sent the request, epoch milliseconds. [`Request::parse`] reads a body's
    /// seconds as seconds; deserializing (a Kinesis record, written by upstream) reads the
    /// integer milliseconds as they were written, never converting them a second time.
    #[serde(rename = "timestamp", deserialize_with = "deserialize_timestamp_ms")]
    pub timestamp_ms: i64,
    /// The load-test run this request belongs to, `[A-Za-z0-9_-]{1,64}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The wire shape before validation: every field optional and of any JSON type, so that each
/// problem can be named precisely.
#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(default)]
    run_id: Option<Value>,
}

impl Request {
    /// Parses and validates a request body.
    pub fn parse(body: &[u8]) -> Result<Request, PayloadError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(PayloadError::TooLarge {
                bytes: body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(PayloadError::Empty);
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| PayloadError::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(PayloadError::NotObject);
        }
        let raw: RawRequest =
            serde_json::from_value(value).map_err(|e| PayloadError::NotJson(e.to_string()))?;
        let request = Request {
            id: required_string("id", raw.id)?,
            message: required_string("message", raw.message)?,
            timestamp_ms: timestamp_ms(raw.timestamp)?,
            run_id: match raw.run_id {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(_) => return Err(PayloadError::InvalidRunId),
            },
        };
        request.validate()?;
        Ok(request)
    }

    /// Parses a body as [`Request::parse`] does, then refuses a `timestamp` outside the window
    /// around `now_ms` (the API's clock): [`MAX_TIMESTAMP_AGE_MS`] before it to
    /// [`MAX_TIMESTAMP_AHEAD_MS`] after it.
    pub fn parse_at(body: &[u8], now_ms: i64) -> Result<Request, PayloadError> {
        let request = Request::parse(body)?;
        let offset_ms = request.timestamp_ms - now_ms;
        if (-MAX_TIMESTAMP_AGE_MS..=MAX_TIMESTAMP_AHEAD_MS).contains(&offset_ms) {
            Ok(request)
        } else {
            Err(PayloadError::TimestampOutsideWindow { offset_ms })
        }
    }

    /// Checks the rules that hold for any request, however it was built or decoded.
    pub fn validate(&self) -> Result<(), PayloadError> {
        if self.id.is_empty() {
            return Err(PayloadError::EmptyField("id"));
        }
        if self.id.chars().count() > MAX_ID_CHARS {
            return Err(PayloadError::IdTooLong {
                limit: MAX_ID_CHARS,
            });
        }
        if self.message.is_empty() {
            return Err(PayloadError::EmptyField("message"));
        }
        if !(1..=MAX_TIMESTAMP_MS).contains(&self.timestamp_ms) {
            return Err(PayloadError::TimestampOutOfRange);
        }
        if let Some(run_id) = &self.run_id {
            if !is_valid_run_id(run_id) {
                return Err(PayloadError::InvalidRunId);
            }
        }
        Ok(())
    }
}

/// Whether `s` is a valid run id: 1 to 64 characters of `A-Z a-z 0-9 _ -`.
pub fn is_valid_run_id(s: &str) -> bool {
    (1..=MAX_RUN_ID_CHARS).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Normalises a client timestamp to epoch milliseconds: values below [`SECONDS_THRESHOLD`] are
/// epoch seconds.
pub fn normalize_timestamp_ms(value: i64) -> i64 {
    if value < SECONDS_THRESHOLD {
        value.saturating_mul(1000)
    } else {
        value
    }
}

fn required_string(field: &'static str, value: Option<Value>) -> Result<String, PayloadError> {
    match value {
        None | Some(Value::Null) => Err(PayloadError::Missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(PayloadError::NotAString(field)),
    }
}

/// Reads a serialized request's `timestamp`: integer epoch milliseconds, as [`Request`]
/// serializes it. Seconds are a body's spelling ([`Request::parse`]), not a record's.
fn deserialize_timestamp_ms<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<i64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom(PayloadError::TimestampOutOfRange)),
        _ => Err(serde::de::Error::custom(PayloadError::TimestampNotANumber)),
    }
}

fn timestamp_ms(value: Option<Value>) -> Result<i64, PayloadError> {
    let number = match value {
        None | Some(Value::Null) => return Err(PayloadError::Missing("timestamp")),
        Some(Value::Number(n)) => n,
        Some(_) => return Err(PayloadError::TimestampNotANumber),
    };
    if let Some(v) = number.as_i64() {
        return Ok(normalize_timestamp_ms(v));
    }
    // A fractional timestamp (`Date.now() / 1000` in a k6 script) keeps its milliseconds.
    match number.as_f64() {
        Some(v) if v.is_finite() && v > 0.0 && v < SECONDS_THRESHOLD as f64 => {
            Ok((v * 1000.0).round() as i64)
        }
        Some(v) if v.is_finite() && v > 0.0 && v <= MAX_TIMESTAMP_MS as f64 => Ok(v as i64),
        _ => Err(PayloadError::TimestampOutOfRange),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Request, String> {
        Request::parse(body.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_the_contract_shape_and_ignores_unknown_fields() {
        let r = parse(
            r#"{"id":"a-1","message":"hi","timestamp":1700000000123,"run_id":"run_1","extra":[1]}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Request {
                id: "a-1".into(),
                message: "hi".into(),
                timestamp_ms: 1_700_000_000_123,
                run_id: Some("run_1".into()),
            }
        );
    }

    #[test]
    fn reads_epoch_seconds_as_the_samples_payload_did() {
        let r = parse(r#"{"id":"1","message":"m","timestamp":1700000000}"#).unwrap();
        assert_eq!(r.timestamp_ms, 1_700_000_000_000);
        assert_eq!(r.run_id, None);
        let r = parse(r#"{"id":"1","message":"m","timestamp":1700000000.25}"#).unwrap();
        assert_eq!(r.timestamp_ms, 1_700_000_000_250);
        let r = parse(r#"{"id":"1","message":"m","timestamp":1700000000123.0}"#).unwrap();
        assert_eq!(r.timestamp_ms, 1_700_000_000_123);
    }

    #[test]
    fn null_run_id_is_absent() {
        let r = parse(r#"{"id":"1","message":"m","timestamp":5,"run_id":null}"#).unwrap();
        assert_eq!(r.run_id, None);
        assert_eq!(r.timestamp_ms, 5000);
    }

    #[test]
    fn each_rejection_names_the_problem() {
        let cases = [
            ("", "request body is empty"),
            ("  \n", "request body is empty"),
            ("{", "not valid JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"message":"m","timestamp":1}"#, "missing field `id`"),
            (
                r#"{"id":null,"message":"m","timestamp":1}"#,
                "missing field `id`",
            ),
            (
                r#"{"id":7,"message":"m","timestamp":1}"#,
                "`id` must be a string",
            ),
            (
                r#"{"id":"","message":"m","timestamp":1}"#,
                "`id` must not be empty",
            ),
            (r#"{"id":"1","timestamp":1}"#, "missing field `message`"),
            (
                r#"{"id":"1","message":"","timestamp":1}"#,
                "`message` must not be empty",
            ),
            (r#"{"id":"1","message":"m"}"#, "missing field `timestamp`"),
            (
                r#"{"id":"1","message":"m","timestamp":"1"}"#,
                "`timestamp` must be a number",
            ),
            (
                r#"{"id":"1","message":"m","timestamp":0}"#,
                "`timestamp` must be",
            ),
            (
                r#"{"id":"1","message":"m","timestamp":-5}"#,
                "`timestamp` must be",
            ),
            (
                r#"{"id":"1","message":"m","timestamp":1e300}"#,
                "`timestamp` must be",
            ),
            (
                r#"{"id":"1","message":"m","timestamp":1,"run_id":"a b"}"#,
                "`run_id` must be",
            ),
            (
                r#"{"id":"1","message":"m","timestamp":1,"run_id":""}"#,
                "`run_id` must be",
            ),
            (
                r#"{"id":"1","message":"m","timestamp":1,"run_id":3}"#,
                "`run_id` must be",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(body).expect_err(body);
            assert!(
                err.contains(expected),
                "{body:?}: {err:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let id = "x".repeat(MAX_ID_CHARS);
        assert!(parse(&format!(r#"{{"id":"{id}","message":"m","timestamp":1}}"#)).is_ok());
        let err = parse(&format!(r#"{{"id":"{id}x","message":"m","timestamp":1}}"#)).unwrap_err();
        assert!(err.contains("at most 256 characters"), "{err}");

        let run = "r".repeat(MAX_RUN_ID_CHARS);
        assert!(parse(&format!(
            r#"{{"id":"1","message":"m","timestamp":1,"run_id":"{run}"}}"#
        ))
        .is_ok());
        assert!(parse(&format!(
            r#"{{"id":"1","message":"m","timestamp":1,"run_id":"{run}r"}}"#
        ))
        .is_err());

        let head = r#"{"id":"1","message":""#;
        let tail = r#"","timestamp":1}"#;
        let fill = MAX_BODY_BYTES - head.len() - tail.len();
        let body = format!("{head}{}{tail}", "m".repeat(fill));
        assert_eq!(body.len(), MAX_BODY_BYTES);
        assert!(parse(&body).is_ok());
        let body = format!("{head}{}{tail}", "m".repeat(fill + 1));
        let err = parse(&body).unwrap_err();
        assert_eq!(err, "request body is 65537 bytes; the limit is 65536");
    }

    #[test]
    fn deserializing_reads_milliseconds_as_written() {
        // A record's timestamp was normalised once, by upstream; reading it again must not
        // multiply it by 1000 (a body's `"timestamp": 1` became 1,000 ms, then 1,000,000).
        let r: Request =
            serde_json::from_str(r#"{"id":"1","message":"m","timestamp":1000}"#).unwrap();
        assert_eq!(r.timestamp_ms, 1000);
        let r: Request =
            serde_json::from_str(r#"{"id":"1","message":"m","timestamp":1700000000}"#).unwrap();
        assert_eq!(r.timestamp_ms, 1_700_000_000);
        let parsed = Request::parse(br#"{"id":"1","message":"m","timestamp":1}"#).unwrap();
        let again: Request = serde_json::from_slice(&serde_json::to_vec(&parsed).unwrap()).unwrap();
        assert_eq!(again, parsed);
        assert!(
            serde_json::from_str::<Request>(r#"{"id":"1","message":"m","timestamp":1.5}"#).is_err()
        );
        let err = serde_json::from_str::<Request>(r#"{"id":"1","message":"m","timestamp":"x"}"#)
            .unwrap_err();
        assert!(
            err.to_string().contains("`timestamp` must be a number"),
            "{err}"
        );
    }

    #[test]
    fn the_api_refuses_timestamps_outside_its_window() {
        let now = 1_800_000_000_000;
        let body = |ts: i64| format!(r#"{{"id":"1","message":"m","timestamp":{ts}}}"#);
        for ts in [
            now,
            now - MAX_TIMESTAMP_AGE_MS,
            now + MAX_TIMESTAMP_AHEAD_MS,
            now / 1000,
        ] {
            assert!(Request::parse_at(body(ts).as_bytes(), now).is_ok(), "{ts}");
        }
        for (ts, words) in [
            (1, "1799999999.000 s before"),
            (now - MAX_TIMESTAMP_AGE_MS - 1, "86400.001 s before"),
            (now + MAX_TIMESTAMP_AHEAD_MS + 1, "300.001 s after"),
            (MAX_TIMESTAMP_MS, "after"),
        ] {
            let err = Request::parse_at(body(ts).as_bytes(), now)
                .unwrap_err()
                .to_string();
            assert!(err.contains(words), "{ts}: {err}");
            assert!(
                err.contains("within 24 hours before and 5 minutes after"),
                "{err}"
            );
        }
    }

    #[test]
    fn serializes_with_the_wire_names() {
        let r = Request {
            id: "i".into(),
            message: "m".into(),
            timestamp_ms: 1_700_000_000_000,
            run_id: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"id":"i","message":"m","timestamp":1700000000000}"#
        );
    }
}
