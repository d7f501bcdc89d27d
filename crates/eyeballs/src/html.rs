//! The side-by-side report: a parameter table (clients in columns) and,
//! per client, the family it used against the IPv6 delay. No external
//! assets: one file to mail or archive.

use crate::analysis::parameter_rows;
use crate::bench::{Family, Report};
use crate::trial::TrialKind;
use std::fmt::Write;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The parameter table as plain text, clients side by side.
pub fn text_table(report: &Report) -> String {
    let columns: Vec<Vec<(String, String, String)>> = report.clients.iter().map(parameter_rows).collect();
    let Some(first) = columns.first() else {
        return "no client was tested\n".into();
    };
    let mut rows: Vec<Vec<String>> = vec![{
        let mut h = vec!["".to_string()];
        h.extend(report.clients.iter().map(|c| c.client.name.clone()));
        h.push("RFC 8305".into());
        h
    }];
    for (i, (label, _, rfc)) in first.iter().enumerate() {
        let mut row = vec![label.clone()];
        row.extend(columns.iter().map(|c| c.get(i).map_or("—".into(), |r| r.1.clone())));
        row.push(rfc.clone());
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).min(60))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let _ = write!(out, "{cell:<w$}  ", w = widths[i]);
        }
        out = out.trim_end().to_string();
        out.push('\n');
    }
    out
}

pub fn render(report: &Report) -> String {
    let mut h = String::new();
    h.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>v6scope eyeballs: do these clients prefer IPv6?</title><style>\
         body{font:15px/1.45 system-ui,sans-serif;margin:1.5rem;max-width:75rem;color:#1b1b1b}\
         table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .55rem;\
         text-align:left;vertical-align:top}th{background:#f1f1f1}td.rfc{color:#555}\
         .yes{color:#0a6a2f;font-weight:600}.no{color:#a11;font-weight:600}\
         svg{max-width:100%;height:auto}figure{margin:1rem 0}figcaption{font-weight:600}\
         </style></head><body>",
    );
    h.push_str("<h1>Happy Eyeballs: do these clients prefer IPv6?</h1>");
    let _ = write!(
        h,
        "<p>Each trial fetched a fresh dual-stack name from the bench's own namespaces; the family is the one \
         that carried the request, the attempts come from a capture of the client's SYNs. IPv6 delays hold every \
         packet the client sends to the IPv6 address (0–{} ms in {} ms steps). A trial stops after {} s.{}</p>",
        report.trial_set.cad_max_ms,
        report.trial_set.cad_step_ms,
        report.trial_timeout_ms / 1000,
        if report.partial {
            " <strong>This sweep was stopped early: some trials did not run.</strong>"
        } else {
            ""
        }
    );
    // Parameters, clients side by side.
    h.push_str("<table class=\"parameters\"><thead><tr><th></th>");
    for c in &report.clients {
        let _ = write!(h, "<th>{}</th>", escape(&c.client.name));
    }
    h.push_str("<th>RFC 8305</th></tr></thead><tbody>");
    let columns: Vec<_> = report.clients.iter().map(parameter_rows).collect();
    if let Some(first) = columns.first() {
        for (i, (label, _, rfc)) in first.iter().enumerate() {
            let _ = write!(h, "<tr><th>{}</th>", escape(label));
            for (c, column) in columns.iter().enumerate() {
                let value = column.get(i).map_or("—".to_string(), |r| r.1.clone());
                let class = if i == 0 {
                    match report.clients[c].verdict {
                        crate::analysis::Verdict::No { .. } => " class=\"no\"",
                        crate::analysis::Verdict::Yes { .. } | crate::analysis::Verdict::WhenNotSlowerThan { .. } => {
                            " class=\"yes\""
                        }
                        crate::analysis::Verdict::NotTestable { .. } => "",
                    }
                } else {
                    ""
                };
                let _ = write!(h, "<td{class}>{}</td>", escape(&value));
            }
            let _ = write!(h, "<td class=\"rfc\">{}</td></tr>", escape(rfc));
        }
    }
    h.push_str("</tbody></table>");
    h.push_str("<h2>Evidence</h2><ul>");
    for c in &report.clients {
        let _ = write!(
            h,
            "<li><strong>{}</strong> (<code>{}</code>): {}</li>",
            escape(&c.client.name),
            escape(&c.client.argv.join(" ")),
            escape(c.verdict.evidence())
        );
    }
    h.push_str("</ul><h2>Family used against IPv6 delay</h2>");
    for c in &report.clients {
        chart(&mut h, report, c);
    }
    h.push_str("<h2>Every trial</h2>");
    for c in &report.clients {
        trials(&mut h, c);
    }
    h.push_str("</body></html>\n");
    h
}

fn chart(h: &mut String, report: &Report, client: &crate::analysis::ClientReport) {
    let (width, left, right) = (760.0, 70.0, 20.0);
    let max = f64::from(report.trial_set.cad_max_ms.max(1));
    let x = |ms: f64| left + (width - left - right) * ms / max;
    let _ = write!(
        h,
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {width} 120\" role=\"img\" \
         aria-label=\"family used by {} against IPv6 delay\">",
        escape(&client.client.name),
        escape(&client.client.name)
    );
    for (label, y) in [("IPv6", 30.0), ("IPv4", 70.0), ("none", 95.0)] {
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"end\">{label}</text>\
             <line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/>",
            left - 8.0,
            y + 4.0,
            width - right
        );
    }
    let step = (report.trial_set.cad_max_ms / 8).max(1);
    let mut tick = 0;
    while tick <= report.trial_set.cad_max_ms {
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"115\" font-size=\"12\" text-anchor=\"middle\">{tick} ms</text>",
            x(f64::from(tick))
        );
        tick += step;
    }
    for o in &client.observations {
        let TrialKind::Cad { ipv6_delay_ms } = o.trial else {
            continue;
        };
        let (y, colour) = match o.family_used {
            Some(Family::Ipv6) => (30.0, "#1f6fb2"),
            Some(Family::Ipv4) => (70.0, "#d9822b"),
            None => (95.0, "#999"),
        };
        let used = family_text(o.family_used);
        let _ = write!(
            h,
            "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"4\" fill=\"{colour}\"><title>IPv6 +{ipv6_delay_ms} ms: {}</title></circle>",
            x(f64::from(ipv6_delay_ms)),
            used
        );
    }
    h.push_str("</svg></figure>");
}

fn family_text(family: Option<Family>) -> &'static str {
    match family {
        Some(Family::Ipv6) => "IPv6",
        Some(Family::Ipv4) => "IPv4",
        None => "no request",
    }
}

/// The evidence of each trial: the family used, when, and the attempts.
fn trials(h: &mut String, client: &crate::analysis::ClientReport) {
    let _ = write!(
        h,
        "<details><summary>{} ({} trials)</summary><table class=\"trials\"><thead><tr><th>trial</th><th>name</th>\
         <th>used</th><th>request at</th><th>attempts (ms after the first query)</th><th>client</th></tr></thead><tbody>",
        escape(&client.client.name),
        client.observations.len()
    );
    for o in &client.observations {
        let attempts: Vec<String> = o
            .attempts
            .iter()
            .map(|a| format!("{} at {:.1}", a.address, a.at_ms))
            .collect();
        let outcome = if o.timed_out {
            "stopped at the trial timeout".to_string()
        } else {
            match o.exit_code {
                Some(0) => "ok".to_string(),
                Some(code) => format!("exit {code}: {}", o.client_error),
                None => "killed".to_string(),
            }
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&o.trial.label()),
            escape(&o.name),
            family_text(o.family_used),
            o.request_ms.map_or("—".into(), |t| format!("{t:.1} ms")),
            escape(&attempts.join(", ")),
            escape(&outcome)
        );
    }
    h.push_str("</tbody></table></details>");
}
