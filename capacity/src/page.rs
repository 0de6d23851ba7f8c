//! What a search says: the one-line verdict, a line per step, and the HTML page with the
//! offered-versus-completed chart, the p99 of each step against the SLO, and the steps' table.

use std::fmt::Write as _;

use collector::report::style::{
    draw, draw_legend, frame, house_style, line_legend, nice_max, Chart, DrawError, GREY, LOAD,
    PIPELINE,
};
use collector::report::{escape, Page};
use contract::capacity::{CapacityFile, CapacityStep};
use plotters::prelude::*;

/// `capacity: <N> loops/s sustained ...`: the last line a search prints.
pub fn verdict(file: &CapacityFile) -> String {
    let best = file
        .steps
        .iter()
        .filter(|s| s.sustained)
        .max_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
    let Some(best) = best else {
        return format!(
            "capacity: none sustained: the lowest rate tried, {:.1}/s, was not ({})",
            file.steps
                .iter()
                .map(|s| s.rate_per_s)
                .fold(f64::INFINITY, f64::min),
            file.ended
        );
    };
    let mut line = format!(
        "capacity: {:.1} loops/s sustained (offered {:.1}/s for {:.0} s: p99 {} within the SLO of \
         {:.0} ms, 0 lost)",
        best.accepted_per_s,
        best.rate_per_s,
        file.step_duration_s,
        best.p99_ms.map_or("-".to_owned(), |p| format!("{p:.0} ms")),
        file.slo_ms
    );
    if let Some(limit) = file.limit_rate_per_s {
        let _ = write!(line, "; not at {limit:.1}/s");
        if let Some(step) = file.steps.iter().find(|s| s.rate_per_s == limit) {
            let _ = write!(line, " ({})", step.reasons.join(", "));
        }
    } else {
        let _ = write!(line, "; {}", file.ended);
    }
    if let Some(hit) = &file.limiting_quota {
        let _ = write!(
            line,
            "; the quota that gave: {}, from {:.1}/s ({} {} on {}); {}; what would lift it: {}",
            hit.label, hit.rate_per_s, hit.refused, hit.metric, hit.resource, hit.quota, hit.lift
        );
    }
    if let Some(hop) = &file.saturating_hop {
        let first = hop.first_to_grow.as_deref().unwrap_or(&hop.grew_most);
        let _ = write!(
            line,
            "; first to saturate: {first} (p99 of {} {:.0} → {:.0} ms)",
            hop.grew_most, hop.p99_ms[0], hop.p99_ms[1]
        );
    }
    line
}

/// One step, as it is judged.
pub fn step_line(step: &CapacityStep) -> String {
    format!(
        "capacity: step {}: {:.1}/s offered, {:.1}/s accepted, {:.1}/s completed, p99 {}, drained \
         in {:.1} s: {}",
        step.run_id,
        step.rate_per_s,
        step.accepted_per_s,
        step.completed_per_s,
        step.p99_ms.map_or("-".to_owned(), |p| format!("{p:.0} ms")),
        step.drain_s,
        if step.sustained {
            "sustained".to_owned()
        } else {
            format!("not sustained: {}", step.reasons.join(", "))
        }
    )
}

fn by_rate(file: &CapacityFile) -> Vec<&CapacityStep> {
    let mut steps: Vec<&CapacityStep> = file.steps.iter().collect();
    steps.sort_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
    steps
}

/// Offered against completed (and accepted) loops per second, with the line where they are
/// equal.
fn offered_vs_completed(file: &CapacityFile) -> Result<Chart, DrawError> {
    let steps = by_rate(file);
    let top = nice_max(
        steps
            .iter()
            .map(|s| s.rate_per_s.max(s.completed_per_s))
            .fold(0.0, f64::max),
    );
    let caption = "Each step's offered arrival rate against the loops per second the pipeline \
                   completed while the load lasted (blue) and the requests the API accepted \
                   (orange). On the grey diagonal the pipeline keeps up; below it, it falls behind."
        .to_owned();
    draw(
        "offered-vs-completed",
        "Offered versus completed",
        caption,
        |root| {
            let mut chart = frame(&root).build_cartesian_2d(0f64..top, 0f64..top)?;
            house_style(&mut chart.configure_mesh())
                .x_desc("offered (requests per second)")
                .y_desc("per second")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()?;
            chart.draw_series(LineSeries::new(
                [(0.0, 0.0), (top, top)],
                GREY.stroke_width(1),
            ))?;
            chart
                .draw_series(LineSeries::new(
                    steps.iter().map(|s| (s.rate_per_s, s.accepted_per_s)),
                    LOAD.stroke_width(2),
                ))?
                .label("accepted/s")
                .legend(line_legend(LOAD));
            chart
                .draw_series(LineSeries::new(
                    steps.iter().map(|s| (s.rate_per_s, s.completed_per_s)),
                    PIPELINE.stroke_width(2),
                ))?
                .label("completed/s")
                .legend(line_legend(PIPELINE));
            chart.draw_series(steps.iter().map(|s| {
                let colour = if s.sustained { PIPELINE } else { LOAD };
                Circle::new((s.rate_per_s, s.completed_per_s), 4, colour.filled())
            }))?;
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
        },
    )
}

/// Each step's end-to-end p99 against the SLO.
fn p99_vs_slo(file: &CapacityFile) -> Result<Chart, DrawError> {
    let steps = by_rate(file);
    let x_max = nice_max(steps.iter().map(|s| s.rate_per_s).fold(0.0, f64::max));
    let y_max = nice_max(
        steps
            .iter()
            .filter_map(|s| s.p99_ms)
            .fold(file.slo_ms, f64::max),
    );
    let caption = format!(
        "Each step's end-to-end p99 (from buckets, within 2 %) against the SLO of {:.0} ms \
         (grey).",
        file.slo_ms
    );
    draw("p99", "p99 by offered rate", caption, |root| {
        let mut chart = frame(&root).build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        house_style(&mut chart.configure_mesh())
            .x_desc("offered (requests per second)")
            .y_desc("end-to-end p99 (ms)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, file.slo_ms), (x_max, file.slo_ms)],
            6,
            4,
            GREY.stroke_width(1),
        ))?;
        chart
            .draw_series(LineSeries::new(
                steps.iter().filter_map(|s| Some((s.rate_per_s, s.p99_ms?))),
                PIPELINE.stroke_width(2),
            ))?
            .label("p99")
            .legend(line_legend(PIPELINE));
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// The whole page.
pub fn html(file: &CapacityFile) -> Result<String, DrawError> {
    let lead = format!("<p>{}</p>\n", escape(&verdict(file)));
    let mut page = Page::new(&format!("Capacity {}", file.run_prefix), &lead);
    for chart in [offered_vs_completed(file)?, p99_vs_slo(file)?] {
        page.chart(&chart);
    }
    page.push("<h2>Steps</h2>\n");
    let header = [
        "run",
        "offered/s",
        "accepted/s",
        "completed/s",
        "failed",
        "dropped",
        "lost",
        "p99 (ms)",
        "drain (s)",
        "verdict",
    ];
    let rows: Vec<Vec<String>> = file
        .steps
        .iter()
        .map(|s| {
            vec![
                s.run_id.clone(),
                format!("{:.1}", s.rate_per_s),
                format!("{:.1}", s.accepted_per_s),
                format!("{:.1}", s.completed_per_s),
                s.failed.to_string(),
                s.dropped.to_string(),
                s.lost.map_or("unknown".to_owned(), |l| l.to_string()),
                s.p99_ms.map_or("-".to_owned(), |p| format!("{p:.0}")),
                format!("{:.1}", s.drain_s),
                if s.sustained {
                    "sustained".to_owned()
                } else {
                    s.reasons.join(", ")
                },
            ]
        })
        .collect();
    page.table(&header, &rows, &[1, 2, 3, 4, 5, 6, 7, 8]);
    Ok(page.finish())
}
