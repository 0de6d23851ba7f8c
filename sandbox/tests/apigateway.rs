//! API Gateway on the edge: loadgen's requests reach the real upstream as proxy events; unknown
//! routes, bad function answers and timeouts get API Gateway's answers. Lambda's Invoke API on
//! the edge, through boto3.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use clap::Parser;
use common::{bash_runtime, function_binary, function_env, kinesis_with_stream, sdk, spec, Stack};
use sandbox::apigateway::{Route, Routes};
use sandbox::lambda::{FunctionHost, LogSink};

fn route(path: &str, method: &str, function: Arc<FunctionHost>) -> Route {
    Route {
        api_id: "api1".into(),
        api_name: "PipelineApi".into(),
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
    let routes: Arc<Routes> = Arc::default();
    let stack = Stack::start(routes.clone()).await;
    let (addr, edge_url) = (stack.addr.clone(), stack.edge_url.clone());
    let env = function_env(&edge_url, &[("STREAM_NAME", "KinesisStream")]);
    let sdk = sdk(&edge_url).await;
    let kinesis = kinesis_with_stream(&sdk).await;

    let logs: LogSink = Arc::new(|_, _| {});
    let bash = bash_runtime();
    let upstream = FunctionHost::start(
        spec("upstream", function_binary("upstream"), &env, 10_000, 2),
        logs.clone(),
    )
    .await
    .unwrap();
    let echo = FunctionHost::start(
        spec("echo", bash.clone(), &[("MODE", "echo")], 5_000, 2),
        logs.clone(),
    )
    .await
    .unwrap();
    let hang = FunctionHost::start(
        spec("hang", bash, &[("MODE", "hang")], 300, 2),
        logs.clone(),
    )
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

    let records = testkit::aws::stream_records(&kinesis, "KinesisStream").await;
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
    stack.stop().await;
}

/// The first line of the edge's answer to raw bytes, and how long it took.
fn raw(addr: &str, bytes: &[u8]) -> (String, std::time::Duration) {
    let started = std::time::Instant::now();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    // A refused body may close the connection before all of it is written.
    let _ = stream.write_all(bytes);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    (
        text.lines().next().unwrap_or_default().to_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_bounds_bodies_and_refuses_what_api_gateway_would() {
    let routes: Arc<Routes> = Arc::default();
    let stack = Stack::start(routes.clone()).await;
    let bash = bash_runtime();
    let logs: LogSink = Arc::new(|_, _| {});
    let echo = FunctionHost::start(spec("echo", bash, &[("MODE", "echo")], 5_000, 1), logs)
        .await
        .unwrap();
    routes.set(vec![route("/", "POST", echo.clone())]);
    let addr = stack.addr.clone();
    let answers = tokio::task::spawn_blocking(move || {
        let huge = 200 * 1024 * 1024;
        [
            // A declared 200 MiB body: 413 before a byte of it is read.
            raw(&addr, format!("POST /prod/ HTTP/1.1\r\nHost: x\r\nContent-Length: {huge}\r\n\r\n").as_bytes()),
            // 11 MB sent in chunks, no length declared: 413 once the limit is passed.
            {
                let mut request = b"POST /prod/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                let chunk = vec![b'x'; 1 << 20];
                for _ in 0..11 {
                    request.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
                    request.extend(&chunk);
                    request.extend(b"\r\n");
                }
                request.extend(b"0\r\n\r\n");
                raw(&addr, &request)
            },
            // An unknown stage, unsigned: API Gateway's 403, not moto's page.
            raw(&addr, b"POST /nostage/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"),
            // A head that never ends: the connection is closed after the header timeout.
            raw(&addr, b"POST /prod/ HTTP/1.1\r\nHost: x\r\n"),
        ]
    })
    .await
    .unwrap();
    assert!(answers[0].0.starts_with("HTTP/1.1 413"), "{answers:?}");
    assert!(
        answers[0].1 < std::time::Duration::from_secs(10),
        "{answers:?}"
    );
    assert!(answers[1].0.starts_with("HTTP/1.1 413"), "{answers:?}");
    assert!(answers[2].0.starts_with("HTTP/1.1 403"), "{answers:?}");
    let (line, took) = &answers[3];
    // Closed at the header timeout (30 s); a loaded machine may add a few seconds.
    assert!(
        !line.starts_with("HTTP/1.1 2")
            && *took >= sandbox::edge::limits::HEADER_TIMEOUT
            && *took < 3 * sandbox::edge::limits::HEADER_TIMEOUT,
        "{line:?} after {took:?}"
    );
    echo.stop().await;
    stack.stop().await;
}

/// Writes `head` and then `body_mib` MiB of body, whole, before reading; the answer's first line.
fn write_then_read(addr: &str, head: &str, body_mib: usize, chunked: bool) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mib = vec![b'x'; 1 << 20];
    for _ in 0..body_mib {
        if chunked {
            stream
                .write_all(format!("{:x}\r\n", mib.len()).as_bytes())
                .unwrap();
        }
        stream
            .write_all(&mib)
            .expect("the edge reads a refused body to its end");
        if chunked {
            stream.write_all(b"\r\n").unwrap();
        }
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").unwrap();
    }
    let mut answer = [0u8; 256];
    let n = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_is_answered_while_it_streams_and_read_to_its_end() {
    let routes: Arc<Routes> = Arc::default();
    let stack = Stack::start(routes.clone()).await;
    let logs: LogSink = Arc::new(|_, _| {});
    let echo = FunctionHost::start(
        spec("echo", bash_runtime(), &[("MODE", "echo")], 5_000, 1),
        logs,
    )
    .await
    .unwrap();
    routes.set(vec![route("/", "POST", echo.clone())]);
    let addr = stack.addr.clone();
    let (streaming, whole_declared, whole_chunked) = tokio::task::spawn_blocking(move || {
        // 11 MiB of chunks and no end: the 413 must come while the body is still open, which
        // an edge that read the whole body first could never send.
        let mut open = std::net::TcpStream::connect(&addr).unwrap();
        open.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        open.write_all(b"POST /prod/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let mib = vec![b'x'; 1 << 20];
        for _ in 0..11 {
            open.write_all(format!("{:x}\r\n", mib.len()).as_bytes())
                .unwrap();
            open.write_all(&mib).unwrap();
            open.write_all(b"\r\n").unwrap();
        }
        let mut answer = [0u8; 256];
        let n = open.read(&mut answer).unwrap_or(0);
        let streaming = String::from_utf8_lossy(&answer[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        // A client that writes its whole 24 MiB body before it reads (Python's http.client,
        // Java's HttpURLConnection) gets the 413, not a broken pipe.
        let declared = write_then_read(
            &addr,
            &format!(
                "POST /prod/ HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                24 << 20
            ),
            24,
            false,
        );
        let chunked = write_then_read(
            &addr,
            "POST /prod/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            24,
            true,
        );
        (streaming, declared, chunked)
    })
    .await
    .unwrap();
    assert!(streaming.starts_with("HTTP/1.1 413"), "{streaming:?}");
    assert!(
        whole_declared.starts_with("HTTP/1.1 413"),
        "{whole_declared:?}"
    );
    assert!(
        whole_chunked.starts_with("HTTP/1.1 413"),
        "{whole_chunked:?}"
    );
    echo.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bodies_held_at_once_share_one_budget() {
    // 16 MiB for every body at once: one upload of 12 MiB held open, a second of 8 MiB is
    // refused with AWS's retryable 503; once the first is gone, the second goes through.
    let stack = Stack::with_budget(Arc::default(), 16 << 20).await;
    let addr = stack.addr.clone();
    let (refused, later) = tokio::task::spawn_blocking(move || {
        let signed = "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n";
        let mut held = std::net::TcpStream::connect(&addr).unwrap();
        held.write_all(format!("PUT /bucket/a HTTP/1.1\r\nHost: x\r\n{signed}Transfer-Encoding: chunked\r\n\r\n").as_bytes())
            .unwrap();
        let mib = vec![b'x'; 1 << 20];
        for _ in 0..12 {
            held.write_all(format!("{:x}\r\n", mib.len()).as_bytes()).unwrap();
            held.write_all(&mib).unwrap();
            held.write_all(b"\r\n").unwrap();
        }
        // Let the edge read what was sent.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let head = format!("PUT /bucket/b HTTP/1.1\r\nHost: x\r\n{signed}Content-Length: {}\r\nConnection: close\r\n\r\n", 8 << 20);
        let refused = write_then_read(&addr, &head, 8, false);
        drop(held);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let later = write_then_read(&addr, &head, 8, false);
        (refused, later)
    })
    .await
    .unwrap();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused:?}");
    assert!(!later.starts_with("HTTP/1.1 503"), "{later:?}");
    stack.stop().await;
}

/// Lambda's Invoke API on the edge, called by boto3 (the AWS SDK `aws lambda invoke` is built
/// on): a function's answer, a function error with `FunctionError`, an Event invocation (202)
/// that runs, a DryRun, and an unknown function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invoke_api_reaches_the_functions_as_on_lambda() {
    let stack = Stack::start(Arc::default()).await;
    let lines: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    let logs: LogSink =
        Arc::new(move |f: &str, l: &str| sink.lock().unwrap().push(format!("[{f}] {l}")));
    let start = |name: &str, mode: &str| {
        FunctionHost::start(
            spec(name, bash_runtime(), &[("MODE", mode)], 5_000, 1),
            logs.clone(),
        )
    };
    let echo = start("echo", "echo").await.unwrap();
    let failing = start("failing", "error").await.unwrap();
    stack
        .functions
        .set([echo.clone(), failing.clone()], logs.clone());

    let script = r#"
import json, sys, boto3
client = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
out = {}
r = client.invoke(FunctionName="echo", Payload=b'{"n": 1}')
out["echo"] = [r["StatusCode"], json.loads(r["Payload"].read()), r.get("FunctionError"), r["ExecutedVersion"]]
r = client.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:failing:$LATEST", Payload=b'{}')
out["failing"] = [r["StatusCode"], json.loads(r["Payload"].read()), r.get("FunctionError")]
r = client.invoke(FunctionName="failing", InvocationType="Event", Payload=b'{"event": true}')
out["event"] = r["StatusCode"]
r = client.invoke(FunctionName="echo", InvocationType="DryRun")
out["dry"] = r["StatusCode"]
try:
    client.invoke(FunctionName="nowhere", Payload=b"{}")
except client.exceptions.ResourceNotFoundException as e:
    out["missing"] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;
    let python = sandbox::moto::python(&common::root());
    let edge_url = stack.edge_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", script, &edge_url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        out["echo"],
        serde_json::json!([200, {"n": 1}, null, "$LATEST"]),
        "{out}"
    );
    assert_eq!(out["failing"][0], 200, "{out}");
    assert_eq!(out["failing"][1]["errorType"], "Boom", "{out}");
    assert_eq!(out["failing"][2], "Unhandled", "{out}");
    assert_eq!(
        (&out["event"], &out["dry"], &out["missing"]),
        (
            &serde_json::json!(202),
            &serde_json::json!(204),
            &serde_json::json!("ResourceNotFoundException")
        ),
        "{out}"
    );
    // The Event invocation ran after its 202: it failed, and the log says so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("[failing] event invocation failed: function error Boom"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the Event invocation never ran: {:?}",
            lines.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for host in [echo, failing] {
        host.stop().await;
    }
    stack.stop().await;
}
