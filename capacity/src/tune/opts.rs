//! `tune`'s flags, with the pipeline's ([`LiveOpts`]), checked into a [`TuneConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use collector::lambda::Function;
use collector::opts::{positive_duration, AwsOpts};

use crate::live::LiveConfig;
use crate::live_opts::{run_prefix, CheckedLive, LiveOpts};

/// Which memory size is cheapest for the speed you need? Runs the pipeline at one arrival rate
/// for one step per memory size (set on all three functions, or one, with Lambda's
/// UpdateFunctionConfiguration), reads Lambda's own metrics of each step, prints a table and
/// the sizes it recommends, and sets the functions back to their sizes.
///
/// The API and the functions' names come from --outputs (a `sandbox up` or a real `cdk
/// deploy`); the API from --url or API_ENDPOINT otherwise.
#[derive(Debug, Parser)]
#[command(name = "tune", version)]
pub struct TuneOpts {
    /// The memory sizes to try, MB, comma-separated (whole numbers from 128 to 10240).
    #[arg(
        long,
        value_name = "MB,...",
        value_delimiter = ',',
        default_value = "128,256,512,1024,1769,3008"
    )]
    pub sizes: Vec<String>,
    /// The function whose size each step sets: upstream, midstream, downstream, or all.
    #[arg(long, value_name = "FUNCTION", default_value = "all")]
    pub function: String,
    /// Each step's arrival rate, per second (with --step, at least 500 loops a step give the
    /// end-to-end p99 its 95 % interval).
    #[arg(long, value_name = "R", default_value_t = 50.0)]
    pub rate: f64,
    /// Each step's load.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = positive_duration)]
    pub step: Duration,
    /// The end-to-end p99 a recommended size stays within.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = positive_duration)]
    pub slo: Duration,
    /// How long after a step's drain Lambda's metrics of it are complete [default: 3s in the
    /// sandbox, which publishes them every second; 3m on AWS].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub settle: Option<Duration>,
    /// Where tune.json, tune.html and each step's run file and export go.
    #[arg(long, value_name = "DIR", default_value = "tune-results")]
    pub out: PathBuf,
    /// The steps' run ids are `<PREFIX>-m<MB>` [default: tune-<epoch ms>].
    #[arg(long, value_name = "PREFIX")]
    pub run_prefix: Option<String>,
    /// Check the flags that need no stack (sizes, function, rate, step) and exit: 0 when
    /// they are good, else 2 with the reason (what `make tune` does before starting a sandbox).
    #[arg(long, hide = true)]
    pub check_only: bool,
    /// The pipeline and its drains.
    #[command(flatten)]
    pub live: LiveOpts,
}

/// Everything a tuning needs, checked.
#[derive(Debug)]
pub struct TuneConfig {
    /// The sizes, MB, ascending, each once.
    pub sizes: Vec<u32>,
    /// The functions whose size each step sets.
    pub tuned: Vec<Function>,
    /// Every function of the stack, whose metrics each step reads.
    pub functions: Vec<Function>,
    /// Each step's arrival rate, per second.
    pub rate: f64,
    /// The end-to-end p99 a usable step stays within, ms.
    pub slo_ms: f64,
    /// The wait after a drain for Lambda's metrics.
    pub settle: Duration,
    /// Whether the stack is on AWS (not a sandbox): each step starts on a whole minute, so
    /// that Lambda's metrics, kept by the minute, are of one step each.
    pub on_aws: bool,
    /// How long a record may wait for its poller, seconds ([`crate::step::poll_lag_s`]).
    pub poll_lag_s: f64,
    /// The steps' run id prefix.
    pub run_prefix: String,
    /// How each step loads and drains.
    pub live: LiveConfig,
    /// AWS flags, with what --outputs filled in.
    pub aws: AwsOpts,
}

impl TuneOpts {
    /// The sizes, ascending and each once, after checking the flags that need no stack:
    /// `--sizes`, `--function`, `--rate` and `--step`; the error is the one line to print.
    pub fn check_flags(&self) -> Result<Vec<u32>, String> {
        let mut sizes = self
            .sizes
            .iter()
            .map(|s| contract::tune::parse_memory_mb(s))
            .collect::<Result<Vec<u32>, String>>()?;
        sizes.sort_unstable();
        sizes.dedup();
        if sizes.is_empty() {
            return Err("--sizes names no memory size".into());
        }
        let roles: Vec<&str> = contract::lambda::ROLES.iter().map(|(r, _)| *r).collect();
        if self.function != "all" && !roles.contains(&self.function.as_str()) {
            return Err(format!(
                "--function {:?} is not one of {}, or all",
                self.function,
                roles.join(", ")
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= loadgen::opts::MAX_RATE) {
            return Err(format!(
                "--rate must be above 0 and at most {}/s",
                loadgen::opts::MAX_RATE
            ));
        }
        if self.step > loadgen::opts::MAX_RUN {
            return Err("--step must be at most 7 days".into());
        }
        Ok(sizes)
    }

    /// Checks the flags; the error is the one line to print.
    pub fn check(
        self,
        env: impl Fn(&str) -> Option<String>,
        now_ms: i64,
    ) -> Result<TuneConfig, String> {
        let sizes = self.check_flags()?;
        let run_prefix = run_prefix(self.run_prefix, "tune", now_ms, "-m10240")?;
        let outputs = self.live.stack.read()?;
        let functions: Vec<Function> = contract::lambda::ROLES
            .iter()
            .filter_map(|(role, key)| {
                let name = outputs.as_ref()?.get(key).ok()?;
                Some(Function {
                    role: (*role).to_owned(),
                    name: name.to_owned(),
                })
            })
            .collect();
        if functions.len() < contract::lambda::ROLES.len() {
            return Err(
                "no function names: pass --outputs with the stack's UpstreamFunctionName, \
                 MidstreamFunctionName and DownstreamFunctionName"
                    .into(),
            );
        }
        let tuned = functions
            .iter()
            .filter(|f| self.function == "all" || f.role == self.function)
            .cloned()
            .collect();
        let CheckedLive { live, aws } = self.live.check(env, self.step, self.out)?;
        let on_aws = live.resources.profile.is_none();
        Ok(TuneConfig {
            sizes,
            tuned,
            functions,
            rate: self.rate,
            slo_ms: self.slo.as_secs_f64() * 1000.0,
            settle: self.settle.unwrap_or(if on_aws {
                Duration::from_secs(180)
            } else {
                Duration::from_secs(3)
            }),
            on_aws,
            poll_lag_s: crate::step::poll_lag_s(live.resources.profile.as_deref()),
            run_prefix,
            live,
            aws,
        })
    }
}
