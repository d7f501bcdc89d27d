//! The operator reporting interface: what carriers report per measurement
//! point (JSON or CSV), checked whole, and the national indicators as the
//! definitions state them — mobile IPv6 traffic share = (LTE + 5G IPv6) ÷
//! (LTE + 5G), fixed share from the metro egress — beside the same shares
//! from the carriers' flow collectors.

use crate::monthly::{month_first_day, month_label, parse_month, today};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use v6scope_store::{
    MeasurementPoint, OperatorFigure, OperatorFigureRow, Period, Store, StoreError, TrafficCounters, TrafficGroup,
    TrafficUnit,
};

/// A row as a carrier writes it (JSON object or CSV line). Traffic is
/// IPv6 and either IPv4 or the total, in `unit`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedRow {
    pub point: String,
    #[serde(default)]
    pub site: Option<String>,
    /// "YYYY-MM".
    pub period: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub ipv4_traffic: Option<f64>,
    #[serde(default)]
    pub ipv6_traffic: Option<f64>,
    #[serde(default)]
    pub total_traffic: Option<f64>,
    #[serde(default)]
    pub ipv6_active_connections: Option<i64>,
    #[serde(default)]
    pub ipv6_users: Option<i64>,
    #[serde(default)]
    pub users: Option<i64>,
    #[serde(default)]
    pub iot_ipv6_connections: Option<i64>,
}

/// The JSON body of a submission.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    pub rows: Vec<ReportedRow>,
}

/// What is wrong with one row (1-based: the CSV's line, the JSON array's index + 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub row: usize,
    pub error: String,
}

/// The CSV header, in the template's order.
pub const CSV_COLUMNS: [&str; 11] = [
    "point",
    "site",
    "period",
    "unit",
    "ipv4_traffic",
    "ipv6_traffic",
    "total_traffic",
    "ipv6_active_connections",
    "ipv6_users",
    "users",
    "iot_ipv6_connections",
];

/// Most rows one submission may hold.
pub const MAX_ROWS: usize = 10_000;
/// Sanity bounds: beyond them a figure is a typo or a unit mix-up.
const MAX_GBPS: f64 = 1.0e6;
const MAX_BYTES: f64 = 1.0e22;
const MAX_COUNT: i64 = 100_000_000_000;

/// The downloadable template: the header and one example row per point.
pub fn csv_template() -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    out.push_str("mobile-lte,,2026-11,gbps,,5200.5,9100,,,,\n");
    out.push_str("mobile-5g,,2026-11,gbps,,4100,5600,,,,\n");
    out.push_str("metro-egress,beijing,2026-11,gbps,6100,1900,,52000000,61000000,80000000,12000000\n");
    out
}

/// Reads a CSV submission; a line that does not parse is an error of that line.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, ReportedRow)>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| {
            vec![RowError {
                row: 1,
                error: format!("header: {e}"),
            }]
        })?
        .clone();
    let unknown: Vec<&str> = header.iter().filter(|h| !CSV_COLUMNS.contains(h)).collect();
    if !unknown.is_empty() || !header.iter().any(|h| h == "point") || !header.iter().any(|h| h == "period") {
        return Err(vec![RowError {
            row: 1,
            error: format!(
                "header: columns are {} (point and period required); unknown: {}",
                CSV_COLUMNS.join(", "),
                unknown.join(", ")
            ),
        }]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    // Rows are numbered as a spreadsheet shows them: the header is row 1.
    // (The csv crate's line positions are off by one after CRLF line ends,
    // which browsers send.)
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        match record {
            Ok(r) => match r.deserialize::<ReportedRow>(Some(&header)) {
                Ok(row) => rows.push((line, row)),
                Err(e) => errors.push(RowError {
                    row: line,
                    error: e.to_string(),
                }),
            },
            Err(e) => errors.push(RowError {
                row: line,
                error: e.to_string(),
            }),
        }
        if rows.len() + errors.len() > MAX_ROWS {
            return Err(vec![RowError {
                row: 0,
                error: format!("more than {MAX_ROWS} rows"),
            }]);
        }
    }
    if errors.is_empty() { Ok(rows) } else { Err(errors) }
}

/// Seconds in a month ("YYYY-MM").
fn month_seconds(month: i64) -> f64 {
    ((month_first_day(month + 1) - month_first_day(month)) * 86_400) as f64
}

/// Checks every row, whole: units, periods, ranges (IPv6 ≤ total), known
/// points and duplicate keys. Either every row is good, or every bad row
/// is named.
pub fn validate(rows: &[(usize, ReportedRow)]) -> Result<Vec<OperatorFigure>, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut figures = Vec::new();
    let mut seen: BTreeMap<(MeasurementPoint, String, String), usize> = BTreeMap::new();
    if rows.is_empty() {
        return Err(vec![RowError {
            row: 0,
            error: "no rows".into(),
        }]);
    }
    if rows.len() > MAX_ROWS {
        return Err(vec![RowError {
            row: 0,
            error: format!("more than {MAX_ROWS} rows"),
        }]);
    }
    let this_year = 1970 + today() / 365;
    for (line, r) in rows {
        let mut bad = |error: String| errors.push(RowError { row: *line, error });
        let point = match r.point.parse::<MeasurementPoint>() {
            Ok(p) => p,
            Err(e) => {
                bad(e);
                continue;
            }
        };
        let site = r.site.clone().unwrap_or_default();
        if site.len() > 64
            || !site
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            bad(format!(
                "site '{}': up to 64 ASCII letters, digits, '-', '_' or '.'",
                site.chars().take(64).collect::<String>()
            ));
            continue;
        }
        let Some(month) = parse_month(&r.period).filter(|m| (2000 * 12..(this_year + 2) * 12).contains(m)) else {
            bad(format!(
                "period '{}': a month as YYYY-MM",
                r.period.chars().take(20).collect::<String>()
            ));
            continue;
        };
        let period = month_label(month);
        if let Some(first) = seen.insert((point, site.clone(), period.clone()), *line) {
            bad(format!(
                "{} {site} {period} is also in row {first}: one row per point, site and period",
                point.as_str()
            ));
            continue;
        }
        let traffic_given = r.ipv4_traffic.is_some() || r.ipv6_traffic.is_some() || r.total_traffic.is_some();
        let mut figure = OperatorFigure {
            point,
            site,
            period,
            unit: TrafficUnit::Bytes,
            ipv4_value: None,
            ipv6_value: None,
            ipv4_bytes: None,
            ipv6_bytes: None,
            active_connections: r.ipv6_active_connections,
            ipv6_users: r.ipv6_users,
            users: r.users,
            iot_connections: r.iot_ipv6_connections,
        };
        if traffic_given {
            let unit = match r.unit.as_deref().map(str::parse::<TrafficUnit>) {
                Some(Ok(u)) => u,
                Some(Err(e)) => {
                    bad(e);
                    continue;
                }
                None => {
                    bad("traffic needs a unit: gbps (average over the period) or bytes (in the period)".into());
                    continue;
                }
            };
            let limit = match unit {
                TrafficUnit::Gbps => MAX_GBPS,
                TrafficUnit::Bytes => MAX_BYTES,
            };
            let Some(ipv6) = r.ipv6_traffic else {
                bad("ipv6_traffic is missing".into());
                continue;
            };
            let ipv4 = match (r.ipv4_traffic, r.total_traffic) {
                (Some(v4), None) => v4,
                (None, Some(total)) => total - ipv6,
                _ => {
                    bad("give ipv4_traffic or total_traffic, one of them".into());
                    continue;
                }
            };
            let values = [Some(ipv6), r.ipv4_traffic, r.total_traffic];
            if values
                .iter()
                .flatten()
                .any(|v| !v.is_finite() || *v < 0.0 || *v > limit)
            {
                bad(format!("traffic must be between 0 and {limit:e} {}", unit.as_str()));
                continue;
            }
            if ipv4 < 0.0 {
                bad(format!(
                    "ipv6_traffic {ipv6} is more than total_traffic {}",
                    ipv6 + ipv4
                ));
                continue;
            }
            let to_bytes = match unit {
                TrafficUnit::Gbps => month_seconds(month) * 1.0e9 / 8.0,
                TrafficUnit::Bytes => 1.0,
            };
            figure.unit = unit;
            figure.ipv4_value = Some(ipv4);
            figure.ipv6_value = Some(ipv6);
            figure.ipv4_bytes = Some(ipv4 * to_bytes);
            figure.ipv6_bytes = Some(ipv6 * to_bytes);
        }
        let counts = [
            ("ipv6_active_connections", r.ipv6_active_connections),
            ("ipv6_users", r.ipv6_users),
            ("users", r.users),
            ("iot_ipv6_connections", r.iot_ipv6_connections),
        ];
        if let Some((name, _)) = counts
            .iter()
            .find(|(_, v)| v.is_some_and(|v| !(0..=MAX_COUNT).contains(&v)))
        {
            bad(format!("{name} must be between 0 and {MAX_COUNT}"));
            continue;
        }
        if let (Some(v6), Some(all)) = (r.ipv6_users, r.users)
            && v6 > all
        {
            bad(format!("ipv6_users {v6} is more than users {all}"));
            continue;
        }
        if !traffic_given && counts.iter().all(|(_, v)| v.is_none()) {
            bad("the row has no figure".into());
            continue;
        }
        figures.push(figure);
    }
    if errors.is_empty() { Ok(figures) } else { Err(errors) }
}

/// IPv6 and all bytes, and their share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Share {
    pub ipv6_bytes: f64,
    pub all_bytes: f64,
    pub share: Option<f64>,
}

impl Share {
    fn add(&mut self, ipv6: f64, ipv4: f64) {
        self.ipv6_bytes += ipv6;
        self.all_bytes += ipv6 + ipv4;
        self.share = (self.all_bytes > 0.0).then(|| self.ipv6_bytes / self.all_bytes);
    }
}

/// One operator's (or the nation's) figures for a month.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OperatorMonth {
    /// The operator, or "" for the national sum.
    pub operator: String,
    pub period: String,
    /// (LTE + 5G IPv6) ÷ (LTE + 5G), reported.
    pub mobile: Share,
    /// Metro egress, reported.
    pub fixed: Share,
    pub backbone: Share,
    pub international: Share,
    /// The same shares from the operator's flow collectors at those points.
    pub mobile_flows: Share,
    pub fixed_flows: Share,
    pub ipv6_active_connections: Option<i64>,
    pub ipv6_users: Option<i64>,
    pub users: Option<i64>,
    pub iot_ipv6_connections: Option<i64>,
    /// The newest submission among the rows counted, and the highest version.
    pub latest_submission: Option<i64>,
    pub latest_submitted_at: Option<String>,
    pub max_version: i64,
}

fn add_count(into: &mut Option<i64>, value: Option<i64>) {
    if let Some(v) = value {
        *into = Some(into.unwrap_or(0) + v);
    }
}

/// The latest version of each (operator, point, site, period).
pub fn latest(rows: &[OperatorFigureRow]) -> Vec<&OperatorFigureRow> {
    let mut newest: BTreeMap<(&str, MeasurementPoint, &str, &str), &OperatorFigureRow> = BTreeMap::new();
    for r in rows {
        let key = (
            r.operator.as_str(),
            r.figure.point,
            r.figure.site.as_str(),
            r.figure.period.as_str(),
        );
        match newest.get(&key) {
            Some(old) if old.version >= r.version => {}
            _ => {
                newest.insert(key, r);
            }
        }
    }
    newest.into_values().collect()
}

/// Per operator and month, and nationally (operator ""), from the latest
/// versions of the reported rows in [first, last] and the flow collectors.
pub fn indicators(
    store: &dyn Store,
    traffic: &dyn TrafficCounters,
    first: &str,
    last: &str,
) -> Result<Vec<OperatorMonth>, StoreError> {
    let rows = store.operator_figures(first, last)?;
    let mut months: BTreeMap<(String, String), OperatorMonth> = BTreeMap::new();
    let entry = |operator: &str, period: &str| -> Vec<(String, String)> {
        vec![
            (operator.to_string(), period.to_string()),
            (String::new(), period.to_string()),
        ]
    };
    for r in latest(&rows) {
        let f = &r.figure;
        for key in entry(&r.operator, &f.period) {
            let m = months.entry(key.clone()).or_insert_with(|| OperatorMonth {
                operator: key.0.clone(),
                period: key.1.clone(),
                ..Default::default()
            });
            if let (Some(v6), Some(v4)) = (f.ipv6_bytes, f.ipv4_bytes) {
                let share = match f.point {
                    MeasurementPoint::MobileLte | MeasurementPoint::Mobile5g => &mut m.mobile,
                    MeasurementPoint::MetroEgress => &mut m.fixed,
                    MeasurementPoint::BackboneExchange => &mut m.backbone,
                    MeasurementPoint::InternationalGateway => &mut m.international,
                };
                share.add(v6, v4);
            }
            add_count(&mut m.ipv6_active_connections, f.active_connections);
            add_count(&mut m.ipv6_users, f.ipv6_users);
            add_count(&mut m.users, f.users);
            add_count(&mut m.iot_ipv6_connections, f.iot_connections);
            if m.latest_submission.is_none_or(|s| s < r.submission) {
                m.latest_submission = Some(r.submission);
                m.latest_submitted_at = Some(r.submitted_at.clone());
            }
            m.max_version = m.max_version.max(r.version);
        }
    }
    // Flow collectors at a mobile or metro point, by their stored source.
    let points: BTreeMap<String, (String, MeasurementPoint)> = store
        .collectors()?
        .into_iter()
        .filter_map(|c| Some((format!("collector:{}", c.name), (c.operator, c.point?))))
        .collect();
    if !points.is_empty() {
        let mut bytes: BTreeMap<(String, String), [f64; 2]> = BTreeMap::new();
        for t in traffic.traffic_by(Period::Month, Some(TrafficGroup::Source))? {
            if t.period.as_str() < first || t.period.as_str() > last {
                continue;
            }
            if points.contains_key(&t.group) {
                bytes.entry((t.group.clone(), t.period.clone())).or_default()
                    [usize::from(t.family == v6scope_model::Family::Ipv6)] += t.bytes as f64;
            }
        }
        for ((source, period), [v4, v6]) in bytes {
            let (operator, point) = &points[&source];
            for key in entry(operator, &period) {
                let m = months.entry(key.clone()).or_insert_with(|| OperatorMonth {
                    operator: key.0.clone(),
                    period: key.1.clone(),
                    ..Default::default()
                });
                match point {
                    p if p.is_mobile() => m.mobile_flows.add(v6, v4),
                    MeasurementPoint::MetroEgress => m.fixed_flows.add(v6, v4),
                    _ => {}
                }
            }
        }
    }
    Ok(months.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(point: &str, period: &str) -> ReportedRow {
        ReportedRow {
            point: point.into(),
            period: period.into(),
            unit: Some("gbps".into()),
            ipv6_traffic: Some(60.0),
            total_traffic: Some(100.0),
            ..Default::default()
        }
    }

    #[test]
    fn csv_template_parses_and_validates() {
        let rows = parse_csv(&csv_template()).unwrap();
        let figures = validate(&rows).unwrap();
        assert_eq!(figures.len(), 3);
        // 5200.5 Gbps of 9100 for November's 30 days.
        let lte = &figures[0];
        assert_eq!(lte.point, MeasurementPoint::MobileLte);
        assert_eq!(lte.ipv6_bytes, Some(5200.5 * 30.0 * 86_400.0 * 1.0e9 / 8.0));
        assert_eq!(lte.ipv4_value, Some(9100.0 - 5200.5));
    }

    #[test]
    fn every_bad_row_is_named_and_nothing_passes() {
        let text = "point,period,unit,ipv6_traffic,total_traffic,ipv6_users,users\n\
                    mobile-lte,2026-11,gbps,60,100,,\n\
                    mobile-6g,2026-11,gbps,60,100,,\n\
                    mobile-lte,2026-11,gbps,10,20,,\n\
                    metro-egress,2026-13,gbps,1,2,,\n\
                    metro-egress,2026-10,furlongs,1,2,,\n\
                    metro-egress,2026-09,gbps,3,2,,\n\
                    metro-egress,2026-08,gbps,abc,2,,\n\
                    metro-egress,2026-07,,,,9,5\n";
        let rows = parse_csv(text);
        let errors = rows.unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].row, 8);
        let text = text.replace("abc", "1");
        let errors = validate(&parse_csv(&text).unwrap()).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.row).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 9], "{errors:?}");
        assert!(errors[0].error.contains("unknown measurement point 'mobile-6g'"));
        assert!(errors[1].error.contains("also in row 2"));
        assert!(errors[2].error.contains("period '2026-13'"));
        assert!(errors[3].error.contains("furlongs"));
        assert!(errors[4].error.contains("more than total_traffic"));
        assert!(errors[5].error.contains("ipv6_users 9 is more than users 5"));
    }

    #[test]
    fn rows_are_numbered_alike_with_crlf_line_ends() {
        let text = "point,period,unit,ipv6_traffic,total_traffic\r\nmobile-lte,2026-11,gbps,70,100\r\nmobile-9g,2026-11,gbps,1,2\r\n";
        let errors = validate(&parse_csv(text).unwrap()).unwrap_err();
        assert_eq!(errors[0].row, 3, "{errors:?}");
    }

    #[test]
    fn json_rows_check_the_same() {
        let good = vec![(1, row("mobile-5g", "2026-11")), (2, row("metro-egress", "2026-11"))];
        assert!(validate(&good).is_ok());
        let mut neither = row("mobile-5g", "2026-11");
        neither.total_traffic = None;
        assert!(
            validate(&[(1, neither)]).unwrap_err()[0]
                .error
                .contains("ipv4_traffic or total_traffic")
        );
        let mut negative = row("mobile-5g", "2026-11");
        negative.ipv6_traffic = Some(-1.0);
        assert!(validate(&[(1, negative)]).is_err());
        let mut nan = row("mobile-5g", "2026-11");
        nan.ipv6_traffic = Some(f64::NAN);
        assert!(validate(&[(1, nan)]).is_err());
        assert!(validate(&[]).is_err());
        assert!(
            serde_json::from_str::<Submission>(r#"{"rows":[{"point":"mobile-5g","period":"2026-11","x":1}]}"#).is_err()
        );
    }
}
