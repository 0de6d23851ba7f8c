//! What a tuning says: a line per step, the table, the recommendation, and the HTML page with
//! cost per 1,000 loops against end-to-end p99 (one point per size, as AWS Lambda Power Tuning
//! draws cost against speed).

use std::fmt::Write as _;

use collector::report::style::{
    draw, frame, house_style, nice_max, Chart, DrawError, GREY, LOAD, PIPELINE,
};
use collector::report::{escape, Page};
use contract::tune::{Pick, TuneFile, TuneStep};
use plotters::prelude::*;

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.0}"))
}

/// US dollars: tuning prices steps at the shipped list prices, which are in USD.
fn money(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("${v:.6}"))
}

/// The end-to-end p99 and its 95 % half-width: `105 ± 9`.
fn p99_with_noise(step: &TuneStep) -> String {
    match (step.load.p99_ms, step.p99_noise_ms) {
        (Some(p99), Some(noise)) => format!("{p99:.0} ± {noise:.0}"),
        (p99, _) => ms(p99),
    }
}

/// Why a step is not usable, or `usable`.
fn verdict_of(step: &TuneStep) -> String {
    if step.usable {
        "usable".to_owned()
    } else {
        step.load.reasons.join(", ")
    }
}

/// One step, as it is judged.
pub fn step_line(step: &TuneStep) -> String {
    format!(
        "tune: {} MB: {:.1}/s completed, p50 {} ms, p99 {} ms, Lambda {} per 1,000 loops: {}",
        step.memory_mb,
        step.load.completed_per_s,
        ms(step.load.p50_ms),
        p99_with_noise(step),
        money(step.cost_per_1000_loops),
        verdict_of(step)
    )
}

/// A pick against the current sizes' step: cost, then p99 with its noise.
fn change(pick: &Pick, current: Option<u32>) -> String {
    if current == Some(pick.memory_mb) {
        return ": the current size".to_owned();
    }
    let (Some(cost), Some(p99)) = (pick.cost_change_percent, pick.p99_change_percent) else {
        return String::new();
    };
    let cost = if cost.abs() < 0.05 {
        "the same cost".to_owned()
    } else if cost < 0.0 {
        format!("{:.1} % cheaper", -cost)
    } else {
        format!("{cost:.1} % dearer")
    };
    let speed = match pick.p99_change_noise_percent {
        Some(noise) if p99.abs() <= noise => {
            format!("as fast within noise (p99 {p99:+.1} % ± {noise:.1} %)")
        }
        Some(noise) => format!("p99 {p99:+.1} % ± {noise:.1} %"),
        None => format!("p99 {p99:+.1} % (noise unknown: under 500 loops a step)"),
    };
    format!(": {cost}, {speed} against the current sizes")
}

/// The recommendation, in lines: the cheapest size within the SLO and the fastest.
pub fn verdict(file: &TuneFile) -> String {
    let mut lines = String::new();
    match &file.cheapest {
        Some(pick) => {
            let _ = writeln!(
                lines,
                "tune: cheapest within the SLO of {:.0} ms: {} MB ({} per 1,000 loops, p99 {} \
                 ms){}",
                file.slo_ms,
                pick.memory_mb,
                money(pick.cost_per_1000_loops),
                ms(pick.p99_ms),
                change(pick, file.current_step)
            );
        }
        None => {
            let _ = writeln!(
                lines,
                "tune: no size met the SLO of {:.0} ms with nothing lost",
                file.slo_ms
            );
        }
    }
    if let Some(pick) = &file.fastest {
        let _ = write!(
            lines,
            "tune: fastest: {} MB (p99 {} ms, {} per 1,000 loops){}",
            pick.memory_mb,
            ms(pick.p99_ms),
            money(pick.cost_per_1000_loops),
            change(pick, file.current_step)
        );
        if !pick.as_fast.is_empty() {
            let others: Vec<String> = pick.as_fast.iter().map(u32::to_string).collect();
            let _ = write!(
                lines,
                "; {} MB as fast within noise, and dearer",
                others.join(", ")
            );
        }
        lines.push('\n');
    }
    if file.current_step.is_none() {
        let _ = writeln!(
            lines,
            "tune: the functions' current sizes ({}) were not among the sizes tried: no change \
             stated against them",
            sizes_text(file)
        );
    }
    lines.trim_end().to_owned()
}

fn sizes_text(file: &TuneFile) -> String {
    file.current_mb
        .iter()
        .map(|(role, mb)| format!("{role} {mb} MB"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The steps' table: the header and one row per step.
pub fn table(file: &TuneFile) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = ["MB", "loops/s", "p50 (ms)", "p99 (ms)"]
        .map(str::to_owned)
        .to_vec();
    for role in &file.tuned {
        header.push(format!("{role} p50/p99 (ms)"));
        header.push(format!("{role} cold starts (init ms)"));
    }
    header.extend(["GB-s", "Lambda per 1,000 loops", "verdict"].map(str::to_owned));
    let rows = file
        .steps
        .iter()
        .map(|s| {
            let mut row = vec![
                s.memory_mb.to_string(),
                format!("{:.1}", s.load.completed_per_s),
                ms(s.load.p50_ms),
                p99_with_noise(s),
            ];
            for role in &file.tuned {
                match s.functions.iter().find(|f| &f.role == role) {
                    Some(f) => {
                        row.push(format!(
                            "{}/{}",
                            ms(f.duration_p50_ms),
                            ms(f.duration_p99_ms)
                        ));
                        row.push(format!("{} ({})", f.cold_starts, ms(f.init_avg_ms)));
                    }
                    None => row.extend(["-".to_owned(), "-".to_owned()]),
                }
            }
            let gb_s: f64 = s.functions.iter().map(|f| f.billed_gb_seconds).sum();
            row.push(if s.functions.is_empty() {
                "-".to_owned()
            } else {
                format!("{gb_s:.3}")
            });
            row.push(money(s.cost_per_1000_loops));
            row.push(match &s.lambda_unavailable {
                Some(why) => format!("{}; Lambda's metrics: {why}", verdict_of(s)),
                None => verdict_of(s),
            });
            row
        })
        .collect();
    (header, rows)
}

/// The table as aligned text.
pub fn text_table(file: &TuneFile) -> String {
    let (header, rows) = table(file);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let last = header.len() - 1;
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.clone()
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = line(&header);
    for row in &rows {
        out.push('\n');
        out.push_str(&line(row));
    }
    out
}

/// Cost per 1,000 loops against end-to-end p99, one labelled point per size, each p99 with its
/// 95 % interval as a bar.
fn cost_vs_p99(file: &TuneFile) -> Result<Chart, DrawError> {
    let points: Vec<(&TuneStep, f64, f64)> = file
        .steps
        .iter()
        .filter_map(|s| Some((s, s.load.p99_ms?, s.cost_per_1000_loops?)))
        .collect();
    let widest = points
        .iter()
        .map(|(s, p99, _)| p99 + s.p99_noise_ms.unwrap_or(0.0))
        .fold(0.0, f64::max);
    // The SLO is drawn when it is near the points; far to their right it would squeeze them.
    let slo_shown = file.slo_ms <= widest * 2.0;
    let x_max = nice_max(if slo_shown {
        widest.max(file.slo_ms)
    } else {
        widest
    });
    let y_max = nice_max(points.iter().map(|p| p.2).fold(0.0, f64::max)).max(1e-9);
    let slo = if slo_shown {
        format!("the SLO of {:.0} ms in grey", file.slo_ms)
    } else {
        format!("the SLO of {:.0} ms is far to the right", file.slo_ms)
    };
    let caption = format!(
        "Each memory size's Lambda cost per 1,000 loops (requests and billed GB-seconds at {}) \
         against the end-to-end p99, with its 95 % interval as a bar; {slo}. Blue: usable; \
         orange: not (over the SLO, or something failed, was lost or fell behind).",
        file.prices
    );
    draw("cost-vs-p99", "Cost against speed", caption, |root| {
        let mut chart = frame(&root).build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        house_style(&mut chart.configure_mesh())
            .x_desc("end-to-end p99 (ms)")
            .y_desc("Lambda cost per 1,000 loops (USD)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.5}"))
            .draw()?;
        if slo_shown {
            chart.draw_series(DashedLineSeries::new(
                [(file.slo_ms, 0.0), (file.slo_ms, y_max)],
                6,
                4,
                GREY.stroke_width(1),
            ))?;
        }
        let colour = |s: &TuneStep| if s.usable { PIPELINE } else { LOAD };
        chart.draw_series(points.iter().filter_map(|(s, x, y)| {
            let noise = s.p99_noise_ms?;
            Some(PathElement::new(
                [((x - noise).max(0.0), *y), (x + noise, *y)],
                colour(s).stroke_width(2),
            ))
        }))?;
        chart.draw_series(points.iter().map(|(s, x, y)| {
            EmptyElement::at((*x, *y))
                + Circle::new((0, 0), 5, colour(s).filled())
                + Text::new(
                    format!("{} MB", s.memory_mb),
                    (7, -14),
                    ("sans-serif", 13).into_font(),
                )
        }))?;
        Ok(())
    })
}

/// The whole page.
pub fn html(file: &TuneFile) -> Result<String, DrawError> {
    let lead: String = verdict(file)
        .lines()
        .map(|l| format!("<p>{}</p>\n", escape(l)))
        .collect();
    let mut page = Page::new(&format!("Memory sizes {}", file.run_prefix), &lead);
    page.chart(&cost_vs_p99(file)?);
    page.push(&format!(
        "<h2>Steps</h2>\n<p>{} set on {}; {:.1} requests/s for {:.0} s each; current sizes: {}.</p>\n",
        "Each memory size",
        escape(&file.tuned.join(", ")),
        file.rate_per_s,
        file.step_duration_s,
        escape(&sizes_text(file))
    ));
    let (header, rows) = table(file);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let numeric: Vec<usize> = (0..header.len() - 1).collect();
    page.table(&header, &rows, &numeric);
    Ok(page.finish())
}
