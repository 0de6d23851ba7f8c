//! `loadgen`: parse, run, print, exit (`contract::cli::Exit`: 0 passed, 99 a threshold crossed,
//! 105 cut short by a signal, 2 bad flags, 1 error). `loadgen merge` adds up a distributed
//! run's run files.

use std::io::Write;
use std::process::ExitCode;

use contract::cli::Exit;
use loadgen::opts::{Cli, Command, MergeOpts, Opts};

fn main() -> ExitCode {
    let cli = match contract::cli::parse::<Cli>("loadgen") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Some(Command::Merge(opts)) => merge(&opts),
        None => run(cli.run),
    }
}

/// A run: until its schedule ends, or the first Ctrl-C or SIGTERM (then no new iterations; a
/// second abandons the requests in flight). Either way the summary is printed and the export
/// written.
fn run(opts: Opts) -> ExitCode {
    let config = match opts.into_config(|var| std::env::var(var).ok(), loadgen::epoch_ms()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return Exit::BadInput.into();
        }
    };
    let runtime = match contract::cli::runtime("loadgen", Some(config.threads)) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let (json, mode) = (config.json, config.reports.mode);
    let stop = loadgen::Stop::new();
    let signal = stop.clone();
    let result = runtime.block_on(async move {
        tokio::spawn(async move {
            use tokio::signal::unix::{signal as unix_signal, SignalKind};
            let mut term = unix_signal(SignalKind::terminate()).ok();
            loop {
                let terminated = async {
                    match term.as_mut() {
                        Some(term) => term.recv().await,
                        None => std::future::pending().await,
                    }
                };
                let name = tokio::select! {
                    result = tokio::signal::ctrl_c() => match result {
                        Ok(()) => "SIGINT (interrupt)",
                        Err(_) => break,
                    },
                    _ = terminated => "SIGTERM (terminated)",
                };
                signal.request_because(format!("loadgen received {name}"));
            }
        });
        #[cfg(feature = "lambda")]
        if config.lambda.is_some() {
            // The workers run remotely: Ctrl-C stops waiting for them, not them.
            return loadgen::fanout::run(&config).await;
        }
        loadgen::run(config, stop)
            .await
            .map(|summary| (summary, Vec::<String>::new()))
    });
    match result {
        Ok((summary, failures)) if !failures.is_empty() => {
            let code = report("loadgen", Ok(summary), json, mode);
            for failure in failures {
                eprintln!("loadgen: {failure}");
            }
            // A partial run is an error, unless something worse is to be said.
            if code == Exit::Success {
                Exit::Error.into()
            } else {
                code.into()
            }
        }
        result => report("loadgen", result.map(|(summary, _)| summary), json, mode).into(),
    }
}

/// `loadgen merge FILE...`: the whole run from its workers' run files.
fn merge(opts: &MergeOpts) -> ExitCode {
    match loadgen::merge_files(opts) {
        Err(e) if e.downcast_ref::<loadgen::error::ConfigError>().is_some() => {
            eprintln!("loadgen merge: {e:#}");
            Exit::BadInput.into()
        }
        result => report("loadgen merge", result, opts.json, opts.summary_mode).into(),
    }
}

/// Prints the summary (or with `json`, the run file) and says what the exit code is: 0 passed,
/// 99 a threshold crossed, 105 cut short by a signal (k6's code for an aborted run), 1 an
/// error.
fn report(
    program: &str,
    result: anyhow::Result<loadgen::Summary>,
    json: bool,
    mode: loadgen::SummaryMode,
) -> Exit {
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("{program}: {e:#}");
            return Exit::Error;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let written = if json {
        writeln!(stdout, "{}", summary.run_file().to_json())
    } else {
        summary.render(mode, &mut stdout)
    };
    // A closed pipe (`| head`) is not an error.
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("{program}: writing the summary: {e}");
            return Exit::Error;
        }
    }
    if !summary.unwritten.is_empty() {
        for line in &summary.unwritten {
            eprintln!("{program}: {line}: not written; the summary above is the run's");
        }
        return Exit::Error;
    }
    if let Some(why) = &summary.aborted {
        eprintln!("{program}: the run was aborted: {why}");
        Exit::Aborted
    } else if summary.passed() {
        Exit::Success
    } else {
        eprintln!("{program}: some thresholds have been crossed");
        Exit::ThresholdCrossed
    }
}
