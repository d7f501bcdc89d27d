//! A plan's milestones with what was measured, judged and written out as
//! Markdown or JSON.

use crate::plan::{Indicator, Judgement, Plan, judge, parse_day};
use serde::Serialize;

/// What was measured for one milestone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measurement {
    /// Day of the latest value (days since 1970-01-01) and the value.
    pub latest: Option<(i64, f64)>,
    /// An earlier value for the trend.
    pub earlier: Option<(i64, f64)>,
    /// Population behind the value (targets, users …), and where it comes from.
    pub population: Option<i64>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub indicator: Indicator,
    pub category: Option<String>,
    pub deadline: String,
    pub target: Option<f64>,
    pub text: String,
    pub measurement: Measurement,
    pub judgement: Option<Judgement>,
}

/// Judges each milestone of `plan` with `measure`'s values.
pub fn rows(plan: &Plan, zh: bool, mut measure: impl FnMut(&crate::plan::Milestone) -> Measurement) -> Vec<Row> {
    plan.milestones
        .iter()
        .map(|m| {
            let measurement = measure(m);
            let judgement = match (m.target, measurement.latest, parse_day(&m.deadline)) {
                (Some(target), Some(latest), Some(deadline)) => {
                    Some(judge(target, deadline, latest, measurement.earlier))
                }
                _ => None,
            };
            Row {
                indicator: m.indicator,
                category: m.category.clone(),
                deadline: m.deadline.clone(),
                target: m.target,
                text: if zh { m.zh.clone() } else { m.en.clone() },
                measurement,
                judgement,
            }
        })
        .collect()
}

fn value(indicator: Indicator, v: f64) -> String {
    if indicator.is_share() {
        format!("{:.1} %", v * 100.0)
    } else {
        format!("{v:.0}")
    }
}

/// The milestones table in Markdown.
pub fn markdown(plan: &Plan, rows: &[Row], zh: bool, title: &str) -> String {
    let (h_ms, h_target, h_value, h_standing, h_gap, h_note) = if zh {
        ("里程碑", "目标", "监测值", "状态", "差距", "说明")
    } else {
        ("Milestone", "Target", "Measured", "Standing", "Gap", "Note")
    };
    let mut out = format!(
        "# {title}\n\n{}: {} ({})\n\n| {h_ms} | {} | {h_target} | {h_value} | {h_standing} | {h_gap} | {h_note} |\n|---|---|---|---|---|---|---|\n",
        if zh { "规划" } else { "Plan" },
        if zh { &plan.title_zh } else { &plan.title_en },
        plan.source,
        if zh { "期限" } else { "Deadline" },
    );
    for r in rows {
        let target = r.target.map(|t| value(r.indicator, t)).unwrap_or_else(|| "-".into());
        let measured = r
            .measurement
            .latest
            .map(|(_, v)| value(r.indicator, v))
            .unwrap_or_else(|| if zh { "未监测".into() } else { "not measured".into() });
        let (standing, gap) = match &r.judgement {
            Some(j) => (
                serde_json::to_value(j.standing)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                value(r.indicator, j.gap.max(0.0)),
            ),
            None => ("-".into(), "-".into()),
        };
        out += &format!(
            "| {} | {} | {target} | {measured} | {standing} | {gap} | {} |\n",
            r.text.replace('|', "/"),
            r.deadline,
            r.measurement.note.replace('|', "/")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_judge_measured_milestones_and_leave_the_rest_unmeasured() {
        let plan = Plan::load("cn-2024-work-plan").unwrap();
        let rows = rows(&plan, true, |m| match m.indicator {
            Indicator::SiteSupport => Measurement {
                latest: Some((parse_day("2024-06-30").unwrap(), 0.9)),
                earlier: Some((parse_day("2024-01-01").unwrap(), 0.8)),
                population: Some(100),
                note: "100 targets".into(),
            },
            _ => Measurement::default(),
        });
        let site = rows.iter().find(|r| r.indicator == Indicator::SiteSupport).unwrap();
        assert_eq!(
            site.judgement.as_ref().unwrap().standing,
            crate::plan::Standing::OnTrack
        );
        assert!(
            rows.iter()
                .filter(|r| r.indicator != Indicator::SiteSupport)
                .all(|r| r.judgement.is_none())
        );
        let md = markdown(&plan, &rows, true, "2024-06 监测报告");
        assert!(
            md.contains(
                "| 商业网站及应用IPv6支持率达到95% | 2024-12-31 | 95.0 % | 90.0 % | on_track | 5.0 % | 100 targets |"
            ),
            "{md}"
        );
        assert!(md.contains("未监测"));
    }
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar per measured share: the value as a bar, the target as
/// a line. Inline SVG: the report needs no network to be viewed or printed.
pub(crate) fn share_chart(rows: &[Row], zh: bool) -> String {
    let shares: Vec<&Row> = rows
        .iter()
        .filter(|r| r.indicator.is_share() && r.measurement.latest.is_some())
        .collect();
    if shares.is_empty() {
        return String::new();
    }
    let (label_w, bar_w, row_h) = (320.0, 360.0, 26.0);
    let height = row_h * shares.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{}\" height=\"{height}\" \
         viewBox=\"0 0 {} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n<title>{}</title>\n",
        label_w + bar_w + 60.0,
        label_w + bar_w + 60.0,
        if zh {
            "监测值与目标"
        } else {
            "Measured against target"
        }
    );
    for (i, r) in shares.iter().enumerate() {
        let y = 10.0 + row_h * i as f64;
        let value = r.measurement.latest.map(|(_, v)| v).unwrap_or(0.0).clamp(0.0, 1.0);
        let target = r.target.unwrap_or(0.0).clamp(0.0, 1.0);
        let met = value >= target;
        let label = r.category.clone().unwrap_or_else(|| r.text.clone());
        svg += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{bar_w}\" height=\"16\" fill=\"#eee\"/>\n\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{:.1}\" height=\"16\" fill=\"{}\"/>\n\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#000\" stroke-width=\"2\"/>\n\
             <text x=\"{}\" y=\"{}\">{:.1} %</text>\n",
            label_w - 8.0,
            y + 12.0,
            escape(&label),
            bar_w * value,
            if met { "#2a7d2a" } else { "#c0392b" },
            label_w + bar_w * target,
            label_w + bar_w * target,
            y - 2.0,
            y + 18.0,
            label_w + bar_w + 6.0,
            y + 12.0,
            value * 100.0
        );
    }
    svg + "</svg>\n"
}

/// The report as one self-contained HTML page (inline CSS and SVG).
pub fn html(plan: &Plan, rows: &[Row], zh: bool, title: &str) -> String {
    let md_table = markdown(plan, rows, zh, title);
    let mut table = String::from("<table>\n");
    for (i, line) in md_table.lines().filter(|l| l.starts_with('|')).enumerate() {
        if i == 1 {
            continue; // the Markdown separator row
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let tag = if i == 0 { "th" } else { "td" };
        table += "<tr>";
        for c in cells {
            table += &format!("<{tag}>{}</{tag}>", escape(c));
        }
        table += "</tr>\n";
    }
    table += "</table>\n";
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #999;padding:.3em .5em;text-align:left;vertical-align:top}}\
         @media print{{body{{margin:0}}}}</style></head>\n<body>\n<h1>{}</h1>\n<p>{}: {} ({})</p>\n{}{}</body></html>\n",
        if zh { "zh-CN" } else { "en" },
        escape(title),
        escape(title),
        if zh { "规划" } else { "Plan" },
        escape(if zh { &plan.title_zh } else { &plan.title_en }),
        escape(&plan.source),
        share_chart(rows, zh),
        table
    )
}

#[cfg(test)]
mod html_tests {
    use super::*;

    #[test]
    fn html_report_is_self_contained_with_a_chart_of_measured_shares() {
        let plan = Plan::load("cn-2017-action-plan").unwrap();
        let day = parse_day("2026-10-31").unwrap();
        let rows = rows(&plan, true, |m| match m.category.as_deref() {
            Some("省部级政府网站") => Measurement {
                latest: Some((day, 0.8)),
                note: "10 targets <pass>".into(),
                ..Default::default()
            },
            _ => Measurement::default(),
        });
        let page = html(&plan, &rows, true, "2026-10 监测报告");
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<html lang=\"zh-CN\">"));
        assert!(page.contains("<svg") && page.contains(">省部级政府网站</text>") && page.contains("80.0 %"));
        assert!(page.contains("10 targets &lt;pass&gt;"), "notes are escaped");
        assert!(
            !page.contains("src=") && !page.contains("href="),
            "no external resources"
        );
        assert_eq!(page.matches("<tr>").count(), plan.milestones.len() + 1);
    }
}
