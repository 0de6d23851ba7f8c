//! `collector stats` as a user runs it: both input formats, the tables, JSON, and the AWS sample's
//! table compared with real pandas.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{collector, temp_dir, write};
use contract::buckets::LatencyHistogram;
use contract::export::{
    ExportRun, LatencyExport, SecondRow, StatSummary, WaitState, EXPORT_VERSION,
};

fn export() -> LatencyExport {
    let mut histogram = LatencyHistogram::new();
    for ms in 100..200 {
        histogram.record(ms);
    }
    LatencyExport {
        version: EXPORT_VERSION,
        run: ExportRun {
            run_id: "snap".into(),
            namespace: "NS".into(),
            window_start_ms: 1_795_680_000_000,
            window_end_ms: 1_795_680_020_000,
            expected: Some(102),
            processed: 100,
            redelivered: 0,
            state: WaitState::DrainedShort,
            vus: Some(5),
            load_start_ms: None,
            load_end_ms: None,
            metrics_requested: None,
        },
        latency: StatSummary {
            count: 100,
            sum_ms: 14_950.0,
            min_ms: 100.0,
            max_ms: 199.0,
        },
        per_second: (0..4)
            .map(|i| SecondRow {
                timestamp_ms: 1_795_680_001_000 + i * 1000,
                count: 25,
                average_ms: [112.0, 137.0, 162.0, 187.0][i as usize],
                minimum_ms: 100.0 + 25.0 * i as f64,
                maximum_ms: 124.0 + 25.0 * i as f64,
                p99_ms: None,
            })
            .collect(),
        histogram,
        hops: [
            ("ClientToKinesisLatency", 37.375),
            ("KinesisToStoreLatency", 37.375),
            ("StoreToDownstreamLatency", 74.75),
        ]
        .into_iter()
        .map(|(name, mean)| {
            (
                name.to_owned(),
                StatSummary {
                    count: 100,
                    sum_ms: mean * 100.0,
                    min_ms: mean / 1.5,
                    max_ms: mean * 1.33,
                },
            )
        })
        .collect(),
        hop_histograms: Default::default(),
        over_time: Vec::new(),
        lambda: None,
        throttles: None,
    }
}

#[test]
fn prints_the_four_tables() {
    let dir = temp_dir("tables");
    let file = write(&dir, "timestamps.json", &export().to_json());
    let output = collector(&["stats", &file]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let expected = r#"Run
┌──────┬───────────────┬──────────┬───────────┬─────────────┬──────┬────────────────────────────────┬─────────┬─────┬────────────────┐
│ run  ┆ state         ┆ accepted ┆ processed ┆ redelivered ┆ lost ┆ active window                  ┆ loops/s ┆ VUs ┆ loops/s per VU │
╞══════╪═══════════════╪══════════╪═══════════╪═════════════╪══════╪════════════════════════════════╪═════════╪═════╪════════════════╡
│ snap ┆ drained short ┆      102 ┆       100 ┆           0 ┆    2 ┆ 2026-11-26T08:00:01.000Z + 4 s ┆   25.00 ┆   5 ┆           5.00 │
└──────┴───────────────┴──────────┴───────────┴─────────────┴──────┴────────────────────────────────┴─────────┴─────┴────────────────┘

Latency per request (percentiles from buckets, within 2 %)
┌─────────────────────────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┬───────┐
│ end-to-end latency (ms) ┆ count ┆  mean ┆   min ┆   p50 ┆   p90 ┆   p95 ┆   p99 ┆   max │
╞═════════════════════════╪═══════╪═══════╪═══════╪═══════╪═══════╪═══════╪═══════╪═══════╡
│ per request             ┆   100 ┆ 149.5 ┆ 100.0 ┆ 147.5 ┆ 187.0 ┆ 194.4 ┆ 194.4 ┆ 199.0 │
└─────────────────────────┴───────┴───────┴───────┴───────┴───────┴───────┴───────┴───────┘

Where the time goes (percentiles from buckets, within 2 %)
┌──────────────────────────┬───────┬──────┬──────┬─────┬─────┬─────┬─────┬──────┐
│ hop (ms)                 ┆ count ┆ mean ┆  min ┆ p50 ┆ p90 ┆ p95 ┆ p99 ┆  max │
╞══════════════════════════╪═══════╪══════╪══════╪═════╪═════╪═════╪═════╪══════╡
│ ClientToKinesisLatency   ┆   100 ┆ 37.4 ┆ 24.9 ┆   - ┆   - ┆   - ┆   - ┆ 49.7 │
│ KinesisToStoreLatency    ┆   100 ┆ 37.4 ┆ 24.9 ┆   - ┆   - ┆   - ┆   - ┆ 49.7 │
│ StoreToDownstreamLatency ┆   100 ┆ 74.8 ┆ 49.8 ┆   - ┆   - ┆   - ┆   - ┆ 99.4 │
└──────────────────────────┴───────┴──────┴──────┴─────┴─────┴─────┴─────┴──────┘

Per-second averages: describe(percentiles=[.9, .95, .99]), the AWS sample's table
┌───────┬───────────────────────────────────┐
│       ┆ latency (per-second averages, ms) │
╞═══════╪═══════════════════════════════════╡
│ count ┆                          4.000000 │
│ mean  ┆                        149.500000 │
│ std   ┆                         32.274861 │
│ min   ┆                        112.000000 │
│ 50%   ┆                        149.500000 │
│ 90%   ┆                        179.500000 │
│ 95%   ┆                        183.250000 │
│ 99%   ┆                        186.250000 │
│ max   ┆                        187.000000 │
└───────┴───────────────────────────────────┘
"#;
    // Percentiles are bucket representatives within 2 % of the exact nearest-rank values
    // (149, 189, 194, 198 ms); mean, min and max are exact; 100 loops in 4 s are 25 loops/s.
    // A version 2 export has no hop histograms: the hops' percentiles are "-".
    assert_eq!(text, expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prints_lambda_s_own_metrics_per_function_or_why_there_are_none() {
    use contract::lambda::{FunctionMetrics, LambdaView};
    let dir = temp_dir("lambda");
    let mut with = export();
    with.lambda = Some(LambdaView {
        unavailable: None,
        functions: vec![FunctionMetrics {
            role: "midstream".into(),
            name: "PipelineStack-Midstream-1".into(),
            invocations: 412,
            errors: 3,
            throttles: 0,
            duration_p50_ms: Some(4.25),
            duration_p99_ms: Some(20.5),
            duration_max_ms: Some(31.0),
            duration_sum_ms: Some(2000.0),
            concurrency_max: Some(2.0),
            cold_starts: Some(4),
            init_avg_ms: Some(8.5),
            init_max_ms: Some(11.0),
            memory_max_mb: Some(17.0),
            memory_size_mb: Some(256.0),
            iterator_age_max_ms: Some(56.0),
            iterator_age: vec![(1_000, 56.0)],
        }],
    });
    let file = write(&dir, "with.json", &with.to_json());
    let text = String::from_utf8(collector(&["stats", &file]).stdout).unwrap();
    assert!(text.contains("Lambda's own metrics per function"), "{text}");
    let row = text.lines().find(|l| l.contains("midstream")).expect(&text);
    let cells: Vec<&str> = row.split('┆').map(|c| c.trim_matches(['│', ' '])).collect();
    assert_eq!(
        cells,
        [
            "midstream",
            "412",
            "3",
            "0",
            "4.2",
            "20.5",
            "31.0",
            "2",
            "4",
            "8.5",
            "17",
            "56.0"
        ]
    );
    // Before the per-second describe, which stays last.
    assert!(
        text.find("Lambda's own").unwrap() < text.find("Per-second averages: describe").unwrap()
    );
    let json = String::from_utf8(collector(&["stats", &file, "--json"]).stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["lambda"]["functions"][0]["iterator_age_max_ms"], 56.0);

    // Thresholds name Lambda's metrics as AWS does.
    let judged = collector(&[
        "stats",
        &file,
        "--threshold",
        "IteratorAge:max<5000",
        "--threshold",
        "Throttles:count==0",
        "--threshold",
        "ColdStarts:count<=4",
        "--threshold",
        "Duration:p(99)<20",
    ]);
    assert_eq!(judged.status.code(), Some(99), "Duration's p99 was 20.5");
    let said = String::from_utf8_lossy(&judged.stdout);
    for line in [
        "✓ IteratorAge:max<5000 (was 56)",
        "✓ Throttles:count==0 (was 0)",
        "✓ ColdStarts:count<=4 (was 4)",
        "✗ Duration:p(99)<20 (was 20.5)",
    ] {
        assert!(said.contains(line), "{line:?} in {said}");
    }

    // The cost on AWS: 412 Lambda requests at $0.20 per million; another price file, another
    // price; a price file that does not parse is one line, exit 2.
    assert!(text.contains("What this run would cost on AWS"), "{text}");
    let lambda_cost = |json: &serde_json::Value| {
        json["cost"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["item"] == "Lambda requests")
            .map(|l| l["cost"].as_f64().unwrap())
            .unwrap()
    };
    assert!(
        (lambda_cost(&json) - 412.0 * 0.2 / 1e6).abs() < 1e-12,
        "{json}"
    );
    assert!(json["cost"]["per_thousand_loops"].as_f64().unwrap() > 0.0);
    let doubled = contract::cost::DEFAULT_PRICES.replace(
        "\"lambda_per_million_requests\": 0.2",
        "\"lambda_per_million_requests\": 0.4",
    );
    let prices = write(&dir, "prices.json", &doubled);
    let repriced = collector(&["stats", &file, "--json", "--prices", &prices]);
    let repriced: serde_json::Value = serde_json::from_slice(&repriced.stdout).unwrap();
    assert!((lambda_cost(&repriced) - 2.0 * lambda_cost(&json)).abs() < 1e-12);
    let bad = write(&dir, "bad.json", "{\"version\": 1}");
    let refused = collector(&["stats", &file, "--prices", &bad]);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("not a price file"), "{said}");

    with.lambda = Some(LambdaView {
        unavailable: Some("no Invocations in AWS/Lambda".into()),
        functions: vec![],
    });
    let file = write(&dir, "without.json", &with.to_json());
    let text = String::from_utf8(collector(&["stats", &file]).stdout).unwrap();
    assert!(
        text.contains("not available: no Invocations in AWS/Lambda"),
        "{text}"
    );
    assert!(
        text.contains("not available: Lambda's metrics are not available"),
        "the cost says why there is none: {text}"
    );
    let judged = collector(&["stats", &file, "--threshold", "Throttles:count==0"]);
    assert_eq!(judged.status.code(), Some(99), "no data is not zero");
    assert!(String::from_utf8_lossy(&judged.stdout).contains("(was no data)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_the_samples_bare_array() {
    let dir = temp_dir("original");
    let file = write(&dir, "original.json", "[250.5, 310.0, 290.25]");
    let output = collector(&["stats", &file, "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["run"], serde_json::Value::Null);
    assert_eq!(report["per_second_averages"]["count"], 3);
    assert_eq!(report["per_second_averages"]["50%"], 290.25);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn thresholds_on_the_pipeline_print_as_k6_does_and_exit_99_when_crossed() {
    let dir = temp_dir("thresholds");
    let file = write(&dir, "timestamps.json", &export().to_json());
    let passing = collector(&[
        "stats",
        &file,
        "--threshold",
        "latency:p(99)<500",
        "--threshold",
        "KinesisToStoreLatency:avg<40",
    ]);
    assert_eq!(passing.status.code(), Some(0));
    let text = String::from_utf8(passing.stdout).unwrap();
    assert!(text.ends_with("\nthresholds:\n  ✓ latency:p(99)<500 (was 194.44)\n  ✓ KinesisToStoreLatency:avg<40 (was 37.38)\n"), "{text}");

    // 2 of 102 accepted requests were lost; and the JSON carries the verdicts.
    let crossed = collector(&["stats", &file, "--json", "--threshold", "lost:count==0"]);
    assert_eq!(crossed.status.code(), Some(99));
    let report: serde_json::Value = serde_json::from_slice(&crossed.stdout).unwrap();
    assert_eq!(
        report["thresholds"],
        serde_json::json!([{"threshold": "lost:count==0", "passed": false, "value": 2.0}])
    );

    for (threshold, said) in [
        ("latency:p(99)", "no comparison"),
        (
            "throughput:value>1",
            "unknown metric \"throughput\"; known: latency",
        ),
        ("lost:avg<1", "lost has no such aggregation"),
    ] {
        let bad = collector(&["stats", &file, "--threshold", threshold]);
        assert_eq!(bad.status.code(), Some(2), "{threshold}");
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(said), "{threshold}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_one_clear_line() {
    let output = collector(&["stats", "/nonexistent/timestamps.json"]);
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.starts_with("collector: reading /nonexistent/timestamps.json: "),
        "{err}"
    );

    // A file that never ends is refused after a bounded read, not read until memory runs out.
    for args in [
        &["stats", "/dev/zero"][..],
        &["compare", "/dev/zero", "/dev/zero"],
    ] {
        let output = collector(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            err,
            "collector: reading /dev/zero: larger than 256 MiB: not a file this toolkit wrote\n"
        );
    }

    let dir = temp_dir("bad");
    let file = write(&dir, "bad.json", r#"{"hello": 1}"#);
    let output = collector(&["stats", &file]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a latency export"));
    std::fs::remove_dir_all(&dir).unwrap();

    let output = collector(&["wait", "--poll", "soon"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
}

/// The venv's Python, with pandas (installed by `make test`).
fn python() -> PathBuf {
    let python = std::env::var_os("PANDAS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: run `make test`, which installs pandas into .venv",
        python.display()
    );
    python
}

#[test]
fn the_samples_table_equals_pandas() {
    let dir = temp_dir("pandas");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = |scale: f64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 1_000_000) as f64 / 1_000_000.0 * scale
    };
    let vectors: Vec<Vec<f64>> = vec![
        vec![42.0],
        vec![1.0, 2.0],
        vec![3.0, 1.0, 2.0],
        vec![5.0, 5.0, 5.0, 1.0, 5.0, 2.0],
        (0..1000).map(|_| random(500.0)).collect(),
        (0..86_400).map(|_| 50.0 + random(2000.0).round()).collect(),
    ];
    for (i, vector) in vectors.iter().enumerate() {
        let file = write(
            &dir,
            &format!("v{i}.json"),
            &serde_json::to_string(vector).unwrap(),
        );
        let ours = collector(&["stats", &file, "--json"]);
        assert!(ours.status.success());
        let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
        let ours = &ours["per_second_averages"];
        let pandas = Command::new(python())
            .args([
                "-c",
                // pandas 3 leaves the median out when percentiles are given (older pandas, which
                // the AWS sample ran, put it in): add it from quantile(.5).
                "import json, sys, pandas as pd; s = pd.Series(json.load(open(sys.argv[1]))); \
                 d = s.describe(percentiles=[.9, .95, .99]); d['50%'] = s.quantile(.5); print(d.to_json())",
                &file,
            ])
            .output()
            .unwrap();
        assert!(
            pandas.status.success(),
            "{}",
            String::from_utf8_lossy(&pandas.stderr)
        );
        let pandas: serde_json::Value = serde_json::from_slice(&pandas.stdout).unwrap();
        for key in [
            "count", "mean", "std", "min", "50%", "90%", "95%", "99%", "max",
        ] {
            match (ours[key].as_f64(), pandas[key].as_f64()) {
                (Some(a), Some(b)) => assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "vector {i} {key}: {a} vs pandas {b}"
                ),
                // pandas' NaN std for one value is null in JSON, like ours.
                (a, b) => assert_eq!(a, b, "vector {i} {key}"),
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run file for `export()`'s run: 102 accepted, the load ending at `end_ms`, aborted or not.
fn run_file(end_ms: i64, aborted: Option<&str>) -> String {
    let mut file = contract::runfile::RunFile::from_json(
        r#"{"version":3,"run":{"run_id":"snap","endpoint":"http://127.0.0.1:1/",
        "executor":"constant-vus","start_ms":1795680000500,"end_ms":0,"vus_max":5,
        "requests_sent":102,"requests_accepted":102,"failures":{},"dropped_iterations":0},
        "metrics":{},"histogram":{"unit":"us","significant_figures":3,"buckets":[]},
        "timeline":[]}"#,
    )
    .unwrap();
    file.run.end_ms = end_ms;
    file.run.aborted = aborted.map(str::to_owned);
    file.to_json()
}

#[test]
fn an_aborted_load_or_an_export_taken_mid_run_is_never_read_as_whole() {
    let dir = temp_dir("mid-run");
    let file = write(&dir, "timestamps.json", &export().to_json());
    // The load ran 10 s past the export's window (`collector wait --until` during the run).
    let later = write(&dir, "run.json", &run_file(1_795_680_030_000, None));
    let output = collector(&[
        "stats",
        &file,
        "--run",
        &later,
        "--threshold",
        "lost:count==0",
    ]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("unknown (the export ends before the load)"),
        "not 2 lost: {text}"
    );
    assert!(
        text.contains("Lost is unknown: the export's window ends 10.0 s before the load did"),
        "{text}"
    );
    assert_ne!(output.status.code(), Some(0), "lost:count==0 cannot pass");

    // A load cut short by a signal: said in the state and in a note.
    let aborted = write(
        &dir,
        "aborted.json",
        &run_file(
            1_795_680_010_000,
            Some("loadgen received SIGINT (interrupt) 9.5 s into the run"),
        ),
    );
    let output = collector(&["stats", &file, "--run", &aborted]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("drained short; load aborted"), "{text}");
    assert!(
        text.contains("The load was aborted (loadgen received SIGINT (interrupt) 9.5 s into"),
        "{text}"
    );

    // Another run under the same id (an hour later): refused, not "measured twice".
    let mut other =
        contract::runfile::RunFile::from_json(&run_file(1_795_683_610_000, None)).unwrap();
    other.run.start_ms = 1_795_683_600_000;
    let other = write(&dir, "other.json", &other.to_json());
    let output = collector(&["stats", &file, "--run", &other]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("are two runs that share the run id \"snap\""),
        "{err}"
    );

    // Nothing measured is never "complete".
    let mut empty = export();
    empty.run.processed = 0;
    empty.run.state = WaitState::Complete;
    let file = write(&dir, "empty.json", &empty.to_json());
    let text = String::from_utf8(collector(&["stats", &file]).stdout).unwrap();
    assert!(text.contains("nothing measured"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
