//! The backlog chart: requests accepted but not yet through the pipeline, second by second. A
//! pipeline that keeps up holds it level (about its rate times its latency); one that falls
//! behind lets it grow for as long as the load lasts.

use plotters::prelude::*;

use super::style::{draw, draw_legend, frame, house_style, line_legend, mark_load_end, nice_max};
use super::style::{Chart, DrawError, FAILED};
use crate::stats::SecondPoint;

/// The chart, when the points know the backlog (a run file was given); `origin_ms` is time 0
/// and `load_end` where the load ended, in seconds from it.
pub fn chart(
    points: &[SecondPoint],
    origin_ms: i64,
    load_end: Option<f64>,
) -> Result<Option<Chart>, DrawError> {
    let series: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| {
            let t = (p.t_ms - origin_ms) as f64 / 1000.0;
            // The backlog at the end of the second.
            p.backlog.map(|b| (t + 1.0, b as f64))
        })
        .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let peak = series.iter().map(|p| p.1).fold(0.0, f64::max);
    let x_max = series
        .iter()
        .map(|p| p.0)
        .chain(load_end)
        .fold(1.0, f64::max);
    let y_min = series.iter().map(|p| p.1).fold(0.0, f64::min);
    let y_max = nice_max(peak);
    let caption = format!(
        "Requests the API accepted that had not yet completed the loop, at the end of each \
         second (accepted so far minus completed so far; at most {peak:.0}). Level while the \
         load lasts: the pipeline kept up. Rising: it fell behind."
    );
    draw("backlog", "Backlog over time", caption, |root| {
        let mut chart = frame(&root).build_cartesian_2d(0f64..x_max, y_min..y_max)?;
        house_style(&mut chart.configure_mesh())
            .x_desc("time since the load started (s)")
            .y_desc("accepted, not yet completed")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        if let Some(end) = load_end {
            mark_load_end(&mut chart, end, y_max)?;
        }
        chart
            .draw_series(LineSeries::new(
                series.iter().copied(),
                FAILED.stroke_width(2),
            ))?
            .label("backlog")
            .legend(line_legend(FAILED));
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
    .map(Some)
}
