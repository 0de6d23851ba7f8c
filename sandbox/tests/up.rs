//! `sandbox up` as a user runs it: the binary deploys the CDK app through its edge with the real
//! CDK CLI and runs the real function binaries; loadgen and the collector (their binaries) run
//! against it. One deployed sandbox is shared by the tests that need one (started by the first,
//! with midstream's workers killed at random after they write, and a midstream that crashes once
//! holding a batch); each behaviour is its own test, so that one failure hides no other. The
//! tests of how a sandbox stops (`sandbox down`, moto killed, a signal during the deploy) start
//! sandboxes of their own.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use common::{function_binary, root, sdk};
use serde_json::Value;

/// midstream's bootstrap for the shared sandbox: the first worker to start takes the first batch
/// and exits without answering or writing (a crash before the writes; `--kill-workers` covers a
/// crash after them); every later start runs the real binary.
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
  # Written whole, then moved into place: the test reads it as soon as it exists.
  head -c "$len" <&3 > "$here/crashed/event.part"
  mv "$here/crashed/event.part" "$here/crashed/event.json"
  exit 3
fi
exec "$here/real-bootstrap"
"#;

/// The deployed sandbox the tests share, and what its outputs file says.
struct Shared {
    work: PathBuf,
    state: PathBuf,
    log: PathBuf,
    outputs_file: PathBuf,
    api: String,
    edge: String,
    table: String,
    stream: String,
    failed_batches: String,
}

impl Shared {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The shared sandbox, started by the first test that asks. It runs in a thread of its own that
/// lives as long as the test process; the kernel stops the sandbox (SIGTERM, by
/// `PR_SET_PDEATHSIG`) when the process ends, and the sandbox stops all it started.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let root = root();
        assert!(
            root.join("cdk/node_modules/.bin/cdk").exists(),
            "run `make cdk-deps` (npm ci in cdk/) first"
        );
        // Held for the whole process; the next run's `Scratch::new` removes it.
        let work = testkit::Scratch::new("sandbox-up").keep();
        let dist = work.join("dist");
        for f in ["upstream", "downstream", "loadgen-worker"] {
            copy_executable(&function_binary(f), &dist.join(f).join("bootstrap"));
        }
        copy_executable(
            &function_binary("midstream"),
            &dist.join("midstream/real-bootstrap"),
        );
        write_executable(&dist.join("midstream/bootstrap"), CRASH_ONCE);
        let state = work.join("state");
        let log = work.join("sandbox.log");
        let port = testkit::free_port().to_string();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandbox"));
        command
            .args(["up", "--deploy", "--port", &port, "--concurrency", "2"])
            .args(["--kill-workers", "midstream=0.25"])
            // The CDK app also deploys the loadgen worker, for `loadgen --lambda`.
            .env("LOADGEN_WORKER", "true")
            .arg("--dist")
            .arg(&dist)
            .arg("--state")
            .arg(&state);
        let (started, running) = std::sync::mpsc::channel();
        let spawn_log = log.clone();
        std::thread::spawn(move || {
            let mut child = spawn_with_parent_death(command, &spawn_log);
            let _ = started.send(child.id());
            let _ = child.wait();
        });
        running.recv().expect("the sandbox started");
        let outputs_file = state.join("outputs.json");
        let deadline = Instant::now() + Duration::from_secs(300);
        while !outputs_file.exists() {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(Instant::now() < deadline, "not ready in 300 s:\n{said}");
            assert!(!said.contains("sandbox: "), "sandbox up failed:\n{said}");
            std::thread::sleep(Duration::from_millis(250));
        }
        let outputs: Value =
            serde_json::from_str(&std::fs::read_to_string(&outputs_file).unwrap()).unwrap();
        let stack = &outputs["PipelineStack"];
        let text = |key: &str| stack[key].as_str().unwrap_or_default().to_owned();
        let shared = Shared {
            api: text("ApiGatewayMethodEndpoint"),
            edge: text("AwsEndpointUrl"),
            table: text("DynamoDBTableName"),
            stream: text("KinesisStreamName"),
            failed_batches: text("FailedBatchesQueueUrl"),
            work,
            state,
            log,
            outputs_file,
        };
        assert_eq!(shared.edge, format!("http://127.0.0.1:{port}"));
        assert!(shared.api.starts_with(&shared.edge), "{}", shared.api);
        shared
    })
}

/// Starts `command` with its output in `log`, to be killed (SIGTERM) when the thread that
/// started it ends.
fn spawn_with_parent_death(mut command: Command, log: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    // SAFETY: prctl is async-signal-safe and the closure allocates nothing.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start sandbox up")
}

fn copy_executable(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
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

/// Runs a tool's binary from the repository; its output, after checking it exited `expect`.
fn run(binary: &Path, args: &[&str], expect: i32) -> std::process::Output {
    let output = Command::new(binary)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    assert_eq!(
        output.status.code(),
        Some(expect),
        "{} {args:?}: {}\n{}",
        binary.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `collector wait` for a run file against the shared sandbox; what it said.
fn wait_for(sandbox: &Shared, run_file: &Path, export: &Path) -> String {
    let output = run(
        &function_binary("collector"),
        &[
            "wait",
            "--run",
            run_file.to_str().unwrap(),
            "--outputs",
            sandbox.outputs_file.to_str().unwrap(),
            "--out",
            export.to_str().unwrap(),
            "--poll",
            "1s",
            "--quiet",
            "20s",
            "--timeout",
            "3m",
            "--no-progress",
        ],
        0,
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `collector audit` of a run file against the shared sandbox: the exit code, what it said, and
/// the audit file.
fn audit(sandbox: &Shared, run_file: &Path, out: &Path) -> (i32, String, Value) {
    let output = Command::new(function_binary("collector"))
        .args(["audit", "--run"])
        .arg(run_file)
        .arg("--outputs")
        .arg(&sandbox.outputs_file)
        .arg("--out")
        .arg(out)
        .current_dir(root())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = std::fs::read_to_string(out)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), said, report)
}

fn read_run(path: &Path) -> contract::runfile::RunFile {
    contract::runfile::RunFile::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Whether the table holds an item with this id.
async fn has_item(sdk: &aws_config::SdkConfig, table: &str, id: &str) -> bool {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
        )
        .send()
        .await
        .unwrap()
        .item
        .is_some()
}

/// The items of run `run_id` in the table, every page of a scan.
async fn stored(sdk: &aws_config::SdkConfig, table: &str, run_id: &str) -> u64 {
    use aws_sdk_dynamodb::types::{AttributeValue, Select};
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut items = 0;
    let mut start_key = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .select(Select::Count)
            .filter_expression("run_id = :r")
            .expression_attribute_values(":r", AttributeValue::S(run_id.to_owned()))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_request_gets_a_400_with_its_reason_and_nothing_is_written() {
    let sandbox = tokio::task::spawn_blocking(shared).await.unwrap();
    let api = sandbox.api.clone();
    let (window, missing) = tokio::task::spawn_blocking(move || {
        (
            post(&api, r#"{"id":"up-old","message":"m","timestamp":1}"#),
            post(&api, r#"{"id":"up-bad","message":"no timestamp"}"#),
        )
    })
    .await
    .unwrap();
    assert_eq!(window.0, 400, "{}", window.1);
    assert!(window.1.contains("within 24 hours before"), "{}", window.1);
    assert_eq!(missing.0, 400, "{}", missing.1);
    assert!(missing.1.contains("timestamp"), "the reason: {}", missing.1);
    // Nothing reached the table (given time to, had it been enqueued).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sdk = sdk(&sandbox.edge).await;
    for id in ["up-old", "up-bad"] {
        assert!(!has_item(&sdk, &sandbox.table, id).await, "{id} was stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sandbox_on_the_same_state_folder_refuses_and_touches_nothing() {
    let sandbox = tokio::task::spawn_blocking(shared).await.unwrap();
    let second = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["up", "--port", &testkit::free_port().to_string(), "--state"])
        .arg(&sandbox.state)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{said}");
    assert!(said.contains("already running from"), "{said}");
    assert!(sandbox.outputs_file.exists() && sandbox.state.join("sandbox.pid").exists());
}

/// The load: 5 VUs for 10 s, while midstream's workers are killed after a quarter of their
/// answers. Once the first requests are stored, a malformed record and a poison one (valid JSON,
/// larger than any record upstream writes) go straight into the stream, so the rest of the load
/// comes after them on the shard. Every accepted request is stored and measured once; the
/// rewrites are reported as redelivered; the bad records are logged and passed over, not given
/// up on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_through_worker_kills_and_bad_records_is_stored_and_measured_once() {
    let sandbox = tokio::task::spawn_blocking(shared).await.unwrap();
    let run_file = sandbox.work.join("load-run.json");
    let export = sandbox.work.join("load-timestamps.json");
    let load = Command::new(function_binary("loadgen"))
        .arg("--outputs")
        .arg(&sandbox.outputs_file)
        .args(["--vus", "5", "--duration", "10s", "--run-id", "up-load"])
        .args(["--quiet", "--summary-export"])
        .arg(&run_file)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let sdk = sdk(&sandbox.edge).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(&sdk, &sandbox.table, "up-load").await < 20 {
        assert!(Instant::now() < deadline, "nothing stored in 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);
    kinesis
        .put_record()
        .stream_name(&sandbox.stream)
        .partition_key("junk")
        .data(Blob::new("not a record"))
        .send()
        .await
        .unwrap();
    // Larger than the 128 KiB any record from upstream can be: refused by size, before any
    // DynamoDB call (functions' moto test shows the table's own refusal of an item).
    let poison = format!(
        r#"{{"id":"poison","message":"{}","timestamp":{},"run_id":"poison","received_at":1}}"#,
        "x".repeat(450_000),
        collector::epoch_ms()
    );
    kinesis
        .put_record()
        .stream_name(&sandbox.stream)
        .partition_key("poison")
        .data(Blob::new(poison))
        .send()
        .await
        .unwrap();
    let loaded = tokio::task::spawn_blocking(move || load.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        loaded.status.success(),
        "loadgen: {}\n{}",
        loaded.status,
        String::from_utf8_lossy(&loaded.stderr)
    );
    let said = {
        let (run_file, export) = (run_file.clone(), export.clone());
        let sandbox: &'static Shared = sandbox;
        tokio::task::spawn_blocking(move || wait_for(sandbox, &run_file, &export))
            .await
            .unwrap()
    };
    assert!(said.contains("complete:"), "{said}");

    let run = read_run(&run_file);
    let accepted = run.run.requests_accepted;
    assert!(accepted > 50, "{accepted} requests in 10 s");
    assert_eq!(accepted, run.run.requests_sent, "no request failed");
    let export_file = export;
    let export =
        contract::export::LatencyExport::from_json(&std::fs::read_to_string(&export_file).unwrap())
            .unwrap();
    assert_eq!(export.run.processed, accepted, "collector's processed");
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
        stored(&sdk, &sandbox.table, "up-load").await,
        accepted,
        "the run's items in DynamoDB"
    );
    assert!(!has_item(&sdk, &sandbox.table, "poison").await);

    // Lambda's own metrics, as the sandbox published them and CloudWatch's queries read them
    // (per function, not per run: other tests' invocations may be in the window too).
    let lambda = export
        .lambda
        .as_ref()
        .expect("the export has Lambda's metrics");
    assert_eq!(lambda.unavailable, None, "{lambda:?}");
    let roles: Vec<&str> = lambda.functions.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(roles, ["upstream", "midstream", "downstream"]);
    let [up, mid, down] = [0, 1, 2].map(|i| &lambda.functions[i]);
    assert!(
        up.invocations >= accepted,
        "one invocation per request: {up:?}"
    );
    assert!(
        mid.errors > 0,
        "a killed worker's invocation is an error: {mid:?}"
    );
    assert!(
        mid.cold_starts.unwrap_or(0) > 0 && mid.init_avg_ms.unwrap_or(0.0) > 0.0,
        "killed workers start cold again: {mid:?}"
    );
    for f in [up, mid, down] {
        let (p50, p99, max) = (
            f.duration_p50_ms.unwrap(),
            f.duration_p99_ms.unwrap(),
            f.duration_max_ms.unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{f:?}");
        assert!(f.memory_max_mb.unwrap_or(0.0) > 0.0, "{f:?}");
        assert!(f.concurrency_max.unwrap_or(0.0) >= 1.0, "{f:?}");
        assert_eq!(f.throttles, 0);
    }
    assert_eq!(up.iterator_age_max_ms, None, "upstream has no mapping");
    for f in [mid, down] {
        assert!(
            f.iterator_age_max_ms.is_some() && !f.iterator_age.is_empty(),
            "{f:?}"
        );
    }

    // What the run would cost on AWS, from the same export.
    assert!(
        export.run.metrics_requested.unwrap_or(0) > 0,
        "{:?}",
        export.run
    );
    let stats = self::run(
        &function_binary("collector"),
        &[
            "stats",
            export_file.to_str().unwrap(),
            "--run",
            run_file.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(
        stats["cost"]["total"].as_f64().unwrap() > 0.0,
        "{}",
        stats["cost"]
    );
    let gb_seconds = stats["cost"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["item"] == "Lambda duration")
        .map(|l| l["quantity"].as_f64().unwrap());
    assert!(gb_seconds.unwrap_or(0.0) > 0.0, "{}", stats["cost"]);

    let log = sandbox.log();
    let report = log
        .lines()
        .find(|l| l.contains("REPORT RequestId:") && l.contains("Init Duration:"))
        .unwrap_or_else(|| panic!("Lambda's REPORT line of a cold start:\n{log}"));
    for field in [
        "\tDuration: ",
        " ms\tBilled Duration: ",
        "\tMemory Size: 256 MB\tMax Memory Used: ",
    ] {
        assert!(report.contains(field), "{field:?} in {report:?}");
    }
    assert!(
        log.contains("killed after it answered (fault injection)"),
        "{log}"
    );
    assert!(
        log.contains("drawn with seed"),
        "the seed is printed: {log}"
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
    let api = sandbox::awsjson::AwsJson::new(
        sandbox.edge.trim_start_matches("http://").parse().unwrap(),
        "us-east-1",
    );
    let attributes = api
        .call(
            "sqs",
            "AmazonSQS.GetQueueAttributes",
            &serde_json::json!({"QueueUrl": sandbox.failed_batches, "AttributeNames": ["ApproximateNumberOfMessages"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        attributes["Attributes"]["ApproximateNumberOfMessages"], "0",
        "{attributes}"
    );
    assert!(!log.contains("poller: discarded"), "{log}");
}

/// midstream's first worker crashed holding the first batch, before writing it: the batch was
/// retried, and every request in it is in the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_held_by_a_worker_that_crashed_is_retried_and_stored() {
    let sandbox = tokio::task::spawn_blocking(shared).await.unwrap();
    // Requests of its own, in case no other test has sent any yet.
    let run_file = sandbox.work.join("crash-run.json");
    let status = Command::new(function_binary("loadgen"))
        .arg("--outputs")
        .arg(&sandbox.outputs_file)
        .args([
            "--iterations",
            "20",
            "--vus",
            "2",
            "--run-id",
            "up-crash",
            "--quiet",
        ])
        .arg("--summary-export")
        .arg(&run_file)
        .current_dir(root())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let crashed_event = loop {
        let found = sandbox
            .state
            .join("functions")
            .read_dir()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|f| f.path().join("crashed/event.json"))
            .find(|p| p.exists());
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the crash-once bootstrap took no batch"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(&crashed_event).unwrap()).unwrap();
    let records = event["Records"].as_array().expect("a Kinesis batch");
    assert!(!records.is_empty());
    let sdk = sdk(&sandbox.edge).await;
    for record in records {
        use base64::Engine;
        let data = record["kinesis"]["data"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let Ok(record) = contract::KinesisRecord::decode(&bytes) else {
            continue; // a bad record another test put into the stream
        };
        let id = record.request.id;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !has_item(&sdk, &sandbox.table, &id).await {
            assert!(
                Instant::now() < deadline,
                "{id}, in the crashed batch, was never stored"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        sandbox.log().contains("exited mid-invocation"),
        "{}",
        sandbox.log()
    );
}

/// The audit finds every accepted id in the table; with one item deleted, it names it; a run
/// whose requests went elsewhere, with this stack's outputs, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_names_a_lost_request_and_refuses_a_run_sent_elsewhere() {
    let sandbox = tokio::task::spawn_blocking(shared).await.unwrap();
    let run_file = sandbox.work.join("audit-run.json");
    let export = sandbox.work.join("audit-timestamps.json");
    let status = Command::new(function_binary("loadgen"))
        .arg("--outputs")
        .arg(&sandbox.outputs_file)
        .args([
            "--iterations",
            "30",
            "--vus",
            "3",
            "--run-id",
            "up-audit",
            "--quiet",
        ])
        .arg("--summary-export")
        .arg(&run_file)
        .current_dir(root())
        .status()
        .unwrap();
    assert!(status.success());
    let said = {
        let (run_file, export) = (run_file.clone(), export.clone());
        let sandbox: &'static Shared = sandbox;
        tokio::task::spawn_blocking(move || wait_for(sandbox, &run_file, &export))
            .await
            .unwrap()
    };
    assert!(said.contains("complete: 30 of 30"), "{said}");
    let out = sandbox.work.join("audit.json");
    let (code, said, report) = audit(sandbox, &run_file, &out);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("30 accepted, 30 stored, 0 lost"), "{said}");
    assert_eq!(report["lost"], 0);

    let victim = "up-audit-0-1";
    let sdk = sdk(&sandbox.edge).await;
    aws_sdk_dynamodb::Client::new(&sdk)
        .delete_item()
        .table_name(&sandbox.table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(victim.to_owned()),
        )
        .send()
        .await
        .unwrap();
    let (code, said, report) = audit(sandbox, &run_file, &out);
    assert_eq!(code, 3, "{said}");
    assert!(said.contains(&format!("1 lost: {victim}")), "{said}");
    assert_eq!(report["lost_ids"], serde_json::json!([victim]));

    // The same run id's file, as if its requests had gone to another server: refused before
    // a lookup, since the table would answer for an earlier run's items.
    let mut elsewhere = read_run(&run_file);
    elsewhere.run.endpoint = "http://127.0.0.1:8080/".into();
    let elsewhere_file = sandbox.work.join("elsewhere-run.json");
    std::fs::write(&elsewhere_file, elsewhere.to_json()).unwrap();
    let (code, said, _) = audit(
        sandbox,
        &elsewhere_file,
        &sandbox.work.join("elsewhere.json"),
    );
    assert_eq!(code, 2, "{said}");
    assert!(
        said.contains("the run's requests went to http://127.0.0.1:8080/, not to this stack's API"),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
}

/// Load from the loadgen worker function, invoked through the sandbox's Lambda Invoke API: two
/// workers with half the iterations each, merged; the collector then finds every accepted
/// request processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_fanned_out_to_lambda_workers_is_merged_and_measured() {
    let sandbox = tokio::task::spawn_blocking(shared).await.unwrap();
    let fanned = sandbox.work.join("lambda-run.json");
    let lambda = Command::new(function_binary("loadgen"))
        .arg("--outputs")
        .arg(&sandbox.outputs_file)
        .args(["--lambda", "2", "--iterations", "60", "--vus", "4"])
        .args(["--run-id", "fanned", "--quiet", "--summary-export"])
        .arg(&fanned)
        .env("AWS_ENDPOINT_URL", &sandbox.edge)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .current_dir(root())
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
    let fanned_run = read_run(&fanned);
    assert_eq!(fanned_run.run.requests_sent, 60);
    assert_eq!(fanned_run.run.requests_accepted, 60);
    let said = {
        let sandbox: &'static Shared = sandbox;
        tokio::task::spawn_blocking(move || {
            wait_for(
                sandbox,
                &fanned,
                &sandbox.work.join("lambda-timestamps.json"),
            )
        })
        .await
        .unwrap()
    };
    assert!(
        said.contains("complete: 60 of 60 accepted requests processed"),
        "{said}"
    );
}

/// A sandbox of a test's own, without a deploy (moto and the edge only: ready in seconds).
struct Own {
    child: std::process::Child,
    /// Dropped after `child` is stopped (fields drop in order, after `Drop::drop`).
    work: testkit::Scratch,
    state: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Own {
    fn start(name: &str, deploy: bool) -> Own {
        let work = testkit::Scratch::new(&format!("sandbox-{name}"));
        let state = work.join("state");
        let log = work.join("sandbox.log");
        let port = testkit::free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandbox"));
        command
            .args(["up", "--port", &port.to_string(), "--concurrency", "1"])
            .arg("--state")
            .arg(&state);
        if deploy {
            let dist = work.join("dist");
            for f in ["upstream", "midstream", "downstream"] {
                write_executable(&dist.join(f).join("bootstrap"), "#!/bin/sh\n");
            }
            command.arg("--deploy").arg("--dist").arg(&dist);
        }
        let child = spawn_with_parent_death(command, &log);
        Own {
            child,
            work,
            state,
            log,
            port,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `words`, or the sandbox has exited, at most `within`.
    fn wait_for_log(&mut self, words: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(words) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before saying {words:?}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no {words:?} in {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the sandbox to exit, at most `within`.
    fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pids of this sandbox's children whose command line has `words`.
    fn children_running(&self, words: &str) -> Vec<i32> {
        let me = self.child.id() as i32;
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let parent = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<i32>().ok());
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                parent == Some(me) && String::from_utf8_lossy(&cmdline).contains(words)
            })
            .collect()
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether any process of process group `group` is left.
fn group_alive(group: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(-group, 0) == 0 }
}

/// The AWS sample's own workflow: `sandbox up` waits, the user deploys with `cdklocal bootstrap`
/// and `cdklocal deploy`, and the URL cdklocal prints is the API that answers.
#[test]
fn cdklocal_deploy_prints_the_api_endpoint_that_answers() {
    let mut own = Own::start("cdklocal", false);
    own.wait_for_log("waiting for a deploy", Duration::from_secs(60));
    let work = own.work.path().to_owned();
    let dist = work.join("dist");
    for f in ["upstream", "midstream", "downstream"] {
        copy_executable(&function_binary(f), &dist.join(f).join("bootstrap"));
    }
    let edge = format!("http://localhost:{}", own.port);
    let cdklocal = |args: &[&str]| {
        let output = Command::new(root().join("cdk/node_modules/.bin/cdklocal"))
            .args(args)
            .args(["--no-notices", "--output"])
            .arg(work.join("cdk.out"))
            .current_dir(root().join("cdk"))
            .env("AWS_ENDPOINT_URL", &edge)
            .env("AWS_ENDPOINT_URL_S3", &edge)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env("PIPELINE_TARGET", "sandbox")
            .env("LAMBDA_DIST_PATH", &dist)
            .env("CDK_DISABLE_VERSION_CHECK", "1")
            .env("CDK_DISABLE_CLI_TELEMETRY", "true")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "cdklocal {args:?}:\n{said}");
        said
    };
    cdklocal(&["bootstrap"]);
    let said = cdklocal(&["deploy", "--require-approval", "never", "--method=direct"]);
    let printed = said
        .lines()
        .find_map(|line| line.split_once("ApiGatewayMethodEndpoint = "))
        .map(|(_, url)| url.trim().to_owned())
        .unwrap_or_else(|| panic!("no endpoint printed:\n{said}"));
    assert_eq!(printed, format!("{edge}/prod/"), "{said}");
    assert!(
        !said.contains("execute-api"),
        "no moto endpoint is printed:\n{said}"
    );
    own.wait_for_log("ready:", Duration::from_secs(60));
    let body = format!(
        r#"{{"id":"cdklocal-1","message":"hello","timestamp":{}}}"#,
        collector::epoch_ms()
    );
    let (status, answer) = post(&printed.replace("localhost", "127.0.0.1"), &body);
    assert_eq!(status, 200, "{answer}\n{}", own.log());
    let outputs: Value =
        serde_json::from_str(&std::fs::read_to_string(own.state.join("outputs.json")).unwrap())
            .unwrap();
    assert_eq!(
        outputs["PipelineStack"]["ApiGatewayMethodEndpoint"],
        format!("http://127.0.0.1:{}/prod/", own.port),
        "the sandbox's outputs file keeps its URL"
    );
}

#[test]
fn sandbox_down_stops_the_sandbox_holding_the_folder_not_the_pid_files_process() {
    let mut own = Own::start("down", false);
    own.wait_for_log("waiting for a deploy", Duration::from_secs(60));
    // Another sandbox binary (a `sandbox wait`, which never becomes ready here) whose pid a
    // hostile pid file names.
    let mut wait = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["wait", "--timeout", "2m", "--state"])
        .arg(&own.state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(own.state.join("sandbox.pid"), format!("{}\n", wait.id())).unwrap();
    let down = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["down", "--state"])
        .arg(&own.state)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&down.stderr);
    assert!(down.status.success(), "{said}");
    assert!(
        said.contains(&format!("stopped sandbox {}", own.child.id())),
        "{said}"
    );
    let status = own.exited(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", own.log());
    assert!(
        own.log().contains("moto's answers by operation"),
        "{}",
        own.log()
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", own.port)).is_err(),
        "the edge's port is closed"
    );
    // The `sandbox wait` was not signalled: it ends on its own, seeing no sandbox.
    let waited = wait.wait().unwrap();
    assert_eq!(waited.code(), Some(1), "not killed by a signal: {waited}");
}

#[test]
fn moto_killed_stops_the_whole_sandbox_with_one_line() {
    let mut own = Own::start("moto", false);
    own.wait_for_log("waiting for a deploy", Duration::from_secs(60));
    let motos = own.children_running("moto_server.py");
    assert_eq!(motos.len(), 1, "{motos:?}");
    // SAFETY: kill(2) of the moto this test's sandbox started.
    unsafe { libc::kill(motos[0], libc::SIGKILL) };
    let status = own.exited(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", own.log());
    let log = own.log();
    assert!(
        log.contains("moto exited (signal: 9 (SIGKILL)): stopping the sandbox"),
        "{log}"
    );
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.contains("the sandbox cannot serve without it")),
        "{log}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", own.port)).is_err());
}

#[test]
fn a_signal_during_the_deploy_stops_the_cdk_cli_and_all_it_started() {
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let mut own = Own::start(&format!("deploy-{signal}"), true);
        own.wait_for_log("(process group ", Duration::from_secs(120));
        let log = own.log();
        let group: i32 = log
            .split("(process group ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no process group in:\n{log}"));
        // Let the CLI start its own children.
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: kill(2) of the sandbox this test started.
        unsafe { libc::kill(own.child.id() as i32, signal) };
        own.exited(Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(group) {
            assert!(
                Instant::now() < deadline,
                "signal {signal}: the CDK CLI's process group {group} outlived the sandbox by 5 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// loadgen and `collector wait` both pushing to one Prometheus: the load's k6 series and the
/// pipeline's beside them, with the right counts, and every query of the shipped Grafana
/// dashboard answering with data for the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_load_and_the_pipeline_from_one_prometheus() {
    let sandbox = tokio::task::spawn_blocking(shared).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let dir = sandbox.work.join("prometheus");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prometheus = testkit::Prometheus::start(&dir);
        let write = prometheus.write_url();
        let env = [
            ("K6_PROMETHEUS_RW_SERVER_URL", write.as_str()),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "1s"),
        ];
        let run_file = sandbox.work.join("dash-run.json");
        let export = sandbox.work.join("dash-timestamps.json");
        let load = Command::new(function_binary("loadgen"))
            .arg("--outputs")
            .arg(&sandbox.outputs_file)
            .args([
                "--vus",
                "3",
                "--duration",
                "5s",
                "--run-id",
                "up-dash",
                "--quiet",
            ])
            .args(["-o", "experimental-prometheus-rw", "--summary-export"])
            .arg(&run_file)
            .envs(env)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(
            load.status.success(),
            "loadgen: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        let waited = Command::new(function_binary("collector"))
            .args(["wait", "--run"])
            .arg(&run_file)
            .arg("--outputs")
            .arg(&sandbox.outputs_file)
            .arg("--out")
            .arg(&export)
            .args([
                "--poll",
                "1s",
                "--quiet",
                "20s",
                "--timeout",
                "3m",
                "--no-progress",
            ])
            .args(["-o", "experimental-prometheus-rw"])
            .envs(env)
            .current_dir(root())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&waited.stderr);
        assert!(waited.status.success(), "collector wait: {said}");
        assert!(
            said.contains("complete:") && said.contains("experimental-prometheus-rw: "),
            "{said}"
        );
        assert!(said.contains(" 0 failed"), "{said}");

        let run = read_run(&run_file);
        let testid = "{testid=\"up-dash\"}";
        assert_eq!(
            prometheus.value(&format!("sum(k6_http_reqs_total{testid})")),
            run.run.requests_sent as f64
        );
        assert_eq!(
            prometheus.value(&format!("pipeline_processed_total{testid}")),
            run.run.requests_accepted as f64
        );
        assert_eq!(
            prometheus.value(&format!("pipeline_lost_total{testid}")),
            0.0
        );
        // End to end and each of the three hops, second by second.
        assert_eq!(
            prometheus.value(&format!(
                "count(last_over_time(pipeline_latency_p99{testid}[10m]))"
            )),
            4.0
        );
        let per_second = prometheus.api(
            "/api/v1/query_range",
            &[
                ("query", &format!("pipeline_processed_per_second{testid}")),
                ("start", &(run.run.start_ms / 1000 - 5).to_string()),
                ("end", &(collector::epoch_ms() / 1000 + 5).to_string()),
                ("step", "1"),
            ],
        );
        let seconds: f64 = per_second["result"][0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v[1].as_str().unwrap().parse::<f64>().unwrap())
            .sum();
        // Each second's sample is also read at the next few steps (Prometheus' lookback): the
        // sum counts some twice; it cannot be below the run.
        assert!(seconds >= run.run.requests_accepted as f64, "{per_second}");

        let dashboard: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("dashboards/pipeline.json")).unwrap(),
        )
        .unwrap();
        let query = dashboard["templating"]["list"][0]["definition"]
            .as_str()
            .unwrap();
        assert_eq!(query, "label_values(k6_http_reqs_total, testid)");
        let runs = prometheus.api(
            "/api/v1/label/testid/values",
            &[("match[]", "k6_http_reqs_total")],
        );
        assert!(
            runs.as_array().unwrap().iter().any(|v| v == "up-dash"),
            "{runs}"
        );
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(panels.len() >= 8);
        for panel in panels {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$testid", "up-dash")
                    .replace("$__rate_interval", "30s");
                let data = prometheus.api(
                    "/api/v1/query_range",
                    &[
                        ("query", &expr),
                        ("start", &(run.run.start_ms / 1000 - 5).to_string()),
                        ("end", &(collector::epoch_ms() / 1000 + 5).to_string()),
                        ("step", "1"),
                    ],
                );
                let result = data["result"].as_array().unwrap();
                assert!(
                    result
                        .iter()
                        .any(|s| !s["values"].as_array().unwrap().is_empty()),
                    "panel {:?}: {expr} returned no data",
                    panel["title"]
                );
            }
        }
    })
    .await
    .unwrap();
}

/// `aws lambda update-function-configuration --memory-size`: moto keeps the size (read back with
/// GetFunctionConfiguration), the function's next invocation runs in a new worker of that size
/// (a cold start whose REPORT line says it), and a size Lambda refuses is its 400, reaching
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_size_set_through_the_lambda_api_reaches_the_next_invocation() {
    let sandbox = tokio::task::spawn_blocking(shared).await.unwrap();
    let outputs: Value =
        serde_json::from_str(&std::fs::read_to_string(&sandbox.outputs_file).unwrap()).unwrap();
    let upstream = outputs["PipelineStack"][contract::outputs::key::UPSTREAM_FUNCTION]
        .as_str()
        .unwrap()
        .to_owned();
    let lambda = aws_sdk_lambda::Client::new(&sdk(&sandbox.edge).await);
    let set = |mb: i32| {
        lambda
            .update_function_configuration()
            .function_name(&upstream)
            .memory_size(mb)
            .send()
    };
    let refused = set(64).await.expect_err("64 MB is under Lambda's 128");
    let said = format!("{:?}", refused.into_service_error());
    assert!(said.contains("greater than or equal to 128"), "{said}");
    assert_eq!(set(640).await.unwrap().memory_size, Some(640));
    let read = lambda
        .get_function_configuration()
        .function_name(&upstream)
        .send()
        .await
        .unwrap();
    assert_eq!(read.memory_size, Some(640));

    let api = sandbox.api.clone();
    let body = format!(
        r#"{{"id":"up-resized","message":"m","timestamp":{}}}"#,
        contract::epoch_ms()
    );
    let (status, text) = tokio::task::spawn_blocking(move || post(&api, &body))
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let prefix = format!("[{upstream}] REPORT RequestId:");
    loop {
        let log = sandbox.log();
        let resized = log.lines().any(|l| {
            l.starts_with(&prefix)
                && l.contains("\tMemory Size: 640 MB\t")
                && l.contains("Init Duration:")
        });
        if resized {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no cold start at 640 MB in the log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The other tests' functions are the stack's 256 MB again.
    assert_eq!(set(256).await.unwrap().memory_size, Some(256));
}
