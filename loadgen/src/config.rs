//! A validated run configuration: what [`crate::run`] executes. It is data (serde): the Lambda
//! fan-out sends each worker its configuration as it is, so that every setting reaches the
//! workers without being spelled out again as flags.

use std::path::PathBuf;
use std::time::Duration;

use contract::remote_write;

use crate::endpoint::Endpoint;
use crate::schedule::RateSchedule;
use crate::segment::Segment;
use crate::summary_options::{SummaryMode, TrendStat};
use crate::thresholds::Threshold;

/// One ramping stage: reach `target` VUs, linearly, over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    /// How long the ramp takes.
    pub duration: Duration,
    /// VUs at its end.
    pub target: u64,
}

/// How iterations are scheduled (k6's executors, as data).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "executor")]
pub enum Executor {
    /// `vus` loops for `duration` (k6's default).
    ConstantVus {
        /// Concurrent loops.
        vus: u64,
        /// Run time.
        duration: Duration,
    },
    /// `iterations` in total, shared by `vus` loops, within `max_duration`.
    SharedIterations {
        /// Concurrent loops.
        vus: u64,
        /// Total iterations.
        iterations: u64,
        /// Time limit.
        max_duration: Duration,
    },
    /// VU count following `stages`, from `start_vus`.
    RampingVus {
        /// VUs at the start.
        start_vus: u64,
        /// The ramps, in order.
        stages: Vec<Stage>,
    },
    /// `rate` iteration starts per second for `duration`, with up to `max_vus` loops.
    ConstantArrivalRate {
        /// Iterations per second.
        rate: f64,
        /// Run time.
        duration: Duration,
        /// Most concurrent loops.
        max_vus: u64,
    },
    /// Iteration starts following a piecewise-linear rate curve, with up to `max_vus` loops.
    RampingArrivalRate {
        /// The rate curve.
        schedule: RateSchedule,
        /// Most concurrent loops.
        max_vus: u64,
    },
}

impl Executor {
    /// k6's name for the executor.
    pub fn name(&self) -> &'static str {
        match self {
            Executor::ConstantVus { .. } => "constant-vus",
            Executor::SharedIterations { .. } => "shared-iterations",
            Executor::RampingVus { .. } => "ramping-vus",
            Executor::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Executor::RampingArrivalRate { .. } => "ramping-arrival-rate",
        }
    }

    /// Most VUs the executor runs at once.
    pub fn max_vus(&self) -> u64 {
        match self {
            Executor::ConstantVus { vus, .. } | Executor::SharedIterations { vus, .. } => *vus,
            Executor::RampingVus { start_vus, stages } => {
                stages.iter().map(|s| s.target).fold(*start_vus, u64::max)
            }
            Executor::ConstantArrivalRate { max_vus, .. }
            | Executor::RampingArrivalRate { max_vus, .. } => *max_vus,
        }
    }

    /// The planned run time (for shared iterations, the time limit).
    pub fn duration(&self) -> Duration {
        match self {
            Executor::ConstantVus { duration, .. }
            | Executor::ConstantArrivalRate { duration, .. } => *duration,
            Executor::SharedIterations { max_duration, .. } => *max_duration,
            Executor::RampingVus { stages, .. } => stages.iter().map(|s| s.duration).sum(),
            Executor::RampingArrivalRate { schedule, .. } => schedule.duration(),
        }
    }

    /// For the arrival-rate executors: when iterations start.
    pub fn arrival_schedule(&self) -> Option<RateSchedule> {
        match self {
            Executor::ConstantArrivalRate { rate, duration, .. } => {
                Some(RateSchedule::constant(*rate, *duration))
            }
            Executor::RampingArrivalRate { schedule, .. } => Some(schedule.clone()),
            _ => None,
        }
    }

    /// For ramping VUs: the VU target `elapsed` into the run, interpolated linearly.
    pub fn target_vus(&self, elapsed: Duration) -> u64 {
        let Executor::RampingVus { start_vus, stages } = self else {
            return self.max_vus();
        };
        let mut from = *start_vus;
        let mut stage_start = Duration::ZERO;
        for stage in stages {
            let stage_end = stage_start + stage.duration;
            if elapsed < stage_end {
                let progress = (elapsed - stage_start).as_secs_f64() / stage.duration.as_secs_f64();
                let target = from as f64 + (stage.target as f64 - from as f64) * progress;
                return target.round() as u64;
            }
            from = stage.target;
            stage_start = stage_end;
        }
        from
    }
}

/// Everything a run needs, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// Where to POST (as data: the whole URL, credentials included).
    #[serde(with = "crate::endpoint::as_url")]
    pub endpoint: Endpoint,
    /// The schedule.
    pub executor: Executor,
    /// The run id every request carries.
    pub run_id: String,
    /// The message every request carries.
    pub message: String,
    /// The duration check's limit.
    pub max_duration: Duration,
    /// Pass/fail criteria (judged where the run is whole: never sent to a worker).
    #[serde(skip)]
    pub thresholds: Vec<Threshold>,
    /// Where to write the run file.
    pub summary_export: Option<PathBuf>,
    /// Per-request time limit.
    pub timeout: Duration,
    /// After the duration, how long requests in flight may still take.
    pub graceful_stop: Duration,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// Runtime worker threads.
    pub threads: usize,
    /// Draw the progress line (when stderr is a terminal).
    pub progress: bool,
    /// Machine output on stdout.
    pub json: bool,
    /// This worker's share of the run ([`Segment::WHOLE`] on one machine).
    pub segment: Segment,
    /// When to start, epoch ms (`None`: at once).
    pub start_at_ms: Option<i64>,
    /// Run the load from copies of the worker function on AWS Lambda instead of here.
    pub lambda: Option<LambdaFanOut>,
    /// What the run reports besides the run file.
    pub reports: Reports,
}

/// What a run reports besides its run file. The default is k6's: the compact summary with
/// its trend statistics, and nothing else.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reports {
    /// The end-of-test summary's form.
    pub mode: SummaryMode,
    /// The statistics each trend shows (k6's summaryTrendStats).
    pub trend_stats: Vec<TrendStat>,
    /// Where to write the handleSummary data.
    pub summary_json: Option<PathBuf>,
    /// Where to write the request durations' interval log.
    pub hdr_log: Option<PathBuf>,
    /// The live output to push to.
    pub remote_write: Option<RemoteWrite>,
}

impl Default for Reports {
    fn default() -> Reports {
        Reports {
            mode: SummaryMode::default(),
            trend_stats: TrendStat::defaults(),
            summary_json: None,
            hdr_log: None,
            remote_write: None,
        }
    }
}

/// `--lambda N`: the load from N invocations of the loadgen worker function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LambdaFanOut {
    /// How many workers (each runs a 1/N segment).
    pub workers: u64,
    /// The function's name or ARN.
    pub function: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramping_targets_interpolate_between_stages() {
        let executor = Executor::RampingVus {
            start_vus: 0,
            stages: vec![
                Stage {
                    duration: Duration::from_secs(10),
                    target: 20,
                },
                Stage {
                    duration: Duration::from_secs(10),
                    target: 20,
                },
                Stage {
                    duration: Duration::from_secs(5),
                    target: 0,
                },
            ],
        };
        let at = |s: f64| executor.target_vus(Duration::from_secs_f64(s));
        assert_eq!(
            [at(0.0), at(5.0), at(10.0), at(15.0), at(22.5), at(30.0)],
            [0, 10, 20, 20, 10, 0]
        );
        assert_eq!(executor.max_vus(), 20);
        assert_eq!(executor.duration(), Duration::from_secs(25));
    }
}

/// Where and how to push.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RemoteWrite {
    /// The remote-write endpoint.
    #[serde(with = "crate::endpoint::as_url")]
    pub url: Endpoint,
    /// Time between pushes.
    pub push_interval: Duration,
    /// The statistics each trend is pushed as (`k6_http_req_duration_p99`, `..._avg`, ...).
    pub trend_stats: Vec<TrendStat>,
}

impl RemoteWrite {
    /// The output as k6's environment configures it; the error is the one line to print.
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> Result<RemoteWrite, String> {
        let url =
            env(remote_write::URL_VAR).unwrap_or_else(|| remote_write::DEFAULT_URL.to_owned());
        let url = Endpoint::parse(&url)
            .map_err(|e| format!("K6_PROMETHEUS_RW_SERVER_URL {url:?}: {e}"))?;
        let push_interval =
            remote_write::push_interval(env(remote_write::INTERVAL_VAR).as_deref())?;
        let trend_stats = match env("K6_PROMETHEUS_RW_TREND_STATS") {
            None => vec![TrendStat::Percentile(99.0)],
            Some(text) => text
                .split(',')
                .map(TrendStat::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("K6_PROMETHEUS_RW_TREND_STATS: {e}"))?,
        };
        if env("K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM").is_some_and(|v| v == "true") {
            return Err(
                "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true: native histograms are not \
                 supported; trends are pushed as K6_PROMETHEUS_RW_TREND_STATS"
                    .into(),
            );
        }
        Ok(RemoteWrite {
            url,
            push_interval,
            trend_stats,
        })
    }
}
