//! `collector`: parse, run, print, exit (0 done, 3 drained short / timed out, 2 bad flags, 1 error).

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
            Ok(text) => {
                // A closed pipe (`| head`) is not an error.
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("collector: {e:#}");
                ExitCode::from(1)
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
        Command::Wait(wait) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("collector: starting the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            let result = runtime.block_on(async {
                let sdk = collector::aws::sdk_config(&wait.aws).await;
                let api = collector::aws::CloudWatch::new(aws_sdk_cloudwatch::Client::new(&sdk));
                tokio::select! {
                    result = collector::run_wait(&wait, api, collector::epoch_ms()) => result.map(Some),
                    _ = tokio::signal::ctrl_c() => Ok(None),
                }
            });
            match result {
                Ok(Some((outcome, message))) => {
                    eprintln!("collector: {message}");
                    ExitCode::from(collector::wait_exit_code(&outcome))
                }
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
    }
}
