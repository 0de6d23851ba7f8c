//! The flags, with the collector's AWS and outputs flags, checked into a [`SearchConfig`] and a
//! [`LiveConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use collector::opts::{positive_duration, AwsOpts};

use crate::live::LiveConfig;
use crate::live_opts::{run_prefix, CheckedLive, LiveOpts};
use crate::search::SearchConfig;

/// Find the highest arrival rate the pipeline sustains (nothing failed or lost, p99 within the
/// SLO, no growing backlog), and the hop that gives first.
///
/// The API comes from --url, else --outputs (`ApiGatewayMethodEndpoint`), else API_ENDPOINT; the
/// AWS endpoint and namespace from the flags, else --outputs.
#[derive(Debug, Parser)]
#[command(name = "capacity", version)]
pub struct Opts {
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
    /// Where capacity.json, capacity.html and each step's run file and export go.
    #[arg(long, value_name = "DIR", default_value = "capacity-results")]
    pub out: PathBuf,
    /// The steps' run ids are `<PREFIX>-s<step>` [default: cap-<epoch ms>].
    #[arg(long, value_name = "PREFIX")]
    pub run_prefix: Option<String>,
    /// The pipeline and its drains.
    #[command(flatten)]
    pub live: LiveOpts,
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
        self,
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
        if self.step > loadgen::opts::MAX_RUN || self.time_limit > loadgen::opts::MAX_RUN {
            return Err("--step and --time-limit must be at most 7 days".into());
        }
        let run_prefix = run_prefix(self.run_prefix, "cap", now_ms, "-s999")?;
        let CheckedLive { live, aws } = self.live.check(env, self.step, self.out)?;
        Ok(Checked {
            search: SearchConfig {
                start_rate: self.start_rate,
                max_rate: self.max_rate,
                growth: self.growth,
                precision: self.precision / 100.0,
                step: self.step,
                slo_ms: self.slo.as_secs_f64() * 1000.0,
                time_limit: self.time_limit,
                poll_lag_s: crate::step::poll_lag_s(live.resources.profile.as_deref()),
            },
            live,
            run_prefix,
            aws,
        })
    }
}
