//! The wait loop's end states and the export, over a simulated pipeline whose metrics appear as
//! (paused) time goes by.

use std::time::Duration;

use clap::Parser;
use collector::api::{ApiError, DataPage, DataRequest, MetricsApi, QueryResult, Stat};
use collector::opts::{Command, Opts};
use collector::wait::{self, Clock, WaitConfig};
use collector::{RunMetrics, Window};
use contract::buckets::nearest_rank;
use contract::buckets::Bucket;
use contract::export::{LatencyExport, WaitState};
use contract::metrics::{
    Hop, DIM_BUCKET, DIM_HOP, DIM_RUN_ID, HOP_LATENCY_BUCKET, LATENCY, LATENCY_BUCKET,
};

const EPOCH: i64 = 1_795_680_000_000;
const RUN: &str = "sim";

/// A pipeline's published latencies: `(published at, epoch ms; latency, ms)`, visible to queries
/// once the clock passes their time. Hops are fixed shares of the latency.
struct Pipeline {
    clock: Clock,
    samples: Vec<(i64, f64)>,
}

impl Pipeline {
    fn new(clock: Clock, samples: Vec<(i64, f64)>) -> Self {
        Pipeline { clock, samples }
    }

    /// `n` samples, one every `every_ms` from `first_ms` after the epoch, latencies 100, 101, ...
    fn steady(clock: Clock, n: usize, first_ms: i64, every_ms: i64) -> Self {
        Self::new(
            clock,
            (0..n)
                .map(|i| (EPOCH + first_ms + i as i64 * every_ms, 100.0 + i as f64))
                .collect(),
        )
    }

    /// Each hop's share of a loop's latency.
    fn hop_value(hop: &str, latency: f64) -> Option<f64> {
        match hop {
            m if m == Hop::ClientToKinesis.metric_name() => Some(latency * 0.25),
            m if m == Hop::KinesisToStore.metric_name() => Some(latency * 0.25),
            m if m == Hop::StoreToDownstream.metric_name() => Some(latency * 0.5),
            _ => None,
        }
    }

    fn value(metric: &str, dims: &[(String, String)], latency: f64) -> Option<f64> {
        if dims.first() != Some(&(DIM_RUN_ID.to_owned(), RUN.to_owned())) {
            return None;
        }
        let dim = |name: &str| {
            dims.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        match metric {
            HOP_LATENCY_BUCKET => {
                let value = Self::hop_value(dim(DIM_HOP)?, latency)?;
                (dim(DIM_BUCKET)? == Bucket::of(value as i64).label()).then_some(value)
            }
            LATENCY if dims.len() == 1 => Some(latency),
            LATENCY_BUCKET => dims
                .iter()
                .any(|(k, v)| k == DIM_BUCKET && *v == Bucket::of(latency as i64).label())
                .then_some(latency),
            m if dims.len() == 1 => Self::hop_value(m, latency),
            _ => None,
        }
    }
}

impl MetricsApi for Pipeline {
    async fn get_metric_data(&self, request: &DataRequest) -> Result<DataPage, ApiError> {
        let now = self.clock.now_ms();
        let mut results = Vec::new();
        for q in &request.queries {
            let period = i64::from(q.period_s) * 1000;
            let mut groups: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
            for &(at, latency) in &self.samples {
                if at > now || at < request.start_ms || at >= request.end_ms {
                    continue;
                }
                if let Some(v) = Self::value(&q.metric_name, &q.dimensions, latency) {
                    groups
                        .entry(at - (at - request.start_ms).rem_euclid(period))
                        .or_default()
                        .push(v);
                }
            }
            let mut result = QueryResult {
                id: q.id.clone(),
                ..Default::default()
            };
            for (t, values) in groups {
                let stat = match q.stat {
                    Stat::SampleCount => values.len() as f64,
                    Stat::Sum => values.iter().sum(),
                    Stat::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
                    Stat::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    Stat::Average => values.iter().sum::<f64>() / values.len() as f64,
                    Stat::P50 | Stat::P99 => continue,
                };
                result.timestamps_ms.push(t);
                result.values.push(stat);
            }
            results.push(result);
        }
        Ok(DataPage {
            results,
            next_token: None,
        })
    }
}

fn config(expected: Option<u64>) -> WaitConfig {
    WaitConfig {
        since_ms: EPOCH - 5_000,
        until_ms: None,
        expected,
        poll: Duration::from_secs(5),
        quiet: Duration::from_secs(15),
        timeout: Duration::from_secs(120),
        progress: false,
    }
}

fn metrics(pipeline: &Pipeline) -> RunMetrics<&Pipeline> {
    RunMetrics {
        api: pipeline,
        namespace: "NS".into(),
        run_id: RUN.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn complete_when_every_accepted_request_is_processed() {
    let clock = Clock::starting_at(EPOCH);
    // 100 loops between 1.0 s and 10.9 s.
    let pipeline = Pipeline::steady(clock, 100, 1_000, 100);
    let outcome = wait::wait(&metrics(&pipeline), &config(Some(100)), clock)
        .await
        .unwrap();
    assert_eq!(
        (outcome.state, outcome.processed),
        (WaitState::Complete, 100)
    );
    assert_eq!(
        outcome.waited,
        Duration::from_secs(15),
        "polls at 0, 5, 10 (91 seen), 15 s"
    );

    let export = wait::export(&metrics(&pipeline), &outcome, Some(100), None)
        .await
        .unwrap();
    assert_eq!(
        (export.run.processed, export.run.expected),
        (100, Some(100))
    );
    assert_eq!(export.latency.count, 100);
    assert_eq!(
        (export.latency.min_ms, export.latency.max_ms),
        (100.0, 199.0)
    );
    assert_eq!(export.per_second.len(), 10);
    assert_eq!(export.per_second.iter().map(|r| r.count).sum::<u64>(), 100);
    let first = export.per_second[0];
    assert_eq!(
        (first.timestamp_ms, first.minimum_ms, first.maximum_ms),
        (EPOCH + 1_000, 100.0, 109.0)
    );
    assert_eq!(first.average_ms, 104.5);
    assert_eq!(export.histogram.count(), 100);
    let p50 = export.histogram.percentile(50.0).unwrap();
    assert!((p50 - 149.0).abs() / 149.0 <= 0.02, "{p50}");
    let store = export.hops[Hop::StoreToDownstream.metric_name()];
    assert_eq!((store.count, store.min_ms, store.max_ms), (100, 50.0, 99.5));
}

/// The exact nearest-rank percentile of `values`.
fn exact(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[nearest_rank(p, values.len() as u64) as usize - 1]
}

#[tokio::test(start_paused = true)]
async fn every_hop_and_every_second_has_percentiles_within_2_percent() {
    let clock = Clock::starting_at(EPOCH);
    // 300 loops over 10 s whose latencies spread from 50 ms to about 2 s, unevenly.
    let samples: Vec<(i64, f64)> = (0..300)
        .map(|i| {
            let latency = 50.0 + ((i * 7919) % 300) as f64 * ((i % 3) as f64 + 1.0) * 2.2;
            (EPOCH + 1_000 + i * 33, latency.floor())
        })
        .collect();
    let pipeline = Pipeline::new(clock, samples.clone());
    let outcome = wait::wait(&metrics(&pipeline), &config(Some(300)), clock)
        .await
        .unwrap();
    assert_eq!(outcome.state, WaitState::Complete);
    let export = wait::export(&metrics(&pipeline), &outcome, Some(300), None)
        .await
        .unwrap();
    assert_eq!(export.hop_histograms.len(), 3);
    for hop in Hop::ALL {
        let histogram = &export.hop_histograms[hop.metric_name()];
        assert_eq!(histogram.count(), 300, "{hop:?}");
        // What downstream counts: each hop's latency in whole milliseconds.
        let mut values: Vec<f64> = samples
            .iter()
            .map(|&(_, l)| Pipeline::hop_value(hop.metric_name(), l).unwrap().floor())
            .collect();
        for p in [50.0, 90.0, 95.0, 99.0] {
            let want = exact(&mut values, p);
            let got = histogram.percentile(p).unwrap();
            assert!(
                (got - want).abs() <= 0.02 * want,
                "{hop:?} p{p}: {got} from buckets, {want} exact"
            );
        }
    }
    // Each second's p99, from that second's buckets.
    assert_eq!(export.per_second.len(), 10);
    for row in &export.per_second {
        let mut values: Vec<f64> = samples
            .iter()
            .filter(|(at, _)| (row.timestamp_ms..row.timestamp_ms + 1000).contains(at))
            .map(|&(_, l)| l)
            .collect();
        let want = exact(&mut values, 99.0);
        let got = row.p99_ms.expect("a p99 for every second with loops");
        assert!(
            (got - want).abs() <= 0.02 * want,
            "second {}: p99 {got} from buckets, {want} exact",
            row.timestamp_ms
        );
    }
    // And the stats table has them.
    let report = collector::stats_report(
        &collector::Input::Export(Box::new(export.clone())),
        None,
        None,
        &contract::cost::PriceFile::shipped(),
    );
    assert!(
        report.hops.iter().all(|h| h.p99_ms.is_some()),
        "{:?}",
        report.hops
    );
}

#[tokio::test(start_paused = true)]
async fn drained_short_when_the_pipeline_goes_quiet_before_the_count() {
    let clock = Clock::starting_at(EPOCH);
    let pipeline = Pipeline::steady(clock, 95, 1_000, 100);
    let outcome = wait::wait(&metrics(&pipeline), &config(Some(100)), clock)
        .await
        .unwrap();
    assert_eq!(
        (outcome.state, outcome.processed),
        (WaitState::DrainedShort, 95)
    );
    // The last loop lands at 10.4 s: all 95 are first seen at the 15 s poll, quiet at 30 s.
    assert_eq!(outcome.waited, Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn timed_out_when_data_keeps_trickling() {
    let clock = Clock::starting_at(EPOCH);
    // One loop every 10 s: never quiet for 15 s, never 1,000.
    let pipeline = Pipeline::steady(clock, 1_000, 1_000, 10_000);
    let mut cfg = config(Some(1_000));
    cfg.timeout = Duration::from_secs(60);
    let outcome = wait::wait(&metrics(&pipeline), &cfg, clock).await.unwrap();
    assert_eq!((outcome.state, outcome.processed), (WaitState::TimedOut, 6));
    assert_eq!(outcome.waited, Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn without_an_expected_count_quiet_means_complete() {
    let clock = Clock::starting_at(EPOCH);
    let pipeline = Pipeline::steady(clock, 40, 1_000, 100);
    let outcome = wait::wait(&metrics(&pipeline), &config(None), clock)
        .await
        .unwrap();
    assert_eq!(
        (outcome.state, outcome.processed),
        (WaitState::Complete, 40)
    );
}

#[tokio::test(start_paused = true)]
async fn a_window_in_the_past_is_read_once() {
    let clock = Clock::starting_at(EPOCH + 3_600_000);
    let pipeline = Pipeline::steady(clock, 40, 1_000, 100);
    let mut cfg = config(None);
    cfg.until_ms = Some(EPOCH + 60_000);
    let outcome = wait::wait(&metrics(&pipeline), &cfg, clock).await.unwrap();
    assert_eq!(
        (outcome.state, outcome.processed, outcome.waited),
        (WaitState::Complete, 40, Duration::ZERO)
    );
    assert_eq!(
        outcome.window,
        Window {
            start_ms: EPOCH - 5_000,
            end_ms: EPOCH + 60_000
        }
    );
}

fn wait_opts(args: &[&str]) -> collector::opts::WaitOpts {
    let mut argv = vec!["collector", "wait", "--no-progress"];
    argv.extend_from_slice(args);
    match Opts::try_parse_from(argv).unwrap().command {
        Command::Wait(w) => w,
        _ => unreachable!("parsed as wait"),
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_published_says_what_to_check_and_exits_3() {
    let clock = Clock::starting_at(EPOCH);
    let pipeline = Pipeline::new(clock, Vec::new());
    let dir = std::env::temp_dir().join(format!("collector-nothing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("timestamps.json");
    let opts = wait_opts(&[
        "--run-id",
        RUN,
        "--since",
        &EPOCH.to_string(),
        "--expected",
        "10",
        "--timeout",
        "30s",
        "--namespace",
        "NS",
        "--out",
        out.to_str().unwrap(),
    ]);
    let collector::Waited {
        outcome, message, ..
    } = collector::run_wait(&opts.into_config().unwrap(), &pipeline, EPOCH)
        .await
        .unwrap();
    assert_eq!((outcome.state, outcome.processed), (WaitState::TimedOut, 0));
    assert_eq!(
        collector::wait_exit(&outcome),
        contract::cli::Exit::NotComplete
    );
    assert!(message.starts_with(r#"nothing was published for run id "sim" in namespace "NS": check that the stack is deployed"#), "{message}");
    let export = LatencyExport::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!((export.run.processed, export.histogram.count()), (0, 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_run_file_gives_the_run_id_window_and_expected_count() {
    let clock = Clock::starting_at(EPOCH);
    let pipeline = Pipeline::steady(clock, 30, 2_000, 100);
    let dir = std::env::temp_dir().join(format!("collector-runfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = dir.join("run.json");
    let out = dir.join("timestamps.json");
    let file = contract::runfile::RunFile {
        version: 1,
        run: contract::runfile::RunInfo {
            run_id: RUN.into(),
            endpoint: "http://127.0.0.1:4599/prod/".into(),
            executor: "constant-vus".into(),
            start_ms: EPOCH,
            end_ms: EPOCH + 5_000,
            vus_max: 5,
            requests_sent: 32,
            requests_accepted: 30,
            failures: [("status_500".to_owned(), 2)].into(),
            dropped_iterations: 0,
            interrupted_iterations: 0,
            scheduled_iterations: None,
            requests_attempted: None,
            segments: None,
            checks: None,
            max_duration_ms: None,
            aborted: None,
            http_failed: None,
            data_bytes: None,
            vus_seen: None,
        },
        root_group: None,
        metrics: Default::default(),
        trends: None,
        histogram: Some(Default::default()),
        timeline: Vec::new(),
        accepted_ids: None,
        unaccepted_ids: None,
    };
    std::fs::write(&run, file.to_json()).unwrap();
    // A stack whose API is elsewhere: the run file's id could be another run's there.
    let outputs = dir.join("outputs.json");
    std::fs::write(
        &outputs,
        r#"{"S":{"ApiGatewayMethodEndpoint":"http://127.0.0.1:4600/prod/"}}"#,
    )
    .unwrap();
    let (run_arg, outputs_arg) = (run.to_str().unwrap(), outputs.to_str().unwrap());
    let err = wait_opts(&["--run", run_arg, "--outputs", outputs_arg])
        .into_config()
        .unwrap_err();
    assert!(
        err.starts_with(
            "the run's requests went to http://127.0.0.1:4599/prod/, not to this stack's API \
             http://127.0.0.1:4600/prod/"
        ),
        "{err}"
    );
    let any = ["--run", run_arg, "--outputs", outputs_arg, "--any-endpoint"];
    assert!(wait_opts(&any).into_config().is_ok());
    let opts = wait_opts(&[
        "--run",
        run.to_str().unwrap(),
        "--namespace",
        "NS",
        "--out",
        out.to_str().unwrap(),
        "--threshold",
        "latency:p(99)<150",
        "--threshold",
        "lost:count==0",
        "--threshold",
        "StoreToDownstreamLatency:max<60",
        "--threshold",
        "loops_per_s:value>1000",
    ]);
    let waited = collector::run_wait(&opts.into_config().unwrap(), &pipeline, EPOCH)
        .await
        .unwrap();
    let collector::Waited {
        outcome, message, ..
    } = &waited;
    assert_eq!(
        (outcome.state, outcome.processed),
        (WaitState::Complete, 30)
    );
    // Latencies 100 to 129 ms, StoreToDownstream half of that, 30 loops in 3 s.
    let judged: Vec<(bool, Option<f64>)> = waited
        .thresholds
        .iter()
        .map(|j| (j.passed, j.value.map(f64::round)))
        .collect();
    assert_eq!(
        judged,
        [
            (true, Some(129.0)),
            (true, Some(0.0)),
            (false, Some(65.0)),
            (false, Some(10.0))
        ]
    );
    assert_eq!(
        waited.exit(),
        contract::cli::Exit::ThresholdCrossed,
        "complete, but thresholds crossed"
    );
    let printed = contract::threshold::render(&waited.thresholds);
    assert!(
        printed.contains("✓ latency:p(99)<150 (was 129"),
        "{printed}"
    );
    assert!(
        printed.contains("✗ StoreToDownstreamLatency:max<60 (was 64.5)"),
        "{printed}"
    );
    assert!(
        message.starts_with("complete: 30 of 30 accepted requests processed"),
        "{message}"
    );
    let export = LatencyExport::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        (export.run.vus, export.run.load_start_ms),
        (Some(5), Some(EPOCH))
    );
    assert_eq!(
        export.run.window_start_ms,
        EPOCH - contract::runfile::CLOCK_SLACK_MS
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without any region configured (no AWS_REGION, no profile), against an emulator: the fallback
/// region, no instance-metadata lookup, and a clear error when nothing answers.
#[test]
fn no_region_anywhere_falls_back_and_says_what_failed() {
    let home = std::env::temp_dir().join(format!("collector-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .args([
            "wait",
            "--run-id",
            "r",
            "--since",
            "0",
            // Longer than the SDK's own retries of a refused connection (3 attempts, up to 3 s
            // of jittered backoff), so at least one failure reaches the wait loop to be named.
            "--timeout",
            "10s",
            "--no-progress",
        ])
        .args(["--endpoint-url", &endpoint])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("HOME", &home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Retried until the --timeout, then one readable line naming the cause, no debug dump.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].ends_with("; retrying until the --timeout"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("collector: polling CloudWatch: ")
            && lines[1].ends_with("Connection refused (os error 111)"),
        "{stderr}"
    );
    assert!(!stderr.contains("DispatchFailure("), "{stderr}");
    let _ = std::fs::remove_dir_all(&home);
}

#[tokio::test(start_paused = true)]
async fn more_measured_than_accepted_is_over_counted_never_complete() {
    let clock = Clock::starting_at(EPOCH);
    // 101 measured for 100 accepted: one request measured twice, which could hide a loss.
    let pipeline = Pipeline::steady(clock, 101, 1_000, 100);
    let outcome = wait::wait(&metrics(&pipeline), &config(Some(100)), clock)
        .await
        .unwrap();
    assert_eq!(
        (outcome.state, outcome.processed),
        (WaitState::OverCounted, 101)
    );
    assert_eq!(
        collector::wait_exit(&outcome),
        contract::cli::Exit::NotComplete
    );
}

/// An API that fails (`Err`) or never answers (`None`) for its first `bad` calls, then answers
/// as `inner`.
struct Flaky<'a> {
    inner: &'a Pipeline,
    bad: std::sync::Mutex<Vec<Option<ApiError>>>,
}

impl MetricsApi for Flaky<'_> {
    async fn get_metric_data(&self, request: &DataRequest) -> Result<DataPage, ApiError> {
        let next = {
            let mut bad = self.bad.lock().unwrap();
            (!bad.is_empty()).then(|| bad.remove(0))
        };
        match next {
            Some(Some(error)) => Err(error),
            Some(None) => std::future::pending().await,
            None => self.inner.get_metric_data(request).await,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn failing_and_hanging_polls_are_retried_until_the_timeout() {
    let clock = Clock::starting_at(EPOCH);
    let pipeline = Pipeline::steady(clock, 10, 1_000, 100);
    let flaky = Flaky {
        inner: &pipeline,
        bad: std::sync::Mutex::new(vec![
            Some(ApiError::Failed("HTTP 503".into())),
            Some(ApiError::Failed("HTTP 500".into())),
            Some(ApiError::Failed("HTTP 503".into())),
            Some(ApiError::Failed("HTTP 503".into())),
        ]),
    };
    let metrics = RunMetrics {
        api: &flaky,
        namespace: "NS".into(),
        run_id: RUN.into(),
    };
    let outcome = wait::wait(&metrics, &config(Some(10)), clock)
        .await
        .unwrap();
    assert_eq!(
        (outcome.state, outcome.processed),
        (WaitState::Complete, 10),
        "four failed polls, then the pipeline's count"
    );

    // An endpoint that accepts and never answers: the --timeout still ends the wait.
    let hanging = Flaky {
        inner: &pipeline,
        bad: std::sync::Mutex::new(vec![None; 1000]),
    };
    let metrics = RunMetrics {
        api: &hanging,
        namespace: "NS".into(),
        run_id: RUN.into(),
    };
    let started = tokio::time::Instant::now();
    let error = wait::wait(&metrics, &config(Some(10)), clock)
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(120), "the --timeout");
    assert!(
        error
            .to_string()
            .contains("no answer within the --timeout of 2m"),
        "{error}"
    );
}

/// A metrics API that takes `delay` to answer each call, as a real one does.
struct Slow<'a> {
    inner: &'a Pipeline,
    delay: Duration,
}

impl MetricsApi for Slow<'_> {
    async fn get_metric_data(&self, request: &DataRequest) -> Result<DataPage, ApiError> {
        tokio::time::sleep(self.delay).await;
        self.inner.get_metric_data(request).await
    }
}

#[tokio::test(start_paused = true)]
async fn the_timeout_between_two_answered_polls_ends_as_timed_out_not_as_an_error() {
    // Nothing is ever published; each call takes 200 ms. The wait must not sleep a whole poll
    // past its timeout and then call with no time left: it ends timed out, at the timeout.
    let clock = Clock::starting_at(EPOCH);
    let pipeline = Pipeline::new(clock, Vec::new());
    let slow = Slow {
        inner: &pipeline,
        delay: Duration::from_millis(200),
    };
    let metrics = RunMetrics {
        api: &slow,
        namespace: "NS".into(),
        run_id: RUN.into(),
    };
    let mut cfg = config(Some(10));
    cfg.timeout = Duration::from_secs(12);
    let started = tokio::time::Instant::now();
    let outcome = wait::wait(&metrics, &cfg, clock).await.unwrap();
    assert_eq!((outcome.state, outcome.processed), (WaitState::TimedOut, 0));
    assert_eq!(started.elapsed(), Duration::from_secs(12));
    assert_eq!(
        collector::wait_exit(&outcome),
        contract::cli::Exit::NotComplete
    );
}

#[test]
fn decide_is_the_whole_policy() {
    use wait::{decide, Seen};
    let cfg = config(Some(10));
    let seen = |processed, since_change: Option<u64>, elapsed| Seen {
        processed,
        since_change: since_change.map(Duration::from_secs),
        elapsed: Duration::from_secs(elapsed),
        settled: false,
    };
    assert_eq!(
        decide(&cfg, &seen(10, Some(0), 1)),
        Some(WaitState::Complete)
    );
    assert_eq!(
        decide(&cfg, &seen(11, Some(0), 1)),
        Some(WaitState::OverCounted)
    );
    assert_eq!(
        decide(&cfg, &seen(9, Some(15), 30)),
        Some(WaitState::DrainedShort)
    );
    assert_eq!(decide(&cfg, &seen(9, Some(14), 30)), None);
    assert_eq!(decide(&cfg, &seen(0, None, 119)), None);
    assert_eq!(decide(&cfg, &seen(0, None, 120)), Some(WaitState::TimedOut));
    // Without an expected count, quiet is complete; a settled window is read once.
    let open = config(None);
    assert_eq!(
        decide(&open, &seen(4, Some(15), 30)),
        Some(WaitState::Complete)
    );
    let settled = Seen {
        settled: true,
        ..seen(0, None, 0)
    };
    assert_eq!(decide(&open, &settled), Some(WaitState::TimedOut));
}

#[test]
fn a_window_that_ends_before_it_starts_a_zero_poll_or_a_missing_folder_is_refused() {
    let opts = wait_opts(&["--run-id", RUN, "--since", "2000", "--until", "1000"]);
    let err = opts.into_config().unwrap_err();
    assert!(
        err.contains("--until (1000) must be after --since (2000)"),
        "{err}"
    );
    // Said before the wait, not after it with the export lost.
    let opts = wait_opts(&[
        "--run-id",
        RUN,
        "--since",
        "1",
        "--out",
        "/nonexistent/t.json",
    ]);
    assert_eq!(
        opts.into_config().unwrap_err(),
        "--out /nonexistent/t.json: /nonexistent is not a directory"
    );
    let opts = wait_opts(&["--run-id", RUN, "--since", "1", "--out", "/tmp"]);
    assert_eq!(
        opts.into_config().unwrap_err(),
        "--out /tmp is a directory: name a file"
    );
    let err = Opts::try_parse_from([
        "collector",
        "wait",
        "--run-id",
        RUN,
        "--since",
        "1",
        "--poll",
        "0s",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("must be more than 0"), "{err}");
}
