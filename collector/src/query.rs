//! Statistics fetched within GetMetricData's limits: queries split into calls of at most
//! [`MAX_QUERIES`], windows split so that no call can return more than [`MAX_DATAPOINTS`], pages
//! followed, throttling retried with backoff. Then the run's numbers, built from them.

use std::collections::BTreeMap;
use std::time::Duration;

use contract::buckets::{Bucket, LatencyHistogram};
use contract::export::{SecondRow, StatSummary};
use contract::metrics::{
    Hop, DIM_BUCKET, DIM_HOP, DIM_RUN_ID, HOP_LATENCY_BUCKET, LATENCY, LATENCY_BUCKET,
    REDELIVERED_RECORDS,
};

use crate::api::{
    ApiError, DataRequest, MetricQuery, MetricsApi, Stat, MAX_DATAPOINTS, MAX_QUERIES,
};

/// Waits between attempts of a throttled call (then it fails).
pub const THROTTLE_BACKOFF: [Duration; 6] = [
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
    Duration::from_millis(3200),
    Duration::from_millis(5000),
];

/// A time window, epoch ms, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start, inclusive.
    pub start_ms: i64,
    /// End, exclusive.
    pub end_ms: i64,
}

/// Datapoints of one query by timestamp (epoch ms).
pub type Series = BTreeMap<i64, f64>;

/// Fetches `queries` (all with the same period) over `window`, in as many calls as the limits
/// require; returns one series per query, in order.
pub async fn fetch<A: MetricsApi>(
    api: &A,
    namespace: &str,
    queries: &[MetricQuery],
    window: Window,
) -> Result<Vec<Series>, ApiError> {
    let mut series = vec![Series::new(); queries.len()];
    let Some(period_s) = queries.iter().map(|q| q.period_s).min() else {
        return Ok(series);
    };
    let period_ms = i64::from(period_s.max(1)) * 1000;
    let start = window.start_ms.div_euclid(period_ms) * period_ms;
    let end = (window.end_ms + period_ms - 1).div_euclid(period_ms) * period_ms;
    for (chunk_index, chunk) in queries.chunks(MAX_QUERIES).enumerate() {
        let offset = chunk_index * MAX_QUERIES;
        // Most periods one call may span so that `chunk.len()` series stay within the limit.
        let periods = (MAX_DATAPOINTS / chunk.len() as u64).max(1) as i64;
        let mut piece_start = start;
        while piece_start < end {
            let piece_end = (piece_start + periods * period_ms).min(end);
            let request = DataRequest {
                namespace: namespace.to_owned(),
                queries: chunk
                    .iter()
                    .enumerate()
                    .map(|(i, q)| MetricQuery {
                        id: format!("q{}", offset + i),
                        ..q.clone()
                    })
                    .collect(),
                start_ms: piece_start,
                end_ms: piece_end,
                next_token: None,
            };
            for result in all_pages(api, request).await? {
                let index: Option<usize> = result.id.strip_prefix('q').and_then(|n| n.parse().ok());
                if let Some(points) = index.and_then(|i| series.get_mut(i)) {
                    points.extend(result.timestamps_ms.into_iter().zip(result.values));
                }
            }
            piece_start = piece_end;
        }
    }
    Ok(series)
}

/// Every page of one request's answer, throttling retried with backoff.
pub(crate) async fn all_pages<A: MetricsApi>(
    api: &A,
    mut request: DataRequest,
) -> Result<Vec<crate::api::QueryResult>, ApiError> {
    let mut results = Vec::new();
    loop {
        let page = call(api, &request).await?;
        results.extend(page.results);
        match page.next_token {
            Some(token) => request.next_token = Some(token),
            None => return Ok(results),
        }
    }
}

/// One call, throttling retried with backoff.
async fn call<A: MetricsApi>(
    api: &A,
    request: &DataRequest,
) -> Result<crate::api::DataPage, ApiError> {
    let mut backoff = THROTTLE_BACKOFF.iter();
    loop {
        match api.get_metric_data(request).await {
            Err(ApiError::Throttled(reason)) => match backoff.next() {
                Some(delay) => tokio::time::sleep(*delay).await,
                None => return Err(ApiError::Throttled(reason)),
            },
            other => return other,
        }
    }
}

/// The metrics of one run in one namespace.
#[derive(Debug, Clone)]
pub struct RunMetrics<A> {
    /// The API.
    pub api: A,
    /// Namespace.
    pub namespace: String,
    /// The `RunId` dimension.
    pub run_id: String,
}

/// Period of the totals queries: one minute (sums of 1-second data; kept 15 days).
const TOTALS_PERIOD_S: u32 = 60;

/// Longest window whose end-to-end buckets are read second by second (for each second's p99):
/// an hour. Longer ones are read by the minute, which keeps a day-long window to a few calls.
pub const PER_SECOND_HISTOGRAMS_UP_TO_S: i64 = 3600;

impl<A: MetricsApi> RunMetrics<A> {
    fn query(
        &self,
        metric: &str,
        extra: &[(&str, String)],
        stat: Stat,
        period_s: u32,
    ) -> MetricQuery {
        let mut dimensions = vec![(DIM_RUN_ID.to_owned(), self.run_id.clone())];
        dimensions.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        MetricQuery {
            id: String::new(),
            metric_name: metric.to_owned(),
            dimensions,
            stat,
            period_s,
        }
    }

    /// Requests processed (SampleCount of `Latency`) in `window`.
    pub async fn processed(&self, window: Window) -> Result<u64, ApiError> {
        let q = self.query(LATENCY, &[], Stat::SampleCount, TOTALS_PERIOD_S);
        let series = fetch(&self.api, &self.namespace, &[q], window).await?;
        Ok(series[0].values().sum::<f64>().round() as u64)
    }

    /// Items written again and not measured again (Sum of `RedeliveredRecords`) in `window`.
    pub async fn redelivered(&self, window: Window) -> Result<u64, ApiError> {
        let q = self.query(REDELIVERED_RECORDS, &[], Stat::Sum, TOTALS_PERIOD_S);
        let series = fetch(&self.api, &self.namespace, &[q], window).await?;
        Ok(series[0].values().sum::<f64>().round() as u64)
    }

    /// Exact count, sum, minimum and maximum of `metric` in `window`.
    pub async fn summary(&self, metric: &str, window: Window) -> Result<StatSummary, ApiError> {
        let queries: Vec<MetricQuery> =
            [Stat::SampleCount, Stat::Sum, Stat::Minimum, Stat::Maximum]
                .into_iter()
                .map(|stat| self.query(metric, &[], stat, TOTALS_PERIOD_S))
                .collect();
        let s = fetch(&self.api, &self.namespace, &queries, window).await?;
        let count = s[0].values().sum::<f64>().round() as u64;
        Ok(StatSummary {
            count,
            sum_ms: s[1].values().sum(),
            min_ms: s[2].values().copied().reduce(f64::min).unwrap_or(0.0),
            max_ms: s[3].values().copied().reduce(f64::max).unwrap_or(0.0),
        })
    }

    /// The `Latency` metric per second (seconds without data left out).
    pub async fn per_second(&self, window: Window) -> Result<Vec<SecondRow>, ApiError> {
        let queries: Vec<MetricQuery> = [
            Stat::SampleCount,
            Stat::Average,
            Stat::Minimum,
            Stat::Maximum,
        ]
        .into_iter()
        .map(|stat| self.query(LATENCY, &[], stat, 1))
        .collect();
        let s = fetch(&self.api, &self.namespace, &queries, window).await?;
        Ok(s[0]
            .iter()
            .filter(|(_, count)| **count > 0.0)
            .map(|(&t, &count)| SecondRow {
                timestamp_ms: t,
                count: count.round() as u64,
                average_ms: s[1].get(&t).copied().unwrap_or(f64::NAN),
                minimum_ms: s[2].get(&t).copied().unwrap_or(f64::NAN),
                maximum_ms: s[3].get(&t).copied().unwrap_or(f64::NAN),
                p99_ms: None,
            })
            .collect())
    }

    /// SampleCount per `period_s` of each of `metric`'s buckets (with the `extra` dimensions)
    /// between `min_ms` and `max_ms`, queried by name (no ListMetrics, which lags new metrics by
    /// up to 15 minutes on AWS).
    async fn bucket_counts(
        &self,
        metric: &str,
        extra: &[(&str, String)],
        window: Window,
        (min_ms, max_ms): (f64, f64),
        period_s: u32,
    ) -> Result<Vec<(Bucket, BTreeMap<i64, f64>)>, ApiError> {
        if max_ms.is_nan() || min_ms.is_nan() || max_ms < min_ms {
            return Ok(Vec::new());
        }
        let first = Bucket::of(min_ms.floor() as i64).index();
        let last = Bucket::of(max_ms.ceil() as i64).index();
        let buckets: Vec<Bucket> = (first..=last).filter_map(Bucket::from_index).collect();
        let queries: Vec<MetricQuery> = buckets
            .iter()
            .map(|b| {
                let mut dims = extra.to_vec();
                dims.push((DIM_BUCKET, b.label()));
                self.query(metric, &dims, Stat::SampleCount, period_s)
            })
            .collect();
        let series = fetch(&self.api, &self.namespace, &queries, window).await?;
        Ok(buckets.into_iter().zip(series).collect())
    }

    /// Per-request end-to-end latencies between `min_ms` and `max_ms`: the run's bucket
    /// histogram, and, for windows of up to [`PER_SECOND_HISTOGRAMS_UP_TO_S`], one per second
    /// (by the second's start, epoch ms) for the seconds' percentiles.
    pub async fn histogram(
        &self,
        window: Window,
        min_ms: f64,
        max_ms: f64,
    ) -> Result<(LatencyHistogram, BTreeMap<i64, LatencyHistogram>), ApiError> {
        let per_second = window.end_ms - window.start_ms <= PER_SECOND_HISTOGRAMS_UP_TO_S * 1000;
        let period_s = if per_second { 1 } else { TOTALS_PERIOD_S };
        let counts = self
            .bucket_counts(LATENCY_BUCKET, &[], window, (min_ms, max_ms), period_s)
            .await?;
        let mut total = LatencyHistogram::new();
        let mut seconds: BTreeMap<i64, LatencyHistogram> = BTreeMap::new();
        for (bucket, points) in counts {
            for (t, count) in points {
                let count = count.round() as u64;
                if count > 0 {
                    total.add(bucket, count);
                    if per_second {
                        seconds.entry(t).or_default().add(bucket, count);
                    }
                }
            }
        }
        Ok((total, seconds))
    }

    /// Each hop's per-request latencies (`HopLatencyBucket`), between the extremes its summary
    /// in `hops` gives; hops without samples are left out.
    pub async fn hop_histograms(
        &self,
        window: Window,
        hops: &BTreeMap<String, StatSummary>,
    ) -> Result<BTreeMap<String, LatencyHistogram>, ApiError> {
        let mut histograms = BTreeMap::new();
        for (hop, summary) in hops.iter().filter(|(_, s)| s.count > 0) {
            let counts = self
                .bucket_counts(
                    HOP_LATENCY_BUCKET,
                    &[(DIM_HOP, hop.clone())],
                    window,
                    (summary.min_ms, summary.max_ms),
                    TOTALS_PERIOD_S,
                )
                .await?;
            let mut histogram = LatencyHistogram::new();
            for (bucket, points) in counts {
                histogram.add(bucket, points.values().sum::<f64>().round() as u64);
            }
            if !histogram.is_empty() {
                histograms.insert(hop.clone(), histogram);
            }
        }
        Ok(histograms)
    }

    /// Each hop's latencies second by second (by the second's start, epoch ms), for windows of
    /// up to [`PER_SECOND_HISTOGRAMS_UP_TO_S`] (longer ones give none): the same bucket queries
    /// as [`Self::hop_histograms`], at a one-second period.
    pub async fn hop_seconds(
        &self,
        window: Window,
        hops: &BTreeMap<String, StatSummary>,
    ) -> Result<BTreeMap<String, BTreeMap<i64, LatencyHistogram>>, ApiError> {
        let mut all = BTreeMap::new();
        if window.end_ms - window.start_ms > PER_SECOND_HISTOGRAMS_UP_TO_S * 1000 {
            return Ok(all);
        }
        for (hop, summary) in hops.iter().filter(|(_, s)| s.count > 0) {
            let counts = self
                .bucket_counts(
                    HOP_LATENCY_BUCKET,
                    &[(DIM_HOP, hop.clone())],
                    window,
                    (summary.min_ms, summary.max_ms),
                    1,
                )
                .await?;
            let seconds: &mut BTreeMap<i64, LatencyHistogram> = all.entry(hop.clone()).or_default();
            for (bucket, points) in counts {
                for (t, count) in points {
                    let count = count.round() as u64;
                    if count > 0 {
                        seconds.entry(t).or_default().add(bucket, count);
                    }
                }
            }
        }
        Ok(all)
    }

    /// Count, sum, minimum and maximum of each hop's metric.
    pub async fn hops(&self, window: Window) -> Result<BTreeMap<String, StatSummary>, ApiError> {
        let mut hops = BTreeMap::new();
        for hop in Hop::ALL {
            hops.insert(
                hop.metric_name().to_owned(),
                self.summary(hop.metric_name(), window).await?,
            );
        }
        Ok(hops)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::api::{DataPage, QueryResult};

    /// A GetMetricData stand-in holding per-second SampleCounts of one metric; enforces the
    /// limits, pages `page_size` datapoints at a time, throttles the first `throttle` calls.
    struct Fake {
        counts: BTreeMap<i64, f64>,
        page_size: usize,
        throttle: Mutex<u32>,
        calls: Mutex<Vec<DataRequest>>,
    }

    impl MetricsApi for Fake {
        async fn get_metric_data(&self, request: &DataRequest) -> Result<DataPage, ApiError> {
            self.calls.lock().unwrap().push(request.clone());
            {
                let mut throttle = self.throttle.lock().unwrap();
                if *throttle > 0 {
                    *throttle -= 1;
                    return Err(ApiError::Throttled("Rate exceeded".into()));
                }
            }
            assert!(request.queries.len() <= MAX_QUERIES);
            let mut all = Vec::new();
            for q in &request.queries {
                let period = i64::from(q.period_s) * 1000;
                let points = (request.end_ms - request.start_ms) / period;
                assert!(
                    points as u64 * request.queries.len() as u64 <= MAX_DATAPOINTS,
                    "over the datapoint limit"
                );
                let mut by_period: BTreeMap<i64, f64> = BTreeMap::new();
                for (&t, &v) in self.counts.range(request.start_ms..request.end_ms) {
                    *by_period
                        .entry(t - (t - request.start_ms).rem_euclid(period))
                        .or_insert(0.0) += v;
                }
                all.extend(by_period.into_iter().map(|(t, v)| (q.id.clone(), t, v)));
            }
            let skip: usize = request
                .next_token
                .as_deref()
                .map_or(0, |t| t.parse().unwrap());
            let page: Vec<_> = all
                .iter()
                .skip(skip)
                .take(self.page_size)
                .cloned()
                .collect();
            let next_token =
                (skip + page.len() < all.len()).then(|| (skip + page.len()).to_string());
            let mut results: Vec<QueryResult> = Vec::new();
            for (id, t, v) in page {
                match results.iter_mut().find(|r| r.id == id) {
                    Some(r) => {
                        r.timestamps_ms.push(t);
                        r.values.push(v);
                    }
                    None => results.push(QueryResult {
                        id,
                        timestamps_ms: vec![t],
                        values: vec![v],
                    }),
                }
            }
            Ok(DataPage {
                results,
                next_token,
            })
        }
    }

    fn fake(seconds: i64, page_size: usize, throttle: u32) -> Fake {
        Fake {
            counts: (0..seconds)
                .map(|s| (1_000_000_000_000 + s * 1000, 2.0))
                .collect(),
            page_size,
            throttle: Mutex::new(throttle),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn metrics(api: &Fake) -> RunMetrics<&Fake> {
        RunMetrics {
            api,
            namespace: "NS".into(),
            run_id: "r".into(),
        }
    }

    const DAY: Window = Window {
        start_ms: 1_000_000_000_000,
        end_ms: 1_000_000_000_000 + 86_400_000,
    };

    #[tokio::test(start_paused = true)]
    async fn pages_are_followed_and_throttling_retried() {
        let api = fake(600, 7, 2);
        assert_eq!(metrics(&api).processed(DAY).await.unwrap(), 1200);
        let calls = api.calls.lock().unwrap();
        // 2 throttled, then ceil(1441 minutes with data: 10 / 7) = 2 pages.
        assert_eq!(calls.len(), 4);
        assert_eq!(calls[3].next_token.as_deref(), Some("7"));
    }

    #[tokio::test(start_paused = true)]
    async fn persistent_throttling_fails_after_backing_off() {
        let api = fake(10, 100, 100);
        let started = tokio::time::Instant::now();
        let error = metrics(&api).processed(DAY).await.unwrap_err();
        assert!(matches!(error, ApiError::Throttled(_)));
        assert_eq!(api.calls.lock().unwrap().len(), 7);
        assert_eq!(started.elapsed(), THROTTLE_BACKOFF.iter().sum::<Duration>());
    }

    #[tokio::test]
    async fn a_day_of_seconds_is_split_into_calls_within_the_limit() {
        let api = fake(86_400, 1_000_000, 0);
        let rows = metrics(&api).per_second(DAY).await.unwrap();
        assert_eq!(rows.len(), 86_400);
        assert!(rows.iter().all(|r| r.count == 2));
        // 4 series of 86,400 points: 25,200 periods per call at most, so 4 windows.
        assert_eq!(api.calls.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn many_buckets_are_split_into_calls_of_500_queries() {
        let api = fake(10, 1_000_000, 0);
        let (histogram, seconds) = metrics(&api)
            .histogram(DAY, 0.0, 5_000_000_000.0)
            .await
            .unwrap();
        assert!(seconds.is_empty(), "a day is read by the minute");
        let calls = api.calls.lock().unwrap();
        let ids: std::collections::BTreeSet<&str> = calls
            .iter()
            .flat_map(|c| c.queries.iter().map(|q| q.id.as_str()))
            .collect();
        assert!(ids.len() > MAX_QUERIES, "{} buckets", ids.len());
        assert!(calls.iter().all(|c| c.queries.len() <= MAX_QUERIES));
        // 500 series of 1-minute points: 201 minutes per call, so a day takes 8 windows.
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.queries.len() == MAX_QUERIES)
                .count(),
            8
        );
        // The fake answers every bucket with the same counts: 20 samples each.
        assert_eq!(histogram.count(), 20 * ids.len() as u64);
    }
}
