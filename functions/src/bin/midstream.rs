//! The midstream Lambda function: Kinesis → DynamoDB. Wiring only; logic in `functions::midstream`.

use std::convert::Infallible;

use functions::aws::{cloudwatch::CloudWatchSink, dynamodb::DynamoStore};
use functions::config::{process_env, MidstreamConfig};
use functions::events::KinesisPayload;
use functions::{aws, exit_on_config_error, midstream::Midstream, system_clock};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = exit_on_config_error(MidstreamConfig::from_env(process_env));
    let sdk = aws::load_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name);
    let metrics = CloudWatchSink::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let function = Midstream::new(store, metrics, config.namespace, system_clock);
    let function = &function;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisPayload>| async move {
            functions::whatif::each_invocation();
            Ok::<_, Infallible>(function.handle(event.payload.0).await)
        },
    ))
    .await
}
