//! `traffic` and `users`: the passive indicators from the store.

use super::*;
use v6scope_store::{Period, TrafficGroup};

#[derive(Args)]
pub(crate) struct UsersArgs {
    /// Window length in days ending with --until (1 = one day, 30 = the
    /// rolling 30 days).
    #[arg(long, default_value_t = 30)]
    pub(crate) days: u32,
    /// Last day of the window, YYYY-MM-DD (UTC); default: the latest stored day.
    #[arg(long, value_name = "DAY")]
    pub(crate) until: Option<String>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// JSON output.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct TrafficArgs {
    /// minute, hour, day or month.
    #[arg(long, default_value = "day")]
    pub(crate) by: String,
    /// Also per exporter, interface, asn, organisation, region or source.
    #[arg(long, value_name = "DIMENSION")]
    pub(crate) group: Option<String>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// JSON Lines output.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn users(args: UsersArgs) -> Result<ExitCode> {
    use v6scope_flow::aggregate::{day_of, day_start};
    use v6scope_flow::users::Sketch;
    let store = args.store.open_existing()?;
    let until = match &args.until {
        Some(day) => day.clone(),
        None => match store.sketches("0000-00-00", "9999-99-99", "subscribers")?.last() {
            Some(row) => row.day.clone(),
            None => bail!(usage("the store holds no user sketches (run v6scope collect)")),
        },
    };
    let end = day_start(&until).ok_or_else(|| usage(format!("--until {until}: expected YYYY-MM-DD")))?;
    let first = day_of(end.saturating_sub(u64::from(args.days.max(1) - 1) * 86_400));
    // Per organisation, and all organisations together ("").
    let mut merged: BTreeMap<(String, &str), Sketch> = BTreeMap::new();
    for kind in ["subscribers", "addresses"] {
        for row in v6scope_report::monthly::sketches_per_organisation(&*store, &first, &until, kind)? {
            let (day, organisation) = (&row.day, row.organisation);
            let sketch =
                Sketch::from_bytes(&row.sketch).with_context(|| format!("sketch {day} {organisation} {kind}"))?;
            for key in [organisation.clone(), "(all)".to_string()] {
                merged.entry((key, kind)).or_default().merge(&sketch)?;
            }
        }
    }
    let mut rows: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for ((organisation, kind), sketch) in &merged {
        rows.entry(organisation.clone()).or_default()[usize::from(*kind == "addresses")] = sketch.count();
    }
    // Pushed by carriers' collectors: per operator (each operator's
    // subscribers once, however many of its collectors saw them).
    let mut operators: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for (slot, kind) in ["operator-subscribers", "operator-addresses"].into_iter().enumerate() {
        let mut per: BTreeMap<String, Sketch> = BTreeMap::new();
        for row in v6scope_report::monthly::sketches_per_organisation(&*store, &first, &until, kind)? {
            let sketch = Sketch::from_bytes(&row.sketch).with_context(|| format!("sketch {} {kind}", row.day))?;
            per.entry(row.organisation).or_default().merge(&sketch)?;
        }
        for (operator, sketch) in per {
            operators.entry(operator).or_default()[slot] = sketch.count();
        }
    }
    if args.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(o, [s, a])| serde_json::json!({"organisation": o, "subscribers": s, "addresses": a}))
            .collect();
        let by_operator: Vec<serde_json::Value> = operators
            .iter()
            .map(|(o, [s, a])| serde_json::json!({"operator": o, "subscribers": s, "addresses": a}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"first_day": first, "last_day": until, "days": args.days, "organisations": list,
                "operators": by_operator})
        );
    } else {
        println!("active IPv6 users {first} .. {until} ({} day(s))", args.days);
        println!("{:<32}  {:>12}  {:>12}", "organisation", "subscribers", "addresses");
        for (o, [s, a]) in &rows {
            println!(
                "{:<32}  {s:>12}  {a:>12}",
                if o.is_empty() { "(no organisation)" } else { o }
            );
        }
        for (o, [s, a]) in &operators {
            println!("{:<32}  {s:>12}  {a:>12}", format!("operator {o}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn traffic(args: TrafficArgs) -> Result<ExitCode> {
    if !matches!(args.by.as_str(), "minute" | "hour" | "day" | "month") {
        bail!(usage(format!("--by {}: minute, hour, day or month", args.by)));
    }
    let period = Period::parse(&args.by);
    let group_by = match args.group.as_deref() {
        None => None,
        Some(g) => Some(TrafficGroup::parse(g).ok_or_else(|| {
            usage(format!(
                "--group {g}: exporter, interface, asn, organisation, region or source"
            ))
        })?),
    };
    let opened = args.store.open_existing()?;
    let clickhouse = args.store.open_traffic()?;
    let store: &dyn v6scope_store::TrafficCounters = match &clickhouse {
        Some(ch) => ch,
        None => &*opened,
    };
    // (period, group) → [IPv4, IPv6] (bytes, packets, records).
    type Counts = [(i64, i64, i64); 2];
    let mut periods: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for t in store.traffic_by(period, group_by)? {
        let slot = usize::from(t.family == v6scope_model::Family::Ipv6);
        periods.entry((t.period, t.group)).or_default()[slot] = (t.bytes, t.packets, t.records);
    }
    let group = args.group.as_deref().unwrap_or("");
    if !args.json {
        println!(
            "{:<16}  {:<24}  {:>16}  {:>16}  {:>9}  {:>14}  {:>14}",
            args.by, group, "IPv4 bytes", "IPv6 bytes", "IPv6 %", "IPv4 packets", "IPv6 packets"
        );
    }
    for ((period, value), [v4, v6]) in &periods {
        let share = if v4.0 + v6.0 > 0 {
            v6.0 as f64 * 100.0 / (v4.0 + v6.0) as f64
        } else {
            0.0
        };
        if args.json {
            let mut row = serde_json::json!({"period": period, "ipv4_bytes": v4.0, "ipv6_bytes": v6.0,
                "ipv4_packets": v4.1, "ipv6_packets": v6.1, "ipv4_records": v4.2, "ipv6_records": v6.2,
                "ipv6_byte_share": (share * 100.0).round() / 10_000.0});
            if !group.is_empty() {
                row[group] = serde_json::json!(value);
            }
            println!("{row}");
        } else {
            println!(
                "{period:<16}  {value:<24}  {:>16}  {:>16}  {share:>8.2}%  {:>14}  {:>14}",
                v4.0, v6.0, v4.1, v6.1
            );
        }
    }
    // Records no rate was given for: an IPv6 share per exporter (the rate,
    // whatever it is, is the same for both families), never a volume.
    let mut waiting: BTreeMap<(String, String), [i64; 4]> = BTreeMap::new();
    for t in store.traffic_unscaled(period)? {
        let at = if t.family == v6scope_model::Family::Ipv6 { 2 } else { 0 };
        let e = waiting.entry((t.period, t.group)).or_default();
        e[at] += t.bytes;
        e[at + 1] += t.records;
    }
    if !waiting.is_empty() {
        let records: i64 = waiting.values().map(|c| c[1] + c[3]).sum();
        eprintln!(
            "note: {records} records wait for a sampling rate (their exporters state none): shown below as IPv6 shares \
             per exporter, unscaled, with no volume; give the rate with --sampling-default PREFIX=N (or \
             --sampling-override) when collecting"
        );
        if !args.json {
            println!("\nunscaled (sampling rate unknown)");
            println!(
                "{:<16}  {:<24}  {:>10}  {:>10}  {:>9}",
                args.by, "exporter", "IPv4 recs", "IPv6 recs", "IPv6 %"
            );
        }
        for ((period, exporter), c) in &waiting {
            let share = if c[0] + c[2] > 0 {
                c[2] as f64 * 100.0 / (c[0] + c[2]) as f64
            } else {
                0.0
            };
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"period": period, "exporter": exporter, "scaled": false,
                        "ipv4_records": c[1], "ipv6_records": c[3],
                        "ipv6_byte_share": (share * 100.0).round() / 10_000.0})
                );
            } else {
                println!(
                    "{period:<16}  {exporter:<24}  {:>10}  {:>10}  {share:>8.2}%",
                    c[1], c[3]
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
