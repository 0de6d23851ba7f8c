//! CloudWatch's rpcv2Cbor protocol (what the current Rust SDK speaks) translated to the awsJson1_0
//! protocol moto answers, and back.
//!
//! The bodies carry the same members under the same names; what differs is the encoding of two
//! types: timestamps are CBOR tag 1 (epoch seconds) one way and JSON numbers the other, and the
//! SDK reads a double only from a CBOR float. The few CloudWatch members of those types are
//! listed here by name: the translation needs no other schema.

use ciborium::value::Value as Cbor;
use serde_json::{Number, Value as Json};

/// Members that are timestamps (or lists of them) in CloudWatch's shapes.
const TIMESTAMPS: &[&str] = &[
    "Timestamp",
    "Timestamps",
    "StartTime",
    "EndTime",
    "StartDate",
    "EndDate",
    "LastUpdated",
    "LastModified",
    "StateUpdatedTimestamp",
    "StateTransitionedTimestamp",
    "AlarmConfigurationUpdatedTimestamp",
];

/// Members that are doubles (or lists of them).
const DOUBLES: &[&str] = &[
    "Value",
    "Values",
    "Counts",
    "Average",
    "Sum",
    "Minimum",
    "Maximum",
    "SampleCount",
    "Threshold",
];

/// Why a body could not be translated.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The request body is not CBOR.
    #[error("request body is not CBOR: {0}")]
    NotCbor(String),
    /// The response body is not JSON.
    #[error("moto's answer is not JSON: {0}")]
    NotJson(String),
}

/// An rpcv2Cbor request body as the awsJson1_0 body moto reads.
pub fn request_to_json(body: &[u8]) -> Result<Vec<u8>, TranslateError> {
    if body.is_empty() {
        return Ok(b"{}".to_vec());
    }
    let value: Cbor =
        ciborium::de::from_reader(body).map_err(|e| TranslateError::NotCbor(e.to_string()))?;
    Ok(cbor_to_json(value).to_string().into_bytes())
}

/// moto's awsJson1_0 answer (or error) as the rpcv2Cbor body the SDK reads.
pub fn response_to_cbor(body: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    let value: Json =
        serde_json::from_slice(text).map_err(|e| TranslateError::NotJson(e.to_string()))?;
    Ok(encode(&json_to_cbor(value, Kind::Plain)))
}

/// An error body in rpcv2Cbor's shape: `{"__type": ..., "message": ...}`.
pub fn error_body(error_type: &str, message: &str) -> Vec<u8> {
    encode(&Cbor::Map(vec![
        (Cbor::Text("__type".into()), Cbor::Text(error_type.into())),
        (Cbor::Text("message".into()), Cbor::Text(message.into())),
    ]))
}

fn encode(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::ser::into_writer(value, &mut out);
    out
}

fn cbor_to_json(value: Cbor) -> Json {
    match value {
        Cbor::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i)
                .map(Json::from)
                .or_else(|_| u64::try_from(i).map(Json::from))
                .unwrap_or(Json::Null)
        }
        Cbor::Float(f) => Number::from_f64(f).map_or(Json::Null, Json::Number),
        Cbor::Text(s) => Json::String(s),
        // awsJson blobs are base64; CloudWatch's metric calls carry none, so keep them as text.
        Cbor::Bytes(b) => Json::String(String::from_utf8_lossy(&b).into_owned()),
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Null => Json::Null,
        // Tag 1 is an epoch-seconds timestamp, which awsJson writes as a number too.
        Cbor::Tag(_, inner) => cbor_to_json(*inner),
        Cbor::Array(items) => Json::Array(items.into_iter().map(cbor_to_json).collect()),
        Cbor::Map(entries) => Json::Object(
            entries
                .into_iter()
                .filter_map(|(k, v)| match k {
                    Cbor::Text(k) => Some((k, cbor_to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        _ => Json::Null,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Timestamp,
    Double,
}

fn json_to_cbor(value: Json, kind: Kind) -> Cbor {
    match value {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(b),
        Json::Number(n) => {
            let float = n.as_f64().unwrap_or(0.0);
            match kind {
                Kind::Timestamp => Cbor::Tag(1, Box::new(Cbor::Float(float))),
                Kind::Double => Cbor::Float(float),
                Kind::Plain => match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => Cbor::Integer(i.into()),
                    (None, Some(u)) => Cbor::Integer(u.into()),
                    _ => Cbor::Float(float),
                },
            }
        }
        Json::String(s) if kind == Kind::Timestamp => match humantime::parse_rfc3339_weak(&s) {
            Ok(t) => {
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                Cbor::Tag(1, Box::new(Cbor::Float(secs)))
            }
            Err(_) => Cbor::Text(s),
        },
        Json::String(s) => Cbor::Text(s),
        Json::Array(items) => {
            Cbor::Array(items.into_iter().map(|v| json_to_cbor(v, kind)).collect())
        }
        Json::Object(entries) => Cbor::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let kind = if TIMESTAMPS.contains(&k.as_str()) {
                        Kind::Timestamp
                    } else if DOUBLES.contains(&k.as_str()) {
                        Kind::Double
                    } else {
                        Kind::Plain
                    };
                    (Cbor::Text(k), json_to_cbor(v, kind))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_their_members_and_timestamps_become_numbers() {
        let request = Cbor::Map(vec![
            (Cbor::Text("Namespace".into()), Cbor::Text("NS".into())),
            (
                Cbor::Text("StartTime".into()),
                Cbor::Tag(1, Box::new(Cbor::Float(1_795_680_000.5))),
            ),
            (
                Cbor::Text("Values".into()),
                Cbor::Array(vec![Cbor::Float(1.5), Cbor::Float(2.0)]),
            ),
            (
                Cbor::Text("StorageResolution".into()),
                Cbor::Integer(1.into()),
            ),
        ]);
        let json: Json =
            serde_json::from_slice(&request_to_json(&encode(&request)).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Namespace": "NS", "StartTime": 1_795_680_000.5, "Values": [1.5, 2.0], "StorageResolution": 1})
        );
        assert_eq!(request_to_json(b"").unwrap(), b"{}");
        assert!(request_to_json(b"\xff\xff").is_err());
    }

    #[test]
    fn responses_type_timestamps_and_doubles_as_the_sdk_reads_them() {
        let body = br#"{"MetricDataResults": [{"Id": "q0", "Timestamps": [1795682472, "2026-11-26T08:00:00Z"], "Values": [3, 1.5], "StatusCode": "Complete"}], "Period": 60}"#;
        let cbor: Cbor = ciborium::de::from_reader(&response_to_cbor(body).unwrap()[..]).unwrap();
        let map = cbor.as_map().unwrap();
        let results = map[0].1.as_array().unwrap()[0].as_map().unwrap();
        let get = |key: &str| {
            results
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("Timestamps"),
            Cbor::Array(vec![
                Cbor::Tag(1, Box::new(Cbor::Float(1_795_682_472.0))),
                Cbor::Tag(1, Box::new(Cbor::Float(1_795_680_000.0))),
            ])
        );
        assert_eq!(
            get("Values"),
            Cbor::Array(vec![Cbor::Float(3.0), Cbor::Float(1.5)])
        );
        assert_eq!(
            map[1].1,
            Cbor::Integer(60.into()),
            "plain integers stay integers"
        );
        assert_eq!(response_to_cbor(b"").unwrap(), encode(&Cbor::Map(vec![])));
    }
}
