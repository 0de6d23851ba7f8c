//! A comparison as text (one table) and as an HTML page: the two percentile curves on one
//! chart, the two sides' loops per second side by side, and the table.

use comfy_table::{presets, CellAlignment, Table};
use contract::export::LatencyExport;
use plotters::chart::ChartContext;
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

use super::noise::Estimate;
use super::{Comparison, Row, Side};
use crate::report::style::{
    draw, draw_legend, frame, house_style, line_legend, nice_max, nines, nines_keys, Chart,
    DrawError, Drawn, LOAD, PIPELINE,
};
use crate::report::{escape, loops_per_second, percentile_curve, Page};

fn value(e: Option<Estimate>, unit: &str) -> String {
    e.map_or("-".to_owned(), |e| {
        let decimals = if unit.is_empty() { 0 } else { 1 };
        format!(
            "{:.decimals$} ± {:.decimals$}{unit}",
            e.value,
            e.uncertainty()
        )
    })
}

fn cells(row: &Row, paired: bool) -> Vec<String> {
    let mut cells = vec![
        row.metric.clone(),
        value(row.base, row.unit),
        value(row.candidate, row.unit),
        row.change_pct.map_or("-".into(), |c| format!("{c:+.1}%")),
        row.noise_pct.map_or("-".into(), |n| format!("±{n:.1}%")),
    ];
    if paired {
        cells.push(row.mde_pct.map_or("-".into(), |m| format!("{m:.1}%")));
    }
    cells.push(row.verdict.text());
    cells
}

fn header(paired: bool) -> Vec<&'static str> {
    let mut header = vec!["metric", "base", "candidate", "change", "noise"];
    if paired {
        header.push("detectable");
    }
    header.push("verdict");
    header
}

/// The comparison as a table, with what the noise includes.
pub fn render(comparison: &Comparison) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(header(comparison.pairs.is_some()));
    for row in &comparison.rows {
        table.add_row(cells(row, comparison.pairs.is_some()));
    }
    for c in 1..6 {
        if let Some(column) = table.column_mut(c) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!(
        "base: {}\ncandidate: {}\n{table}\n{}\n",
        comparison.base.join(", "),
        comparison.candidate.join(", "),
        noise_note(comparison)
    )
}

fn noise_note(comparison: &Comparison) -> String {
    if let Some(pairs) = comparison.pairs {
        let mut note = format!(
            "Paired: judged on {pairs} pairs' differences (candidate over base, run by run), \
             so the machine's drift between pairs cancels. Values ± their 95 % interval; noise: \
             the change's 95 % interval; detectable: the smallest change these pairs find 80 % \
             of the time."
        );
        for dropped in &comparison.dropped {
            note.push_str(&format!("\nDropped {dropped}."));
        }
        return note;
    }
    if comparison.run_to_run {
        "Values ± their 95 % interval (sampling, and the buckets' resolution for percentiles); noise: the difference's 95 % interval, within runs and \
         from run to run (several runs a side)."
    } else {
        "Values ± their 95 % interval (sampling, and the buckets' resolution for percentiles); noise: the difference's 95 % interval within the runs \
         only. Runs on a shared machine also differ from run to run: give several runs a side \
         (comma-separated) to count that noise too."
    }
    .to_owned()
}

/// The base's line (blue) and the candidate's (orange), labelled.
fn both_sides<X, Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    base: &[(f64, f64)],
    candidate: &[(f64, f64)],
) -> Drawn
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (points, colour, label) in [(base, PIPELINE, "base"), (candidate, LOAD, "candidate")] {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(label)
            .legend(line_legend(colour));
    }
    Ok(())
}

/// The two sides' percentile curves on one chart.
fn curves(base: &LatencyExport, candidate: &LatencyExport) -> Result<Chart, DrawError> {
    let b = percentile_curve(base, 200);
    let c = percentile_curve(candidate, 200);
    let x_max = b.iter().chain(&c).map(|p| p.0).fold(2.0, f64::max);
    let y_max = nice_max(b.iter().chain(&c).map(|p| p.1).fold(0.0, f64::max));
    let keys = nines_keys(x_max);
    let caption = "End-to-end latency per request by percentile (from the buckets, within 2 %): \
                   the base (blue) and the candidate (orange). The first of each side's runs."
        .to_owned();
    draw("percentiles", "Latency distributions", caption, |root| {
        let mut chart = frame(&root)
            .build_cartesian_2d((1f64..x_max).log_scale().with_key_points(keys), 0f64..y_max)?;
        house_style(&mut chart.configure_mesh())
            .x_desc("percentile of requests")
            .y_desc("end-to-end latency (ms)")
            .x_label_formatter(&|x| nines(*x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        both_sides(&mut chart, &b, &c)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .draw()?;
        Ok(())
    })
}

/// Both sides' loops per second, each from its own first loop.
fn throughput(base: &LatencyExport, candidate: &LatencyExport) -> Result<Chart, DrawError> {
    let series = |e: &LatencyExport| {
        let origin = e.per_second.first().map_or(0, |r| r.timestamp_ms);
        loops_per_second(&e.per_second, origin)
    };
    let (b, c) = (series(base), series(candidate));
    let x_max = b.iter().chain(&c).map(|p| p.0 + 1.0).fold(1.0, f64::max);
    let y_max = nice_max(b.iter().chain(&c).map(|p| p.1).fold(0.0, f64::max));
    let caption = "Loops completed per second, each side from its own first loop: the base \
                   (blue) and the candidate (orange)."
        .to_owned();
    draw("throughput", "Throughput side by side", caption, |root| {
        let mut chart = frame(&root).build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        house_style(&mut chart.configure_mesh())
            .x_desc("seconds since the first loop")
            .y_desc("loops per second")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        both_sides(&mut chart, &b, &c)?;
        draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)
    })
}

/// Each pair's end-to-end p50, base and candidate, in the order the pairs were made.
fn pairs(base: &Side, candidate: &Side) -> Result<Chart, DrawError> {
    let p50 = |side: &Side| -> Vec<(f64, f64)> {
        side.exports
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some(((i + 1) as f64, e.histogram.percentile(50.0)?)))
            .collect()
    };
    let (b, c) = (p50(base), p50(candidate));
    let x_max = (b.len().max(c.len()) as f64 + 0.5).max(1.5);
    let y_max = nice_max(b.iter().chain(&c).map(|p| p.1).fold(0.0, f64::max));
    let caption = "End-to-end p50 of each pair's base run (blue) and candidate run (orange), in \
                   the order they were made: the machine's drift moves both runs of a pair, the \
                   change moves one."
        .to_owned();
    draw("pairs", "The pairs", caption, |root| {
        let mut chart = frame(&root).build_cartesian_2d(0.5f64..x_max, 0f64..y_max)?;
        house_style(&mut chart.configure_mesh())
            .x_desc("pair")
            .y_desc("end-to-end p50 (ms)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        both_sides(&mut chart, &b, &c)?;
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// The page: both sides' distributions and throughput (from each side's first run), the pairs
/// when the runs were paired, and the table.
pub fn html_page(comparison: &Comparison, sides: (&Side, &Side)) -> Result<String, DrawError> {
    let (base_side, candidate_side) = sides;
    let (base, candidate) = (&base_side.exports[0], &candidate_side.exports[0]);
    let lead = format!(
        "<p>base: {}<br>candidate: {}</p>\n",
        escape(&comparison.base.join(", ")),
        escape(&comparison.candidate.join(", "))
    );
    let mut page = Page::new("Comparison", &lead);
    let mut charts = vec![curves(base, candidate)?, throughput(base, candidate)?];
    if comparison.pairs.is_some() {
        charts.push(pairs(base_side, candidate_side)?);
    }
    for chart in &charts {
        page.chart(chart);
    }
    let paired = comparison.pairs.is_some();
    let rows: Vec<Vec<String>> = comparison.rows.iter().map(|r| cells(r, paired)).collect();
    page.table(&header(paired), &rows, &[]);
    page.push(&format!("<p>{}</p>\n", escape(&noise_note(comparison))));
    Ok(page.finish())
}
