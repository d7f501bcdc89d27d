//! Receiving flow export over UDP: one thread per socket that takes
//! datagrams in batches, decodes and aggregates them in place, and hands its
//! counters to whoever runs the [`Listener`] every second. The CLI's
//! `collect` wires it to the store, signals and the summary.

use crate::Decoders;
use crate::aggregate::{Aggregator, SamplingPolicy};
use crate::enrich::PrefixTable;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How the listener's threads decode and aggregate.
#[derive(Clone)]
pub struct ListenerConfig {
    /// Interval of the traffic counters, in seconds.
    pub interval: u64,
    pub sampling: SamplingPolicy,
    /// Count egress records too.
    pub count_egress: bool,
    /// Templates to start with (from [`crate::netflow::Decoder::save_templates`]).
    pub saved_templates: Option<serde_json::Value>,
    /// Hand the templates over every 10 s and at the end, to be kept.
    pub keep_templates: bool,
}

/// Sockets being received on, each by its own thread.
pub struct Listener {
    addresses: Vec<SocketAddr>,
    restored: usize,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    table: Arc<RwLock<(u64, Arc<PrefixTable>)>>,
    deltas: tokio::sync::mpsc::UnboundedReceiver<Delta>,
}

impl Listener {
    /// Binds every address (port 0 picks one) and starts its thread.
    pub fn start(
        addresses: &[SocketAddr],
        table: Arc<PrefixTable>,
        config: ListenerConfig,
    ) -> std::io::Result<Listener> {
        let shared = Arc::new(RwLock::new((0u64, table)));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, deltas) = tokio::sync::mpsc::unbounded_channel::<Delta>();
        let mut threads = Vec::new();
        let mut bound = Vec::new();
        let mut restored = 0;
        for (thread, &addr) in addresses.iter().enumerate() {
            let socket = bind(addr)?;
            bound.push(socket.local_addr()?);
            let mut decoders = Decoders::default();
            if let Some(saved) = &config.saved_templates {
                restored = decoders.netflow.load_templates(saved);
            }
            let (config, table) = (config.clone(), shared.clone());
            let fresh = move || {
                let table = table.read().map(|t| t.1.clone()).unwrap_or_default();
                let mut agg = Aggregator::new(config.interval, config.sampling.clone(), table);
                agg.count_egress = config.count_egress;
                agg
            };
            let (shared, stop, tx, keep) = (shared.clone(), stop.clone(), tx.clone(), config.keep_templates);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("udp {addr}"))
                    .spawn(move || receive(thread, socket, decoders, fresh, shared, keep, stop, tx))?,
            );
        }
        Ok(Listener {
            addresses: bound,
            restored,
            threads,
            stop,
            table: shared,
            deltas,
        })
    }

    /// The addresses bound (with the ports picked for port 0).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Templates restored per socket from [`ListenerConfig::saved_templates`].
    pub fn restored_templates(&self) -> usize {
        self.restored
    }

    /// The next hand-over; `None` once every thread has stopped.
    pub async fn next(&mut self) -> Option<Delta> {
        self.deltas.recv().await
    }

    /// A reloaded prefix table, applied from each thread's next batch on.
    pub fn set_table(&self, table: Arc<PrefixTable>) {
        if let Ok(mut shared) = self.table.write() {
            *shared = (shared.0 + 1, table);
        }
    }

    /// Asks the threads to hand over what they have and stop; [`Listener::next`]
    /// then returns their last deltas and `None`.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the threads to end (after [`Listener::stop`]).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a receiving thread hands the main loop every second:
/// the counters since the last hand-over.
pub struct Delta {
    /// Which socket (in the order given to [`Listener::start`]).
    pub thread: usize,
    pub agg: Aggregator,
    pub datagrams: u64,
    /// At the end: the thread's decoders (statistics, templates).
    pub last: Option<Box<Decoders>>,
    /// Now and then, the thread's templates (when they are kept).
    pub templates: Option<serde_json::Value>,
}

/// One thread per socket: blocking receive into one reused buffer, decode
/// and aggregate in place (no per-datagram allocation or hand-off), and a
/// hand-over of the counters every second.
#[allow(clippy::too_many_arguments)] // one thread's whole world, passed once
fn receive(
    thread: usize,
    socket: std::net::UdpSocket,
    mut decoders: Decoders,
    fresh: impl Fn() -> Aggregator,
    table: Arc<RwLock<(u64, Arc<PrefixTable>)>>,
    keep_templates: bool,
    stop: Arc<AtomicBool>,
    tx: tokio::sync::mpsc::UnboundedSender<Delta>,
) {
    let mut batch = Batch::new();
    let mut records = Vec::with_capacity(1024);
    let mut agg = fresh();
    let mut generation = match table.read() {
        Ok(t) => {
            agg.set_table(t.1.clone());
            t.0
        }
        Err(_) => 0,
    };
    let mut datagrams = 0u64;
    let mut handed = std::time::Instant::now();
    let mut templates_sent = std::time::Instant::now();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping || handed.elapsed() >= HAND_OVER {
            let templates =
                (keep_templates && (stopping || templates_sent.elapsed() >= Duration::from_secs(10))).then(|| {
                    templates_sent = std::time::Instant::now();
                    decoders.netflow.save_templates()
                });
            let delta = Delta {
                thread,
                agg: agg.take(),
                datagrams: std::mem::take(&mut datagrams),
                last: None,
                templates,
            };
            if tx.send(delta).is_err() {
                return;
            }
            handed = std::time::Instant::now();
            if stopping {
                decoders.netflow.abandon_held();
                let _ = tx.send(Delta {
                    thread,
                    agg: fresh(),
                    datagrams: 0,
                    last: Some(Box::new(decoders)),
                    templates: None,
                });
                return;
            }
        }
        let received = match batch.receive(&socket) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("udp receive: {e}");
                0
            }
        };
        if received > 0 {
            // A reloaded prefix table applies from the next batch on (an
            // uncontended read lock: tens of nanoseconds).
            if let Ok(shared) = table.read()
                && shared.0 != generation
            {
                generation = shared.0;
                agg.set_table(shared.1.clone());
            }
            let now = now();
            for (from, datagram) in batch.datagrams(received) {
                datagrams += 1;
                decoders.decode(from, datagram, now, &mut records);
                for r in records.drain(..) {
                    agg.add(&r);
                }
            }
        }
        if received == BATCH {
            continue;
        }
        // The queue is empty: let datagrams gather for a moment instead of
        // waking once per datagram (a wake-up cost more than decoding
        // one); when nothing came at all, block until something does.
        if received > 0 {
            std::thread::sleep(COALESCE);
        } else {
            wait_readable(&socket, Duration::from_millis(100));
        }
    }
}

/// How often a receiving thread hands its counters to the main loop (each
/// hand-over starts fresh maps and sketches, so not too often).
const HAND_OVER: Duration = Duration::from_secs(1);

/// Datagrams taken per system call.
const BATCH: usize = 64;
/// How long a busy receiver lets datagrams gather between batches; the
/// 32 MiB receive buffer holds far more than this much at any rate seen.
const COALESCE: Duration = Duration::from_millis(1);
const DATAGRAM_MAX: usize = 65_536;
/// Distance between the batch's buffers: a buffer's size plus a typical
/// export datagram, so the datagrams of one batch fall on different cache
/// sets (64 KiB apart they all compete for the same few ways, and what the
/// kernel wrote was gone from the cache before it was read).
const STRIDE: usize = DATAGRAM_MAX + 1_600;

/// Buffers for `recvmmsg`: up to [`BATCH`] datagrams and their sources per call.
struct Batch {
    buffers: Vec<u8>,
    sources: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iovecs` and `headers` point into this
// struct's own heap buffers, which never move once allocated.
unsafe impl Send for Batch {}

impl Batch {
    fn new() -> Batch {
        let mut buffers = vec![0u8; BATCH * STRIDE];
        // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
        let mut sources: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; BATCH];
        let mut iovecs: Vec<libc::iovec> = (0..BATCH)
            .map(|i| libc::iovec {
                iov_base: buffers[i * STRIDE..].as_mut_ptr().cast(),
                iov_len: DATAGRAM_MAX,
            })
            .collect();
        let headers = (0..BATCH)
            .map(|i| {
                // SAFETY: msghdr is plain data; the fields that matter are set below.
                let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                h.msg_name = (&mut sources[i] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_iov = &mut iovecs[i];
                h.msg_iovlen = 1;
                libc::mmsghdr { msg_hdr: h, msg_len: 0 }
            })
            .collect();
        Batch {
            buffers,
            sources,
            iovecs,
            headers,
        }
    }

    /// Takes what is queued (at most [`BATCH`] datagrams) without waiting.
    fn receive(&mut self, socket: &std::net::UdpSocket) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        for (i, h) in self.headers.iter_mut().enumerate() {
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_len = 0;
        }
        // SAFETY: every header points at a live buffer of DATAGRAM_MAX
        // bytes and a sockaddr_storage, owned by `self` for the call.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    /// The first `n` datagrams received, with their senders' addresses.
    fn datagrams(&self, n: usize) -> impl Iterator<Item = (IpAddr, &[u8])> + '_ {
        (0..n).filter_map(move |i| {
            let len = (self.headers[i].msg_len as usize).min(DATAGRAM_MAX);
            let from = sockaddr_ip(&self.sources[i])?;
            Some((from, &self.buffers[i * STRIDE..i * STRIDE + len]))
        })
    }
}

fn sockaddr_ip(s: &libc::sockaddr_storage) -> Option<IpAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            Some(IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let v6 = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            // An IPv4 exporter on a dual-stack [::] socket.
            Some(v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)))
        }
        _ => None,
    }
}

/// Blocks until the socket has a datagram or `limit` passes.
fn wait_readable(socket: &std::net::UdpSocket, limit: Duration) {
    use std::os::fd::AsRawFd;
    let mut fds = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe {
        libc::poll(&mut fds, 1, limit.as_millis() as libc::c_int);
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        // [::] takes IPv4 exporters too.
        let _ = socket.set_only_v6(false);
    }
    // Bursts of export packets must not overflow the kernel buffer.
    let _ = socket.set_recv_buffer_size(32 << 20);
    socket.bind(&addr.into())?;
    // A short timeout so the receiving thread sees stop requests.
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(socket.into())
}
