//! The functions' SDK configuration honours the SDK's environment, `AWS_ENDPOINT_URL` included,
//! as Lambda on LocalStack and the sandbox set it. One test in its own binary: it sets the
//! process environment.

use functions::sinks::RecordSink;
use testkit::MotoServer;

#[tokio::test]
async fn aws_endpoint_url_from_the_environment_is_used() {
    let moto = MotoServer::start();
    // Safe here: this binary runs this one test, before any other thread reads the environment.
    std::env::set_var("AWS_ENDPOINT_URL", moto.endpoint());
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::remove_var("AWS_PROFILE");

    let sdk = functions::aws::load_config().await;
    assert_eq!(sdk.endpoint_url(), Some(moto.endpoint().as_str()));
    let client = aws_sdk_kinesis::Client::new(&sdk);
    client
        .create_stream()
        .stream_name("S")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let sink = functions::aws::kinesis::KinesisSink::new(client.clone(), "S".into());
    sink.put_record("k", b"v".to_vec()).await.unwrap();
    let streams = client.list_streams().send().await.unwrap();
    assert_eq!(streams.stream_names(), ["S"]);
}
