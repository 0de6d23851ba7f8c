//! `loadgen`: parse, run, print, exit (0 passed, 99 a threshold crossed, 2 bad flags, 1 error).

use std::io::Write;
use std::process::ExitCode;

use loadgen::opts::{MergeOpts, Opts};

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "merge") {
        return merge();
    }
    let opts = match contract::cli::parse::<Opts>("loadgen") {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let config = match opts.into_config(|var| std::env::var(var).ok(), loadgen::epoch_ms()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = config.json;
    let stop = loadgen::Stop::new();
    let signal = stop.clone();
    let result = runtime.block_on(async move {
        // First Ctrl-C or SIGTERM: no new iterations; second: abandon requests in flight.
        // Either way the summary is printed and the export written.
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
            let code = report("loadgen", Ok(summary), json);
            for failure in failures {
                eprintln!("loadgen: {failure}");
            }
            if code == ExitCode::SUCCESS {
                ExitCode::from(1)
            } else {
                code
            }
        }
        result => report("loadgen", result.map(|(summary, _)| summary), json),
    }
}

/// `loadgen merge FILE...`: the whole run from its workers' run files.
fn merge() -> ExitCode {
    let opts = match contract::cli::parse_from::<MergeOpts>(
        "loadgen merge",
        std::env::args_os().skip(1),
    ) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    match loadgen::merge_files(&opts) {
        Err(e) if e.downcast_ref::<loadgen::error::ConfigError>().is_some() => {
            eprintln!("loadgen merge: {e:#}");
            ExitCode::from(2)
        }
        result => report("loadgen merge", result, opts.json),
    }
}

/// Prints the summary (or with `json`, the run file) and says what the exit code is: 0 passed,
/// 99 a threshold crossed, 105 cut short by a signal (k6's code for an aborted run), 1 an
/// error.
fn report(program: &str, result: anyhow::Result<loadgen::Summary>, json: bool) -> ExitCode {
    match result {
        Ok(summary) => {
            let mut stdout = std::io::stdout().lock();
            let written = if json {
                writeln!(stdout, "{}", summary.run_file().to_json())
            } else {
                summary.render(&mut stdout)
            };
            // A closed pipe (`| head`) is not an error.
            if let Err(e) = written {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("{program}: writing the summary: {e}");
                    return ExitCode::from(1);
                }
            }
            if let Some(why) = &summary.aborted {
                eprintln!("{program}: the run was aborted: {why}");
                ExitCode::from(105)
            } else if summary.passed() {
                ExitCode::SUCCESS
            } else {
                eprintln!("{program}: some thresholds have been crossed");
                ExitCode::from(99)
            }
        }
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::from(1)
        }
    }
}
