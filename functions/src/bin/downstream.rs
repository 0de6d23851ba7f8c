//! The downstream Lambda function: DynamoDB stream → CloudWatch. Wiring only; logic in
//! `functions::downstream`.

use functions::aws::cloudwatch::CloudWatchSink;
use functions::config::{process_env, DownstreamConfig};
use functions::events::DynamoDbPayload;
use functions::{aws, downstream::Downstream, exit_on_config_error, system_clock};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = exit_on_config_error(DownstreamConfig::from_env(process_env));
    let sdk = aws::load_config().await;
    let metrics = CloudWatchSink::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let function = Downstream::new(metrics, config.namespace, system_clock);
    let function = &function;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DynamoDbPayload>| async move {
            functions::whatif::each_invocation();
            function.handle(event.payload.0).await
        },
    ))
    .await
}
