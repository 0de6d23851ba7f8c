//! The flags that say which pipeline to load and how to drain it, shared by `capacity` and
//! `tune`, checked into a [`LiveConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use collector::opts::{apply_outputs, positive_duration, AwsOpts, OutputsOpts};
use collector::throttles::Resources;
use contract::outputs::key;
use loadgen::endpoint::Endpoint;

use crate::live::LiveConfig;

/// Which pipeline, and how each step loads and drains it.
#[derive(Debug, Args)]
pub struct LiveOpts {
    /// The API to POST to.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
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

/// The pipeline's side, checked.
#[derive(Debug)]
pub struct CheckedLive {
    /// How each step loads and drains.
    pub live: LiveConfig,
    /// AWS flags, with what --outputs filled in.
    pub aws: AwsOpts,
}

impl LiveOpts {
    /// Checks the flags for steps of `step` writing into `out`, filling in from --outputs and
    /// `env`; the error is the one line to print.
    pub fn check(
        mut self,
        env: impl Fn(&str) -> Option<String>,
        step: Duration,
        out: PathBuf,
    ) -> Result<CheckedLive, String> {
        if self.max_vus == 0 || self.max_vus > loadgen::opts::MAX_VUS {
            return Err(format!(
                "--max-vus must be from 1 to {}",
                loadgen::opts::MAX_VUS
            ));
        }
        // A folder of sources (the crate itself, run from the repository root) is never
        // written into.
        if out.join("Cargo.toml").exists() || out.join("src").is_dir() {
            return Err(format!(
                "--out {} holds source code (Cargo.toml or src/): name a folder for results",
                out.display()
            ));
        }
        let mut url = self.url.clone();
        let namespace = &mut self.namespace;
        let mut resources = Resources::default();
        apply_outputs(&mut self.aws, &self.stack, |outputs| {
            if url.is_none() {
                url = Some(outputs.get(key::API_ENDPOINT)?.to_owned());
            }
            resources = Resources::from_outputs(outputs);
            if namespace.is_none() {
                *namespace = outputs.get(key::NAMESPACE).ok().map(str::to_owned);
            }
            Ok(())
        })?;
        let url = url
            .or_else(|| env("API_ENDPOINT").filter(|v| !v.is_empty()))
            .ok_or("no API URL: pass --url or --outputs, or set API_ENDPOINT")?;
        let endpoint = Endpoint::parse(&url).map_err(|e| format!("{url}: {e}"))?;
        Ok(CheckedLive {
            live: LiveConfig {
                endpoint,
                step,
                max_vus: self.max_vus,
                insecure: self.insecure,
                namespace: self
                    .namespace
                    .unwrap_or_else(|| contract::metrics::NAMESPACE.to_owned()),
                poll: self.poll,
                quiet: self.quiet,
                drain_timeout: self.drain_timeout,
                out,
                resources,
            },
            aws: self.aws,
        })
    }
}

/// The run id prefix: the flag's, else `<default_stem>-<epoch ms>`, checked so that the longest
/// step id (the prefix and `longest_suffix`) is still a valid run id.
pub fn run_prefix(
    given: Option<String>,
    default_stem: &str,
    now_ms: i64,
    longest_suffix: &str,
) -> Result<String, String> {
    let prefix = given.unwrap_or_else(|| format!("{default_stem}-{now_ms}"));
    if !contract::payload::is_valid_run_id(&format!("{prefix}{longest_suffix}")) {
        return Err(format!(
            "--run-prefix {prefix:?} must be 1 to {} characters of A-Z, a-z, 0-9, _ or -",
            contract::payload::MAX_RUN_ID_CHARS - longest_suffix.len()
        ));
    }
    Ok(prefix)
}
