//! Discovery from what the real CDK CLI deployed through the edge: functions with their
//! environment and code, the two event source mappings, the API route.

mod common;

use std::process::Command;

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

    let work = std::env::temp_dir().join(format!("sandbox-discover-{}", std::process::id()));
    let dist = work.join("dist");
    for f in ["upstream", "midstream", "downstream"] {
        std::fs::create_dir_all(dist.join(f)).unwrap();
        std::fs::write(
            dist.join(f).join("bootstrap"),
            format!("#!/bin/sh\n# {f}\n"),
        )
        .unwrap();
    }
    let endpoint = format!("http://localhost:{port}");
    let (cdk_dir, out_dir, dist_dir) = (cdk.clone(), work.join("cdk.out"), dist.clone());
    let cdk_run = move |args: &[&str]| {
        let output = Command::new("npx")
            .arg("cdk")
            .args(args)
            .args(["--no-notices", "--output", out_dir.to_str().unwrap()])
            .current_dir(&cdk_dir)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ENDPOINT_URL_S3", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env("PIPELINE_TARGET", "sandbox")
            .env("LAMBDA_DIST_PATH", &dist_dir)
            .env("CDK_DISABLE_VERSION_CHECK", "1")
            .env("CDK_DISABLE_CLI_TELEMETRY", "true")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cdk {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    tokio::task::spawn_blocking(move || {
        cdk_run(&["bootstrap", "aws://123456789012/us-east-1"]);
        cdk_run(&["deploy", "--require-approval", "never", "--method=direct"]);
    })
    .await
    .unwrap();

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
    let bootstrap = unpack(
        &zip,
        &work.join("code/upstream"),
        &root.join(".venv/bin/python"),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(bootstrap).unwrap(),
        "#!/bin/sh\n# upstream\n"
    );

    stack.stop().await;
    let _ = std::fs::remove_dir_all(&work);
}
