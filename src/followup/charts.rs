//! Charts as SVG, drawn server-side with plotters (its SVG backend only):
//! a trend line per rule, bars per kommun. The SVG goes into the page as it
//! is, so every label is stripped of markup characters first.

use plotters::prelude::*;

/// One line of a trend chart: its label and a share (0–1) per x position.
pub struct Line {
    pub label: String,
    pub points: Vec<Option<f64>>,
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '<' | '>' | '&' | '"' | '\''))
        .collect()
}

/// Adherence in per cent per month, one line per rule; `markers` are
/// vertical lines at fractional x positions (an åtgärd recorded that day).
pub fn trend(title: &str, x_labels: &[String], lines: &[Line], markers: &[(f64, String)]) -> String {
    let mut svg = String::new();
    let result = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (760, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = x_labels.len().max(2);
        let mut chart = ChartBuilder::on(&root)
            .caption(clean(title), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(44)
            .build_cartesian_2d(-0.3f64..(n as f64 - 0.7), 0f64..100f64)?;
        let labels: Vec<String> = x_labels.iter().map(|l| clean(l)).collect();
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("följsamhet, %")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for (i, line) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(f64, f64)> = line
                .points
                .iter()
                .enumerate()
                .filter_map(|(x, p)| p.map(|p| (x as f64, p * 100.0)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(clean(&line.label))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        for (x, label) in markers {
            chart.draw_series(LineSeries::new(
                vec![(*x, 0.0), (*x, 100.0)],
                BLACK.mix(0.6).stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                clean(label),
                (*x + 0.05, 96.0),
                ("sans-serif", 12),
            )))?;
        }
        if !lines.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 12))
                .draw()?;
        }
        root.present()?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(error = %e, "ett diagram kunde inte ritas");
        return String::new();
    }
    svg
}

/// One bar per label (e.g. a kommun's mean days), with a dashed limit line.
pub fn bars(title: &str, y_desc: &str, bars: &[(String, f64)], limit: Option<f64>) -> String {
    let mut svg = String::new();
    let result = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (760, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = bars.len().max(1);
        let top = bars.iter().map(|(_, v)| *v).chain(limit).fold(1.0f64, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .caption(clean(title), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(44)
            .build_cartesian_2d((0..n).into_segmented(), 0f64..top)?;
        let labels: Vec<String> = bars.iter().map(|(l, _)| clean(l)).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_style(("sans-serif", 11))
            .y_desc(clean(y_desc))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(RGBColor(0x1f, 0x5f, 0x8b).filled())
                .margin(8)
                .data(bars.iter().enumerate().map(|(i, (_, v))| (i, *v))),
        )?;
        if let Some(l) = limit {
            chart.draw_series(DashedLineSeries::new(
                vec![(SegmentValue::Exact(0), l), (SegmentValue::Last, l)],
                6,
                4,
                RED.stroke_width(2),
            ))?;
        }
        root.present()?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(error = %e, "ett diagram kunde inte ritas");
        return String::new();
    }
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels_and_no_markup_from_data() {
        let svg = trend(
            "Följsamhet",
            &["2026-01".into(), "2026-02".into()],
            &[Line {
                label: "kvittens <script>".into(),
                points: vec![Some(0.5), Some(0.75)],
            }],
            &[(0.5, "Å".into())],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("2026-02"));
        assert!(svg.contains("kvittens script"));
        assert!(!svg.contains("<script"));
        let svg = bars("Ledtid", "dagar", &[("Linköpings kommun".into(), 3.5)], Some(3.0));
        assert!(svg.contains("Linköpings kommun"), "{svg}");
    }
}
