//! A small DNS client on plain sockets: queries to the configured recursive
//! resolvers, and direct queries to one authoritative address over UDP or TCP.
//!
//! Written on `hickory-proto` for the wire format so that every step is
//! visible: RTT, flags, AA, rcode, truncation, and so that a hostile answer
//! (wrong id, wrong question, garbage) is an error for that query only.

use crate::policy::AddressPolicy;
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
pub use hickory_proto::rr::RecordType;
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{OnceCell, oneshot};
use v6scope_model::{ErrorKind, ProbeError, Transport};

/// EDNS buffer size advertised (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;
const UDP_RECV_BUFFER: usize = 4096;

pub type RateLimiter = governor::DefaultDirectRateLimiter;

/// A received answer and how it came.
#[derive(Debug, Clone)]
pub struct Answer {
    pub message: Message,
    pub rtt: Duration,
    pub transport: Transport,
}

impl Answer {
    pub fn rcode(&self) -> ResponseCode {
        self.message.metadata.response_code
    }

    pub fn flags(&self) -> String {
        let m = &self.message.metadata;
        let mut flags = Vec::new();
        for (set, name) in [
            (m.authoritative, "aa"),
            (m.truncation, "tc"),
            (m.recursion_desired, "rd"),
            (m.recursion_available, "ra"),
            (m.authentic_data, "ad"),
            (m.checking_disabled, "cd"),
        ] {
            if set {
                flags.push(name);
            }
        }
        flags.join(" ")
    }
}

/// The conventional upper-case mnemonic of an rcode (NOERROR, NXDOMAIN, ...).
pub fn rcode_name(code: ResponseCode) -> String {
    match u16::from(code) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}"),
    }
}

pub fn parse_name(name: &str) -> Result<Name, ProbeError> {
    let mut n = Name::from_ascii(name)
        .map_err(|e| ProbeError::new(ErrorKind::DnsMalformed, format!("bad name '{name}': {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}

/// Presentation form without the trailing dot, lower case.
pub fn name_str(name: &Name) -> String {
    let s = name.to_lowercase().to_ascii();
    let trimmed = s.trim_end_matches('.');
    if trimmed.is_empty() {
        ".".to_string()
    } else {
        trimmed.to_string()
    }
}

fn build_query(name: &Name, rtype: RecordType, recursion_desired: bool) -> Result<(Message, Vec<u8>), ProbeError> {
    let mut msg = Message::query();
    msg.add_query(Query::query(name.clone(), rtype));
    msg.metadata.recursion_desired = recursion_desired;
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    msg.set_edns(edns);
    let bytes = msg
        .to_vec()
        .map_err(|e| ProbeError::new(ErrorKind::DnsMalformed, format!("encoding query: {e}")))?;
    Ok((msg, bytes))
}

/// A response matches when the id, the QR bit and the question match.
fn matches(query: &Message, response: &Message) -> bool {
    if response.metadata.id != query.metadata.id || response.metadata.message_type != MessageType::Response {
        return false;
    }
    match (query.queries.first(), response.queries.first()) {
        (Some(q), Some(r)) => {
            q.query_type == r.query_type
                && q.query_class == r.query_class
                && q.name.to_lowercase() == r.name.to_lowercase()
        }
        // Some servers omit the question on errors (e.g. FORMERR, REFUSED).
        (Some(_), None) => response.metadata.response_code != ResponseCode::NoError,
        _ => false,
    }
}

pub fn io_error(context: &str, e: &std::io::Error) -> ProbeError {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
        K::TimedOut => ErrorKind::Timeout,
        K::NetworkUnreachable | K::HostUnreachable | K::AddrNotAvailable => ErrorKind::Unreachable,
        _ => ErrorKind::Io,
    };
    ProbeError::new(kind, format!("{context}: {e}"))
}

fn timeout_error(context: &str, limit: Duration) -> ProbeError {
    ProbeError::new(
        ErrorKind::Timeout,
        format!("{context}: no answer within {} ms", limit.as_millis()),
    )
}

fn unspecified_for(server: SocketAddr) -> SocketAddr {
    if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    }
}

async fn exchange_udp(
    server: SocketAddr,
    query: &Message,
    bytes: &[u8],
    limit: Duration,
    policy: &AddressPolicy,
) -> Result<Answer, ProbeError> {
    policy.check(server.ip())?;
    let start = Instant::now();
    let socket = UdpSocket::bind(unspecified_for(server))
        .await
        .map_err(|e| io_error("udp bind", &e))?;
    socket
        .connect(server)
        .await
        .map_err(|e| io_error(&format!("udp connect {server}"), &e))?;
    socket
        .send(bytes)
        .await
        .map_err(|e| io_error(&format!("udp send {server}"), &e))?;
    let mut buf = vec![0u8; UDP_RECV_BUFFER];
    let deadline = start + limit;
    loop {
        let received = tokio::time::timeout_at(deadline.into(), socket.recv(&mut buf))
            .await
            .map_err(|_| timeout_error(&format!("udp {server}"), limit))?
            .map_err(|e| io_error(&format!("udp recv {server}"), &e))?;
        // A datagram that does not parse or does not match is ignored, as a
        // resolver would: it may be spoofed or stale. The deadline still holds.
        match Message::from_vec(&buf[..received]) {
            Ok(message) if matches(query, &message) => {
                return Ok(Answer {
                    message,
                    rtt: start.elapsed(),
                    transport: Transport::Udp,
                });
            }
            Ok(_) => tracing::debug!(%server, "ignoring non-matching DNS response"),
            Err(e) => tracing::debug!(%server, error = %e, "ignoring malformed DNS response"),
        }
    }
}

async fn exchange_tcp(
    server: SocketAddr,
    query: &Message,
    bytes: &[u8],
    limit: Duration,
    policy: &AddressPolicy,
) -> Result<Answer, ProbeError> {
    policy.check(server.ip())?;
    let start = Instant::now();
    let work = async {
        let mut stream = TcpStream::connect(server)
            .await
            .map_err(|e| io_error(&format!("tcp connect {server}"), &e))?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        framed.extend_from_slice(bytes);
        stream
            .write_all(&framed)
            .await
            .map_err(|e| io_error(&format!("tcp send {server}"), &e))?;
        let length = stream
            .read_u16()
            .await
            .map_err(|e| io_error(&format!("tcp read {server}"), &e))? as usize;
        let mut buf = vec![0u8; length];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| io_error(&format!("tcp read {server}"), &e))?;
        checked_answer("tcp", server, query, &buf)
    };
    let message = tokio::time::timeout(limit, work)
        .await
        .map_err(|_| timeout_error(&format!("tcp {server}"), limit))??;
    Ok(Answer {
        message,
        rtt: start.elapsed(),
        transport: Transport::Tcp,
    })
}

/// One query to one server, if `policy` permits its address.
/// `transport: None` means UDP, then TCP if truncated.
pub async fn exchange(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    recursion_desired: bool,
    transport: Option<Transport>,
    limit: Duration,
    policy: &AddressPolicy,
) -> Result<Answer, ProbeError> {
    let (query, bytes) = build_query(name, rtype, recursion_desired)?;
    match transport {
        Some(Transport::Tcp) => exchange_tcp(server, &query, &bytes, limit, policy).await,
        Some(Transport::Udp) => exchange_udp(server, &query, &bytes, limit, policy).await,
        None => {
            let answer = exchange_udp(server, &query, &bytes, limit, policy).await?;
            if answer.message.metadata.truncation {
                exchange_tcp(server, &query, &bytes, limit, policy).await
            } else {
                Ok(answer)
            }
        }
    }
}

/// The message in an answer that can only be taken or refused (a TCP
/// stream, or a datagram a shared socket matched by id alone): it must parse
/// and answer `query`.
fn checked_answer(transport: &str, server: SocketAddr, query: &Message, bytes: &[u8]) -> Result<Message, ProbeError> {
    let message = Message::from_vec(bytes).map_err(|e| {
        ProbeError::new(
            ErrorKind::DnsMalformed,
            format!("{transport} {server}: malformed answer: {e}"),
        )
    })?;
    if !matches(query, &message) {
        return Err(ProbeError::new(
            ErrorKind::DnsMalformed,
            format!("{transport} {server}: answer does not match the question"),
        ));
    }
    Ok(message)
}

/// Queries to one resolver share one UDP socket; answers are matched to
/// waiting queries by message id (and then checked against the question).
/// Opening a socket per query costs more than the query itself at tens of
/// thousands of queries per second.
struct UdpMux {
    socket: Arc<UdpSocket>,
    pending: Arc<std::sync::Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>>,
}

/// A connected UDP socket with a large receive buffer: a burst of answers
/// to one shared socket must not be dropped by the kernel.
fn shared_udp_socket(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = bound_udp_socket(server, |_| Ok(()))?;
    socket.connect(&server.into())?;
    UdpSocket::from_std(socket.into())
}

/// A non-blocking UDP socket of `like`'s family with a 4 MiB receive
/// buffer, given its options by `prepare`, bound to the wildcard address.
pub(crate) fn bound_udp_socket(
    like: SocketAddr,
    prepare: impl FnOnce(&socket2::Socket) -> std::io::Result<()>,
) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(like), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    prepare(&socket)?;
    socket.bind(&unspecified_for(like).into())?;
    Ok(socket)
}

/// First retransmission of an unanswered query to a resolver.
const RETRANSMIT_AFTER: Duration = Duration::from_millis(400);

/// Sockets per resolver: spreads bursts over several receive buffers.
const MUX_SOCKETS: usize = 8;

impl UdpMux {
    async fn open(server: SocketAddr, policy: &AddressPolicy) -> Result<UdpMux, ProbeError> {
        // The resolver is the operator's choice, but still checked: the
        // caller puts it on the allow list (see `policy`).
        policy.check(server.ip())?;
        let socket =
            Arc::new(shared_udp_socket(server).map_err(|e| io_error(&format!("udp socket for {server}"), &e))?);
        let pending: Arc<std::sync::Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>> = Arc::default();
        let (reader, waiting) = (socket.clone(), Arc::downgrade(&pending));
        tokio::spawn(async move {
            let mut buf = vec![0u8; UDP_RECV_BUFFER];
            loop {
                let Ok(n) = reader.recv(&mut buf).await else {
                    // ICMP errors surface here on a connected socket; the
                    // waiting queries time out on their own.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let Some(pending) = waiting.upgrade() else { return };
                if n < 2 {
                    continue;
                }
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                let sender = pending.lock().expect("mux lock").remove(&id);
                if let Some(sender) = sender {
                    let _ = sender.send(buf[..n].to_vec());
                }
            }
        });
        Ok(UdpMux { socket, pending })
    }

    async fn exchange(&self, server: SocketAddr, query: &mut Message, limit: Duration) -> Result<Answer, ProbeError> {
        let start = Instant::now();
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut pending = self.pending.lock().expect("mux lock");
            let mut id: u16 = rand::random();
            while pending.contains_key(&id) {
                id = rand::random();
            }
            pending.insert(id, tx);
            id
        };
        query.metadata.id = id;
        let forget = || {
            self.pending.lock().expect("mux lock").remove(&id);
        };
        let bytes = match query.to_vec() {
            Ok(b) => b,
            Err(e) => {
                forget();
                return Err(ProbeError::new(ErrorKind::DnsMalformed, format!("encoding query: {e}")));
            }
        };
        // Retransmit the same query (same id) with a doubling interval until
        // the limit, as stub resolvers do: one datagram lost in a burst then
        // costs a fraction of a second, not the whole timeout.
        let deadline = tokio::time::Instant::from_std(start + limit);
        let mut interval = RETRANSMIT_AFTER;
        let mut rx = rx;
        let received = loop {
            if let Err(e) = self.socket.send(&bytes).await {
                forget();
                return Err(io_error(&format!("udp send {server}"), &e));
            }
            let wait_until = (tokio::time::Instant::now() + interval).min(deadline);
            match tokio::time::timeout_at(wait_until, &mut rx).await {
                Ok(Ok(bytes)) => break bytes,
                Ok(Err(_)) => {
                    forget();
                    return Err(timeout_error(&format!("udp {server}"), limit));
                }
                Err(_) if wait_until >= deadline => {
                    forget();
                    return Err(timeout_error(&format!("udp {server}"), limit));
                }
                Err(_) => interval *= 2,
            }
        };
        Ok(Answer {
            message: checked_answer("udp", server, query, &received)?,
            rtt: start.elapsed(),
            transport: Transport::Udp,
        })
    }
}

/// The configured recursive resolvers, tried in turn with bounded retries.
#[derive(Clone)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    attempts: u32,
    limiter: Option<Arc<RateLimiter>>,
    /// Per resolver, a small pool of shared sockets, used in turn.
    muxes: Arc<Vec<Vec<OnceCell<UdpMux>>>>,
    next_mux: Arc<std::sync::atomic::AtomicUsize>,
    /// Caps queries in flight to the resolvers, so a burst of targets does
    /// not overrun a resolver's receive buffer.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// `--iterative`: no recursive resolver; questions are answered by
    /// walking from the root (then `servers` are the root servers).
    iterative: Option<Arc<crate::iterative::Iterative>>,
    /// Which addresses may be asked at all (the resolvers included).
    policy: Arc<AddressPolicy>,
    /// Shared sockets for direct questions to name servers.
    direct_udp: Arc<crate::shared_udp::SharedUdp>,
}

/// Default cap on resolver queries in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;

impl Resolver {
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration, attempts: u32, limiter: Option<Arc<RateLimiter>>) -> Self {
        let muxes = Arc::new(
            servers
                .iter()
                .map(|_| (0..MUX_SOCKETS).map(|_| OnceCell::new()).collect())
                .collect(),
        );
        Resolver {
            servers,
            timeout,
            attempts: attempts.max(1),
            limiter,
            muxes,
            next_mux: Arc::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_IN_FLIGHT)),
            iterative: None,
            policy: Arc::default(),
            direct_udp: Arc::default(),
        }
    }

    /// Every query asks `policy` first.
    pub fn with_policy(mut self, policy: AddressPolicy) -> Self {
        let policy = Arc::new(policy);
        if let Some(iterative) = &self.iterative {
            self.iterative = Some(Arc::new(iterative.with_policy(policy.clone())));
        }
        self.policy = policy;
        self
    }

    /// The scan policy the queries obey.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// The built-in iterative resolver, starting at `roots`.
    pub fn iterative(roots: Vec<std::net::IpAddr>, timeout: Duration, limiter: Option<Arc<RateLimiter>>) -> Self {
        let servers = roots.iter().map(|&ip| SocketAddr::new(ip, 53)).collect();
        let mut resolver = Resolver::new(servers, timeout, 1, limiter);
        resolver.iterative = Some(Arc::new(crate::iterative::Iterative::new(roots, timeout)));
        resolver
    }

    /// Whether this is the built-in iterative resolver.
    pub fn is_iterative(&self) -> bool {
        self.iterative.is_some()
    }

    /// Who answers: the resolvers' addresses, or the built-in walk.
    pub fn describe(&self) -> String {
        let addresses: Vec<String> = self.servers.iter().map(|s| s.ip().to_string()).collect();
        if self.iterative.is_some() {
            format!("the built-in iterative resolver (roots {})", addresses.join(", "))
        } else {
            format!("resolver {}", addresses.join(", "))
        }
    }

    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.in_flight = Arc::new(tokio::sync::Semaphore::new(max.max(1)));
        self
    }

    /// One recursive query to resolver `index`: shared UDP socket, TCP when truncated.
    async fn exchange_with(&self, index: usize, name: &Name, rtype: RecordType) -> Result<Answer, ProbeError> {
        let server = self.servers[index];
        let _permit = self.in_flight.acquire().await.expect("semaphore never closed");
        let slot = self.next_mux.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % MUX_SOCKETS;
        let mux = self.muxes[index][slot]
            .get_or_try_init(|| UdpMux::open(server, &self.policy))
            .await?;
        let (mut query, _) = build_query(name, rtype, true)?;
        let answer = mux.exchange(server, &mut query, self.timeout).await?;
        if answer.message.metadata.truncation {
            let bytes = query
                .to_vec()
                .map_err(|e| ProbeError::new(ErrorKind::DnsMalformed, format!("encoding query: {e}")))?;
            return exchange_tcp(server, &query, &bytes, self.timeout, &self.policy).await;
        }
        Ok(answer)
    }

    /// One direct, non-recursive question to `server` under the scan policy
    /// and this resolver's timeout, like [`exchange`], but over the shared
    /// UDP sockets. `transport: None` means UDP, then TCP if truncated.
    pub async fn direct(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
        transport: Option<Transport>,
    ) -> Result<Answer, ProbeError> {
        self.direct_within(server, name, rtype, transport, self.timeout).await
    }

    /// [`Resolver::direct`] with its own time limit.
    pub async fn direct_within(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
        transport: Option<Transport>,
        limit: Duration,
    ) -> Result<Answer, ProbeError> {
        let (mut query, mut bytes) = build_query(name, rtype, false)?;
        if transport == Some(Transport::Tcp) {
            return exchange_tcp(server, &query, &bytes, limit, &self.policy).await;
        }
        self.policy.check(server.ip())?;
        let (datagram, rtt) = self.direct_udp.exchange(server, &mut bytes, limit).await?;
        query.metadata.id = u16::from_be_bytes([bytes[0], bytes[1]]);
        let message = checked_answer("udp", server, &query, &datagram)?;
        if transport.is_none() && message.metadata.truncation {
            return exchange_tcp(server, &query, &bytes, limit, &self.policy).await;
        }
        Ok(Answer {
            message,
            rtt,
            transport: Transport::Udp,
        })
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Waits for the query-rate limiter, if one is set.
    pub async fn pace(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }

    /// Recursive query. SERVFAIL and timeouts move on to the next resolver.
    pub async fn query(&self, name: &Name, rtype: RecordType) -> Result<Answer, ProbeError> {
        if self.servers.is_empty() {
            return Err(ProbeError::new(ErrorKind::NotTestable, "no resolver configured"));
        }
        if let Some(iterative) = &self.iterative {
            self.pace().await;
            let _permit = self.in_flight.acquire().await.expect("semaphore never closed");
            return iterative.query(name, rtype).await;
        }
        let mut last = None;
        for attempt in 0..self.attempts as usize * self.servers.len() {
            self.pace().await;
            match self.exchange_with(attempt % self.servers.len(), name, rtype).await {
                Ok(answer) if answer.rcode() == ResponseCode::ServFail => {
                    last = Some(Ok(answer));
                }
                Ok(answer) => return Ok(answer),
                Err(e) => last = Some(Err(e)),
            }
        }
        last.expect("at least one attempt")
    }
}

/// The outcome of following a CNAME chain to addresses of one type.
#[derive(Debug, Default)]
pub struct Chased {
    pub chain: Vec<Name>,
    pub records: Vec<RData>,
    pub nxdomain: bool,
}

/// Maximum CNAME hops followed before giving up.
pub const MAX_CNAME_HOPS: usize = 10;

/// Looks up `rtype` for `name` through the resolver, following (and
/// recording) the CNAME chain. Loops and chains over 10 hops are errors.
pub async fn chase(resolver: &Resolver, name: &Name, rtype: RecordType) -> Result<Chased, ProbeError> {
    let mut out = Chased::default();
    let mut current = name.to_lowercase();
    let mut seen = vec![current.clone()];
    // Each round asks about the current end of the chain; resolvers normally
    // give the whole chain in one answer, so this usually runs once.
    for _round in 0..=MAX_CNAME_HOPS {
        let asked = current.clone();
        let answer = resolver.query(&asked, rtype).await?;
        let rcode = answer.rcode();
        let records: Vec<&Record> = answer.message.answers.iter().collect();
        loop {
            let here: Vec<&&Record> = records.iter().filter(|r| r.name.to_lowercase() == current).collect();
            let data: Vec<RData> = here
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.data.clone())
                .collect();
            if !data.is_empty() {
                out.records = data;
                return Ok(out);
            }
            let cname = here.iter().find_map(|r| match &r.data {
                RData::CNAME(c) => Some(c.0.to_lowercase()),
                _ => None,
            });
            match cname {
                Some(target) => {
                    if seen.contains(&target) {
                        out.chain.push(target.clone());
                        return Err(ProbeError::new(
                            ErrorKind::CnameLoop,
                            format!("CNAME loop at {} via {}", name_str(&target), chain_text(&out.chain)),
                        ));
                    }
                    out.chain.push(target.clone());
                    if out.chain.len() > MAX_CNAME_HOPS {
                        return Err(ProbeError::new(
                            ErrorKind::CnameChainTooLong,
                            format!(
                                "CNAME chain longer than {MAX_CNAME_HOPS} hops: {}",
                                chain_text(&out.chain)
                            ),
                        ));
                    }
                    seen.push(target.clone());
                    current = target;
                }
                None => break,
            }
        }
        match rcode {
            // The answer ended on a CNAME without data: ask about the new end
            // of the chain ourselves. Nothing moved means plain NODATA.
            ResponseCode::NoError if current != asked => continue,
            ResponseCode::NoError => return Ok(out),
            ResponseCode::NXDomain => {
                out.nxdomain = true;
                return Ok(out);
            }
            other => {
                return Err(ProbeError::new(
                    ErrorKind::DnsRcode,
                    format!("{} {rtype}: {}", name_str(&current), rcode_name(other)),
                ));
            }
        }
    }
    Err(ProbeError::new(
        ErrorKind::CnameChainTooLong,
        format!(
            "CNAME chain longer than {MAX_CNAME_HOPS} hops: {}",
            chain_text(&out.chain)
        ),
    ))
}

fn chain_text(chain: &[Name]) -> String {
    chain.iter().map(name_str).collect::<Vec<_>>().join(" -> ")
}

/// Records of one type owned by `owner` in a section.
pub fn records_of<'a>(records: &'a [Record], owner: &Name, rtype: RecordType) -> impl Iterator<Item = &'a RData> + 'a {
    let owner = owner.to_lowercase();
    records
        .iter()
        .filter(move |r| r.record_type() == rtype && r.name.to_lowercase() == owner && r.dns_class == DNSClass::IN)
        .map(|r| &r.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::CNAME;

    #[test]
    fn response_must_echo_question_and_id() {
        let (query, _) = build_query(&parse_name("example.test").unwrap(), RecordType::AAAA, true).unwrap();
        let mut response = query.clone();
        response.metadata.message_type = MessageType::Response;
        assert!(matches(&query, &response));
        response.metadata.id = response.metadata.id.wrapping_add(1);
        assert!(!matches(&query, &response));
        let mut other = query.clone();
        other.metadata.message_type = MessageType::Response;
        other.queries[0].query_type = RecordType::A;
        assert!(!matches(&query, &other));
    }

    #[test]
    fn names_print_without_trailing_dot() {
        assert_eq!(name_str(&parse_name("WWW.Example.TEST.").unwrap()), "www.example.test");
        assert_eq!(name_str(&Name::root()), ".");
        let _ = CNAME(Name::root());
    }

    #[tokio::test]
    async fn scan_policy_refuses_before_any_packet() {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(server).await.unwrap();
        let name = parse_name("example.test").unwrap();
        let limit = Duration::from_millis(300);
        let policy = AddressPolicy::public_only(Vec::new());
        let resolver = Resolver::new(vec![server], limit, 1, None).with_policy(policy.clone());
        let mut outcomes = Vec::new();
        for transport in [Some(Transport::Udp), Some(Transport::Tcp), None] {
            outcomes.push(exchange(server, &name, RecordType::A, false, transport, limit, &policy).await);
        }
        outcomes.push(resolver.query(&name, RecordType::A).await);
        for outcome in outcomes {
            let e = outcome.expect_err("refused");
            assert_eq!(e.kind, ErrorKind::NotTestable);
            assert!(e.message.starts_with("refused by scan policy: 127.0.0.1 is loopback"));
        }
        let mut buf = [0u8; 512];
        let quiet = Duration::from_millis(200);
        assert!(tokio::time::timeout(quiet, udp.recv(&mut buf)).await.is_err());
        assert!(tokio::time::timeout(quiet, tcp.accept()).await.is_err());
    }

    #[test]
    fn garbage_names_are_errors_not_panics() {
        assert!(parse_name(&"a".repeat(300)).is_err());
        assert!(parse_name("bad..name").is_err());
    }
}
