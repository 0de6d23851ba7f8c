//! An SDK configuration for an emulator, and the pipeline's stream and table in it.

use aws_config::{ConfigLoader, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_kinesis::config::Credentials;
use aws_sdk_kinesis::types::StreamStatus;

/// The region every test uses (moto's default).
pub const REGION: &str = "us-east-1";

/// `loader` (the caller's, so that its HTTP client is the one under test) pointed at
/// `endpoint` in [`REGION`] with moto's dummy credentials.
pub async fn sdk_config(loader: ConfigLoader, endpoint: &str) -> SdkConfig {
    loader
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// Creates a one-shard Kinesis stream and waits until it is active; returns its ARN.
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str) -> String {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream {name}: {e:?}"));
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStreamSummary {name}: {e:?}"))
            .stream_description_summary
            .expect("a stream summary");
        if summary.stream_status == StreamStatus::Active {
            return summary.stream_arn;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Creates a table shaped as the pipeline's (key `id`, a stream with new and old images);
/// returns the stream's ARN.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> String {
    let output = client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("an attribute definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("a key schema"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .expect("a stream specification"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable {name}: {e:?}"));
    output
        .table_description
        .and_then(|t| t.latest_stream_arn)
        .expect("the table's stream")
}

/// Every record of a one-shard Kinesis stream, oldest first (one GetRecords call: the tests'
/// streams hold a few thousand records at most).
pub async fn stream_records(
    client: &aws_sdk_kinesis::Client,
    name: &str,
) -> Vec<aws_sdk_kinesis::types::Record> {
    let iterator = client
        .get_shard_iterator()
        .stream_name(name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetShardIterator {name}: {e:?}"))
        .shard_iterator
        .expect("a shard iterator");
    client
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetRecords {name}: {e:?}"))
        .records
}
