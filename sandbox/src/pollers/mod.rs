//! Event source mappings: one poller per shard, reading Kinesis or a DynamoDB stream and invoking
//! the function with the event Lambda would build.
//!
//! Semantics, per shard: records are delivered in order, at most `batch_size` at a time. A batch
//! the function fails (error, timeout, crash) is retried with backoff, split in halves first when
//! bisect-on-error is set; with ReportBatchItemFailures, delivery resumes at the first failed
//! record. Unlike Lambda after its retry limit, the sandbox never skips a batch: a benchmark
//! must not lose data silently, so a failing batch keeps the shard waiting and is logged.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::awsjson::{AwsJson, CallError};
use crate::lambda::{FunctionHost, InvokeError, LogSink};

/// What a mapping reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A Kinesis stream.
    Kinesis,
    /// A DynamoDB stream.
    DynamoDbStream,
}

/// Where a new mapping starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record.
    TrimHorizon,
    /// Only new records.
    Latest,
}

/// How a shard is consumed.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// What is read.
    pub kind: SourceKind,
    /// The stream's ARN (the events' `eventSourceARN`).
    pub source_arn: String,
    /// Most records per invocation.
    pub batch_size: usize,
    /// How long to gather records before invoking with fewer than `batch_size` (Lambda's
    /// `MaximumBatchingWindowInSeconds`; zero: invoke with what one read returns).
    pub batching_window: Duration,
    /// Split a failing batch in halves.
    pub bisect_on_error: bool,
    /// The function reports partial failures (`batchItemFailures`).
    pub report_batch_item_failures: bool,
    /// The events' `awsRegion`.
    pub region: String,
}

/// Delays: between empty polls (growing), and before retrying a failed batch (growing). An idle
/// shard is read 20 times a second at most: the first records after a quiet spell wait at most
/// 50 ms per stream (at 200 ms, the first second of a benchmark averaged 300 ms end to end).
const IDLE_MIN: Duration = Duration::from_millis(10);
const IDLE_MAX: Duration = Duration::from_millis(50);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Reads one shard's records, in order.
pub trait ShardSource: Send {
    /// Up to `limit` more records (possibly none yet).
    fn next_records(
        &mut self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Value>, CallError>> + Send;
}

/// Invokes the function.
pub trait Invoker: Send + Sync {
    /// One synchronous invocation.
    fn invoke(&self, payload: Bytes) -> impl Future<Output = Result<Bytes, InvokeError>> + Send;
}

impl Invoker for Arc<FunctionHost> {
    fn invoke(&self, payload: Bytes) -> impl Future<Output = Result<Bytes, InvokeError>> + Send {
        FunctionHost::invoke(self, payload)
    }
}

/// How one delivery went.
#[derive(Debug, PartialEq)]
enum Delivery {
    /// Every record done.
    Done,
    /// Records before this index are done; from it on, not.
    FailedFrom(usize),
    /// The whole batch failed.
    Failed(String),
}

/// Consumes one shard until `stop` turns true.
pub async fn poll_shard<S: ShardSource, I: Invoker>(
    config: PollerConfig,
    mut source: S,
    invoker: I,
    logs: LogSink,
    function: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut pending: VecDeque<Value> = VecDeque::new();
    let mut size = config.batch_size.max(1);
    let mut idle = IDLE_MIN;
    let mut retry = RETRY_MIN;
    while !*stop.borrow() {
        if pending.is_empty() {
            match source.next_records(config.batch_size).await {
                Ok(records) if records.is_empty() => {
                    pause(&mut stop, idle).await;
                    idle = (idle * 2).min(IDLE_MAX);
                    continue;
                }
                Ok(records) => {
                    idle = IDLE_MIN;
                    pending.extend(records);
                    gather(
                        &config,
                        &mut source,
                        &mut pending,
                        &mut stop,
                        &logs,
                        &function,
                    )
                    .await;
                }
                Err(error) => {
                    logs(
                        &function,
                        &format!("poller: reading {}: {error}", config.source_arn),
                    );
                    pause(&mut stop, RETRY_MAX).await;
                    continue;
                }
            }
        }
        let n = size.min(pending.len());
        let batch: Vec<&Value> = pending.iter().take(n).collect();
        match deliver(&config, &invoker, &batch).await {
            Delivery::Done => {
                pending.drain(..n);
                size = config.batch_size.max(1);
                retry = RETRY_MIN;
            }
            Delivery::FailedFrom(index) => {
                logs(
                    &function,
                    &format!(
                        "poller: {} of {n} records done; retrying from record {index}",
                        index
                    ),
                );
                pending.drain(..index);
                pause(&mut stop, retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
            Delivery::Failed(reason) => {
                if config.bisect_on_error && n > 1 {
                    size = (n / 2).max(1);
                }
                logs(
                    &function,
                    &format!(
                        "poller: batch of {n} failed ({reason}); retrying with {} records",
                        size.min(n)
                    ),
                );
                pause(&mut stop, retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// The batching window: reads more until the batch is full or the window, counted from the first
/// record, has passed.
async fn gather<S: ShardSource>(
    config: &PollerConfig,
    source: &mut S,
    pending: &mut VecDeque<Value>,
    stop: &mut watch::Receiver<bool>,
    logs: &LogSink,
    function: &str,
) {
    if config.batching_window.is_zero() {
        return;
    }
    let deadline = tokio::time::Instant::now() + config.batching_window;
    let mut idle = IDLE_MIN;
    while pending.len() < config.batch_size && !*stop.borrow() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        match source.next_records(config.batch_size - pending.len()).await {
            Ok(records) if records.is_empty() => {
                pause(stop, idle.min(left)).await;
                idle = (idle * 2).min(IDLE_MAX);
            }
            Ok(records) => {
                idle = IDLE_MIN;
                pending.extend(records);
            }
            Err(error) => {
                // Invoke with what there is; the next read reports again if it persists.
                logs(
                    function,
                    &format!("poller: reading {}: {error}", config.source_arn),
                );
                return;
            }
        }
    }
}

async fn pause(stop: &mut watch::Receiver<bool>, delay: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.changed() => {}
    }
}

async fn deliver<I: Invoker>(config: &PollerConfig, invoker: &I, batch: &[&Value]) -> Delivery {
    let event = event(config, batch);
    let response = match invoker.invoke(Bytes::from(event.to_string())).await {
        Ok(response) => response,
        Err(error) => return Delivery::Failed(error.to_string()),
    };
    if !config.report_batch_item_failures {
        return Delivery::Done;
    }
    let response: Value = serde_json::from_slice(&response).unwrap_or(Value::Null);
    let failures = match response.get("batchItemFailures").and_then(Value::as_array) {
        Some(failures) if !failures.is_empty() => failures,
        _ => return Delivery::Done,
    };
    // Lambda resumes at the earliest reported record; an identifier it cannot match fails the
    // whole batch.
    let mut first = batch.len();
    for failure in failures {
        let id = failure
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match batch
            .iter()
            .position(|record| sequence_number(config.kind, record) == Some(id))
        {
            Some(index) => first = first.min(index),
            None => {
                return Delivery::Failed(format!(
                    "batchItemFailures names an unknown record {id:?}"
                ))
            }
        }
    }
    Delivery::FailedFrom(first)
}

fn sequence_number(kind: SourceKind, record: &Value) -> Option<&str> {
    match kind {
        SourceKind::Kinesis => record["SequenceNumber"].as_str(),
        SourceKind::DynamoDbStream => record["dynamodb"]["SequenceNumber"].as_str(),
    }
}

/// The Lambda event for raw records from GetRecords.
pub fn event(config: &PollerConfig, records: &[&Value]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| match config.kind {
            SourceKind::Kinesis => {
                let sequence = r["SequenceNumber"].as_str().unwrap_or_default();
                json!({
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r["PartitionKey"],
                        "sequenceNumber": sequence,
                        "data": r["Data"],
                        "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"],
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": format!("shardId-000000000000:{sequence}"),
                    "eventName": "aws:kinesis:record",
                    "awsRegion": config.region,
                    "eventSourceARN": config.source_arn,
                })
            }
            SourceKind::DynamoDbStream => {
                let mut record = (*r).clone();
                if let Some(object) = record.as_object_mut() {
                    object.insert(
                        "eventSourceARN".into(),
                        Value::String(config.source_arn.clone()),
                    );
                }
                record
            }
        })
        .collect();
    json!({ "Records": records })
}

/// One shard of a Kinesis stream or a DynamoDB stream, read through moto's API.
pub struct Shard {
    api: AwsJson,
    kind: SourceKind,
    iterator: Option<String>,
}

fn position(start: StartingPosition) -> &'static str {
    match start {
        StartingPosition::TrimHorizon => "TRIM_HORIZON",
        StartingPosition::Latest => "LATEST",
    }
}

/// The stream name in a Kinesis stream ARN (`arn:aws:kinesis:r:a:stream/NAME`).
pub fn kinesis_stream_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl SourceKind {
    /// The API's signing name.
    fn service(self) -> &'static str {
        match self {
            SourceKind::Kinesis => "kinesis",
            SourceKind::DynamoDbStream => "dynamodb",
        }
    }

    /// The API's target for `operation`.
    fn target(self, operation: &str) -> String {
        match self {
            SourceKind::Kinesis => format!("Kinesis_20131202.{operation}"),
            SourceKind::DynamoDbStream => format!("DynamoDBStreams_20120810.{operation}"),
        }
    }

    /// The request member naming the stream.
    fn stream(self, arn: &str) -> serde_json::Map<String, Value> {
        let mut params = serde_json::Map::new();
        match self {
            SourceKind::Kinesis => {
                params.insert("StreamName".into(), json!(kinesis_stream_name(arn)))
            }
            SourceKind::DynamoDbStream => params.insert("StreamArn".into(), json!(arn)),
        };
        params
    }
}

impl Shard {
    /// Every shard of the stream `arn`, each positioned at `start`.
    pub async fn open_all(
        api: &AwsJson,
        kind: SourceKind,
        arn: &str,
        start: StartingPosition,
    ) -> Result<Vec<Shard>, CallError> {
        let params = Value::Object(kind.stream(arn));
        let shards = match kind {
            SourceKind::Kinesis => api
                .call(kind.service(), &kind.target("ListShards"), &params)
                .await?["Shards"]
                .clone(),
            SourceKind::DynamoDbStream => api
                .call(kind.service(), &kind.target("DescribeStream"), &params)
                .await?["StreamDescription"]["Shards"]
                .clone(),
        };
        let mut out = Vec::new();
        for shard in shards.as_array().into_iter().flatten() {
            let mut params = kind.stream(arn);
            params.insert("ShardId".into(), shard["ShardId"].clone());
            params.insert("ShardIteratorType".into(), json!(position(start)));
            let iterator = api
                .call(
                    kind.service(),
                    &kind.target("GetShardIterator"),
                    &Value::Object(params),
                )
                .await?;
            out.push(Shard {
                api: api.clone(),
                kind,
                iterator: iterator["ShardIterator"].as_str().map(str::to_owned),
            });
        }
        Ok(out)
    }
}

impl ShardSource for Shard {
    async fn next_records(&mut self, limit: usize) -> Result<Vec<Value>, CallError> {
        let Some(iterator) = &self.iterator else {
            return Ok(Vec::new());
        };
        let request = json!({ "ShardIterator": iterator, "Limit": limit });
        let answer = self
            .api
            .call(
                self.kind.service(),
                &self.kind.target("GetRecords"),
                &request,
            )
            .await?;
        self.iterator = answer["NextShardIterator"].as_str().map(str::to_owned);
        Ok(answer["Records"].as_array().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records "1".."n" in one shard, handed out as asked.
    struct Records(VecDeque<Value>);

    impl ShardSource for Records {
        async fn next_records(&mut self, limit: usize) -> Result<Vec<Value>, CallError> {
            let n = limit.min(self.0.len());
            Ok(self.0.drain(..n).collect())
        }
    }

    fn records(n: usize) -> Records {
        Records(
            (1..=n)
                .map(
                    |i| json!({ "SequenceNumber": i.to_string(), "Data": "", "PartitionKey": "k" }),
                )
                .collect(),
        )
    }

    type Answer = Box<dyn Fn(usize, &[String]) -> Result<Value, InvokeError> + Send + Sync>;

    /// A function that sees batches (their sequence numbers) and answers from a script.
    struct Scripted {
        seen: Mutex<Vec<Vec<String>>>,
        /// Records of batches answered without any failure, in delivery order.
        succeeded: Mutex<Vec<String>>,
        answer: Answer,
    }

    impl Scripted {
        fn new(
            answer: impl Fn(usize, &[String]) -> Result<Value, InvokeError> + Send + Sync + 'static,
        ) -> Self {
            Scripted {
                seen: Mutex::default(),
                succeeded: Mutex::default(),
                answer: Box::new(answer),
            }
        }
    }

    impl Invoker for &Scripted {
        async fn invoke(&self, payload: Bytes) -> Result<Bytes, InvokeError> {
            let event: Value = serde_json::from_slice(&payload).unwrap();
            let ids: Vec<String> = event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap().to_owned())
                .collect();
            let call = {
                let mut seen = self.seen.lock().unwrap();
                seen.push(ids.clone());
                seen.len() - 1
            };
            let answer = (self.answer)(call, &ids);
            if matches!(&answer, Ok(v) if v.get("batchItemFailures").is_none()) {
                self.succeeded.lock().unwrap().extend(ids);
            }
            answer.map(|v| Bytes::from(v.to_string()))
        }
    }

    fn config(batch_size: usize, bisect: bool) -> PollerConfig {
        PollerConfig {
            kind: SourceKind::Kinesis,
            source_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/KinesisStream".into(),
            batch_size,
            batching_window: Duration::ZERO,
            bisect_on_error: bisect,
            report_batch_item_failures: true,
            region: "us-east-1".into(),
        }
    }

    /// Runs a poller until `done` says the function has seen enough, then stops it.
    async fn run<S: ShardSource>(
        config: PollerConfig,
        source: S,
        function: &Scripted,
        done: impl Fn(&[Vec<String>]) -> bool,
    ) {
        run_until(config, source, function, |f| done(&f.seen.lock().unwrap())).await
    }

    async fn run_until<S: ShardSource>(
        config: PollerConfig,
        source: S,
        function: &Scripted,
        done: impl Fn(&Scripted) -> bool,
    ) {
        let (stop, stopping) = watch::channel(false);
        let logs: LogSink = Arc::new(|_, _| {});
        let poller = poll_shard(config, source, function, logs, "f".into(), stopping);
        tokio::pin!(poller);
        loop {
            tokio::select! {
                _ = &mut poller => return,
                _ = tokio::time::sleep(Duration::from_millis(5)) => {
                    if done(function) {
                        let _ = stop.send(true);
                    }
                }
            }
        }
    }

    /// Records "1".."n" arriving one every `every`, from now.
    struct Trickle(VecDeque<(tokio::time::Instant, Value)>);

    impl ShardSource for Trickle {
        async fn next_records(&mut self, limit: usize) -> Result<Vec<Value>, CallError> {
            let now = tokio::time::Instant::now();
            let mut out = Vec::new();
            while out.len() < limit && self.0.front().is_some_and(|(at, _)| *at <= now) {
                out.extend(self.0.pop_front().map(|(_, record)| record));
            }
            Ok(out)
        }
    }

    fn trickle(n: usize, every: Duration) -> Trickle {
        let start = tokio::time::Instant::now();
        let Records(records) = records(n);
        Trickle(
            records
                .into_iter()
                .enumerate()
                .map(|(i, record)| (start + every * i as u32, record))
                .collect(),
        )
    }

    fn sizes(f: &Scripted) -> Vec<usize> {
        f.seen.lock().unwrap().iter().map(Vec::len).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_batching_window_each_read_is_invoked_at_once() {
        let f = Scripted::new(|_, _| Ok(json!({})));
        let all = |seen: &[Vec<String>]| seen.iter().map(Vec::len).sum::<usize>() == 6;
        run(
            config(10, false),
            trickle(6, Duration::from_millis(100)),
            &f,
            all,
        )
        .await;
        assert_eq!(sizes(&f), [1, 1, 1, 1, 1, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_batching_window_gathers_records_until_it_ends_or_the_batch_is_full() {
        let all = |seen: &[Vec<String>]| seen.iter().map(Vec::len).sum::<usize>() == 6;
        // Records 100 ms apart: a 1 s window gathers all six into one invocation; a 250 ms
        // window, the records that came within it.
        let mut windowed = config(10, false);
        for (window, expected) in [(1000, vec![6]), (250, vec![3, 3])] {
            let f = Scripted::new(|_, _| Ok(json!({})));
            windowed.batching_window = Duration::from_millis(window);
            let records = trickle(6, Duration::from_millis(100));
            run(windowed.clone(), records, &f, all).await;
            assert_eq!(sizes(&f), expected, "{window} ms");
        }
        // A full batch goes at once, window or not.
        let f = Scripted::new(|_, _| Ok(json!({})));
        windowed.batch_size = 2;
        windowed.batching_window = Duration::from_secs(60);
        let started = tokio::time::Instant::now();
        run(windowed, trickle(6, Duration::from_millis(100)), &f, all).await;
        assert_eq!(sizes(&f), [2, 2, 2]);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            f.seen.lock().unwrap().concat(),
            (1..=6).map(|i| i.to_string()).collect::<Vec<_>>()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn batches_of_at_most_batch_size_in_order() {
        let f = Scripted::new(|_, _| Ok(json!({})));
        run(config(10, false), records(25), &f, |seen| {
            seen.iter().map(Vec::len).sum::<usize>() == 25
        })
        .await;
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert_eq!(
            seen.concat(),
            (1..=25).map(|i| i.to_string()).collect::<Vec<_>>()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_failure_resumes_at_the_first_failed_record() {
        let f = Scripted::new(|call, _| {
            Ok(if call == 0 {
                json!({"batchItemFailures": [{"itemIdentifier": "7"}, {"itemIdentifier": "4"}]})
            } else {
                json!({})
            })
        });
        run(config(10, false), records(10), &f, |seen| seen.len() == 2).await;
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen[1], (4..=10).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_batch_is_bisected_retried_and_never_skipped() {
        // Record 6 fails twice (a poison pill that recovers), everything else succeeds.
        let failures = Mutex::new(0);
        let f = Scripted::new(move |_, ids| {
            let mut failures = failures.lock().unwrap();
            if ids.contains(&"6".to_owned()) && *failures < 2 {
                *failures += 1;
                Err(InvokeError::Crashed("exit status: 1".into()))
            } else {
                Ok(json!({}))
            }
        });
        run_until(config(8, true), records(8), &f, |f| {
            f.succeeded.lock().unwrap().len() == 8
        })
        .await;
        assert_eq!(
            *f.succeeded.lock().unwrap(),
            (1..=8).map(|i| i.to_string()).collect::<Vec<_>>(),
            "each once, in order"
        );
        let seen = f.seen.lock().unwrap();
        let sizes: Vec<usize> = seen.iter().map(Vec::len).collect();
        // 8 fails, halves to 4 (1-4 succeed), 4 (5-8) fails, halves to 2 (5-6) succeeds, then 7-8.
        assert_eq!(sizes, [8, 4, 4, 2, 2]);
        assert_eq!(seen[3], ["5", "6"]);
    }

    #[test]
    fn events_look_like_lambdas() {
        let record = json!({"SequenceNumber": "49", "Data": "aGk=", "PartitionKey": "k", "ApproximateArrivalTimestamp": 1795680000.123});
        let event = event(&config(1, false), &[&record]);
        let r = &event["Records"][0];
        assert_eq!(r["kinesis"]["data"], "aGk=");
        assert_eq!(r["kinesis"]["sequenceNumber"], "49");
        assert_eq!(
            r["eventSourceARN"],
            "arn:aws:kinesis:us-east-1:123456789012:stream/KinesisStream"
        );
        let parsed: aws_lambda_events::event::kinesis::KinesisEvent =
            serde_json::from_value(event).unwrap();
        assert_eq!(parsed.records[0].kinesis.data.0, b"hi");
    }
}
