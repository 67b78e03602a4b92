//! SVG latency plots: latency by percentile on a log scale (the HdrHistogram "percentile
//! spectrum"), so the whole distribution and its tail are visible at once.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Latency;

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];
const NINES_MAX: f64 = 4.0;

/// Writes one chart with a line per named distribution.
pub fn percentile_plot(
    path: &Path,
    title: &str,
    series: &[(&str, &Latency)],
) -> anyhow::Result<()> {
    let max_ms = series
        .iter()
        .map(|(_, latency)| latency.quantile_ms(1.0))
        .fold(0.1_f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..NINES_MAX, 0.0..max_ms)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(5)
        .x_label_formatter(&|nines| percentile_label(*nines))
        .draw()?;
    for (index, (name, latency)) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let points: Vec<(f64, f64)> = (0..=400)
            .map(|step| {
                let nines = NINES_MAX * f64::from(step) / 400.0;
                let quantile = 1.0 - 10f64.powf(-nines);
                (nines, latency.quantile_ms(quantile))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn percentile_label(nines: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    match nines.round() as i64 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        _ => format!("{percent:.3}%"),
    }
}
