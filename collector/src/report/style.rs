//! The house style of the report's charts: size, colours, fonts, frame, grid, legends, the
//! load-end marker, and drawing one chart into an SVG string.

use plotters::chart::{ChartContext, MeshStyle};
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of a chart, px.
pub const WIDTH: u32 = 960;
/// Height of a chart, px.
pub const HEIGHT: u32 = 380;

/// The pipeline's colour (loops, latency).
pub const PIPELINE: RGBColor = RGBColor(31, 119, 180);
/// The load generator's colour.
pub const LOAD: RGBColor = RGBColor(255, 127, 14);
/// Failed requests.
pub const FAILED: RGBColor = RGBColor(214, 39, 40);
/// Grid and secondary text.
pub const GREY: RGBColor = RGBColor(110, 110, 110);

/// One chart: where it goes in the page, what it shows, and its SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The figure's id (`throughput`, `latency-over-time`, `distribution`, `hops`).
    pub id: &'static str,
    /// Heading.
    pub title: &'static str,
    /// What to read from it.
    pub caption: String,
    /// The drawing.
    pub svg: String,
}

impl Chart {
    /// The chart as the pages show it: `<figure class="chart" id="...">`, its heading and
    /// caption, then the SVG.
    pub fn figure_html(&self) -> String {
        format!(
            "<figure class=\"chart\" id=\"{}\">\n<figcaption><h2>{}</h2><p>{}</p></figcaption>\n{}\n</figure>\n",
            self.id,
            super::escape(self.title),
            super::escape(&self.caption),
            self.svg
        )
    }
}

/// Why a chart could not be drawn (plotters' error, as text).
#[derive(Debug, thiserror::Error)]
#[error("drawing the {chart} chart: {message}")]
pub struct DrawError {
    chart: &'static str,
    message: String,
}

pub type Drawn = Result<(), Box<dyn std::error::Error>>;

pub fn draw(
    id: &'static str,
    title: &'static str,
    caption: String,
    paint: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> Result<Chart, DrawError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let result = root
            .fill(&WHITE)
            .map_err(|e| e.into())
            .and_then(|()| paint(root.clone()))
            .and_then(|()| root.present().map_err(|e| e.into()));
        result.map_err(|e| DrawError {
            chart: id,
            message: e.to_string(),
        })?;
    }
    Ok(Chart {
        id,
        title,
        caption,
        svg,
    })
}

pub fn label_font() -> TextStyle<'static> {
    ("sans-serif", 15).into_font().color(&BLACK)
}

pub fn axis_font() -> TextStyle<'static> {
    ("sans-serif", 13).into_font().color(&GREY)
}

/// Every chart's frame: margins and room for the axes' labels.
pub fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(18)
        .x_label_area_size(48)
        .y_label_area_size(72);
    builder
}

/// Every chart's grid and axis text; the caller adds the descriptions and formats.
pub fn house_style<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.axis_desc_style(label_font())
        .label_style(axis_font())
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(GREY.mix(0.15))
}

/// A legend entry for a line of `colour`.
pub fn line_legend(colour: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
}

/// The legend's box, at `position`.
pub fn draw_legend<'b>(chart: &mut TimeChart<'b, 'b>, position: SeriesLabelPosition) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(axis_font())
        .background_style(WHITE.mix(0.9))
        .border_style(GREY.mix(0.4))
        .draw()?;
    Ok(())
}

pub type TimeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The end of the load, a dashed line across a time chart.
pub fn mark_load_end(chart: &mut TimeChart<'_, '_>, end: f64, y_max: f64) -> Drawn {
    chart.draw_series(DashedLineSeries::new(
        [(end, 0.0), (end, y_max)],
        6,
        4,
        GREY.stroke_width(1),
    ))?;
    Ok(())
}

pub fn nice_max(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v * 1.12
    } else {
        1.0
    }
}

/// A "nines" axis label: `x = 1 / (1 − q)` as the percentile q (2 → 50 %, 100 → 99 %).
pub fn nines(x: f64) -> String {
    let q = 100.0 * (1.0 - 1.0 / x);
    let decimals = if x <= 100.0 {
        0
    } else {
        (x.log10() - 2.0).round() as usize
    };
    format!("{q:.decimals$} %")
}

/// The labelled points of a "nines" axis up to `x_max`: 0 %, 50 %, 90 %, 95 %, 99 %, 99.9 %, ...
pub fn nines_keys(x_max: f64) -> Vec<f64> {
    [1.0, 2.0, 10.0, 20.0, 100.0, 1e3, 1e4, 1e5]
        .into_iter()
        .filter(|k| *k <= x_max)
        .collect()
}
