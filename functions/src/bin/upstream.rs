//! The upstream Lambda function: API Gateway → Kinesis. Wiring only; logic in `functions::upstream`.

use std::convert::Infallible;

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use functions::config::{process_env, UpstreamConfig};
use functions::{
    aws, aws::kinesis::KinesisSink, exit_on_config_error, system_clock, upstream::Upstream,
};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = exit_on_config_error(UpstreamConfig::from_env(process_env));
    let sdk = aws::load_config().await;
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(&sdk), config.stream_name);
    let function = Upstream::new(sink, system_clock);
    let function = &function;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayProxyRequest>| async move {
            functions::whatif::each_invocation();
            Ok::<_, Infallible>(function.handle(event.payload).await)
        },
    ))
    .await
}
