//! Targets files: one domain per line, or CSV `domain,category,organisation,region`
//! with a header. Bad lines are reported with their line numbers and skipped.

use crate::Target;
use std::collections::HashSet;

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub targets: Vec<Target>,
    pub bad: Vec<BadLine>,
    pub duplicates: usize,
}

/// Normalises a domain: IDN to punycode, lower case, no trailing dot, and
/// checks the DNS length and label rules.
pub fn normalise_domain(input: &str) -> Result<String, String> {
    let trimmed = input.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err("empty domain".into());
    }
    if trimmed.contains("://") || trimmed.contains('/') {
        return Err(format!("'{trimmed}' is a URL, not a domain"));
    }
    if trimmed.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("'{trimmed}' is an address, not a domain"));
    }
    let ascii = idna::domain_to_ascii(trimmed)
        .map_err(|_| format!("'{trimmed}' is not a valid internationalised domain name"))?;
    if ascii.len() > 253 {
        return Err(format!("domain longer than 253 characters ({})", ascii.len()));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("'{ascii}' has a single label; give a registered domain"));
    }
    // A top-level label is never all digits (RFC 3696 §2): "1.2" is a number.
    if labels
        .last()
        .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("'{ascii}' ends in an all-numeric label; it is not a domain"));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("'{ascii}' has an empty label or one over 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("'{ascii}' has characters not allowed in a host name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("'{ascii}': a label starts or ends with '-'"));
        }
    }
    Ok(ascii)
}

/// Parses a targets file's text. CSV is recognised by its header line
/// (first non-comment line containing a comma and a `domain` column).
pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut seen = HashSet::new();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    // A CSV header of the one column `domain` has no comma.
    if first.contains(',') || first.eq_ignore_ascii_case("domain") {
        parse_csv(text, &mut parsed, &mut seen);
    } else {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            push(&mut parsed, &mut seen, i + 1, line, None, None, None);
        }
    }
    parsed
}

fn push(
    parsed: &mut Parsed,
    seen: &mut HashSet<String>,
    line: usize,
    domain: &str,
    category: Option<String>,
    organisation: Option<String>,
    region: Option<String>,
) {
    match normalise_domain(domain) {
        Ok(domain) => {
            if seen.insert(domain.clone()) {
                parsed.targets.push(Target {
                    domain,
                    category,
                    organisation,
                    region,
                });
            } else {
                parsed.duplicates += 1;
            }
        }
        Err(reason) => parsed.bad.push(BadLine { line, reason }),
    }
}

/// Control characters, and the bidirectional overrides and isolates that
/// make a name display other than it is ("Trojan Source"), are refused in
/// every field: labels are shown on pages and in reports.
fn hidden_control(field: &str) -> Option<String> {
    let c = field.chars().find(|&c| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })?;
    Some(format!(
        "the field '{}' holds the invisible control character U+{:04X}",
        field.escape_default(),
        c as u32
    ))
}

fn parse_csv(text: &str, parsed: &mut Parsed, seen: &mut HashSet<String>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => {
            parsed.bad.push(BadLine {
                line: 1,
                reason: format!("unreadable CSV header: {e}"),
            });
            return;
        }
    };
    let column = |name: &str| headers.iter().position(|h| h == name);
    let Some(domain_col) = column("domain") else {
        parsed.bad.push(BadLine {
            line: 1,
            reason: "CSV header must name a 'domain' column (domain,category,organisation,region)".into(),
        });
        return;
    };
    let (cat, org, reg) = (
        column("category"),
        column("organisation").or(column("organization")),
        column("region"),
    );
    for record in reader.records() {
        match record {
            Ok(rec) => {
                let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
                let field = |c: Option<usize>| c.and_then(|i| rec.get(i)).filter(|s| !s.is_empty()).map(str::to_string);
                if let Some(bad) = rec.iter().find_map(hidden_control) {
                    parsed.bad.push(BadLine { line, reason: bad });
                    continue;
                }
                match rec.get(domain_col) {
                    Some(d) if !d.is_empty() => push(parsed, seen, line, d, field(cat), field(org), field(reg)),
                    _ => parsed.bad.push(BadLine {
                        line,
                        reason: "no domain in this row".into(),
                    }),
                }
            }
            Err(e) => parsed.bad.push(BadLine {
                line: e.position().map(|p| p.line() as usize).unwrap_or(0),
                reason: format!("bad CSV row: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_list_with_bad_lines() {
        let parsed =
            parse("# comment\nexample.com\n\nbad..name\nhttp://x.com/\nEXAMPLE.com.\n政府.中国\nlocalhost\n-a.com\n");
        let domains: Vec<&str> = parsed.targets.iter().map(|t| t.domain.as_str()).collect();
        assert_eq!(domains, vec!["example.com", "xn--mxtq1m.xn--fiqs8s"]);
        assert_eq!(parsed.duplicates, 1);
        let lines: Vec<usize> = parsed.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![4, 5, 8, 9]);
        assert!(parse("1.5\n").targets.is_empty());
        assert!(parse("10.0.0\n").targets.is_empty());
    }

    #[test]
    fn csv_with_header() {
        let parsed = parse(
            "domain,category,organisation,region\ngov.example.cn,government,State Council,Beijing\n,x,y,z\nbank.test,finance,,\n",
        );
        assert_eq!(parsed.targets.len(), 2);
        assert_eq!(parsed.targets[0].category.as_deref(), Some("government"));
        assert_eq!(parsed.targets[0].region.as_deref(), Some("Beijing"));
        assert_eq!(parsed.targets[1].organisation, None);
        assert_eq!(parsed.bad.len(), 1);
        assert_eq!(parsed.bad[0].line, 3);
    }

    #[test]
    fn csv_without_domain_header_is_reported() {
        let parsed = parse("a.com,b\nc.com,d\n");
        assert!(parsed.targets.is_empty());
        assert_eq!(parsed.bad[0].line, 1);
    }

    #[test]
    fn a_header_of_domain_alone_is_a_header() {
        let parsed = parse("domain\na.example.com\nb.example.com\n");
        assert!(parsed.bad.is_empty(), "{:?}", parsed.bad);
        assert_eq!(parsed.targets.len(), 2);
        let parsed = parse("Domain\r\na.example.com\r\n");
        assert_eq!((parsed.targets.len(), parsed.bad.len()), (1, 0));
    }

    #[test]
    fn bidirectional_controls_are_refused_with_their_line() {
        let parsed = parse(
            "domain,category,organisation,region\na.example.com,gov,\u{202e}lanigiro,x\nb.example.com,gov,Org\u{2066},y\nc.example.com,gov,Ministry,z\n",
        );
        assert_eq!(parsed.targets.len(), 1);
        let lines: Vec<usize> = parsed.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![2, 3]);
        assert!(parsed.bad[0].reason.contains("U+202E"), "{}", parsed.bad[0].reason);
    }

    #[test]
    fn binary_garbage_does_not_panic() {
        let garbage: String = (0..2000u32).filter_map(char::from_u32).collect();
        let _ = parse(&garbage);
        let _ = parse("\u{0}\u{1},\n\"unterminated");
    }
}
