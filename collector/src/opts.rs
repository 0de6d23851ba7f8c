//! Command-line flags: `collector wait`, `collector stats` and `collector report`, with the AWS CLI's flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Wait until the pipeline has drained, then report per-request latency and throughput.
#[derive(Debug, Parser)]
#[command(name = "collector", version)]
pub struct Opts {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll CloudWatch until every accepted request has come through (or the pipeline has gone
    /// quiet), then export the run's latencies. Exit 0: complete; 3: drained short or timed out.
    Wait(WaitOpts),
    /// Print the run, per-request latency, per-hop latency and the original's describe() table.
    Stats(StatsOpts),
    /// Write the run as one self-contained HTML page: charts of throughput, latency over time,
    /// the latency distribution and the hops, and the tables `stats` prints.
    Report(ReportOpts),
}

/// AWS flags, as the AWS CLI has them (and the SDK's environment).
#[derive(Debug, Clone, Default, Args)]
pub struct AwsOpts {
    /// AWS region [default: the SDK's chain, else us-east-1].
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Endpoint URL (LocalStack, the sandbox's edge).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

/// `collector wait`.
#[derive(Debug, Args)]
pub struct WaitOpts {
    /// Where to write the latency export.
    #[arg(long, value_name = "FILE", default_value = "timestamps.json")]
    pub out: PathBuf,
    /// The run file from `loadgen --summary-export`: run id, window and expected count.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["run_id", "since"])]
    pub run: Option<PathBuf>,
    /// The run id to wait for (with --since).
    #[arg(
        long,
        value_name = "ID",
        requires = "since",
        required_unless_present = "run"
    )]
    pub run_id: Option<String>,
    /// Window start: epoch ms or RFC 3339 (2026-11-26T08:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<i64>,
    /// Window end [default: now, moving].
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<i64>,
    /// Requests to expect, without a run file.
    #[arg(long, value_name = "N", conflicts_with = "run")]
    pub expected: Option<u64>,
    /// Metric namespace.
    #[arg(long, default_value = contract::metrics::NAMESPACE)]
    pub namespace: String,
    /// Time between polls.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub poll: Duration,
    /// No new datapoint for this long means drained.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub quiet: Duration,
    /// Give up after this long.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// AWS flags.
    #[command(flatten)]
    pub aws: AwsOpts,
}

/// What `collector stats` and `collector report` read.
#[derive(Debug, Args)]
pub struct InputOpts {
    /// A latency export, or the original's bare array of per-second averages.
    #[arg(value_name = "FILE", default_value = "timestamps.json")]
    pub file: PathBuf,
    /// The run file: the accepted count and VUs (and, for the report, the load's request rate
    /// and window).
    #[arg(long, value_name = "FILE")]
    pub run: Option<PathBuf>,
    /// VUs, for throughput per VU (overrides the run file's).
    #[arg(long, value_name = "N")]
    pub vus: Option<u64>,
}

/// `collector stats`.
#[derive(Debug, Args)]
pub struct StatsOpts {
    /// What to read.
    #[command(flatten)]
    pub input: InputOpts,
    /// JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `collector report`.
#[derive(Debug, Args)]
pub struct ReportOpts {
    /// What to read.
    #[command(flatten)]
    pub input: InputOpts,
    /// Where to write the page.
    #[arg(long, value_name = "FILE", default_value = "report.html")]
    pub out: PathBuf,
}

/// Epoch ms, or an RFC 3339 time.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is neither epoch ms nor an RFC 3339 time: {e}"))
        .and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .map_err(|e| e.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_epoch_ms_or_rfc3339() {
        assert_eq!(parse_time("1795680000000"), Ok(1_795_680_000_000));
        assert_eq!(parse_time("2026-11-26T08:00:00Z"), Ok(1_795_680_000_000));
        assert!(parse_time("yesterday")
            .unwrap_err()
            .contains("neither epoch ms"));
    }
}
