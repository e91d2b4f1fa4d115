//! The outage's picture: clients registered, lookup success and the fullest survivor's load
//! over time, as an SVG (plotters).

use std::path::Path;

use plotters::prelude::*;

/// One second of the run, as fractions.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Seconds since the recording began.
    pub t: f64,
    /// Clients registered, over all clients.
    pub registered: f64,
    /// Lookups found, over lookups asked (none asked: no point).
    pub lookups: Option<f64>,
    /// The fullest live supernode's clients over its capacity.
    pub peak_load: f64,
}

/// A line to draw: its label, its colour and its points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// Draws `points` to `path`, with a line where the outage struck.
pub fn draw(path: &Path, caption: &str, points: &[Point], killed_at: f64) -> anyhow::Result<()> {
    let end = points.last().map_or(1.0, |p| p.t.max(1.0));
    // Room above 1 for a survivor loaded past its capacity (a naive run), and for the legend.
    let top = points
        .iter()
        .map(|p| p.peak_load)
        .fold(1.0_f64, f64::max)
        .min(10.0)
        + 0.2;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("fraction")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let series: [Series<'_>; 3] = [
        (
            "clients registered",
            BLUE,
            points.iter().map(|p| (p.t, p.registered)).collect(),
        ),
        (
            "lookup success",
            GREEN,
            points
                .iter()
                .filter_map(|p| p.lookups.map(|l| (p.t, l)))
                .collect(),
        ),
        (
            "fullest survivor's load",
            RED,
            points.iter().map(|p| (p.t, p.peak_load)).collect(),
        ),
    ];
    for (label, color, data) in series {
        chart
            .draw_series(LineSeries::new(data, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .draw_series(LineSeries::new(
            vec![(killed_at, 0.0), (killed_at, top)],
            BLACK.mix(0.4),
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
