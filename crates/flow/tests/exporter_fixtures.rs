//! Datagrams captured from real exporters (softflowd, pmacct's nfprobe and
//! sfprobe, nfdump's nfreplay) replaying lab/flows' mix.pcap; see
//! testdata/README.md. Decoded totals must equal the capture's ground
//! truth where the exporter carries everything, and what nfdump and
//! nfacctd decoded from the same datagrams; records whose sampling rate
//! nobody states are set apart, never scaled by 1.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use v6scope_flow::aggregate::{Aggregator, SamplingPolicy};
use v6scope_flow::enrich::PrefixTable;
use v6scope_flow::{Decoders, Family};

fn datagrams(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    v6scope_flow::split_datagrams(&bytes)
        .0
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// [ipv4 bytes, ipv4 packets, ipv6 bytes, ipv6 packets]: (scaled, not scaled).
fn decode(file: &str, policy: SamplingPolicy) -> ([u64; 4], [u64; 4]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let exporter: IpAddr = "127.0.0.1".parse().unwrap();
    let mut decoders = Decoders::default();
    let mut agg = Aggregator::new(60, policy, Arc::new(PrefixTable::default()));
    // softflowd marks the reverse half of each conversation egress: every
    // packet of a capture is seen once, so both halves count.
    agg.count_egress = true;
    let mut records = Vec::new();
    for d in datagrams(&dir.join(file)) {
        decoders.decode(exporter, &d, 1_768_464_300, &mut records);
    }
    assert_eq!(
        decoders.netflow.stats.dropped() + decoders.sflow.stats.dropped(),
        0,
        "{file}"
    );
    for r in &records {
        agg.add(r);
    }
    let totals = agg.totals();
    let get = |f: Family| totals.get(&f).copied().unwrap_or_default();
    let scaled = [
        get(Family::Ipv4).bytes,
        get(Family::Ipv4).packets,
        get(Family::Ipv6).bytes,
        get(Family::Ipv6).packets,
    ];
    let mut unscaled = [0u64; 4];
    for ((_, _, family), c) in &agg.unknown_rate {
        let at = if *family == Family::Ipv4 { 0 } else { 2 };
        unscaled[at] += c.bytes;
        unscaled[at + 1] += c.packets;
    }
    (scaled, unscaled)
}

fn expected() -> BTreeMap<String, serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/expected.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value(v["files"].clone()).unwrap()
}

fn four(v: &serde_json::Value) -> [u64; 4] {
    let a: Vec<u64> = v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    [a[0], a[1], a[2], a[3]]
}

#[test]
fn every_exporter_stream_decodes_to_what_nfdump_and_the_truth_say() {
    let expected = expected();
    assert!(expected.len() >= 10);
    let truth = [110_428, 341, 219_767, 659];
    let one = SamplingPolicy {
        defaults: vec![("127.0.0.0/8".parse().unwrap(), 1)],
        overrides: vec![],
    };
    for (file, e) in &expected {
        let decoded = four(&e["decoded"]);
        let (scaled, unscaled) = decode(file, SamplingPolicy::default());
        if file.contains("-s10") {
            // softflowd sampled 1 in 10 and says so in its options record.
            assert_eq!(scaled, decoded.map(|x| x * 10), "{file}");
            assert_eq!(unscaled, [0; 4], "{file}");
        } else if e["sampling"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("option") || k.starts_with("sflow"))
        {
            assert_eq!(scaled, decoded, "{file}");
            assert_eq!(unscaled, [0; 4], "{file}");
        } else {
            // No rate anywhere (pmacct unsampled, nfreplay, v5 interval 0):
            // counted apart until the operator says what the rate is.
            assert_eq!(scaled, [0; 4], "{file}");
            assert_eq!(unscaled, decoded, "{file}");
            let (scaled, _) = decode(file, one.clone());
            assert_eq!(scaled, decoded, "{file} with --sampling-default 127.0.0.1=1");
        }
        if !e["nfdump"].is_null() {
            assert_eq!(decoded, four(&e["nfdump"]), "{file}: nfdump");
        }
        if !file.contains("-s10") && !file.contains("v5") && !file.starts_with("nfreplay") {
            assert_eq!(decoded, truth, "{file}: ground truth");
        }
    }
}
