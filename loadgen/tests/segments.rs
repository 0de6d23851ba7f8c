//! A run spread over several loadgen processes (`--segment I/N`, started together with
//! `--start-at`), merged with `loadgen merge`: the shares add up exactly to the whole, every
//! request id is unique across workers, and the merged run file is what one process would have
//! written.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Mode, Server};
use contract::runfile::RunFile;

/// Runs `workers` loadgen processes at once, worker i with `--segment i/workers`, each writing
/// its run file into `dir`; returns the files.
async fn run_workers(dir: &Path, workers: u64, args: &[&str]) -> Vec<PathBuf> {
    let start_at = (contract::epoch_ms() + 1_500).to_string();
    let children: Vec<(PathBuf, std::process::Child)> = (1..=workers)
        .map(|i| {
            let file = dir.join(format!("worker-{i}.json"));
            let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
                .args(args)
                .args(["--segment", &format!("{i}/{workers}")])
                .args(["--start-at", &start_at, "--quiet", "--summary-export"])
                .arg(&file)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start loadgen");
            (file, child)
        })
        .collect();
    let mut files = Vec::new();
    for (file, child) in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        files.push(file);
    }
    files
}

fn merge(files: &[PathBuf], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("merge")
        .args(files)
        .args(extra)
        .output()
        .expect("run loadgen merge")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read(path: &Path) -> RunFile {
    RunFile::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn temp_dir(name: &str) -> testkit::Scratch {
    testkit::Scratch::new(&format!("loadgen-{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_the_iterations_exactly_and_merge_into_the_whole() {
    let server = Server::start(Mode::Ok).await;
    let scratch = temp_dir("segments");
    let dir = scratch.path();
    // 100 iterations over 7 VUs, split 3 ways: neither divides evenly.
    let files = run_workers(
        dir,
        3,
        &[
            &server.url(),
            "--iterations",
            "100",
            "--vus",
            "7",
            "--run-id",
            "dist",
        ],
    )
    .await;
    let shares: Vec<u64> = files.iter().map(|f| read(f).run.requests_sent).collect();
    assert_eq!(shares, [34, 33, 33], "each worker's share");
    let vus: Vec<u64> = files.iter().map(|f| read(f).run.vus_max).collect();
    assert_eq!(vus, [3, 2, 2]);

    let merged_file = dir.join("merged.json");
    let output = merge(
        &files,
        &[
            "--summary-export",
            merged_file.to_str().unwrap(),
            "--threshold",
            "http_reqs:count==100",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains(": 1/3 2/3 3/3 (all 3 workers)\n"),
        "{summary}"
    );
    assert!(
        summary.contains("    http_reqs\n    ✓ 'count==100' count=100\n"),
        "{summary}"
    );
    let merged = read(&merged_file);
    assert_eq!(merged.run.run_id, "dist");
    assert_eq!(merged.run.requests_sent, 100);
    assert_eq!(merged.run.requests_accepted, 100);
    assert_eq!(merged.run.vus_max, 7);
    assert_eq!(
        merged.run.segments,
        Some(vec!["1/3".into(), "2/3".into(), "3/3".into()])
    );
    let histogram_count: u64 = merged.trends.as_ref().unwrap().by_status["200"]
        ["http_req_duration"]
        .iter()
        .map(|b| b[1])
        .sum();
    assert_eq!(histogram_count, 100);
    assert_eq!(merged.metrics["http_reqs"]["count"], serde_json::json!(100));
    assert_eq!(merged.timeline.iter().map(|s| s.requests).sum::<u64>(), 100);
    // Every id the server saw is in the merged accepted ids, once: no two workers sent the same.
    let seen: Vec<String> = server
        .seen()
        .iter()
        .map(|s| contract::Request::parse(&s.body).unwrap().id)
        .collect();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (100, 100));
    let accepted: BTreeSet<String> = merged.accepted_ids.as_ref().unwrap().ids("dist").collect();
    assert_eq!(accepted, unique.into_iter().cloned().collect());
    // Merged windows: from the first worker's start to the last one's end.
    let parts: Vec<RunFile> = files.iter().map(|f| read(f)).collect();
    assert_eq!(
        merged.run.start_ms,
        parts.iter().map(|p| p.run.start_ms).min().unwrap()
    );
    assert_eq!(
        merged.run.end_ms,
        parts.iter().map(|p| p.run.end_ms).max().unwrap()
    );
    // Started together at --start-at: within the second a worker may be late by (a later
    // start is refused), on a machine where three processes share two cores.
    let starts: Vec<i64> = parts.iter().map(|p| p.run.start_ms).collect();
    let spread = starts.iter().max().unwrap() - starts.iter().min().unwrap();
    assert!(spread < 1000, "starts {starts:?}");

    // A missing share is refused, unless told; then the summary says the run is partial.
    let output = merge(&files[..2], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("shares 3/3 of 3 are missing"),
        "{}",
        text(&output)
    );
    let output = merge(&files[..2], &["--allow-partial"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("1/3 2/3 (2 of 3 workers: not the whole run)"),
        "{}",
        text(&output)
    );
    // A share twice would count twice: refused.
    let output = merge(&[files[0].clone(), files[0].clone()], &["--allow-partial"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("given twice"), "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_rate_workers_offer_their_share_of_the_schedule() {
    let server = Server::start(Mode::Ok).await;
    let scratch = temp_dir("segments-rate");
    let dir = scratch.path();
    // 0 → 100/s over 2 s: 100 starts in all, split 4 ways.
    let files = run_workers(
        dir,
        4,
        &[
            &server.url(),
            "--rate",
            "0",
            "--stage",
            "2s:100",
            "--max-vus",
            "40",
            "--run-id",
            "rate",
        ],
    )
    .await;
    let scheduled: Vec<Option<u64>> = files
        .iter()
        .map(|f| read(f).run.scheduled_iterations)
        .collect();
    assert_eq!(scheduled, [Some(25), Some(25), Some(25), Some(25)]);
    let merged_file = dir.join("merged.json");
    let output = merge(&files, &["--summary-export", merged_file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    let merged = read(&merged_file);
    assert_eq!(merged.run.scheduled_iterations, Some(100));
    assert_eq!(
        merged.run.requests_sent + merged.run.dropped_iterations,
        100,
        "every start is sent or dropped"
    );
    let offered: u64 = merged.timeline.iter().filter_map(|s| s.offered).sum();
    assert_eq!(offered, 100);
    assert_eq!(server.seen().len() as u64, merged.run.requests_sent);
}

#[test]
fn a_bad_segment_or_merge_is_one_line_and_exit_2_or_1() {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--segment", "5/4", "http://127.0.0.1:1/"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "loadgen: invalid value '5/4' for '--segment <I/N>': segment 5/4: I must be 1 to 4"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--segment", "1/4", "--vus", "2", "http://127.0.0.1:1/"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("2 VUs cannot be shared by 4 workers"),
        "{}",
        text(&output)
    );
    let output = merge(&[PathBuf::from("/nonexistent/run.json")], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).starts_with("loadgen merge: reading /nonexistent/run.json"));
    // A file that never ends: refused after a bounded read.
    let output = merge(&[PathBuf::from("/dev/zero")], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).starts_with("loadgen merge: reading /dev/zero: larger than 256 MiB"),
        "{}",
        text(&output)
    );
    let output = merge(&[], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}
