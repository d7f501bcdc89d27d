//! `v6scope eyeballs`: does a client prefer IPv6 under dual stack?
//!
//! The bench builds a private pair of network namespaces (client and
//! server), serves test names from its own authoritative DNS (answers per
//! type after a chosen delay, SERVFAIL or empty) and a web server on every
//! test address, and sets per-address conditions on the IPv6 path with the
//! NFQUEUE delay line (delay, blackhole) and iptables (TCP RST, ICMPv6
//! unreachable). Each trial runs the client once against a fresh name; the
//! delay line's capture gives its SYNs, the web server the family that
//! carried the request. See docs/METHODS.md.

mod analysis;
mod bench;
mod client;
mod gateway;
mod html;
mod nat64;
mod netns;
mod server;
mod tls;
mod trial;

pub use analysis::{
    ClientReport, FallbackResult, HttpsRecordResult, Ipv6OnlyResult, Parameters, PmtuResult, RFC_CAD_MAX_MS,
    RFC_CAD_MIN_MS, RFC_CAD_MS, RFC_RESOLUTION_DELAY_MS, TlsResult, Verdict, parameter_rows,
};
pub use bench::{Attempt, BenchConfig, BenchError, Family, Observation, Progress, QueryTiming, Report, run};
pub use client::{Client, ClientError, PRESETS};
pub use gateway::{
    Condition, ConditionError, GatewayConfig, GatewayReport, HostUse, PhaseReport, Upstream, default_conditions,
    gateway_text, run_gateway,
};
pub use html::{render as render_html, text_table};
pub use netns::NetnsError;
pub use tls::TlsError;
pub use trial::{Failure, TrialKind, TrialSet};
