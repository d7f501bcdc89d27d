//! Real devices' export datagrams (the logstash codec fixtures: 51 captures
//! from about 30 devices, in `../shared/reference/flow-captures/`) decode to
//! the exporters' own counters in `truth.tsv` (every record, unscaled, both
//! directions): IPv4 and IPv6 bytes and packets, scenario by scenario.
//!
//! The captures are read where they live, never copied into the project:
//! `$V6SCOPE_FLOW_CAPTURES`, else `../shared/reference/flow-captures` beside
//! the checkout, else `/work/shared/reference/flow-captures`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use v6scope_flow::aggregate::{Aggregator, SamplingPolicy};
use v6scope_flow::enrich::PrefixTable;
use v6scope_flow::{Decoders, Family};

fn captures_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("V6SCOPE_FLOW_CAPTURES").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/flow-captures")),
        Some(PathBuf::from("/work/shared/reference/flow-captures")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("truth.tsv").exists())
        .unwrap_or_else(|| {
            panic!(
                "the real exporter captures are missing: set V6SCOPE_FLOW_CAPTURES to the folder holding \
                 truth.tsv (shared/reference/flow-captures beside the checkout)"
            )
        })
}

fn datagrams(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    v6scope_flow::split_datagrams(&bytes)
        .0
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// "1,117 / 12" → (1117, 12); "0" → (0, 0).
fn pair(cell: &str) -> (u64, u64) {
    let nums: Vec<u64> = cell
        .split('/')
        .map(|p| p.trim().replace(',', "").parse().unwrap_or(0))
        .collect();
    (nums.first().copied().unwrap_or(0), nums.get(1).copied().unwrap_or(0))
}

/// [IPv4 bytes, IPv4 packets, IPv6 bytes, IPv6 packets], every record at
/// rate 1, both directions, and the records dropped.
fn decode(dir: &Path, scenario: &str) -> ([u64; 4], u64) {
    let exporter: IpAddr = "192.0.2.1".parse().unwrap();
    let one = SamplingPolicy {
        defaults: vec![],
        overrides: vec![("0.0.0.0/0".parse().unwrap(), 1), ("::/0".parse().unwrap(), 1)],
    };
    let mut decoders = Decoders::default();
    let mut agg = Aggregator::new(60, one, Arc::new(PrefixTable::default()));
    agg.count_egress = true;
    let mut records = Vec::new();
    // Export times in the captures are years old: judge them at their own time.
    let now = 1_500_000_000;
    for d in datagrams(&dir.join(format!("{scenario}.bin"))) {
        decoders.decode(exporter, &d, now, &mut records);
    }
    if std::env::var("V6SCOPE_DEBUG_CAPTURE").as_deref() == Ok(scenario) {
        eprintln!("{scenario}: {records:?}\n{:?}", decoders.netflow.stats);
    }
    for r in &records {
        agg.add(r);
    }
    let totals = agg.totals();
    let get = |f: Family| totals.get(&f).copied().unwrap_or_default();
    (
        [
            get(Family::Ipv4).bytes,
            get(Family::Ipv4).packets,
            get(Family::Ipv6).bytes,
            get(Family::Ipv6).packets,
        ],
        decoders.netflow.stats.dropped() + decoders.sflow.stats.dropped(),
    )
}

#[test]
fn every_real_exporter_capture_decodes_to_its_own_counters() {
    let dir = captures_dir();
    let truth = std::fs::read_to_string(dir.join("truth.tsv")).unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in truth.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 10 {
            continue;
        }
        let scenario = cols[0];
        // Where tshark is wrong ("= nfdump": it stops at the header's
        // count), the expected figures are nfdump's, which v6scope at
        // ce017b4 already equalled (columns 8 and 9).
        let (v4, v6) = if cols[9].starts_with("= nfdump") {
            (pair(cols[7]), pair(cols[8]))
        } else {
            (pair(cols[4]), pair(cols[5]))
        };
        let expected = [v4.0, v4.1, v6.0, v6.1];
        let (got, dropped) = decode(&dir, scenario);
        checked += 1;
        if cols[9].starts_with("n/a") {
            // Invalid on purpose: rejected and counted, nothing summed.
            if got != [0; 4] || dropped == 0 {
                wrong.push(format!("{scenario}: invalid input summed {got:?} (dropped {dropped})"));
            }
            continue;
        }
        if got != expected {
            wrong.push(format!(
                "{scenario} ({}): expected v4 {}/{} v6 {}/{}, got v4 {}/{} v6 {}/{}",
                cols[2], expected[0], expected[1], expected[2], expected[3], got[0], got[1], got[2], got[3]
            ));
        }
    }
    assert!(checked >= 51, "only {checked} scenarios in truth.tsv");
    assert!(
        wrong.is_empty(),
        "{} of {checked} captures differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
