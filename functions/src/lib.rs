//! The pipeline's three Lambda functions. Handler logic lives here as plain async methods over
//! small traits ([`sinks`]), so that it is tested with fakes; the binaries in `src/bin/` only wire
//! the runtime, the configuration and the SDK clients ([`aws`]).
//!
//! # Layout
//! - [`upstream`]: API Gateway proxy event → validated request → Kinesis record.
//! - [`midstream`]: Kinesis batch → DynamoDB items (BatchWriteItem), partial batch failures.
//! - [`downstream`]: DynamoDB stream batch → latency metrics in CloudWatch, partial batch failures.
//! - [`sinks`]: the traits the handlers write through.
//! - [`metrics`]: metric aggregation (Values/Counts) and PutMetricData request planning.
//! - [`aws`]: the SDK adapters and the shared SDK configuration.
//! - [`events`]: the Kinesis and DynamoDB stream events, with their arrival times read exactly.
//! - [`config`]: each function's environment, read once per cold start.
//! - [`error`]: configuration and dependency errors.
//! - [`whatif`]: the sandbox's `--burn`, CPU time spent in each invocation.

pub mod aws;
pub mod config;
pub mod downstream;
pub mod error;
pub mod events;
pub mod metrics;
pub mod midstream;
pub mod sinks;
pub mod upstream;
pub mod whatif;

/// A source of the current time, epoch milliseconds; [`system_clock`] outside tests.
pub type Clock = fn() -> i64;

/// The system clock, epoch milliseconds.
pub use contract::epoch_ms as system_clock;

/// Unwraps a function's configuration at cold start, or logs why it is incomplete and exits with
/// status 1 (Lambda then reports the init failure with this log line).
pub fn exit_on_config_error<T>(config: Result<T, error::ConfigError>) -> T {
    config.unwrap_or_else(|error| {
        tracing::error!(%error, "configuration incomplete");
        eprintln!("configuration incomplete: {error}");
        std::process::exit(1)
    })
}
