//! Direct (non-recursive) UDP queries to name servers over a few shared,
//! unconnected sockets per family.
//!
//! A socket per query (socket, bind, connect, two epoll registrations,
//! close) cost more than the query itself: a scan asks ~7 direct questions
//! per domain. Answers are matched to waiting queries by the server's
//! address and port and the message id, then checked against the question
//! by the caller.
//!
//! An unconnected socket hears nothing of ICMP errors unless asked:
//! `IP_RECVERR`/`IPV6_RECVERR` queue them, with the original destination and
//! the start of the query, so "port unreachable" still ends that query at
//! once as `Refused` instead of waiting out the timeout.

use crate::dns::io_error;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{OnceCell, oneshot};
use v6scope_model::{ErrorKind, ProbeError};

/// Sockets per family, used in turn: several receive buffers for bursts,
/// and several source ports.
const SOCKETS: usize = 8;
const RECV_BUFFER: usize = 4096;

type Key = (SocketAddr, u16);
type Waiting = Mutex<HashMap<Key, oneshot::Sender<Result<Vec<u8>, io::Error>>>>;

struct Shared {
    socket: Arc<UdpSocket>,
    pending: Arc<Waiting>,
}

/// The pool. Cloning a `Resolver` shares it.
#[derive(Default)]
pub(crate) struct SharedUdp {
    sockets: [[OnceCell<Shared>; SOCKETS]; 2],
    next: std::sync::atomic::AtomicUsize,
}

impl SharedUdp {
    /// Sends `bytes` (a query) to `server` and waits until `limit` for a
    /// datagram from it with the same message id, or an ICMP error. The id
    /// is rewritten first if another query to `server` on the chosen socket
    /// has it.
    pub(crate) async fn exchange(
        &self,
        server: SocketAddr,
        bytes: &mut [u8],
        limit: Duration,
    ) -> Result<(Vec<u8>, Duration), ProbeError> {
        if bytes.len() < 12 {
            return Err(ProbeError::new(ErrorKind::DnsMalformed, "query shorter than a header"));
        }
        let start = Instant::now();
        let family = usize::from(server.is_ipv6());
        let slot = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SOCKETS;
        let shared = self.sockets[family][slot]
            .get_or_try_init(|| async { Shared::open(server) })
            .await
            .map_err(|e| io_error("udp socket", &e))?;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut pending = shared.pending.lock().expect("pending lock");
            let mut id = u16::from_be_bytes([bytes[0], bytes[1]]);
            while pending.contains_key(&(server, id)) {
                id = rand::random();
            }
            pending.insert((server, id), tx);
            id
        };
        bytes[..2].copy_from_slice(&id.to_be_bytes());
        let bytes = &*bytes;
        let forget = || {
            shared.pending.lock().expect("pending lock").remove(&(server, id));
        };
        // A send reports (and clears) an ICMP error queued for any query on
        // this socket: hand the queued errors out, then try once more.
        let mut sent = shared.socket.send_to(bytes, server).await;
        if sent.is_err() {
            shared.hand_out_errors();
            sent = shared.socket.send_to(bytes, server).await;
        }
        if let Err(e) = sent {
            forget();
            return Err(io_error(&format!("udp send {server}"), &e));
        }
        match tokio::time::timeout_at((start + limit).into(), rx).await {
            Ok(Ok(Ok(datagram))) => Ok((datagram, start.elapsed())),
            Ok(Ok(Err(e))) => Err(io_error(&format!("udp recv {server}"), &e)),
            Ok(Err(_)) | Err(_) => {
                forget();
                Err(ProbeError::new(
                    ErrorKind::Timeout,
                    format!("udp {server}: no answer within {} ms", limit.as_millis()),
                ))
            }
        }
    }
}

impl Shared {
    fn open(like: SocketAddr) -> io::Result<Shared> {
        let socket = crate::dns::bound_udp_socket(like, |socket| {
            let (level, option) = if like.is_ipv6() {
                (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
            } else {
                (libc::IPPROTO_IP, libc::IP_RECVERR)
            };
            set_int_option(socket, level, option, 1)
        })?;
        let socket = Arc::new(UdpSocket::from_std(socket.into())?);
        let pending: Arc<Waiting> = Arc::default();
        tokio::spawn(read_answers(socket.clone(), Arc::downgrade(&pending)));
        Ok(Shared { socket, pending })
    }

    fn hand_out_errors(&self) {
        hand_out_errors(&self.socket, &self.pending);
    }
}

fn hand_out_errors(socket: &UdpSocket, pending: &Waiting) {
    for (to, id, error) in drain_errors(socket) {
        let sender = pending.lock().expect("pending lock").remove(&(to, id));
        if let Some(sender) = sender {
            let _ = sender.send(Err(error));
        }
    }
}

fn set_int_option(
    socket: &socket2::Socket,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid descriptor, and a c_int option value of its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Hands each datagram to the query waiting for it; ends when the pool is gone.
async fn read_answers(socket: Arc<UdpSocket>, pending: Weak<Waiting>) {
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        let received = socket.recv_from(&mut buf).await;
        let Some(waiting) = pending.upgrade() else { return };
        match received {
            Ok((n, from)) if n >= 2 => {
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                // A datagram nobody waits for (late, spoofed, from another
                // port) is dropped, as a resolver would.
                let sender = waiting.lock().expect("pending lock").remove(&(from, id));
                if let Some(sender) = sender {
                    let _ = sender.send(Ok(buf[..n].to_vec()));
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // A queued ICMP error is reported once by the next receive; the
            // error queue says which query it was for.
            Err(_) => hand_out_errors(&socket, &waiting),
        }
    }
}

/// Reads the socket's error queue: per ICMP error, the query's destination,
/// its message id and the error.
fn drain_errors(socket: &UdpSocket) -> Vec<(SocketAddr, u16, io::Error)> {
    let mut found = Vec::new();
    // Bounded: a flood of ICMP cannot keep the reader here.
    for _ in 0..256 {
        let mut payload = [0u8; 64];
        let mut control = [0u64; 64];
        // SAFETY: zeroed sockaddr_storage is a valid value.
        let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload.len(),
        };
        // SAFETY: zeroed msghdr is valid; every pointer set below outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: a valid descriptor and a message header describing live buffers.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if n < 0 {
            break;
        }
        let Some(to) = sockaddr(&name) else { continue };
        if (n as usize) < 2 {
            continue;
        }
        let id = u16::from_be_bytes([payload[0], payload[1]]);
        found.push((
            to,
            id,
            extended_error(&msg).unwrap_or_else(|| io::Error::from_raw_os_error(libc::ECONNREFUSED)),
        ));
    }
    found
}

fn sockaddr(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match name.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v4 = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(v4.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v6 = unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(v6.sin6_port)))
        }
        _ => None,
    }
}

/// The errno of the `sock_extended_err` in an error-queue message.
fn extended_error(msg: &libc::msghdr) -> Option<io::Error> {
    // SAFETY: walking the control buffer the kernel filled, with its macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if (c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_RECVERR)
                || (c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_RECVERR)
            {
                let err = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::sock_extended_err>());
                return Some(io::Error::from_raw_os_error(err.ee_errno as i32));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: u16, tag: u8) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.resize(12, tag);
        q
    }

    #[tokio::test]
    async fn answers_reach_their_query_and_a_closed_port_is_refused_at_once() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = server.local_addr().unwrap();
        let count = SOCKETS + 1;
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            for _ in 0..count {
                let (n, from) = server.recv_from(&mut buf).await.unwrap();
                server.send_to(&buf[..n], from).await.unwrap();
            }
        });
        let pool = SharedUdp::default();
        let limit = Duration::from_secs(2);
        // More queries with one id than there are sockets: two share a
        // socket, so one of them is given another id.
        let mut queries: Vec<Vec<u8>> = (0..count).map(|i| query(7, i as u8)).collect();
        let answers = futures::future::join_all(queries.iter_mut().map(|q| pool.exchange(address, q, limit))).await;
        for (query, answer) in queries.iter().zip(answers) {
            assert_eq!(&answer.unwrap().0, query, "each answer reaches its own query");
        }
        assert!(queries.iter().any(|q| q[..2] != [0, 7]));
        echo.await.unwrap();

        // Nobody listens here any more: ICMP port unreachable (a timeout would be `Timeout`).
        let closed = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let e = pool.exchange(closed, &mut query(11, 0), limit).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Refused, "{}", e.message);
        // The same over IPv6, where the machine has ::1.
        if let Ok(s) = std::net::UdpSocket::bind("[::1]:0") {
            let closed = s.local_addr().unwrap();
            drop(s);
            let e = pool.exchange(closed, &mut query(12, 0), limit).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Refused, "{}", e.message);
        }
    }
}
