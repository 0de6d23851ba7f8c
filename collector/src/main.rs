//! `collector`: parse, run, print, exit (0 done, 3 drained short / over-counted / timed out /
//! lost, 2 bad flags, 1 error).

use std::io::Write;
use std::process::ExitCode;

use collector::opts::{Command, Opts};

fn main() -> ExitCode {
    let opts = match contract::cli::parse::<Opts>("collector") {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    match opts.command {
        Command::Stats(stats) => match collector::run_stats(&stats) {
            Ok((text, passed)) => {
                // A closed pipe (`| head`) is not an error.
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                if passed {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(99)
                }
            }
            Err(e) => {
                eprintln!("collector: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Compare(compare) => match collector::run_compare(&compare) {
            Ok((text, passed)) => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                ExitCode::from(if passed { 0 } else { 99 })
            }
            Err(e) => {
                eprintln!("collector: {e:#}");
                ExitCode::from(if e.is::<collector::Refused>() { 2 } else { 1 })
            }
        },
        Command::Report(report) => match collector::run_report(&report) {
            Ok(message) => {
                eprintln!("collector: {message}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("collector: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Audit(mut opts) => {
            let checked = opts.check();
            let work = async {
                let sdk = collector::aws::sdk_config(&opts.aws).await;
                let table = collector::aws::DynamoKeys::new(
                    aws_sdk_dynamodb::Client::new(&sdk),
                    opts.table.clone().unwrap_or_default(),
                );
                collector::run_audit(&opts, &table).await
            };
            aws_command(checked, work, |audit| {
                eprintln!("collector: {}", collector::audit::summary(&audit));
                ExitCode::from(if audit.complete() { 0 } else { 3 })
            })
        }
        Command::Wait(mut wait) => {
            let checked = wait.check();
            let work = async {
                let sdk = collector::aws::sdk_config(&wait.aws).await;
                let api = collector::aws::CloudWatch::new(aws_sdk_cloudwatch::Client::new(&sdk));
                collector::run_wait(&wait, api, collector::epoch_ms()).await
            };
            aws_command(checked, work, |waited| {
                eprintln!("collector: {}", waited.message);
                eprint!("{}", collector::thresholds::render(&waited.thresholds));
                ExitCode::from(waited.exit_code())
            })
        }
    }
}

/// Runs a command that calls AWS: a failed check is exit 2; then `work` until it ends or Ctrl-C
/// (exit 130), an error one line on stderr (exit 1), and `done` says what its result means.
fn aws_command<T>(
    checked: Result<(), String>,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    done: impl FnOnce(T) -> ExitCode,
) -> ExitCode {
    if let Err(reason) = checked {
        eprintln!("collector: {reason}");
        return ExitCode::from(2);
    }
    let Some(runtime) = runtime() else {
        return ExitCode::from(1);
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = work => result.map(Some),
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    });
    match result {
        Ok(Some(value)) => done(value),
        Ok(None) => {
            eprintln!("collector: interrupted");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("collector: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The runtime the AWS commands run on; says why when it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("collector: starting the runtime: {e}"))
        .ok()
}
