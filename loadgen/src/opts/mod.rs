//! Command-line flags, as k6 users know them; `validate` turns them into a
//! [`Config`](crate::config::Config).

mod validate;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::segment::Segment;
use crate::summary_options::SummaryMode;

/// POST the pipeline's payload to an API as fast as the schedule says, then print a k6-style
/// summary.
///
/// The URL comes from the argument, --url, --outputs (a `cdk deploy --outputs-file` JSON),
/// API_ENDPOINT or APIGW_ENDPOINT, in that order.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Another command than a run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// A run's flags.
    #[command(flatten)]
    pub run: Opts,
}

/// loadgen's commands besides a run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add up the run files of a distributed run's workers (`--segment I/N`) into the whole
    /// run's, and print its summary.
    Merge(MergeOpts),
}

/// A run's flags (`loadgen [OPTIONS] [URL]`).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Opts {
    /// URL to POST to.
    #[arg(value_name = "URL")]
    pub target: Option<String>,

    /// URL to POST to (same as the argument).
    #[arg(long, value_name = "URL", conflicts_with = "target")]
    pub url: Option<String>,

    /// Read the URL from a `cdk deploy --outputs-file` JSON: the output whose key ends in
    /// ApiGatewayMethodEndpoint.
    #[arg(long, value_name = "FILE")]
    pub outputs: Option<PathBuf>,

    /// Virtual users: concurrent request loops [default: 10; with --stage, the starting count: 0].
    #[arg(short = 'u', long, value_name = "N")]
    pub vus: Option<u64>,

    /// How long to run (60s, 2m, 1h30m) [default: 60s; with --iterations, the time limit: 10m].
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Total iterations, shared by all VUs (k6's shared-iterations).
    #[arg(short = 'i', long, value_name = "N", conflicts_with_all = ["stages", "rate"])]
    pub iterations: Option<u64>,

    /// Ramp to TARGET VUs over DURATION, linearly; repeat for more stages (k6's ramping-vus).
    /// With --rate, TARGET is an arrival rate, iterations per second (k6's
    /// ramping-arrival-rate, starting from --rate).
    #[arg(short = 's', long = "stage", value_name = "DURATION:TARGET", value_parser = parse_stage,
          conflicts_with = "duration")]
    pub stages: Vec<StageSpec>,

    /// Start R iterations per second whatever the latency (open model, k6's
    /// constant-arrival-rate); latency is measured from each iteration's scheduled start. With
    /// --stage, the rate at the start of the ramps (0 allowed).
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// With --rate: most VUs to keep iterations starting on time [default: --vus, or 100].
    #[arg(long, value_name = "N", requires = "rate")]
    pub max_vus: Option<u64>,

    /// The run id every request carries [default: generated, `run-<epoch ms>`].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// The message every request carries.
    #[arg(long, default_value = "Hello from loadgen")]
    pub message: String,

    /// Check: each response must arrive within this long.
    #[arg(long, value_name = "DURATION", default_value = "4s", value_parser = humantime::parse_duration)]
    pub max_duration: Duration,

    /// A pass/fail criterion in k6's syntax, e.g. 'http_req_duration:p(95)<500' or
    /// 'http_req_failed:rate<0.01'; repeatable. A crossed threshold exits with 99.
    #[arg(long = "threshold", value_name = "METRIC:EXPR")]
    pub thresholds: Vec<String>,

    /// Write the run file (k6 metrics, run id, window, counts, histogram) to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_export: Option<PathBuf>,

    /// Give up on a request after this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// After the run's duration, how long requests in flight may take before they are
    /// abandoned (k6's gracefulStop); they are counted as interrupted.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub graceful_stop: Duration,

    /// Accept any TLS certificate (for LocalStack's self-signed one).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Worker threads; keep it low to leave the cores to the system under test.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,

    /// No progress line.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Print the run file's JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,

    /// The end-of-test summary's form, as k6 1.x has it: compact (thresholds, checks, metrics
    /// by group), full (every timing trend too) or legacy (k6 0.x's one line per metric).
    #[arg(long, value_name = "MODE", value_enum, default_value = "compact")]
    pub summary_mode: SummaryMode,

    /// The statistics each trend shows in the summaries and exports, k6's summaryTrendStats
    /// (avg, min, med, max, count, p(N)), comma-separated.
    #[arg(
        long,
        value_name = "STATS",
        default_value = "avg,min,med,max,p(90),p(95)"
    )]
    pub summary_trend_stats: String,

    /// Write the data k6 hands a script's handleSummary() to FILE, as JSON (what k6's
    /// reporters, k6-html-reporter among them, read).
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Write request durations to FILE as an HdrHistogram interval log, one interval a second
    /// (wrk2's and HdrHistogram's tools read it).
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,

    /// Send the metrics live to an output, as k6 does: experimental-prometheus-rw (configured
    /// by K6_PROMETHEUS_RW_SERVER_URL, K6_PROMETHEUS_RW_PUSH_INTERVAL,
    /// K6_PROMETHEUS_RW_TREND_STATS).
    #[arg(short = 'o', long = "out", value_name = "OUTPUT")]
    pub outputs_live: Vec<String>,

    /// Run worker I's share of the load, one of N workers running the same command (k6's
    /// execution segments in equal shares: 2/4, or 1/4:2/4); `loadgen merge` adds their run
    /// files up into the whole run's.
    #[arg(long, visible_alias = "execution-segment", value_name = "I/N",
          value_parser = Segment::parse)]
    pub segment: Option<Segment>,

    /// Start at this moment (epoch ms, or RFC 3339 such as 2026-11-30T12:00:00Z), so that
    /// workers on several machines start together.
    #[arg(long, value_name = "TIME", value_parser = contract::cli::parse_time)]
    pub start_at: Option<i64>,

    /// Run the load from N copies of the loadgen worker function on AWS Lambda (the CDK app
    /// deploys it with LOADGEN_WORKER=true), each with a 1/N segment, started together; their
    /// run files are merged into this run's.
    #[arg(long, value_name = "N", conflicts_with = "segment")]
    pub lambda: Option<u64>,

    /// With --lambda: the worker function's name or ARN [default: the --outputs file's
    /// LoadgenWorkerFunctionName, else LOADGEN_WORKER_FUNCTION].
    #[arg(long, value_name = "NAME", requires = "lambda")]
    pub lambda_function: Option<String>,
}

/// `loadgen merge`: the run files of a distributed run's workers added up into the whole run's.
#[derive(Debug, clap::Args)]
pub struct MergeOpts {
    /// The workers' run files (`--summary-export` of `loadgen --segment I/N`).
    #[arg(value_name = "RUN.json", required = true)]
    pub files: Vec<PathBuf>,

    /// Write the merged run file to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_export: Option<PathBuf>,

    /// A pass/fail criterion on the merged run, as for a run; repeatable. A crossed threshold
    /// exits with 99.
    #[arg(long = "threshold", value_name = "METRIC:EXPR")]
    pub thresholds: Vec<String>,

    /// Merge when shares are missing (the summary says which).
    #[arg(long)]
    pub allow_partial: bool,

    /// Merge whatever is given: different run ids or configurations, files without a share.
    #[arg(long)]
    pub force: bool,

    /// Print the merged run file's JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,

    /// The end-of-test summary's form: compact, full or legacy.
    #[arg(long, value_name = "MODE", value_enum, default_value = "compact")]
    pub summary_mode: SummaryMode,
}

/// Most VUs one loadgen runs (each costs a task, a connection and its buffers).
pub const MAX_VUS: u64 = 100_000;
/// Highest arrival rate, iterations per second.
pub const MAX_RATE: f64 = 1_000_000.0;
/// Most shared iterations.
pub const MAX_ITERATIONS: u64 = 1_000_000_000_000;
/// Most runtime threads.
pub const MAX_THREADS: usize = 1024;
/// Longest duration, stage, timeout or check (7 days).
pub const MAX_RUN: Duration = Duration::from_secs(7 * 24 * 3600);

/// One `--stage DURATION:TARGET` as given: a VU count, or with `--rate` an arrival rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageSpec {
    /// How long the ramp takes.
    pub duration: Duration,
    /// VUs or iterations per second at its end.
    pub target: f64,
}

/// Epoch ms, or RFC 3339.
fn parse_stage(text: &str) -> Result<StageSpec, String> {
    let (duration, target) = text
        .split_once(':')
        .ok_or_else(|| format!("stage {text:?} must be DURATION:TARGET, e.g. 30s:20"))?;
    let duration = humantime::parse_duration(duration)
        .map_err(|e| format!("stage {text:?}: duration {duration:?}: {e}"))?;
    let target: f64 = target
        .parse()
        .ok()
        .filter(|t: &f64| t.is_finite() && *t >= 0.0)
        .ok_or_else(|| format!("stage {text:?}: target {target:?} is not a number from 0 up"))?;
    Ok(StageSpec { duration, target })
}
