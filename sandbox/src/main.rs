//! `sandbox up` / `sandbox down`: the whole pipeline on this machine.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The pipeline on one machine: moto, an AWS edge, Lambda workers, pollers, API Gateway.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version)]
struct Opts {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start everything and run until Ctrl-C or `sandbox down`.
    Up {
        /// The edge's port on 127.0.0.1 (AWS endpoint and API Gateway).
        #[arg(long, default_value_t = 4599)]
        port: u16,
        /// Deploy the CDK app (cdk/) through the edge first.
        #[arg(long)]
        deploy: bool,
        /// The functions' binaries for the deploy: <dist>/<fn>/bootstrap.
        #[arg(long, default_value = "dist")]
        dist: PathBuf,
        /// Hot reload (with --deploy: HOT_DEPLOY): run <dist>/<fn>/bootstrap where it is and
        /// restart a function's workers when it changes (`make watch` rebuilds it).
        #[arg(long)]
        hot: bool,
        /// Worker processes per function.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// State folder: outputs.json, the functions' code, the pid file.
        #[arg(long, default_value = ".sandbox")]
        state: PathBuf,
        /// Fault injection, FUNCTION=FRACTION (repeatable): kill a worker of each function whose
        /// name contains FUNCTION right after it answers, for that fraction of its invocations.
        /// The answer is lost and the invocation fails, so the caller retries what was already
        /// done (e.g. `--kill-workers midstream=0.2`).
        #[arg(long, value_name = "FUNCTION=FRACTION", value_parser = kill_spec)]
        kill_workers: Vec<(String, f64)>,
        /// The seed of --kill-workers' draws [default: from the clock]; the sandbox prints the
        /// one it uses, so that a run can be repeated with the same draws.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Do not publish Lambda's own metrics (AWS/Lambda, LambdaInsights) to CloudWatch: for
        /// measuring what publishing them costs.
        #[arg(long)]
        no_lambda_metrics: bool,
        /// What-if: add DURATION to each invocation of each function whose name contains
        /// FUNCTION (repeatable; e.g. `--delay downstream=20ms`), before the function gets it, as
        /// if its code were that much slower. A hot-reload function's folder may also hold a
        /// `delay` file (`10ms`), read each time its workers start.
        #[arg(long, value_name = "FUNCTION=DURATION", value_parser = delay_spec)]
        delay: Vec<(String, std::time::Duration)>,
        /// What-if that costs CPU: each invocation of each function whose name contains
        /// FUNCTION spends DURATION of CPU time (at one full core) in its handler (repeatable;
        /// e.g. `--burn midstream=5ms`). With --cpu-share it takes longer the smaller the
        /// function's memory size, as on Lambda.
        #[arg(long, value_name = "FUNCTION=DURATION", value_parser = delay_spec)]
        burn: Vec<(String, std::time::Duration)>,
        /// What-if of a leaking handler: each invocation of each function whose name contains
        /// FUNCTION keeps SIZE more memory for as long as its worker lives (repeatable; e.g.
        /// `--leak midstream=40MB`). With --cpu-share a worker past its memory size is killed,
        /// as on Lambda, and its invocation retried on a fresh one.
        #[arg(long, value_name = "FUNCTION=SIZE", value_parser = leak_spec)]
        leak: Vec<(String, u64)>,
        /// Give each function's workers Lambda's CPU share (memory size / 1,769 MB of one core)
        /// and its memory size as a limit, in a Linux control group (on with --profile aws).
        #[arg(long)]
        cpu_share: bool,
        /// The clock and quotas kept: `default` (pollers read an idle shard up to 20 times a
        /// second, no quota) or `aws` (Lambda's polling cadence; Kinesis, DynamoDB, Lambda and
        /// API Gateway quotas, answered as AWS answers them).
        #[arg(long, default_value = "default", value_name = "PROFILE")]
        profile: sandbox::quota::ProfileName,
        /// With --profile aws: multiply every rate quota by this (above 0, at most 1), so that
        /// this machine reaches the load where AWS's quotas bite (0.1: a shard takes 100
        /// records/s). Sizes and counts are never scaled.
        #[arg(long, default_value = "1", value_name = "F", value_parser = sandbox::quota::parse_scale)]
        quota_scale: f64,
    },
    /// Wait until the sandbox started from this folder is ready (its outputs file written):
    /// exit 0 then, 1 when none is running or the timeout passes.
    Wait {
        /// State folder of the sandbox.
        #[arg(long, default_value = ".sandbox")]
        state: PathBuf,
        /// Give up after this long.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Stop the sandbox started from this folder.
    Down {
        /// State folder of the running sandbox.
        #[arg(long, default_value = ".sandbox")]
        state: PathBuf,
    },
}

/// Reads `FUNCTION=FRACTION` with a fraction from 0 to 1.
fn delay_spec(text: &str) -> Result<(String, std::time::Duration), String> {
    let (name, duration) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not FUNCTION=DURATION, e.g. midstream=10ms"))?;
    let duration = humantime::parse_duration(duration.trim())
        .map_err(|e| format!("{text:?}: {duration:?} is not a duration: {e}"))?;
    if name.is_empty() || duration > std::time::Duration::from_secs(60) {
        return Err(format!(
            "{text:?}: a function name and a duration of at most 60 s"
        ));
    }
    Ok((name.to_owned(), duration))
}

fn leak_spec(text: &str) -> Result<(String, u64), String> {
    let (name, size) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not FUNCTION=SIZE, e.g. midstream=40MB"))?;
    let size = size.trim();
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match &size[digits.len()..] {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        other => return Err(format!("{text:?}: {other:?} is not B, KB, MB or GB")),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&b| b > 0 && b <= 10 << 30)
        .ok_or_else(|| format!("{text:?}: a whole size above 0 and at most 10GB"))?;
    if name.is_empty() {
        return Err(format!("{text:?}: a function name and a size"));
    }
    Ok((name.to_owned(), bytes))
}

fn kill_spec(text: &str) -> Result<(String, f64), String> {
    let (name, fraction) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not FUNCTION=FRACTION"))?;
    let fraction: f64 = fraction
        .parse()
        .map_err(|_| format!("{fraction:?} is not a number"))?;
    if name.is_empty() || !(0.0..=1.0).contains(&fraction) {
        return Err(format!(
            "{text:?}: a function name and a fraction from 0 to 1"
        ));
    }
    Ok((name.to_owned(), fraction))
}

/// A command's outcome as one line on stderr: exit 0 with its message, or 1 with its error.
fn outcome(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(message) => {
            // A full disk under stderr is no reason to fail what succeeded.
            let _ = writeln!(std::io::stderr(), "sandbox: {message}");
            ExitCode::SUCCESS
        }
        Err(e) => contract::cli::fail("sandbox", e),
    }
}

fn main() -> ExitCode {
    let opts = match contract::cli::parse::<Opts>("sandbox") {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let root = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(e) => return contract::cli::fail("sandbox", e),
    };
    match opts.command {
        Command::Wait { state, timeout } => outcome(sandbox::instance::wait_ready(&state, timeout)),
        Command::Down { state } => outcome(sandbox::instance::stop_running(&state)),
        Command::Up {
            port,
            deploy,
            dist,
            hot,
            concurrency,
            state,
            kill_workers,
            seed,
            no_lambda_metrics,
            delay,
            burn,
            leak,
            cpu_share,
            profile,
            quota_scale,
        } => {
            if profile != sandbox::quota::ProfileName::Aws && quota_scale != 1.0 {
                eprintln!("sandbox: --quota-scale applies to --profile aws only");
                return ExitCode::from(2);
            }
            let runtime = match contract::cli::runtime("sandbox", Some(2)) {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            let config = sandbox::up::UpConfig {
                dist: root.join(dist),
                state: root.join(state),
                root,
                port,
                deploy,
                hot,
                concurrency: concurrency.max(1),
                kill_workers,
                seed: seed.unwrap_or_else(|| contract::epoch_ms() as u64),
                lambda_metrics: !no_lambda_metrics,
                delays: delay,
                burns: burn,
                leaks: leak,
                cpu_share: cpu_share || profile == sandbox::quota::ProfileName::Aws,
                profile: sandbox::quota::Profile {
                    name: profile,
                    scale: quota_scale,
                },
            };
            let instance = match sandbox::instance::Instance::claim(&config.state) {
                Ok(instance) => instance,
                Err(e) => return contract::cli::fail("sandbox", e),
            };
            let result = runtime.block_on(async {
                let shutdown = async {
                    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = async { if let Some(term) = term.as_mut() { term.recv().await; } else { std::future::pending::<()>().await } } => {}
                    }
                };
                sandbox::up::up(config, sandbox::lambda::stderr_logs(), shutdown).await
            });
            drop(instance);
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.downcast_ref::<sandbox::up::BadSetting>().is_some() => {
                    eprintln!("sandbox: {e:#}");
                    contract::cli::Exit::BadInput.into()
                }
                Err(e) => contract::cli::fail("sandbox", e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leak_is_a_function_and_a_whole_size() {
        assert_eq!(
            leak_spec("midstream=40MB"),
            Ok(("midstream".into(), 40 << 20))
        );
        assert_eq!(leak_spec("up=512KB"), Ok(("up".into(), 512 << 10)));
        assert_eq!(leak_spec("up=4096"), Ok(("up".into(), 4096)));
        for (bad, said) in [
            ("midstream", "is not FUNCTION=SIZE"),
            ("midstream=40mb", "is not B, KB, MB or GB"),
            ("midstream=1.5MB", "a whole size above 0"),
            ("midstream=0MB", "a whole size above 0"),
            ("midstream=11GB", "at most 10GB"),
            ("=4MB", "a function name"),
        ] {
            let error = leak_spec(bad).unwrap_err();
            assert!(error.contains(said), "{bad}: {error}");
        }
    }
}
