//! AWS's data-plane quotas and the metrics AWS publishes when one is hit: the figures the
//! sandbox's `aws` profile enforces and the names both the sandbox (which publishes the counts)
//! and the collector (which reads them) use.
//!
//! Each figure is AWS's published default (the page is named beside it). A *rate* quota is
//! multiplied by the profile's scale (`sandbox up --quota-scale`); sizes, counts and cadences
//! never are.

use serde::{Deserialize, Serialize};

/// Kinesis: records a shard takes per second (Kinesis Data Streams developer guide, "Quotas
/// and limits").
pub const KINESIS_SHARD_WRITE_RECORDS: f64 = 1000.0;
/// Kinesis: bytes (data and partition key) a shard takes per second (1 MiB).
pub const KINESIS_SHARD_WRITE_BYTES: f64 = 1_048_576.0;
/// Kinesis: GetRecords calls a shard answers per second, shared by every consumer (a cadence:
/// never scaled).
pub const KINESIS_SHARD_READ_CALLS: f64 = 5.0;
/// Kinesis: bytes a shard returns per second (2 MiB), shared by every consumer.
pub const KINESIS_SHARD_READ_BYTES: f64 = 2_097_152.0;
/// DynamoDB: write units a partition takes per second ("Service, account, and table quotas").
pub const DYNAMODB_PARTITION_WRITE_UNITS: f64 = 1000.0;
/// DynamoDB: write units a new on-demand table takes per second ("On-demand capacity mode":
/// up to 4,000 writes per second at once).
pub const DYNAMODB_TABLE_WRITE_UNITS: f64 = 4000.0;
/// DynamoDB: the partitions of a new on-demand table (its 4,000 write units over partitions of
/// 1,000 each).
pub const DYNAMODB_NEW_TABLE_PARTITIONS: usize = 4;
/// DynamoDB: bytes one write unit covers.
pub const DYNAMODB_WRITE_UNIT_BYTES: usize = 1024;
/// Lambda: concurrent executions per account and region ("Lambda quotas"); a count, never
/// scaled.
pub const LAMBDA_ACCOUNT_CONCURRENCY: u32 = 1000;
/// API Gateway: requests per second per account and region ("Amazon API Gateway quotas").
pub const API_GATEWAY_RATE: f64 = 10_000.0;
/// API Gateway: the token bucket's burst.
pub const API_GATEWAY_BURST: f64 = 5_000.0;

/// How often Lambda reads an idle Kinesis shard: once a second ("How Lambda processes records
/// from Amazon Kinesis Data Streams"); back to back while records keep coming.
pub const KINESIS_IDLE_POLL_MS: u64 = 1000;
/// How often Lambda reads a DynamoDB stream shard: four times a second ("DynamoDB Streams and
/// Lambda triggers").
pub const DYNAMODB_STREAM_POLL_MS: u64 = 250;

/// Kinesis's namespace and its dimension.
pub const KINESIS_NAMESPACE: &str = "AWS/Kinesis";
/// Kinesis's stream dimension.
pub const DIM_STREAM_NAME: &str = "StreamName";
/// Records refused by a shard's write quota, Sum.
pub const WRITE_THROTTLED: &str = "WriteProvisionedThroughputExceeded";
/// GetRecords calls refused by a shard's read quota, Sum.
pub const READ_THROTTLED: &str = "ReadProvisionedThroughputExceeded";

/// DynamoDB's namespace.
pub const DYNAMODB_NAMESPACE: &str = "AWS/DynamoDB";
/// DynamoDB's table dimension.
pub const DIM_TABLE_NAME: &str = "TableName";
/// DynamoDB's operation dimension (on `ThrottledRequests`).
pub const DIM_OPERATION: &str = "Operation";
/// Write requests (items) over the table's or a partition's write units, Sum.
pub const WRITE_THROTTLE_EVENTS: &str = "WriteThrottleEvents";
/// Calls refused whole, every item over the quota, Sum.
pub const THROTTLED_REQUESTS: &str = "ThrottledRequests";

/// API Gateway's namespace.
pub const API_GATEWAY_NAMESPACE: &str = "AWS/ApiGateway";
/// API Gateway's API dimension.
pub const DIM_API_NAME: &str = "ApiName";
/// Requests, Sum.
pub const API_COUNT: &str = "Count";
/// Answers 400 to 499 (a throttle's 429 among them), Sum.
pub const API_4XX: &str = "4XXError";
/// Answers 500 to 599 (a throttled function's 500 among them), Sum.
pub const API_5XX: &str = "5XXError";

/// One kind of throttle the toolkit counts, where AWS publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleMetric {
    /// What a user reads in a table.
    pub label: &'static str,
    /// The namespace.
    pub namespace: &'static str,
    /// The metric.
    pub metric: &'static str,
    /// The dimension naming the resource.
    pub dimension: &'static str,
}

/// Every throttle count, in the pipeline's order.
pub const THROTTLE_METRICS: [ThrottleMetric; 6] = [
    ThrottleMetric {
        label: "API answers 4xx",
        namespace: API_GATEWAY_NAMESPACE,
        metric: API_4XX,
        dimension: DIM_API_NAME,
    },
    ThrottleMetric {
        label: "API answers 5xx",
        namespace: API_GATEWAY_NAMESPACE,
        metric: API_5XX,
        dimension: DIM_API_NAME,
    },
    ThrottleMetric {
        label: "Kinesis records refused (write quota)",
        namespace: KINESIS_NAMESPACE,
        metric: WRITE_THROTTLED,
        dimension: DIM_STREAM_NAME,
    },
    ThrottleMetric {
        label: "Kinesis reads refused (read quota)",
        namespace: KINESIS_NAMESPACE,
        metric: READ_THROTTLED,
        dimension: DIM_STREAM_NAME,
    },
    ThrottleMetric {
        label: "DynamoDB writes throttled",
        namespace: DYNAMODB_NAMESPACE,
        metric: WRITE_THROTTLE_EVENTS,
        dimension: DIM_TABLE_NAME,
    },
    ThrottleMetric {
        label: "Lambda invocations throttled",
        namespace: crate::lambda::NAMESPACE,
        metric: crate::lambda::THROTTLES,
        dimension: crate::lambda::DIM_FUNCTION_NAME,
    },
];

/// A throttle metric's quota in words (AWS's figure, and the one in force at `scale` when the
/// sandbox scales it), and what would lift it.
pub fn advice(metric: &str, scale: Option<f64>) -> (String, &'static str) {
    let at = |figure: f64, unit: &str| match scale {
        Some(scale) if scale != 1.0 => format!(
            "{} {unit} on AWS; here, at quota scale {scale}: {}",
            thousands(figure),
            thousands(figure * scale)
        ),
        _ => format!("{} {unit}", thousands(figure)),
    };
    match metric {
        WRITE_THROTTLED => (
            format!(
                "Kinesis write quota per shard: {}",
                at(KINESIS_SHARD_WRITE_RECORDS, "records/s")
            ),
            "more shards (SHARDS=N), or fewer, larger records",
        ),
        READ_THROTTLED => (
            format!("Kinesis read quota per shard: {KINESIS_SHARD_READ_CALLS} GetRecords/s"),
            "fewer consumers per shard, enhanced fan-out, or more shards",
        ),
        WRITE_THROTTLE_EVENTS => (
            format!(
                "DynamoDB write quota: {} a partition",
                at(DYNAMODB_PARTITION_WRITE_UNITS, "write units/s")
            ),
            "partition keys spread wider, or provisioned (or warm) throughput",
        ),
        API_4XX => (
            format!(
                "API Gateway's account throttle: {}",
                at(API_GATEWAY_RATE, "requests/s")
            ),
            "a raised API Gateway quota (account or stage throttle)",
        ),
        crate::lambda::THROTTLES => (
            format!(
                "Lambda concurrency: {LAMBDA_ACCOUNT_CONCURRENCY} per account, or the function's \
                 reserved concurrency"
            ),
            "a higher reserved concurrency, or a raised account limit",
        ),
        _ => (
            "errors the API answered (5xx)".to_owned(),
            "the functions' logs: a 5xx is a consequence, not a quota",
        ),
    }
}

/// A whole number with thousands separated by commas (`10,000`); others as they are.
fn thousands(n: f64) -> String {
    if n.fract() != 0.0 || n.abs() >= 1e15 {
        return format!("{n}");
    }
    let digits = format!("{}", n.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// The scale in a sandbox profile's words (`aws at quota scale 0.1`), if it says one.
pub fn profile_scale(profile: &str) -> Option<f64> {
    profile.strip_prefix("aws at quota scale ")?.parse().ok()
}

/// The error Kinesis answers a write over a shard's quota with, as AWS words it.
pub fn kinesis_write_refusal(shard_id: &str, stream: &str, account: &str) -> String {
    format!("Rate exceeded for shard {shard_id} in stream {stream} under account {account}.")
}

/// The error DynamoDB answers a write over a table's or partition's quota with.
pub const DYNAMODB_THROTTLE_MESSAGE: &str = "Throughput exceeds the current capacity of your \
     table or index. DynamoDB is automatically scaling your table or index so please try again \
     shortly. If exceptions persist, check if you have a hot key: \
     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html";

/// What AWS's throttle metrics say about a run's window (export version 5 on): a row per
/// metric and resource, and the profile the sandbox kept, when it says.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ThrottleView {
    /// Why there are no rows, when there are none (no resource names, the call failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// The sandbox's profile (`SandboxProfile` in the outputs: `default`, `aws`, `aws at quota
    /// scale 0.1`); `None` on AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// One row per metric and resource, in the pipeline's order.
    #[serde(default)]
    pub rows: Vec<ThrottleRow>,
}

/// One throttle metric of one resource over the window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ThrottleRow {
    /// What a user reads ([`ThrottleMetric::label`]).
    pub label: String,
    /// The namespace.
    pub namespace: String,
    /// The metric.
    pub metric: String,
    /// The resource (the dimension's value: a stream, a table, an API, a function).
    pub resource: String,
    /// Sum over the window.
    pub total: u64,
    /// The sum per second (per minute over windows longer than an hour), `[epoch ms, n]`,
    /// seconds with none left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_second: Vec<(i64, u64)>,
}

impl ThrottleView {
    /// What the figures mean, for a table's title: on AWS, AWS's own; in the sandbox's default
    /// profile, nothing (it enforces no quota); in the aws profile, AWS's quotas, scaled.
    pub fn meaning(&self) -> String {
        match self.profile.as_deref() {
            None => "AWS's own metrics".to_owned(),
            Some("default") => {
                "sandbox profile default: no quota enforced, all 0 here; PROFILE=aws keeps \
                 AWS's"
                    .to_owned()
            }
            Some(profile) => match profile.strip_prefix("aws at quota scale ") {
                Some(scale) => format!(
                    "profile aws, quotas x{scale}: AWS would refuse these at {}x this load",
                    scale
                        .parse::<f64>()
                        .ok()
                        .filter(|s| *s > 0.0)
                        .map_or("?".to_owned(), |s| format!("{:.4}", 1.0 / s)
                            .trim_end_matches('0')
                            .trim_end_matches('.')
                            .to_owned())
                ),
                None => format!("sandbox profile {profile}: AWS's quotas"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_says_what_its_figures_mean() {
        let view = |profile: Option<&str>| ThrottleView {
            profile: profile.map(str::to_owned),
            ..ThrottleView::default()
        };
        assert_eq!(view(None).meaning(), "AWS's own metrics");
        assert!(view(Some("default"))
            .meaning()
            .contains("no quota enforced"));
        assert!(view(Some("aws at quota scale 0.1"))
            .meaning()
            .ends_with("AWS would refuse these at 10x this load"));
        assert!(view(Some("aws at quota scale 1"))
            .meaning()
            .contains("at 1x this load"));
        let json = serde_json::to_string(&view(Some("aws at quota scale 1"))).unwrap();
        assert_eq!(
            serde_json::from_str::<ThrottleView>(&json).unwrap(),
            view(Some("aws at quota scale 1"))
        );
    }

    #[test]
    fn advice_names_the_quota_and_what_lifts_it() {
        let (quota, lift) = advice(WRITE_THROTTLED, Some(0.1));
        assert_eq!(
            quota,
            "Kinesis write quota per shard: 1,000 records/s on AWS; here, at quota scale 0.1: 100"
        );
        assert!(lift.contains("more shards"));
        assert_eq!(
            advice(API_4XX, None).0,
            "API Gateway's account throttle: 10,000 requests/s"
        );
        assert_eq!(profile_scale("aws at quota scale 0.25"), Some(0.25));
        assert_eq!(profile_scale("default"), None);
    }

    #[test]
    fn every_throttle_metric_is_named_once() {
        for (i, a) in THROTTLE_METRICS.iter().enumerate() {
            for b in &THROTTLE_METRICS[i + 1..] {
                assert!((a.namespace, a.metric) != (b.namespace, b.metric), "{a:?}");
            }
        }
        assert_eq!(
            kinesis_write_refusal("shardId-000000000000", "s", "123456789012"),
            "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012."
        );
    }
}
