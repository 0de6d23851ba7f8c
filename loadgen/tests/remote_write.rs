//! A remote-write receiver that stalls never holds a run's summary back: pushes are bounded,
//! the ones cut short are counted, and a signal ends the last push at once.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Mode, Server};

/// A receiver that accepts connections and never says a word (a TLS handshake never completes,
/// an HTTP request is never answered); the port.
fn silent_receiver() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
            let _ = stream.read(&mut [0; 4096]);
            held.push(stream);
        }
    });
    port
}

/// Starts loadgen for one second of load against `target`, pushing to `write_url` every 100 ms.
fn start(target: &str, write_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([target, "--vus", "1", "--duration", "1s"])
        .args(["-o", "experimental-prometheus-rw"])
        .env("K6_PROMETHEUS_RW_SERVER_URL", write_url)
        .env("K6_PROMETHEUS_RW_PUSH_INTERVAL", "100ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit; a hang past `guard` kills it and fails the test.
fn finish(mut child: Child, guard: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > guard {
            let _ = child.kill();
            panic!("loadgen hung past {guard:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The summary's pushes line: (pushes, failed).
fn pushes(output: &Output) -> (u64, u64) {
    let summary = String::from_utf8_lossy(&output.stdout);
    let line = summary
        .lines()
        .find_map(|l| {
            l.split_once("experimental-prometheus-rw: ")
                .map(|(_, r)| r.to_owned())
        })
        .unwrap_or_else(|| panic!("no pushes line: {summary}"));
    let (pushes, failed) = line.split_once(" pushes, ").unwrap();
    let failed = failed.trim_end_matches(" failed");
    (pushes.parse().unwrap(), failed.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_bounded_and_every_cut_push_counted() {
    let server = Server::start(Mode::Ok).await;
    let write = format!("https://127.0.0.1:{}/api/v1/write", silent_receiver());
    let child = start(&server.url(), &write);
    let output = tokio::task::spawn_blocking(move || finish(child, Duration::from_secs(90)))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // The push under way when the load ended, and the last one: both failed, both counted.
    let (pushes, failed) = pushes(&output);
    assert!(pushes >= 2, "{pushes} pushes");
    assert_eq!(failed, pushes);
    assert!(stderr.contains("a push to"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_ends_the_last_push_to_a_silent_receiver() {
    let server = Server::start(Mode::Ok).await;
    let write = format!("http://127.0.0.1:{}/api/v1/write", silent_receiver());
    let child = start(&server.url(), &write);
    let pid = child.id();
    // After the second of load, the last push is under way; SIGTERM must end it at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || finish(child, Duration::from_secs(60)))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The run's summary is there whatever the signal cut, and every push is accounted for.
    let (pushes, failed) = pushes(&output);
    assert_eq!(failed, pushes, "{stderr}");
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "the signal waited for the push: {:?}",
        sent.elapsed()
    );
}
