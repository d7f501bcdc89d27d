use crate::rule::{Rule, classify};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Packets held per rule, in arrival order. Every packet of one rule waits
/// the same delay, so each queue's release times are already sorted and
/// no timer heap is needed.
pub struct DelayLine<T> {
    held: Vec<VecDeque<(Instant, T)>>,
    delays: Vec<Duration>,
}

impl<T> DelayLine<T> {
    pub fn new(rules: &[Rule]) -> DelayLine<T> {
        DelayLine {
            held: rules.iter().map(|_| VecDeque::new()).collect(),
            delays: rules.iter().map(|r| r.delay).collect(),
        }
    }

    pub fn hold(&mut self, rule: usize, arrived: Instant, item: T) {
        self.held[rule].push_back((arrived + self.delays[rule], item));
    }

    /// The earliest release time of a held packet.
    pub fn next_release(&self) -> Option<Instant> {
        self.held.iter().filter_map(|q| q.front().map(|(at, _)| *at)).min()
    }

    /// Takes every packet due at `now`, in release order within each rule.
    pub fn release_due(&mut self, now: Instant, mut out: impl FnMut(T)) {
        for queue in &mut self.held {
            while queue.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, item)) = queue.pop_front() {
                    out(item);
                }
            }
        }
    }

    /// Takes every held packet (at shutdown: they go on at once).
    pub fn drain(&mut self, mut out: impl FnMut(T)) {
        for queue in &mut self.held {
            for (_, item) in queue.drain(..) {
                out(item);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.held.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a run did, per rule and in all.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub delayed: Vec<u64>,
    pub dropped: Vec<u64>,
    pub passed: u64,
    pub peak_held: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "cannot open NFQUEUE {queue} (needs root or CAP_NET_ADMIN in this network namespace, and nfnetlink_queue): {source}"
    )]
    Open { queue: u16, source: io::Error },
    #[error("NFQUEUE {queue}: {source}")]
    Queue { queue: u16, source: io::Error },
}

/// Packets the kernel may hold for us at once; beyond this it drops
/// (the queue is not fail-open: a packet that skips the delay would
/// make the measurement lie about latency).
const KERNEL_QUEUE_LEN: u32 = 1 << 20;
/// Bytes of each packet copied to us: the IP header with its addresses.
const COPY_RANGE: u16 = 40;
/// The delay line's resolution: how often it wakes while packets flow.
const QUANTUM: Duration = Duration::from_millis(1);
/// How often a blocked wait looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Serves NFQUEUE `queue` until `stop` is set, then lets every held packet
/// go and returns what it did.
pub fn run(queue_num: u16, rules: &[Rule], stop: &AtomicBool) -> Result<Stats, RunError> {
    run_with_tap(queue_num, rules, stop, COPY_RANGE, || {}, |_, _| {})
}

/// [`run`], showing each packet to `tap` as it arrives (before its rule
/// applies), with the first `copy_range` bytes of it from the IP header on:
/// a capture of the queued path. 60 bytes hold the TCP flags after an IPv6
/// header. `ready` is called once the queue is bound: packets queued before
/// that would be dropped, so traffic should wait for it.
pub fn run_with_tap(
    queue_num: u16,
    rules: &[Rule],
    stop: &AtomicBool,
    copy_range: u16,
    ready: impl FnOnce(),
    mut tap: impl FnMut(Instant, &[u8]),
) -> Result<Stats, RunError> {
    let open_err = |source| RunError::Open {
        queue: queue_num,
        source,
    };
    let queue_err = |source| RunError::Queue {
        queue: queue_num,
        source,
    };
    let (mut queue, fd) = open_queue().map_err(open_err)?;
    queue.bind(queue_num).map_err(open_err)?;
    queue
        .set_copy_range(queue_num, copy_range.max(COPY_RANGE))
        .map_err(queue_err)?;
    queue
        .set_queue_max_len(queue_num, KERNEL_QUEUE_LEN)
        .map_err(queue_err)?;
    queue.set_fail_open(queue_num, false).map_err(queue_err)?;
    // GSO super-packets stay whole: we only read their headers.
    queue.set_recv_gso(queue_num, true).map_err(queue_err)?;
    queue.set_nonblocking(true);
    grow_receive_buffer(fd);

    let mut line: DelayLine<nfq::Message> = DelayLine::new(rules);
    let mut stats = Stats {
        delayed: vec![0; rules.len()],
        dropped: vec![0; rules.len()],
        ..Stats::default()
    };
    let mut rng = fastrand::Rng::new();
    let accept = |queue: &mut nfq::Queue, mut msg: nfq::Message| {
        msg.set_verdict(nfq::Verdict::Accept);
        queue.verdict(msg)
    };
    tracing::info!(queue = queue_num, rules = rules.len(), "delay line ready");
    ready();
    let mut last_drain = Instant::now();
    let mut idle = true;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let woken_by_arrival = idle && line.is_empty();
        if woken_by_arrival {
            // Nothing held and nothing came: block until a packet does.
            wait_readable(fd, STOP_POLL);
        } else {
            // Busy: wake at most once a QUANTUM and take whatever queued up
            // meanwhile. Waking for every arriving packet cost more CPU
            // than handling them.
            let until_due = line
                .next_release()
                .map_or(QUANTUM, |at| at.saturating_duration_since(now));
            std::thread::sleep(until_due.min(QUANTUM));
        }
        // After a quantum's sleep, packets read now arrived at some point
        // since the last drain: the middle of that interval keeps each
        // delay within half a quantum of the rule's. After a blocking wait
        // they have just arrived.
        let drained = Instant::now();
        let arrived = if woken_by_arrival {
            drained
        } else {
            last_drain + (drained - last_drain) / 2
        };
        last_drain = drained;
        idle = true;
        loop {
            match queue.recv() {
                Ok(mut msg) => {
                    idle = false;
                    tap(arrived, msg.get_payload());
                    match classify(rules, msg.get_payload()) {
                        Some(i) if rules[i].loss > 0.0 && rng.f64() < rules[i].loss => {
                            stats.dropped[i] += 1;
                            msg.set_verdict(nfq::Verdict::Drop);
                            queue.verdict(msg).map_err(queue_err)?;
                        }
                        Some(i) if !rules[i].delay.is_zero() => {
                            stats.delayed[i] += 1;
                            line.hold(i, arrived, msg);
                        }
                        _ => {
                            stats.passed += 1;
                            accept(&mut queue, msg).map_err(queue_err)?;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(queue_err(e)),
            }
        }
        stats.peak_held = stats.peak_held.max(line.len());
        let mut failed = None;
        line.release_due(Instant::now(), |msg| {
            if let Err(e) = accept(&mut queue, msg) {
                failed.get_or_insert(e);
            }
        });
        if let Some(e) = failed {
            return Err(queue_err(e));
        }
    }
    let mut failed = None;
    line.drain(|msg| {
        if let Err(e) = accept(&mut queue, msg) {
            failed.get_or_insert(e);
        }
    });
    match failed {
        Some(e) => Err(queue_err(e)),
        None => Ok(stats),
    }
}

/// Opens the queue's netlink socket and finds its descriptor, which `nfq`
/// keeps private but a timed wait needs (its own recv either blocks or
/// spins). The kernel gives a new socket the lowest free descriptor, so
/// that is taken just before the open, and checked to be a netfilter
/// netlink socket after it.
fn open_queue() -> io::Result<(nfq::Queue, RawFd)> {
    // SAFETY: plain descriptor calls on a path literal and our own descriptor.
    let lowest_free = unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        libc::close(fd);
        fd
    };
    let queue = nfq::Queue::open()?;
    let mut protocol: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a valid int with its length.
    let rc = unsafe {
        libc::getsockopt(
            lowest_free,
            libc::SOL_SOCKET,
            libc::SO_PROTOCOL,
            (&mut protocol as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || protocol != libc::NETLINK_NETFILTER {
        return Err(io::Error::other(
            "cannot find the NFQUEUE socket's descriptor (another thread opened one at the same time?)",
        ));
    }
    Ok((queue, lowest_free))
}

/// A burst of thousands of packets must not overflow the netlink socket
/// (the kernel would drop them with ENOBUFS); 32 MiB where allowed.
fn grow_receive_buffer(fd: RawFd) {
    let size: libc::c_int = 32 << 20;
    // SAFETY: setsockopt on the queue's own open descriptor with a valid int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::warn!("SO_RCVBUFFORCE: {}; bursts may be dropped", io::Error::last_os_error());
    }
}

fn wait_readable(fd: RawFd, timeout: Duration) {
    let mut fd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // Round up so a packet due in 0.3 ms is not spun for.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe {
        libc::poll(&mut fd, 1, ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_each_rule_after_its_delay_in_order() {
        let rules: Vec<Rule> = ["ipv4 delay=40", "ipv6 delay=60"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        let mut line = DelayLine::new(&rules);
        let t0 = Instant::now();
        line.hold(1, t0, "v6-a");
        line.hold(0, t0 + Duration::from_millis(5), "v4-a");
        line.hold(0, t0 + Duration::from_millis(10), "v4-b");
        assert_eq!(line.next_release(), Some(t0 + Duration::from_millis(45)));
        let mut out = vec![];
        line.release_due(t0 + Duration::from_millis(44), |p| out.push(p));
        assert!(out.is_empty());
        line.release_due(t0 + Duration::from_millis(50), |p| out.push(p));
        assert_eq!(out, ["v4-a", "v4-b"]);
        assert_eq!(line.next_release(), Some(t0 + Duration::from_millis(60)));
        line.release_due(t0 + Duration::from_millis(60), |p| out.push(p));
        assert_eq!(out, ["v4-a", "v4-b", "v6-a"]);
        assert!(line.is_empty());
        assert_eq!(line.next_release(), None);
    }

    #[test]
    fn drain_lets_everything_go() {
        let rules: Vec<Rule> = vec!["all delay=1000".parse().unwrap()];
        let mut line = DelayLine::new(&rules);
        let t0 = Instant::now();
        line.hold(0, t0, 1);
        line.hold(0, t0, 2);
        let mut out = vec![];
        line.drain(|p| out.push(p));
        assert_eq!(out, [1, 2]);
        assert_eq!(line.len(), 0);
    }
}
