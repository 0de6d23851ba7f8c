//! Reading one shard of a Kinesis stream or a DynamoDB stream through moto's API.

use serde_json::{json, Value};

use super::{ShardSource, SourceKind, StartingPosition};
use crate::awsjson::{AwsJson, CallError};

/// One shard of a Kinesis stream or a DynamoDB stream, read through moto's API.
pub struct Shard {
    api: AwsJson,
    kind: SourceKind,
    shard_id: String,
    iterator: Option<String>,
}

fn position(start: StartingPosition) -> &'static str {
    match start {
        StartingPosition::TrimHorizon => "TRIM_HORIZON",
        StartingPosition::Latest => "LATEST",
    }
}

/// The stream name in a Kinesis stream ARN (`arn:aws:kinesis:r:a:stream/NAME`).
pub fn kinesis_stream_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl SourceKind {
    /// The API's signing name.
    fn service(self) -> &'static str {
        match self {
            SourceKind::Kinesis => "kinesis",
            SourceKind::DynamoDbStream => "dynamodb",
        }
    }

    /// The API's target for `operation`.
    fn target(self, operation: &str) -> String {
        match self {
            SourceKind::Kinesis => format!("Kinesis_20131202.{operation}"),
            SourceKind::DynamoDbStream => format!("DynamoDBStreams_20120810.{operation}"),
        }
    }

    /// The request member naming the stream.
    fn stream(self, arn: &str) -> serde_json::Map<String, Value> {
        let mut params = serde_json::Map::new();
        match self {
            SourceKind::Kinesis => {
                params.insert("StreamName".into(), json!(kinesis_stream_name(arn)))
            }
            SourceKind::DynamoDbStream => params.insert("StreamArn".into(), json!(arn)),
        };
        params
    }
}

impl Shard {
    /// Every shard of the stream `arn`, each positioned at `start`.
    pub async fn open_all(
        api: &AwsJson,
        kind: SourceKind,
        arn: &str,
        start: StartingPosition,
    ) -> Result<Vec<Shard>, CallError> {
        let params = Value::Object(kind.stream(arn));
        let shards = match kind {
            SourceKind::Kinesis => api
                .call(kind.service(), &kind.target("ListShards"), &params)
                .await?["Shards"]
                .clone(),
            SourceKind::DynamoDbStream => api
                .call(kind.service(), &kind.target("DescribeStream"), &params)
                .await?["StreamDescription"]["Shards"]
                .clone(),
        };
        let mut out = Vec::new();
        for shard in shards.as_array().into_iter().flatten() {
            let mut params = kind.stream(arn);
            params.insert("ShardId".into(), shard["ShardId"].clone());
            params.insert("ShardIteratorType".into(), json!(position(start)));
            let iterator = api
                .call(
                    kind.service(),
                    &kind.target("GetShardIterator"),
                    &Value::Object(params),
                )
                .await?;
            out.push(Shard {
                api: api.clone(),
                kind,
                shard_id: shard["ShardId"].as_str().unwrap_or_default().to_owned(),
                iterator: iterator["ShardIterator"].as_str().map(str::to_owned),
            });
        }
        Ok(out)
    }
}

impl ShardSource for Shard {
    fn shard_id(&self) -> &str {
        &self.shard_id
    }

    async fn next_records(&mut self, limit: usize) -> Result<Vec<Value>, CallError> {
        let Some(iterator) = &self.iterator else {
            return Ok(Vec::new());
        };
        let request = json!({ "ShardIterator": iterator, "Limit": limit });
        let answer = self
            .api
            .call(
                self.kind.service(),
                &self.kind.target("GetRecords"),
                &request,
            )
            .await?;
        self.iterator = answer["NextShardIterator"].as_str().map(str::to_owned);
        Ok(answer["Records"].as_array().cloned().unwrap_or_default())
    }
}
