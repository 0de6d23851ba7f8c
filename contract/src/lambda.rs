//! The pipeline as AWS users see it: Lambda's own metrics per function, the names both the
//! sandbox (which publishes them) and the collector (which reads them) use, and the view of a
//! run the export carries.
//!
//! `AWS/Lambda` is the namespace Lambda publishes in on AWS, one dimension `FunctionName`:
//! `Invocations`, `Errors`, `Throttles` (counts, Sum), `Duration` (ms, percentiles),
//! `ConcurrentExecutions` (Maximum) and, for functions behind an event source mapping,
//! `IteratorAge` (ms: when the batch was handed to the function, minus when its last record
//! reached the stream). Cold starts and memory are not in `AWS/Lambda`: AWS has them in the
//! `LambdaInsights` namespace (dimension `function_name`) when Lambda Insights is enabled,
//! `init_duration` (ms, one sample per cold start), `used_memory_max` and `total_memory` (MB). The sandbox
//! publishes both namespaces, once a second.

use serde::{Deserialize, Serialize};

/// The sandbox's what-if in a function's environment: each invocation spends this many
/// microseconds of CPU time in its handler (`sandbox up --burn`; absent on AWS).
pub const BURN_VAR: &str = "SANDBOX_BURN_US";

/// The sandbox's what-if in a function's environment: each invocation keeps this many bytes
/// more for as long as its process lives, a leak (`sandbox up --leak`; absent on AWS).
pub const LEAK_VAR: &str = "SANDBOX_LEAK_BYTES";

/// Lambda's namespace.
pub const NAMESPACE: &str = "AWS/Lambda";
/// Its one dimension.
pub const DIM_FUNCTION_NAME: &str = "FunctionName";
/// Invocations, Sum.
pub const INVOCATIONS: &str = "Invocations";
/// Invocations that ended in an error (a function error, a timeout, a crash), Sum.
pub const ERRORS: &str = "Errors";
/// Invocations refused for lack of concurrency, Sum.
pub const THROTTLES: &str = "Throttles";
/// Each invocation's duration, ms.
pub const DURATION: &str = "Duration";
/// Invocations in flight at once, Maximum.
pub const CONCURRENT_EXECUTIONS: &str = "ConcurrentExecutions";
/// The age of the last record of each batch an event source mapping delivered, ms.
pub const ITERATOR_AGE: &str = "IteratorAge";

/// Lambda Insights' namespace.
pub const INSIGHTS_NAMESPACE: &str = "LambdaInsights";
/// Its function dimension.
pub const INSIGHTS_DIM_FUNCTION_NAME: &str = "function_name";
/// Init duration of each cold start, ms.
pub const INIT_DURATION: &str = "init_duration";
/// The execution environment's peak memory, MB.
pub const USED_MEMORY_MAX: &str = "used_memory_max";
/// The function's configured memory, MB.
pub const TOTAL_MEMORY: &str = "total_memory";

/// The three functions' roles, in the pipeline's order, with the stack output naming each.
pub const ROLES: [(&str, &str); 3] = [
    ("upstream", crate::outputs::key::UPSTREAM_FUNCTION),
    ("midstream", crate::outputs::key::MIDSTREAM_FUNCTION),
    ("downstream", crate::outputs::key::DOWNSTREAM_FUNCTION),
];

/// Lambda's billed duration: the duration, plus the init duration on a cold start (the init of
/// a function on an OS-only runtime is billed), rounded up to the millisecond.
pub fn billed_ms(duration_ms: f64, init_ms: Option<f64>) -> u64 {
    (duration_ms + init_ms.unwrap_or(0.0)).max(0.0).ceil() as u64
}

/// What Lambda's metrics say about the run's window (export version 4 on).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LambdaView {
    /// Why there are no rows, when there are none (no function names, no data in the window,
    /// the call failed): tables say "not available" with this, never zeros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// One row per function, in the pipeline's order.
    #[serde(default)]
    pub functions: Vec<FunctionMetrics>,
}

/// One function over the window. A `None` is a number the window has no data for (Lambda
/// Insights off, a function without a mapping).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FunctionMetrics {
    /// `upstream`, `midstream` or `downstream`.
    pub role: String,
    /// The function's name.
    pub name: String,
    /// Sum of `Invocations`.
    pub invocations: u64,
    /// Sum of `Errors`.
    pub errors: u64,
    /// Sum of `Throttles`.
    pub throttles: u64,
    /// `Duration` p50 over the window, ms.
    pub duration_p50_ms: Option<f64>,
    /// `Duration` p99 over the window, ms.
    pub duration_p99_ms: Option<f64>,
    /// `Duration` maximum, ms.
    pub duration_max_ms: Option<f64>,
    /// Sum of `Duration`, ms (what the bill's GB-seconds are made of, before rounding).
    pub duration_sum_ms: Option<f64>,
    /// `ConcurrentExecutions` maximum.
    pub concurrency_max: Option<f64>,
    /// Cold starts: SampleCount of `init_duration`.
    pub cold_starts: Option<u64>,
    /// Their mean init duration, ms.
    pub init_avg_ms: Option<f64>,
    /// Their longest, ms.
    pub init_max_ms: Option<f64>,
    /// `used_memory_max` maximum, MB.
    pub memory_max_mb: Option<f64>,
    /// `total_memory` maximum: the configured memory size, MB.
    #[serde(default)]
    pub memory_size_mb: Option<f64>,
    /// `IteratorAge` maximum, ms.
    pub iterator_age_max_ms: Option<f64>,
    /// `IteratorAge` maximum per period, `[epoch ms, ms]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iterator_age: Vec<(i64, f64)>,
}

impl FunctionMetrics {
    /// Billed GB-seconds: each invocation's duration rounded up to the ms (half a ms more on
    /// average), plus the cold starts' init, times the memory size (the stack's 256 MB when
    /// the metrics do not say).
    pub fn billed_gb_seconds(&self) -> f64 {
        let billed_ms = self.duration_sum_ms.unwrap_or(0.0)
            + 0.5 * self.invocations as f64
            + self.init_avg_ms.unwrap_or(0.0) * self.cold_starts.unwrap_or(0) as f64;
        billed_ms / 1000.0 * self.memory_size_mb.unwrap_or(DEFAULT_MEMORY_MB) / 1024.0
    }
}

/// The functions' memory size when Lambda's metrics do not say (the stack deploys 256 MB).
pub const DEFAULT_MEMORY_MB: f64 = 256.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billed_duration_is_rounded_up_and_counts_the_init() {
        assert_eq!(billed_ms(12.01, None), 13);
        assert_eq!(billed_ms(12.0, None), 12);
        assert_eq!(billed_ms(0.2, Some(10.5)), 11);
        assert_eq!(billed_ms(-1.0, None), 0);
    }

    #[test]
    fn a_view_without_data_says_why() {
        let view = LambdaView {
            unavailable: Some("no function names".into()),
            functions: vec![],
        };
        let json = serde_json::to_string(&view).unwrap();
        assert_eq!(serde_json::from_str::<LambdaView>(&json).unwrap(), view);
        assert_eq!(
            serde_json::from_str::<LambdaView>("{}").unwrap(),
            LambdaView::default()
        );
    }
}
