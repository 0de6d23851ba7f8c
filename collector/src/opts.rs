//! Command-line flags: `collector wait`, `collector stats` and `collector report`, with the AWS CLI's flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use contract::threshold::Threshold;

pub use contract::cli::{parse_time, positive_duration};

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
    /// Print the run, per-request latency, per-hop latency and the AWS sample's describe() table of per-second averages.
    Stats(StatsOpts),
    /// Write the run as one self-contained HTML page: charts of throughput, latency over time,
    /// the latency distribution and the hops, and the tables `stats` prints.
    Report(ReportOpts),
    /// Check the run's items in DynamoDB against the requests loadgen saw accepted, and name
    /// the ones missing. Exit 0: every accepted request stored; 3: some lost.
    Audit(AuditOpts),
    /// Compare two runs (or sets of repeated runs), each number against the noise: faster,
    /// slower or no significant change. Exit 99 when a --fail-if-slower gate is crossed.
    Compare(CompareOpts),
}

/// `collector compare`.
#[derive(Debug, Args)]
pub struct CompareOpts {
    /// The base: a latency export, or several (repeated runs) separated by commas.
    #[arg(value_name = "BASE")]
    pub base: String,
    /// The candidate, the same way.
    #[arg(value_name = "CANDIDATE")]
    pub candidate: String,
    /// JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the comparison as an HTML page.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Fail (exit 99) when METRIC got slower by more than PERCENT and beyond the noise, e.g.
    /// 'latency:p(99)=10%' or 'loops_per_s:value=5%'; repeatable.
    #[arg(long, value_name = "METRIC=PERCENT", value_parser = crate::compare::gate::parse)]
    pub fail_if_slower: Vec<crate::compare::gate::Gate>,
    /// The runs were made as pairs (`make ab`): the i-th base run beside the i-th candidate
    /// run. Each number is judged on the pairs' differences, with the smallest change the pairs
    /// could detect; a pair with a run that lost data is dropped and named.
    #[arg(long)]
    pub paired: bool,
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

/// The stack's outputs file, for what the flags leave out.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputsOpts {
    /// The stack's outputs (`cdk deploy --outputs-file`, or the sandbox's
    /// `.sandbox/outputs.json`): the AWS endpoint (`AwsEndpointUrl`), table and namespace, when
    /// not given as flags. The stack is the file's only one, or `STACK_NAME`.
    #[arg(long, value_name = "FILE")]
    pub outputs: Option<PathBuf>,
    /// The stack to read in --outputs.
    #[arg(long, env = "STACK_NAME", value_name = "NAME", hide_env_values = true)]
    pub stack_name: Option<String>,
}

impl OutputsOpts {
    /// The stack's outputs, when --outputs is given.
    pub fn read(&self) -> Result<Option<contract::outputs::StackOutputs>, String> {
        let Some(path) = &self.outputs else {
            return Ok(None);
        };
        let text = contract::file::read_text(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        contract::outputs::StackOutputs::parse(&text, self.stack_name.as_deref())
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }
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
    /// Metric namespace [default: --outputs' MetricNamespace, else the contract's].
    #[arg(long)]
    pub namespace: Option<String>,
    /// Time between polls.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = positive_duration)]
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
    /// A pass/fail criterion on the pipeline in k6's syntax (as `collector stats --threshold`),
    /// judged on the export once the wait is complete; repeatable. A crossed threshold exits
    /// with 99.
    #[arg(long = "threshold", value_name = "METRIC:EXPR", value_parser = crate::thresholds::parse)]
    pub thresholds: Vec<Threshold>,
    /// Push the pipeline's series live while waiting, as k6's `-o experimental-prometheus-rw`
    /// does the load's (configured by K6_PROMETHEUS_RW_SERVER_URL and
    /// K6_PROMETHEUS_RW_PUSH_INTERVAL).
    #[arg(short = 'o', long = "output", value_name = "NAME")]
    pub output: Option<String>,
    /// A Lambda function whose own metrics (AWS/Lambda, LambdaInsights) the export carries for
    /// the run's window; repeatable. Default: the three the stack's outputs name.
    #[arg(long = "function", value_name = "NAME")]
    pub functions: Vec<String>,
    /// Wait even when the run file's URL is not the stack's API (--outputs'
    /// ApiGatewayMethodEndpoint), e.g. a custom domain in front of it. Without it such a run is
    /// refused: another run reusing its id could pass for it.
    #[arg(long)]
    pub any_endpoint: bool,
    /// AWS flags.
    #[command(flatten)]
    pub aws: AwsOpts,
    /// The stack's outputs.
    #[command(flatten)]
    pub stack: OutputsOpts,
}

/// What `collector stats` and `collector report` read.
#[derive(Debug, Args)]
pub struct InputOpts {
    /// A latency export, or the AWS sample's bare array of per-second averages.
    #[arg(value_name = "FILE", default_value = "timestamps.json")]
    pub file: PathBuf,
    /// The run file: the accepted count and VUs (and, for the report, the load's request rate
    /// and window).
    #[arg(long, value_name = "FILE")]
    pub run: Option<PathBuf>,
    /// VUs, for throughput per VU (overrides the run file's).
    #[arg(long, value_name = "N")]
    pub vus: Option<u64>,
    /// Prices for the run's cost on AWS [default: us-east-1's list prices, shipped with the
    /// collector]: a file of the same shape for another region or a discount.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
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
    /// A pass/fail criterion on the pipeline in k6's syntax, e.g. 'latency:p(99)<500',
    /// 'KinesisToStoreLatency:p(95)<200', 'lost:count==0', 'loops_per_s:value>100';
    /// repeatable. A crossed threshold exits with 99.
    #[arg(long = "threshold", value_name = "METRIC:EXPR", value_parser = crate::thresholds::parse)]
    pub thresholds: Vec<Threshold>,
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

/// `collector audit`.
#[derive(Debug, Args)]
pub struct AuditOpts {
    /// The run file from `loadgen --summary-export` (version 2: it lists the accepted ids).
    #[arg(long, value_name = "FILE")]
    pub run: PathBuf,
    /// The pipeline's table [default: --outputs' DynamoDBTableName].
    #[arg(long, value_name = "NAME", required_unless_present = "outputs")]
    pub table: Option<String>,
    /// Where to write the audit as JSON (every lost id).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Audit even when the run file's URL is not the stack's API (--outputs'
    /// ApiGatewayMethodEndpoint), e.g. a custom domain in front of it. Without it such a run is
    /// refused: its requests never reached this stack's table.
    #[arg(long)]
    pub any_endpoint: bool,
    /// AWS flags.
    #[command(flatten)]
    pub aws: AwsOpts,
    /// The stack's outputs.
    #[command(flatten)]
    pub stack: OutputsOpts,
}

/// Fills what the flags left out from the stack's outputs: the endpoint URL (`AwsEndpointUrl`)
/// and, through `fill`, the command's own names.
pub fn apply_outputs(
    aws: &mut AwsOpts,
    stack: &OutputsOpts,
    fill: impl FnOnce(&contract::outputs::StackOutputs) -> Result<(), String>,
) -> Result<(), String> {
    let Some(outputs) = stack.read()? else {
        return Ok(());
    };
    if aws.endpoint_url.is_none() {
        aws.endpoint_url = outputs
            .get(contract::outputs::key::AWS_ENDPOINT_URL)
            .ok()
            .map(str::to_owned);
    }
    fill(&outputs)
}
