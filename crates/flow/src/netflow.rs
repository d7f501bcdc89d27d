//! NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) decoding.
//!
//! Templates and options are scoped per (exporter address, observation
//! domain / source ID, template ID). Data that arrives before its template
//! is held (bounded in bytes and time) and decoded when the template comes.
//! Templates compile to a plan of the few fields v6scope needs, so a data
//! record costs a handful of slice reads.

use crate::aggregate::FastMap;
use crate::packet::{self, Link};
use crate::wire::{Reader, be_uint};
use crate::{Direction, Drop, FlowRecord};
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

/// Information elements v6scope reads (IANA IPFIX numbers; NetFlow v9 uses
/// the same numbers for these).
mod ie {
    pub const OCTET_DELTA: u16 = 1;
    pub const PACKET_DELTA: u16 = 2;
    pub const PROTOCOL: u16 = 4;
    pub const SRC_PORT: u16 = 7;
    pub const SRC_V4: u16 = 8;
    pub const INGRESS_IF: u16 = 10;
    pub const DST_PORT: u16 = 11;
    pub const DST_V4: u16 = 12;
    pub const EGRESS_IF: u16 = 14;
    pub const LAST_SWITCHED: u16 = 21;
    pub const SRC_V6: u16 = 27;
    pub const DST_V6: u16 = 28;
    pub const IP_VERSION: u16 = 60;
    /// NSEL (Cisco ASA) initiator and responder octets.
    pub const INITIATOR_OCTETS: u16 = 231;
    pub const RESPONDER_OCTETS: u16 = 232;
    /// Cisco WLC: the wireless client's address.
    pub const STA_V4: u16 = 366;
    pub const STA_V6: u16 = 367;
    /// RFC 5103 reverse information elements: the same numbers under this PEN.
    pub const REVERSE_PEN: u32 = 29305;
    /// Ixia's reverse delta counters (PEN 3054, IEs 176/177).
    pub const IXIA_PEN: u32 = 3054;
    pub const IXIA_REVERSE_OCTETS: u16 = 176;
    pub const IXIA_REVERSE_PACKETS: u16 = 177;
    pub const SAMPLING_INTERVAL: u16 = 34;
    pub const SAMPLER_ID: u16 = 48;
    pub const SAMPLER_RANDOM_INTERVAL: u16 = 50;
    pub const DIRECTION: u16 = 61;
    pub const OCTET_TOTAL: u16 = 85;
    pub const PACKET_TOTAL: u16 = 86;
    pub const FLOW_END_SECONDS: u16 = 151;
    pub const FLOW_END_MILLISECONDS: u16 = 153;
    pub const SELECTOR_ID: u16 = 302;
    pub const SAMPLING_PACKET_INTERVAL: u16 = 305;
    pub const SAMPLING_PACKET_SPACE: u16 = 306;
    /// RFC 7133 packet reports: the sampled packet's first bytes.
    pub const IP_HEADER_SECTION: u16 = 313;
    pub const FRAME_SECTION: u16 = 315;
}

/// What a field of a template is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Slot {
    Skip,
    Bytes,
    BytesTotal,
    Packets,
    PacketsTotal,
    Protocol,
    SrcPort,
    DstPort,
    SrcV4,
    SrcV6,
    DstV4,
    DstV6,
    StaV4,
    StaV6,
    IpVersion,
    InitiatorOctets,
    ResponderOctets,
    ReverseBytes,
    ReverseBytesTotal,
    ReversePackets,
    ReversePacketsTotal,
    InIf,
    OutIf,
    LastSwitched,
    EndSeconds,
    EndMillis,
    Direction,
    SamplerId,
    SamplingInterval,
    PacketInterval,
    PacketSpace,
    IpSection,
    FrameSection,
}

fn slot(ie: u16, enterprise: u32, len: u16) -> Slot {
    match (enterprise, ie, len) {
        (0, _, _) => {}
        (ie::REVERSE_PEN, ie::OCTET_DELTA, 1..=8) => return Slot::ReverseBytes,
        (ie::REVERSE_PEN, ie::OCTET_TOTAL, 1..=8) => return Slot::ReverseBytesTotal,
        (ie::REVERSE_PEN, ie::PACKET_DELTA, 1..=8) => return Slot::ReversePackets,
        (ie::REVERSE_PEN, ie::PACKET_TOTAL, 1..=8) => return Slot::ReversePacketsTotal,
        (ie::IXIA_PEN, ie::IXIA_REVERSE_OCTETS, 1..=8) => return Slot::ReverseBytes,
        (ie::IXIA_PEN, ie::IXIA_REVERSE_PACKETS, 1..=8) => return Slot::ReversePackets,
        _ => return Slot::Skip,
    }
    match (ie, len) {
        (ie::OCTET_DELTA, 1..=8) => Slot::Bytes,
        (ie::OCTET_TOTAL, 1..=8) => Slot::BytesTotal,
        (ie::PACKET_DELTA, 1..=8) => Slot::Packets,
        (ie::PACKET_TOTAL, 1..=8) => Slot::PacketsTotal,
        (ie::PROTOCOL, 1) => Slot::Protocol,
        (ie::SRC_PORT, 2) => Slot::SrcPort,
        (ie::DST_PORT, 2) => Slot::DstPort,
        (ie::SRC_V4, 4) => Slot::SrcV4,
        (ie::SRC_V6, 16) => Slot::SrcV6,
        (ie::DST_V4, 4) => Slot::DstV4,
        (ie::DST_V6, 16) => Slot::DstV6,
        (ie::STA_V4, 4) => Slot::StaV4,
        (ie::STA_V6, 16) => Slot::StaV6,
        (ie::IP_VERSION, 1) => Slot::IpVersion,
        (ie::INITIATOR_OCTETS, 1..=8) => Slot::InitiatorOctets,
        (ie::RESPONDER_OCTETS, 1..=8) => Slot::ResponderOctets,
        (ie::INGRESS_IF, 1..=4) => Slot::InIf,
        (ie::EGRESS_IF, 1..=4) => Slot::OutIf,
        (ie::LAST_SWITCHED, 4) => Slot::LastSwitched,
        (ie::FLOW_END_SECONDS, 4) => Slot::EndSeconds,
        (ie::FLOW_END_MILLISECONDS, 8) => Slot::EndMillis,
        (ie::DIRECTION, 1) => Slot::Direction,
        (ie::SAMPLER_ID | ie::SELECTOR_ID, 1..=8) => Slot::SamplerId,
        (ie::SAMPLING_INTERVAL | ie::SAMPLER_RANDOM_INTERVAL, 1..=4) => Slot::SamplingInterval,
        (ie::SAMPLING_PACKET_INTERVAL, 1..=4) => Slot::PacketInterval,
        (ie::SAMPLING_PACKET_SPACE, 1..=4) => Slot::PacketSpace,
        (ie::IP_HEADER_SECTION, _) => Slot::IpSection,
        (ie::FRAME_SECTION, _) => Slot::FrameSection,
        _ => Slot::Skip,
    }
}

/// One field as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Field {
    ie: u16,
    enterprise: u32,
    /// 65535 = variable length (IPFIX).
    len: u16,
    /// NetFlow v9 options scope fields use another number space.
    scope: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Template {
    fields: Vec<Field>,
    options: bool,
    /// Record length when no field is variable-length.
    #[serde(skip)]
    fixed_len: Option<usize>,
    #[serde(skip)]
    plan: Vec<(Slot, u16)>,
}

impl Template {
    fn compile(fields: Vec<Field>, options: bool) -> Option<Template> {
        let variable = fields.iter().any(|f| f.len == 65535);
        let fixed_len = (!variable).then(|| fields.iter().map(|f| f.len as usize).sum());
        if fixed_len == Some(0) {
            return None;
        }
        let plan = fields
            .iter()
            .map(|f| {
                (
                    if f.scope {
                        Slot::Skip
                    } else {
                        slot(f.ie, f.enterprise, f.len)
                    },
                    f.len,
                )
            })
            .collect();
        Some(Template {
            fields,
            options,
            fixed_len,
            plan,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Source {
    exporter: IpAddr,
    domain: u32,
    ipfix: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct TemplateKey {
    source: Source,
    id: u16,
}

/// Sampling learned from options data records of one source.
#[derive(Debug, Default, Clone)]
struct Sampling {
    by_sampler: FastMap<u64, u32>,
    default: Option<u32>,
}

/// Header values a data set needs to timestamp its records.
#[derive(Debug, Clone, Copy)]
struct Export {
    unix_secs: u32,
    /// NetFlow v9 only: milliseconds since the exporter booted.
    sys_uptime: Option<u32>,
}

struct Held {
    key: TemplateKey,
    export: Export,
    arrived: u64,
    data: Vec<u8>,
}

/// Bounds that keep a hostile exporter from exhausting memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Templates kept per source (a flood beyond is dropped and counted).
    pub templates_per_source: usize,
    /// How long data waits for its template, in seconds.
    pub hold_secs: u64,
    /// Bytes of data held for unknown templates, all sources together.
    pub hold_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            templates_per_source: 512,
            hold_secs: 30,
            hold_bytes: 8 << 20,
        }
    }
}

/// Counters of what was decoded and what was dropped, and why.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    pub datagrams: u64,
    pub records: u64,
    pub templates: u64,
    pub options_records: u64,
    /// Data sets decoded after waiting for their template.
    pub held_then_decoded: u64,
    pub drops: BTreeMap<Drop, u64>,
}

impl Stats {
    pub(crate) fn drop(&mut self, why: Drop) {
        *self.drops.entry(why).or_default() += 1;
    }
    pub fn dropped(&self) -> u64 {
        self.drops.values().sum()
    }

    /// Adds another decoder's counters (several receiving threads).
    pub fn absorb(&mut self, other: &Stats) {
        self.datagrams += other.datagrams;
        self.records += other.records;
        self.templates += other.templates;
        self.options_records += other.options_records;
        self.held_then_decoded += other.held_then_decoded;
        for (why, n) in &other.drops {
            *self.drops.entry(*why).or_default() += n;
        }
    }
}

/// NetFlow v5/v9 and IPFIX decoder with per-source template state.
#[derive(Default)]
pub struct Decoder {
    templates: FastMap<TemplateKey, Arc<Template>>,
    per_source: FastMap<Source, usize>,
    sampling: FastMap<Source, Sampling>,
    held: VecDeque<Held>,
    held_bytes: usize,
    /// Records decoded from held data, for the caller to take.
    released: Vec<FlowRecord>,
    pub limits: Limits,
    pub stats: Stats,
}

/// Templates as persisted between runs.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedTemplate {
    exporter: IpAddr,
    domain: u32,
    ipfix: bool,
    id: u16,
    template: Template,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            ..Default::default()
        }
    }

    /// Decodes one datagram from `exporter`, appending its flow records.
    /// `now` (Unix seconds) times out data held for a missing template.
    pub fn decode(&mut self, exporter: IpAddr, datagram: &[u8], now: u64, out: &mut Vec<FlowRecord>) {
        self.stats.datagrams += 1;
        self.expire(now);
        let mut r = Reader::new(datagram);
        let Some(version) = r.u16() else {
            self.stats.drop(Drop::Truncated);
            return;
        };
        match version {
            5 => self.v5(exporter, datagram, out),
            9 => self.v9(exporter, datagram, now, out),
            10 => self.ipfix(exporter, datagram, now, out),
            _ => self.stats.drop(Drop::UnknownVersion),
        }
        out.append(&mut self.released);
    }

    fn v5(&mut self, exporter: IpAddr, d: &[u8], out: &mut Vec<FlowRecord>) {
        let mut r = Reader::new(d);
        let header = (|| {
            r.skip(2)?;
            let count = r.u16()?;
            let uptime = r.u32()?;
            let secs = r.u32()?;
            r.skip(8)?;
            let engine = u32::from(r.u16()?);
            let sampling = r.u16()?;
            Some((count, uptime, secs, engine, sampling))
        })();
        let Some((count, uptime, secs, engine, sampling)) = header else {
            self.stats.drop(Drop::Truncated);
            return;
        };
        if count == 0 || count > 30 || r.remaining() < count as usize * 48 {
            self.stats.drop(Drop::BadLength);
            return;
        }
        // Low 14 bits: 1-in-N; 0 says nothing (many exporters never fill it).
        let interval = u32::from(sampling & 0x3fff);
        for _ in 0..count {
            let rec = (|| {
                let src = r.ipv4()?;
                let dst = r.ipv4()?;
                r.skip(4)?;
                let input = r.u16()?;
                let output = r.u16()?;
                let packets = r.u32()?;
                let bytes = r.u32()?;
                r.skip(4)?;
                let last = r.u32()?;
                let src_port = r.u16()?;
                let dst_port = r.u16()?;
                r.skip(2)?;
                let protocol = r.u8()?;
                r.skip(9)?; // tos, src/dst AS, masks, pad
                Some((
                    src, dst, input, output, packets, bytes, last, src_port, dst_port, protocol,
                ))
            })();
            let Some((src, dst, input, output, packets, bytes, last, src_port, dst_port, protocol)) = rec else {
                self.stats.drop(Drop::Truncated);
                return;
            };
            let record = FlowRecord {
                time: end_time(secs, Some(uptime), Some(last)),
                exporter,
                domain: engine,
                src: src.into(),
                dst: dst.into(),
                protocol,
                src_port,
                dst_port,
                bytes: u64::from(bytes),
                packets: u64::from(packets),
                input_interface: u32::from(input),
                output_interface: u32::from(output),
                direction: None,
                sampling: (interval > 0).then_some(interval),
            };
            self.push(record, out);
        }
    }

    fn push(&mut self, record: FlowRecord, out: &mut Vec<FlowRecord>) {
        self.push_counted(record, true, out);
    }

    /// A record whose template has no packet counter (NSEL, some WLCs)
    /// keeps its bytes with 0 packets; with a packet count, bytes per
    /// packet must be possible for IP (20 to 65535).
    fn push_counted(&mut self, record: FlowRecord, packets_known: bool, out: &mut Vec<FlowRecord>) {
        let absurd = if packets_known {
            record.packets == 0
                || record.bytes > record.packets.saturating_mul(65535)
                || record.bytes < record.packets.saturating_mul(20)
        } else {
            record.bytes == 0 || record.bytes > MAX_BYTES_WITHOUT_PACKETS
        };
        if absurd {
            self.stats.drop(Drop::AbsurdCount);
            return;
        }
        self.stats.records += 1;
        out.push(record);
    }

    fn v9(&mut self, exporter: IpAddr, d: &[u8], now: u64, out: &mut Vec<FlowRecord>) {
        let mut r = Reader::new(d);
        let header = (|| {
            r.skip(4)?;
            let uptime = r.u32()?;
            let secs = r.u32()?;
            r.skip(4)?;
            let source_id = r.u32()?;
            Some((uptime, secs, source_id))
        })();
        let Some((uptime, secs, source_id)) = header else {
            self.stats.drop(Drop::Truncated);
            return;
        };
        let source = Source {
            exporter,
            domain: source_id,
            ipfix: false,
        };
        let export = Export {
            unix_secs: secs,
            sys_uptime: Some(uptime),
        };
        self.sets(source, export, r, now, out);
    }

    fn ipfix(&mut self, exporter: IpAddr, d: &[u8], now: u64, out: &mut Vec<FlowRecord>) {
        let mut r = Reader::new(d);
        let header = (|| {
            r.skip(2)?;
            let length = r.u16()?;
            let secs = r.u32()?;
            r.skip(4)?;
            let domain = r.u32()?;
            Some((length, secs, domain))
        })();
        let Some((length, secs, domain)) = header else {
            self.stats.drop(Drop::Truncated);
            return;
        };
        if usize::from(length) != d.len() {
            self.stats.drop(Drop::BadLength);
            return;
        }
        let source = Source {
            exporter,
            domain,
            ipfix: true,
        };
        let export = Export {
            unix_secs: secs,
            sys_uptime: None,
        };
        self.sets(source, export, r, now, out);
    }

    /// The sets (flowsets) of one v9 or IPFIX message.
    fn sets(&mut self, source: Source, export: Export, mut r: Reader<'_>, now: u64, out: &mut Vec<FlowRecord>) {
        while r.remaining() >= 4 {
            let rest = r.peek_rest();
            if rest.iter().all(|&b| b == 0) {
                // Zero padding after the last set (RFC 3954 §5.3 allows it).
                break;
            }
            let (Some(id), Some(len)) = (r.u16(), r.u16()) else {
                break;
            };
            let Some(body) = (len as usize).checked_sub(4).and_then(|n| r.take(n)) else {
                self.stats.drop(Drop::BadLength);
                return;
            };
            if len < 4 {
                self.stats.drop(Drop::BadLength);
                return;
            }
            match (source.ipfix, id) {
                (false, 0) | (true, 2) => self.templates(source, body, false),
                (false, 1) | (true, 3) => self.templates(source, body, true),
                (_, 256..) => self.data(TemplateKey { source, id }, export, body, now, out),
                _ => {}
            }
        }
    }

    fn templates(&mut self, source: Source, body: &[u8], options: bool) {
        let mut r = Reader::new(body);
        // Padding at the end of a set is shorter than a template header.
        while r.remaining() >= 4 {
            let parsed = if source.ipfix {
                ipfix_template(&mut r, options)
            } else {
                v9_template(&mut r, options)
            };
            let Some((id, fields)) = parsed else {
                self.stats.drop(Drop::BadTemplate);
                return;
            };
            let key = TemplateKey { source, id };
            if fields.is_empty() {
                // IPFIX withdrawal.
                if self.templates.remove(&key).is_some() {
                    *self.per_source.entry(source).or_default() -= 1;
                }
                continue;
            }
            if id < 256 {
                self.stats.drop(Drop::BadTemplate);
                continue;
            }
            let Some(template) = Template::compile(fields, options) else {
                self.stats.drop(Drop::BadTemplate);
                continue;
            };
            if !self.templates.contains_key(&key) {
                let count = self.per_source.entry(source).or_default();
                if *count >= self.limits.templates_per_source {
                    self.stats.drop(Drop::TemplateFlood);
                    continue;
                }
                *count += 1;
            }
            self.stats.templates += 1;
            self.templates.insert(key, Arc::new(template));
            self.release(key);
        }
    }

    fn data(&mut self, key: TemplateKey, export: Export, body: &[u8], now: u64, out: &mut Vec<FlowRecord>) {
        let Some(template) = self.templates.get(&key).cloned() else {
            self.hold(key, export, body, now);
            return;
        };
        self.decode_set(&template, key, export, body, out);
    }

    fn hold(&mut self, key: TemplateKey, export: Export, body: &[u8], now: u64) {
        if self.held_bytes + body.len() > self.limits.hold_bytes {
            self.stats.drop(Drop::NoTemplate);
            return;
        }
        self.held_bytes += body.len();
        self.held.push_back(Held {
            key,
            export,
            arrived: now,
            data: body.to_vec(),
        });
    }

    /// At shutdown: data still waiting for a template is lost; count it
    /// (`no_template`) rather than let it vanish.
    pub fn abandon_held(&mut self) {
        while let Some(held) = self.held.pop_front() {
            self.held_bytes -= held.data.len();
            self.stats.drop(Drop::NoTemplate);
        }
    }

    fn expire(&mut self, now: u64) {
        while let Some(front) = self.held.front() {
            if now.saturating_sub(front.arrived) < self.limits.hold_secs {
                break;
            }
            let held = self.held.pop_front().expect("front exists");
            self.held_bytes -= held.data.len();
            self.stats.drop(Drop::NoTemplate);
        }
    }

    /// Data held for `key`, decoded now that its template is known. The
    /// records go out with the datagram that brought the template.
    fn release(&mut self, key: TemplateKey) {
        if !self.held.iter().any(|h| h.key == key) {
            return;
        }
        let Some(template) = self.templates.get(&key).cloned() else {
            return;
        };
        let mut keep = VecDeque::with_capacity(self.held.len());
        let mut records = Vec::new();
        for held in std::mem::take(&mut self.held) {
            if held.key == key {
                self.held_bytes -= held.data.len();
                self.stats.held_then_decoded += 1;
                self.decode_set(&template, key, held.export, &held.data, &mut records);
            } else {
                keep.push_back(held);
            }
        }
        self.held = keep;
        self.released.extend(records);
    }

    fn decode_set(
        &mut self,
        template: &Template,
        key: TemplateKey,
        export: Export,
        body: &[u8],
        out: &mut Vec<FlowRecord>,
    ) {
        let mut r = Reader::new(body);
        let min_len = template.fixed_len.unwrap_or(1);
        if template.options {
            while r.remaining() >= min_len {
                let Some(fields) = record_fields(template, &mut r) else {
                    self.stats.drop(Drop::Truncated);
                    return;
                };
                self.options_record(key.source, &fields);
            }
            return;
        }
        // The rate the exporter's options announced, looked up once per set
        // (a set has one template, so no options record arrives within it).
        let announced = self.sampling.get(&key.source).and_then(|s| s.default);
        while r.remaining() >= min_len {
            if self
                .flow_records(key.source, export, template, &mut r, announced, out)
                .is_none()
            {
                self.stats.drop(Drop::Truncated);
                return;
            }
        }
    }

    fn options_record(&mut self, source: Source, fields: &[(Slot, &[u8])]) {
        self.stats.options_records += 1;
        let sampler = fields
            .iter()
            .find(|(s, _)| *s == Slot::SamplerId)
            .map(|(_, v)| be_uint(v));
        let Some(rate) = rate_of(fields) else { return };
        let sampling = self.sampling.entry(source).or_default();
        match sampler {
            Some(id) => {
                sampling.by_sampler.insert(id, rate);
            }
            None => sampling.default = Some(rate),
        }
    }

    /// One data record: the flow, and its reverse half when the record is
    /// a biflow (RFC 5103 or vendor reverse counters) — each with its own
    /// direction, so enrichment labels both sides right.
    ///
    /// Reads the record's fields straight from the set in the template's
    /// order (no list of fields per record); `None` when the set ends
    /// inside the record.
    fn flow_records(
        &mut self,
        source: Source,
        export: Export,
        template: &Template,
        r: &mut Reader<'_>,
        announced: Option<u32>,
        out: &mut Vec<FlowRecord>,
    ) -> Option<()> {
        let mut rec = FlowRecord {
            time: u64::from(export.unix_secs),
            exporter: source.exporter,
            domain: source.domain,
            src: IpAddr::from([0u8; 4]),
            dst: IpAddr::from([0u8; 4]),
            protocol: 0,
            src_port: 0,
            dst_port: 0,
            bytes: 0,
            packets: 0,
            input_interface: 0,
            output_interface: 0,
            direction: None,
            sampling: None,
        };
        let mut c = Counters::default();
        let mut a = Addresses::default();
        let mut sampler = None;
        let mut last_switched = None;
        let mut section = None;
        let mut rates = RateFields::default();
        for &(slot, len) in &template.plan {
            let value = field_value(r, len)?;
            match slot {
                Slot::Bytes => c.bytes = Some(be_uint(value)),
                Slot::BytesTotal => c.bytes_total = Some(be_uint(value)),
                Slot::Packets => c.packets = Some(be_uint(value)),
                Slot::PacketsTotal => c.packets_total = Some(be_uint(value)),
                Slot::InitiatorOctets => c.initiator = Some(be_uint(value)),
                Slot::ResponderOctets => c.responder = Some(be_uint(value)),
                Slot::ReverseBytes => c.reverse_bytes = Some(be_uint(value)),
                Slot::ReverseBytesTotal => c.reverse_bytes_total = Some(be_uint(value)),
                Slot::ReversePackets => c.reverse_packets = Some(be_uint(value)),
                Slot::ReversePacketsTotal => c.reverse_packets_total = Some(be_uint(value)),
                Slot::Protocol => rec.protocol = value[0],
                Slot::SrcPort => rec.src_port = be_uint(value) as u16,
                Slot::DstPort => rec.dst_port = be_uint(value) as u16,
                Slot::SrcV4 => a.src_v4 = address(value),
                Slot::SrcV6 => a.src_v6 = address(value),
                Slot::DstV4 => a.dst_v4 = address(value),
                Slot::DstV6 => a.dst_v6 = address(value),
                Slot::StaV4 => a.sta_v4 = address(value),
                Slot::StaV6 => a.sta_v6 = address(value),
                Slot::IpVersion => a.version = Some(value[0]),
                Slot::InIf => rec.input_interface = be_uint(value) as u32,
                Slot::OutIf => rec.output_interface = be_uint(value) as u32,
                Slot::LastSwitched => last_switched = Some(be_uint(value) as u32),
                Slot::EndSeconds => rec.time = be_uint(value),
                Slot::EndMillis => rec.time = be_uint(value) / 1000,
                Slot::Direction => {
                    rec.direction = Some(if value[0] == 1 {
                        Direction::Egress
                    } else {
                        Direction::Ingress
                    })
                }
                Slot::SamplerId => sampler = Some(be_uint(value)),
                Slot::IpSection => section = Some((Link::Raw, value)),
                Slot::FrameSection => section = Some((Link::Ethernet, value)),
                Slot::SamplingInterval | Slot::PacketInterval | Slot::PacketSpace => rates.note(slot, value),
                Slot::Skip => {}
            }
        }
        if !source.ipfix && last_switched.is_some() {
            rec.time = end_time(export.unix_secs, export.sys_uptime, last_switched);
        }
        // An end time the exporter cannot mean (before 1990, or over a day
        // after its own export time) is the export time.
        let export_time = u64::from(export.unix_secs);
        if rec.time < 631_152_000 || rec.time > export_time.saturating_add(86_400) {
            rec.time = export_time;
        }
        // A packet report (RFC 7133) is one sampled packet: its addresses,
        // ports and length come from the frame's outer IP header unless the
        // template also carries them.
        let sampled = section.and_then(|(link, frame)| packet::parse(link, frame));
        if let Some(p) = &sampled
            && c.forward().0.is_none()
        {
            c.bytes = Some(u64::from(p.l3_len));
            c.packets = Some(1);
        }
        let Some((src, dst)) = a.pick().or_else(|| {
            let p = sampled.as_ref()?;
            rec.protocol = p.protocol;
            rec.src_port = p.src_port;
            rec.dst_port = p.dst_port;
            Some((p.src, p.dst))
        }) else {
            self.stats.drop(Drop::NoAddress);
            return Some(());
        };
        rec.src = src;
        rec.dst = dst;
        rec.sampling = sampler
            .and_then(|id| {
                let learned = self.sampling.get(&source);
                learned.and_then(|s| s.by_sampler.get(&id).copied()).or_else(|| {
                    // Some exporters send the sampler options under another
                    // observation domain than the data: same exporter, same ID.
                    self.sampling
                        .iter()
                        .filter(|(other, _)| other.exporter == source.exporter && other.ipfix == source.ipfix)
                        .find_map(|(_, s)| s.by_sampler.get(&id).copied())
                })
            })
            .or_else(|| rates.rate())
            .or(announced);
        let (bytes, packets) = c.forward();
        let (reverse_bytes, reverse_packets) = c.reverse();
        let biflow = reverse_bytes.unwrap_or(0) > 0;
        if bytes.unwrap_or(0) > 0 || !biflow {
            let mut forward = rec.clone();
            forward.bytes = bytes.unwrap_or(0);
            forward.packets = packets.unwrap_or(0);
            self.push_counted(forward, packets.is_some(), out);
        }
        if biflow {
            let mut back = rec;
            std::mem::swap(&mut back.src, &mut back.dst);
            std::mem::swap(&mut back.src_port, &mut back.dst_port);
            std::mem::swap(&mut back.input_interface, &mut back.output_interface);
            back.bytes = reverse_bytes.unwrap_or(0);
            back.packets = reverse_packets.unwrap_or(0);
            self.push_counted(back, reverse_packets.is_some(), out);
        }
        Some(())
    }

    /// Templates to keep across restarts (JSON).
    pub fn save_templates(&self) -> serde_json::Value {
        let saved: Vec<SavedTemplate> = self
            .templates
            .iter()
            .map(|(key, t)| SavedTemplate {
                exporter: key.source.exporter,
                domain: key.source.domain,
                ipfix: key.source.ipfix,
                id: key.id,
                template: (**t).clone(),
            })
            .collect();
        serde_json::to_value(saved).unwrap_or_default()
    }

    /// Loads templates saved by [`Decoder::save_templates`]; returns how many.
    pub fn load_templates(&mut self, saved: &serde_json::Value) -> usize {
        let Ok(saved) = serde_json::from_value::<Vec<SavedTemplate>>(saved.clone()) else {
            return 0;
        };
        let mut loaded = 0;
        for s in saved {
            let source = Source {
                exporter: s.exporter,
                domain: s.domain,
                ipfix: s.ipfix,
            };
            if let Some(t) = Template::compile(s.template.fields, s.template.options) {
                let key = TemplateKey { source, id: s.id };
                if self.templates.insert(key, Arc::new(t)).is_none() {
                    *self.per_source.entry(source).or_default() += 1;
                }
                loaded += 1;
            }
        }
        loaded
    }
}

/// A sampling rate from an options or data record's own fields.
/// A record without a packet counter claiming more than 1 TB is a lie.
const MAX_BYTES_WITHOUT_PACKETS: u64 = 1 << 40;

/// A record's counters as its template has them.
#[derive(Default)]
struct Counters {
    bytes: Option<u64>,
    bytes_total: Option<u64>,
    packets: Option<u64>,
    packets_total: Option<u64>,
    initiator: Option<u64>,
    responder: Option<u64>,
    reverse_bytes: Option<u64>,
    reverse_bytes_total: Option<u64>,
    reverse_packets: Option<u64>,
    reverse_packets_total: Option<u64>,
}

impl Counters {
    /// Delta counters when the template has them (a zero delta is zero,
    /// not a reason to take the cumulative total), else the totals, else
    /// NSEL initiator + responder octets. Packets: `None` when the
    /// template has no packet counter at all.
    fn forward(&self) -> (Option<u64>, Option<u64>) {
        let bytes = self
            .bytes
            .or(self.bytes_total)
            .or(match (self.initiator, self.responder) {
                (None, None) => None,
                (i, r) => Some(i.unwrap_or(0).saturating_add(r.unwrap_or(0))),
            });
        (bytes, self.packets.or(self.packets_total))
    }

    fn reverse(&self) -> (Option<u64>, Option<u64>) {
        (
            self.reverse_bytes.or(self.reverse_bytes_total),
            self.reverse_packets.or(self.reverse_packets_total),
        )
    }
}

/// A record's address fields. A template may carry both families with the
/// unused one zeroed (Cisco IOS-XR): the family is the one whose addresses
/// are set, then ipVersion; with both set (SRv6 and other encapsulations)
/// the outer header is IPv6. Cisco WLC puts the client in staIPv4Address.
#[derive(Default)]
struct Addresses {
    src_v4: Option<IpAddr>,
    src_v6: Option<IpAddr>,
    dst_v4: Option<IpAddr>,
    dst_v6: Option<IpAddr>,
    sta_v4: Option<IpAddr>,
    sta_v6: Option<IpAddr>,
    version: Option<u8>,
}

impl Addresses {
    fn pick(&self) -> Option<(IpAddr, IpAddr)> {
        let set = |a: Option<IpAddr>| a.filter(|a| !a.is_unspecified());
        let v4 = (set(self.src_v4).or(set(self.sta_v4)), set(self.dst_v4));
        let v6 = (set(self.src_v6).or(set(self.sta_v6)), set(self.dst_v6));
        let unspecified_v4 = IpAddr::from([0u8; 4]);
        let unspecified_v6 = IpAddr::from([0u16; 8]);
        let has = |p: (Option<IpAddr>, Option<IpAddr>)| p.0.is_some() || p.1.is_some();
        let family_v6 = match (has(v4), has(v6)) {
            (_, true) => true,
            (true, false) => false,
            (false, false) => {
                // Every address is zero: ipVersion says the family, else the
                // fields the template has.
                let (has_v4, has_v6) = (
                    self.src_v4.is_some() || self.dst_v4.is_some(),
                    self.src_v6.is_some() || self.dst_v6.is_some(),
                );
                match (self.version, has_v4, has_v6) {
                    (Some(6), _, true) | (None | Some(_), false, true) => true,
                    (_, true, _) => false,
                    _ => return None,
                }
            }
        };
        if family_v6 {
            let fill = |a: Option<IpAddr>, raw: Option<IpAddr>| a.or(raw).unwrap_or(unspecified_v6);
            if self.src_v6.is_none() && self.dst_v6.is_none() && self.sta_v6.is_none() {
                return None;
            }
            Some((fill(v6.0, self.src_v6), fill(v6.1, self.dst_v6)))
        } else {
            let fill = |a: Option<IpAddr>| a.unwrap_or(unspecified_v4);
            Some((fill(v4.0), fill(v4.1)))
        }
    }
}

fn rate_of(fields: &[(Slot, &[u8])]) -> Option<u32> {
    let mut rates = RateFields::default();
    for &(slot, value) in fields {
        rates.note(slot, value);
    }
    rates.rate()
}

/// The sampling fields of one record (the first of each kind counts).
#[derive(Default)]
struct RateFields {
    interval: Option<u64>,
    packet_interval: Option<u64>,
    packet_space: Option<u64>,
}

impl RateFields {
    fn note(&mut self, slot: Slot, value: &[u8]) {
        let field = match slot {
            Slot::SamplingInterval => &mut self.interval,
            Slot::PacketInterval => &mut self.packet_interval,
            Slot::PacketSpace => &mut self.packet_space,
            _ => return,
        };
        if field.is_none() {
            *field = Some(be_uint(value));
        }
    }

    fn rate(&self) -> Option<u32> {
        if let Some(n) = self.interval.filter(|&n| n > 0) {
            return u32::try_from(n).ok();
        }
        // 1 packet selected, then `space` skipped: 1 in interval + space.
        let interval = self.packet_interval.filter(|&n| n > 0)?;
        let space = self.packet_space.unwrap_or(0);
        u32::try_from((interval + space) / interval).ok()
    }
}

fn address(value: &[u8]) -> Option<IpAddr> {
    match value.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(value).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(value).ok()?)),
        _ => None,
    }
}

/// Flow end in Unix seconds from a v5/v9 header and the record's
/// LAST_SWITCHED (milliseconds of exporter uptime).
fn end_time(unix_secs: u32, uptime: Option<u32>, last: Option<u32>) -> u64 {
    match (uptime, last) {
        (Some(up), Some(last)) if last <= up => u64::from(unix_secs).saturating_sub(u64::from((up - last) / 1000)),
        _ => u64::from(unix_secs),
    }
}

/// Splits one data record into (slot, value) pairs per the template.
fn record_fields<'a>(template: &Template, r: &mut Reader<'a>) -> Option<Vec<(Slot, &'a [u8])>> {
    let mut fields = Vec::with_capacity(template.plan.len());
    for &(slot, len) in &template.plan {
        let value = field_value(r, len)?;
        if slot != Slot::Skip {
            fields.push((slot, value));
        }
    }
    Some(fields)
}

/// One field's value: `len` bytes, or for 65535 (variable length, RFC 7011
/// §7) the length that precedes it.
fn field_value<'a>(r: &mut Reader<'a>, len: u16) -> Option<&'a [u8]> {
    let len = match len {
        65535 => match r.u8()? {
            255 => r.u16()? as usize,
            n => n as usize,
        },
        n => n as usize,
    };
    r.take(len)
}

fn v9_template(r: &mut Reader<'_>, options: bool) -> Option<(u16, Vec<Field>)> {
    let id = r.u16()?;
    let mut fields = Vec::new();
    if options {
        let scope_len = r.u16()? as usize;
        let option_len = r.u16()? as usize;
        if !scope_len.is_multiple_of(4) || !option_len.is_multiple_of(4) {
            return None;
        }
        for i in 0..(scope_len + option_len) / 4 {
            let ie = r.u16()?;
            let len = r.u16()?;
            fields.push(Field {
                ie,
                enterprise: 0,
                len,
                scope: i < scope_len / 4,
            });
        }
        // The flowset's padding (RFC 3954 §6.1) is shorter than a template
        // header: the caller's loop stops at it.
    } else {
        let count = r.u16()?;
        for _ in 0..count {
            let ie = r.u16()?;
            let len = r.u16()?;
            fields.push(Field {
                ie,
                enterprise: 0,
                len,
                scope: false,
            });
        }
        if count == 0 {
            return None;
        }
    }
    // Variable-length fields (length 65535, H3C NetStream) are encoded as
    // in IPFIX (RFC 7011 §7); the template compiles them the same way.
    Some((id, fields))
}

fn ipfix_template(r: &mut Reader<'_>, options: bool) -> Option<(u16, Vec<Field>)> {
    let id = r.u16()?;
    let count = r.u16()?;
    if count == 0 {
        return Some((id, Vec::new()));
    }
    let scope_count = if options { r.u16()? } else { 0 };
    if scope_count > count {
        return None;
    }
    let mut fields = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let raw = r.u16()?;
        let len = r.u16()?;
        let enterprise = if raw & 0x8000 != 0 { r.u32()? } else { 0 };
        fields.push(Field {
            ie: raw & 0x7fff,
            enterprise,
            len,
            // IPFIX scope fields are ordinary IEs (e.g. selectorId).
            scope: false,
        });
    }
    Some((id, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORTER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn be16(v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&x.to_be_bytes());
    }
    fn be32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_be_bytes());
    }

    /// An IPFIX message from sets (id, body).
    fn ipfix(domain: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (id, set) in sets {
            be16(&mut body, *id);
            be16(&mut body, (set.len() + 4) as u16);
            body.extend_from_slice(set);
        }
        let mut m = Vec::new();
        be16(&mut m, 10);
        be16(&mut m, (16 + body.len()) as u16);
        be32(&mut m, 1_790_000_000);
        be32(&mut m, 1);
        be32(&mut m, domain);
        m.extend_from_slice(&body);
        m
    }

    /// Cisco IOS-XR style: one template with both families' address fields,
    /// the unused family zeroed. The family follows the non-zero addresses,
    /// not the field order; zero padding after the last set is no error.
    #[test]
    fn data_still_waiting_for_its_template_at_shutdown_is_counted() {
        let mut d = Decoder::new(Limits::default());
        let mut out = Vec::new();
        let data = ipfix(7, &[(256, data_v6(1000, 2, 1))]);
        d.decode(EXPORTER, &data, 1_790_000_000, &mut out);
        assert_eq!(d.stats.dropped(), 0);
        d.abandon_held();
        assert_eq!(d.stats.dropped(), 1, "{:?}", d.stats);
        assert!(out.is_empty());
    }

    #[test]
    fn a_record_with_both_families_in_its_template_takes_the_one_that_is_set() {
        let mut t = Vec::new();
        be16(&mut t, 300);
        be16(&mut t, 6);
        for (ie, len) in [(27u16, 16u16), (28, 16), (8, 4), (12, 4), (1, 8), (2, 8)] {
            be16(&mut t, ie);
            be16(&mut t, len);
        }
        let record = |v6: bool, bytes: u64| {
            let mut d = Vec::new();
            let (s6, d6) = if v6 {
                ("2001:db8:a::1", "2001:db8:b::1")
            } else {
                ("::", "::")
            };
            d.extend_from_slice(&s6.parse::<std::net::Ipv6Addr>().unwrap().octets());
            d.extend_from_slice(&d6.parse::<std::net::Ipv6Addr>().unwrap().octets());
            let (s4, d4) = if v6 {
                ([0u8; 4], [0u8; 4])
            } else {
                ([192, 0, 2, 7], [198, 51, 100, 9])
            };
            d.extend_from_slice(&s4);
            d.extend_from_slice(&d4);
            d.extend_from_slice(&bytes.to_be_bytes());
            d.extend_from_slice(&2u64.to_be_bytes());
            d
        };
        let mut data = record(true, 3000);
        data.extend(record(false, 1000));
        data.extend(record(true, 1500));
        let mut message = ipfix(7, &[(2, t), (300, data)]);
        message.extend_from_slice(&[0u8; 6]);
        let len = message.len() as u16;
        message[2..4].copy_from_slice(&len.to_be_bytes());
        let mut d = Decoder::new(Limits::default());
        let mut out = Vec::new();
        d.decode(EXPORTER, &message, 1_790_000_000, &mut out);
        assert_eq!(d.stats.dropped(), 0, "{:?}", d.stats);
        let v6: u64 = out.iter().filter(|r| r.src.is_ipv6()).map(|r| r.bytes).sum();
        let v4: u64 = out.iter().filter(|r| r.src.is_ipv4()).map(|r| r.bytes).sum();
        assert_eq!((v4, v6), (1000, 4500), "IPv6 share 82 %, not 18 %");
    }

    /// RFC 7133 packet reports (Juniper inline-monitoring and others): no
    /// address or counter fields, only the sampled frame's first bytes. The
    /// record counts one packet of the IP header's length, truncated
    /// section or not.
    #[test]
    fn packet_reports_count_the_sampled_frame_by_its_ip_header() {
        use etherparse::PacketBuilder;
        let frame = |v6: bool, payload: usize| {
            let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            let builder = if v6 {
                let src = "2001:db8:a::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
                let dst = "2001:db8:b::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
                builder.ipv6(src, dst, 64)
            } else {
                builder.ipv4([192, 0, 2, 7], [198, 51, 100, 9], 64)
            };
            let builder = builder.tcp(44321, 443, 1, 65535);
            let mut out = Vec::new();
            builder.write(&mut out, &vec![0u8; payload]).unwrap();
            out.truncate(128); // the exporter's section length
            out
        };
        let mut t = Vec::new();
        be16(&mut t, 400);
        be16(&mut t, 2);
        for (ie, len) in [(10u16, 4u16), (315, 65535)] {
            be16(&mut t, ie);
            be16(&mut t, len);
        }
        let mut data = Vec::new();
        for (v6, payload) in [(true, 1200), (false, 500), (true, 20)] {
            be32(&mut data, 3);
            let f = frame(v6, payload);
            data.push(f.len() as u8);
            data.extend_from_slice(&f);
        }
        let mut d = Decoder::new(Limits::default());
        let mut out = Vec::new();
        d.decode(EXPORTER, &ipfix(9, &[(2, t), (400, data)]), 1_790_000_000, &mut out);
        assert_eq!(d.stats.dropped(), 0, "{:?}", d.stats);
        assert_eq!(out.len(), 3);
        let v6: Vec<_> = out
            .iter()
            .filter(|r| r.src.is_ipv6())
            .map(|r| (r.bytes, r.packets))
            .collect();
        let v4: Vec<_> = out
            .iter()
            .filter(|r| r.src.is_ipv4())
            .map(|r| (r.bytes, r.packets))
            .collect();
        // IPv6: 40 + 20 (TCP) + payload; IPv4: 20 + 20 + payload.
        assert_eq!(v6, vec![(1260, 1), (80, 1)]);
        assert_eq!(v4, vec![(540, 1)]);
        assert_eq!((out[0].dst_port, out[0].protocol, out[0].input_interface), (443, 6, 3));
    }

    /// Template 256: src/dst IPv6, octets (8), packets (8), selectorId (2).
    fn template_v6() -> Vec<u8> {
        let mut t = Vec::new();
        be16(&mut t, 256);
        be16(&mut t, 5);
        for (ie, len) in [(27u16, 16u16), (28, 16), (1, 8), (2, 8), (302, 2)] {
            be16(&mut t, ie);
            be16(&mut t, len);
        }
        t
    }

    fn data_v6(bytes: u64, packets: u64, selector: u16) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&"2001:db8:a:1::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        d.extend_from_slice(&"2001:db8:5e::10".parse::<std::net::Ipv6Addr>().unwrap().octets());
        d.extend_from_slice(&bytes.to_be_bytes());
        d.extend_from_slice(&packets.to_be_bytes());
        be16(&mut d, selector);
        d
    }

    /// Options template 257: scope selectorId (2), samplingPacketInterval
    /// (4), samplingPacketSpace (4).
    fn options_template() -> Vec<u8> {
        let mut t = Vec::new();
        be16(&mut t, 257);
        be16(&mut t, 3);
        be16(&mut t, 1);
        for (ie, len) in [(302u16, 2u16), (305, 4), (306, 4)] {
            be16(&mut t, ie);
            be16(&mut t, len);
        }
        t
    }

    #[test]
    fn ipfix_data_before_its_template_is_held_then_decoded_with_the_sampler_rate() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.decode(EXPORTER, &ipfix(7, &[(256, data_v6(3000, 2, 5))]), 100, &mut out);
        assert!(out.is_empty());
        // Sampler 5 selects 1 packet and skips 99: 1 in 100.
        let mut option = Vec::new();
        be16(&mut option, 5);
        be32(&mut option, 1);
        be32(&mut option, 99);
        let message = ipfix(7, &[(3, options_template()), (257, option), (2, template_v6())]);
        d.decode(EXPORTER, &message, 101, &mut out);
        assert_eq!(out.len(), 1, "{:?}", d.stats);
        assert_eq!((out[0].bytes, out[0].packets, out[0].sampling), (3000, 2, Some(100)));
        assert_eq!(out[0].src, "2001:db8:a:1::1".parse::<IpAddr>().unwrap());
        assert_eq!(d.stats.held_then_decoded, 1);
        // Another observation domain does not share templates...
        out.clear();
        d.decode(EXPORTER, &ipfix(8, &[(256, data_v6(3000, 2, 5))]), 102, &mut out);
        assert!(out.is_empty());
        // ...but a sampler ID announced under one domain serves the exporter's
        // other domains when they announce none.
        d.decode(EXPORTER, &ipfix(8, &[(2, template_v6())]), 103, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].sampling, Some(100));
        // Held data expires and is counted.
        d.decode(EXPORTER, &ipfix(9, &[(256, data_v6(3000, 2, 5))]), 104, &mut out);
        d.decode(EXPORTER, &ipfix(9, &[]), 200, &mut out);
        assert_eq!(d.stats.drops.get(&Drop::NoTemplate), Some(&1));
    }

    #[test]
    fn templates_survive_a_restart() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.decode(EXPORTER, &ipfix(7, &[(2, template_v6())]), 100, &mut out);
        let saved = d.save_templates();
        let mut restarted = Decoder::default();
        assert_eq!(restarted.load_templates(&saved), 1);
        restarted.decode(EXPORTER, &ipfix(7, &[(256, data_v6(1500, 1, 0))]), 101, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn lying_and_absurd_input_is_counted_never_a_panic() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        // IPFIX length field that disagrees with the datagram.
        let mut m = ipfix(7, &[(2, template_v6())]);
        m[3] = m[3].wrapping_add(9);
        d.decode(EXPORTER, &m, 100, &mut out);
        assert_eq!(d.stats.drops.get(&Drop::BadLength), Some(&1));
        // A set longer than the message.
        let mut m = ipfix(7, &[(2, template_v6())]);
        m[19] = 0xff;
        d.decode(EXPORTER, &m, 100, &mut out);
        assert_eq!(d.stats.drops.get(&Drop::BadLength), Some(&2));
        // More bytes than 65535 per packet; packet counts near 2^64 (found
        // by fuzzing: the plausibility check itself overflowed).
        d.decode(EXPORTER, &ipfix(7, &[(2, template_v6())]), 100, &mut out);
        d.decode(EXPORTER, &ipfix(7, &[(256, data_v6(10_000_000, 1, 0))]), 100, &mut out);
        d.decode(
            EXPORTER,
            &ipfix(7, &[(256, data_v6(1, u64::MAX / 3, 0))]),
            100,
            &mut out,
        );
        assert_eq!(d.stats.drops.get(&Drop::AbsurdCount), Some(&2));
        // A template flood from one source stops at the cap.
        let mut flood = Decoder::new(Limits {
            templates_per_source: 10,
            ..Limits::default()
        });
        for id in 256..300u16 {
            let mut t = template_v6();
            t[..2].copy_from_slice(&id.to_be_bytes());
            flood.decode(EXPORTER, &ipfix(7, &[(2, t)]), 100, &mut out);
        }
        assert_eq!(flood.stats.drops.get(&Drop::TemplateFlood), Some(&34));
        // Zero-length fields make an empty record: refused as a template.
        let mut zero = Vec::new();
        be16(&mut zero, 260);
        be16(&mut zero, 1);
        be16(&mut zero, 1);
        be16(&mut zero, 0);
        d.decode(EXPORTER, &ipfix(7, &[(2, zero)]), 100, &mut out);
        assert_eq!(d.stats.drops.get(&Drop::BadTemplate), Some(&1));
        // Pseudo-random garbage and every prefix of a valid message.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..2000 {
            let mut g = vec![0u8; n % 300];
            for b in &mut g {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if g.len() > 2 {
                g[1] = [5, 9, 10][n % 3];
                g[0] = 0;
            }
            d.decode(EXPORTER, &g, 100, &mut out);
        }
        let valid = ipfix(
            7,
            &[(3, options_template()), (2, template_v6()), (256, data_v6(1500, 1, 5))],
        );
        for cut in 0..valid.len() {
            d.decode(EXPORTER, &valid[..cut], 100, &mut out);
        }
    }

    #[test]
    fn netflow_v5_records_and_header_sampling() {
        let mut m = Vec::new();
        be16(&mut m, 5);
        be16(&mut m, 1);
        be32(&mut m, 60_000); // uptime ms
        be32(&mut m, 1_790_000_000);
        be32(&mut m, 0);
        be32(&mut m, 0);
        m.extend_from_slice(&[0, 0]);
        be16(&mut m, 0x4000 | 64); // mode 1, 1 in 64
        m.extend_from_slice(&[192, 0, 2, 10, 198, 51, 100, 7, 0, 0, 0, 0]);
        be16(&mut m, 3);
        be16(&mut m, 4);
        be32(&mut m, 10); // packets
        be32(&mut m, 4000); // octets
        be32(&mut m, 50_000); // first
        be32(&mut m, 58_000); // last: 2 s before the export
        be16(&mut m, 40000);
        be16(&mut m, 443);
        m.extend_from_slice(&[0, 0x18, 6, 0, 0, 0, 0, 0, 24, 24, 0, 0]);
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.decode(EXPORTER, &m, 0, &mut out);
        assert_eq!(out.len(), 1, "{:?}", d.stats);
        let r = &out[0];
        assert_eq!(
            (r.bytes, r.packets, r.sampling, r.protocol, r.dst_port),
            (4000, 10, Some(64), 6, 443)
        );
        assert_eq!(r.time, 1_790_000_000 - 2);
        assert_eq!(r.input_interface, 3);
        // A count that the datagram cannot hold.
        m[3] = 2;
        d.decode(EXPORTER, &m, 0, &mut out);
        assert_eq!(d.stats.drops.get(&Drop::BadLength), Some(&1));
    }
}
