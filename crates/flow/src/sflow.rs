//! sFlow version 5 datagrams: flow samples (compact and expanded) with raw
//! packet headers or sampled IPv4/IPv6 records become one record per
//! sampled packet, carrying the sample's 1-in-N rate. Counter samples are
//! skipped. Bytes are the IP packet's layer-3 length (from its header), so
//! they agree with NetFlow/IPFIX octet counts.

use crate::netflow::Stats;
use crate::packet::{self, Link};
use crate::wire::Reader;
use crate::{Direction, Drop, FlowRecord};
use std::net::IpAddr;

/// More samples than fit in a UDP datagram is a lie.
const MAX_SAMPLES: u32 = 1024;
const MAX_RECORDS: u32 = 256;

#[derive(Default)]
pub struct Decoder {
    pub stats: Stats,
}

impl Decoder {
    /// Decodes one datagram; `now` (Unix seconds) timestamps its samples
    /// (sFlow carries only the agent's uptime).
    pub fn decode(&mut self, datagram: &[u8], now: u64, out: &mut Vec<FlowRecord>) {
        self.stats.datagrams += 1;
        let mut r = Reader::new(datagram);
        let Some(version) = r.u32() else {
            self.stats.drop(Drop::Truncated);
            return;
        };
        if version != 5 {
            self.stats.drop(Drop::UnknownVersion);
            return;
        }
        let header = (|| {
            let agent = match r.u32()? {
                1 => IpAddr::V4(r.ipv4()?),
                2 => IpAddr::V6(r.ipv6()?),
                _ => return None,
            };
            let sub_agent = r.u32()?;
            r.skip(8)?;
            let samples = r.u32()?;
            Some((agent, sub_agent, samples))
        })();
        let Some((agent, sub_agent, samples)) = header else {
            self.stats.drop(Drop::Truncated);
            return;
        };
        if samples > MAX_SAMPLES {
            self.stats.drop(Drop::AbsurdCount);
            return;
        }
        for _ in 0..samples {
            let (Some(format), Some(len)) = (r.u32(), r.u32()) else {
                self.stats.drop(Drop::Truncated);
                return;
            };
            let Some(body) = r.take(len as usize) else {
                self.stats.drop(Drop::BadLength);
                return;
            };
            match format {
                1 => self.flow_sample(agent, sub_agent, body, false, now, out),
                3 => self.flow_sample(agent, sub_agent, body, true, now, out),
                _ => {}
            }
        }
    }

    fn flow_sample(
        &mut self,
        agent: IpAddr,
        sub_agent: u32,
        body: &[u8],
        expanded: bool,
        now: u64,
        out: &mut Vec<FlowRecord>,
    ) {
        let mut r = Reader::new(body);
        let head = (|| {
            r.skip(4)?;
            let source = if expanded {
                let kind = r.u32()?;
                let index = r.u32()?;
                (kind << 24) | (index & 0x00ff_ffff)
            } else {
                r.u32()?
            };
            let rate = r.u32()?;
            r.skip(8)?;
            let (input, output) = if expanded {
                r.skip(4)?;
                let input = r.u32()?;
                r.skip(4)?;
                (input, r.u32()?)
            } else {
                (r.u32()? & 0x3fff_ffff, r.u32()? & 0x3fff_ffff)
            };
            let records = r.u32()?;
            Some((source, rate, input, output, records))
        })();
        let Some((source, rate, input, output, records)) = head else {
            self.stats.drop(Drop::Truncated);
            return;
        };
        if records > MAX_RECORDS {
            self.stats.drop(Drop::AbsurdCount);
            return;
        }
        for _ in 0..records {
            let (Some(format), Some(len)) = (r.u32(), r.u32()) else {
                self.stats.drop(Drop::Truncated);
                return;
            };
            let Some(record) = r.take(len as usize) else {
                self.stats.drop(Drop::BadLength);
                return;
            };
            let facts = match format {
                1 => raw_header(record),
                3 => sampled_ip(record, false),
                4 => sampled_ip(record, true),
                _ => continue,
            };
            let Some((src, dst, protocol, src_port, dst_port, l3_len)) = facts else {
                self.stats.drop(Drop::NoAddress);
                continue;
            };
            self.stats.records += 1;
            out.push(FlowRecord {
                time: now,
                exporter: agent,
                domain: sub_agent.wrapping_mul(31).wrapping_add(source),
                src,
                dst,
                protocol,
                src_port,
                dst_port,
                bytes: u64::from(l3_len),
                packets: 1,
                input_interface: input,
                output_interface: output,
                direction: Some(Direction::Ingress),
                // 0 would be a lie: every sample stands for at least itself.
                sampling: Some(rate.max(1)),
            });
            // One packet per sample: the first usable record describes it.
            break;
        }
    }
}

type Facts = (IpAddr, IpAddr, u8, u16, u16, u32);

/// Sampled header record: the packet's first bytes.
fn raw_header(record: &[u8]) -> Option<Facts> {
    let mut r = Reader::new(record);
    let protocol = r.u32()?;
    r.skip(8)?;
    let len = r.u32()? as usize;
    let header = r.take(len)?;
    let link = match protocol {
        1 => Link::Ethernet,
        11 | 12 => Link::Raw,
        _ => return None,
    };
    let p = packet::parse(link, header)?;
    Some((p.src, p.dst, p.protocol, p.src_port, p.dst_port, p.l3_len))
}

/// Sampled IPv4 (format 3) or IPv6 (format 4) record.
fn sampled_ip(record: &[u8], v6: bool) -> Option<Facts> {
    let mut r = Reader::new(record);
    let length = r.u32()?;
    let protocol = r.u32()? as u8;
    let (src, dst) = if v6 {
        (IpAddr::V6(r.ipv6()?), IpAddr::V6(r.ipv6()?))
    } else {
        (IpAddr::V4(r.ipv4()?), IpAddr::V4(r.ipv4()?))
    };
    let src_port = r.u32()? as u16;
    let dst_port = r.u32()? as u16;
    Some((src, dst, protocol, src_port, dst_port, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_be_bytes());
    }

    /// One datagram with one compact flow sample holding a sampled IPv6
    /// record (format 4) of a 1280-byte packet, 1 in 512.
    fn datagram() -> Vec<u8> {
        let mut record = Vec::new();
        be32(&mut record, 1280);
        be32(&mut record, 6);
        record.extend_from_slice(&"2001:db8:a:1::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        record.extend_from_slice(&"2001:db8:5e::10".parse::<std::net::Ipv6Addr>().unwrap().octets());
        be32(&mut record, 40000);
        be32(&mut record, 443);
        be32(&mut record, 0x18);
        be32(&mut record, 0);
        let mut sample = Vec::new();
        for x in [1u32, 3, 512, 5120, 0, 7, 9, 1] {
            be32(&mut sample, x);
        }
        be32(&mut sample, 4);
        be32(&mut sample, record.len() as u32);
        sample.extend_from_slice(&record);
        let mut d = Vec::new();
        for x in [5u32, 1] {
            be32(&mut d, x);
        }
        d.extend_from_slice(&[192, 0, 2, 1]);
        for x in [0u32, 1, 1000, 1] {
            be32(&mut d, x);
        }
        be32(&mut d, 1);
        be32(&mut d, sample.len() as u32);
        d.extend_from_slice(&sample);
        d
    }

    #[test]
    fn flow_sample_gives_one_record_with_its_rate_and_garbage_is_counted() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let d = datagram();
        decoder.decode(&d, 1_790_000_000, &mut out);
        assert_eq!(out.len(), 1, "{:?}", decoder.stats);
        let r = &out[0];
        assert_eq!(
            (r.bytes, r.packets, r.sampling, r.dst_port, r.input_interface),
            (1280, 1, Some(512), 443, 7)
        );
        assert_eq!(r.exporter, "192.0.2.1".parse::<IpAddr>().unwrap());
        for cut in 0..d.len() {
            decoder.decode(&d[..cut], 0, &mut out);
        }
        assert_eq!(out.len(), 1);
        let mut absurd = d.clone();
        absurd[27] = 0xff; // 255 samples claimed
        decoder.decode(&absurd, 0, &mut out);
        assert!(decoder.stats.dropped() > 0);
    }
}
