use serde_json::json;
use std::collections::VecDeque;
use std::sync::Mutex;

use super::*;
use crate::lambda::LogSink;

/// Records "1".."n" in one shard, handed out as asked.
struct Records(VecDeque<Value>);

impl ShardSource for Records {
    fn shard_id(&self) -> &str {
        "shardId-000000000000"
    }

    async fn next_records(&mut self, limit: usize) -> Result<Vec<Value>, CallError> {
        let n = limit.min(self.0.len());
        Ok(self.0.drain(..n).collect())
    }
}

fn records(n: usize) -> Records {
    Records(
        (1..=n)
            .map(|i| json!({ "SequenceNumber": i.to_string(), "Data": "", "PartitionKey": "k" }))
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
        expiry: Expiry::default(),
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        on_failure: None,
        cadence: super::Cadence::FAST,
        quotas: None,
        wake: None,
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
    let stop = crate::ShutdownTrigger::new();
    let logs: LogSink = Arc::new(|_, _| {});
    let poller = poll_shard(config, source, function, logs, "f".into(), stop.shutdown());
    tokio::pin!(poller);
    loop {
        tokio::select! {
            _ = &mut poller => return,
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                if done(function) {
                    stop.stop();
                }
            }
        }
    }
}

/// Records "1".."n" arriving one every `every`, from now.
struct Trickle(VecDeque<(tokio::time::Instant, Value)>);

impl ShardSource for Trickle {
    fn shard_id(&self) -> &str {
        "shardId-000000000000"
    }

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
    let event = event(&config(1, false), "shardId-000000000000", &[&record]);
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

/// A log that keeps its lines.
fn kept_logs() -> (LogSink, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink: LogSink = {
        let lines = lines.clone();
        Arc::new(move |_, line: &str| lines.lock().unwrap().push(line.to_owned()))
    };
    (sink, lines)
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_exhausts_its_retries_is_discarded_reported_and_the_shard_moves_on() {
    // Record 3 always fails; the mapping allows 2 retries and bisects (splits are free).
    let f = Scripted::new(|_, ids| {
        if ids.contains(&"3".to_owned()) {
            Err(InvokeError::Crashed("exit status: 1".into()))
        } else {
            Ok(json!({}))
        }
    });
    let mut config = config(4, true);
    config.expiry.max_retry_attempts = Some(2);
    let (logs, lines) = kept_logs();
    let stop = crate::ShutdownTrigger::new();
    let poller = poll_shard(config, records(6), &f, logs, "f".into(), stop.shutdown());
    tokio::pin!(poller);
    loop {
        tokio::select! {
            _ = &mut poller => break,
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                if f.succeeded.lock().unwrap().len() == 5 {
                    stop.stop();
                }
            }
        }
    }
    assert_eq!(
        *f.succeeded.lock().unwrap(),
        ["1", "2", "4", "5", "6"],
        "everything but the poison record, in order"
    );
    let seen = f.seen.lock().unwrap();
    // 1-4 fails, split to 1-2 (done); 3-4 fails, split to 3: fails 3 times (the try and 2
    // retries) and is discarded; then 4, then 5-6 (read next).
    let sizes: Vec<usize> = seen.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 2, 2, 1, 1, 1, 1, 2]);
    let lines = lines.lock().unwrap();
    let discarded: Vec<&String> = lines.iter().filter(|l| l.contains("discarded")).collect();
    assert_eq!(discarded.len(), 1, "{lines:?}");
    assert!(
        discarded[0]
            .starts_with("poller: discarded 1 records (sequence numbers 3 to 3): retried 2 times"),
        "{}",
        discarded[0]
    );
}

#[tokio::test(start_paused = true)]
async fn records_older_than_the_maximum_age_are_discarded_unprocessed() {
    let now_s = contract::epoch_ms() as f64 / 1000.0;
    let records = Records(
        [(1, now_s - 7200.0), (2, now_s - 3700.0), (3, now_s - 10.0), (4, now_s)]
            .iter()
            .map(|(i, at)| json!({"SequenceNumber": i.to_string(), "Data": "", "PartitionKey": "k", "ApproximateArrivalTimestamp": at}))
            .collect(),
    );
    let f = Scripted::new(|_, _| Ok(json!({})));
    let mut config = config(10, false);
    config.expiry.max_record_age = Some(Duration::from_secs(3600));
    let (logs, lines) = kept_logs();
    let stop = crate::ShutdownTrigger::new();
    let poller = poll_shard(config, records, &f, logs, "f".into(), stop.shutdown());
    tokio::pin!(poller);
    loop {
        tokio::select! {
            _ = &mut poller => break,
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                if !f.seen.lock().unwrap().is_empty() {
                    stop.stop();
                }
            }
        }
    }
    assert_eq!(*f.seen.lock().unwrap(), [["3", "4"]]);
    assert!(
        lines.lock().unwrap().iter().any(|l| l.starts_with(
            "poller: discarded 2 records (sequence numbers 1 to 2): older than the mapping's MaximumRecordAgeInSeconds (3600 s)"
        )),
        "{:?}",
        lines.lock().unwrap()
    );
}

/// An empty shard that counts its reads and when each came.
struct Idle(Arc<Mutex<Vec<tokio::time::Instant>>>);

impl ShardSource for Idle {
    fn shard_id(&self) -> &str {
        "shardId-000000000000"
    }

    async fn next_records(&mut self, _limit: usize) -> Result<Vec<Value>, CallError> {
        self.0.lock().unwrap().push(tokio::time::Instant::now());
        Ok(Vec::new())
    }
}

/// How many times a poller with `cadence` reads an idle shard in 10 s.
async fn reads_of_an_idle_shard(kind: SourceKind, cadence: Cadence) -> usize {
    let reads = Arc::new(Mutex::new(Vec::new()));
    let mut config = config(10, false);
    config.kind = kind;
    config.cadence = cadence;
    let function = Scripted::new(|_, _| Ok(json!({})));
    let stop = crate::ShutdownTrigger::new();
    let logs: LogSink = Arc::new(|_, _| {});
    let poller = poll_shard(
        config,
        Idle(reads.clone()),
        &function,
        logs,
        "f".into(),
        stop.shutdown(),
    );
    tokio::pin!(poller);
    let start = tokio::time::Instant::now();
    tokio::select! {
        _ = &mut poller => panic!("the poller ended by itself"),
        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
    let reads = reads.lock().unwrap();
    reads
        .iter()
        .filter(|at| **at < start + Duration::from_secs(10))
        .count()
}

#[tokio::test(start_paused = true)]
async fn an_idle_kinesis_shard_is_read_once_a_second_in_the_aws_profile() {
    let aws = crate::quota::Profile::aws(1.0);
    let kinesis =
        reads_of_an_idle_shard(SourceKind::Kinesis, aws.cadence(SourceKind::Kinesis)).await;
    assert!((10..=11).contains(&kinesis), "{kinesis} reads in 10 s");
    let stream = reads_of_an_idle_shard(
        SourceKind::DynamoDbStream,
        aws.cadence(SourceKind::DynamoDbStream),
    )
    .await;
    assert!((40..=41).contains(&stream), "{stream} reads in 10 s");
    // The default profile: up to 20 a second.
    let fast = reads_of_an_idle_shard(SourceKind::Kinesis, Cadence::FAST).await;
    assert!((195..=210).contains(&fast), "{fast} reads in 10 s");
}

#[tokio::test(start_paused = true)]
async fn a_throttled_batch_is_tried_again_without_spending_a_retry() {
    // One retry allowed: five throttles in a row, then success, must still deliver every
    // record and give nothing up.
    let mut config = config(10, false);
    config.expiry = Expiry {
        max_retry_attempts: Some(1),
        max_record_age: None,
    };
    let function = Scripted::new(|call, _| match call {
        0..=4 => Err(InvokeError::Throttled(
            "ReservedFunctionConcurrentInvocationLimitExceeded",
        )),
        _ => Ok(json!({})),
    });
    run(config, records(3), &function, |seen| seen.len() >= 6).await;
    assert_eq!(*function.succeeded.lock().unwrap(), ["1", "2", "3"]);
}

#[tokio::test(start_paused = true)]
async fn a_batch_takes_no_more_records_than_fit_in_six_megabytes() {
    // Ten records of 2 MB of data each: at most 3 fit in Lambda's 6 MB payload (6 MiB).
    let big = "A".repeat(2_000_000);
    let source = Records(
        (1..=10)
            .map(|i| json!({ "SequenceNumber": i.to_string(), "Data": big, "PartitionKey": "k" }))
            .collect(),
    );
    let function = Scripted::new(|_, _| Ok(json!({})));
    run(config(100, false), source, &function, |seen| {
        seen.iter().map(Vec::len).sum::<usize>() >= 10
    })
    .await;
    let sizes: Vec<usize> = function.seen.lock().unwrap().iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|n| (1..=3).contains(n)), "{sizes:?}");
    assert_eq!(
        *function.succeeded.lock().unwrap(),
        (1..=10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
}

/// A shard whose records are put in by the test while the poller runs.
struct Shared(Arc<Mutex<VecDeque<Value>>>);

impl ShardSource for Shared {
    fn shard_id(&self) -> &str {
        "shardId-000000000000"
    }

    async fn next_records(&mut self, limit: usize) -> Result<Vec<Value>, CallError> {
        let mut records = self.0.lock().unwrap();
        let n = limit.min(records.len());
        Ok(records.drain(..n).collect())
    }
}

/// When the record written after a quiet spell reaches the function, with or without a wake-up
/// on the write, on a shard read every 10 s while idle.
async fn delivered_after_a_write(woken: bool) -> Duration {
    let shard = Arc::new(Mutex::new(VecDeque::new()));
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut config = config(10, false);
    config.cadence = Cadence {
        idle_min: Duration::from_secs(10),
        idle_max: Duration::from_secs(10),
    };
    config.wake = woken.then(|| wake.clone());
    let function = Scripted::new(|_, _| Ok(json!({})));
    let stop = crate::ShutdownTrigger::new();
    let logs: LogSink = Arc::new(|_, _| {});
    let poller = poll_shard(
        config,
        Shared(shard.clone()),
        &function,
        logs,
        "f".into(),
        stop.shutdown(),
    );
    tokio::pin!(poller);
    // The poller reads the empty shard and waits.
    tokio::select! {
        _ = &mut poller => panic!("the poller ended by itself"),
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    let written = tokio::time::Instant::now();
    shard
        .lock()
        .unwrap()
        .push_back(json!({ "SequenceNumber": "1", "Data": "", "PartitionKey": "k" }));
    wake.notify_one();
    loop {
        tokio::select! {
            _ = &mut poller => panic!("the poller ended by itself"),
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
        if !function.seen.lock().unwrap().is_empty() {
            return written.elapsed();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_write_wakes_an_idle_poller_at_once() {
    let woken = delivered_after_a_write(true).await;
    assert!(woken <= Duration::from_millis(5), "woken: {woken:?}");
    // Without the wake-up the record waits for the idle back-off.
    let waited = delivered_after_a_write(false).await;
    assert!(waited >= Duration::from_secs(8), "not woken: {waited:?}");
}
