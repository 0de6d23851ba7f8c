//! `collector`: parse, run, print, exit (`contract::cli::Exit`: 0 done, 3 drained short /
//! over-counted / timed out / lost, 99 a threshold or gate crossed, 2 bad flags or refused
//! input, 1 error, 130 Ctrl-C).

use std::io::Write;
use std::process::ExitCode;

use collector::opts::{Command, Opts};
use contract::cli::Exit;

const PROGRAM: &str = "collector";

fn main() -> ExitCode {
    let opts = match contract::cli::parse::<Opts>(PROGRAM) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    match opts.command {
        Command::Stats(stats) => printed(collector::run_stats(&stats)),
        Command::Compare(compare) => printed(collector::run_compare(&compare)),
        Command::Report(report) => match collector::run_report(&report) {
            Ok(message) => {
                eprintln!("{PROGRAM}: {message}");
                Exit::Success.into()
            }
            Err(e) => failed(e),
        },
        Command::Audit(opts) => {
            let config = match opts.into_config() {
                Ok(config) => config,
                Err(reason) => return refused(&reason),
            };
            let work = async {
                let sdk = collector::aws::sdk_config(&config.aws).await;
                let table = collector::aws::DynamoKeys::new(
                    aws_sdk_dynamodb::Client::new(&sdk),
                    config.table.clone(),
                );
                collector::run_audit(&config, &table).await
            };
            aws_command(work, |audit| {
                eprintln!("{PROGRAM}: {}", audit.summary());
                if audit.complete() {
                    Exit::Success
                } else {
                    Exit::NotComplete
                }
            })
        }
        Command::Wait(opts) => {
            let config = match opts.into_config() {
                Ok(config) => config,
                Err(reason) => return refused(&reason),
            };
            let work = async {
                let sdk = collector::aws::sdk_config(&config.aws).await;
                let api = collector::aws::CloudWatch::new(aws_sdk_cloudwatch::Client::new(&sdk));
                collector::run_wait(&config, api, collector::epoch_ms()).await
            };
            aws_command(work, |waited| {
                eprintln!("{PROGRAM}: {}", waited.message);
                eprint!("{}", contract::threshold::render(&waited.thresholds));
                waited.exit()
            })
        }
    }
}

/// A command whose result is text for stdout and whether its thresholds or gates held.
fn printed(result: anyhow::Result<(String, bool)>) -> ExitCode {
    match result {
        Ok((text, passed)) => {
            // A closed pipe (`| head`) is not an error.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            if passed {
                Exit::Success.into()
            } else {
                Exit::ThresholdCrossed.into()
            }
        }
        Err(e) => failed(e),
    }
}

/// An error on one line: exit 2 for input the command refuses to judge, 1 otherwise.
fn failed(error: anyhow::Error) -> ExitCode {
    eprintln!("{PROGRAM}: {error:#}");
    if error.is::<collector::Refused>() {
        Exit::BadInput.into()
    } else {
        Exit::Error.into()
    }
}

/// Flags that did not validate: one line, exit 2.
fn refused(reason: &str) -> ExitCode {
    eprintln!("{PROGRAM}: {reason}");
    Exit::BadInput.into()
}

/// Runs a command that calls AWS: `work` until it ends or Ctrl-C (exit 130), an error one line
/// on stderr, and `done` says what its result means.
fn aws_command<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    done: impl FnOnce(T) -> Exit,
) -> ExitCode {
    let runtime = match contract::cli::runtime(PROGRAM, None) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = work => result.map(Some),
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    });
    match result {
        Ok(Some(value)) => done(value).into(),
        Ok(None) => {
            eprintln!("{PROGRAM}: interrupted");
            Exit::Interrupted.into()
        }
        Err(e) => failed(e),
    }
}
