//! AWS's throttle metrics over a run's window: which limit gave. Kinesis records and reads a
//! shard refused, DynamoDB writes over the table's capacity, the API's 4xx and 5xx answers and
//! Lambda's throttles per function, each read from the metric AWS publishes it as
//! ([`contract::quota::THROTTLE_METRICS`]), so the same queries work on AWS and in the sandbox's
//! aws profile (which publishes them the same way).

use contract::quota::{ThrottleRow, ThrottleView, THROTTLE_METRICS};

use crate::api::{MetricQuery, MetricsApi, Stat};
use crate::query::{fetch, Window};

/// Longest window read second by second (then by the minute).
const PER_SECOND_UP_TO_MS: i64 = 3_600_000;

/// The resources a stack's outputs name, by the dimension AWS's metrics name them with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// The Kinesis stream (`StreamName`).
    pub stream: Option<String>,
    /// The DynamoDB table (`TableName`).
    pub table: Option<String>,
    /// The REST API (`ApiName`).
    pub api: Option<String>,
    /// The functions (`FunctionName`).
    pub functions: Vec<String>,
    /// The sandbox's profile, when the outputs say it.
    pub profile: Option<String>,
}

impl Resources {
    /// The resources a stack's outputs name (the functions by their roles' outputs).
    pub fn from_outputs(outputs: &contract::outputs::StackOutputs) -> Resources {
        use contract::outputs::key;
        let named = |k: &str| outputs.get(k).ok().map(str::to_owned);
        Resources {
            stream: named(key::STREAM),
            table: named(key::TABLE),
            api: named(key::API_NAME),
            functions: contract::lambda::ROLES
                .iter()
                .filter_map(|(_, k)| named(k))
                .collect(),
            profile: named(key::SANDBOX_PROFILE),
        }
    }

    /// The resources named under `dimension`.
    fn named(&self, dimension: &str) -> Vec<String> {
        match dimension {
            contract::quota::DIM_STREAM_NAME => self.stream.iter().cloned().collect(),
            contract::quota::DIM_TABLE_NAME => self.table.iter().cloned().collect(),
            contract::quota::DIM_API_NAME => self.api.iter().cloned().collect(),
            contract::lambda::DIM_FUNCTION_NAME => self.functions.clone(),
            _ => Vec::new(),
        }
    }
}

/// What the throttle metrics say about `resources` over `window`; when nothing can be said,
/// why (never zeros for what was not read).
pub async fn view<A: MetricsApi>(api: &A, resources: &Resources, window: Window) -> ThrottleView {
    let period_s = if window.end_ms - window.start_ms <= PER_SECOND_UP_TO_MS {
        1
    } else {
        60
    };
    let mut rows = Vec::new();
    for metric in &THROTTLE_METRICS {
        let names = resources.named(metric.dimension);
        let queries: Vec<MetricQuery> = names
            .iter()
            .map(|name| MetricQuery {
                id: String::new(),
                metric_name: metric.metric.to_owned(),
                dimensions: vec![(metric.dimension.to_owned(), name.clone())],
                stat: Stat::Sum,
                period_s,
            })
            .collect();
        let series = match fetch(api, metric.namespace, &queries, window).await {
            Ok(series) => series,
            Err(error) => {
                return ThrottleView {
                    unavailable: Some(format!("{} {}: {error}", metric.namespace, metric.metric)),
                    profile: resources.profile.clone(),
                    rows: Vec::new(),
                }
            }
        };
        for (name, points) in names.into_iter().zip(series) {
            let per_second: Vec<(i64, u64)> = points
                .iter()
                .map(|(&t, &n)| (t, n.round().max(0.0) as u64))
                .filter(|(_, n)| *n > 0)
                .collect();
            rows.push(ThrottleRow {
                label: metric.label.to_owned(),
                namespace: metric.namespace.to_owned(),
                metric: metric.metric.to_owned(),
                resource: name,
                total: per_second.iter().map(|(_, n)| n).sum(),
                per_second,
            });
        }
    }
    if rows.is_empty() {
        return ThrottleView {
            unavailable: Some(
                "no resource names: pass --outputs with the stack's KinesisStreamName, \
                 DynamoDBTableName, ApiName and function names"
                    .to_owned(),
            ),
            profile: resources.profile.clone(),
            rows,
        };
    }
    ThrottleView {
        unavailable: None,
        profile: resources.profile.clone(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiError, DataPage, DataRequest, QueryResult};

    /// Answers each query by its metric and dimension value: a datapoint of `n` in each of two
    /// seconds, where `n` is the position of the pair in `known` plus one; nothing otherwise.
    struct ByName(Vec<(&'static str, &'static str)>);

    impl MetricsApi for ByName {
        async fn get_metric_data(&self, request: &DataRequest) -> Result<DataPage, ApiError> {
            Ok(DataPage {
                results: request
                    .queries
                    .iter()
                    .map(|q| {
                        let n = self
                            .0
                            .iter()
                            .position(|(m, d)| *m == q.metric_name && *d == q.dimensions[0].1)
                            .map(|i| (i + 1) as f64);
                        let points: Vec<(i64, f64)> = n
                            .map(|n| vec![(request.start_ms, n), (request.start_ms + 1000, n)])
                            .unwrap_or_default();
                        QueryResult {
                            id: q.id.clone(),
                            timestamps_ms: points.iter().map(|p| p.0).collect(),
                            values: points.iter().map(|p| p.1).collect(),
                        }
                    })
                    .collect(),
                next_token: None,
            })
        }
    }

    const WINDOW: Window = Window {
        start_ms: 1_800_000_000_000,
        end_ms: 1_800_000_010_000,
    };

    #[tokio::test]
    async fn each_row_is_its_own_metric_of_its_own_resource() {
        let api = ByName(vec![
            ("WriteProvisionedThroughputExceeded", "S"),
            ("WriteThrottleEvents", "T"),
            ("Throttles", "mid"),
            ("4XXError", "A"),
        ]);
        let resources = Resources {
            stream: Some("S".into()),
            table: Some("T".into()),
            api: Some("A".into()),
            functions: vec!["up".into(), "mid".into()],
            profile: Some("aws at quota scale 0.1".into()),
        };
        let seen = view(&api, &resources, WINDOW).await;
        assert_eq!(seen.unavailable, None);
        let total = |metric: &str, resource: &str| {
            seen.rows
                .iter()
                .find(|r| r.metric == metric && r.resource == resource)
                .map(|r| r.total)
        };
        assert_eq!(total("WriteProvisionedThroughputExceeded", "S"), Some(2));
        assert_eq!(total("WriteThrottleEvents", "T"), Some(4));
        assert_eq!(total("Throttles", "mid"), Some(6));
        assert_eq!(total("Throttles", "up"), Some(0));
        assert_eq!(total("4XXError", "A"), Some(8));
        assert_eq!(total("5XXError", "A"), Some(0));
        assert_eq!(total("ReadProvisionedThroughputExceeded", "S"), Some(0));
        let kinesis = seen.rows.iter().find(|r| r.resource == "S").unwrap();
        assert_eq!(
            kinesis.per_second,
            vec![(WINDOW.start_ms, 1), (WINDOW.start_ms + 1000, 1)]
        );
        // The pipeline's order: the API first, Lambda last.
        assert_eq!(seen.rows.first().unwrap().namespace, "AWS/ApiGateway");
        assert_eq!(seen.rows.last().unwrap().namespace, "AWS/Lambda");
    }

    #[tokio::test]
    async fn without_resource_names_the_view_says_why() {
        let seen = view(&ByName(Vec::new()), &Resources::default(), WINDOW).await;
        assert!(seen.unavailable.unwrap().contains("no resource names"));
    }
}
