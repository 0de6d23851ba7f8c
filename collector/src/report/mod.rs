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
//! [`charts`], [`backlog`] and [`iterator_age`] draw them from [`series`]' data in [`style`]'s house style; this
//! module lays out the page.

mod backlog;
mod charts;
mod iterator_age;
mod series;
pub mod style;

use std::fmt::Write as _;

use contract::export::WaitState;
use contract::runfile::RunFile;

use crate::stats::{self, Input};
pub use charts::charts;
pub use series::{hop_bars, loops_per_second, percentile_curve};
pub use style::{Chart, DrawError, HEIGHT, WIDTH};

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

/// The page's CSS (also the capacity report's).
pub const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1000px;padding:24px;color:#222;background:#fafafa}\
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:0 0 .25rem}\
.summary{display:flex;flex-wrap:wrap;gap:10px;margin:1rem 0 1.5rem;padding:0;list-style:none}\
.summary li{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px}\
.summary b{display:block;font-size:1.25rem}.summary span{color:#666;font-size:.85rem}\
.state-complete b{color:#2a7d2a}.state-short b{color:#b3261e}\
figure{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 18px;padding:14px}\
figcaption p{color:#555;margin:.25rem 0 .5rem;font-size:.9rem}\
svg{display:block;max-width:100%;height:auto}\
table{border-collapse:collapse;margin:.4rem 0 1.2rem;background:#fff;font-size:.9rem}\
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
th{background:#f0f0f0}footer{color:#777;font-size:.8rem;margin-top:1.5rem}code{font-size:.95em}";

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
    let mut page = String::new();
    let title = match &report.run {
        Some(r) => format!("Pipeline run {}", r.run_id),
        None => "Pipeline run (per-second averages, the AWS sample's export)".to_owned(),
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    if let Some(r) = &report.run {
        let window = match (r.active_start_ms, r.active_end_ms) {
            (Some(s), Some(e)) => format!("{} to {}", stats::time(s), stats::time(e)),
            _ => "no datapoint".into(),
        };
        let _ = writeln!(
            page,
            "<p>Requests completing the loop from {}.</p>",
            escape(&window)
        );
        let state_class = if r.state == WaitState::Complete && r.lost.unwrap_or(0) == 0 {
            "state-complete"
        } else {
            "state-short"
        };
        let mut cards: Vec<(String, String, &str)> = vec![(
            stats::state_text(r.state).to_owned(),
            "wait ended".into(),
            state_class,
        )];
        if let Some(a) = r.accepted {
            cards.push((grouped(a), "accepted".into(), ""));
        }
        cards.push((grouped(r.processed), "processed".into(), ""));
        if r.redelivered > 0 {
            cards.push((grouped(r.redelivered), "redelivered".into(), ""));
        }
        match (r.lost, r.over_counted) {
            (_, Some(twice)) => cards.push((
                "unknown".into(),
                format!("lost ({} measured twice)", grouped(twice)),
                state_class,
            )),
            (Some(lost), None) => cards.push((grouped(lost), "lost".into(), state_class)),
            (None, None) => {}
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
        page.push_str("<ul class=\"summary\">\n");
        for (value, what, class) in cards {
            let _ = writeln!(
                page,
                "<li class=\"{class}\"><b>{}</b><span>{}</span></li>",
                escape(&value),
                escape(&what)
            );
        }
        page.push_str("</ul>\n");
    }
    page.push_str("</header>\n<main>\n");
    for chart in &charts {
        page.push_str(&chart.figure_html());
    }
    page.push_str("<section id=\"tables\">\n<h2>Tables</h2>\n");
    for table in stats::tables(&report) {
        let _ = write!(page, "<h3>{}</h3>\n<table>\n<tr>", escape(table.title));
        for h in &table.header {
            let _ = write!(page, "<th>{}</th>", escape(h));
        }
        page.push_str("</tr>\n");
        for row in &table.rows {
            page.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let class = if table.numeric.contains(&i) {
                    " class=\"n\""
                } else {
                    ""
                };
                let _ = write!(page, "<td{class}>{}</td>", escape(cell));
            }
            page.push_str("</tr>\n");
        }
        page.push_str("</table>\n");
    }
    if report.per_second_averages.is_none() {
        let _ = writeln!(page, "<p>{}</p>", stats::NO_DATAPOINTS);
    }
    page.push_str("</section>\n</main>\n");
    let run_source = sources
        .run
        .as_ref()
        .map_or(String::new(), |r| format!(" and {}", escape(r)));
    let _ = write!(
        page,
        "<footer>Made by <code>collector report</code> {} from {}{run_source}.</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&sources.export)
    );
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(grouped(7902), "7,902");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(12), "12");
    }
}
