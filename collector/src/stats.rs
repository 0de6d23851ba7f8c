//! `collector stats`: the run, per-request latency, per-hop latency, and the AWS sample's table
//! (pandas' describe of the per-second averages), from a latency export or the AWS sample's
//! export (a bare JSON array of per-second averages); Lambda's own metrics and the run's cost
//! on AWS are [`crate::stats_aws`]'s tables.

use std::io::{self, Write};

use comfy_table::{presets, CellAlignment, Table};
use contract::cost::PriceFile;
use contract::export::{LatencyExport, StatSummary, WaitState};
use contract::runfile::RunFile;
use serde::Serialize;

use contract::run::Run;

use crate::describe::{describe, Describe};
pub use crate::stats_aws::Cost;
use crate::stats_aws::{cost_table, lambda_table, throttle_table};
pub use crate::table::TableData;

/// One second of the run (the export's row type).
pub use contract::export::OverTimeRow as SecondPoint;

/// What `collector stats` read.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// This project's latency export.
    Export(Box<LatencyExport>),
    /// The AWS sample's export: per-second average latencies.
    Averages(Vec<f64>),
}

/// Reads either format, parsing straight into its types (no intermediate JSON tree: an
/// 86,400-row export is read in one pass).
pub fn read_input(text: &str) -> Result<Input, String> {
    match text.trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str(text)
            .map(Input::Averages)
            .map_err(|e| format!("a bare array must hold per-second averages (numbers): {e}")),
        Some(b'{') => serde_json::from_str(text)
            .map(|export| Input::Export(Box::new(export)))
            .map_err(|e| format!("not a latency export (from `collector wait --out`): {e}")),
        _ => Err(serde_json::from_str::<serde_json::Value>(text)
            .err()
            .map_or(
                "neither a latency export nor an array of per-second averages".to_owned(),
                |e| format!("not JSON: {e}"),
            )),
    }
}

/// Table 1: the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// The run id.
    pub run_id: String,
    /// How the wait ended.
    pub state: WaitState,
    /// Requests accepted by the API, when known.
    pub accepted: Option<u64>,
    /// Requests measured by downstream.
    pub processed: u64,
    /// Items written again, counted and not measured.
    pub redelivered: u64,
    /// Measured beyond the accepted count: requests measured twice, which can hide losses.
    pub over_counted: Option<u64>,
    /// Accepted but not processed; `None` when unknown (see `lost_unknown`).
    pub lost: Option<u64>,
    /// Why the loss is unknown, when it is (the run model's one wording).
    pub lost_unknown: Option<String>,
    /// Why the load was cut short (a signal), when it was: not the run asked for.
    pub aborted: Option<String>,
    /// The loss as the run model words it in a table cell.
    #[serde(skip)]
    pub loss: contract::run::Loss,
    /// First second with a completed loop, epoch ms.
    pub active_start_ms: Option<i64>,
    /// End of the last second with a completed loop, epoch ms.
    pub active_end_ms: Option<i64>,
    /// Loops per second over the active window.
    pub loops_per_s: Option<f64>,
    /// VUs.
    pub vus: Option<u64>,
    /// Loops per second per VU.
    pub loops_per_s_per_vu: Option<f64>,
}

/// Table 2: end-to-end latency per request, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyRow {
    /// Requests.
    pub count: u64,
    /// Exact mean (Sum / SampleCount).
    pub mean_ms: f64,
    /// Exact minimum.
    pub min_ms: f64,
    /// Median, from the bucket histogram (within 2 %).
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Exact maximum.
    pub max_ms: f64,
}

/// Table 3: one hop, ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopRow {
    /// The hop's metric.
    pub hop: String,
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Minimum.
    pub min_ms: f64,
    /// Median, from the hop's bucket histogram (within 2 %); `None` for exports before
    /// version 3.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Maximum.
    pub max_ms: f64,
}

/// Everything `collector stats` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Table 1 (not for the AWS sample's format).
    pub run: Option<RunRow>,
    /// Table 2.
    pub latency: Option<LatencyRow>,
    /// Table 3.
    pub hops: Vec<HopRow>,
    /// Table 4: Lambda's own metrics per function (exports from version 4 on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<contract::lambda::LambdaView>,
    /// Table 4b: AWS's throttle metrics, which limit gave (exports from version 5 on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttles: Option<contract::quota::ThrottleView>,
    /// Table 5: what the run would cost on AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Table 6: describe of the per-second averages.
    pub per_second_averages: Option<Describe>,
    /// Second by second: accepted, completed, backlog and p99 (charts and `--json` only).
    pub over_time: Vec<SecondPoint>,
}

/// Builds the report; `run` and `vus` add what the export does not know.
pub fn report(
    input: &Input,
    run: Option<&RunFile>,
    vus: Option<u64>,
    prices: &PriceFile,
) -> Report {
    let export = match input {
        Input::Averages(averages) => {
            return Report {
                run: None,
                latency: None,
                hops: Vec::new(),
                lambda: None,
                throttles: None,
                cost: None,
                per_second_averages: describe(averages),
                over_time: Vec::new(),
            }
        }
        Input::Export(export) => export,
    };
    export_report(export, run, vus, prices)
}

/// The report of a latency export; `run` and `vus` add what the export does not know. Every
/// number is the run model's ([`contract::run::Run`]).
pub fn export_report(
    export: &LatencyExport,
    run: Option<&RunFile>,
    vus: Option<u64>,
    prices: &PriceFile,
) -> Report {
    let model = Run::new(export, run, vus);
    let active = model.active_window();
    let run_row = RunRow {
        run_id: export.run.run_id.clone(),
        state: export.run.state,
        accepted: model.accepted(),
        processed: model.processed(),
        redelivered: model.redelivered(),
        over_counted: model.over_counted(),
        lost: model.lost(),
        lost_unknown: model.loss().why_unknown(),
        aborted: model.aborted().map(str::to_owned),
        loss: model.loss(),
        active_start_ms: active.map(|a| a.0),
        active_end_ms: active.map(|a| a.1),
        loops_per_s: model.loops_per_s(),
        vus: model.vus(),
        loops_per_s_per_vu: model.loops_per_s_per_vu(),
    };
    let l = &export.latency;
    let latency = l.mean_ms().map(|mean_ms| {
        let p = |q: f64| model.percentile(q).unwrap_or(f64::NAN);
        LatencyRow {
            count: l.count,
            mean_ms,
            min_ms: l.min_ms,
            p50_ms: p(50.0),
            p90_ms: p(90.0),
            p95_ms: p(95.0),
            p99_ms: p(99.0),
            max_ms: l.max_ms,
        }
    });
    let hops = export
        .hops
        .iter()
        .filter(|(_, s)| s.count > 0)
        .map(|(hop, s): (&String, &StatSummary)| {
            let p = |q: f64| model.hop_percentile(hop, q);
            HopRow {
                hop: hop.clone(),
                count: s.count,
                mean_ms: s.mean_ms().unwrap_or(f64::NAN),
                min_ms: s.min_ms,
                p50_ms: p(50.0),
                p90_ms: p(90.0),
                p95_ms: p(95.0),
                p99_ms: p(99.0),
                max_ms: s.max_ms,
            }
        })
        .collect();
    let averages: Vec<f64> = export.per_second.iter().map(|r| r.average_ms).collect();
    Report {
        run: Some(run_row),
        latency,
        hops,
        lambda: export.lambda.clone(),
        throttles: export.throttles.clone(),
        // Exports before version 4 have no Lambda metrics to price: no table, as for them.
        cost: export.lambda.as_ref().map(|_| {
            match contract::cost::estimate(&model, prices, export.run.metrics_requested) {
                Ok(estimate) => Cost::Estimated(estimate),
                Err(unavailable) => Cost::Unavailable { unavailable },
            }
        }),
        per_second_averages: describe(&averages),
        over_time: model.over_time(),
    }
}

fn ms(v: f64) -> String {
    format!("{v:.1}")
}

/// An epoch-ms time as RFC 3339 with milliseconds.
pub fn time(epoch_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(epoch_ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// How a wait ended, in words.
/// The state cell of a run: how the wait ended, and whether the run is the one asked for
/// (nothing measured, or a load cut short by a signal, is never just "complete").
pub fn run_state(run: &RunRow) -> String {
    let wait = if run.processed == 0 {
        "nothing measured"
    } else {
        state_text(run.state)
    };
    match &run.aborted {
        Some(_) => format!("{wait}; load aborted"),
        None => wait.to_owned(),
    }
}

/// The notes under the run table: why the loss is unknown, why the load ended early.
pub fn run_notes(run: &RunRow) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(why) = &run.aborted {
        notes.push(format!(
            "The load was aborted ({why}): the run is not the one its schedule asked for."
        ));
    }
    if let Some(why) = &run.lost_unknown {
        notes.push(format!("Lost is unknown: {why}."));
    }
    notes
}

pub fn state_text(state: WaitState) -> &'static str {
    match state {
        WaitState::Complete => "complete",
        WaitState::OverCounted => "over-counted",
        WaitState::DrainedShort => "drained short",
        WaitState::TimedOut => "timed out",
    }
}

/// Said instead of the AWS sample's table when there is no per-second datapoint.
pub const NO_DATAPOINTS: &str = "No per-second datapoints.";

/// The report's tables, in order.
pub fn tables(report: &Report) -> Vec<TableData> {
    let mut tables = Vec::new();
    tables.extend(report.run.as_ref().map(run_table));
    tables.extend(report.latency.as_ref().map(latency_table));
    if !report.hops.is_empty() {
        tables.push(hops_table(&report.hops));
    }
    tables.extend(report.lambda.as_ref().map(lambda_table));
    tables.extend(report.throttles.as_ref().map(throttle_table));
    tables.extend(report.cost.as_ref().map(cost_table));
    tables.extend(report.per_second_averages.as_ref().map(describe_table));
    tables
}

/// The run: its counts, window and throughput.
fn run_table(run: &RunRow) -> TableData {
    let window = match (run.active_start_ms, run.active_end_ms) {
        (Some(s), Some(e)) => format!("{} + {:.0} s", time(s), (e - s) as f64 / 1000.0),
        _ => "-".into(),
    };
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    TableData {
        title: "Run",
        header: vec![
            "run",
            "state",
            "accepted",
            "processed",
            "redelivered",
            "lost",
            "active window",
            "loops/s",
            "VUs",
            "loops/s per VU",
        ],
        rows: std::iter::once(vec![
            run.run_id.clone(),
            run_state(run),
            opt(run.accepted),
            run.processed.to_string(),
            run.redelivered.to_string(),
            run.loss.short(),
            window,
            run.loops_per_s.map_or("-".into(), |v| format!("{v:.2}")),
            opt(run.vus),
            run.loops_per_s_per_vu
                .map_or("-".into(), |v| format!("{v:.2}")),
        ])
        .chain(run_notes(run).into_iter().map(|note| vec![note]))
        .collect(),
        numeric: vec![2, 3, 4, 5, 7, 8, 9],
    }
}

/// End-to-end latency per request.
fn latency_table(l: &LatencyRow) -> TableData {
    TableData {
        title: "Latency per request (percentiles from buckets, within 2 %)",
        header: vec![
            "end-to-end latency (ms)",
            "count",
            "mean",
            "min",
            "p50",
            "p90",
            "p95",
            "p99",
            "max",
        ],
        rows: vec![vec![
            "per request".to_owned(),
            l.count.to_string(),
            ms(l.mean_ms),
            ms(l.min_ms),
            ms(l.p50_ms),
            ms(l.p90_ms),
            ms(l.p95_ms),
            ms(l.p99_ms),
            ms(l.max_ms),
        ]],
        numeric: (1..9).collect(),
    }
}

/// Each hop's latency.
fn hops_table(hops: &[HopRow]) -> TableData {
    TableData {
        title: "Where the time goes (percentiles from buckets, within 2 %)",
        header: vec![
            "hop (ms)", "count", "mean", "min", "p50", "p90", "p95", "p99", "max",
        ],
        rows: hops
            .iter()
            .map(|h| {
                let p = |v: Option<f64>| v.map_or("-".to_owned(), ms);
                vec![
                    h.hop.clone(),
                    h.count.to_string(),
                    ms(h.mean_ms),
                    ms(h.min_ms),
                    p(h.p50_ms),
                    p(h.p90_ms),
                    p(h.p95_ms),
                    p(h.p99_ms),
                    ms(h.max_ms),
                ]
            })
            .collect(),
        numeric: (1..9).collect(),
    }
}

/// The AWS sample's table: pandas' describe() of the per-second averages.
fn describe_table(d: &Describe) -> TableData {
    let std = d.std.map_or("NaN".to_owned(), |s| format!("{s:.6}"));
    TableData {
        title: "Per-second averages: describe(percentiles=[.9, .95, .99]), the AWS sample's table",
        header: vec!["", "latency (per-second averages, ms)"],
        rows: [
            ("count", format!("{:.6}", d.count as f64)),
            ("mean", format!("{:.6}", d.mean)),
            ("std", std),
            ("min", format!("{:.6}", d.min)),
            ("50%", format!("{:.6}", d.p50)),
            ("90%", format!("{:.6}", d.p90)),
            ("95%", format!("{:.6}", d.p95)),
            ("99%", format!("{:.6}", d.p99)),
            ("max", format!("{:.6}", d.max)),
        ]
        .into_iter()
        .map(|(name, value)| vec![name.to_owned(), value])
        .collect(),
        numeric: vec![1],
    }
}

/// Renders the report's tables as text.
pub fn render(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let tables = tables(report);
    for (i, data) in tables.iter().enumerate() {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .set_header(data.header.clone());
        for row in &data.rows {
            t.add_row(row.clone());
        }
        for &c in &data.numeric {
            if let Some(column) = t.column_mut(c) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        // The AWS sample's table comes last, without a blank line after it.
        let last_is_describe = report.per_second_averages.is_some() && i + 1 == tables.len();
        if last_is_describe {
            writeln!(out, "{}\n{t}", data.title)?;
        } else {
            writeln!(out, "{}\n{t}\n", data.title)?;
        }
    }
    if report.per_second_averages.is_none() {
        writeln!(out, "{NO_DATAPOINTS}")?;
    }
    Ok(())
}
