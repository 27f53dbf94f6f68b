//! Grouped bar charts, drawn with plotters on an in-memory bitmap and encoded as PNG.
//!
//! One group per category on the x axis (a profile, a query), one bar per system inside each
//! group, always in the same slot and colour so that a missing system leaves a visible gap. A bar
//! is the median; a whisker spans min–max when there were several runs. The y axis turns
//! logarithmic when the values span more than [`LOG_SCALE_SPAN`] times.
//!
//! Text uses `fonts/DejaVuSans.ttf`, embedded in the binary (plotters' `ab_glyph` font backend),
//! so drawing needs no system font library and renders the same on every machine.

use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::schema::System;
use crate::stats::Spread;

pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 500;
/// Above this ratio between the largest and smallest value drawn, the y axis is logarithmic.
pub const LOG_SCALE_SPAN: f64 = 20.0;

static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const HEADER_PX: u32 = 72;

/// What one chart shows.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    /// Category labels on the x axis.
    pub groups: Vec<String>,
    /// One per system, each with one value per group.
    pub series: Vec<BarSeries>,
    /// Writes values above bars and on the y axis.
    pub format: fn(f64) -> String,
}

#[derive(Debug, Clone)]
pub struct BarSeries {
    pub system: System,
    pub values: Vec<Option<Spread>>,
}

impl BarChart {
    /// Whether the y axis is logarithmic: the values span more than [`LOG_SCALE_SPAN`] times.
    pub fn log_scale(&self) -> bool {
        let (lo, hi) = self.bounds();
        hi / lo > LOG_SCALE_SPAN
    }

    /// The smallest and largest value drawn, whiskers included.
    fn bounds(&self) -> (f64, f64) {
        self.spreads().fold((f64::INFINITY, 0f64), |(lo, hi), s| {
            (lo.min(s.min), hi.max(s.max))
        })
    }

    fn spreads(&self) -> impl Iterator<Item = &Spread> {
        self.series.iter().flat_map(|s| s.values.iter().flatten())
    }

    /// What the whiskers mean, for the header.
    fn subtitle(&self) -> String {
        let runs = self.spreads().map(|s| s.runs);
        let (fewest, most) = runs.fold((usize::MAX, 0), |(a, b), n| (a.min(n), b.max(n)));
        let mut text = match (fewest, most) {
            (_, 0 | 1) => "one run each".to_owned(),
            (a, b) if a == b => format!("median of {b} runs, whiskers min–max"),
            (a, b) => format!("median of {a}–{b} runs, whiskers min–max"),
        };
        if self.log_scale() {
            text.push_str("; log scale");
        }
        text
    }
}

/// The colour of a system's bars, from the Okabe–Ito palette (distinct under colour blindness).
pub fn colour(system: System) -> RGBColor {
    match system {
        System::Strata => RGBColor(0, 114, 178),
        System::Prometheus => RGBColor(230, 159, 0),
        System::VictoriaMetrics => RGBColor(0, 158, 115),
    }
}

/// Draws `chart` and returns the PNG file's bytes.
pub fn draw_png(chart: &BarChart) -> Result<Vec<u8>, String> {
    register_font()?;
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (header, body) = root.split_vertically(HEADER_PX);
        draw_header(&header, chart).map_err(|e| e.to_string())?;
        draw_body(&body, chart).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&rgb)
}

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded DejaVu Sans font does not parse".to_owned())
        })
        .clone()
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult<'a> =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

/// Title on the first line; what the bars mean on the second, with the legend to its right.
fn draw_header<'a>(area: &Area<'a>, chart: &BarChart) -> DrawResult<'a> {
    let title = (FAMILY, 22).into_font().color(&BLACK);
    let small = (FAMILY, 15).into_font().color(&RGBColor(70, 70, 70));
    area.draw(&Text::new(chart.title.clone(), (16, 14), title))?;
    area.draw(&Text::new(chart.subtitle(), (16, 46), small.clone()))?;

    let legend = (FAMILY, 15).into_font().color(&BLACK);
    let mut x = WIDTH as i32 - 16;
    for s in chart.series.iter().rev() {
        let (w, _) = area.estimate_text_size(s.system.name(), &legend)?;
        x -= w as i32;
        area.draw(&Text::new(s.system.name(), (x, 46), legend.clone()))?;
        x -= 22;
        area.draw(&Rectangle::new(
            [(x, 46), (x + 15, 61)],
            colour(s.system).filled(),
        ))?;
        x -= 18;
    }
    Ok(())
}

fn draw_body<'a>(area: &Area<'a>, chart: &BarChart) -> DrawResult<'a> {
    let x = Groups(chart.groups.len().max(1));
    let (lo, hi) = chart.bounds();
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_top(8)
        .margin_right(20)
        .margin_bottom(6)
        .margin_left(8)
        .x_label_area_size(36)
        .y_label_area_size(84);
    if lo.is_finite() && chart.log_scale() {
        let y = LogAxis {
            bottom: nice_below(lo / 2.0),
            top: hi * 1.8,
        };
        let mut ctx = builder.build_cartesian_2d(x, y)?;
        draw_bars(&mut ctx, chart, y.bottom)
    } else {
        let top = if hi > 0.0 { hi * 1.12 } else { 1.0 };
        let mut ctx = builder.build_cartesian_2d(x, 0f64..top)?;
        draw_bars(&mut ctx, chart, 0.0)
    }
}

/// The x axis: group `g` spans `g..g + 1`, labelled at its centre.
#[derive(Debug, Clone, Copy)]
struct Groups(usize);

impl Ranged for Groups {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, x: &f64, (from, to): (i32, i32)) -> i32 {
        from + (x / self.0 as f64 * f64::from(to - from)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        (0..self.0).map(|g| g as f64 + 0.5).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.0 as f64
    }
}

/// A logarithmic y axis labelled at 1, 2 and 5 times powers of ten (plotters' own log axis
/// labels either decades only or every digit).
#[derive(Debug, Clone, Copy)]
struct LogAxis {
    bottom: f64,
    top: f64,
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, y: &f64, (from, to): (i32, i32)) -> i32 {
        let (b, t) = (self.bottom.ln(), self.top.ln());
        from + ((y.max(self.bottom).ln() - b) / (t - b) * f64::from(to - from)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let decades = (self.top / self.bottom).log10();
        // 1-2-5 while they fit, else decades only.
        let steps: &[f64] = if decades * 3.0 <= hint.max_num_points() as f64 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let mut points = Vec::new();
        let mut decade = 10f64.powf(self.bottom.log10().floor());
        while decade <= self.top {
            for step in steps {
                let y = decade * step;
                if y >= self.bottom * 0.999 && y <= self.top {
                    points.push(y);
                }
            }
            decade *= 10.0;
        }
        points
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.bottom..self.top
    }
}

/// The largest of 1, 2 or 5 times a power of ten that is <= `x`.
fn nice_below(x: f64) -> f64 {
    let decade = 10f64.powf(x.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|&y| y <= x)
        .unwrap_or(decade)
}

type Ctx<'a, 'b, Y> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<Groups, Y>>;

/// Mesh, bars from `bottom` to the median, whiskers over min–max, and values above the bars
/// when they fit.
fn draw_bars<'b, Y>(ctx: &mut Ctx<'_, 'b, Y>, chart: &BarChart, bottom: f64) -> DrawResult<'b>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let area = ctx.plotting_area();
    let plot_px = f64::from(area.dim_in_pixel().0);
    let group_px = plot_px / chart.groups.len().max(1) as f64;
    let width_of = |text: &str, size: u32| {
        area.estimate_text_size(text, &TextStyle::from((FAMILY, size).into_font()))
            .map_or(0.0, |(w, _)| f64::from(w))
    };
    let (x_font, groups) = fit_labels(&chart.groups, group_px - 8.0, width_of);
    let x_label = move |x: &f64| {
        let g = x.floor();
        if g >= 0.0 {
            groups.get(g as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let format = chart.format;
    let y_label = move |y: &f64| axis_label(*y, format);
    ctx.configure_mesh()
        .disable_x_mesh()
        .y_max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(205, 205, 205))
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .y_labels(8)
        .y_desc(chart.y_label.as_str())
        .axis_desc_style((FAMILY, 16))
        .x_label_style((FAMILY, x_font))
        .y_label_style((FAMILY, 15))
        .draw()?;

    let slots = chart.series.len().max(1) as f64;
    let width = 0.8 / slots;
    let slot = |g: usize, i: usize| 0.1 + g as f64 + i as f64 * width;
    let pixel_slot = group_px * width;
    let value_font =
        TextStyle::from((FAMILY, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    let labels_fit = chart.spreads().all(|s| {
        let text = (chart.format)(s.median);
        ctx.plotting_area()
            .estimate_text_size(&text, &value_font)
            .is_ok_and(|(w, _)| f64::from(w) + 4.0 <= pixel_slot)
    });
    let ink = RGBColor(40, 40, 40);
    for (i, series) in chart.series.iter().enumerate() {
        let bars = series
            .values
            .iter()
            .enumerate()
            .filter_map(|(g, v)| v.map(|v| (g, v)));
        let fill = colour(series.system).filled();
        ctx.draw_series(bars.clone().map(|(g, v)| {
            let x0 = slot(g, i) + width * 0.06;
            let x1 = slot(g, i) + width * 0.94;
            Rectangle::new([(x0, bottom), (x1, v.median)], fill)
        }))?;
        let whiskers = bars.clone().filter(|(_, v)| v.runs > 1);
        for (g, v) in whiskers {
            let xc = slot(g, i) + width / 2.0;
            let cap = width * 0.2;
            let line = ink.stroke_width(2);
            ctx.draw_series([
                PathElement::new(vec![(xc, v.min), (xc, v.max)], line),
                PathElement::new(vec![(xc - cap, v.min), (xc + cap, v.min)], line),
                PathElement::new(vec![(xc - cap, v.max), (xc + cap, v.max)], line),
            ])?;
        }
        if labels_fit {
            ctx.draw_series(bars.map(|(g, v)| {
                let xc = slot(g, i) + width / 2.0;
                EmptyElement::at((xc, v.max))
                    + Text::new((chart.format)(v.median), (0, -4), value_font.clone())
            }))?;
        }
    }
    Ok(())
}

/// The x labels and their font size: 15 px if every label fits in `room` pixels, else 12 px,
/// with labels still too wide cut short with an ellipsis (the tables carry the full names).
fn fit_labels(
    labels: &[String],
    room: f64,
    width_of: impl Fn(&str, u32) -> f64,
) -> (u32, Vec<String>) {
    if labels.iter().all(|l| width_of(l, 15) <= room) {
        return (15, labels.to_vec());
    }
    let fitted = labels
        .iter()
        .map(|label| {
            let mut chars: Vec<char> = label.chars().collect();
            let mut text = label.clone();
            while width_of(&text, 12) > room && !chars.is_empty() {
                chars.pop();
                text = chars.iter().collect::<String>() + "…";
            }
            text
        })
        .collect();
    (12, fitted)
}

/// A y axis label: the value's own format with trailing zeros dropped (`0.100` -> `0.1`).
fn axis_label(y: f64, format: fn(f64) -> String) -> String {
    crate::format::trim_zeros(&format(y))
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format;

    #[test]
    fn axis_labels_drop_trailing_zeros() {
        assert_eq!(axis_label(0.1, format::sig), "0.1");
        assert_eq!(axis_label(1.5e6, format::si), "1.5M");
        assert_eq!(axis_label(2e6, format::si), "2M");
        assert_eq!(axis_label(20.0, format::sig), "20");
        assert_eq!(axis_label(12_000.0, format::sig), "12,000");
    }

    #[test]
    fn log_scale_only_past_the_span() {
        let series = |values: &[f64]| BarChart {
            title: String::new(),
            y_label: String::new(),
            groups: vec!["a".into(); values.len()],
            series: vec![BarSeries {
                system: System::Strata,
                values: values.iter().map(|&v| Some(Spread::single(v))).collect(),
            }],
            format: format::sig,
        };
        assert!(!series(&[1.0, 20.0]).log_scale());
        assert!(series(&[1.0, 21.0]).log_scale());
    }

    #[test]
    fn long_labels_shrink_then_shorten() {
        // A stand-in for text measurement: 1 px per character per px of font size / 10.
        let width_of = |text: &str, size: u32| f64::from(text.chars().count() as u32 * size) / 10.0;
        let labels = vec!["abcd".to_owned(), "abcdefghij".to_owned()];
        assert_eq!(fit_labels(&labels, 15.0, width_of), (15, labels.clone()));
        assert_eq!(fit_labels(&labels, 12.0, width_of), (12, labels.clone()));
        let (size, fitted) = fit_labels(&labels, 6.0, width_of);
        assert_eq!(
            (size, fitted),
            (12, vec!["abcd".to_owned(), "abcd…".to_owned()])
        );
    }

    #[test]
    fn log_axis_labels_one_two_five() {
        assert_eq!(nice_below(0.45), 0.2);
        assert_eq!(nice_below(7.0), 5.0);
        let axis = LogAxis {
            bottom: 0.2,
            top: 43.0,
        };
        let points = axis.key_points(8usize);
        let expected = [0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0];
        assert_eq!(points.len(), expected.len());
        for (p, e) in points.iter().zip(expected) {
            assert!((p - e).abs() < 1e-9, "{points:?}");
        }
    }
}
