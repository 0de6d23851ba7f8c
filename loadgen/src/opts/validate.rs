//! The flags validated into a [`Config`] before anything runs: every value in range, one
//! executor chosen by k6's rules, the endpoint found, the reports' settings read from the
//! environment. A flag that does not hold is one [`ConfigError`] (one line, exit code 2).

use std::time::Duration;

use super::{Opts, MAX_ITERATIONS, MAX_RATE, MAX_RUN, MAX_THREADS, MAX_VUS};
use crate::config::{Config, Executor, LambdaFanOut, Reports, Stage};
use crate::endpoint::{self, Endpoint};
use crate::error::ConfigError;
use crate::schedule::{RateSchedule, RateStage};
use crate::summary_options::TrendStat;

impl Opts {
    /// Validates the flags into a configuration, reading the environment through `env`.
    pub fn into_config(
        self,
        env: impl Fn(&str) -> Option<String>,
        now_ms: i64,
    ) -> Result<Config, ConfigError> {
        let endpoint = self.endpoint(&env)?;
        self.check_ranges()?;
        if self.vus == Some(0) {
            return Err(ConfigError::Invalid("--vus must be at least 1".into()));
        }
        if self.duration == Some(Duration::ZERO) {
            return Err(ConfigError::Invalid(
                "--duration must be longer than 0s".into(),
            ));
        }
        if self.threads == 0 {
            return Err(ConfigError::Invalid("--threads must be at least 1".into()));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "--timeout must be longer than 0s".into(),
            ));
        }
        if let Some(path) = &self.summary_export {
            contract::file::check_writable(path)
                .map_err(|e| ConfigError::Invalid(format!("--summary-export {e}")))?;
        }
        let executor = self.executor()?;
        let segment = self.segment.unwrap_or_default();
        if executor.max_vus() < segment.count() {
            return Err(ConfigError::Invalid(format!(
                "--segment {segment}: {} VUs cannot be shared by {} workers (each needs at least one)",
                executor.max_vus(),
                segment.count()
            )));
        }
        let lambda = self.lambda_fan_out(&env, executor.max_vus())?;
        let reports = self.reports(&env)?;
        let files: Vec<(&str, &std::path::Path)> = [
            ("--outputs", &self.outputs),
            ("--summary-export", &self.summary_export),
            ("--summary-json", &self.summary_json),
            ("--hdr-log", &self.hdr_log),
        ]
        .into_iter()
        .filter_map(|(flag, path)| path.as_deref().map(|p| (flag, p)))
        .collect();
        contract::file::check_distinct(&files).map_err(ConfigError::Invalid)?;
        if let Some(at) = self.start_at {
            if at > now_ms + 24 * 3600 * 1000 {
                return Err(ConfigError::Invalid(format!(
                    "--start-at is more than a day ahead ({} s from now)",
                    (at - now_ms) / 1000
                )));
            }
        }
        let run_id = self.run_id.unwrap_or_else(|| format!("run-{now_ms}"));
        if !contract::payload::is_valid_run_id(&run_id) {
            return Err(ConfigError::Invalid(format!(
                "--run-id {run_id:?} must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -"
            )));
        }
        if self.message.is_empty() {
            return Err(ConfigError::Invalid("--message must not be empty".into()));
        }
        let thresholds = self
            .thresholds
            .iter()
            .map(|t| crate::thresholds::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            endpoint,
            executor,
            run_id,
            message: self.message,
            max_duration: self.max_duration,
            thresholds,
            summary_export: self.summary_export,
            timeout: self.timeout,
            graceful_stop: self.graceful_stop,
            insecure: self.insecure,
            threads: self.threads,
            progress: !self.quiet && !self.json,
            json: self.json,
            segment,
            start_at_ms: self.start_at,
            lambda,
            reports,
        })
    }

    /// Which executor the flags call for (k6's rules: --rate with --stage ramps the arrival
    /// rate, --rate alone holds it, --iterations shares them, --stage ramps VUs, else constant
    /// VUs), with its values checked.
    fn executor(&self) -> Result<Executor, ConfigError> {
        Ok(
            if let (Some(rate), false) = (self.rate, self.stages.is_empty()) {
                if !(rate.is_finite() && rate >= 0.0) {
                    return Err(ConfigError::Invalid(format!(
                        "--rate must be a number of iterations per second from 0 up, not {rate}"
                    )));
                }
                let schedule = RateSchedule {
                    start_rate: rate,
                    stages: self
                        .stages
                        .iter()
                        .map(|s| RateStage {
                            duration: s.duration,
                            target: s.target,
                        })
                        .collect(),
                };
                if schedule.total() == 0 {
                    return Err(ConfigError::Invalid(
                        "--rate with --stage: the rate stays at 0, so nothing would run".into(),
                    ));
                }
                Executor::RampingArrivalRate {
                    schedule,
                    max_vus: self.max_vus(),
                }
            } else if let Some(rate) = self.rate {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(ConfigError::Invalid(format!(
                        "--rate must be a positive number of iterations per second, not {rate}"
                    )));
                }
                Executor::ConstantArrivalRate {
                    rate,
                    duration: self.duration.unwrap_or(Duration::from_secs(60)),
                    max_vus: self.max_vus(),
                }
            } else if let Some(iterations) = self.iterations {
                if iterations == 0 {
                    return Err(ConfigError::Invalid(
                        "--iterations must be at least 1".into(),
                    ));
                }
                Executor::SharedIterations {
                    vus: self.vus.unwrap_or(10).min(iterations),
                    iterations,
                    max_duration: self.duration.unwrap_or(Duration::from_secs(600)),
                }
            } else if !self.stages.is_empty() {
                if self.stages.iter().all(|s| s.target == 0.0) && self.vus.unwrap_or(0) == 0 {
                    return Err(ConfigError::Invalid(
                        "--stage: every stage targets 0 VUs, so nothing would run".into(),
                    ));
                }
                let mut stages = Vec::with_capacity(self.stages.len());
                for s in &self.stages {
                    if s.target.fract() != 0.0 {
                        return Err(ConfigError::Invalid(format!(
                        "--stage target {} is not a whole number of VUs (with --rate it is a rate)",
                        s.target
                    )));
                    }
                    stages.push(Stage {
                        duration: s.duration,
                        target: s.target as u64,
                    });
                }
                Executor::RampingVus {
                    start_vus: self.vus.unwrap_or(0),
                    stages,
                }
            } else {
                Executor::ConstantVus {
                    vus: self.vus.unwrap_or(10),
                    duration: self.duration.unwrap_or(Duration::from_secs(60)),
                }
            },
        )
    }

    /// What the run reports besides its summary and run file: the summary's form, the
    /// handleSummary data, the interval log, the live output.
    fn reports(&self, env: &impl Fn(&str) -> Option<String>) -> Result<Reports, ConfigError> {
        let trend_stats = self
            .summary_trend_stats
            .split(',')
            .map(TrendStat::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Invalid(format!("--summary-trend-stats: {e}")))?;
        for (flag, path) in [
            ("--summary-json", &self.summary_json),
            ("--hdr-log", &self.hdr_log),
        ] {
            if let Some(path) = path {
                contract::file::check_writable(path)
                    .map_err(|e| ConfigError::Invalid(format!("{flag} {e}")))?;
            }
        }
        let mut remote_write = None;
        for output in &self.outputs_live {
            match output.as_str() {
                "experimental-prometheus-rw" => {
                    remote_write = Some(
                        crate::config::RemoteWrite::from_env(env).map_err(ConfigError::Invalid)?,
                    )
                }
                other => {
                    return Err(ConfigError::Invalid(format!(
                        "--out {other:?}: the outputs are experimental-prometheus-rw"
                    )))
                }
            }
        }
        Ok(Reports {
            mode: self.summary_mode,
            trend_stats,
            summary_json: self.summary_json.clone(),
            hdr_log: self.hdr_log.clone(),
            remote_write,
        })
    }

    /// `--lambda N`: the worker count in range, and the function from the flag, the outputs file
    /// or the environment.
    fn lambda_fan_out(
        &self,
        env: &impl Fn(&str) -> Option<String>,
        max_vus: u64,
    ) -> Result<Option<LambdaFanOut>, ConfigError> {
        let Some(workers) = self.lambda else {
            return Ok(None);
        };
        if cfg!(not(feature = "lambda")) {
            return Err(ConfigError::Invalid(
                "--lambda: this loadgen was built without the Lambda fan-out; build it with \
                 `make release LOADGEN_WORKER=true` (cargo's `--features loadgen/lambda`)"
                    .into(),
            ));
        }
        if !(1..=crate::segment::MAX_WORKERS).contains(&workers) {
            return Err(ConfigError::Invalid(format!(
                "--lambda must be 1 to {} workers, not {workers}",
                crate::segment::MAX_WORKERS
            )));
        }
        if max_vus < workers {
            return Err(ConfigError::Invalid(format!(
                "--lambda {workers}: {max_vus} VUs cannot be shared by {workers} workers (each needs at least one)"
            )));
        }
        let function = match (&self.lambda_function, &self.outputs) {
            (Some(name), _) => name.clone(),
            (None, Some(path)) => endpoint::output(
                path,
                env("STACK_NAME").filter(|v| !v.is_empty()).as_deref(),
                contract::outputs::key::LOADGEN_WORKER,
            )?,
            (None, None) => env("LOADGEN_WORKER_FUNCTION")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    ConfigError::Invalid(
                        "--lambda needs the worker function: --lambda-function NAME, --outputs of \
                         a stack deployed with LOADGEN_WORKER=true, or LOADGEN_WORKER_FUNCTION"
                            .into(),
                    )
                })?,
        };
        Ok(Some(LambdaFanOut { workers, function }))
    }

    /// Arrival rate: most VUs, from --max-vus, else --vus, else 100.
    fn max_vus(&self) -> u64 {
        self.max_vus.or(self.vus).unwrap_or(100)
    }

    /// Every number within a range a run on one machine can honour, so that no flag can make
    /// loadgen allocate without bound, spin, or overflow a clock.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        fn within<T: PartialOrd + std::fmt::Display>(
            flag: &str,
            value: Option<T>,
            max: T,
            unit: &str,
        ) -> Result<(), ConfigError> {
            match value {
                Some(v) if v > max => Err(ConfigError::Invalid(format!(
                    "{flag} must be at most {max}{unit}, not {v}{unit}"
                ))),
                _ => Ok(()),
            }
        }
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        within("--vus", self.vus, MAX_VUS, "")?;
        within("--max-vus", self.max_vus, MAX_VUS, "")?;
        if self.max_vus == Some(0) {
            return Err(ConfigError::Invalid("--max-vus must be at least 1".into()));
        }
        within("--iterations", self.iterations, MAX_ITERATIONS, "")?;
        within("--rate", self.rate, MAX_RATE, "/s")?;
        within("--threads", Some(self.threads), MAX_THREADS, "")?;
        let longest = MAX_RUN.as_secs_f64();
        within("--duration", secs(self.duration), longest, " s")?;
        within("--timeout", secs(Some(self.timeout)), longest, " s")?;
        within(
            "--graceful-stop",
            secs(Some(self.graceful_stop)),
            longest,
            " s",
        )?;
        within(
            "--max-duration",
            secs(Some(self.max_duration)),
            longest,
            " s",
        )?;
        for stage in &self.stages {
            within(
                "--stage duration",
                secs(Some(stage.duration)),
                longest,
                " s",
            )?;
            if self.rate.is_some() {
                within("--stage target", Some(stage.target), MAX_RATE, "/s")?;
            } else {
                within("--stage target", Some(stage.target), MAX_VUS as f64, "")?;
            }
        }
        within(
            "the stages together",
            secs(Some(self.stages.iter().map(|s| s.duration).sum())),
            longest,
            " s",
        )
    }

    fn endpoint(&self, env: &impl Fn(&str) -> Option<String>) -> Result<Endpoint, ConfigError> {
        let (url, source) = if let Some(url) = &self.target {
            (url.clone(), "the URL argument".to_owned())
        } else if let Some(url) = &self.url {
            (url.clone(), "--url".to_owned())
        } else if let Some(path) = &self.outputs {
            (
                endpoint::from_outputs_file(
                    path,
                    env("STACK_NAME").filter(|v| !v.is_empty()).as_deref(),
                )?,
                format!("--outputs {}", path.display()),
            )
        } else if let Some(url) = env("API_ENDPOINT").filter(|v| !v.is_empty()) {
            (url, "API_ENDPOINT".to_owned())
        } else if let Some(url) = env("APIGW_ENDPOINT").filter(|v| !v.is_empty()) {
            (url, "APIGW_ENDPOINT".to_owned())
        } else {
            return Err(ConfigError::NoEndpoint);
        };
        Endpoint::parse(&url).map_err(|reason| ConfigError::BadUrl {
            url,
            origin: source,
            reason,
        })
    }
}
