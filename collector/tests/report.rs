//! `collector report` as a user runs it, and the page it writes opened in headless Chromium:
//! it renders without an error or a request, and every chart holds its data.

mod common;

use std::path::Path;

use common::chromium::Browser;
use common::{collector, temp_dir, write};
use contract::buckets::LatencyHistogram;
use contract::export::{
    ExportRun, LatencyExport, SecondRow, StatSummary, WaitState, EXPORT_VERSION,
};
use contract::runfile::{DurationHistogram, LoadSample, RunFile, RunInfo, RUN_FILE_VERSION};
use serde_json::{json, Value};

const LOAD_START_MS: i64 = 1_795_680_000_250;
const ORIGIN_MS: i64 = 1_795_680_000_000;
/// A run id that must be shown as text, not taken as markup.
const RUN_ID: &str = "run-<b>&\"1\"";

/// 30 s of load (2 failed requests in second 10), then the pipeline draining for 4 s more: 34
/// seconds of loops, one of which (second 20) saw none complete.
fn run_and_export() -> (RunFile, LatencyExport) {
    let timeline: Vec<LoadSample> = (0..30)
        .map(|i| LoadSample {
            t_ms: ORIGIN_MS + i * 1000,
            vus: 10,
            requests: 100 + (i as u64 % 5) * 10,
            failures: if i == 10 { 2 } else { 0 },
            offered: None,
        })
        .collect();
    let sent: u64 = timeline.iter().map(|s| s.requests).sum();
    let accepted = sent - 2;
    let run = RunFile {
        version: RUN_FILE_VERSION,
        run: RunInfo {
            run_id: RUN_ID.into(),
            endpoint: "http://127.0.0.1:4599/prod/".into(),
            executor: "constant-vus".into(),
            start_ms: LOAD_START_MS,
            end_ms: ORIGIN_MS + 30_000,
            vus_max: 10,
            requests_sent: sent,
            requests_accepted: accepted,
            failures: [("status_500".to_owned(), 2)].into(),
            dropped_iterations: 0,
            interrupted_iterations: 0,
            scheduled_iterations: None,
            requests_attempted: None,
            segments: None,
            checks: None,
            max_duration_ms: None,
            aborted: None,
            http_failed: None,
            data_bytes: None,
            vus_seen: None,
        },
        root_group: None,
        metrics: Default::default(),
        trends: None,
        histogram: Some(DurationHistogram::default()),
        timeline,
        accepted_ids: None,
        unaccepted_ids: None,
    };
    let seconds: Vec<i64> = (1..=34).filter(|s| *s != 20).collect();
    let mut per_second: Vec<SecondRow> = seconds
        .iter()
        .map(|&s| SecondRow {
            timestamp_ms: ORIGIN_MS + s * 1000,
            count: accepted / 33,
            average_ms: 150.0 + s as f64,
            minimum_ms: 90.0 + s as f64,
            maximum_ms: 300.0 + 2.0 * s as f64,
            p99_ms: None,
        })
        .collect();
    per_second.last_mut().unwrap().count += accepted % 33;
    let mut histogram = LatencyHistogram::new();
    let mut latency = StatSummary {
        count: 0,
        sum_ms: 0.0,
        min_ms: f64::MAX,
        max_ms: 0.0,
    };
    for i in 0..accepted {
        let ms = 91 + (i * 7919 % 400) as i64;
        histogram.record(ms);
        latency.count += 1;
        latency.sum_ms += ms as f64;
        latency.min_ms = latency.min_ms.min(ms as f64);
        latency.max_ms = latency.max_ms.max(ms as f64);
    }
    let hop = |mean: f64| StatSummary {
        count: accepted,
        sum_ms: mean * accepted as f64,
        min_ms: mean / 2.0,
        max_ms: mean * 3.0,
    };
    let export = LatencyExport {
        version: EXPORT_VERSION,
        run: ExportRun {
            run_id: RUN_ID.into(),
            namespace: contract::metrics::NAMESPACE.into(),
            window_start_ms: LOAD_START_MS - 5000,
            window_end_ms: ORIGIN_MS + 40_000,
            expected: Some(accepted),
            processed: accepted,
            redelivered: 0,
            state: WaitState::Complete,
            vus: Some(10),
            load_start_ms: Some(LOAD_START_MS),
            load_end_ms: Some(ORIGIN_MS + 30_000),
            metrics_requested: None,
        },
        latency,
        per_second,
        histogram,
        hops: [
            ("ClientToKinesisLatency", 20.0),
            ("KinesisToStoreLatency", 80.0),
            ("StoreToDownstreamLatency", 60.0),
        ]
        .into_iter()
        .map(|(name, mean)| (name.to_owned(), hop(mean)))
        .collect(),
        hop_histograms: Default::default(),
        over_time: Vec::new(),
        lambda: None,
        throttles: None,
    };
    (run, export)
}

/// What each chart holds, as the browser rendered it.
const CHARTS: &str = r#"(() => [...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg');
  const box = svg.getBoundingClientRect();
  const points = el => Array.from({length: el.points.numberOfItems}, (_, i) => el.points.getItem(i));
  const shapes = [...svg.querySelectorAll('polyline, polygon')];
  const [w, h] = [svg.width.baseVal.value, svg.height.baseVal.value];
  return {
    id: f.id,
    title: f.querySelector('h2').textContent,
    width: box.width,
    height: box.height,
    polylines: [...svg.querySelectorAll('polyline')].map(p => p.points.numberOfItems),
    polygons: [...svg.querySelectorAll('polygon')].map(p => p.points.numberOfItems),
    circles: svg.querySelectorAll('circle').length,
    bars: [...svg.querySelectorAll('rect')]
      .filter(r => ['#1F77B4', '#FF7F0E'].includes((r.getAttribute('fill') || '').toUpperCase()))
      .filter(r => r.height.baseVal.value > 0).length,
    texts: [...svg.querySelectorAll('text')].map(t => t.textContent.trim()),
    outside: shapes.flatMap(points).filter(p => p.x < 0 || p.y < 0 || p.x > w || p.y > h).length,
  };
}))()"#;

fn counts(chart: &Value, key: &str) -> Vec<u64> {
    chart[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn texts(chart: &Value) -> Vec<String> {
    chart["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_chart_renders_with_its_data_in_chromium() {
    let dir = temp_dir("report-charts");
    let (run, export) = run_and_export();
    let export_path = write(&dir, "timestamps.json", &export.to_json());
    let run_path = write(&dir, "run.json", &run.to_json());
    let page = dir.join("report.html");
    let output = collector(&[
        "report",
        &export_path,
        "--run",
        &run_path,
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        format!("collector: wrote {}", page.display())
    );

    let mut browser = Browser::start();
    browser.open(&page);
    let charts = browser.eval(CHARTS);
    let summary = browser.eval(
        r#"({
          title: document.title,
          h1: document.querySelector('h1').textContent,
          scripts: document.querySelectorAll('script').length,
          cards: [...document.querySelectorAll('.summary li')].map(li => li.textContent),
          tables: [...document.querySelectorAll('#tables table')].map(t => t.rows.length),
          captions: [...document.querySelectorAll('figure.chart figcaption p')].map(p => p.textContent),
          run_row: [...document.querySelectorAll('#tables table')[0].rows[1].cells].map(c => c.textContent),
        })"#,
    );
    let png = browser.screenshot();
    let problems = browser.problems();
    let requests = browser.requests();
    drop(browser);

    // Renders cleanly and needs nothing but the file.
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with("file://"), "{requests:?}");

    // The run id is text, not markup.
    assert_eq!(summary["h1"], json!(format!("Pipeline run {RUN_ID}")));
    assert_eq!(summary["title"], summary["h1"]);
    assert_eq!(summary["scripts"], 0);
    let accepted = run.run.requests_accepted;
    let cards: Vec<&str> = summary["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(cards.contains(&"completewait ended"), "{cards:?}");
    assert!(cards.contains(&"0lost"), "{cards:?}");
    assert!(cards.contains(&"10VUs"), "{cards:?}");
    assert!(
        cards.contains(&format!("{},{:03}accepted", accepted / 1000, accepted % 1000).as_str()),
        "{cards:?}"
    );
    // The four tables `collector stats` prints: run, latency, three hops, describe's nine rows.
    assert_eq!(summary["tables"], json!([2, 2, 4, 10]));
    assert_eq!(summary["run_row"][2], json!(accepted.to_string()));
    assert_eq!(summary["run_row"][3], json!(accepted.to_string()));

    let ids: Vec<&str> = charts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "throughput",
            "backlog",
            "latency-over-time",
            "distribution",
            "hops"
        ]
    );
    for chart in charts.as_array().unwrap() {
        assert!(
            chart["width"].as_f64().unwrap() > 500.0 && chart["height"].as_f64().unwrap() > 150.0,
            "{chart}"
        );
        assert_eq!(chart["outside"], 0, "drawn outside its chart: {chart}");
    }
    let [throughput, backlog, over_time, distribution, hops] = [0, 1, 2, 3, 4].map(|i| &charts[i]);
    // The backlog is called out: the last loop completed 5 s after the load's last second.
    let caption = summary["captions"][0].as_str().unwrap();
    assert!(
        caption.contains("fell behind: it finished 5 s after the load ended"),
        "{caption}"
    );

    // Throughput: 34 seconds of loops (the empty one counted as zero), and 30 of load and of
    // failures; axes with units; the end of the load marked.
    let lines = counts(throughput, "polylines");
    assert_eq!(lines.iter().filter(|n| **n == 34).count(), 1, "{lines:?}");
    assert_eq!(lines.iter().filter(|n| **n == 30).count(), 2, "{lines:?}");
    let words = texts(throughput);
    for expected in [
        "requests per second",
        "time since the load started (s)",
        "load ends",
        "pipeline: loops completed/s",
        "load generator: responses/s",
        "load generator: failed/s",
    ] {
        assert!(
            words.iter().any(|t| t == expected),
            "{expected:?} in {words:?}"
        );
    }

    // The backlog: one point per second from the first request (second 0) to the last loop
    // (second 34), and every accepted request through by the end.
    let lines = counts(backlog, "polylines");
    assert!(lines.contains(&35), "{lines:?} {backlog}");
    let caption = summary["captions"][1].as_str().unwrap();
    assert!(
        caption.contains("accepted so far minus completed so far"),
        "{caption}"
    );
    let points = contract::run::over_time(&export, Some(&run));
    assert_eq!(points.len(), 35);
    assert_eq!(points.last().unwrap().backlog, Some(0));

    // Latency over time: 33 seconds with a datapoint, the band around them.
    assert!(counts(over_time, "polylines").contains(&33), "{over_time}");
    assert_eq!(counts(over_time, "polygons"), [66], "{over_time}");
    assert!(texts(over_time).contains(&"end-to-end latency (ms)".to_owned()));

    // The distribution: the curve, the four marked percentiles, a nines axis.
    assert!(
        counts(distribution, "polylines").contains(&240),
        "{distribution}"
    );
    assert_eq!(distribution["circles"], 4);
    let words = texts(distribution);
    for expected in ["50 %", "90 %", "99 %", "percentile of requests"] {
        assert!(
            words.iter().any(|t| t == expected),
            "{expected:?} in {words:?}"
        );
    }
    // As the tables have it: from the buckets, within the exact extremes.
    let p99 = export
        .histogram
        .percentile(99.0)
        .unwrap()
        .clamp(export.latency.min_ms, export.latency.max_ms);
    assert!(
        words.contains(&format!("p99 {p99:.0} ms")),
        "p99 {p99} in {words:?}"
    );

    // Hops: three hops and the end-to-end mean, each labelled with its value.
    assert_eq!(hops["bars"], 4, "{hops}");
    let words = texts(hops);
    let mean = export.latency.mean_ms().unwrap();
    for expected in [
        "20.0 ms".to_owned(),
        "80.0 ms".to_owned(),
        "60.0 ms".to_owned(),
        format!("{mean:.1} ms"),
        "client → Kinesis".to_owned(),
        "end to end".to_owned(),
    ] {
        assert!(words.contains(&expected), "{expected:?} in {words:?}");
    }

    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 20_000, "a {}-byte screenshot", png.len());
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png"),
        &png,
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_samples_array_gets_its_one_chart() {
    let dir = temp_dir("report-original");
    let averages: Vec<f64> = (0..60).map(|i| 150.0 + (i % 7) as f64).collect();
    let file = write(
        &dir,
        "timestamps.json",
        &serde_json::to_string(&averages).unwrap(),
    );
    let page = dir.join("report.html");
    let output = collector(&["report", &file, "--out", page.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");

    let mut browser = Browser::start();
    browser.open(&page);
    let charts = browser.eval(CHARTS);
    let tables = browser.eval("document.querySelectorAll('#tables table').length");
    let problems = browser.problems();
    drop(browser);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(charts.as_array().unwrap().len(), 1, "{charts}");
    assert_eq!(charts[0]["id"], "latency-over-time");
    assert!(counts(&charts[0], "polylines").contains(&60), "{charts}");
    assert_eq!(tables, 1, "only describe()'s table");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = temp_dir("report-bad");
    let out = dir.join("report.html");
    let missing = dir.join("missing.json");
    let output = collector(&[
        "report",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
    assert!(!out.exists(), "no page for no input");

    let not_json = write(&dir, "bad.json", "latency: 12");
    let output = collector(&["report", &not_json, "--out", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not JSON"),
        "{output:?}"
    );

    let output = collector(&["report", "--bins", "3"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
