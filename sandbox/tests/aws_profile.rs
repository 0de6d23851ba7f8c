//! `sandbox up --profile aws` as a user runs it: the real CDK deploy, the real functions,
//! loadgen and the collector's binaries, a load over the stream's write quota at a small scale.
//! Throttled requests are answered by kind and counted under AWS's metric names; every
//! accepted request is still stored and measured once.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{function_binary, root, sdk};
use serde_json::Value;

/// Runs the sandbox binary with `args`; its exit code and what it said.
fn sandbox(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bad_profile_or_scale_is_one_line_and_exit_2() {
    for (args, words) in [
        (
            &["up", "--profile", "fast"][..],
            "is not a profile: default or aws",
        ),
        (
            &["up", "--profile", "aws", "--quota-scale", "0"],
            "above 0 and at most 1",
        ),
        (
            &["up", "--profile", "aws", "--quota-scale", "NaN"],
            "above 0 and at most 1",
        ),
        (
            &["up", "--profile", "aws", "--quota-scale=-1"],
            "above 0 and at most 1",
        ),
        (
            &["up", "--profile", "aws", "--quota-scale", "1.5"],
            "above 0 and at most 1",
        ),
        (
            &["up", "--quota-scale", "0.5"],
            "--quota-scale applies to --profile aws only",
        ),
    ] {
        let (code, said) = sandbox(args);
        assert_eq!(code, Some(2), "{args:?}: {said}");
        assert_eq!(said.trim_end().lines().count(), 1, "{args:?}: {said}");
        assert!(said.contains(words), "{args:?}: {said}");
    }
}

/// A sandbox of this test's own, stopped (SIGTERM) when dropped.
struct Running {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then what the sandbox said by the time it ended.
    fn stop(mut self) -> String {
        // SAFETY: a signal to the child's own pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "still running:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.log()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_executable(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs a tool's binary; its exit code and stderr.
fn tool(name: &str, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(function_binary(name))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// At a quota scale of 0.02 the stream's one shard takes 20 records a second; 30 requests a
/// second for 3 s pass it. upstream's SDK retries a throttled PutRecord and answers 503 when
/// the retries are spent; every request the API accepted is stored and measured once, the
/// audit finds nothing lost, and the throttles are in CloudWatch under AWS's metric and in the
/// sandbox's closing summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_over_the_shards_quota_is_throttled_and_loses_nothing() {
    assert!(
        root().join("cdk/node_modules/.bin/cdk").exists(),
        "run `make cdk-deps` (npm ci in cdk/) first"
    );
    let work = testkit::Scratch::new("sandbox-aws-profile");
    let dist = work.join("dist");
    for f in ["upstream", "midstream", "downstream"] {
        copy_executable(&function_binary(f), &dist.join(f).join("bootstrap"));
    }
    let state = work.join("state");
    let log = work.join("sandbox.log");
    let port = testkit::free_port().to_string();
    let child = {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandbox"));
        command
            .args(["up", "--deploy", "--port", &port, "--concurrency", "6"])
            .args(["--profile", "aws", "--quota-scale", "0.02"])
            .arg("--dist")
            .arg(&dist)
            .arg("--state")
            .arg(&state)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // SAFETY: prctl is async-signal-safe and the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        command.spawn().unwrap()
    };
    let running = Running { child, log };
    let outputs = state.join("outputs.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !outputs.exists() {
        assert!(Instant::now() < deadline, "not ready:\n{}", running.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        running.log().contains("profile aws at quota scale 0.02"),
        "{}",
        running.log()
    );
    let (outputs_arg, run_file, export, audit) = (
        outputs.to_str().unwrap().to_owned(),
        work.join("run.json"),
        work.join("timestamps.json"),
        work.join("audit.json"),
    );
    let (code, said) = tool(
        "loadgen",
        &[
            "--outputs",
            &outputs_arg,
            "--rate",
            "30",
            "--duration",
            "3s",
            "--vus",
            "40",
            "--run-id",
            "aws-profile",
            "--quiet",
            "--summary-export",
            run_file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "loadgen: {said}");
    let (code, said) = tool(
        "collector",
        &[
            "wait",
            "--run",
            run_file.to_str().unwrap(),
            "--outputs",
            &outputs_arg,
            "--out",
            export.to_str().unwrap(),
            "--poll",
            "1s",
            "--quiet",
            "20s",
            "--timeout",
            "4m",
            "--no-progress",
        ],
    );
    assert_eq!(code, Some(0), "collector wait: {said}");
    assert!(said.contains("complete:"), "{said}");
    let (code, said) = tool(
        "collector",
        &[
            "audit",
            "--run",
            run_file.to_str().unwrap(),
            "--outputs",
            &outputs_arg,
            "--out",
            audit.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "collector audit: {said}");
    let audited: Value = serde_json::from_str(&std::fs::read_to_string(&audit).unwrap()).unwrap();
    assert_eq!(audited["lost"], 0, "{audited}");
    assert_eq!(audited["stored"], audited["accepted"], "{audited}");

    // The stream's quota refused records, published as AWS publishes it.
    let config = sdk(&format!("http://127.0.0.1:{port}")).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let now = std::time::SystemTime::now();
    let refused = cloudwatch
        .get_metric_statistics()
        .namespace("AWS/Kinesis")
        .metric_name("WriteProvisionedThroughputExceeded")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("StreamName")
                .value("KinesisStream")
                .build(),
        )
        .start_time((now - Duration::from_secs(600)).into())
        .end_time((now + Duration::from_secs(60)).into())
        .period(3600)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .unwrap();
    let sum: f64 = refused.datapoints().iter().filter_map(|d| d.sum()).sum();
    assert!(
        sum > 0.0,
        "no WriteProvisionedThroughputExceeded: {refused:?}"
    );
    assert!(audited["accepted"].as_u64().unwrap() > 0, "{audited}");
    // `collector stats` names the limit that gave, and what the figure means at this scale.
    let stats = Command::new(function_binary("collector"))
        .args(["stats", export.to_str().unwrap(), "--json"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    let throttles = &stats["throttles"];
    assert_eq!(
        throttles["profile"], "aws at quota scale 0.02",
        "{throttles}"
    );
    let kinesis = throttles["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "WriteProvisionedThroughputExceeded")
        .unwrap_or_else(|| panic!("{throttles}"));
    assert_eq!(kinesis["resource"], "KinesisStream");
    assert!(kinesis["total"].as_u64().unwrap() > 0, "{throttles}");
    let text = Command::new(function_binary("collector"))
        .args(["stats", export.to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Throttles: which limit gave"), "{text}");
    assert!(
        text.contains("AWS would refuse these at 50x this load"),
        "{text}"
    );
    let said = running.stop();
    assert!(
        said.contains("quotas: throttled AWS/Kinesis WriteProvisionedThroughputExceeded StreamName=KinesisStream"),
        "{said}"
    );
}

/// `--delay`, `--burn`, `--leak` or `--kill-workers` naming no deployed function would change
/// and record nothing: once the deploy shows the functions, the sandbox says so in one line and
/// exits 2 (here a `--leak`, after a `--delay` that does name one).
#[test]
fn a_delay_naming_no_function_is_refused_once_the_functions_are_known() {
    let work = testkit::Scratch::new("sandbox-bad-delay");
    let dist = work.join("dist");
    for f in ["upstream", "midstream", "downstream"] {
        copy_executable(&function_binary(f), &dist.join(f).join("bootstrap"));
    }
    let port = testkit::free_port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([
            "up",
            "--deploy",
            "--port",
            &port,
            "--delay",
            "midstream=1ms",
            "--leak",
            "nosuchfn=4MB",
        ])
        .arg("--dist")
        .arg(&dist)
        .arg("--state")
        .arg(work.join("state"))
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    let last = said.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("sandbox: --leak \"nosuchfn\" names no deployed function (they are ")
            && last.contains("Upstream"),
        "{said}"
    );
    assert!(
        !work.join("state/outputs.json").exists(),
        "never said ready"
    );
}
