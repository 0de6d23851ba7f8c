//! `loadgen --lambda N`: the run from N invocations of the loadgen worker function
//! (`loadgen-worker`, deployed by the CDK app with `LOADGEN_WORKER=true`). Each invocation gets
//! the run's configuration as data ([`WorkerEvent`]) with its own segment and the shared start
//! (three seconds ahead unless `--start-at` says), and answers with its run file; the files are merged ([`crate::merge`]) into
//! this run's. A worker that fails or times out is named with its share of the load, which the
//! totals then lack: the summary says the run is partial, and the exit code is 1.
//!
//! Invocations are not retried (a retried worker that had run would count twice). Lambda's
//! limits: an invocation runs at most 15 minutes (a longer run is refused by the worker before
//! it starts), its answer is at most 6 MB (run files carry histograms and counts, a few KB to a
//! few hundred KB), and N concurrent invocations need N of the account's concurrency.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_lambda::primitives::Blob;
use contract::runfile::RunFile;

use crate::config::{Config, Executor, Reports};
use crate::merge::{self, Part, Tolerate};
use crate::segment::Segment;
use crate::{epoch_ms, Summary};

/// How far ahead of now the workers start, unless `--start-at` says when.
pub const START_DELAY: Duration = Duration::from_secs(3);

/// What the coordinator sends each worker: its configuration, as data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkerEvent {
    /// This format's version ([`WORKER_EVENT_VERSION`]): a worker refuses another.
    pub version: u32,
    /// The worker's run.
    pub config: Config,
}

/// Version of [`WorkerEvent`].
pub const WORKER_EVENT_VERSION: u32 = 2;

/// Worker `segment`'s configuration: `config` as it is (URL and credentials, the load, the run
/// id, the checks' limits, timeouts: everything, with nothing to spell out again), with its own
/// segment and the shared start; without what only the coordinator does (fan out, write the
/// run file, judge the thresholds, draw progress).
pub fn worker_config(config: &Config, segment: Segment, start_at_ms: i64) -> Config {
    Config {
        segment,
        start_at_ms: Some(start_at_ms),
        summary_export: None,
        lambda: None,
        thresholds: Vec::new(),
        progress: false,
        json: false,
        reports: Reports {
            summary_json: None,
            hdr_log: None,
            remote_write: None,
            ..config.reports.clone()
        },
        ..config.clone()
    }
}

/// What a worker's share is, in the executor's terms (for a worker that failed).
fn share(config: &Config, segment: Segment) -> String {
    match &config.executor {
        Executor::SharedIterations { iterations, .. } => format!(
            "{} of the {iterations} iterations",
            segment.share(*iterations)
        ),
        executor => match executor.arrival_schedule() {
            Some(schedule) => format!(
                "{} of the {} scheduled iterations",
                segment.share(schedule.total()),
                schedule.total()
            ),
            None => format!(
                "{} of the {} VUs",
                segment.share(executor.max_vus()),
                executor.max_vus()
            ),
        },
    }
}

/// Invokes the workers, merges what they answer, judges the thresholds and writes the run file
/// if asked. Returns the summary and one line per worker that failed.
pub async fn run(config: &Config) -> anyhow::Result<(Summary, Vec<String>)> {
    let fan = config
        .lambda
        .as_ref()
        .context("no --lambda fan-out configured")?;
    let client = aws_sdk_lambda::Client::new(&sdk_config().await);
    let start_at = config
        .start_at_ms
        .unwrap_or_else(|| epoch_ms() + START_DELAY.as_millis() as i64);
    let mut invocations = Vec::new();
    for i in 1..=fan.workers {
        let segment = Segment::new(i, fan.workers).map_err(anyhow::Error::msg)?;
        let event = WorkerEvent {
            version: WORKER_EVENT_VERSION,
            config: worker_config(config, segment, start_at),
        };
        let call = client
            .invoke()
            .function_name(&fan.function)
            .payload(Blob::new(serde_json::to_vec(&event)?));
        invocations.push((segment, tokio::spawn(call.send())));
    }
    let mut parts = Vec::new();
    let mut failures = Vec::new();
    for (segment, invocation) in invocations {
        let answered = match invocation.await {
            Ok(Ok(output)) => match output.function_error() {
                None => {
                    let payload = output.payload().map(|p| p.as_ref()).unwrap_or_default();
                    RunFile::from_json(&String::from_utf8_lossy(payload))
                        .map_err(|e| format!("its answer is not a run file: {e}"))
                }
                Some(kind) => Err(function_error(
                    kind,
                    output.payload().map(|p| p.as_ref()).unwrap_or_default(),
                )),
            },
            Ok(Err(e)) => Err(contract::cli::one_line(&e)),
            Err(e) => Err(e.to_string()),
        };
        match answered {
            Ok(file) => parts.push(Part {
                name: format!("worker {segment}"),
                file,
            }),
            Err(reason) => failures.push(format!(
                "worker {segment} failed ({reason}); its share, {}, is not in the totals",
                share(config, segment)
            )),
        }
    }
    anyhow::ensure!(
        !parts.is_empty(),
        "every worker failed:\n{}",
        failures.join("\n")
    );
    let tolerate = Tolerate {
        partial: true,
        anything: false,
    };
    let mut summary = merge::merge(&parts, tolerate).map_err(anyhow::Error::msg)?;
    summary.trend_stats = config.reports.trend_stats.clone();
    summary.judge(&config.thresholds);
    crate::write_reports(&mut summary, config);
    Ok((summary, failures))
}

/// The SDK's configuration from the environment and profile (`AWS_ENDPOINT_URL` included),
/// rustls with ring, a call bounded by Lambda's 15 minutes, and no retries (a worker that ran
/// must not run twice).
async fn sdk_config() -> aws_config::SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(16 * 60))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// What a function error says: Lambda's `errorMessage` when the answer is its error document
/// (the worker's own reason, such as a late start), else the error kind and the answer.
fn function_error(kind: &str, payload: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorDocument {
        #[serde(rename = "errorMessage")]
        message: String,
    }
    match serde_json::from_slice::<ErrorDocument>(payload) {
        Ok(document) if !document.message.is_empty() => document.message,
        _ => format!("{kind}: {}", String::from_utf8_lossy(payload)),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::opts::Opts;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["loadgen", "http://user:secret@127.0.0.1:9/prod/"];
        argv.extend_from_slice(args);
        Opts::try_parse_from(argv)
            .unwrap()
            .into_config(|_| None, 1_000)
            .unwrap()
    }

    #[test]
    fn a_worker_gets_the_whole_configuration_as_data() {
        for args in [
            &["--vus", "8", "--duration", "90s"][..],
            &["--iterations", "1000", "--vus", "9", "--duration", "2m"],
            &["--stage", "30s:20", "--stage", "1m:20", "--stage", "10s:0"],
            &["--vus", "3", "--stage", "1s:6"],
            &["--rate", "150.5", "--duration", "1m", "--max-vus", "40"],
            &[
                "--rate",
                "0",
                "--stage",
                "30s:200",
                "--stage",
                "10s:0",
                "--max-vus",
                "50",
            ],
            &[
                "--vus",
                "4",
                "--max-duration",
                "750ms",
                "--timeout",
                "5s",
                "-k",
                "--threads",
                "3",
            ],
        ] {
            let settings = [
                args,
                &[
                    "--run-id",
                    "fan",
                    "--message",
                    "hi there",
                    "--graceful-stop",
                    "7s",
                ],
            ];
            let whole = config(&settings.concat());
            let segment = Segment::new(2, 4).unwrap();
            let event = WorkerEvent {
                version: WORKER_EVENT_VERSION,
                config: worker_config(&whole, segment, 5_000),
            };
            let sent: WorkerEvent =
                serde_json::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
            // Every setting arrives as it was, whatever flags loadgen grows: the configuration
            // is compared whole, with only the worker's own parts changed.
            let expected = Config {
                segment,
                start_at_ms: Some(5_000),
                progress: false,
                ..whole.clone()
            };
            assert_eq!(sent.config.reports.trend_stats, whole.reports.trend_stats);
            assert_eq!(sent.config, expected, "{args:?}");
            // Credentials included: the workers send what this process would.
            assert!(sent.config.endpoint.authorization.is_some());
        }
        // What only the coordinator does stays with it.
        let whole = config(&[
            "--vus",
            "2",
            "--summary-export",
            "/tmp/run.json",
            "--threshold",
            "http_req_duration:p(95)<500",
        ]);
        let worker = worker_config(&whole, Segment::new(1, 2).unwrap(), 1);
        assert_eq!(worker.summary_export, None);
        assert!(worker.thresholds.is_empty() && worker.lambda.is_none());
        assert!(worker.reports.summary_json.is_none() && worker.reports.remote_write.is_none());
    }

    #[test]
    fn a_function_error_says_the_workers_own_reason() {
        let document = br#"{"errorMessage":"invoked 5958 ms after the shared --start-at","errorType":"&alloc::boxed::Box<dyn core::error::Error>"}"#;
        assert_eq!(
            function_error("Unhandled", document),
            "invoked 5958 ms after the shared --start-at"
        );
        assert_eq!(
            function_error("Unhandled", b"Task timed out"),
            "Unhandled: Task timed out"
        );
    }

    #[test]
    fn a_failed_workers_share_is_said_in_the_executors_terms() {
        let c = config(&["--iterations", "10", "--vus", "4"]);
        assert_eq!(
            share(&c, Segment::new(1, 3).unwrap()),
            "4 of the 10 iterations"
        );
        let c = config(&["--rate", "10", "--duration", "3s", "--max-vus", "4"]);
        assert_eq!(
            share(&c, Segment::new(3, 4).unwrap()),
            "7 of the 30 scheduled iterations"
        );
        let c = config(&["--vus", "5"]);
        assert_eq!(share(&c, Segment::new(2, 2).unwrap()), "2 of the 5 VUs");
    }
}
