//! sFlow v5: one datagram (flow samples with raw headers or IPv4/IPv6 records, counter
//! samples, expanded and compact forms).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6scope_flow::sflow::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    decoder.decode(data, 1_768_464_000, &mut out);
});
