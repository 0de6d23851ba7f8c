//! Metric data as the functions build it: aggregated into Values/Counts per metric, then planned
//! into PutMetricData requests that stay within the API's limits.

use std::collections::BTreeMap;

use contract::metrics::STORAGE_RESOLUTION_S;

/// Most distinct values one metric may carry in one PutMetricData request.
pub const MAX_VALUES_PER_METRIC: usize = 150;
/// Most metric data one PutMetricData request may carry.
pub const MAX_DATA_PER_REQUEST: usize = 1000;
/// Size budget of one request, bytes, kept well under the API's 1 MB.
pub const MAX_REQUEST_BYTES: usize = 800_000;

/// A metric's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// Latencies.
    Milliseconds,
    /// Counts of records.
    Count,
}

/// One metric datum: a metric, its dimensions, and the distinct values seen with their counts.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDatum {
    /// Metric name.
    pub name: &'static str,
    /// `(name, value)` pairs, in a stable order.
    pub dimensions: Vec<(&'static str, String)>,
    /// Unit of the values.
    pub unit: Unit,
    /// Distinct values.
    pub values: Vec<f64>,
    /// How often each value occurred (same length as `values`).
    pub counts: Vec<f64>,
    /// When the values were observed, epoch ms.
    pub timestamp_ms: i64,
    /// Storage resolution, seconds.
    pub storage_resolution_s: i32,
}

impl MetricDatum {
    /// Number of samples the datum stands for.
    pub fn sample_count(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// A generous estimate of the datum's encoded size, bytes.
    fn estimated_bytes(&self) -> usize {
        let dims: usize = self
            .dimensions
            .iter()
            .map(|(k, v)| k.len() + v.len() + 32)
            .sum();
        96 + self.name.len() + dims + 24 * self.values.len()
    }
}

type MetricKey = (&'static str, Vec<(&'static str, String)>, Unit);

/// Aggregates observations into one datum per metric and dimension set.
#[derive(Debug, Default)]
pub struct MetricBatch {
    metrics: BTreeMap<MetricKey, BTreeMap<i64, u64>>,
}

impl MetricBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `value` once for `name` with `dimensions`.
    pub fn add(
        &mut self,
        name: &'static str,
        unit: Unit,
        dimensions: &[(&'static str, &str)],
        value: i64,
    ) {
        self.add_n(name, unit, dimensions, value, 1);
    }

    /// Counts `value` `n` times.
    pub fn add_n(
        &mut self,
        name: &'static str,
        unit: Unit,
        dimensions: &[(&'static str, &str)],
        value: i64,
        n: u64,
    ) {
        let dims = dimensions.iter().map(|&(k, v)| (k, v.to_owned())).collect();
        *self
            .metrics
            .entry((name, dims, unit))
            .or_default()
            .entry(value)
            .or_insert(0) += n;
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The data, one datum per metric and dimension set, stamped `timestamp_ms`.
    pub fn into_data(self, timestamp_ms: i64) -> Vec<MetricDatum> {
        self.metrics
            .into_iter()
            .map(|((name, dimensions, unit), values)| MetricDatum {
                name,
                dimensions,
                unit,
                values: values.keys().map(|&v| v as f64).collect(),
                counts: values.values().map(|&c| c as f64).collect(),
                timestamp_ms,
                storage_resolution_s: STORAGE_RESOLUTION_S,
            })
            .collect()
    }
}

/// Splits data into PutMetricData requests within the API's limits: at most
/// [`MAX_VALUES_PER_METRIC`] values of a metric per request (a metric with more is spread over
/// several requests), at most [`MAX_DATA_PER_REQUEST`] data and about [`MAX_REQUEST_BYTES`] each.
pub fn plan_requests(data: Vec<MetricDatum>) -> Vec<Vec<MetricDatum>> {
    // Round k takes the k-th slice of every metric, so no request holds a metric twice.
    let mut rounds: Vec<Vec<MetricDatum>> = Vec::new();
    for datum in data {
        let slices = datum.values.len().div_ceil(MAX_VALUES_PER_METRIC).max(1);
        for k in 0..slices {
            let range = k * MAX_VALUES_PER_METRIC
                ..((k + 1) * MAX_VALUES_PER_METRIC).min(datum.values.len());
            let slice = MetricDatum {
                values: datum.values[range.clone()].to_vec(),
                counts: datum.counts[range].to_vec(),
                dimensions: datum.dimensions.clone(),
                ..datum.clone()
            };
            if rounds.len() <= k {
                rounds.push(Vec::new());
            }
            rounds[k].push(slice);
        }
    }
    let mut requests = Vec::new();
    for round in rounds {
        let mut current: Vec<MetricDatum> = Vec::new();
        let mut bytes = 0;
        for datum in round {
            let size = datum.estimated_bytes();
            if !current.is_empty()
                && (current.len() == MAX_DATA_PER_REQUEST || bytes + size > MAX_REQUEST_BYTES)
            {
                requests.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push(datum);
        }
        if !current.is_empty() {
            requests.push(current);
        }
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_distinct_values_with_counts() {
        let mut batch = MetricBatch::new();
        for v in [5, 3, 5, 5] {
            batch.add("Latency", Unit::Milliseconds, &[("RunId", "r")], v);
        }
        batch.add("Latency", Unit::Milliseconds, &[], 7);
        let data = batch.into_data(42);
        assert_eq!(data.len(), 2);
        let with_run = data.iter().find(|d| !d.dimensions.is_empty()).unwrap();
        assert_eq!(with_run.values, [3.0, 5.0]);
        assert_eq!(with_run.counts, [1.0, 3.0]);
        assert_eq!(with_run.sample_count(), 4.0);
        assert_eq!(
            (with_run.timestamp_ms, with_run.storage_resolution_s),
            (42, 1)
        );
    }

    #[test]
    fn plans_requests_within_every_limit_and_loses_nothing() {
        let mut batch = MetricBatch::new();
        for v in 0..400 {
            batch.add("Latency", Unit::Milliseconds, &[("RunId", "big")], v);
        }
        for m in 0..1500 {
            batch.add(
                "LatencyBucket",
                Unit::Milliseconds,
                &[("Bucket", &m.to_string())],
                m,
            );
        }
        let data = batch.into_data(0);
        let total: f64 = data.iter().map(MetricDatum::sample_count).sum();
        let requests = plan_requests(data);
        let mut planned = 0.0;
        for request in &requests {
            assert!(request.len() <= MAX_DATA_PER_REQUEST);
            let mut seen = std::collections::HashSet::new();
            for datum in request {
                assert!(datum.values.len() <= MAX_VALUES_PER_METRIC);
                assert_eq!(datum.values.len(), datum.counts.len());
                assert!(
                    seen.insert((datum.name, datum.dimensions.clone())),
                    "metric twice in one request"
                );
                planned += datum.sample_count();
            }
        }
        assert_eq!(planned, total);
        // Round 1: 1,501 data in 2 requests; 400 values of one metric need 2 more rounds.
        assert_eq!(requests.len(), 4);
        assert_eq!(requests.iter().map(Vec::len).sum::<usize>(), 1503);
    }

    #[test]
    fn an_empty_batch_plans_no_request() {
        assert!(plan_requests(MetricBatch::new().into_data(0)).is_empty());
    }
}
