//! Lambda's own metrics into the emulator's CloudWatch, as Lambda publishes them on AWS: per
//! function (`FunctionName`), in `AWS/Lambda` (`Invocations`, `Errors`, `Throttles`,
//! `Duration`, `ConcurrentExecutions`, `IteratorAge`) and `LambdaInsights` (`init_duration`,
//! `used_memory_max`, `total_memory`), so that the same queries work here and on AWS.
//!
//! AWS keeps them by the minute; here each second's tally is published at the end of that
//! second, in one `PutMetricData` call per namespace for all functions (not one per
//! invocation), so that a 60 s run shows detail without slowing moto down. Durations go as
//! CloudWatch's values and counts, so that CloudWatch's own percentiles (`p99`) work on them.
//! `Throttles` counts invocations refused by a concurrency limit, which only the aws profile
//! keeps (in the default profile an invocation waits for a worker, and `Throttles` is 0).
//!
//! In the aws profile, what the quotas refused goes out the same way, under the metrics AWS
//! publishes it as ([`crate::quota::counts`]): `AWS/Kinesis`, `AWS/DynamoDB`,
//! `AWS/ApiGateway`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use contract::lambda::{
    CONCURRENT_EXECUTIONS, DIM_FUNCTION_NAME, DURATION, ERRORS, INIT_DURATION,
    INSIGHTS_DIM_FUNCTION_NAME, INSIGHTS_NAMESPACE, INVOCATIONS, ITERATOR_AGE, NAMESPACE,
    THROTTLES, TOTAL_MEMORY, USED_MEMORY_MAX,
};
use serde_json::{json, Value};

use crate::awsjson::AwsJson;
use crate::lambda::telemetry::Tally;
use crate::lambda::{FunctionHost, LogSink};
use crate::quota::counts::Counted;
use crate::quota::Limits;
use crate::Shutdown;

/// How often the tallies are published.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Most values one datum carries (CloudWatch's limit on `Values`).
const MAX_VALUES: usize = 150;
/// Most datums one call carries (CloudWatch's limit).
const MAX_DATUMS: usize = 1000;

/// Publishes each function's tally every [`INTERVAL`] until `stopping`, then once more (what
/// the last second did).
pub async fn publish_lambda_metrics(
    api: AwsJson,
    hosts: Vec<Arc<FunctionHost>>,
    quotas: Option<Arc<Limits>>,
    logs: LogSink,
    mut stopping: Shutdown,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut failures = 0u64;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stopping.stopped() => true,
        };
        let timestamp_s = contract::epoch_ms() as f64 / 1000.0;
        let tallies: Vec<(String, Tally)> = hosts
            .iter()
            .map(|h| (h.name().to_owned(), h.telemetry().take()))
            .collect();
        let mut all = datums(&tallies, timestamp_s);
        if let Some(quotas) = &quotas {
            for (what, n) in quotas.counts.take() {
                all.entry(what.namespace)
                    .or_default()
                    .push(counted_datum(&what, n, timestamp_s));
            }
        }
        for (namespace, data) in all {
            for chunk in data.chunks(MAX_DATUMS) {
                let body = json!({"Namespace": namespace, "MetricData": chunk});
                let target = "GraniteServiceVersion20100801.PutMetricData";
                if let Err(error) = api.call("monitoring", target, &body).await {
                    failures += 1;
                    if failures == 1 || failures % 60 == 0 {
                        logs(
                            "sandbox",
                            &format!("Lambda's metrics not published ({failures} failed): {error}"),
                        );
                    }
                }
            }
        }
        if last {
            return;
        }
    }
}

/// The datums of one second's tallies, by namespace.
pub fn datums(tallies: &[(String, Tally)], timestamp_s: f64) -> BTreeMap<&'static str, Vec<Value>> {
    let mut out: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    for (name, tally) in tallies.iter().filter(|(_, t)| !t.is_empty()) {
        let lambda = [json!({"Name": DIM_FUNCTION_NAME, "Value": name})];
        let insights = [json!({"Name": INSIGHTS_DIM_FUNCTION_NAME, "Value": name})];
        let datum = |metric: &str, dims: &[Value], unit: &str| {
            json!({"MetricName": metric, "Dimensions": dims, "Timestamp": timestamp_s,
                   "Unit": unit, "StorageResolution": 1})
        };
        let one = |metric: &str, dims: &[Value], unit: &str, value: f64| {
            let mut d = datum(metric, dims, unit);
            d["Value"] = json!(value);
            d
        };
        let many = |metric: &str, dims: &[Value], unit: &str, values: &[f64]| {
            counted(values)
                .chunks(MAX_VALUES)
                .map(|chunk| {
                    let mut d = datum(metric, dims, unit);
                    d["Values"] = json!(chunk.iter().map(|(v, _)| v).collect::<Vec<_>>());
                    d["Counts"] = json!(chunk.iter().map(|(_, c)| c).collect::<Vec<_>>());
                    d
                })
                .collect::<Vec<_>>()
        };
        let data = out.entry(NAMESPACE).or_default();
        if tally.invocations > 0 || tally.throttles > 0 {
            data.push(one(INVOCATIONS, &lambda, "Count", tally.invocations as f64));
            data.push(one(ERRORS, &lambda, "Count", tally.errors as f64));
            data.push(one(THROTTLES, &lambda, "Count", tally.throttles as f64));
            data.extend(many(DURATION, &lambda, "Milliseconds", &tally.durations_ms));
        }
        if tally.concurrency_max > 0 {
            data.push(one(
                CONCURRENT_EXECUTIONS,
                &lambda,
                "Count",
                f64::from(tally.concurrency_max),
            ));
        }
        data.extend(many(
            ITERATOR_AGE,
            &lambda,
            "Milliseconds",
            &tally.iterator_age_ms,
        ));
        let data = out.entry(INSIGHTS_NAMESPACE).or_default();
        data.extend(many(
            INIT_DURATION,
            &insights,
            "Milliseconds",
            &tally.init_ms,
        ));
        if let Some(mb) = tally.memory_max_mb {
            data.push(one(USED_MEMORY_MAX, &insights, "Megabytes", mb as f64));
            data.push(one(
                TOTAL_MEMORY,
                &insights,
                "Megabytes",
                f64::from(tally.memory_size_mb),
            ));
        }
    }
    out.retain(|_, data| !data.is_empty());
    out
}

/// One second's count of what a quota refused, as a datum.
fn counted_datum(what: &Counted, n: f64, timestamp_s: f64) -> Value {
    let dimensions: Vec<Value> = what
        .dimensions
        .iter()
        .map(|(name, value)| json!({"Name": name, "Value": value}))
        .collect();
    json!({"MetricName": what.metric, "Dimensions": dimensions, "Timestamp": timestamp_s,
           "Unit": "Count", "StorageResolution": 1, "Value": n})
}

/// Values rounded to 0.01 (what `REPORT` shows) with how often each occurs, in order.
fn counted(values: &[f64]) -> Vec<(f64, u64)> {
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for v in values {
        *counts.entry((v * 100.0).round() as i64).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(v, c)| (v as f64 / 100.0, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_of_three_functions_fits_in_one_call_per_namespace() {
        let busy = Tally {
            invocations: 400,
            errors: 2,
            throttles: 5,
            durations_ms: (0..400).map(|i| f64::from(i) * 0.37).collect(),
            concurrency_max: 3,
            init_ms: vec![12.5],
            memory_max_mb: Some(17),
            iterator_age_ms: vec![30.0, 41.0],
            memory_size_mb: 256,
        };
        let tallies = vec![
            ("up".to_owned(), busy.clone()),
            ("mid".to_owned(), busy),
            ("idle".to_owned(), Tally::default()),
        ];
        let data = datums(&tallies, 1_800_000_000.0);
        let lambda = &data[NAMESPACE];
        let named = |metric: &str, function: &str| {
            lambda
                .iter()
                .filter(|d| d["MetricName"] == metric && d["Dimensions"][0]["Value"] == function)
                .collect::<Vec<_>>()
        };
        assert_eq!(named(INVOCATIONS, "up")[0]["Value"], 400.0);
        assert_eq!(named(ERRORS, "up")[0]["Value"], 2.0);
        assert_eq!(named(THROTTLES, "up")[0]["Value"], 5.0);
        assert!(named(INVOCATIONS, "idle").is_empty());
        // 400 distinct durations: in datums of at most 150 values, every one counted.
        let durations = named(DURATION, "mid");
        assert_eq!(durations.len(), 3);
        let counted: u64 = durations
            .iter()
            .flat_map(|d| d["Counts"].as_array().unwrap().iter())
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(counted, 400);
        assert_eq!(named(ITERATOR_AGE, "up")[0]["Values"], json!([30.0, 41.0]));
        let insights = &data[INSIGHTS_NAMESPACE];
        assert_eq!(insights.len(), 6);
        assert!(lambda.len() + insights.len() <= MAX_DATUMS);
        assert!(datums(&[("idle".to_owned(), Tally::default())], 0.0).is_empty());
    }

    #[test]
    fn equal_values_are_counted_once() {
        assert_eq!(counted(&[1.004, 1.0, 2.5, 1.001]), vec![(1.0, 3), (2.5, 1)]);
    }
}
