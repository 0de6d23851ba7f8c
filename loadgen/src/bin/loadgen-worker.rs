//! `loadgen-worker`: loadgen as an AWS Lambda function, the worker `loadgen --lambda N` invokes.
//! The event is the run's configuration as data (`loadgen::fanout::WorkerEvent`: the URL, the
//! load, the run id, this worker's segment and the shared start, every setting as it is); the
//! answer is the run file (`contract::runfile`). Refused before they start: an event of another
//! version, a run that would not end before the invocation's deadline, a worker invoked more
//! than [`LATE_MS`] after the shared start (its share would run out of step with the others',
//! and the merged run would claim a rate it never offered), and a configuration that writes
//! files or fans out again.

use lambda_runtime::{service_fn, Error, LambdaEvent};

use loadgen::fanout::{WorkerEvent, WORKER_EVENT_VERSION};

/// Time kept free at the end of the invocation, after the run, to answer.
const MARGIN_MS: i64 = 2_000;

/// How late after `--start-at` a worker may still start.
const LATE_MS: i64 = 1_000;

/// Whether a run of `planned` ms, to start at `start_at` (epoch ms), may start `now` in an
/// invocation that ends at `deadline`.
fn timing(start_at: Option<i64>, now: i64, planned: i64, deadline: i64) -> Result<(), String> {
    if let Some(at) = start_at.filter(|at| now > at + LATE_MS) {
        return Err(format!(
            "invoked {} ms after the shared --start-at: its share would run out of step with \
             the other workers' (a concurrency limit, or a slow start)",
            now - at
        ));
    }
    let start = start_at.unwrap_or(now).max(now);
    if start + planned + MARGIN_MS > deadline {
        return Err(format!(
            "the run needs {} s from its start, the invocation has {} s left",
            (start - now + planned + MARGIN_MS) / 1000,
            (deadline - now).max(0) / 1000
        ));
    }
    Ok(())
}

async fn handle(event: LambdaEvent<WorkerEvent>) -> Result<contract::runfile::RunFile, Error> {
    let WorkerEvent { version, config } = event.payload;
    if version != WORKER_EVENT_VERSION {
        return Err(format!(
            "an event of version {version}: this worker reads version {WORKER_EVENT_VERSION} \
             (deploy the worker built with the loadgen that invokes it)"
        )
        .into());
    }
    if config.summary_export.is_some() || config.lambda.is_some() {
        return Err("a worker neither writes files nor fans out".into());
    }
    let now = loadgen::epoch_ms();
    let planned = (config.executor.duration() + config.graceful_stop).as_millis() as i64;
    timing(
        config.start_at_ms,
        now,
        planned,
        event.context.deadline as i64,
    )?;
    let summary = loadgen::run(config, loadgen::Stop::new()).await?;
    Ok(summary.run_file())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}

#[cfg(test)]
mod tests {
    use super::timing;

    #[test]
    fn a_late_or_too_long_run_is_refused_before_it_starts() {
        let (now, minute) = (1_000_000, 60_000);
        // On time, or a little late: runs.
        assert_eq!(
            timing(Some(now + 3_000), now, minute, now + 15 * minute),
            Ok(())
        );
        assert_eq!(
            timing(Some(now - 1_000), now, minute, now + 15 * minute),
            Ok(())
        );
        assert_eq!(timing(None, now, minute, now + 15 * minute), Ok(()));
        // Queued behind another worker: refused, said how late.
        let late = timing(Some(now - 8_000), now, minute, now + 15 * minute).unwrap_err();
        assert!(
            late.starts_with("invoked 8000 ms after the shared --start-at"),
            "{late}"
        );
        // Past the invocation's deadline.
        let long = timing(Some(now), now, 15 * minute, now + 15 * minute).unwrap_err();
        assert_eq!(
            long,
            "the run needs 902 s from its start, the invocation has 900 s left"
        );
    }
}
