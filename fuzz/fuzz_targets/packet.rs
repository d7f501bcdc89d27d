//! One captured or sampled frame, read as every link layer v6scope knows; the transport
//! payload of whatever parses (and the raw bytes too) through the TLS SNI and DNS answer
//! readers that name hosts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6scope_flow::packet::{self, Link};

fuzz_target!(|data: &[u8]| {
    for link in [Link::Ethernet, Link::LinuxSll, Link::LinuxSll2, Link::Raw] {
        if let Some(p) = packet::parse(link, data) {
            let _ = packet::tls_sni(p.payload);
            let _ = packet::dns_answers(p.payload);
        }
    }
    let _ = packet::tls_sni(data);
    let _ = packet::dns_answers(data);
});
