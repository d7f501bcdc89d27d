//! One captured or sampled packet reduced to what the indicators need:
//! addresses, protocol and ports after any IPv6 extension headers, the
//! layer-3 length from the IP header (so a capture truncated by its snap
//! length still counts the bytes the packet had), and the transport payload
//! for naming hosts (DNS answers, TLS SNI).

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use std::net::IpAddr;

/// Link layer of a capture or sampled header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ethernet,
    /// Linux cooked capture v1 (DLT 113).
    LinuxSll,
    /// Linux cooked capture v2 (DLT 276).
    LinuxSll2,
    /// Bare IPv4 or IPv6 (DLT 12, 101, 228, 229; sFlow IPv4/IPv6 headers).
    Raw,
}

impl Link {
    /// The pcap LINKTYPE, if v6scope reads it.
    pub fn from_linktype(linktype: i32) -> Option<Link> {
        match linktype {
            1 => Some(Link::Ethernet),
            113 => Some(Link::LinuxSll),
            276 => Some(Link::LinuxSll2),
            12 | 101 | 228 | 229 => Some(Link::Raw),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol after IPv6 extension headers.
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// IPv4 total length, or IPv6 payload length + 40.
    pub l3_len: u32,
    /// Transport payload as far as it was captured.
    pub payload: &'a [u8],
}

/// Parses one frame; `None` for non-IP frames and garbage.
pub fn parse(link: Link, frame: &[u8]) -> Option<Packet<'_>> {
    let sliced = match link {
        Link::Ethernet => LaxSlicedPacket::from_ethernet(frame).ok()?,
        Link::Raw => LaxSlicedPacket::from_ip(frame).ok()?,
        Link::LinuxSll => {
            let ether_type = u16::from_be_bytes(frame.get(14..16)?.try_into().ok()?);
            LaxSlicedPacket::from_ether_type(EtherType(ether_type), frame.get(16..)?)
        }
        Link::LinuxSll2 => {
            let ether_type = u16::from_be_bytes(frame.get(0..2)?.try_into().ok()?);
            LaxSlicedPacket::from_ether_type(EtherType(ether_type), frame.get(20..)?)
        }
    };
    let (src, dst, l3_len, ip_payload) = match sliced.net.as_ref()? {
        LaxNetSlice::Ipv4(ip) => {
            let h = ip.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                u32::from(h.total_len()),
                ip.payload(),
            )
        }
        LaxNetSlice::Ipv6(ip) => {
            let h = ip.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                u32::from(h.payload_length()) + 40,
                ip.payload(),
            )
        }
        LaxNetSlice::Arp(_) => return None,
    };
    let protocol = ip_payload.ip_number.0;
    let (src_port, dst_port, payload) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port(), t.payload()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), u.payload()),
        _ => (0, 0, &[][..]),
    };
    Some(Packet {
        src,
        dst,
        protocol,
        src_port,
        dst_port,
        l3_len,
        payload,
    })
}

/// The server name of a TLS ClientHello (SNI), when `payload` starts one.
pub fn tls_sni(payload: &[u8]) -> Option<String> {
    let mut r = crate::wire::Reader::new(payload);
    // Record: handshake (22), version, length; handshake: client_hello (1).
    (r.u8()? == 22).then_some(())?;
    r.skip(4)?;
    (r.u8()? == 1).then_some(())?;
    r.skip(3 + 2 + 32)?;
    let session = r.u8()? as usize;
    r.skip(session)?;
    let suites = r.u16()? as usize;
    r.skip(suites)?;
    let compression = r.u8()? as usize;
    r.skip(compression)?;
    let extensions = r.u16()? as usize;
    let mut ext = crate::wire::Reader::new(r.take(extensions.min(r.remaining()))?);
    while ext.remaining() >= 4 {
        let kind = ext.u16()?;
        let len = ext.u16()? as usize;
        let body = ext.take(len)?;
        if kind != 0 {
            continue;
        }
        let mut names = crate::wire::Reader::new(body);
        names.skip(2)?;
        while names.remaining() >= 3 {
            let name_type = names.u8()?;
            let name_len = names.u16()? as usize;
            let name = names.take(name_len)?;
            if name_type == 0 {
                let name = std::str::from_utf8(name).ok()?;
                if !name.is_empty() && name.len() <= 253 && name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Some(name.to_ascii_lowercase());
                }
            }
        }
    }
    None
}

/// The (address, name) pairs of a DNS response's A/AAAA answers, named by
/// the question (so a CNAME chain names its addresses by what was asked).
pub fn dns_answers(payload: &[u8]) -> Vec<(IpAddr, String)> {
    use hickory_proto::op::Message;
    use hickory_proto::rr::RData;
    let Ok(message) = Message::from_vec(payload) else {
        return Vec::new();
    };
    let Some(question) = message.queries.first() else {
        return Vec::new();
    };
    let name = question.name().to_utf8().trim_end_matches('.').to_ascii_lowercase();
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((IpAddr::V4(a.0), name.clone())),
            RData::AAAA(a) => Some((IpAddr::V6(a.0), name.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    #[test]
    fn ipv6_udp_keeps_protocol_ports_and_the_ip_length_even_when_cut() {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6(
                [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
            .udp(5353, 53);
        let payload = [7u8; 100];
        let mut frame = Vec::new();
        builder.write(&mut frame, &payload).unwrap();
        let p = parse(Link::Ethernet, &frame).unwrap();
        assert_eq!(p.protocol, 17);
        assert_eq!((p.src_port, p.dst_port), (5353, 53));
        assert_eq!(p.l3_len, 40 + 8 + 100);
        // Snap length cut: the IP header still says how long the packet was.
        let cut = parse(Link::Ethernet, &frame[..14 + 40 + 8 + 10]).unwrap();
        assert_eq!(cut.l3_len, 148);
        assert!(parse(Link::Ethernet, &frame[..10]).is_none());
        assert!(parse(Link::Raw, b"garbage").is_none());
    }

    #[test]
    fn sni_from_a_client_hello_and_garbage_is_none() {
        let name = b"video.example.test";
        let mut sni = vec![0, 0];
        let list_len = (3 + name.len()) as u16;
        let ext_len = list_len + 2;
        sni.extend_from_slice(&ext_len.to_be_bytes());
        sni.extend_from_slice(&list_len.to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        let mut hello = vec![3, 3];
        hello.extend_from_slice(&[0; 32]);
        hello.push(0);
        hello.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        hello.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        hello.extend_from_slice(&sni);
        let mut record = vec![22, 3, 1];
        record.extend_from_slice(&((hello.len() + 4) as u16).to_be_bytes());
        record.push(1);
        record.extend_from_slice(&[0, (hello.len() >> 8) as u8, hello.len() as u8]);
        record.extend_from_slice(&hello);
        assert_eq!(tls_sni(&record).as_deref(), Some("video.example.test"));
        assert_eq!(tls_sni(&record[..20]), None);
        assert_eq!(tls_sni(b"GET / HTTP/1.1"), None);
    }
}
