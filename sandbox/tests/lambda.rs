//! The Lambda data plane: real bootstrap binaries and a bash custom runtime, invoked through the
//! Runtime API the sandbox serves.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{bash_runtime, function_binary, function_env, kinesis_with_stream, root, sdk, spec};
use sandbox::lambda::{FunctionHost, InvokeError, LogSink};

fn captured() -> (LogSink, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    (
        Arc::new(move |function: &str, line: &str| {
            sink.lock().unwrap().push(format!("[{function}] {line}"))
        }),
        lines,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_are_spread_over_the_workers_and_answered() {
    let (logs, _) = captured();
    let host = FunctionHost::start(
        spec("echo", bash_runtime(), &[("MODE", "echo")], 5_000, 2),
        logs,
    )
    .await
    .unwrap();
    let calls = (0..6).map(|i| {
        let host = host.clone();
        tokio::spawn(async move { host.invoke(Bytes::from(format!("{{\"n\":{i}}}"))).await })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(
            call.await.unwrap().unwrap(),
            Bytes::from(format!("{{\"n\":{i}}}"))
        );
    }
    host.stop().await;
}

/// A log that fails its first `fail_first` writes (a full disk), then takes lines again.
struct FillingDisk {
    fail_first: usize,
    written: Arc<Mutex<Vec<u8>>>,
}

impl std::io::Write for FillingDisk {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.fail_first > 0 {
            self.fail_first -= 1;
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.written.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_loses_lines_not_invocations() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let logs = sandbox::lambda::logs_to(FillingDisk {
        fail_first: 3_000,
        written: written.clone(),
    });
    let host = FunctionHost::start(
        spec("chatty", bash_runtime(), &[("MODE", "chatty")], 10_000, 1),
        logs,
    )
    .await
    .unwrap();
    // Each invocation writes more than a pipe holds: a sink that stopped reading would hang
    // the worker on its second.
    for i in 0..3 {
        let body = Bytes::from(format!("{{\"n\":{i}}}"));
        assert_eq!(host.invoke(body.clone()).await.unwrap(), body);
    }
    host.stop().await;
    // Every line is either written or counted as lost, and the count is said.
    let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
    let kept = text
        .lines()
        .filter(|l| l.starts_with("[chatty] log line "))
        .count();
    let lost: usize = text
        .lines()
        .filter_map(|l| l.strip_prefix("sandbox: "))
        .filter_map(|l| {
            l.split_once(" log lines were lost")?
                .0
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert!(lost > 0, "{}", &text[..200.min(text.len())]);
    // 2,000 lines an invocation; the lost may include START lines (REPORT lines can come
    // after the answer, so they are not counted here).
    assert!(
        (6000..=6003).contains(&(kept + lost)),
        "{kept} kept, {lost} lost"
    );
    let last: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("[chatty] log line "))
        .rev()
        .take(2000)
        .collect();
    assert!(
        last.iter()
            .rev()
            .enumerate()
            .all(|(i, l)| l.starts_with(&format!("[chatty] log line {} of", i + 1))),
        "the last invocation's lines are all kept, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_error_is_reported_with_its_type() {
    let (logs, _) = captured();
    let host = FunctionHost::start(
        spec("err", bash_runtime(), &[("MODE", "error")], 5_000, 1),
        logs,
    )
    .await
    .unwrap();
    assert_eq!(
        host.invoke(Bytes::from_static(b"{}")).await,
        Err(InvokeError::Function {
            error_type: "Boom".into(),
            message: "it broke".into()
        })
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_worker_times_out_and_is_recycled() {
    let (logs, lines) = captured();
    let host = FunctionHost::start(
        spec("hang", bash_runtime(), &[("MODE", "hang")], 300, 1),
        logs,
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let result = host.invoke(Bytes::from_static(b"{}")).await;
        // The function's 300 ms, or on a stalled machine the invocation's whole limit (the
        // timeout and the worker's start): a timeout either way, never an answer.
        assert!(matches!(result, Err(InvokeError::Timeout(_))), "{result:?}");
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
    // A function that cannot start at all fails its invocations instead of holding them forever.
    let (logs, _) = captured();
    let broken = FunctionHost::start(
        spec("broken", PathBuf::from("/bin/false"), &[], 100, 1),
        logs,
    )
    .await
    .unwrap();
    assert!(matches!(
        broken.invoke(Bytes::from_static(b"{}")).await,
        Err(InvokeError::Timeout(_))
    ));
    broken.stop().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("timed out after 300ms; recycling it"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            lines.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_invocation_fails_it_and_the_worker_restarts() {
    let (logs, _) = captured();
    let host = FunctionHost::start(
        spec("crash", bash_runtime(), &[("MODE", "crash")], 5_000, 1),
        logs,
    )
    .await
    .unwrap();
    for _ in 0..2 {
        match host.invoke(Bytes::from_static(b"{}")).await {
            Err(InvokeError::Crashed(status)) => assert!(status.contains('3'), "{status}"),
            other => panic!("expected a crash, got {other:?}"),
        }
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_upstream_answers_an_api_gateway_event_through_the_runtime_api() {
    let root = root();
    let moto = sandbox::moto::Moto::start(&root).await.unwrap();
    let endpoint = format!("http://{}", moto.addr);
    let env = function_env(&endpoint, &[("STREAM_NAME", "KinesisStream")]);
    let sdk = sdk(&endpoint).await;
    let kinesis = kinesis_with_stream(&sdk).await;

    let (logs, lines) = captured();
    let host = FunctionHost::start(
        spec("upstream", function_binary("upstream"), &env, 10_000, 1),
        logs,
    )
    .await
    .unwrap();
    // The fixture, sent now (the API refuses timestamps more than a day old).
    let mut event: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("functions/tests/fixtures/apigw-post.json")).unwrap(),
    )
    .unwrap();
    let mut body: serde_json::Value =
        serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    body["timestamp"] = contract::epoch_ms().into();
    event["body"] = body.to_string().into();
    let response: serde_json::Value =
        serde_json::from_slice(&host.invoke(Bytes::from(event.to_string())).await.unwrap())
            .unwrap();
    assert_eq!(
        response["statusCode"],
        200,
        "{response}\n{:?}",
        lines.lock().unwrap()
    );
    assert_eq!(response["body"], r#"{"message":"success"}"#);
    // The request is on the stream: one record, the body as sent plus when it was received.
    let records = testkit::aws::stream_records(&kinesis, "KinesisStream").await;
    assert_eq!(records.len(), 1, "{records:?}");
    let put = contract::KinesisRecord::decode(records[0].data.as_ref()).unwrap();
    assert_eq!(put.request.id, body["id"].as_str().unwrap(), "{put:?}");
    assert_eq!(
        Some(put.request.timestamp_ms),
        body["timestamp"].as_i64(),
        "{put:?}"
    );
    assert!(put.received_at_ms >= put.request.timestamp_ms, "{put:?}");
    host.stop().await;
    moto.stop().await;
}

/// Writes `bootstrap` as a script running the bash runtime in `mode`, the way a rebuild does:
/// a new file moved into place.
fn install_bootstrap(dir: &std::path::Path, mode: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("bootstrap");
    let next = dir.join("bootstrap.tmp");
    std::fs::write(
        &next,
        format!(
            "#!/bin/bash\nMODE={mode} exec {}\n",
            bash_runtime().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&next, &path).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_reload_function_runs_the_new_binary_after_a_rebuild() {
    let scratch = testkit::Scratch::new("sandbox-hot");
    let dir = scratch.path();
    let bootstrap = install_bootstrap(dir, "echo");
    let (logs, lines) = captured();
    let mut hot = spec("hot", bootstrap.clone(), &[], 5_000, 2);
    hot.reload_on_change = true;
    let host = FunctionHost::start(hot, logs).await.unwrap();
    assert_eq!(
        host.invoke(Bytes::from_static(b"{\"v\":1}")).await,
        Ok(Bytes::from_static(b"{\"v\":1}"))
    );

    // Meanwhile, three callers keep both workers busy: a swap must fail none of their calls.
    let busy = tokio::sync::watch::channel(true);
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let (host, running) = (host.clone(), busy.1.clone());
            tokio::spawn(async move {
                let mut calls = 0;
                while *running.borrow() {
                    match host.invoke(Bytes::from_static(b"{}")).await {
                        Ok(_) | Err(InvokeError::Function { .. }) => calls += 1,
                        Err(other) => panic!("a call failed across the swap: {other}"),
                    }
                }
                calls
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    install_bootstrap(dir, "error");
    // Both workers move to the new binary within a few polls; until then an invocation may
    // still meet the old one, never a failure of its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut errors_in_a_row = 0;
    while errors_in_a_row < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still the old binary: {:?}",
            lines.lock().unwrap()
        );
        match host.invoke(Bytes::from_static(b"{\"v\":2}")).await {
            Ok(answer) => {
                assert_eq!(answer, Bytes::from_static(b"{\"v\":2}"));
                errors_in_a_row = 0;
            }
            Err(InvokeError::Function { error_type, .. }) => {
                assert_eq!(error_type, "Boom");
                errors_in_a_row += 1;
            }
            Err(other) => panic!("{other}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = busy.0.send(false);
    for caller in callers {
        assert!(caller.await.unwrap() > 0);
    }
    let restarts = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("changed; restarting it"))
        .count();
    assert_eq!(restarts, 2, "each worker once: {:?}", lines.lock().unwrap());
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_kills_the_worker_after_it_answers_and_restarts_it() {
    let (logs, lines) = captured();
    let mut spec = spec("doomed", bash_runtime(), &[("MODE", "echo")], 5_000, 1);
    spec.kill_after_answer = sandbox::lambda::KillAfterAnswer::new(1.0, 7);
    let host = FunctionHost::start(spec, logs).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            host.invoke(Bytes::from_static(b"{}")).await,
            Err(InvokeError::Killed)
        );
    }
    // The supervisor logs each kill as it replaces the worker, just after the invocation fails.
    let kills = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("worker 0 killed after it answered (fault injection)"))
            .count()
    };
    for _ in 0..100 {
        if kills() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        kills(),
        2,
        "each answer's worker was killed and replaced: {:?}",
        lines.lock().unwrap()
    );
    host.stop().await;
}

/// The median of `n` invocations' round trips.
async fn median_call(host: &FunctionHost, n: usize) -> Duration {
    let mut took = Vec::new();
    for _ in 0..n {
        let started = std::time::Instant::now();
        host.invoke(Bytes::from_static(b"{}")).await.unwrap();
        took.push(started.elapsed());
    }
    took.sort();
    took[n / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_makes_each_invocation_that_much_slower_and_a_swap_changes_it() {
    let scratch = testkit::Scratch::new("sandbox-delay");
    let dir = scratch.path();
    let bootstrap = install_bootstrap(dir, "echo");
    let (logs, lines) = captured();
    let mut delayed = spec("delayed", bootstrap.clone(), &[], 5_000, 1);
    delayed.delay = Duration::from_millis(150);
    let host = FunctionHost::start(delayed.clone(), logs.clone())
        .await
        .unwrap();
    let base = median_call(&host, 5).await;
    assert!(base >= Duration::from_millis(150), "{base:?}");
    host.stop().await;

    // A hot-reload function: the folder's delay file wins, read when the workers (re)start.
    delayed.reload_on_change = true;
    std::fs::write(dir.join("delay"), "20ms\n").unwrap();
    let host = FunctionHost::start(delayed, logs).await.unwrap();
    let short = median_call(&host, 5).await;
    assert!(
        short >= Duration::from_millis(20) && short < Duration::from_millis(150),
        "{short:?}"
    );
    std::fs::write(dir.join("delay"), "300ms").unwrap();
    install_bootstrap(dir, "echo");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while median_call(&host, 1).await < Duration::from_millis(300) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            lines.lock().unwrap()
        );
    }
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("each invocation is delayed by 300ms")),
        "{:?}",
        lines.lock().unwrap()
    );
    host.stop().await;
}
