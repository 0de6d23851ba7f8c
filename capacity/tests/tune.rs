//! `tune`: bad flags are one line and exit 2 before anything is loaded, and the tuning page
//! renders in headless Chromium with one labelled point per size.

// Shared with the collector's tests; this test uses part of it.
#[allow(dead_code)]
#[path = "../../collector/tests/common/chromium.rs"]
mod chromium;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use contract::capacity::CapacityStep;
use contract::tune::{TuneFile, TuneFunction, TuneStep, TUNE_VERSION};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tune-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    let dir = scratch("flags");
    let outputs = dir.join("outputs.json");
    std::fs::write(
        &outputs,
        r#"{"PipelineStack":{"ApiGatewayMethodEndpoint":"http://127.0.0.1:1/prod/",
        "UpstreamFunctionName":"up","MidstreamFunctionName":"mid",
        "DownstreamFunctionName":"down"}}"#,
    )
    .unwrap();
    let outputs = outputs.to_str().unwrap();
    let crate_folder = env!("CARGO_MANIFEST_DIR");
    let cases: [(&[&str], &str); 8] = [
        (
            &["--sizes", "64,256"],
            "memory size 64 MB is outside Lambda's 128 to 10240 MB",
        ),
        (
            &["--sizes", "256,10241"],
            "outside Lambda's 128 to 10240 MB",
        ),
        (
            &["--sizes", "1.5"],
            "memory size \"1.5\" is not a whole number of MB",
        ),
        (
            &["--function", "sideways"],
            "--function \"sideways\" is not one of upstream, midstream, downstream, or all",
        ),
        (&["--rate", "0"], "--rate must be above 0"),
        (
            &["--url", "http://127.0.0.1:1/"],
            "no function names: pass --outputs",
        ),
        (
            &["--outputs", outputs, "--out", crate_folder],
            "holds source code",
        ),
        (
            &["--outputs", outputs, "--run-prefix", "a b"],
            "--run-prefix \"a b\" must be 1 to 57 characters",
        ),
    ];
    for (args, said) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_tune"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
    // Checking only: good flags are exit 0 and no output.
    let output = Command::new(env!("CARGO_BIN_EXE_tune"))
        .args([
            "--sizes",
            "128,1769",
            "--function",
            "midstream",
            "--check-only",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stderr.is_empty() && output.stdout.is_empty());
}

fn step(memory_mb: u32, p99_ms: f64, cost: f64, usable: bool) -> TuneStep {
    let load = CapacityStep {
        run_id: format!("tune-1-m{memory_mb}"),
        rate_per_s: 20.0,
        scheduled: 400,
        dropped: 0,
        sent: 400,
        accepted: 400,
        failed: 0,
        accepted_per_s: 20.0,
        completed_per_s: 20.0,
        processed: 400,
        lost: Some(0),
        backlog_growth: 0,
        drain_s: 0.8,
        p50_ms: Some(p99_ms * 0.7),
        p99_ms: Some(p99_ms),
        hop_p99_ms: BTreeMap::new(),
        throttled: BTreeMap::new(),
        sustained: usable,
        reasons: if usable {
            Vec::new()
        } else {
            vec![format!("p99 {p99_ms:.0} ms over the SLO of 1000 ms")]
        },
    };
    let functions = ["upstream", "midstream", "downstream"]
        .map(|role| TuneFunction {
            role: role.to_owned(),
            memory_mb,
            invocations: 400,
            duration_p50_ms: Some(5.0),
            duration_p99_ms: Some(9.0),
            billed_gb_seconds: 0.5,
            cold_starts: 2,
            init_avg_ms: Some(40.0),
        })
        .to_vec();
    TuneStep {
        memory_mb,
        sizes: BTreeMap::new(),
        load,
        p99_noise_ms: Some(p99_ms * 0.03),
        functions,
        lambda_unavailable: None,
        lambda_cost: Some(cost * 0.4),
        cost_per_1000_loops: Some(cost),
        usable,
    }
}

#[test]
fn the_tuning_page_renders_one_labelled_point_per_size_in_chromium() {
    let mut file = TuneFile {
        version: TUNE_VERSION,
        run_prefix: "tune-<1>".into(),
        tuned: vec!["upstream".into(), "midstream".into(), "downstream".into()],
        rate_per_s: 20.0,
        step_duration_s: 20.0,
        slo_ms: 1000.0,
        current_mb: [("upstream", 256), ("midstream", 256), ("downstream", 256)]
            .map(|(r, mb)| (r.to_owned(), mb))
            .into(),
        prices: "us-east-1, list prices of 2026-11".into(),
        steps: vec![
            step(128, 1400.0, 0.010, false),
            step(256, 700.0, 0.012, true),
            step(1769, 150.0, 0.040, true),
        ],
        cheapest: None,
        fastest: None,
        current_step: Some(256),
    };
    file.recommend();
    let dir = scratch("page");
    let page = dir.join("tune.html");
    std::fs::write(&page, capacity::tune::page::html(&file).unwrap()).unwrap();

    let mut browser = chromium::Browser::start();
    browser.open(&page);
    let seen = browser.eval(
        r#"(() => {
          const svg = document.querySelector('figure#cost-vs-p99 svg');
          return {
            h1: document.querySelector('h1').textContent,
            lead: [...document.querySelectorAll('p')].map(p => p.textContent),
            circles: svg.querySelectorAll('circle').length,
            texts: [...svg.querySelectorAll('text')].map(t => t.textContent.trim()),
            width: svg.getBoundingClientRect().width,
            rows: document.querySelector('table').rows.length,
            last: [...document.querySelector('table').rows[1].cells].map(c => c.textContent),
          };
        })()"#,
    );
    let problems = browser.problems();
    drop(browser);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(seen["h1"], "Memory sizes tune-<1>", "text, not markup");
    assert_eq!(seen["circles"], 3, "{seen}");
    let texts = seen["texts"].to_string();
    for label in ["128 MB", "256 MB", "1769 MB", "end-to-end p99 (ms)"] {
        assert!(texts.contains(label), "{label}: {texts}");
    }
    assert!(seen["width"].as_f64().unwrap() > 400.0, "{seen}");
    let lead = seen["lead"].to_string();
    assert!(
        lead.contains("cheapest within the SLO of 1000 ms: 256 MB"),
        "{lead}"
    );
    assert!(lead.contains("fastest: 1769 MB"), "{lead}");
    assert_eq!(seen["rows"], 4, "a header and a row per size: {seen}");
    let first = seen["last"].to_string();
    assert!(first.contains("p99 1400 ms over the SLO"), "{first}");
    let _ = std::fs::remove_dir_all(&dir);
}
