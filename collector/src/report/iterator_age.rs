//! The iterator-age chart, beside the backlog: for each function behind a stream, how old the
//! newest record of the batch it was handed was (Lambda's `IteratorAge`, the number AWS users
//! alarm on when a pipeline falls behind), the most in each period.

use contract::lambda::LambdaView;
use plotters::prelude::*;

use super::style::{draw, draw_legend, frame, house_style, line_legend, mark_load_end, nice_max};
use super::style::{Chart, DrawError, LOAD, PIPELINE};

/// The chart, when Lambda's metrics have an iterator age; `origin_ms` is time 0 and `load_end`
/// where the load ended, in seconds from it.
pub fn chart(
    view: Option<&LambdaView>,
    origin_ms: i64,
    load_end: Option<f64>,
) -> Result<Option<Chart>, DrawError> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = view
        .map(|v| v.functions.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|f| !f.iterator_age.is_empty())
        .map(|f| {
            let points = f
                .iterator_age
                .iter()
                .map(|&(t, age)| ((t - origin_ms) as f64 / 1000.0, age))
                .collect();
            (f.role.as_str(), points)
        })
        .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let all = || series.iter().flat_map(|(_, points)| points.iter());
    let peak = all().map(|p| p.1).fold(0.0, f64::max);
    let x_min = all().map(|p| p.0).fold(0.0, f64::min);
    let x_max = all().map(|p| p.0 + 1.0).chain(load_end).fold(1.0, f64::max);
    let y_max = nice_max(peak);
    let caption = format!(
        "Lambda's IteratorAge: when a mapping handed its function a batch, how long ago the \
         batch's last record reached the stream (the most in each period; at most {peak:.0} ms). \
         Level: the function keeps up with its stream. Rising: it falls behind."
    );
    draw("iterator-age", "Iterator age over time", caption, |root| {
        let mut chart = frame(&root).build_cartesian_2d(x_min..x_max, 0f64..y_max)?;
        house_style(&mut chart.configure_mesh())
            .x_desc("time since the load started (s)")
            .y_desc("iterator age (ms)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        if let Some(end) = load_end {
            mark_load_end(&mut chart, end, y_max)?;
        }
        for ((role, points), colour) in series.iter().zip([PIPELINE, LOAD].into_iter().cycle()) {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(*role)
                .legend(line_legend(colour));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::lambda::FunctionMetrics;

    fn function(role: &str, ages: &[(i64, f64)]) -> FunctionMetrics {
        FunctionMetrics {
            role: role.into(),
            iterator_age: ages.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn one_line_per_function_behind_a_stream() {
        let view = LambdaView {
            unavailable: None,
            functions: vec![
                function("upstream", &[]),
                function("midstream", &[(1000, 20.0), (2000, 35.0), (3000, 30.0)]),
                function("downstream", &[(1000, 40.0), (2000, 12.0)]),
            ],
        };
        let drawn = chart(Some(&view), 1000, Some(2.0)).unwrap().unwrap();
        assert_eq!(drawn.id, "iterator-age");
        let lines: Vec<usize> = drawn
            .svg
            .split("<polyline")
            .skip(1)
            .map(|l| {
                let points = l.split("points=\"").nth(1).unwrap_or("");
                points
                    .split('"')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .count()
            })
            .collect();
        assert!(lines.contains(&3), "midstream's three points: {lines:?}");
        assert!(drawn.svg.contains("midstream") && drawn.svg.contains("downstream"));
        assert!(!drawn.svg.contains("upstream"), "no stream, no line");
        assert!(drawn.caption.contains("at most 40 ms"), "{}", drawn.caption);
        assert_eq!(chart(None, 0, None).unwrap(), None);
    }
}
