//! API Gateway on the edge: loadgen's requests reach the real upstream as proxy events; unknown
//! routes, bad function answers and timeouts get API Gateway's answers.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sandbox::apigateway::{Route, Routes};
use sandbox::edge::Edge;
use sandbox::lambda::{FunctionHost, FunctionSpec, LogSink};
use sandbox::moto::Moto;

fn function_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} not found: build the functions first (cargo build -p functions)",
        path.display()
    );
    path
}

fn spec(name: &str, executable: PathBuf, env: &[(&str, &str)], timeout_ms: u64) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
        executable,
        environment: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout: Duration::from_millis(timeout_ms),
        concurrency: 2,
        memory_mb: 256,
        init_timeout: Duration::from_secs(5),
    }
}

fn route(path: &str, method: &str, function: Arc<FunctionHost>) -> Route {
    Route {
        api_id: "api1".into(),
        stage: "prod".into(),
        resource_path: path.into(),
        method: method.into(),
        function,
    }
}

/// A raw HTTP/1.1 request; returns the status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    (
        status,
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_posts_through_the_edge_into_upstream_and_errors_look_like_api_gateway() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let moto = Moto::start(&root).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let routes: Arc<Routes> = Arc::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let edge = tokio::spawn(
        Edge::with_routes(moto.addr, routes.clone()).serve(listener, async {
            let _ = stopped.await;
        }),
    );

    let edge_url = format!("http://{addr}");
    let env = [
        ("STREAM_NAME", "KinesisStream"),
        ("AWS_ENDPOINT_URL", edge_url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let sdk = functions::aws::loader()
        .endpoint_url(&edge_url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "testing", "testing", None, None, "t",
        ))
        .load()
        .await;
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    kinesis
        .create_stream()
        .stream_name("KinesisStream")
        .shard_count(1)
        .send()
        .await
        .unwrap();

    let logs: LogSink = Arc::new(|_, _| {});
    let bash = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bash-runtime.sh");
    let upstream = FunctionHost::start(
        spec("upstream", function_binary("upstream"), &env, 10_000),
        logs.clone(),
    )
    .await
    .unwrap();
    let echo = FunctionHost::start(
        spec("echo", bash.clone(), &[("MODE", "echo")], 5_000),
        logs.clone(),
    )
    .await
    .unwrap();
    let hang = FunctionHost::start(spec("hang", bash, &[("MODE", "hang")], 300), logs.clone())
        .await
        .unwrap();
    routes.set(vec![
        route("/", "POST", upstream.clone()),
        route("/echo", "ANY", echo.clone()),
        route("/slow", "POST", hang.clone()),
    ]);

    // loadgen, as a user runs it, against the edge's stage URL.
    let url = format!("{edge_url}/prod/");
    let config = loadgen::opts::Opts::try_parse_from([
        "loadgen",
        "--quiet",
        &url,
        "--iterations",
        "30",
        "--vus",
        "3",
        "--run-id",
        "apigw",
    ])
    .unwrap()
    .into_config(|_| None, 0)
    .unwrap();
    let summary = loadgen::run(config, loadgen::Stop::new()).await.unwrap();
    assert_eq!(
        (summary.stats.requests, summary.stats.accepted),
        (30, 30),
        "{:?}",
        summary.stats.failures
    );

    let iterator = kinesis
        .get_shard_iterator()
        .stream_name("KinesisStream")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let records = kinesis
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .unwrap()
        .records;
    assert_eq!(records.len(), 30, "every accepted request is in the stream");

    let (a, u) = (addr.clone(), addr.clone());
    let (invalid, unknown, garbage, slow) = tokio::task::spawn_blocking(move || {
        (
            http(&a, "POST", "/prod/", r#"{"id":"x","message":"m"}"#),
            http(&u, "GET", "/prod/", ""),
            http(&u, "POST", "/prod/echo", "{}"),
            http(&u, "POST", "/prod/slow", "{}"),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        invalid,
        (400, r#"{"message":"missing field `timestamp`"}"#.to_owned())
    );
    assert_eq!(
        unknown,
        (
            403,
            r#"{"message":"Missing Authentication Token"}"#.to_owned()
        )
    );
    assert_eq!(
        garbage,
        (502, r#"{"message":"Internal server error"}"#.to_owned()),
        "a non-proxy answer is a 502"
    );
    assert_eq!(
        slow,
        (
            504,
            r#"{"message":"Endpoint request timed out"}"#.to_owned()
        )
    );

    for host in [upstream, echo, hang] {
        host.stop().await;
    }
    let _ = stop.send(());
    let _ = edge.await;
    moto.stop().await;
}
