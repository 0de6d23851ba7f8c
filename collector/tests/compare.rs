//! `collector compare` as a user runs it: identical runs are no significant change, a
//! distribution shifted by 30 % is slower and fails the gate, a shift inside the noise passes,
//! and a handful of requests is inconclusive rather than a guess.

use std::path::PathBuf;
use std::process::Command;

use contract::buckets::LatencyHistogram;
use contract::export::{ExportRun, LatencyExport, SecondRow, StatSummary, WaitState};

/// An export of `latencies` (ms), `per_second` loops a second, every accepted request measured.
fn export(run_id: &str, latencies: &[f64], per_second: u64) -> LatencyExport {
    let mut histogram = LatencyHistogram::new();
    let mut hop = LatencyHistogram::new();
    for &l in latencies {
        histogram.record(l as i64);
        hop.record((l / 2.0) as i64);
    }
    let n = latencies.len() as u64;
    let summary = |scale: f64| StatSummary {
        count: n,
        sum_ms: latencies.iter().sum::<f64>() * scale,
        min_ms: latencies.iter().copied().fold(f64::INFINITY, f64::min) * scale,
        max_ms: latencies.iter().copied().fold(0.0, f64::max) * scale,
    };
    let seconds = n.div_ceil(per_second.max(1));
    LatencyExport {
        version: contract::export::EXPORT_VERSION,
        run: ExportRun {
            run_id: run_id.into(),
            namespace: "NS".into(),
            window_start_ms: 0,
            window_end_ms: 1000 * seconds as i64,
            expected: Some(n),
            processed: n,
            redelivered: 0,
            state: WaitState::Complete,
            vus: Some(10),
            load_start_ms: Some(0),
            load_end_ms: Some(1000 * seconds as i64),
            metrics_requested: None,
        },
        latency: summary(1.0),
        per_second: (0..seconds)
            .map(|s| SecondRow {
                timestamp_ms: 1000 * s as i64,
                count: per_second.min(n - s * per_second) + (s % 3),
                average_ms: 100.0,
                minimum_ms: 50.0,
                maximum_ms: 200.0,
                p99_ms: None,
            })
            .collect(),
        histogram,
        hops: [("StoreToDownstreamLatency".to_owned(), summary(0.5))].into(),
        hop_histograms: [("StoreToDownstreamLatency".to_owned(), hop)].into(),
        over_time: Vec::new(),
        lambda: None,
        throttles: None,
    }
}

/// 20,000 latencies spread like a pipeline's: most near 130 ms, a tail to about 400 ms.
fn latencies(scale: f64, seed: u64) -> Vec<f64> {
    sample(20_000, scale, seed)
}

fn sample(n: usize, scale: f64, seed: u64) -> Vec<f64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (80.0 + 40.0 / (1.0 - u).powf(0.25).max(0.05)) * scale
        })
        .collect()
}

fn write(dir: &std::path::Path, name: &str, export: &LatencyExport) -> String {
    let path = dir.join(name);
    std::fs::write(&path, export.to_json()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn compare(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_collector"))
        .arg("compare")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn verdicts(json: &str) -> Vec<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].as_str().unwrap().to_owned(),
                r["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("collector-compare-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn identical_runs_are_no_significant_change_and_pass_the_gate() {
    let dir = dir("same");
    let a = write(&dir, "a.json", &export("a", &latencies(1.0, 7), 100));
    // The same requests measured again, as another run.
    let same = write(&dir, "same.json", &export("a2", &latencies(1.0, 7), 100));
    let (code, out, err) = compare(&[&a, &same, "--json", "--fail-if-slower", "latency:p(99)=10%"]);
    assert_eq!(code, 0, "{err}");
    for (metric, verdict) in verdicts(&out) {
        // The export has one hop of three; the others cannot be compared.
        let expected =
            if metric.starts_with("ClientToKinesis") || metric.starts_with("KinesisToStore") {
                "inconclusive"
            } else {
                "no-significant-change"
            };
        assert_eq!(verdict, expected, "{metric}");
    }
    let (code, table, _) = compare(&[&a, &same]);
    assert_eq!(code, 0);
    assert!(
        table.contains("latency:p(99)") && table.contains("no significant change"),
        "{table}"
    );
    assert!(
        table.contains("within the runs only"),
        "the noise says what it includes: {table}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_distribution_30_percent_slower_is_slower_and_fails_the_gate() {
    let dir = dir("slower");
    let base = write(&dir, "base.json", &export("b", &latencies(1.0, 7), 100));
    let slow = write(&dir, "slow.json", &export("s", &latencies(1.3, 11), 100));
    let page = dir.join("compare.html");
    let (code, out, err) = compare(&[
        &base,
        &slow,
        "--json",
        "--fail-if-slower",
        "latency:p(99)=10%",
        "--out",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 99, "{err}");
    let said = verdicts(&out);
    for metric in [
        "latency:avg",
        "latency:p(50)",
        "latency:p(90)",
        "latency:p(95)",
        "latency:p(99)",
        "StoreToDownstreamLatency:p(50)",
        "StoreToDownstreamLatency:p(99)",
    ] {
        let verdict = &said.iter().find(|(m, _)| m == metric).unwrap().1;
        assert_eq!(verdict, "slower", "{metric}");
    }
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p50 = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "latency:p(50)")
        .unwrap();
    let change = p50["change_pct"].as_f64().unwrap();
    assert!((change - 30.0).abs() < 6.0, "p50 +{change}%");
    assert_eq!(json["gates"][0]["passed"], false);
    // The page holds both percentile curves and both throughput series.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"percentiles\"") && html.contains("id=\"throughput\""));
    assert!(html.matches("<polyline").count() >= 4);
    // The other way round, it is faster, and the gate holds.
    let (code, out, _) = compare(&[
        &slow,
        &base,
        "--json",
        "--fail-if-slower",
        "latency:p(99)=10%",
    ]);
    assert_eq!(code, 0);
    assert!(verdicts(&out)
        .iter()
        .any(|(m, v)| m == "latency:p(99)" && v == "faster"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_shift_inside_the_noise_passes() {
    let dir = dir("noise");
    // Two runs of 2000 requests each, the second 1 % slower: less than either run's own noise.
    let base = write(&dir, "base.json", &export("b", &sample(2000, 1.0, 7), 100));
    let near = write(&dir, "near.json", &export("n", &sample(2000, 1.01, 8), 100));
    let (code, out, err) = compare(&[
        &base,
        &near,
        "--json",
        "--fail-if-slower",
        "latency:p(50)=0%",
    ]);
    assert_eq!(code, 0, "a 1 % shift is within the noise: {err}\n{out}");
    assert!(verdicts(&out)
        .iter()
        .any(|(m, v)| m == "latency:p(50)" && v == "no-significant-change"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_handful_of_requests_is_inconclusive() {
    let dir = dir("few");
    let few: Vec<f64> = latencies(1.0, 7).into_iter().take(20).collect();
    let more: Vec<f64> = few.iter().map(|l| l * 2.0).collect();
    let a = write(&dir, "a.json", &export("a", &few, 10));
    let b = write(&dir, "b.json", &export("b", &more, 10));
    let (code, out, _) = compare(&[&a, &b, "--json", "--fail-if-slower", "latency:p(99)=10%"]);
    assert_eq!(code, 0, "inconclusive does not fail the gate");
    // Too few for the mean and the tail; the median of 20 can still be told apart.
    for (metric, verdict) in verdicts(&out) {
        if [
            "latency:avg",
            "latency:p(90)",
            "latency:p(95)",
            "latency:p(99)",
        ]
        .contains(&metric.as_str())
        {
            assert_eq!(verdict, "inconclusive", "{metric}");
        }
    }
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(json["gates"][0]["said"]
        .as_str()
        .unwrap()
        .contains("inconclusive"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repeated_runs_a_side_count_the_run_to_run_noise() {
    let dir = dir("repeated");
    let b: Vec<String> = (0..3)
        .map(|i| {
            write(
                &dir,
                &format!("b{i}.json"),
                &export(&format!("b{i}"), &latencies(1.0, 7 + i), 100),
            )
        })
        .collect();
    let c: Vec<String> = (0..3)
        .map(|i| {
            write(
                &dir,
                &format!("c{i}.json"),
                &export(&format!("c{i}"), &latencies(1.0, 21 + i), 100),
            )
        })
        .collect();
    let (code, out, err) = compare(&[&b.join(","), &c.join(","), "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["run_to_run"], true);
    assert_eq!(json["base"].as_array().unwrap().len(), 3);
    for (metric, verdict) in verdicts(&out) {
        assert_ne!(
            verdict, "slower",
            "{metric}: same distribution, other seeds"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_gate_is_one_line_and_exit_2() {
    for (gate, said) in [
        ("p99", "is not METRIC=PERCENT"),
        ("latency:p(42)=5%", "unknown metric"),
        ("latency:p(99)=lots", "is not a percentage"),
    ] {
        let (code, _, err) = compare(&["a.json", "b.json", "--fail-if-slower", gate]);
        assert_eq!(code, 2, "{gate}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(said), "{gate}: {err}");
    }
}

#[test]
fn a_run_given_twice_is_refused_not_counted_twice() {
    let dir = dir("twice");
    let a = write(&dir, "a.json", &export("a", &latencies(1.0, 7), 300));
    let b = write(&dir, "b.json", &export("b", &latencies(1.0, 8), 300));
    // The same file thirty times on a side would shrink the noise thirty-fold.
    let thirty = vec![a.as_str(); 30].join(",");
    let (code, stdout, stderr) = compare(&[&thirty, &b]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is given twice"), "{stderr}");
    // The same run under another name, on the other side.
    let copy = write(
        &dir,
        "copy-of-a.json",
        &export("a", &latencies(1.0, 9), 300),
    );
    let (code, _, stderr) = compare(&[&a, &copy]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("run a is given twice"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Pairs on a drifting machine: pair i's level drifts by up to ±25 %, and the candidate is
/// `slower` (a fraction) slower than its pair's base.
fn drifting_pairs(dir: &std::path::Path, slower: f64, pairs: u64) -> (String, String) {
    let (mut b, mut c) = (Vec::new(), Vec::new());
    for i in 0..pairs {
        let level = 1.0 + 0.25 * ((i as f64 * 2.4).sin());
        b.push(write(
            dir,
            &format!("b{i}.json"),
            &export(&format!("b{i}"), &sample(5_000, level, 7 + i), 100),
        ));
        c.push(write(
            dir,
            &format!("c{i}.json"),
            &export(
                &format!("c{i}"),
                &sample(5_000, level * (1.0 + slower), 101 + i),
                100,
            ),
        ));
    }
    (b.join(","), c.join(","))
}

fn row<'a>(json: &'a serde_json::Value, metric: &str) -> &'a serde_json::Value {
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == metric)
        .unwrap()
}

#[test]
fn paired_runs_see_through_the_drift_that_hides_a_change_unpaired() {
    let dir = dir("paired");
    let (b, c) = drifting_pairs(&dir, 0.10, 5);
    let (code, out, err) = compare(&[&b, &c, "--json"]);
    assert_eq!(code, 0, "{err}");
    let unpaired: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        row(&unpaired, "latency:p(50)")["verdict"],
        "no-significant-change",
        "unpaired, 25 % drift hides 10 %"
    );
    let (code, out, err) = compare(&[
        &b,
        &c,
        "--paired",
        "--json",
        "--fail-if-slower",
        "latency:p(50)=5%",
    ]);
    assert_eq!(
        code, 99,
        "paired, the 10 % slowdown fails a 5 % gate: {err}{out}"
    );
    let paired: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p50 = row(&paired, "latency:p(50)");
    assert_eq!(p50["verdict"], "slower", "{p50}");
    let change = p50["change_pct"].as_f64().unwrap();
    assert!((5.0..15.0).contains(&change), "{p50}");
    assert!(p50["mde_pct"].as_f64().unwrap() < 10.0, "{p50}");
    assert_eq!(paired["pairs"], 5);
    let page = dir.join("paired.html");
    let (_, table, _) = compare(&[&b, &c, "--paired", "--out", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(r#"id="pairs""#), "the page shows the pairs");
    assert!(
        table.contains("detectable") && table.contains("Paired: judged on 5 pairs"),
        "{table}"
    );

    // The same builds: no verdict either way.
    let same = dir.join("same");
    std::fs::create_dir_all(&same).unwrap();
    let (b, c) = drifting_pairs(&same, 0.0, 5);
    let (code, out, _) = compare(&[&b, &c, "--paired", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    for metric in [
        "latency:p(50)",
        "latency:p(99)",
        "StoreToDownstreamLatency:p(50)",
    ] {
        assert_eq!(
            row(&json, metric)["verdict"],
            "no-significant-change",
            "{metric}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_pair_that_lost_data_is_dropped_and_named_and_uneven_sides_are_refused() {
    let dir = dir("paired-lost");
    let (b, c) = drifting_pairs(&dir, 0.0, 3);
    // The second pair's candidate lost a request.
    let mut lossy = export("c1-lossy", &sample(5_000, 1.0, 9), 100);
    lossy.run.expected = Some(5_001);
    let lossy = write(&dir, "c1-lossy.json", &lossy);
    let c: Vec<&str> = c.split(',').collect();
    let candidate = [c[0], &lossy, c[2]].join(",");
    let (code, out, err) = compare(&[&b, &candidate, "--paired", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["pairs"], 2);
    let dropped = json["dropped"][0].as_str().unwrap();
    assert!(
        dropped.starts_with("pair 2:") && dropped.contains("lost 1"),
        "{dropped}"
    );
    let (_, table, _) = compare(&[&b, &candidate, "--paired"]);
    assert!(table.contains("Dropped pair 2:"), "{table}");

    let (code, _, err) = compare(&[&b, c[0], "--paired"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("as many runs a side"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
