//! `loadgen-worker`: loadgen as an AWS Lambda function, the worker `loadgen --lambda N` invokes.
//! The event is `{"args": [...]}`, loadgen's flags as the coordinator gives them (the URL, the
//! load, the run id, this worker's `--segment` and the shared `--start-at`); the answer is the
//! run file (`contract::runfile`). A run that would not end before the invocation's deadline is
//! refused before it starts, and so are flags that write files or fan out again.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;

use loadgen::opts::Opts;

/// What the coordinator sends.
#[derive(Debug, Deserialize)]
struct Event {
    args: Vec<String>,
}

/// Time kept free at the end of the invocation, after the run, to answer.
const MARGIN_MS: i64 = 2_000;

async fn handle(event: LambdaEvent<Event>) -> Result<contract::runfile::RunFile, Error> {
    let mut argv = vec!["loadgen".to_owned()];
    argv.extend(event.payload.args);
    argv.push("--quiet".to_owned());
    let opts = <Opts as clap::Parser>::try_parse_from(argv).map_err(|e| {
        e.render()
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    })?;
    if opts.summary_export.is_some() || opts.lambda.is_some() {
        return Err(
            "a worker neither writes files nor fans out (--summary-export, --lambda)".into(),
        );
    }
    let now = loadgen::epoch_ms();
    let config = opts.into_config(|_| None, now)?;
    let start = config.start_at_ms.unwrap_or(now).max(now);
    let planned = (config.executor.duration() + config.graceful_stop).as_millis() as i64;
    let deadline = event.context.deadline as i64;
    if start + planned + MARGIN_MS > deadline {
        return Err(format!(
            "the run needs {} s from its start, the invocation has {} s left",
            (start - now + planned + MARGIN_MS) / 1000,
            (deadline - now).max(0) / 1000
        )
        .into());
    }
    let summary = loadgen::run(config, loadgen::Stop::new()).await?;
    Ok(summary.run_file())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
