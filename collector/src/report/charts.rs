//! The report's charts, drawn as SVG by plotters: throughput, latency over time, the latency
//! distribution and the hops ([`super::style`] gives them the house style).

use contract::export::{LatencyExport, StatSummary};
use contract::metrics::LATENCY;
use contract::runfile::RunFile;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::series::{
    hop_bars, load_end_ms, loops_per_second, origin_ms, percentile_curve, seconds,
};
use super::style::{
    axis_font, draw, draw_legend, frame, house_style, line_legend, mark_load_end, nice_max, nines,
    nines_keys, Chart, DrawError, FAILED, LOAD, PIPELINE,
};
use crate::stats::{self, Input, Report};

fn throughput(
    export: &LatencyExport,
    run: Option<&RunFile>,
    origin: i64,
) -> Result<Chart, DrawError> {
    let loops = loops_per_second(&export.per_second, origin);
    let timeline = run.map(|r| r.timeline.as_slice()).unwrap_or_default();
    let responses: Vec<(f64, f64)> = timeline
        .iter()
        .map(|s| (seconds(s.t_ms, origin), s.requests as f64))
        .collect();
    let failed: Vec<(f64, f64)> = timeline
        .iter()
        .map(|s| (seconds(s.t_ms, origin), s.failures as f64))
        .collect();
    let any_failed = timeline.iter().any(|s| s.failures > 0);
    let load_end = load_end_ms(export, run).map(|ms| seconds(ms, origin));
    let x_max = loops
        .iter()
        .chain(&responses)
        .map(|p| p.0 + 1.0)
        .chain(load_end)
        .fold(1.0, f64::max);
    let y_max = nice_max(
        loops
            .iter()
            .chain(&responses)
            .map(|p| p.1)
            .fold(0.0, f64::max),
    );
    let drained = match (load_end, loops.last()) {
        (Some(end), Some(last)) if last.0 + 1.0 - end >= 1.5 => format!(
            " The pipeline fell behind: it finished {:.0} s after the load ended.",
            last.0 + 1.0 - end
        ),
        (Some(_), Some(_)) => {
            " The pipeline kept up: its last loop completed within a second of the load's end."
                .to_owned()
        }
        _ => String::new(),
    };
    let caption = if responses.is_empty() {
        format!("Requests that completed the whole loop, per second.{drained}")
    } else {
        format!(
            "Requests that completed the whole loop per second (blue), next to the load generator's \
             responses per second (orange){}.{drained}",
            if any_failed { " and its failed requests (red)" } else { "" }
        )
    };
    draw("throughput", "Throughput", caption, |root| {
        let mut chart = frame(&root).build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        house_style(&mut chart.configure_mesh())
            .x_desc("time since the load started (s)")
            .y_desc("requests per second")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        if let Some(end) = load_end {
            mark_load_end(&mut chart, end, y_max)?;
            chart.draw_series(std::iter::once(Text::new(
                "load ends ",
                (end, y_max * 0.97),
                axis_font().pos(Pos::new(HPos::Right, VPos::Top)),
            )))?;
        }
        if !responses.is_empty() {
            chart
                .draw_series(LineSeries::new(
                    responses.iter().copied(),
                    LOAD.stroke_width(2),
                ))?
                .label("load generator: responses/s")
                .legend(line_legend(LOAD));
        }
        if any_failed {
            chart
                .draw_series(LineSeries::new(
                    failed.iter().copied(),
                    FAILED.stroke_width(2),
                ))?
                .label("load generator: failed/s")
                .legend(line_legend(FAILED));
        }
        chart
            .draw_series(LineSeries::new(
                loops.iter().copied(),
                PIPELINE.stroke_width(2),
            ))?
            .label("pipeline: loops completed/s")
            .legend(line_legend(PIPELINE));
        draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)
    })
}

/// Per-second latency: the average, the band from minimum to maximum, and the p99 when known.
fn latency_over_time(
    rows: &[(f64, f64, f64, f64)],
    p99: &[(f64, f64)],
    load_end: Option<f64>,
    band: bool,
) -> Result<Chart, DrawError> {
    let x_max = rows
        .iter()
        .map(|r| r.0 + 1.0)
        .chain(load_end)
        .fold(1.0, f64::max);
    let y_max = nice_max(rows.iter().map(|r| r.3.max(r.1)).fold(0.0, f64::max));
    let caption = if band {
        format!(
            "The {LATENCY} metric per second: the average of the requests that completed in that \
             second (line), between the fastest and the slowest of them (band){}.",
            if p99.is_empty() {
                ""
            } else {
                ", and their 99th percentile (dashed, from the second's buckets, within 2 %)"
            }
        )
    } else {
        "Per-second averages (the AWS sample's export): the average latency of each second (no minimum or maximum).".into()
    };
    draw(
        "latency-over-time",
        "End-to-end latency over time",
        caption,
        |root| {
            let mut chart = frame(&root).build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
            house_style(&mut chart.configure_mesh())
                .x_desc(if band {
                    "time since the load started (s)"
                } else {
                    "second of the run (s)"
                })
                .y_desc("end-to-end latency (ms)")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()?;
            if let Some(end) = load_end {
                mark_load_end(&mut chart, end, y_max)?;
            }
            if band && !rows.is_empty() {
                let outline: Vec<(f64, f64)> = rows
                    .iter()
                    .map(|r| (r.0, r.3))
                    .chain(rows.iter().rev().map(|r| (r.0, r.2)))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        PIPELINE.mix(0.18).filled(),
                    )))?
                    .label("min to max")
                    .legend(|(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 20, y + 5)], PIPELINE.mix(0.18).filled())
                    });
            }
            chart
                .draw_series(LineSeries::new(
                    rows.iter().map(|r| (r.0, r.1)),
                    PIPELINE.stroke_width(2),
                ))?
                .label("average")
                .legend(line_legend(PIPELINE));
            if !p99.is_empty() {
                chart
                    .draw_series(DashedLineSeries::new(
                        p99.iter().copied(),
                        6,
                        3,
                        PIPELINE.stroke_width(2),
                    ))?
                    .label("p99")
                    .legend(line_legend(PIPELINE));
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
        },
    )
}

fn distribution(export: &LatencyExport, latency: &stats::LatencyRow) -> Result<Chart, DrawError> {
    let curve = percentile_curve(export, 240);
    let x_max = curve.last().map_or(2.0, |p| p.0);
    let y_max = nice_max(latency.max_ms);
    let marks: Vec<(&str, f64, f64)> = [
        ("p50", 50.0, latency.p50_ms),
        ("p90", 90.0, latency.p90_ms),
        ("p95", 95.0, latency.p95_ms),
        ("p99", 99.0, latency.p99_ms),
    ]
    .into_iter()
    .map(|(name, q, ms)| (name, 1.0 / (1.0 - q / 100.0), ms))
    .filter(|m| m.1 <= x_max)
    .collect();
    let keys = nines_keys(x_max);
    let caption = format!(
        "Each request's end-to-end latency ({} requests, from the {} histogram, within 2 %): \
         the latency below which a given share of requests finished.",
        export.histogram.count(),
        contract::metrics::LATENCY_BUCKET
    );
    draw(
        "distribution",
        "Latency distribution per request",
        caption,
        |root| {
            let mut chart = frame(&root)
                .build_cartesian_2d((1f64..x_max).log_scale().with_key_points(keys), 0f64..y_max)?;
            house_style(&mut chart.configure_mesh())
                .x_desc("percentile of requests")
                .y_desc("end-to-end latency (ms)")
                .x_label_formatter(&|x| nines(*x))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()?;
            chart.draw_series(LineSeries::new(
                curve.iter().copied(),
                PIPELINE.stroke_width(2),
            ))?;
            chart.draw_series(
                marks
                    .iter()
                    .map(|&(_, x, ms)| Circle::new((x, ms), 4, PIPELINE.filled())),
            )?;
            chart.draw_series(marks.iter().map(|&(name, x, ms)| {
                Text::new(
                    format!("{name} {ms:.0} ms"),
                    (x, ms),
                    axis_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Right, VPos::Bottom)),
                )
            }))?;
            Ok(())
        },
    )
}

fn hops(bars: &[(String, StatSummary)]) -> Result<Chart, DrawError> {
    let n = bars.len() as i32;
    let means: Vec<f64> = bars
        .iter()
        .map(|(_, s)| s.mean_ms().unwrap_or(0.0))
        .collect();
    let y_min = means.iter().copied().fold(0.0, f64::min) * 1.25;
    let y_max = nice_max(means.iter().copied().fold(0.0, f64::max));
    let names: Vec<String> = bars.iter().map(|(name, _)| name.clone()).collect();
    let caption = "Mean latency of each hop, and of the whole loop. The first two are split at \
                   Kinesis' ApproximateArrivalTimestamp: on AWS that is Kinesis' clock against the \
                   client's, so their split is only as exact as the two agree (their sum is exact)."
        .to_owned();
    draw("hops", "Where the time goes", caption, |root| {
        let mut chart =
            frame(&root).build_cartesian_2d((0..n - 1).into_segmented(), y_min..y_max)?;
        house_style(&mut chart.configure_mesh())
            .disable_x_mesh()
            .x_desc("hop")
            .y_desc("mean latency (ms)")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        chart.draw_series(means.iter().enumerate().map(|(i, &mean)| {
            let colour = if i + 1 == bars.len() { LOAD } else { PIPELINE };
            let i = i as i32;
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), mean),
                ],
                colour.mix(0.85).filled(),
            );
            bar.set_margin(0, 0, 40, 40);
            bar
        }))?;
        chart.draw_series(means.iter().enumerate().map(|(i, &mean)| {
            Text::new(
                format!("{mean:.1} ms"),
                (SegmentValue::CenterOf(i as i32), mean.max(0.0)),
                axis_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
        Ok(())
    })
}

/// The charts for what was read: all four for a latency export, the latency over time alone
/// for the AWS sample's bare array.
pub fn charts(
    input: &Input,
    run: Option<&RunFile>,
    report: &Report,
) -> Result<Vec<Chart>, DrawError> {
    let export = match input {
        Input::Averages(averages) => {
            let rows: Vec<_> = averages
                .iter()
                .enumerate()
                .map(|(i, &avg)| (i as f64, avg, avg, avg))
                .collect();
            return Ok(vec![latency_over_time(&rows, &[], None, false)?]);
        }
        Input::Export(export) => export,
    };
    let origin = origin_ms(export, run).unwrap_or(export.run.window_start_ms);
    let load_end = load_end_ms(export, run).map(|ms| seconds(ms, origin));
    let rows: Vec<_> = export
        .per_second
        .iter()
        .map(|r| {
            (
                seconds(r.timestamp_ms, origin),
                r.average_ms,
                r.minimum_ms,
                r.maximum_ms,
            )
        })
        .collect();
    let p99: Vec<(f64, f64)> = export
        .per_second
        .iter()
        .filter_map(|r| Some((seconds(r.timestamp_ms, origin), r.p99_ms?)))
        .collect();
    let mut charts = vec![throughput(export, run, origin)?];
    charts.extend(super::backlog::chart(&report.over_time, origin, load_end)?);
    charts.extend(super::iterator_age::chart(
        export.lambda.as_ref(),
        origin,
        load_end,
    )?);
    charts.push(latency_over_time(&rows, &p99, load_end, true)?);
    if let Some(latency) = &report.latency {
        charts.push(distribution(export, latency)?);
    }
    let bars = hop_bars(export);
    if !bars.is_empty() {
        charts.push(hops(&bars)?);
    }
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_label_the_log_axis() {
        assert_eq!(nines(1.0), "0 %");
        assert_eq!(nines(2.0), "50 %");
        assert_eq!(nines(10.0), "90 %");
        assert_eq!(nines(100.0), "99 %");
        assert_eq!(nines(1000.0), "99.9 %");
        assert_eq!(nines(1e4), "99.99 %");
    }
}
