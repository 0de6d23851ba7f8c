//! The end-of-test summary as k6 1.x prints it, from the k6 model ([`super::k6`]), in its three
//! modes: compact (the default: thresholds, checks, the metrics in groups, the timing trends in
//! brief), full (every timing trend) and legacy (k6 0.x's one line per metric). After k6's
//! lines, what a pipeline benchmark adds: failures by kind, accepted against sent, the schedule,
//! the run, the workers' shares, why the run was cut short.

use std::io::{self, Write};

use super::k6::{Kind, Metric};
use super::Summary;
use crate::summary_options::SummaryMode;

/// The status check's name.
pub(crate) const STATUS_CHECK: &str = "status is 200";

/// The duration check's name for a limit of `max`.
pub(crate) fn duration_check(max: std::time::Duration) -> String {
    format!("duration < {}", humantime::format_duration(max))
}

/// Where k6 1.x ends the dots of a metric's name, and of the checks' totals.
const METRIC_WIDTH: usize = 72;
const CHECKS_WIDTH: usize = 35;
/// The legacy mode's name width.
const LEGACY_WIDTH: usize = 31;

/// The timing trends compact mode leaves out (full mode shows them).
const DETAIL_TRENDS: [&str; 6] = [
    "http_req_blocked",
    "http_req_connecting",
    "http_req_receiving",
    "http_req_sending",
    "http_req_tls_handshaking",
    "http_req_waiting",
];

impl Summary {
    /// Renders the summary in `mode`.
    pub fn render(&self, mode: SummaryMode, out: &mut impl Write) -> io::Result<()> {
        let metrics = self.k6_metrics();
        match mode {
            SummaryMode::Legacy => self.render_legacy(&metrics, out)?,
            mode => self.render_grouped(&metrics, mode == SummaryMode::Full, out)?,
        }
        self.render_additions(mode, out)
    }

    /// k6 1.x's compact and full modes.
    fn render_grouped(
        &self,
        metrics: &[Metric],
        full: bool,
        out: &mut impl Write,
    ) -> io::Result<()> {
        self.render_thresholds(metrics, out)?;
        self.render_checks(out)?;
        render_groups(metrics, full, out)
    }

    /// The thresholds by metric, each with the value it was judged on.
    fn render_thresholds(&self, metrics: &[Metric], out: &mut impl Write) -> io::Result<()> {
        let judged: Vec<&Metric> = metrics
            .iter()
            .filter(|m| !m.thresholds.is_empty())
            .collect();
        if !judged.is_empty() {
            writeln!(out, "  █ THRESHOLDS \n")?;
            for metric in judged {
                writeln!(out, "    {}", metric.name)?;
                for j in &metric.thresholds {
                    let mark = if j.passed { '✓' } else { '✗' };
                    let expression = j.threshold.expression();
                    let (stat, _) = expression
                        .split_once(['<', '>', '=', '!'])
                        .unwrap_or((expression, ""));
                    let stat = stat.trim();
                    let was = j.value.map_or("no data".to_owned(), |v| {
                        format!("{stat}={}", value(metric, stat, v))
                    });
                    writeln!(out, "    {mark} '{expression}' {was}")?;
                }
                writeln!(out)?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    /// The checks' totals, then each check.
    fn render_checks(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "  █ TOTAL RESULTS \n")?;
        let (passes, fails) = self.checks();
        let total = passes + fails;
        let pct = |n: u64| {
            if total == 0 {
                0.0
            } else {
                n as f64 * 100.0 / total as f64
            }
        };
        let rows = vec![
            row(
                "checks_total",
                vec![
                    total.to_string(),
                    format!("{:.6}/s", self.per_second(total)),
                ],
            ),
            row(
                "checks_succeeded",
                vec![
                    format!("{:.2}%", pct(passes)),
                    format!("{passes} out of {total}"),
                ],
            ),
            row(
                "checks_failed",
                vec![
                    format!("{:.2}%", pct(fails)),
                    format!("{fails} out of {total}"),
                ],
            ),
        ];
        section(out, None, &rows, CHECKS_WIDTH)?;
        writeln!(out)?;
        for (name, passes, fails) in self.check_counts() {
            check_line(out, "    ", &name, (passes, fails))?;
        }
        writeln!(out)?;
        Ok(())
    }

    /// k6 1.x's legacy mode: k6 0.x's one line per metric.
    fn render_legacy(&self, metrics: &[Metric], out: &mut impl Write) -> io::Result<()> {
        writeln!(out)?;
        for (name, passes, fails) in self.check_counts() {
            check_line(out, "     ", &name, (passes, fails))?;
        }
        writeln!(out)?;
        let rows: Vec<Row> = metrics.iter().map(grouped_row).collect();
        let aligned = Aligned::of(&rows);
        for (metric, row) in metrics.iter().zip(&rows) {
            let mark = match metric.thresholds.iter().all(|j| j.passed) {
                _ if metric.thresholds.is_empty() => "  ",
                true => "✓ ",
                false => "✗ ",
            };
            let name = match metric.name.split_once('{') {
                Some((_, tag)) => format!("  {{ {} }}", tag.trim_end_matches('}')),
                None => metric.name.clone(),
            };
            writeln!(
                out,
                "   {mark}{}",
                line(&name, &row.columns, aligned.widths(row), LEGACY_WIDTH)
            )?;
        }
        writeln!(out)
    }

    /// What loadgen says beyond k6's metrics: failures by kind, the accepted count, the
    /// schedule, the run, its segments, the live output, and why it was cut short.
    fn additions(&self) -> Vec<Row> {
        let s = &self.stats;
        let mut rows = Vec::new();
        let failures = if s.failures.is_empty() {
            "none".to_owned()
        } else {
            s.failures
                .iter()
                .map(|(k, n)| format!("{}={n}", k.label()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        rows.push(row("failures", vec![failures]));
        rows.push(row(
            "accepted (2xx)",
            vec![if s.unsent == 0 {
                format!("{} of {} sent", s.accepted, s.requests)
            } else {
                format!(
                    "{} of {} sent ({} attempted, {} never sent: no connection)",
                    s.accepted,
                    s.sent(),
                    s.requests,
                    s.unsent
                )
            }],
        ));
        if s.interrupted > 0 {
            rows.push(row(
                "interrupted_iterations",
                vec![format!(
                    "{} (abandoned in flight: accepted or not, unknown)",
                    s.interrupted
                )],
            ));
        }
        if let Some(scheduled) = self.scheduled {
            let started = scheduled.saturating_sub(self.dropped.unwrap_or(0));
            let pct = if scheduled == 0 {
                100.0
            } else {
                started as f64 * 100.0 / scheduled as f64
            };
            rows.push(row(
                "schedule",
                vec![format!(
                    "{started} of {scheduled} scheduled starts on time ({pct:.1}%)"
                )],
            ));
        }
        rows.push(row(
            "run",
            vec![format!(
                "{} {} {}",
                self.run_id, self.executor, self.endpoint
            )],
        ));
        if let Some(first) = self.segments.first() {
            let of = first.count();
            let names: Vec<String> = self.segments.iter().map(ToString::to_string).collect();
            let whole = if self.segments.len() as u64 == of {
                format!("all {of} workers")
            } else {
                format!("{} of {of} workers: not the whole run", self.segments.len())
            };
            rows.push(row(
                "segments",
                vec![format!("{} ({whole})", names.join(" "))],
            ));
        }
        if let Some(pushed) = &self.pushed {
            rows.push(row(
                "output",
                vec![format!(
                    "experimental-prometheus-rw: {} pushes, {} failed",
                    pushed.ok + pushed.failed,
                    pushed.failed
                )],
            ));
        }
        if let Some(why) = &self.aborted {
            rows.push(row(
                "aborted",
                vec![format!("{why}: the counts are the run's up to then")],
            ));
        }
        rows
    }

    /// What a pipeline benchmark adds to k6's summary.
    fn render_additions(&self, mode: SummaryMode, out: &mut impl Write) -> io::Result<()> {
        let rows = self.additions();
        match mode {
            SummaryMode::Legacy => {
                let aligned = Aligned::of(&rows);
                for r in &rows {
                    writeln!(
                        out,
                        "     {}",
                        line(&r.name, &r.columns, aligned.widths(r), LEGACY_WIDTH)
                    )?;
                }
            }
            _ => section(out, Some("PIPELINE"), &rows, METRIC_WIDTH)?,
        }
        writeln!(out)
    }
}

/// The metrics in k6's groups: HTTP, execution, network (the timing details only in full mode).
fn render_groups(metrics: &[Metric], full: bool, out: &mut impl Write) -> io::Result<()> {
    let group = |names: &[&str]| -> Vec<Row> {
        metrics
            .iter()
            .filter(|m| {
                names
                    .iter()
                    .any(|n| m.name == *n || m.name.starts_with(&format!("{n}{{")))
            })
            .filter(|m| full || !DETAIL_TRENDS.contains(&m.name.as_str()))
            .map(grouped_row)
            .collect()
    };
    let http = group(&[
        "http_req_blocked",
        "http_req_connecting",
        "http_req_duration",
        "http_req_failed",
        "http_req_receiving",
        "http_req_sending",
        "http_req_tls_handshaking",
        "http_req_waiting",
        "http_reqs",
    ]);
    let execution = group(&[
        "dropped_iterations",
        "iteration_duration",
        "iterations",
        "vus",
        "vus_max",
    ]);
    let network = group(&["data_received", "data_sent"]);
    section(out, Some("HTTP"), &http, METRIC_WIDTH)?;
    writeln!(out)?;
    section(out, Some("EXECUTION"), &execution, METRIC_WIDTH)?;
    writeln!(out)?;
    section(out, Some("NETWORK"), &network, METRIC_WIDTH)?;
    writeln!(out)
}

/// One line of a section: a name and its value columns.
struct Row {
    name: String,
    columns: Vec<String>,
    /// Trends align among themselves, apart from the other rows.
    trend: bool,
}

fn row(name: &str, columns: Vec<String>) -> Row {
    Row {
        name: name.to_owned(),
        columns,
        trend: false,
    }
}

/// A metric's line in k6 1.x: trends as `stat=value` columns, counters as count and rate, rates
/// as percent and `N out of M`, gauges as value, min and max.
fn grouped_row(metric: &Metric) -> Row {
    let columns = match metric.kind {
        Kind::Trend => metric
            .values
            .iter()
            .map(|(stat, v)| format!("{stat}={}", value(metric, stat, *v)))
            .collect(),
        Kind::Counter => {
            let count = metric.value("count").unwrap_or(0.0);
            let rate = metric.value("rate").unwrap_or(0.0);
            if metric.name.starts_with("data_") {
                vec![bytes(count), format!("{}/s", bytes(rate))]
            } else {
                vec![format!("{count}"), format!("{rate:.6}/s")]
            }
        }
        Kind::Rate => {
            let passes = metric.value("passes").unwrap_or(0.0) as u64;
            let fails = metric.value("fails").unwrap_or(0.0) as u64;
            let rate = metric.value("rate").unwrap_or(0.0);
            vec![
                format!("{:.2}%", rate * 100.0),
                format!("{passes} out of {}", passes + fails),
            ]
        }
        Kind::Gauge => vec![
            format!("{}", metric.value("value").unwrap_or(0.0)),
            format!("min={}", metric.value("min").unwrap_or(0.0)),
            format!("max={}", metric.value("max").unwrap_or(0.0)),
        ],
    };
    let name = match metric.name.split_once('{') {
        Some((_, tag)) => format!("  {{ {} }}", tag.trim_end_matches('}')),
        None => metric.name.clone(),
    };
    Row {
        name,
        columns,
        trend: metric.kind == Kind::Trend,
    }
}

/// A value of `metric` (a time in ms, a rate, a count) as k6 prints it.
fn value(metric: &Metric, stat: &str, v: f64) -> String {
    match (metric.kind, stat) {
        (_, "count") => format!("{v}"),
        (Kind::Trend, _) => duration(v),
        (Kind::Rate, _) => format!("{:.2}%", v * 100.0),
        _ => trim(v, 6),
    }
}

/// Column widths as k6 aligns them: the trends' among the trends, the other rows' among
/// themselves.
struct Aligned {
    trends: Vec<usize>,
    others: Vec<usize>,
}

impl Aligned {
    fn of(rows: &[Row]) -> Aligned {
        let group = |trend: bool| -> Vec<usize> {
            let mut widths = Vec::new();
            for r in rows.iter().filter(|r| r.trend == trend) {
                for (i, c) in r.columns.iter().enumerate() {
                    let w = c.chars().count();
                    match widths.get_mut(i) {
                        Some(max) => *max = w.max(*max),
                        None => widths.push(w),
                    }
                }
            }
            widths
        };
        Aligned {
            trends: group(true),
            others: group(false),
        }
    }

    fn widths(&self, row: &Row) -> &[usize] {
        if row.trend {
            &self.trends
        } else {
            &self.others
        }
    }
}

/// `name....: col  col ...`, the dots to `width`, each column but the last padded to its width.
fn line(name: &str, columns: &[String], widths: &[usize], width: usize) -> String {
    let last = columns.len().saturating_sub(1);
    let cells: Vec<String> = columns
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(i, (c, w))| match i == last {
            true => c.clone(),
            false => format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))),
        })
        .collect();
    let dots = width.saturating_sub(name.chars().count());
    format!("{name}{}: {}", ".".repeat(dots), cells.join(" "))
}

/// A titled group of rows, columns aligned within it.
fn section(
    out: &mut impl Write,
    title: Option<&str>,
    rows: &[Row],
    width: usize,
) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    if let Some(title) = title {
        writeln!(out, "    {title}")?;
    }
    let aligned = Aligned::of(rows);
    for r in rows {
        writeln!(
            out,
            "    {}",
            line(&r.name, &r.columns, aligned.widths(r), width)
        )?;
    }
    Ok(())
}

fn check_line(
    out: &mut impl Write,
    indent: &str,
    name: &str,
    (passed, failed): (u64, u64),
) -> io::Result<()> {
    if failed == 0 {
        writeln!(out, "{indent}✓ {name}")
    } else {
        let pct = passed * 100 / (passed + failed);
        writeln!(out, "{indent}✗ {name}")?;
        writeln!(out, "{indent} ↳  {pct}% — ✓ {passed} / ✗ {failed}")
    }
}

/// A number with at most `decimals` decimals, trailing zeros dropped (k6's style).
fn trim(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A duration in ms as k6 prints it: `0s`, `850ns`, `512.43µs`, `9.31ms`, `1.2s`, `1m30s`.
pub fn duration(ms: f64) -> String {
    if ms <= 0.0 {
        "0s".to_owned()
    } else if ms < 0.001 {
        format!("{}ns", trim(ms * 1e6, 2))
    } else if ms < 1.0 {
        format!("{}µs", trim(ms * 1000.0, 2))
    } else if ms < 1000.0 {
        format!("{}ms", trim(ms, 2))
    } else if ms < 60_000.0 {
        format!("{}s", trim(ms / 1000.0, 2))
    } else {
        let minutes = (ms / 60_000.0).floor();
        format!(
            "{}m{}s",
            minutes,
            trim((ms - minutes * 60_000.0) / 1000.0, 2)
        )
    }
}

/// Bytes with SI units, as k6 prints them: `512 B`, `25 kB`, `1.2 MB`.
pub fn bytes(n: f64) -> String {
    let (value, unit) = if n < 1e3 {
        (n, "B")
    } else if n < 1e6 {
        (n / 1e3, "kB")
    } else if n < 1e9 {
        (n / 1e6, "MB")
    } else {
        (n / 1e9, "GB")
    };
    format!("{} {unit}", trim(value, if value < 10.0 { 1 } else { 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_k6() {
        assert_eq!(duration(0.51243), "512.43µs");
        assert_eq!(duration(0.00085), "850ns");
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(9.31), "9.31ms");
        assert_eq!(duration(8.4), "8.4ms");
        assert_eq!(duration(1200.0), "1.2s");
        assert_eq!(duration(90_000.0), "1m30s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(25_400.0), "25 kB");
        assert_eq!(bytes(7_601.0), "7.6 kB");
        assert_eq!(bytes(1_234_567.0), "1.2 MB");
        assert_eq!(trim(20.0, 2), "20");
    }
}
