//! Passive measurement: flow telemetry (NetFlow v5/v9, IPFIX, sFlow v5),
//! packet captures and web server logs turned into IPv4/IPv6 traffic and
//! active-IPv6-user indicators.
//!
//! Every decoder turns hostile input into a counted drop, never a panic:
//! the wire readers are bounds-checked and every length is validated
//! against what is actually there.

pub mod aggregate;
pub mod enrich;
pub mod listener;
pub mod logs;
pub mod netflow;
pub mod packet;
pub mod pcap;
pub mod push;
pub mod sflow;
pub mod users;
mod wire;

/// Splits a recorded-datagrams file (each datagram behind its 4-byte
/// big-endian length, as `v6scope collect --datagrams` reads them). The
/// flag says the file ends inside a datagram; the ones before it are whole.
pub fn split_datagrams(bytes: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 4 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(d) = bytes.get(at + 4..at + 4 + len) else {
            return (out, true);
        };
        out.push(d);
        at += 4 + len;
    }
    (out, at != bytes.len())
}

use std::net::IpAddr;

/// Address family (the model's, so traffic rows and verdicts share one type).
pub use v6scope_model::Family;

/// Whether the exporter saw the flow entering or leaving the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Ingress,
    Egress,
}

/// One decoded flow (or sampled packet), in layer-3 bytes, before sampling
/// correction.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    /// Seconds since the Unix epoch at which the flow ended (or the packet
    /// was seen).
    pub time: u64,
    pub exporter: IpAddr,
    /// Observation domain (IPFIX), source ID (v9), engine (v5) or sub-agent
    /// and source (sFlow).
    pub domain: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// Layer-3 bytes (IP total length summed over the packets).
    pub bytes: u64,
    pub packets: u64,
    pub input_interface: u32,
    pub output_interface: u32,
    pub direction: Option<Direction>,
    /// 1-in-N packet sampling; none when unknown.
    pub sampling: Option<u32>,
}

impl FlowRecord {
    pub fn family(&self) -> Family {
        Family::of(&self.src)
    }
}

/// Why a datagram, set or record was dropped. Each has a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Drop {
    /// Shorter than its header or than a length it announces.
    Truncated,
    /// A length field that contradicts the datagram.
    BadLength,
    UnknownVersion,
    /// Data for a template never received (after the hold time).
    NoTemplate,
    /// A template with no usable fields, or absurd sizes.
    BadTemplate,
    /// More templates from one source than the cap allows.
    TemplateFlood,
    /// Record without addresses (e.g. MPLS-only or L2 flows).
    NoAddress,
    /// Absurd counters (e.g. more bytes than 65535 per packet).
    AbsurdCount,
}

impl std::fmt::Display for Drop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        write!(f, "{}", s.as_ref().and_then(|v| v.as_str()).unwrap_or("drop"))
    }
}

/// The decoders behind one UDP collector: NetFlow v5/v9 and IPFIX, and
/// sFlow v5, told apart by their first bytes.
#[derive(Default)]
pub struct Decoders {
    pub netflow: netflow::Decoder,
    pub sflow: sflow::Decoder,
}

impl Decoders {
    /// Decodes one datagram from `from`; `now` is Unix seconds.
    pub fn decode(&mut self, from: IpAddr, datagram: &[u8], now: u64, out: &mut Vec<FlowRecord>) {
        // sFlow starts with a 32-bit version 5; NetFlow/IPFIX with a 16-bit 5, 9 or 10.
        if datagram.len() >= 4 && datagram[..4] == [0, 0, 0, 5] {
            self.sflow.decode(datagram, now, out);
        } else {
            self.netflow.decode(from, datagram, now, out);
        }
    }
}
