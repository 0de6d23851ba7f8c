//! Errors of the functions: configuration at cold start, and each dependency's failure.

use lambda_runtime::Diagnostic;
use thiserror::Error;

/// The function's environment is incomplete; the function stops at init with this message.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{var} is not set: the {function} function needs {what} (the CDK stack sets it)")]
    Missing {
        /// Variable name.
        var: &'static str,
        /// Function that needs it.
        function: &'static str,
        /// What the variable holds.
        what: &'static str,
    },
}

/// Why a Kinesis PutRecord failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PutError {
    /// The stream refused the write for throughput; retried briefly, then a 503.
    #[error("Kinesis throttled the write: {0}")]
    Throttled(String),
    /// Any other failure; a 502.
    #[error("Kinesis did not take the record: {0}")]
    Failed(String),
}

/// A DynamoDB BatchWriteItem call failed as a whole.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The table refused the items for what they are (a `ValidationException`: an item too
    /// large, an attribute it cannot take). The same items can never be written: not retried.
    #[error("DynamoDB refused the items: {0}")]
    Rejected(String),
    /// Anything else (throttling, the network, the service): retried.
    #[error("DynamoDB BatchWriteItem failed: {0}")]
    Failed(String),
}

/// A CloudWatch PutMetricData call failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("CloudWatch PutMetricData failed: {0}")]
pub struct MetricError(pub String);

/// An invocation that cannot report partial failures fails as a whole, and the event source
/// retries the batch.
#[derive(Debug, Error)]
pub enum HandlerError {
    /// A failed stream record has no sequence number to report it by.
    #[error("stream record {event_id} failed and has no sequence number to report it by: {cause}")]
    Unreportable {
        /// The record's event id.
        event_id: String,
        /// Why it failed.
        cause: String,
    },
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        let error_type = match error {
            HandlerError::Unreportable { .. } => "Pipeline.UnreportableFailure",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}
