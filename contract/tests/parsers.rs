//! Property tests of the parsers that read what anyone can send: the API's request body and the
//! stream's record data. Arbitrary bytes never panic and never pass unless they follow the
//! contract; everything the contract allows passes and reads back as it was.

use contract::{KinesisRecord, Request};
use proptest::prelude::*;

/// Valid requests: ids and messages of any characters, run ids of the allowed ones.
fn requests() -> impl Strategy<Value = Request> {
    (
        "\\PC{1,40}",
        "\\PC{1,200}",
        1_600_000_000_000i64..2_000_000_000_000,
        proptest::option::of("[A-Za-z0-9_-]{1,64}"),
    )
        .prop_map(|(id, message, timestamp_ms, run_id)| Request {
            id,
            message,
            timestamp_ms,
            run_id,
        })
}

/// Bytes that are often almost JSON: arbitrary bytes, and valid bodies with a byte changed.
fn hostile_bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (requests(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(r, at, byte)| {
            let mut body = serde_json::to_vec(&r).unwrap();
            let i = at.index(body.len());
            body[i] = byte;
            body
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    /// Whatever the bytes, parsing answers (no panic), and what it accepts follows the rules.
    #[test]
    fn arbitrary_bodies_never_panic_and_only_valid_ones_pass(body in hostile_bodies()) {
        if let Ok(request) = Request::parse(&body) {
            prop_assert!(request.validate().is_ok());
            prop_assert!(body.len() <= contract::payload::MAX_BODY_BYTES);
        }
        if let Ok(record) = KinesisRecord::decode(&body) {
            prop_assert!(record.request.validate().is_ok());
        }
    }

    /// Every valid request is accepted, and its record reads back exactly, timestamp included.
    #[test]
    fn valid_requests_pass_and_their_records_round_trip(
        request in requests(),
        delay_ms in 0i64..60_000,
    ) {
        let body = serde_json::to_vec(&request).unwrap();
        prop_assert_eq!(Request::parse(&body).unwrap(), request.clone());
        let record = KinesisRecord::new(request, 0);
        let record = KinesisRecord { received_at_ms: record.request.timestamp_ms + delay_ms, ..record };
        prop_assert_eq!(KinesisRecord::decode(&record.encode()).unwrap(), record);
    }
}
