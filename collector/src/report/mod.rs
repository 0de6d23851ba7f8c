//! `collector report`: the run as one self-contained HTML page, its charts drawn as SVG by
//! plotters and inlined (nothing is fetched when the page is opened), followed by the tables
//! `collector stats` prints.
//!
//! The charts:
//! - throughput: loops completed per second next to the load generator's responses per second
//!   (with a run file), and where the load ended: a backlog draining after it is plain to see;
//! - the backlog (with a run file): accepted so far minus completed so far, second by second;
//! - beside it, Lambda's `IteratorAge` of each function behind a stream (exports from version 4
//!   on);
//! - end-to-end latency per second: the average, inside the band from minimum to maximum, and
//!   the second's p99 (exports from version 3 on);
//! - the per-request latency distribution: the percentile curve from the bucket histogram, on a
//!   "nines" axis (50 %, 90 %, 99 %, 99.9 %, ...);
//! - where the time goes: each hop's mean latency next to the end-to-end mean.
//!
//! Each chart is a `<figure class="chart" id="...">` holding one `<svg>`; series are polylines.
//!
//! [`charts`], [`backlog`] and [`iterator_age`] draw them from [`series`]' data in [`style`]'s
//! house style; this module lays out the report in [`page`], the shell every page of the toolkit
//! (the comparison's, the capacity search's) is built in.

mod backlog;
mod charts;
mod iterator_age;
pub mod page;
mod series;
pub mod style;

use std::fmt::Write as _;

use contract::export::WaitState;
use contract::runfile::RunFile;

use crate::stats::{self, Input};
pub use charts::charts;
pub use page::{escape, Page};
pub use series::{hop_bars, loops_per_second, percentile_curve};
pub use style::{Chart, DrawError, HEIGHT, WIDTH};

/// Groups thousands: 7902 → "7,902".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the page says about where its data came from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The export's (or bare array's) path.
    pub export: String,
    /// The run file's path, when given.
    pub run: Option<String>,
}

/// The whole page.
pub fn html(
    input: &Input,
    run: Option<&RunFile>,
    vus: Option<u64>,
    sources: &Sources,
    prices: &contract::cost::PriceFile,
) -> Result<String, DrawError> {
    let report = stats::report(input, run, vus, prices);
    let charts = charts(input, run, &report)?;
    let title = match &report.run {
        Some(r) => format!("Pipeline run {}", r.run_id),
        None => "Pipeline run (per-second averages, the AWS sample's export)".to_owned(),
    };
    let mut page = Page::new(&title, &lead(&report));
    page.push("<main>\n");
    for chart in &charts {
        page.chart(chart);
    }
    page.push("<section id=\"tables\">\n<h2>Tables</h2>\n");
    for table in stats::tables(&report) {
        page.push(&format!("<h3>{}</h3>\n", escape(table.title)));
        page.table(&table.header, &table.rows, &table.numeric);
    }
    if report.per_second_averages.is_none() {
        page.push(&format!("<p>{}</p>\n", stats::NO_DATAPOINTS));
    }
    page.push("</section>\n</main>\n");
    let run_source = sources
        .run
        .as_ref()
        .map_or(String::new(), |r| format!(" and {}", escape(r)));
    page.push(&format!(
        "<footer>Made by <code>collector report</code> {} from {}{run_source}.</footer>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&sources.export)
    ));
    Ok(page.finish())
}

/// Under the title: the window, and the run's numbers as cards (how the wait ended, the counts,
/// loops/s, cold starts, p50 and p99). Nothing without a run (a bare array of averages).
fn lead(report: &stats::Report) -> String {
    let Some(r) = &report.run else {
        return String::new();
    };
    let window = match (r.active_start_ms, r.active_end_ms) {
        (Some(s), Some(e)) => format!("{} to {}", stats::time(s), stats::time(e)),
        _ => "no datapoint".into(),
    };
    let mut lead = format!(
        "<p>Requests completing the loop from {}.</p>\n",
        escape(&window)
    );
    lead.push_str("<ul class=\"summary\">\n");
    for (value, what, class) in cards(report, r) {
        let _ = writeln!(
            lead,
            "<li class=\"{class}\"><b>{}</b><span>{}</span></li>",
            escape(&value),
            escape(&what)
        );
    }
    lead.push_str("</ul>\n");
    lead
}

/// The cards: (value, what it is, CSS class).
fn cards(report: &stats::Report, r: &stats::RunRow) -> Vec<(String, String, &'static str)> {
    let whole = r.aborted.is_none() && r.processed > 0 && r.lost_unknown.is_none();
    let state_class = if whole && r.state == WaitState::Complete && r.lost.unwrap_or(0) == 0 {
        "state-complete"
    } else {
        "state-short"
    };
    let mut cards: Vec<(String, String, &str)> =
        vec![(stats::run_state(r), "wait ended".into(), state_class)];
    if let Some(a) = r.accepted {
        cards.push((grouped(a), "accepted".into(), ""));
    }
    cards.push((grouped(r.processed), "processed".into(), ""));
    if r.redelivered > 0 {
        cards.push((grouped(r.redelivered), "redelivered".into(), ""));
    }
    match r.lost {
        Some(lost) => cards.push((grouped(lost), "lost".into(), state_class)),
        None if r.accepted.is_some() => cards.push((r.loss.short(), "lost".into(), state_class)),
        None => {}
    }
    if let Some(l) = r.loops_per_s {
        cards.push((format!("{l:.1}"), "loops/s".into(), ""));
    }
    if let Some(v) = r.vus {
        cards.push((v.to_string(), "VUs".into(), ""));
    }
    let cold: Option<u64> = report
        .lambda
        .iter()
        .flat_map(|v| &v.functions)
        .filter_map(|f| f.cold_starts)
        .reduce(|a, b| a + b);
    if let Some(cold) = cold {
        cards.push((grouped(cold), "cold starts".into(), ""));
    }
    if let Some(l) = &report.latency {
        cards.push((format!("{:.0} ms", l.p50_ms), "p50 end to end".into(), ""));
        cards.push((format!("{:.0} ms", l.p99_ms), "p99 end to end".into(), ""));
    }
    cards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(7902), "7,902");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(12), "12");
    }
}
