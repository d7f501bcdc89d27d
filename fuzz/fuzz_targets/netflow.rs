//! NetFlow v5/v9 and IPFIX: one datagram decoded twice by the same decoder, so the
//! templates (and options) it carries apply to its own data sets the second time; then a
//! late, empty datagram that makes the decoder expire what it holds for missing templates,
//! and the templates saved and restored as across a restart.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;
use v6scope_flow::netflow::Decoder;

/// 2026-01-15 08:00:00 UTC, the lab captures' day.
const NOW: u64 = 1_768_464_000;

fuzz_target!(|data: &[u8]| {
    let exporter = IpAddr::from([127, 0, 0, 1]);
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    decoder.decode(exporter, data, NOW, &mut out);
    decoder.decode(exporter, data, NOW, &mut out);
    decoder.decode(exporter, &[], NOW + decoder.limits.hold_secs + 1, &mut out);
    let saved = decoder.save_templates();
    let mut restored = Decoder::default();
    restored.load_templates(&saved);
    restored.decode(exporter, data, NOW, &mut out);
});
