//! The PNG chart of a run: achieved calls per second (top) and setup time p99 (bottom)
//! against the offered rate, one line per system.

use std::path::Path;

use plotters::prelude::*;

use crate::outcome::StepOutcome;

/// Fonts looked for, in order (Debian's fonts-dejavu-core first).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

const COLORS: [RGBColor; 5] =
    [RGBColor(0, 114, 178), RGBColor(213, 94, 0), RGBColor(0, 158, 115), RGBColor(204, 121, 167), BLACK];

/// One line: a system's (offered, value) points.
type Series = (String, Vec<(f64, f64)>);

/// Points per system, sorted by offered rate; a rate run twice keeps its last result.
fn series(steps: &[StepOutcome], value: impl Fn(&StepOutcome) -> Option<f64>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for s in steps {
        let Some(v) = value(s) else { continue };
        let at = match out.iter().position(|(name, _)| *name == s.system) {
            Some(i) => i,
            None => {
                out.push((s.system.clone(), Vec::new()));
                out.len() - 1
            }
        };
        let points = &mut out[at].1;
        points.retain(|(x, _)| *x != f64::from(s.offered_cps));
        points.push((f64::from(s.offered_cps), v));
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn register_font() -> anyhow::Result<()> {
    let path = FONTS
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| anyhow::anyhow!("no DejaVu Sans font for the chart's labels (apt-get install fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a usable font"))?;
    Ok(())
}

/// Draws the chart of `steps` to `path`.
pub fn draw(steps: &[StepOutcome], title: &str, path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (top, bottom) = root.split_vertically(440);
    panel(&top, "achieved calls/s", &series(steps, |s| Some(s.uac.achieved_cps)))?;
    panel(&bottom, "setup time p99, ms (SIPp, 4 ms clock)", &series(steps, |s| s.setup.map(|p| p.p99_ms)))?;
    root.present()?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    y_label: &str,
    lines: &[Series],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let points = lines.iter().flat_map(|(_, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_max = points.map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("offered calls/s")
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled()))).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_group_by_system_and_keep_the_last_result_of_a_rate() {
        let step = |system: &str, rate: u32, achieved: f64| {
            let mut s: StepOutcome = serde_json::from_str(include_str!("../tests/fixtures/step.json")).unwrap();
            s.system = system.into();
            s.offered_cps = rate;
            s.uac.achieved_cps = achieved;
            s
        };
        let steps = [step("a", 200, 199.0), step("b", 100, 99.0), step("a", 100, 98.0), step("a", 200, 190.0)];
        let lines = series(&steps, |s| Some(s.uac.achieved_cps));
        assert_eq!(lines, vec![("a".to_owned(), vec![(100.0, 98.0), (200.0, 190.0)]), ("b".to_owned(), vec![(100.0, 99.0)])]);
    }

    #[test]
    fn a_chart_is_written_as_a_png() {
        if FONTS.iter().all(|p| !Path::new(p).exists()) {
            // Without a font the chart cannot be labelled; `draw` says so (checked here).
            assert!(draw(&[], "t", Path::new("/nonexistent/x.png")).unwrap_err().to_string().contains("fonts-dejavu-core"));
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s: StepOutcome = serde_json::from_str(include_str!("../tests/fixtures/step.json")).unwrap();
        let path = dir.path().join("chart.png");
        draw(&[s], "test", &path).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
