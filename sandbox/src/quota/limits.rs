//! The quotas the aws profile keeps, shared by the edge, the pollers and the functions' hosts:
//! what a data-plane call comes to ([`Limits::admit`]), the API's bucket, a shard's read quota,
//! and the counts of what was refused.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use contract::quota as aws;
use serde_json::{json, Value};

use super::counts::{Counted, Counts};
use super::{dynamodb, kinesis, window, Admission, Profile};
use crate::awsjson::AwsJson;

/// The quotas the aws profile keeps, shared by the edge, the pollers and the functions' hosts.
pub struct Limits {
    /// The profile.
    pub profile: Profile,
    /// Kinesis writes, per shard.
    pub kinesis: kinesis::KinesisWrites,
    /// DynamoDB writes, per table and partition.
    pub dynamodb: dynamodb::DynamoDbWrites,
    api: Mutex<window::TokenBucket>,
    /// What was refused, by AWS's metric.
    pub counts: Counts,
    moto: AwsJson,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// One shard's read quota: GetRecords calls and bytes a second, shared by every consumer (the
/// sandbox's one poller per shard).
#[derive(Debug)]
pub struct ShardReads {
    calls: window::PerSecond,
    bytes: window::PerSecond,
}

impl ShardReads {
    /// Kinesis's read quota: its bytes at `profile`'s scale, its 5 calls a second as AWS's.
    /// The calls are a cadence, not a throughput: scaled, they would make the Kinesis hop
    /// seconds long at any load, which AWS never does.
    pub fn kinesis(profile: &Profile) -> ShardReads {
        ShardReads {
            calls: window::PerSecond::new(aws::KINESIS_SHARD_READ_CALLS),
            bytes: window::PerSecond::new(profile.scaled(aws::KINESIS_SHARD_READ_BYTES)),
        }
    }

    /// Whether a GetRecords call may go at `now_ms` (taken if so): `Err` with how long until
    /// the next second when the shard's calls or bytes for this second are spent.
    pub fn call(&mut self, now_ms: u64) -> Result<(), Duration> {
        let bytes_left = self.bytes.fits(now_ms, 1.0);
        if bytes_left && self.calls.try_take(now_ms, 1.0) {
            Ok(())
        } else {
            Err(Duration::from_millis(window::PerSecond::ms_to_next_second(
                now_ms,
            )))
        }
    }

    /// A call at `now_ms` returned `bytes`.
    pub fn returned(&mut self, now_ms: u64, bytes: usize) {
        self.bytes.take(now_ms, bytes as f64);
    }
}

impl Limits {
    pub(super) fn new(profile: &Profile, account: &str, moto: AwsJson) -> Limits {
        Limits {
            moto,
            profile: *profile,
            kinesis: kinesis::KinesisWrites::new(
                profile.scaled(aws::KINESIS_SHARD_WRITE_RECORDS),
                profile.scaled(aws::KINESIS_SHARD_WRITE_BYTES),
                account,
            ),
            dynamodb: dynamodb::DynamoDbWrites::new(
                profile.scaled(aws::DYNAMODB_PARTITION_WRITE_UNITS),
                profile.scaled(aws::DYNAMODB_TABLE_WRITE_UNITS),
            ),
            api: Mutex::new(window::TokenBucket::new(
                profile.scaled(aws::API_GATEWAY_RATE),
                profile.scaled(aws::API_GATEWAY_BURST),
                Instant::now(),
            )),
            counts: Counts::default(),
        }
    }

    /// Whether the API's account bucket has a token for one more request now.
    pub fn api_request(&self) -> bool {
        self.api
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_take(Instant::now())
    }

    /// Counts an API answer by its status class (`Count`, `4XXError`, `5XXError`).
    pub fn api_answered(&self, api_name: &str, status: u16) {
        let dims = vec![(aws::DIM_API_NAME, api_name.to_owned())];
        let count = |metric| Counted {
            namespace: aws::API_GATEWAY_NAMESPACE,
            metric,
            dimensions: dims.clone(),
        };
        self.counts.add(count(aws::API_COUNT), 1.0);
        match status {
            400..=499 => self.counts.add(count(aws::API_4XX), 1.0),
            500..=599 => self.counts.add(count(aws::API_5XX), 1.0),
            _ => {}
        }
    }

    /// Counts GetRecords calls on `stream` that the shard's read quota refused.
    pub fn read_refused(&self, stream: &str) {
        self.counts.add(
            Counted {
                namespace: aws::KINESIS_NAMESPACE,
                metric: aws::READ_THROTTLED,
                dimensions: vec![(aws::DIM_STREAM_NAME, stream.to_owned())],
            },
            1.0,
        );
    }

    /// What a call to moto comes to under the quotas: `operation` is its `X-Amz-Target`, `body`
    /// its JSON. A stream's shards or a table's key are read from moto the first time.
    pub async fn admit(&self, operation: &str, body: &Value) -> Admission {
        let now_ms = contract::epoch_ms().max(0) as u64;
        match operation {
            "Kinesis_20131202.PutRecord" | "Kinesis_20131202.PutRecords" => {
                self.admit_kinesis(operation, body, now_ms).await
            }
            "DynamoDB_20120810.PutItem" | "DynamoDB_20120810.BatchWriteItem" => {
                self.admit_dynamodb(operation, body, now_ms).await
            }
            _ => Admission::Whole,
        }
    }

    /// A Kinesis write under its shards' quotas, the refused records counted.
    async fn admit_kinesis(&self, operation: &str, body: &Value, now_ms: u64) -> Admission {
        let Some(stream) = kinesis::stream_named(body) else {
            return Admission::Whole;
        };
        if !self.kinesis.knows(&stream) {
            let listed = self
                .moto
                .call(
                    "kinesis",
                    "Kinesis_20131202.ListShards",
                    &json!({ "StreamName": stream }),
                )
                .await;
            match listed {
                Ok(answer) => self
                    .kinesis
                    .add_stream(&stream, kinesis::ShardRange::from_list_shards(&answer)),
                // moto answers the call itself (no such stream, say).
                Err(_) => return Admission::Whole,
            }
        }
        let (admission, refused) = if operation.ends_with("PutRecord") {
            self.kinesis.put_record(&stream, body, now_ms)
        } else {
            self.kinesis.put_records(&stream, body, now_ms)
        };
        if refused > 0 {
            self.counts.add(
                Counted {
                    namespace: aws::KINESIS_NAMESPACE,
                    metric: aws::WRITE_THROTTLED,
                    dimensions: vec![(aws::DIM_STREAM_NAME, stream)],
                },
                refused as f64,
            );
        }
        admission
    }

    /// A DynamoDB write under its tables' quotas, the refused items and calls counted.
    async fn admit_dynamodb(&self, operation: &str, body: &Value, now_ms: u64) -> Admission {
        let put_item = operation.ends_with("PutItem");
        let tables: Vec<String> = match put_item {
            true => body["TableName"]
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect(),
            false => body["RequestItems"]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
        };
        for table in tables.iter().filter(|t| !self.dynamodb.knows(t)) {
            let Some(hash_key) = self.hash_key(table).await else {
                return Admission::Whole;
            };
            self.dynamodb.add_table(table, &hash_key);
        }
        let (admission, refused) = match put_item {
            true => self.dynamodb.put_item(body, now_ms),
            false => self.dynamodb.batch_write(body, now_ms),
        };
        for (table, items) in &refused.items {
            let dims = vec![(aws::DIM_TABLE_NAME, table.clone())];
            let counted = |metric, dimensions| Counted {
                namespace: aws::DYNAMODB_NAMESPACE,
                metric,
                dimensions,
            };
            self.counts.add(
                counted(aws::WRITE_THROTTLE_EVENTS, dims.clone()),
                *items as f64,
            );
            if refused.whole {
                let op = operation.rsplit('.').next().unwrap_or_default();
                let mut dims = dims;
                dims.push((aws::DIM_OPERATION, op.to_owned()));
                self.counts.add(counted(aws::THROTTLED_REQUESTS, dims), 1.0);
            }
        }
        admission
    }

    /// A table's partition key, from moto's `DescribeTable` (`None`: moto answers the call).
    async fn hash_key(&self, table: &str) -> Option<String> {
        let described = self
            .moto
            .call(
                "dynamodb",
                "DynamoDB_20120810.DescribeTable",
                &json!({ "TableName": table }),
            )
            .await
            .ok()?;
        Some(
            described["Table"]["KeySchema"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|k| k["KeyType"] == "HASH")
                .and_then(|k| k["AttributeName"].as_str())
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// What was refused since the start, one line per metric and resource (none: nothing).
    pub fn summary(&self) -> Vec<String> {
        self.counts
            .totals()
            .into_iter()
            .filter(|(what, _)| ![aws::API_COUNT].contains(&what.metric))
            .map(|(what, n)| {
                let dims: Vec<String> = what
                    .dimensions
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("{} {} {}: {n}", what.namespace, what.metric, dims.join(","))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client to an address nothing answers on (these tests call nothing).
    fn moto() -> AwsJson {
        AwsJson::new("127.0.0.1:9".parse().unwrap(), "us-east-1")
    }

    #[test]
    fn a_shard_answers_five_reads_a_second() {
        let mut reads = ShardReads::kinesis(&Profile::aws(1.0));
        let second = 1_800_000_000_000;
        let answered = (0..7)
            .filter(|i| reads.call(second + i * 10).is_ok())
            .count();
        assert_eq!(answered, 5);
        assert_eq!(reads.call(second + 400), Err(Duration::from_millis(600)));
        assert!(reads.call(second + 1000).is_ok());
        // 2 MiB returned spends the second's bytes: no more calls until the next.
        reads.returned(second + 1001, 2 << 20);
        assert!(reads.call(second + 1002).is_err());
        assert!(reads.call(second + 2000).is_ok());
    }

    #[test]
    fn the_api_bucket_refuses_past_its_burst() {
        // At a scale of 0.0002: 2 requests/s, a burst of 1.
        let limits = Profile::aws(0.0002).limits("1", moto()).unwrap();
        assert!(limits.api_request());
        assert!(!limits.api_request());
        limits.api_answered("api", 429);
        limits.api_answered("api", 200);
        let counted = limits.counts.totals();
        let n = |metric| {
            counted
                .iter()
                .find(|(k, _)| k.metric == metric)
                .map_or(0.0, |(_, n)| *n)
        };
        assert_eq!(
            (n(aws::API_COUNT), n(aws::API_4XX), n(aws::API_5XX)),
            (2.0, 1.0, 0.0)
        );
        assert_eq!(
            limits.summary(),
            vec!["AWS/ApiGateway 4XXError ApiName=api: 1".to_owned()]
        );
    }
}
