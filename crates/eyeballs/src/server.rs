//! The server side of the bench, in the server's namespace: the
//! authoritative DNS for the test names (answers per type, after a chosen
//! delay or as SERVFAIL/empty: knot cannot delay per type), a web server on
//! every test address, and the record of what reached them.

use crate::trial::{AnswerKind, NamePlan};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, SVCB, SvcParamKey, SvcParamValue};
use hickory_proto::rr::rdata::{A, AAAA, HTTPS};
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// The size of the large page (the path-MTU trial).
const LARGE_PAGE: usize = 64 * 1024;

/// The zone the test names live in.
pub const ZONE: &str = "eyeballs.test";

/// Something the server side saw, with when.
#[derive(Debug, Clone)]
pub enum Event {
    /// A DNS query for a test name, and when its answer went out.
    Query {
        name: String,
        rtype: RecordType,
    },
    Answered {
        name: String,
        rtype: RecordType,
    },
    /// A TCP SYN from the client (from the delay line's capture, before any
    /// delay: the time the client sent it).
    Syn {
        source_port: u16,
        destination: SocketAddr,
    },
    /// An HTTP request; `local` is the address the client connected to,
    /// `peer` the one it came from (a NAT64 pool address when translated).
    Request {
        host: String,
        local: IpAddr,
        peer: IpAddr,
    },
}

/// The shared record: the names' plans (written by the bench before each
/// trial) and the events (drained by it after each trial).
#[derive(Debug, Default)]
pub struct Journal {
    pub plans: HashMap<String, NamePlan>,
    pub events: Vec<(Instant, Event)>,
}

pub type Shared = Arc<Mutex<Journal>>;

pub(crate) fn push(shared: &Shared, event: Event) {
    let at = Instant::now();
    push_at(shared, at, event);
}

pub(crate) fn push_at(shared: &Shared, at: Instant, event: Event) {
    if let Ok(mut record) = shared.lock() {
        record.events.push((at, event));
    }
}

fn normalised(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Serves DNS on `dns`, HTTP on port 80 and HTTPS on port 443 of every
/// address until `stop`.
pub async fn serve(
    shared: Shared,
    dns: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    stop: Arc<tokio::sync::Notify>,
) -> std::io::Result<()> {
    let udp = Arc::new(UdpSocket::bind(dns).await?);
    // [::] takes IPv4 too (as mapped addresses): one listener for both families.
    let web = TcpListener::bind("[::]:80").await?;
    let secure = TcpListener::bind("[::]:443").await?;
    let tasks = [
        tokio::spawn(serve_dns(udp, Arc::clone(&shared))),
        tokio::spawn(serve_web(web, Arc::clone(&shared))),
        tokio::spawn(serve_tls(secure, shared, tokio_rustls::TlsAcceptor::from(tls))),
    ];
    stop.notified().await;
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// The next connection with the address it reached and the one it came
/// from (IPv4 ones unmapped: the listener takes both families).
async fn accept(listener: &TcpListener) -> Option<(tokio::net::TcpStream, IpAddr, IpAddr)> {
    let Ok((stream, peer)) = listener.accept().await else {
        tokio::time::sleep(Duration::from_millis(10)).await;
        return None;
    };
    let local = stream.local_addr().ok()?;
    Some((stream, local.ip().to_canonical(), peer.ip().to_canonical()))
}

async fn serve_tls(listener: TcpListener, shared: Shared, acceptor: tokio_rustls::TlsAcceptor) {
    loop {
        let Some((stream, local, peer)) = accept(&listener).await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if local == IpAddr::V6(crate::trial::V6_TLS_SLOW) {
                // TCP is up; the ServerHello is what comes late.
                tokio::time::sleep(Duration::from_millis(crate::trial::TLS_SLOW_MS)).await;
            }
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
            if let Ok(Ok(tls)) = handshake {
                answer_http(tls, local, peer, shared).await;
            }
        });
    }
}

async fn serve_dns(socket: Arc<UdpSocket>, shared: Shared) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if query.metadata.message_type != MessageType::Query || query.queries.len() != 1 {
            continue;
        }
        let question = &query.queries[0];
        let name = normalised(&question.name.to_ascii());
        let rtype = question.query_type;
        let plan = shared.lock().ok().and_then(|r| r.plans.get(&name).cloned());
        let mut response = Message::response(query.metadata.id, OpCode::Query);
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        // The client's stub talks to this server directly.
        response.metadata.recursion_available = true;
        response.add_queries(query.queries.clone());
        let mut delay = Duration::ZERO;
        match plan {
            None if name == ZONE || name.ends_with(&format!(".{ZONE}")) => {
                response.metadata.authoritative = true;
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            None => response.metadata.response_code = ResponseCode::Refused,
            Some(plan) => {
                response.metadata.authoritative = true;
                push(
                    &shared,
                    Event::Query {
                        name: name.clone(),
                        rtype,
                    },
                );
                let answer = match rtype {
                    RecordType::A => Some((&plan.a_answer, plan_records(&question.name, &plan, rtype))),
                    RecordType::AAAA => Some((&plan.aaaa_answer, plan_records(&question.name, &plan, rtype))),
                    RecordType::HTTPS if plan.https_record => {
                        for record in plan_records(&question.name, &plan, rtype) {
                            response.add_answer(record);
                        }
                        None
                    }
                    _ => None,
                };
                if let Some((how, records)) = answer {
                    delay = how.delay;
                    match how.kind {
                        AnswerKind::Records => {
                            for record in records {
                                response.add_answer(record);
                            }
                        }
                        AnswerKind::Empty => {}
                        AnswerKind::Servfail => response.metadata.response_code = ResponseCode::ServFail,
                    }
                }
            }
        }
        let Ok(bytes) = response.to_vec() else {
            continue;
        };
        let socket = Arc::clone(&socket);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let _ = socket.send_to(&bytes, peer).await;
            if response.metadata.authoritative && response.metadata.response_code != ResponseCode::NXDomain {
                push(&shared, Event::Answered { name, rtype });
            }
        });
    }
}

fn plan_records(owner: &hickory_proto::rr::Name, plan: &NamePlan, rtype: RecordType) -> Vec<Record> {
    // A short TTL: every trial has its own name anyway.
    const TTL: u32 = 5;
    match rtype {
        RecordType::A => plan
            .a
            .iter()
            .map(|a| Record::from_rdata(owner.clone(), TTL, RData::A(A(*a))))
            .collect(),
        RecordType::AAAA => plan
            .aaaa
            .iter()
            .map(|a| Record::from_rdata(owner.clone(), TTL, RData::AAAA(AAAA(*a))))
            .collect(),
        RecordType::HTTPS => {
            // ServiceMode at the name itself: plain HTTP/1.1, with both
            // families' addresses as hints.
            let params = vec![
                (SvcParamKey::Alpn, SvcParamValue::Alpn(Alpn(vec!["http/1.1".into()]))),
                (
                    SvcParamKey::Ipv4Hint,
                    SvcParamValue::Ipv4Hint(IpHint(plan.a.iter().map(|a| A(*a)).collect())),
                ),
                (
                    SvcParamKey::Ipv6Hint,
                    SvcParamValue::Ipv6Hint(IpHint(plan.aaaa.iter().map(|a| AAAA(*a)).collect())),
                ),
            ];
            let svcb = SVCB::new(1, hickory_proto::rr::Name::root(), params);
            vec![Record::from_rdata(owner.clone(), TTL, RData::HTTPS(HTTPS(svcb)))]
        }
        _ => Vec::new(),
    }
}

async fn serve_web(listener: TcpListener, shared: Shared) {
    loop {
        let Some((stream, local, peer)) = accept(&listener).await else {
            continue;
        };
        tokio::spawn(answer_http(stream, local, peer, Arc::clone(&shared)));
    }
}

/// Answers each request on the connection with a small page; records the
/// first request's Host and the address the client reached.
async fn answer_http(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    local: IpAddr,
    peer: IpAddr,
    shared: Shared,
) {
    const BODY: &str = "<!doctype html><title>v6scope eyeballs</title><p>ok</p>\n";
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    // A client under test may hold a connection open (pre-connects): the
    // bench waits for it no longer than a trial lasts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        let n = match read {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = find_head_end(&buf) {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end);
            let host = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim().eq_ignore_ascii_case("host").then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            let host = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h).to_string();
            let host = normalised(&host);
            let large = shared
                .lock()
                .ok()
                .and_then(|r| r.plans.get(&host).map(|p| p.large_page))
                .unwrap_or(false);
            push(&shared, Event::Request { host, local, peer });
            let mut body = String::from(BODY);
            // Far more than one 1280-byte packet, as a real page is.
            while large && body.len() < LARGE_PAGE {
                body.push_str("<p>padding so that the page fills many full-size packets</p>\n");
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n{body}",
                body.len()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The TCP SYN (without ACK) in a packet from the IP header on: its source
/// port and destination, or None.
pub fn tcp_syn(packet: &[u8]) -> Option<(u16, SocketAddr)> {
    let (tcp, destination): (&[u8], IpAddr) = match packet.first()? >> 4 {
        4 => {
            let header_len = usize::from(packet.first()? & 0x0f) * 4;
            if packet.get(9) != Some(&6) || header_len < 20 {
                return None;
            }
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            (packet.get(header_len..)?, IpAddr::from(dst))
        }
        6 => {
            // TCP right after the fixed header (the bench's clients send no
            // extension headers).
            if packet.get(6) != Some(&6) {
                return None;
            }
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            (packet.get(40..)?, IpAddr::from(dst))
        }
        _ => return None,
    };
    let flags = *tcp.get(13)?;
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    if flags & (SYN | ACK) != SYN {
        return None;
    }
    let source_port = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let port = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    Some((source_port, SocketAddr::new(destination, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_syns_and_only_syns() {
        let mut v6 = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        v6.extend_from_slice(&"2001:db8:e0::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&"2001:db8:e1:1::fa".parse::<std::net::Ipv6Addr>().unwrap().octets());
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[13] = 0x02;
        let syn = [v6.clone(), tcp.clone()].concat();
        assert_eq!(tcp_syn(&syn), Some((40000, "[2001:db8:e1:1::fa]:80".parse().unwrap())));
        tcp[13] = 0x12;
        assert_eq!(tcp_syn(&[v6.clone(), tcp.clone()].concat()), None);
        let mut v4 = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 192, 0, 2, 2, 203, 0, 113, 1];
        tcp[13] = 0x02;
        v4.extend_from_slice(&tcp);
        assert_eq!(tcp_syn(&v4), Some((40000, "203.0.113.1:80".parse().unwrap())));
        assert_eq!(tcp_syn(&v4[..30]), None);
        v4[9] = 17;
        assert_eq!(tcp_syn(&v4), None);
    }
}
