//! The `loadgen` binary as a user runs it: exit codes, one-line errors, the summary on stdout.

mod common;

use std::process::{Command, Output};

use common::{Mode, Server};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env_remove("API_ENDPOINT")
        .env_remove("APIGW_ENDPOINT")
        .output()
        .expect("run loadgen")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_bad_flag_is_one_line_on_stderr_and_exit_2() {
    for (args, message) in [
        (&["--vus", "x", "http://127.0.0.1:1/"][..], "loadgen: invalid value 'x' for '--vus <N>'"),
        (&["--vus", "0", "http://127.0.0.1:1/"][..], "loadgen: --vus must be at least 1"),
        (&["--summary-export", "/nonexistent/run.json", "http://127.0.0.1:1/"][..], "loadgen: --summary-export /nonexistent/run.json: /nonexistent is not a directory"),
        (&["--summary-export", "/tmp", "http://127.0.0.1:1/"][..], "loadgen: --summary-export /tmp is a directory: name a file"),
        (&["--rate", "5", "--iterations", "3", "http://127.0.0.1:1/"][..], "cannot be used with"),
        (&["ftp://x/"][..], "loadgen: bad URL \"ftp://x/\" (from the URL argument): scheme ftp is not http or https"),
        (&[][..], "loadgen: no URL"),
        (&["--threshold", "p95<1", "http://127.0.0.1:1/"][..], "loadgen: --threshold \"p95<1\": expected METRIC:EXPRESSION"),
        (&["--stage", "30s", "http://127.0.0.1:1/"][..], "must be DURATION:TARGET"),
        (&["--vus", "4294967296", "http://127.0.0.1:1/"][..], "loadgen: --vus must be at most 100000, not 4294967296"),
        (&["--rate", "5e9", "http://127.0.0.1:1/"][..], "loadgen: --rate must be at most 1000000/s, not 5000000000/s"),
        (&["--duration", "1000000h", "http://127.0.0.1:1/"][..], "loadgen: --duration must be at most 604800 s"),
        (&["--stage", "100000000h:1", "http://127.0.0.1:1/"][..], "loadgen: --stage duration must be at most 604800 s"),
        (&["--stage", "1s:200000", "http://127.0.0.1:1/"][..], "loadgen: --stage target must be at most 100000"),
        (&["--stage", "1s:2.5", "http://127.0.0.1:1/"][..], "loadgen: --stage target 2.5 is not a whole number of VUs"),
        (&["--rate", "0", "--stage", "1s:0", "http://127.0.0.1:1/"][..], "loadgen: --rate with --stage: the rate stays at 0"),
        (&["--rate", "1", "--stage", "1s:2e6", "http://127.0.0.1:1/"][..], "loadgen: --stage target must be at most 1000000/s"),
        (&["--stage", "1s:-3", "http://127.0.0.1:1/"][..], "is not a number from 0 up"),
        (&["--threads", "100000", "http://127.0.0.1:1/"][..], "loadgen: --threads must be at most 1024"),
        (&["-o", "influxdb", "http://127.0.0.1:1/"][..], "loadgen: --out \"influxdb\": the outputs are experimental-prometheus-rw"),
        (&["--hdr-log", "/nonexistent/run.hlog", "http://127.0.0.1:1/"][..], "loadgen: --hdr-log /nonexistent/run.hlog: /nonexistent is not a directory"),
        (&["--summary-json", "/nonexistent/s.json", "http://127.0.0.1:1/"][..], "loadgen: --summary-json /nonexistent/s.json: /nonexistent is not a directory"),
        (&["--summary-mode", "short", "http://127.0.0.1:1/"][..], "loadgen: invalid value 'short' for '--summary-mode"),
        (&["--summary-trend-stats", "avg,p(101)", "http://127.0.0.1:1/"][..], "p(101)"),
    ] {
        let output = loadgen(args);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
        assert!(text.contains(message), "{args:?}: {text}");
        assert!(output.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_decide_the_exit_code_like_k6() {
    let server = Server::start(Mode::FailEvery(2)).await;
    let url = server.url();
    let passing = tokio::task::spawn_blocking(move || {
        loadgen(&[
            &url,
            "--iterations",
            "10",
            "--threshold",
            "http_reqs:count==10",
        ])
    })
    .await
    .unwrap();
    assert_eq!(passing.status.code(), Some(0), "{}", stderr(&passing));
    let summary = String::from_utf8_lossy(&passing.stdout);
    // k6 1.x's compact summary: the threshold under its metric, with the value judged.
    assert!(
        summary.contains("    http_reqs\n    ✓ 'count==10' count=10\n"),
        "{summary}"
    );
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("    failures....") && l.ends_with(": status_500=5")),
        "{summary}"
    );

    let url = server.url();
    let failing = tokio::task::spawn_blocking(move || {
        loadgen(&[
            &url,
            "--iterations",
            "10",
            "--threshold",
            "http_req_failed:rate<0.01",
        ])
    })
    .await
    .unwrap();
    assert_eq!(failing.status.code(), Some(99));
    assert!(stderr(&failing).contains("some thresholds have been crossed"));
}

#[test]
fn a_bad_remote_write_setting_is_one_line_and_exit_2_before_the_run() {
    for (var, value, message) in [
        (
            "K6_PROMETHEUS_RW_SERVER_URL",
            "ftp://x/",
            "loadgen: K6_PROMETHEUS_RW_SERVER_URL \"ftp://x/\": scheme ftp is not http or https",
        ),
        (
            "K6_PROMETHEUS_RW_PUSH_INTERVAL",
            "0s",
            "loadgen: K6_PROMETHEUS_RW_PUSH_INTERVAL \"0s\" is not a duration of at least 100ms",
        ),
        (
            "K6_PROMETHEUS_RW_PUSH_INTERVAL",
            "1ns",
            "loadgen: K6_PROMETHEUS_RW_PUSH_INTERVAL \"1ns\" is not a duration of at least 100ms",
        ),
        (
            "K6_PROMETHEUS_RW_TREND_STATS",
            "p99",
            "loadgen: K6_PROMETHEUS_RW_TREND_STATS: ",
        ),
        (
            "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM",
            "true",
            "native histograms are not supported",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["-o", "experimental-prometheus-rw", "http://127.0.0.1:1/"])
            .env(var, value)
            .output()
            .unwrap();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{var}={value}: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(message), "{var}={value}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_remote_write_endpoint_is_counted_and_the_run_goes_on() {
    let server = Server::start(Mode::Ok).await;
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args([
                &url,
                "--iterations",
                "20",
                "-o",
                "experimental-prometheus-rw",
            ])
            .env(
                "K6_PROMETHEUS_RW_SERVER_URL",
                format!("http://127.0.0.1:{}/api/v1/write", common::closed_port()),
            )
            .env("K6_PROMETHEUS_RW_PUSH_INTERVAL", "100ms")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("accepted (2xx)"), "{summary}");
    let line = summary
        .lines()
        .find(|l| l.contains("experimental-prometheus-rw: "))
        .unwrap_or_default();
    let (pushes, failed) = line
        .split_once(": experimental-prometheus-rw: ")
        .and_then(|(_, rest)| rest.split_once(" pushes, "))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(pushes.parse::<u64>().unwrap() >= 1, "{line}");
    assert_eq!(
        failed,
        format!("{pushes} failed"),
        "every push failed: {line}"
    );
    // One line on stderr, not one per push.
    assert_eq!(
        stderr(&output).matches("a push to").count(),
        1,
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_counted_not_a_crash() {
    let url = format!("http://127.0.0.1:{}/", common::closed_port());
    let output =
        tokio::task::spawn_blocking(move || loadgen(&[&url, "--iterations", "4", "--json"]))
            .await
            .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let file =
        contract::runfile::RunFile::from_json(&String::from_utf8_lossy(&output.stdout)).unwrap();
    assert_eq!(file.run.failures.get("refused"), Some(&4));
    assert_eq!(file.run.requests_accepted, 0);
}

/// Ctrl-C and SIGTERM alike: no new iterations, the summary printed, the export written with
/// every request counted and every accepted id listed, the run marked as aborted, and k6's exit
/// code for an aborted run (105), within seconds of the signal, not at the 60 s duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_or_sigterm_stops_gracefully_and_still_reports() {
    for signal in ["-INT", "-TERM"] {
        let server = Server::start(Mode::Ok).await;
        let dir = testkit::Scratch::new(&format!("loadgen-signal{signal}"));
        let export = dir.join("run.json");
        let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args([
                &server.url(),
                "--vus",
                "2",
                "--duration",
                "60s",
                "--summary-export",
                export.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Signalled once the load is under way (the server has answered), not after a guess.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while server.seen().len() < 10 {
            assert!(std::time::Instant::now() < deadline, "no request in 30 s");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let signalled = std::time::Instant::now();
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let took = signalled.elapsed();
        assert!(
            took < std::time::Duration::from_secs(20),
            "{signal}: the run ended {took:?} after the signal"
        );
        assert_eq!(
            output.status.code(),
            Some(105),
            "{signal}: {}",
            stderr(&output)
        );
        let name = if signal == "-INT" {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        assert!(
            stderr(&output).contains(&format!("the run was aborted: loadgen received {name}")),
            "{signal}: {}",
            stderr(&output)
        );
        let summary = String::from_utf8_lossy(&output.stdout);
        assert!(
            summary.contains("    http_reqs....."),
            "{signal}: {summary}"
        );
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with("    aborted....") && l.contains(": loadgen received")),
            "{summary}"
        );
        let file =
            contract::runfile::RunFile::from_json(&std::fs::read_to_string(&export).unwrap())
                .unwrap();
        assert!(
            file.run
                .aborted
                .as_deref()
                .is_some_and(|a| a.contains("s into the run")),
            "{:?}",
            file.run.aborted
        );
        assert!(file.run.requests_sent > 0);
        let seen: Vec<String> = server
            .seen()
            .iter()
            .map(|s| contract::Request::parse(&s.body).unwrap().id)
            .collect();
        assert_eq!(
            file.run.requests_sent,
            seen.len() as u64,
            "{signal}: every request sent is counted"
        );
        let mut accepted: Vec<String> = file
            .accepted_ids
            .expect("version 2 lists the accepted ids")
            .ids(&file.run.run_id)
            .collect();
        let mut seen = seen;
        accepted.sort();
        seen.sort();
        assert_eq!(
            accepted, seen,
            "{signal}: the accepted ids are the ids the server answered"
        );
    }
}

/// The highest rate loadgen takes ends on time: a second of it, against a local server, is
/// over in seconds (the dispatcher does not fall behind a schedule it cannot keep).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_highest_allowed_rate_ends_promptly() {
    let server = Server::start(Mode::Ok).await;
    let url = server.url();
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        loadgen(&[
            &url,
            "--rate",
            "1000000",
            "--duration",
            "1s",
            "--max-vus",
            "50",
            "--json",
        ])
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    let file =
        contract::runfile::RunFile::from_json(&String::from_utf8_lossy(&output.stdout)).unwrap();
    assert_eq!(file.run.scheduled_iterations, Some(1_000_000));
    assert!(file.run.requests_sent > 0);
}

/// After the duration, requests in flight get the graceful stop, not their whole timeout; they
/// are counted as interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_abandoned_after_the_graceful_stop() {
    let server = Server::start(Mode::Delay(std::time::Duration::from_secs(120))).await;
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        loadgen(&[
            &url,
            "--vus",
            "3",
            "--duration",
            "1s",
            "--graceful-stop",
            "1s",
            "--json",
        ])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let file =
        contract::runfile::RunFile::from_json(&String::from_utf8_lossy(&output.stdout)).unwrap();
    assert_eq!(
        file.run.interrupted_iterations, 3,
        "one request per VU was in flight"
    );
    assert_eq!((file.run.requests_sent, file.run.requests_accepted), (0, 0));
    let took = file.run.end_ms - file.run.start_ms;
    assert!(
        (2_000..60_000).contains(&took),
        "1 s of load and 1 s of graceful stop, not the 60 s timeout: {took} ms"
    );
}

#[test]
fn two_flags_naming_one_file_are_refused_before_the_run() {
    let dir = testkit::Scratch::new("loadgen-one-file");
    let run = dir.path().join("run.json");
    let same = dir.path().join(".").join("run.json");
    let (run, same) = (run.to_str().unwrap(), same.to_str().unwrap());
    for (args, message) in [
        (
            &["--summary-export", run, "--summary-json", same][..],
            "--summary-json",
        ),
        (
            &["--summary-export", run, "--hdr-log", run][..],
            "--hdr-log",
        ),
        (
            &["--outputs", run, "--summary-export", run][..],
            "--summary-export",
        ),
    ] {
        std::fs::write(run, "{}").unwrap();
        let output = loadgen(&[args, &["--iterations", "1", "http://127.0.0.1:1/"]].concat());
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(&format!("{message} ")) && text.contains("names the same file as"),
            "{text}"
        );
        assert_eq!(std::fs::read_to_string(run).unwrap(), "{}", "untouched");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_cannot_be_written_loses_neither_the_summary_nor_the_others() {
    let server = Server::start(Mode::Ok).await;
    let url = server.url();
    let dir = testkit::Scratch::new("loadgen-full-disk");
    let json = dir.path().join("summary.json");
    let json_arg = json.to_str().unwrap().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        loadgen(&[
            &url,
            "--iterations",
            "5",
            "--summary-export",
            "/dev/full",
            "--summary-json",
            &json_arg,
        ])
    })
    .await
    .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("loadgen: --summary-export /dev/full: No space left on device"),
        "{text}"
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("accepted (2xx)"),
        "the summary is printed: {summary}"
    );
    // The other report is written all the same.
    let data = std::fs::read_to_string(&json).unwrap();
    assert!(data.contains("http_reqs"), "{data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_log_that_cannot_be_written_is_an_error_not_a_pass() {
    let server = Server::start(Mode::Ok).await;
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        loadgen(&[
            &url,
            "--vus",
            "1",
            "--duration",
            "2s",
            "--hdr-log",
            "/dev/full",
        ])
    })
    .await
    .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("--hdr-log /dev/full: "), "{text}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("accepted (2xx)"));
}
