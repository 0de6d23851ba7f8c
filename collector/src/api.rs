//! The one CloudWatch call the collector needs, as a small trait: GetMetricData, one page at a
//! time. [`crate::aws`] implements it over the SDK; tests implement it with fakes that enforce
//! the API's limits.

use std::future::Future;

/// A statistic of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stat {
    /// Number of samples.
    SampleCount,
    /// Sum of the samples.
    Sum,
    /// Smallest sample.
    Minimum,
    /// Largest sample.
    Maximum,
    /// Mean of the samples.
    Average,
    /// The median (CloudWatch's `p50`: computed by CloudWatch from the published values).
    P50,
    /// The 99th percentile (`p99`).
    P99,
}

impl Stat {
    /// CloudWatch's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stat::SampleCount => "SampleCount",
            Stat::Sum => "Sum",
            Stat::Minimum => "Minimum",
            Stat::Maximum => "Maximum",
            Stat::Average => "Average",
            Stat::P50 => "p50",
            Stat::P99 => "p99",
        }
    }
}

/// One metric statistic to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// Caller's id for the results (`[a-z][a-zA-Z0-9_]*`, unique in a request).
    pub id: String,
    /// Metric name.
    pub metric_name: String,
    /// `(name, value)` dimensions, exactly as published.
    pub dimensions: Vec<(String, String)>,
    /// The statistic.
    pub stat: Stat,
    /// Period, seconds (1, 5, 10, 30 or a multiple of 60).
    pub period_s: u32,
}

/// One GetMetricData call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    /// Namespace of every query.
    pub namespace: String,
    /// At most [`MAX_QUERIES`].
    pub queries: Vec<MetricQuery>,
    /// Window start, epoch ms (inclusive).
    pub start_ms: i64,
    /// Window end, epoch ms (exclusive).
    pub end_ms: i64,
    /// Continuation of a previous page.
    pub next_token: Option<String>,
}

/// Datapoints of one query, in any order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryResult {
    /// The query's id.
    pub id: String,
    /// Period start of each datapoint, epoch ms.
    pub timestamps_ms: Vec<i64>,
    /// The statistic's value at each timestamp.
    pub values: Vec<f64>,
}

/// One page of a GetMetricData answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataPage {
    /// Results by query (a query may continue on the next page).
    pub results: Vec<QueryResult>,
    /// More to fetch.
    pub next_token: Option<String>,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Too many requests: retried with backoff.
    #[error("CloudWatch throttled the request: {0}")]
    Throttled(String),
    /// Anything else: reported.
    #[error("CloudWatch GetMetricData failed: {0}")]
    Failed(String),
}

/// Most queries one GetMetricData call takes.
pub const MAX_QUERIES: usize = 500;
/// Most datapoints one GetMetricData call may return.
pub const MAX_DATAPOINTS: u64 = 100_800;

/// GetMetricData.
pub trait MetricsApi: Send + Sync {
    /// One call, one page.
    fn get_metric_data(
        &self,
        request: &DataRequest,
    ) -> impl Future<Output = Result<DataPage, ApiError>> + Send;
}

impl<T: MetricsApi> MetricsApi for &T {
    fn get_metric_data(
        &self,
        request: &DataRequest,
    ) -> impl Future<Output = Result<DataPage, ApiError>> + Send {
        (**self).get_metric_data(request)
    }
}

/// An API that counts the metrics it was asked for (GetMetricData bills per metric requested).
#[derive(Debug, Default)]
pub struct Counting<A> {
    api: A,
    requested: std::sync::atomic::AtomicU64,
}

impl<A> Counting<A> {
    /// Counts `api`'s queries.
    pub fn new(api: A) -> Self {
        Counting {
            api,
            requested: Default::default(),
        }
    }

    /// Metrics requested so far (each query of each call, pages included).
    pub fn requested(&self) -> u64 {
        self.requested.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<A: MetricsApi> MetricsApi for Counting<A> {
    fn get_metric_data(
        &self,
        request: &DataRequest,
    ) -> impl Future<Output = Result<DataPage, ApiError>> + Send {
        self.requested.fetch_add(
            request.queries.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.api.get_metric_data(request)
    }
}
