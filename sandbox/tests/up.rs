//! `sandbox up --deploy` as a user runs it: the binary deploys the CDK app through its edge with
//! the real CDK CLI and runs the real function binaries; loadgen and the collector (their
//! binaries) run against it. Every accepted request is processed (accepted == items in DynamoDB
//! == Latency SampleCount == the collector's processed), an invalid request gets a 400 and
//! produces nothing, a malformed record put straight into the stream does not block the shard,
//! midstream crashing with a batch before it writes loses nothing, a record too large for the table is passed over,
//! midstream's workers killed at random after they wrote and before their answer counted
//! (`--kill-workers`) lose nothing and count nothing twice (the rewrites are reported as
//! redelivered), `collector audit` finds every accepted id stored (and names one deleted), a second sandbox on
//! the same state folder refuses, and `sandbox down` stops it all.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use common::{function_binary, root, sdk};
use serde_json::Value;

/// midstream's bootstrap for this test: the first worker to start takes the first batch and
/// exits without answering or writing (a crash before the writes; `--kill-workers` covers a crash
/// after them); every later start runs the real binary.
const CRASH_ONCE: &str = r#"#!/bin/bash
here=$(cd "$(dirname "$0")" && pwd)
if mkdir "$here/crashed" 2>/dev/null; then
  host=${AWS_LAMBDA_RUNTIME_API%:*}
  port=${AWS_LAMBDA_RUNTIME_API#*:}
  exec 3<>"/dev/tcp/$host/$port"
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n' "$AWS_LAMBDA_RUNTIME_API" >&3
  len=0
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case "${line,,}" in content-length:*) len=${line#*: } ;; esac
  done
  head -c "$len" <&3 > "$here/crashed/event.json"
  exit 3
fi
exec "$here/real-bootstrap"
"#;

/// The sandbox process; SIGTERM and a wait when dropped (a failed test leaves nothing running).
struct Sandbox {
    child: Child,
    log: PathBuf,
}

impl Sandbox {
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // SAFETY: signals our own child by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn copy_executable(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A POST on a fresh connection: the status and the body.
fn post(url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn run(binary: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(binary)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    assert!(
        output.status.success(),
        "{} {args:?}: {}\n{}",
        binary.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_up_runs_the_whole_pipeline_and_loses_nothing() {
    let root = root();
    assert!(
        root.join("cdk/node_modules/.bin/cdk").exists(),
        "run `make cdk-deps` (npm ci in cdk/) first"
    );
    let work = std::env::temp_dir().join(format!("sandbox-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let dist = work.join("dist");
    for f in ["upstream", "downstream", "loadgen-worker"] {
        copy_executable(&function_binary(f), &dist.join(f).join("bootstrap"));
    }
    copy_executable(
        &function_binary("midstream"),
        &dist.join("midstream/real-bootstrap"),
    );
    std::fs::write(dist.join("midstream/bootstrap"), CRASH_ONCE).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(dist.join("midstream/bootstrap"), mode).unwrap();
    }

    let state = work.join("state");
    let port = testkit::free_port().to_string();
    let log = work.join("sandbox.log");
    std::fs::create_dir_all(&work).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["up", "--deploy", "--port", &port, "--concurrency", "2"])
        .args(["--kill-workers", "midstream=0.25"])
        // The CDK app also deploys the loadgen worker, for `loadgen --lambda`.
        .env("LOADGEN_WORKER", "true")
        .arg("--dist")
        .arg(&dist)
        .arg("--state")
        .arg(&state)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start sandbox up");
    let mut sandbox = Sandbox { child, log };

    // Ready when it writes the outputs file (a cdk deploy takes a while).
    let outputs_file = state.join("outputs.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !outputs_file.exists() {
        if let Ok(Some(status)) = sandbox.child.try_wait() {
            panic!("sandbox up exited ({status}):\n{}", sandbox.log());
        }
        assert!(
            Instant::now() < deadline,
            "not ready in 300 s:\n{}",
            sandbox.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let outputs: Value =
        serde_json::from_str(&std::fs::read_to_string(&outputs_file).unwrap()).unwrap();
    let stack = &outputs["PipelineStack"];
    let api = stack["ApiGatewayMethodEndpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let edge = stack["AwsEndpointUrl"].as_str().unwrap().to_owned();
    let table = stack["DynamoDBTableName"].as_str().unwrap().to_owned();
    let stream = stack["KinesisStreamName"].as_str().unwrap().to_owned();
    assert_eq!(edge, format!("http://127.0.0.1:{port}"));
    assert!(api.starts_with(&edge), "{api}");

    // A second sandbox on the same state folder refuses before touching anything.
    let second = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["up", "--port", &testkit::free_port().to_string(), "--state"])
        .arg(&state)
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{said}");
    assert!(said.contains("already running from"), "{said}");
    assert!(outputs_file.exists() && state.join("sandbox.pid").exists());

    // A request whose timestamp lies outside the API's window: 400 naming the window.
    let (status, body) = tokio::task::spawn_blocking({
        let api = api.clone();
        move || post(&api, r#"{"id":"old","message":"m","timestamp":1}"#)
    })
    .await
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("within 24 hours before"), "{body}");

    // An invalid request: 400 with the reason, nothing enqueued.
    let (status, body) = tokio::task::spawn_blocking({
        let api = api.clone();
        move || post(&api, r#"{"id":"bad","message":"no timestamp"}"#)
    })
    .await
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("timestamp"), "the reason: {body}");

    // The load: 5 VUs for 10 s; once the first requests are stored, a malformed record and a
    // poison one (valid JSON, too large for a DynamoDB item) straight into the stream, so the
    // rest of the load comes after them on the shard. Then the collector waits for every
    // accepted request.
    let run_file = work.join("run.json");
    let export = work.join("timestamps.json");
    let load = Command::new(function_binary("loadgen"))
        .arg("--outputs")
        .arg(&outputs_file)
        .args([
            "--vus",
            "5",
            "--duration",
            "10s",
            "--quiet",
            "--summary-export",
        ])
        .arg(&run_file)
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let sdk = sdk(&edge).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(&sdk, &table).await < 20 {
        assert!(Instant::now() < deadline, "nothing stored in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    aws_sdk_kinesis::Client::new(&sdk)
        .put_record()
        .stream_name(&stream)
        .partition_key("junk")
        .data(Blob::new("not a record"))
        .send()
        .await
        .unwrap();
    let poison = format!(
        r#"{{"id":"poison","message":"{}","timestamp":{},"run_id":"poison","received_at":1}}"#,
        "x".repeat(450_000),
        collector::epoch_ms()
    );
    aws_sdk_kinesis::Client::new(&sdk)
        .put_record()
        .stream_name(&stream)
        .partition_key("poison")
        .data(Blob::new(poison))
        .send()
        .await
        .unwrap();
    let run_arg = run_file.to_str().unwrap().to_owned();
    let export_arg = export.to_str().unwrap().to_owned();
    let outputs_arg = outputs_file.to_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let loaded = load.wait_with_output().unwrap();
        assert!(
            loaded.status.success(),
            "loadgen: {}\n{}",
            loaded.status,
            String::from_utf8_lossy(&loaded.stderr)
        );
        let waited = run(
            &function_binary("collector"),
            &[
                "wait",
                "--run",
                &run_arg,
                "--outputs",
                &outputs_arg,
                "--out",
                &export_arg,
                "--poll",
                "1s",
                "--quiet",
                "20s",
                "--timeout",
                "3m",
                "--no-progress",
            ],
        );
        assert!(
            String::from_utf8_lossy(&waited.stderr).contains("complete:"),
            "{}",
            String::from_utf8_lossy(&waited.stderr)
        );
    })
    .await
    .unwrap();

    let run_file: contract::runfile::RunFile =
        serde_json::from_str(&std::fs::read_to_string(&run_file).unwrap()).unwrap();
    let accepted = run_file.run.requests_accepted;
    assert!(accepted > 50, "{accepted} requests in 10 s");
    assert_eq!(accepted, run_file.run.requests_sent, "no request failed");
    let export =
        contract::export::LatencyExport::from_json(&std::fs::read_to_string(&export).unwrap())
            .unwrap();
    assert_eq!(export.run.processed, accepted, "collector's processed");
    // A quarter of midstream's answers were lost with their workers after the items were
    // written: the retries wrote them again, and downstream counted those apart.
    assert!(
        export.run.redelivered > 0,
        "rewrites are reported as redelivered: {:?}",
        export.run
    );
    assert_eq!(export.latency.count, accepted, "Latency SampleCount");
    assert_eq!(export.histogram.count(), accepted, "LatencyBucket counts");
    // One clock on this machine: no request reaches Kinesis before it was sent (the arrival time
    // is read to the millisecond: functions::events).
    let first_hop = export.hops["ClientToKinesisLatency"];
    assert_eq!(first_hop.count, accepted);
    assert!(first_hop.min_ms >= 0.0, "{first_hop:?}");

    assert_eq!(
        stored(&sdk, &table).await,
        accepted,
        "items in DynamoDB: the 400s, the malformed and the poison record add none"
    );

    // The audit finds every accepted id in the table; with one item deleted, it names it.
    let audit_file = work.join("audit.json");
    let audit = |expect: i32| {
        let output = Command::new(function_binary("collector"))
            .args(["audit", "--run"])
            .arg(work.join("run.json"))
            .arg("--outputs")
            .arg(&outputs_file)
            .arg("--out")
            .arg(&audit_file)
            .current_dir(&root)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(expect), "{said}");
        let audit: Value =
            serde_json::from_str(&std::fs::read_to_string(&audit_file).unwrap()).unwrap();
        (said, audit)
    };
    let (said, report) = audit(0);
    assert!(
        said.contains(&format!("{accepted} accepted, {accepted} stored, 0 lost")),
        "{said}"
    );
    assert_eq!(report["lost"], 0);
    let victim = format!("{}-0-1", run_file.run.run_id);
    aws_sdk_dynamodb::Client::new(&sdk)
        .delete_item()
        .table_name(&table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(victim.clone()),
        )
        .send()
        .await
        .unwrap();
    let (said, report) = audit(3);
    assert!(said.contains(&format!("1 lost: {victim}")), "{said}");
    assert_eq!(report["lost_ids"], serde_json::json!([victim]));

    // midstream crashed once holding a batch of the run's records; they are all in the counts
    // above, so the batch was retried and nothing was lost.
    let crashed_event = state
        .join("functions")
        .read_dir()
        .unwrap()
        .filter_map(Result::ok)
        .map(|f| f.path().join("crashed/event.json"))
        .find(|p| p.exists())
        .expect("the crash-once bootstrap took a batch");
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(&crashed_event).unwrap()).unwrap();
    let records = event["Records"].as_array().expect("a Kinesis batch");
    assert!(!records.is_empty());
    let first = {
        use base64::Engine;
        let data = records[0]["kinesis"]["data"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    assert_eq!(first["run_id"], run_file.run.run_id.as_str(), "{first}");
    let log = sandbox.log();
    assert!(log.contains("exited mid-invocation"), "{log}");
    assert!(
        log.contains("killed after it answered (fault injection)"),
        "{log}"
    );
    assert!(
        log.contains("malformed record"),
        "the malformed record is logged:\n{log}"
    );
    assert!(
        log.contains("record data is") && log.contains("the limit is 131072"),
        "the poison record is logged and passed over:\n{log}"
    );
    // Passed over by midstream, not given up by the mapping: the failed-batches queue (the
    // mappings' on-failure destination) is empty.
    let queue = stack["FailedBatchesQueueUrl"].as_str().unwrap();
    let api =
        sandbox::awsjson::AwsJson::new(format!("127.0.0.1:{port}").parse().unwrap(), "us-east-1");
    let attributes = api
        .call(
            "sqs",
            "AmazonSQS.GetQueueAttributes",
            &serde_json::json!({"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        attributes["Attributes"]["ApproximateNumberOfMessages"], "0",
        "{attributes}"
    );
    assert!(!log.contains("poller: discarded"), "{log}");

    // Load from the loadgen worker function, invoked through the sandbox's Lambda Invoke API:
    // two workers with half the iterations each, merged; the collector then finds every
    // accepted request processed.
    let fanned = work.join("lambda-run.json");
    let lambda = Command::new(function_binary("loadgen"))
        .arg("--outputs")
        .arg(&outputs_file)
        .args(["--lambda", "2", "--iterations", "60", "--vus", "4"])
        .args(["--run-id", "fanned", "--quiet", "--summary-export"])
        .arg(&fanned)
        .env("AWS_ENDPOINT_URL", &edge)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .current_dir(&root)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&lambda.stdout);
    assert!(
        lambda.status.success(),
        "{said}\n{}\n{}",
        String::from_utf8_lossy(&lambda.stderr),
        sandbox.log()
    );
    assert!(said.contains("1/2 2/2 (all 2 workers)"), "{said}");
    let fanned_run: contract::runfile::RunFile =
        serde_json::from_str(&std::fs::read_to_string(&fanned).unwrap()).unwrap();
    assert_eq!(fanned_run.run.requests_sent, 60);
    assert_eq!(fanned_run.run.requests_accepted, 60);
    let waited = run(
        &function_binary("collector"),
        &[
            "wait",
            "--run",
            fanned.to_str().unwrap(),
            "--outputs",
            outputs_file.to_str().unwrap(),
            "--out",
            work.join("lambda-timestamps.json").to_str().unwrap(),
            "--poll",
            "1s",
            "--timeout",
            "2m",
            "--no-progress",
        ],
    );
    let said = String::from_utf8_lossy(&waited.stderr);
    assert!(
        said.contains("complete: 60 of 60 accepted requests processed"),
        "{said}"
    );

    // `sandbox down` stops everything: a clean exit, the call table, the port closed, no
    // outputs left.
    let down = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["down", "--state"])
        .arg(&state)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let status = sandbox.terminate().expect("sandbox stopped within 30 s");
    assert!(status.success(), "{status}\n{}", sandbox.log());
    let log = sandbox.log();
    assert!(log.contains("moto's answers by operation"), "{log}");
    assert!(log.contains("Kinesis_20131202.PutRecord"), "{log}");
    assert!(!outputs_file.exists());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err(),
        "the edge's port is closed"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// The items in the table, every page of a scan.
async fn stored(sdk: &aws_config::SdkConfig, table: &str) -> u64 {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut items = 0;
    let mut start_key = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .unwrap();
        items += page.count as u64;
        start_key = page.last_evaluated_key;
        if start_key.is_none() {
            return items;
        }
    }
}
