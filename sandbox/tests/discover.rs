//! Discovery from what the real CDK CLI deployed through the edge: functions with their
//! environment and code, the two event source mappings, the API route.

mod common;

use common::{root, Stack};
use sandbox::awsjson::AwsJson;
use sandbox::discover::{discover, fetch_code, unpack};
use sandbox::pollers::SourceKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cdk_deployed_is_found_with_its_code() {
    let root = root();
    let cdk = root.join("cdk");
    assert!(
        cdk.join("node_modules/.bin/cdk").exists(),
        "run `make cdk-deps` (npm ci in cdk/) first"
    );
    let stack = Stack::start(Default::default()).await;
    let port = stack.addr.rsplit(':').next().unwrap().to_owned();

    let scratch = testkit::Scratch::new("sandbox-discover");
    let work = scratch.path().to_owned();
    let dist = work.join("dist");
    for f in ["upstream", "midstream", "downstream"] {
        std::fs::create_dir_all(dist.join(f)).unwrap();
        std::fs::write(
            dist.join(f).join("bootstrap"),
            format!("#!/bin/sh\n# {f}\n"),
        )
        .unwrap();
    }
    // The same deploy `sandbox up --deploy` runs.
    let config = sandbox::up::UpConfig {
        root: root.clone(),
        port: port.parse().unwrap(),
        deploy: true,
        hot: false,
        dist: dist.clone(),
        concurrency: 1,
        state: work.clone(),
        kill_workers: Vec::new(),
        seed: 1,
        lambda_metrics: true,
        delays: Vec::new(),
        burns: Vec::new(),
        leaks: Vec::new(),
        cpu_share: false,
        profile: Default::default(),
    };
    let logs: sandbox::lambda::LogSink = std::sync::Arc::new(|_, _| {});
    sandbox::up::deploy(&config, &work.join("cdk-outputs.json"), &logs)
        .await
        .expect("cdk bootstrap and deploy through the edge");

    let api = AwsJson::new(stack.moto.addr, "us-east-1");
    let deployed = discover(&api).await.unwrap();
    assert_eq!(deployed.functions.len(), 3);
    let by_env = |var: &str| {
        deployed
            .functions
            .iter()
            .find(|f| f.environment.contains_key(var))
            .unwrap()
    };
    let upstream = by_env("STREAM_NAME");
    assert_eq!(upstream.environment["STREAM_NAME"], "KinesisStream");
    assert_eq!((upstream.timeout.as_secs(), upstream.memory_mb), (10, 256));
    let midstream = by_env("TABLE_NAME");

    assert_eq!(deployed.mappings.len(), 2);
    let kinesis = deployed
        .mappings
        .iter()
        .find(|m| m.kind == SourceKind::Kinesis)
        .unwrap();
    assert_eq!(kinesis.function_arn, midstream.arn);
    assert!(kinesis.report_batch_item_failures && kinesis.bisect_on_error && kinesis.enabled);
    assert_eq!(kinesis.batch_size, 100);

    assert_eq!(deployed.routes.len(), 1);
    let route = &deployed.routes[0];
    assert_eq!(
        (
            route.stage.as_str(),
            route.path.as_str(),
            route.method.as_str()
        ),
        ("prod", "/", "POST")
    );
    assert_eq!(route.function_arn, upstream.arn);

    let zip = fetch_code(
        &api,
        upstream.code_key.as_deref().unwrap(),
        "123456789012",
        "us-east-1",
    )
    .await
    .unwrap();
    let bootstrap = unpack(&zip, &work.join("code/upstream")).unwrap();
    assert_eq!(
        std::fs::read_to_string(bootstrap).unwrap(),
        "#!/bin/sh\n# upstream\n"
    );

    stack.stop().await;
}
