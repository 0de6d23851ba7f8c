//! Errors of the contract: why a payload, record or item does not follow it.

use thiserror::Error;

/// Why a request body was refused. The `Display` text is the 400 reason the API returns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// The body is larger than [`crate::payload::MAX_BODY_BYTES`].
    #[error("request body is {bytes} bytes; the limit is {limit}")]
    TooLarge {
        /// Size of the body received.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// No body, or only white space.
    #[error("request body is empty; send a JSON object with `id`, `message` and `timestamp`")]
    Empty,
    /// The body does not parse as JSON (the parser's message follows).
    #[error("request body is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON, but not an object.
    #[error("request body must be a JSON object with `id`, `message` and `timestamp`")]
    NotObject,
    /// A required field is absent or null.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field that must be a string is not.
    #[error("`{0}` must be a string")]
    NotAString(&'static str),
    /// A field that must not be empty is.
    #[error("`{0}` must not be empty")]
    EmptyField(&'static str),
    /// The id is longer than a Kinesis partition key may be.
    #[error("`id` must be at most {limit} characters (it is the Kinesis partition key)")]
    IdTooLong {
        /// The limit, in characters.
        limit: usize,
    },
    /// The timestamp is a string, a bool, an array or an object.
    #[error("`timestamp` must be a number: epoch milliseconds (or epoch seconds)")]
    TimestampNotANumber,
    /// The timestamp is zero, negative, or past the year 9999.
    #[error(
        "`timestamp` must be a positive epoch time in milliseconds (values below 10^11 are read \
         as seconds), no later than the year 9999"
    )]
    TimestampOutOfRange,
    /// The timestamp lies outside the window around the API's clock
    /// ([`crate::payload::MAX_TIMESTAMP_AGE_MS`], [`crate::payload::MAX_TIMESTAMP_AHEAD_MS`]).
    #[error(
        "`timestamp` must be within 24 hours before and 5 minutes after the API's clock \
         (epoch milliseconds, or seconds below 10^11); it is {}.{:03} s {} it",
        offset_ms.unsigned_abs() / 1000,
        offset_ms.unsigned_abs() % 1000,
        if *offset_ms < 0 { "before" } else { "after" }
    )]
    TimestampOutsideWindow {
        /// The timestamp minus the API's clock, ms.
        offset_ms: i64,
    },
    /// The run id has characters outside `[A-Za-z0-9_-]`, or a bad length.
    #[error("`run_id` must be 1 to 64 characters of A-Z, a-z, 0-9, `_` or `-`")]
    InvalidRunId,
}

/// Why a Kinesis record's data is not a [`crate::record::KinesisRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The data is larger than any record upstream writes.
    #[error("record data is {bytes} bytes; the limit is {limit}")]
    TooLarge {
        /// Size of the data.
        bytes: usize,
        /// The limit ([`crate::record::MAX_RECORD_BYTES`]).
        limit: usize,
    },
    /// The data is not the record's JSON.
    #[error("record data is not a pipeline record: {0}")]
    Decode(String),
    /// The data decodes, but breaks a payload rule.
    #[error("record data breaks the payload contract: {0}")]
    Invalid(#[from] PayloadError),
}

/// Why an attribute map is not an [`crate::item::Item`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ItemError {
    /// A required attribute is absent.
    #[error("item has no `{0}` attribute")]
    Missing(&'static str),
    /// An attribute has another DynamoDB type than the contract's.
    #[error("item attribute `{name}` must be of type {expected}")]
    WrongType {
        /// Attribute name.
        name: &'static str,
        /// The DynamoDB type expected (`S` or `N`).
        expected: &'static str,
    },
    /// A number attribute does not hold an integer.
    #[error("item attribute `{name}` must be an integer, found {value:?}")]
    NotAnInteger {
        /// Attribute name.
        name: &'static str,
        /// The value found.
        value: String,
    },
}

/// An error in one line: each cause's own words, outermost first, without repeats (for the AWS
/// SDK's errors, whose debug form is not for users).
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
