//! Lambda's own metrics over a run's window, per function: what an AWS user's dashboards and
//! alarms read (`AWS/Lambda`: invocations, errors, throttles, duration, concurrency, iterator
//! age; `LambdaInsights`: cold starts and memory), the same queries on AWS and in the sandbox.
//!
//! Lambda's metrics are per function, not per run, and CloudWatch keeps them by the minute on
//! AWS: the window is widened to whole minutes, so other traffic to the same functions in those
//! minutes counts too. Percentiles are CloudWatch's own (`p50`, `p99` over one period spanning
//! the window); everything else is exact sums and extremes.

use contract::lambda::{
    FunctionMetrics, LambdaView, CONCURRENT_EXECUTIONS, DIM_FUNCTION_NAME, DURATION, ERRORS,
    INIT_DURATION, INSIGHTS_DIM_FUNCTION_NAME, INSIGHTS_NAMESPACE, INVOCATIONS, ITERATOR_AGE,
    NAMESPACE, THROTTLES, TOTAL_MEMORY, USED_MEMORY_MAX,
};

use crate::api::{ApiError, DataRequest, MetricQuery, MetricsApi, Stat};
use crate::query::{all_pages, fetch, Series, Window};

/// Period of the sums and extremes: CloudWatch's resolution for Lambda's metrics on AWS.
const MINUTE_S: u32 = 60;
/// Longest window whose iterator age is read second by second (the sandbox publishes it every
/// second; on AWS the points come by the minute).
const PER_SECOND_UP_TO_MS: i64 = 3_600_000;

/// A function to read: its role in the pipeline and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// `upstream`, `midstream`, `downstream` (or the name, when given by flag).
    pub role: String,
    /// The function's name (Lambda's `FunctionName` dimension).
    pub name: String,
}

/// What Lambda's metrics say about `functions` over `window`; when there is nothing to say, the
/// view says why instead ([`LambdaView::unavailable`]), never zeros.
pub async fn view<A: MetricsApi>(api: &A, functions: &[Function], window: Window) -> LambdaView {
    view_in(api, functions, window, MINUTE_S).await
}

/// [`view`], read by periods of `resolution_s` rather than the minute: the sandbox keeps
/// Lambda's metrics by the second, so a window within a minute (one step of `tune`) is read
/// alone, not with the rest of its minute. On AWS the resolution is the minute whatever is
/// asked.
pub async fn view_in<A: MetricsApi>(
    api: &A,
    functions: &[Function],
    window: Window,
    resolution_s: u32,
) -> LambdaView {
    if functions.is_empty() {
        return unavailable(
            "no function names: pass --outputs with the stack's UpstreamFunctionName, \
             MidstreamFunctionName and DownstreamFunctionName, or --function NAME",
        );
    }
    let mut rows = Vec::new();
    for function in functions {
        match one(api, function, window, resolution_s).await {
            Ok(row) => rows.push(row),
            Err(error) => return unavailable(&format!("{}: {error}", function.name)),
        }
    }
    if rows.iter().all(|r| r.invocations == 0) {
        return unavailable(&format!(
            "no {INVOCATIONS} in {NAMESPACE} for these functions in the run's window (metrics \
             not published here, or not allowed to read them)"
        ));
    }
    LambdaView {
        unavailable: None,
        functions: rows,
    }
}

fn unavailable(why: &str) -> LambdaView {
    LambdaView {
        unavailable: Some(why.to_owned()),
        functions: Vec::new(),
    }
}

fn query(metric: &str, dimension: &str, name: &str, stat: Stat, period_s: u32) -> MetricQuery {
    MetricQuery {
        id: String::new(),
        metric_name: metric.to_owned(),
        dimensions: vec![(dimension.to_owned(), name.to_owned())],
        stat,
        period_s,
    }
}

fn sum(series: &Series) -> Option<f64> {
    (!series.is_empty()).then(|| series.values().sum())
}

fn max(series: &Series) -> Option<f64> {
    series.values().copied().reduce(f64::max)
}

async fn one<A: MetricsApi>(
    api: &A,
    function: &Function,
    window: Window,
    resolution_s: u32,
) -> Result<FunctionMetrics, ApiError> {
    let name = function.name.as_str();
    // Sums and extremes by the resolution asked: CloudWatch rounds a query's start down to its
    // period, so a minute's period would count the whole minute the window starts in.
    let lambda = |metric, stat| query(metric, DIM_FUNCTION_NAME, name, stat, resolution_s);
    let s = fetch(
        api,
        NAMESPACE,
        &[
            lambda(INVOCATIONS, Stat::Sum),
            lambda(ERRORS, Stat::Sum),
            lambda(THROTTLES, Stat::Sum),
            lambda(DURATION, Stat::Maximum),
            lambda(DURATION, Stat::Sum),
            lambda(CONCURRENT_EXECUTIONS, Stat::Maximum),
        ],
        window,
    )
    .await?;
    let insights =
        |metric, stat| query(metric, INSIGHTS_DIM_FUNCTION_NAME, name, stat, resolution_s);
    let i = fetch(
        api,
        INSIGHTS_NAMESPACE,
        &[
            insights(INIT_DURATION, Stat::SampleCount),
            insights(INIT_DURATION, Stat::Sum),
            insights(INIT_DURATION, Stat::Maximum),
            insights(USED_MEMORY_MAX, Stat::Maximum),
            insights(TOTAL_MEMORY, Stat::Maximum),
        ],
        window,
    )
    .await?;
    let age_period = if window.end_ms - window.start_ms <= PER_SECOND_UP_TO_MS {
        1
    } else {
        MINUTE_S
    };
    let age = fetch(
        api,
        NAMESPACE,
        &[query(
            ITERATOR_AGE,
            DIM_FUNCTION_NAME,
            name,
            Stat::Maximum,
            age_period,
        )],
        window,
    )
    .await?;
    let [p50, p99] = percentiles(api, name, window, resolution_s).await?;
    let cold_starts = sum(&i[0]).map(|n| n.round() as u64);
    Ok(FunctionMetrics {
        role: function.role.clone(),
        name: name.to_owned(),
        invocations: sum(&s[0]).unwrap_or(0.0).round() as u64,
        errors: sum(&s[1]).unwrap_or(0.0).round() as u64,
        throttles: sum(&s[2]).unwrap_or(0.0).round() as u64,
        duration_p50_ms: p50,
        duration_p99_ms: p99,
        duration_max_ms: max(&s[3]),
        duration_sum_ms: sum(&s[4]),
        concurrency_max: max(&s[5]),
        cold_starts,
        init_avg_ms: sum(&i[1])
            .zip(cold_starts)
            .and_then(|(total, n)| (n > 0).then(|| total / n as f64)),
        init_max_ms: max(&i[2]),
        memory_max_mb: max(&i[3]),
        memory_size_mb: max(&i[4]),
        iterator_age_max_ms: max(&age[0]),
        iterator_age: age[0].iter().map(|(&t, &v)| (t, v)).collect(),
    })
}

/// `Duration`'s p50 and p99 over the whole window: one period spanning it from the
/// `resolution_s` it starts in (a percentile of several periods cannot be combined into one).
async fn percentiles<A: MetricsApi>(
    api: &A,
    name: &str,
    window: Window,
    resolution_s: u32,
) -> Result<[Option<f64>; 2], ApiError> {
    let unit_ms = i64::from(resolution_s.max(1)) * 1000;
    let start_ms = window.start_ms.div_euclid(unit_ms) * unit_ms;
    let units = ((window.end_ms - start_ms).max(1) + unit_ms - 1) / unit_ms;
    let period_s = u32::try_from(units * unit_ms / 1000).unwrap_or(u32::MAX);
    let request = DataRequest {
        namespace: NAMESPACE.to_owned(),
        queries: [Stat::P50, Stat::P99]
            .into_iter()
            .enumerate()
            .map(|(n, stat)| MetricQuery {
                id: format!("p{n}"),
                ..query(DURATION, DIM_FUNCTION_NAME, name, stat, period_s)
            })
            .collect(),
        start_ms,
        end_ms: start_ms + units * unit_ms,
        next_token: None,
    };
    let mut found = [None, None];
    for result in all_pages(api, request).await? {
        let slot = match result.id.as_str() {
            "p0" => 0,
            "p1" => 1,
            _ => continue,
        };
        if let Some(value) = result.values.first() {
            found[slot] = Some(*value);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DataPage, QueryResult};

    /// Answers every query with one datapoint of `value` at the window's start, or none.
    struct Fixed(Option<f64>);

    impl MetricsApi for Fixed {
        async fn get_metric_data(&self, request: &DataRequest) -> Result<DataPage, ApiError> {
            Ok(DataPage {
                results: request
                    .queries
                    .iter()
                    .map(|q| QueryResult {
                        id: q.id.clone(),
                        timestamps_ms: self.0.iter().map(|_| request.start_ms).collect(),
                        values: self.0.iter().copied().collect(),
                    })
                    .collect(),
                next_token: None,
            })
        }
    }

    const WINDOW: Window = Window {
        start_ms: 1_800_000_030_000,
        end_ms: 1_800_000_095_000,
    };

    fn upstream() -> Vec<Function> {
        vec![Function {
            role: "upstream".into(),
            name: "up".into(),
        }]
    }

    #[tokio::test]
    async fn without_names_or_data_the_view_says_why_never_zeros() {
        let unnamed = view(&Fixed(Some(1.0)), &[], WINDOW).await;
        assert!(unnamed.unavailable.unwrap().contains("no function names"));
        let silent = view(&Fixed(None), &upstream(), WINDOW).await;
        assert!(silent.functions.is_empty());
        assert!(silent.unavailable.unwrap().contains("no Invocations"));
    }

    #[tokio::test]
    async fn each_number_comes_from_its_statistic() {
        let seen = view(&Fixed(Some(7.0)), &upstream(), WINDOW).await;
        assert_eq!(seen.unavailable, None);
        let f = &seen.functions[0];
        assert_eq!((f.invocations, f.errors, f.cold_starts), (7, 7, Some(7)));
        assert_eq!(f.duration_p99_ms, Some(7.0));
        assert_eq!(f.init_avg_ms, Some(1.0), "Sum over SampleCount");
        assert_eq!(f.iterator_age, vec![(WINDOW.start_ms, 7.0)]);
    }
}
