//! AWS's clock and quotas, as `sandbox up --profile aws` keeps them.
//!
//! The `default` profile is fast and forgiving, for comparing code changes: pollers read an idle
//! shard up to 20 times a second and nothing is throttled. The `aws` profile imitates AWS, so
//! that the sandbox answers "what would AWS do with this load?":
//! - event source mappings read an idle Kinesis shard once a second and a DynamoDB stream shard
//!   four times a second ([`Cadence`]), and Kinesis reads count against the shard's read quota;
//! - Kinesis shards, DynamoDB tables and API Gateway take AWS's rates ([`kinesis`],
//!   [`dynamodb`], the API's [`window::TokenBucket`]), answering what AWS answers past them;
//! - Lambda's account concurrency and each function's reserved concurrency throttle invocations
//!   ([`crate::lambda::Concurrency`]).
//!
//! Every rate is multiplied by `--quota-scale` (sizes and counts never are, nor the cadences:
//! Kinesis's 5 reads a second per shard stay 5), so that a 2-core machine reaches the regime
//! where AWS's limits bite. What was refused is counted under the
//! metric AWS publishes it as ([`counts`]) and published to CloudWatch each second.

pub mod counts;
pub mod dynamodb;
pub mod kinesis;
pub mod window;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use contract::quota as aws;
use serde_json::{json, Map, Value};

use crate::awsjson::AwsJson;
use crate::pollers::SourceKind;
use counts::{Counted, Counts};

/// Which clock and quotas the sandbox keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProfileName {
    /// Fast polling, no quotas: for comparing code changes.
    #[default]
    Default,
    /// AWS's polling cadence and quotas.
    Aws,
}

impl std::str::FromStr for ProfileName {
    type Err = String;

    fn from_str(text: &str) -> Result<ProfileName, String> {
        match text {
            "default" => Ok(ProfileName::Default),
            "aws" => Ok(ProfileName::Aws),
            other => Err(format!("{other:?} is not a profile: default or aws")),
        }
    }
}

/// A profile and the scale of its rate quotas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Which.
    pub name: ProfileName,
    /// What every rate quota is multiplied by (0 < scale ≤ 1).
    pub scale: f64,
}

impl Default for Profile {
    fn default() -> Profile {
        Profile {
            name: ProfileName::Default,
            scale: 1.0,
        }
    }
}

/// Reads `--quota-scale`: a number above 0 and at most 1.
pub fn parse_scale(text: &str) -> Result<f64, String> {
    let scale: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(scale > 0.0 && scale <= 1.0) {
        return Err(format!(
            "{text:?}: a scale above 0 and at most 1 (0.1: a shard takes 100 records/s)"
        ));
    }
    Ok(scale)
}

/// How often a mapping's poller reads a shard that returned nothing: the first wait after an
/// empty read, growing to the longest. A read that returns records is followed by the next at
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// The first wait after an empty read.
    pub idle_min: Duration,
    /// The longest.
    pub idle_max: Duration,
}

impl Cadence {
    /// The default profile's: 10 ms doubling to 50 ms, so the first records after a quiet spell
    /// wait at most 50 ms per stream.
    pub const FAST: Cadence = Cadence {
        idle_min: Duration::from_millis(10),
        idle_max: Duration::from_millis(50),
    };

    /// Lambda's for `kind`: a Kinesis shard once a second, a DynamoDB stream four times.
    pub fn lambda(kind: SourceKind) -> Cadence {
        let every = Duration::from_millis(match kind {
            SourceKind::Kinesis => aws::KINESIS_IDLE_POLL_MS,
            SourceKind::DynamoDbStream => aws::DYNAMODB_STREAM_POLL_MS,
        });
        Cadence {
            idle_min: every,
            idle_max: every,
        }
    }
}

impl Profile {
    /// The aws profile at `scale`.
    pub fn aws(scale: f64) -> Profile {
        Profile {
            name: ProfileName::Aws,
            scale,
        }
    }

    /// Whether AWS's clock and quotas are kept.
    pub fn is_aws(&self) -> bool {
        self.name == ProfileName::Aws
    }

    /// How a mapping of `kind` polls.
    pub fn cadence(&self, kind: SourceKind) -> Cadence {
        if self.is_aws() {
            Cadence::lambda(kind)
        } else {
            Cadence::FAST
        }
    }

    /// The line `sandbox up` says about the profile.
    pub fn describe(&self) -> String {
        if !self.is_aws() {
            return "profile default: pollers read an idle shard up to 20 times a second; no \
                    quota is enforced (--profile aws keeps AWS's)"
                .to_owned();
        }
        format!(
            "profile aws at quota scale {}: Kinesis polled once a second when idle, DynamoDB \
             streams 4 times a second; a shard takes {} records/s and {} KiB/s of writes, {} \
             reads/s and {} KiB/s of reads; a table {} write units/s ({} a partition); the API {} requests/s (burst \
             {}); Lambda {} concurrent executions",
            self.scale,
            self.scaled(aws::KINESIS_SHARD_WRITE_RECORDS),
            self.scaled(aws::KINESIS_SHARD_WRITE_BYTES) / 1024.0,
            aws::KINESIS_SHARD_READ_CALLS,
            self.scaled(aws::KINESIS_SHARD_READ_BYTES) / 1024.0,
            self.scaled(aws::DYNAMODB_TABLE_WRITE_UNITS),
            self.scaled(aws::DYNAMODB_PARTITION_WRITE_UNITS),
            self.scaled(aws::API_GATEWAY_RATE),
            self.scaled(aws::API_GATEWAY_BURST),
            aws::LAMBDA_ACCOUNT_CONCURRENCY,
        )
    }

    /// A rate quota at this profile's scale.
    pub fn scaled(&self, rate: f64) -> f64 {
        rate * self.scale
    }

    /// The quotas to keep: none in the default profile. `moto` answers what a quota needs to
    /// know of a resource (a stream's shards, a table's key).
    pub fn limits(&self, account: &str, moto: AwsJson) -> Option<Limits> {
        self.is_aws().then(|| Limits::new(self, account, moto))
    }
}

/// What a call over a quota comes to at the edge.
#[derive(Debug)]
pub enum Admission {
    /// Forward the call as it is.
    Whole,
    /// Answer this error (status, JSON body) instead of forwarding.
    Refused(u16, Value),
    /// Answer this 200 without forwarding (nothing of the call was admitted).
    Answered(Value),
    /// Forward this body instead, then merge moto's answer.
    Part(Value, Merge),
}

/// How the part of a call that was forwarded is answered whole.
#[derive(Debug)]
pub enum Merge {
    /// `PutRecords`: each record's entry by position; `None` takes the next of moto's.
    Records(Vec<Option<Value>>),
    /// `BatchWriteItem`: the writes to add to `UnprocessedItems`, by table.
    Unprocessed(Map<String, Value>),
}

impl Merge {
    /// moto's answer to the forwarded part, made the answer to the whole call.
    pub fn apply(self, answer: Value) -> Value {
        match self {
            Merge::Records(entries) => kinesis::merge_records(entries, answer),
            Merge::Unprocessed(refused) => dynamodb::merge_unprocessed(refused, answer),
        }
    }
}

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
    fn new(profile: &Profile, account: &str, moto: AwsJson) -> Limits {
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
        let moto = &self.moto;
        let now_ms = contract::epoch_ms().max(0) as u64;
        match operation {
            "Kinesis_20131202.PutRecord" | "Kinesis_20131202.PutRecords" => {
                let Some(stream) = kinesis::stream_named(body) else {
                    return Admission::Whole;
                };
                if !self.kinesis.knows(&stream) {
                    let listed = moto
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
            "DynamoDB_20120810.PutItem" | "DynamoDB_20120810.BatchWriteItem" => {
                let tables: Vec<String> = match operation.ends_with("PutItem") {
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
                    let described = moto
                        .call(
                            "dynamodb",
                            "DynamoDB_20120810.DescribeTable",
                            &json!({ "TableName": table }),
                        )
                        .await;
                    let Ok(described) = described else {
                        return Admission::Whole;
                    };
                    let hash_key = described["Table"]["KeySchema"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|k| k["KeyType"] == "HASH")
                        .and_then(|k| k["AttributeName"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    self.dynamodb.add_table(table, &hash_key);
                }
                let (admission, refused) = if operation.ends_with("PutItem") {
                    self.dynamodb.put_item(body, now_ms)
                } else {
                    self.dynamodb.batch_write(body, now_ms)
                };
                for (table, items) in &refused.items {
                    let dims = vec![(aws::DIM_TABLE_NAME, table.clone())];
                    self.counts.add(
                        Counted {
                            namespace: aws::DYNAMODB_NAMESPACE,
                            metric: aws::WRITE_THROTTLE_EVENTS,
                            dimensions: dims.clone(),
                        },
                        *items as f64,
                    );
                    if refused.whole {
                        let op = operation.rsplit('.').next().unwrap_or_default();
                        let mut dims = dims;
                        dims.push((aws::DIM_OPERATION, op.to_owned()));
                        self.counts.add(
                            Counted {
                                namespace: aws::DYNAMODB_NAMESPACE,
                                metric: aws::THROTTLED_REQUESTS,
                                dimensions: dims,
                            },
                            1.0,
                        );
                    }
                }
                admission
            }
            _ => Admission::Whole,
        }
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
    fn profiles_and_scales_are_read_strictly() {
        assert_eq!("aws".parse::<ProfileName>(), Ok(ProfileName::Aws));
        assert!("AWS".parse::<ProfileName>().is_err());
        assert!("fast"
            .parse::<ProfileName>()
            .unwrap_err()
            .contains("default or aws"));
        assert_eq!(parse_scale("0.1"), Ok(0.1));
        assert_eq!(parse_scale("1"), Ok(1.0));
        for bad in ["0", "-0.5", "NaN", "1.01", "inf", "x", ""] {
            assert!(parse_scale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_aws_profile_polls_as_lambda_does() {
        let aws = Profile::aws(1.0);
        assert_eq!(
            aws.cadence(SourceKind::Kinesis).idle_min,
            Duration::from_secs(1)
        );
        assert_eq!(
            aws.cadence(SourceKind::DynamoDbStream).idle_max,
            Duration::from_millis(250)
        );
        assert_eq!(
            Profile::default().cadence(SourceKind::Kinesis),
            Cadence::FAST
        );
        assert!(Profile::default().limits("1", moto()).is_none());
        let limits = Profile::aws(0.1).limits("1", moto()).unwrap();
        assert_eq!(limits.kinesis.records_per_shard(), 100.0);
        assert_eq!(limits.dynamodb.table_units(), 400.0);
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
