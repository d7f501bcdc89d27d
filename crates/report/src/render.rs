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
