//! AWS's clock and quotas, as `sandbox up --profile aws` keeps them.
//!
//! The `default` profile is fast and forgiving, for comparing code changes: pollers read an idle
//! shard up to 20 times a second and nothing is throttled. The `aws` profile imitates AWS, so
//! that the sandbox answers "what would AWS do with this load?":
//! - event source mappings read an idle Kinesis shard once a second and a DynamoDB stream shard
//!   four times a second ([`Cadence`]), and Kinesis reads count against the shard's read quota;
//! - Kinesis shards, DynamoDB tables and API Gateway take AWS's rates ([`kinesis`],
//!   [`dynamodb`], the API's [`window::TokenBucket`]), answering what AWS answers past them,
//!   all held by [`Limits`];
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
mod limits;
pub mod window;

pub use limits::{Limits, ShardReads};

use std::time::Duration;

use contract::quota as aws;
use serde_json::{Map, Value};

use crate::awsjson::AwsJson;
use crate::pollers::SourceKind;

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
}
