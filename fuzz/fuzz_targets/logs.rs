//! Web server access logs: the bytes as a log file (combined, common or JSON lines).
#![no_main]

use libfuzzer_sys::fuzz_target;
use v6scope_flow::logs::LogReport;

fuzz_target!(|data: &[u8]| {
    let mut report = LogReport::default();
    let _ = report.read(data);
    for hour in report.hours.values() {
        let _ = (hour.clients[0].count(), hour.clients[1].count());
    }
});
