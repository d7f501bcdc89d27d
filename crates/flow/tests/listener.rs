//! The UDP listener as a component: started on loopback, fed a real
//! exporter's datagrams (pmacct's IPFIX, testdata/), stopped, and its
//! hand-overs add up to what the exporter sent.

use std::sync::Arc;
use v6scope_flow::aggregate::{Aggregator, SamplingPolicy};
use v6scope_flow::enrich::PrefixTable;
use v6scope_flow::listener::{Listener, ListenerConfig};
use v6scope_flow::{Family, split_datagrams};

#[tokio::test]
async fn a_started_listener_hands_over_everything_it_received_and_stops() {
    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pmacct-ipfix.bin")).unwrap();
    let (datagrams, _) = split_datagrams(&data);
    let sampling = SamplingPolicy {
        defaults: vec![("127.0.0.1/32".parse().unwrap(), 1)],
        overrides: Vec::new(),
    };
    let config = ListenerConfig {
        interval: 60,
        sampling: sampling.clone(),
        count_egress: true,
        saved_templates: None,
        keep_templates: false,
    };
    let table = Arc::new(PrefixTable::default());
    let mut listener = Listener::start(&["127.0.0.1:0".parse().unwrap()], table.clone(), config).unwrap();
    let address = listener.local_addresses()[0];
    assert_ne!(address.port(), 0);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        socket.send_to(d, address).unwrap();
    }
    let mut all = Aggregator::new(60, sampling, table);
    let mut received = 0;
    let mut last = 0;
    let started = std::time::Instant::now();
    // Hand-overs come every second; stop once everything sent has arrived.
    while let Some(delta) = listener.next().await {
        received += delta.datagrams;
        all.merge(&delta.agg).unwrap();
        last += usize::from(delta.last.is_some());
        if received as usize >= datagrams.len() || started.elapsed().as_secs() > 20 {
            listener.stop();
        }
    }
    listener.join();
    assert_eq!(received as usize, datagrams.len());
    assert_eq!(last, 1, "one final hand-over with the decoders per thread");
    let totals = all.totals();
    let got = [
        totals.get(&Family::Ipv4).map_or(0, |c| c.bytes),
        totals.get(&Family::Ipv4).map_or(0, |c| c.packets),
        totals.get(&Family::Ipv6).map_or(0, |c| c.bytes),
        totals.get(&Family::Ipv6).map_or(0, |c| c.packets),
    ];
    // testdata/expected.json, pmacct-ipfix.bin "decoded".
    assert_eq!(got, [110_428, 341, 219_767, 659]);
}
