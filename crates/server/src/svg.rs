//! Small inline SVG charts: pages work offline and print, with no script.

use std::fmt::Write;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of values in [0, 1] (shares), one point per label.
pub fn share_line(id: &str, title: &str, labels: &[String], values: &[f64]) -> String {
    let (w, h, left, bottom, top) = (640.0, 220.0, 44.0, 30.0, 16.0);
    let plot_w = w - left - 12.0;
    let plot_h = h - bottom - top;
    let n = values.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + plot_h * (1.0 - v.clamp(0.0, 1.0));
    // In a box that scrolls sideways on a phone rather than shrinking the
    // text below legibility (pages.rs CSS: .chartbox).
    let mut s = String::from(r#"<div class="chartbox">"#);
    let _ = write!(
        s,
        r#"<svg id="{id}" class="chart" role="img" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{:.0}%</text>"##,
            w - 12.0,
            left - 4.0,
            y(tick) + 3.0,
            tick * 100.0,
            y = y(tick)
        );
    }
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    if points.len() > 1 {
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{}"/>"##,
            points.join(" ")
        );
    }
    for (i, v) in values.iter().enumerate() {
        let _ = write!(
            s,
            r##"<circle class="point" cx="{:.1}" cy="{:.1}" r="3.5" fill="#1565c0"><title>{}: {:.1}%</title></circle>"##,
            x(i),
            y(*v),
            escape(labels.get(i).map(String::as_str).unwrap_or("")),
            v * 100.0
        );
    }
    // Label at most ~8 points so the axis stays legible.
    let step = n.div_ceil(8).max(1);
    for (i, label) in labels.iter().enumerate().step_by(step) {
        // The end labels are anchored inwards so that they are not cut off.
        let anchor = match i {
            0 if n > 1 => "start",
            i if i + 1 == n && n > 1 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="{anchor}">{}</text>"#,
            x(i),
            h - 10.0,
            escape(label)
        );
    }
    s.push_str("</svg></div>");
    s
}

/// Horizontal bars of shares in [0, 1] with their labels.
pub fn share_bars(id: &str, title: &str, rows: &[(String, f64)]) -> String {
    let row_h = 22.0;
    let (w, left) = (640.0, 200.0);
    let h = row_h * rows.len() as f64 + 8.0;
    let bar_w = w - left - 60.0;
    // In a box that scrolls sideways on a phone rather than shrinking the
    // text below legibility (pages.rs CSS: .chartbox).
    let mut s = String::from(r#"<div class="chartbox">"#);
    let _ = write!(
        s,
        r#"<svg id="{id}" class="chart" role="img" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let short: String = label.chars().take(28).collect();
        let _ = write!(
            s,
            r##"<text x="{}" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect class="bar" x="{left}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#2e7d32"><title>{}: {:.1}%</title></rect><text x="{:.1}" y="{:.1}" font-size="11">{:.1}%</text>"##,
            left - 6.0,
            y + 14.0,
            escape(&short),
            bar_w * v.clamp(0.0, 1.0),
            row_h - 6.0,
            escape(label),
            v * 100.0,
            left + bar_w * v.clamp(0.0, 1.0) + 4.0,
            y + 14.0,
            v * 100.0
        );
    }
    s.push_str("</svg></div>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_points_drawn() {
        let svg = share_line("t", "a<b", &["x&y".into(), "z".into()], &[0.5, 1.5]);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains("x&amp;y"));
        assert_eq!(svg.matches("<circle").count(), 2);
        // Out-of-range values are clamped into the plot.
        assert!(svg.contains("cy=\"16.0\""));
        let bars = share_bars("b", "t", &[("<script>".into(), 0.25)]);
        assert!(!bars.contains("<script>"));
        assert_eq!(bars.matches("class=\"bar\"").count(), 1);
    }
}
