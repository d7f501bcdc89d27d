//! pcap and pcapng files, read as a stream (any size, constant memory).

use crate::packet::{self, Link, Packet};
use pcap_parser::{PcapBlockOwned, PcapError, create_reader, pcapng::Block};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("opening {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("{path}: not a pcap or pcapng file")]
    NotACapture { path: String },
    #[error("{path}: damaged at byte {offset}: {reason}")]
    Damaged {
        path: String,
        offset: usize,
        reason: String,
    },
}

/// What reading a capture gave besides its packets.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CaptureStats {
    pub frames: u64,
    pub ip_packets: u64,
    /// Frames that are not IPv4/IPv6 (ARP, LLDP, ...) or too short to parse.
    pub other_frames: u64,
    /// Frames on interfaces with a link type v6scope does not read.
    pub unsupported_link: u64,
    /// The file ends in the middle of a block.
    pub truncated_tail: bool,
}

/// Reads `path`, calling `each(unix_seconds, packet)` for every IP packet.
pub fn read(path: &Path, mut each: impl FnMut(u64, &Packet<'_>)) -> Result<CaptureStats, CaptureError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| CaptureError::Open {
        path: name.clone(),
        source,
    })?;
    let mut reader = create_reader(1 << 20, file).map_err(|_| CaptureError::NotACapture { path: name.clone() })?;
    let mut stats = CaptureStats::default();
    // Per pcapng interface: link and timestamp units per second.
    let mut interfaces: Vec<(Option<Link>, u64)> = Vec::new();
    let mut legacy_link: Option<Link> = None;
    let mut offset = 0usize;
    let mut stalled = false;
    loop {
        match reader.next() {
            Ok((size, block)) => {
                stalled = false;
                match block {
                    PcapBlockOwned::LegacyHeader(header) => legacy_link = Link::from_linktype(header.network.0),
                    PcapBlockOwned::Legacy(b) => {
                        stats.frames += 1;
                        match legacy_link {
                            Some(link) => match packet::parse(link, b.data) {
                                Some(p) => {
                                    stats.ip_packets += 1;
                                    each(u64::from(b.ts_sec), &p);
                                }
                                None => stats.other_frames += 1,
                            },
                            None => stats.unsupported_link += 1,
                        }
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let units = if idb.if_tsresol & 0x80 == 0 {
                            10u64.checked_pow(u32::from(idb.if_tsresol)).unwrap_or(1_000_000)
                        } else {
                            1u64.checked_shl(u32::from(idb.if_tsresol & 0x7f)).unwrap_or(1_000_000)
                        };
                        interfaces.push((Link::from_linktype(idb.linktype.0), units.max(1)));
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        stats.frames += 1;
                        let (link, units) = interfaces.get(epb.if_id as usize).copied().unwrap_or((None, 1));
                        let data = epb.data.get(..epb.caplen as usize).unwrap_or(epb.data);
                        match link {
                            Some(link) => match packet::parse(link, data) {
                                Some(p) => {
                                    stats.ip_packets += 1;
                                    let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                    each(ts / units, &p);
                                }
                                None => stats.other_frames += 1,
                            },
                            None => stats.unsupported_link += 1,
                        }
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                offset += size;
                reader.consume(size);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::UnexpectedEof) => {
                stats.truncated_tail = true;
                break;
            }
            Err(PcapError::Incomplete(_)) => {
                // Incomplete right after a refill: the file ends mid-block
                // (a capture cut off while being written). What came before
                // counts; the tail is reported.
                if stalled {
                    stats.truncated_tail = true;
                    break;
                }
                match reader.refill() {
                    Ok(()) => {}
                    Err(PcapError::UnexpectedEof) => {
                        stats.truncated_tail = true;
                        break;
                    }
                    Err(e) => {
                        return Err(CaptureError::Damaged {
                            path: name,
                            offset,
                            reason: format!("{e:?}"),
                        });
                    }
                }
                stalled = true;
                continue;
            }
            Err(e) => {
                return Err(CaptureError::Damaged {
                    path: name,
                    offset,
                    reason: format!("{e:?}"),
                });
            }
        }
    }
    Ok(stats)
}

/// Host names learned from a capture: DNS answers (address → the name that
/// was asked) and TLS SNI (server address → name).
#[derive(Debug, Default, Clone)]
pub struct Names {
    by_address: HashMap<IpAddr, String>,
}

impl Names {
    pub fn observe(&mut self, p: &Packet<'_>) {
        match (p.protocol, p.src_port, p.dst_port) {
            (17, 53, _) | (6, 53, _) if !p.payload.is_empty() => {
                let payload = if p.protocol == 6 {
                    p.payload.get(2..).unwrap_or_default()
                } else {
                    p.payload
                };
                for (address, name) in packet::dns_answers(payload) {
                    self.by_address.entry(address).or_insert(name);
                }
            }
            (6, _, 443) if !p.payload.is_empty() => {
                if let Some(name) = packet::tls_sni(p.payload) {
                    // SNI is what the client asked for: it wins over DNS.
                    self.by_address.insert(p.dst, name);
                }
            }
            _ => {}
        }
    }

    pub fn name(&self, address: &IpAddr) -> Option<&str> {
        self.by_address.get(address).map(String::as_str)
    }
}
