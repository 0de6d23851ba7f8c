//! The flags, with the collector's AWS and outputs flags, checked into a [`SearchConfig`] and a
//! [`LiveConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use collector::opts::{apply_outputs, positive_duration, AwsOpts, OutputsOpts};
use contract::outputs::key;
use loadgen::endpoint::Endpoint;

use crate::live::LiveConfig;
use crate::search::SearchConfig;

/// Find the highest arrival rate the pipeline sustains (nothing failed or lost, p99 within the
/// SLO, no growing backlog), and the hop that gives first.
///
/// The API comes from --url, else --outputs (`ApiGatewayMethodEndpoint`), else API_ENDPOINT; the
/// AWS endpoint and namespace from the flags, else --outputs.
#[derive(Debug, Parser)]
#[command(name = "capacity", version)]
pub struct Opts {
    /// The API to POST to.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The end-to-end p99 a sustained step stays within.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = positive_duration)]
    pub slo: Duration,
    /// The first step's arrival rate, per second.
    #[arg(long, value_name = "R", default_value_t = 20.0)]
    pub start_rate: f64,
    /// The highest rate to try, per second.
    #[arg(long, value_name = "R", default_value_t = 10_000.0)]
    pub max_rate: f64,
    /// Each step's rate over the last one's while steps are sustained.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.5)]
    pub growth: f64,
    /// Stop refining when the limit is known within this many percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0)]
    pub precision: f64,
    /// Each step's load.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = positive_duration)]
    pub step: Duration,
    /// The whole search, drains included, ends within this.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = positive_duration)]
    pub time_limit: Duration,
    /// Most VUs a step may use to start its iterations on time.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub max_vus: u64,
    /// Time between a drain's polls.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = positive_duration)]
    pub poll: Duration,
    /// No new datapoint for this long ends a drain short.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    pub quiet: Duration,
    /// A drain gives up after this long.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = positive_duration)]
    pub drain_timeout: Duration,
    /// Metric namespace [default: --outputs' MetricNamespace, else the contract's].
    #[arg(long)]
    pub namespace: Option<String>,
    /// Where capacity.json, capacity.html and each step's run file and export go.
    #[arg(long, value_name = "DIR", default_value = "capacity-results")]
    pub out: PathBuf,
    /// The steps' run ids are `<PREFIX>-s<step>` [default: cap-<epoch ms>].
    #[arg(long, value_name = "PREFIX")]
    pub run_prefix: Option<String>,
    /// Accept any TLS certificate (LocalStack's).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// AWS flags.
    #[command(flatten)]
    pub aws: AwsOpts,
    /// The stack's outputs.
    #[command(flatten)]
    pub stack: OutputsOpts,
}

/// Everything a search needs, checked.
#[derive(Debug)]
pub struct Checked {
    /// The search.
    pub search: SearchConfig,
    /// The pipeline's side.
    pub live: LiveConfig,
    /// The steps' run id prefix.
    pub run_prefix: String,
    /// AWS flags, with what --outputs filled in.
    pub aws: AwsOpts,
}

impl Opts {
    /// Checks the flags, filling in from --outputs and `env`; the error is the one line to print.
    pub fn check(
        mut self,
        env: impl Fn(&str) -> Option<String>,
        now_ms: i64,
    ) -> Result<Checked, String> {
        let rate_ok = |r: f64| r.is_finite() && r > 0.0 && r <= loadgen::opts::MAX_RATE;
        if !rate_ok(self.start_rate) || !rate_ok(self.max_rate) {
            return Err(format!(
                "--start-rate and --max-rate must be above 0 and at most {}/s",
                loadgen::opts::MAX_RATE
            ));
        }
        if self.max_rate < self.start_rate {
            return Err("--max-rate must be at least --start-rate".into());
        }
        if !(self.growth > 1.0 && self.growth <= 10.0) {
            return Err(format!(
                "--growth must be above 1 and at most 10, not {}",
                self.growth
            ));
        }
        if !(self.precision >= 1.0 && self.precision <= 100.0) {
            return Err(format!(
                "--precision must be from 1 to 100 percent, not {}",
                self.precision
            ));
        }
        if self.max_vus == 0 || self.max_vus > loadgen::opts::MAX_VUS {
            return Err(format!(
                "--max-vus must be from 1 to {}",
                loadgen::opts::MAX_VUS
            ));
        }
        // A folder of sources (the `capacity` crate itself, run from the repository root) is
        // never written into.
        if self.out.join("Cargo.toml").exists() || self.out.join("src").is_dir() {
            return Err(format!(
                "--out {} holds source code (Cargo.toml or src/): name a folder for results",
                self.out.display()
            ));
        }
        if self.step > loadgen::opts::MAX_RUN || self.time_limit > loadgen::opts::MAX_RUN {
            return Err("--step and --time-limit must be at most 7 days".into());
        }
        let mut url = self.url.clone();
        let namespace = &mut self.namespace;
        let mut resources = collector::throttles::Resources::default();
        apply_outputs(&mut self.aws, &self.stack, |outputs| {
            if url.is_none() {
                url = Some(outputs.get(key::API_ENDPOINT)?.to_owned());
            }
            resources = collector::throttles::Resources::from_outputs(outputs);
            if namespace.is_none() {
                *namespace = outputs.get(key::NAMESPACE).ok().map(str::to_owned);
            }
            Ok(())
        })?;
        let url = url
            .or_else(|| env("API_ENDPOINT").filter(|v| !v.is_empty()))
            .ok_or("no API URL: pass --url or --outputs, or set API_ENDPOINT")?;
        let endpoint = Endpoint::parse(&url).map_err(|e| format!("{url}: {e}"))?;
        let run_prefix = self.run_prefix.unwrap_or_else(|| format!("cap-{now_ms}"));
        // The longest step id must still be a valid run id.
        if !contract::payload::is_valid_run_id(&format!("{run_prefix}-s999")) {
            return Err(format!(
                "--run-prefix {run_prefix:?} must be 1 to 59 characters of A-Z, a-z, 0-9, _ or -"
            ));
        }
        Ok(Checked {
            search: SearchConfig {
                start_rate: self.start_rate,
                max_rate: self.max_rate,
                growth: self.growth,
                precision: self.precision / 100.0,
                step: self.step,
                slo_ms: self.slo.as_secs_f64() * 1000.0,
                time_limit: self.time_limit,
                poll_lag_s: crate::step::poll_lag_s(resources.profile.as_deref()),
            },
            live: LiveConfig {
                endpoint,
                step: self.step,
                max_vus: self.max_vus,
                insecure: self.insecure,
                namespace: self
                    .namespace
                    .unwrap_or_else(|| contract::metrics::NAMESPACE.to_owned()),
                poll: self.poll,
                quiet: self.quiet,
                drain_timeout: self.drain_timeout,
                out: self.out,
                resources,
            },
            run_prefix,
            aws: self.aws,
        })
    }
}
