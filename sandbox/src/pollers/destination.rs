//! A mapping's on-failure destination: when a batch is given up, Lambda sends a record of it
//! (which shard, which sequence numbers, why) to an SQS queue or SNS topic. The sandbox sends
//! the same record to an SQS queue in moto; other destinations are named on the log instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Value};

use super::record::sequence_number;
use super::SourceKind;
use crate::awsjson::AwsJson;

/// Why a batch was given up: Lambda's `requestContext.condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Retried `MaximumRetryAttempts` times.
    RetryAttemptsExhausted,
    /// Older than `MaximumRecordAgeInSeconds`.
    RecordAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// A batch given up, as the invocation record describes it.
#[derive(Debug)]
pub struct GivenUp<'a> {
    /// The stream's kind.
    pub kind: SourceKind,
    /// The stream's ARN.
    pub stream_arn: &'a str,
    /// The shard.
    pub shard_id: &'a str,
    /// The function's ARN.
    pub function_arn: &'a str,
    /// Why.
    pub condition: Condition,
    /// How many times the batch was invoked (0 when it expired before any invocation).
    pub invocations: u32,
    /// The records given up, in order.
    pub records: &'a [&'a Value],
    /// When, epoch ms.
    pub at_ms: i64,
}

impl GivenUp<'_> {
    /// Lambda's invocation record for a stream source (`KinesisBatchInfo` or
    /// `DDBStreamBatchInfo`).
    pub fn record(&self) -> Value {
        let arrival = |record: Option<&&Value>| {
            record
                .and_then(|r| arrival_seconds(self.kind, r))
                .map(iso8601)
        };
        let batch = json!({
            "shardId": self.shard_id,
            "startSequenceNumber": self.records.first().and_then(|r| sequence_number(self.kind, r)),
            "endSequenceNumber": self.records.last().and_then(|r| sequence_number(self.kind, r)),
            "approximateArrivalOfFirstRecord": arrival(self.records.first()),
            "approximateArrivalOfLastRecord": arrival(self.records.last()),
            "batchSize": self.records.len(),
            "streamArn": self.stream_arn,
        });
        let info = match self.kind {
            SourceKind::Kinesis => "KinesisBatchInfo",
            SourceKind::DynamoDbStream => "DDBStreamBatchInfo",
        };
        json!({
            "requestContext": {
                "requestId": format!("{}-{}", self.shard_id, self.at_ms),
                "functionArn": self.function_arn,
                "condition": self.condition.as_str(),
                "approximateInvokeCount": self.invocations,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": iso8601(self.at_ms as f64 / 1000.0),
            info: batch,
        })
    }
}

/// Sends one record; the error says why it was not sent.
type Send = dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<(), String>> + std::marker::Send>>
    + std::marker::Send
    + Sync;

/// Where a mapping's given-up batches are recorded.
#[derive(Clone)]
pub struct OnFailure {
    /// The destination's ARN.
    pub arn: String,
    send: Arc<Send>,
}

impl std::fmt::Debug for OnFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnFailure").field("arn", &self.arn).finish()
    }
}

impl OnFailure {
    /// A destination that hands each record to `send`.
    pub fn new(
        arn: &str,
        send: impl Fn(String) -> Pin<Box<dyn Future<Output = Result<(), String>> + std::marker::Send>>
            + std::marker::Send
            + Sync
            + 'static,
    ) -> OnFailure {
        OnFailure {
            arn: arn.to_owned(),
            send: Arc::new(send),
        }
    }

    /// The destination `arn` in moto: an SQS queue (`arn:aws:sqs:REGION:ACCOUNT:NAME`) gets
    /// each record as a message; anything else is refused with the reason, on the log.
    pub fn in_moto(api: AwsJson, arn: &str) -> OnFailure {
        let queue = sqs_queue(arn).map(|(account, name)| (account.to_owned(), name.to_owned()));
        let what = arn.to_owned();
        OnFailure::new(arn, move |body| {
            let (api, queue, what) = (api.clone(), queue.clone(), what.clone());
            Box::pin(async move {
                let Some((account, name)) = queue else {
                    return Err(format!(
                        "{what} is not an SQS queue; the sandbox sends to SQS queues only"
                    ));
                };
                let url = api
                    .call(
                        "sqs",
                        "AmazonSQS.GetQueueUrl",
                        &json!({"QueueName": name, "QueueOwnerAWSAccountId": account}),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let url = url["QueueUrl"].as_str().unwrap_or_default();
                api.call(
                    "sqs",
                    "AmazonSQS.SendMessage",
                    &json!({"QueueUrl": url, "MessageBody": body}),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string())
            })
        })
    }

    /// Sends the record of `given_up`.
    pub async fn send(&self, given_up: &GivenUp<'_>) -> Result<(), String> {
        (self.send)(given_up.record().to_string()).await
    }
}

/// The account and name of an SQS queue's ARN.
fn sqs_queue(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, account, name] if !name.is_empty() => Some((account, name)),
        _ => None,
    }
}

/// When a record reached its stream, epoch seconds.
fn arrival_seconds(kind: SourceKind, record: &Value) -> Option<f64> {
    match kind {
        SourceKind::Kinesis => record["ApproximateArrivalTimestamp"].as_f64(),
        SourceKind::DynamoDbStream => record["dynamodb"]["ApproximateCreationDateTime"].as_f64(),
    }
}

/// Epoch seconds as `2026-11-30T12:00:00.123Z`.
fn iso8601(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_lambdas() {
        let records = [
            json!({"SequenceNumber": "7", "ApproximateArrivalTimestamp": 1_796_028_491.632}),
            json!({"SequenceNumber": "9", "ApproximateArrivalTimestamp": 1_796_028_492.5}),
        ];
        let refs: Vec<&Value> = records.iter().collect();
        let given_up = GivenUp {
            kind: SourceKind::Kinesis,
            stream_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/S",
            shard_id: "shardId-000000000000",
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f",
            condition: Condition::RetryAttemptsExhausted,
            invocations: 11,
            records: &refs,
            at_ms: 1_796_028_500_000,
        };
        let record = given_up.record();
        assert_eq!(
            record["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 11);
        let info = &record["KinesisBatchInfo"];
        assert_eq!(info["startSequenceNumber"], "7");
        assert_eq!(info["endSequenceNumber"], "9");
        assert_eq!(info["batchSize"], 2);
        assert_eq!(info["shardId"], "shardId-000000000000");
        assert_eq!(
            info["approximateArrivalOfFirstRecord"],
            "2026-11-30T08:48:11.632Z"
        );
        assert_eq!(record["timestamp"], "2026-11-30T08:48:20.000Z");
    }

    #[test]
    fn only_sqs_queues_are_read_from_arns() {
        assert_eq!(
            sqs_queue("arn:aws:sqs:us-east-1:123456789012:failed"),
            Some(("123456789012", "failed"))
        );
        assert_eq!(sqs_queue("arn:aws:sns:us-east-1:123456789012:topic"), None);
        assert_eq!(sqs_queue("nonsense"), None);
    }
}
