//! Gateway mode: the bench as a router. A device (a phone, a set-top box, a
//! namespace running an app) on the LAN interface gets addresses (DHCPv4,
//! SLAAC with RDNSS) and DNS from dnsmasq, and its traffic goes out through
//! NAT to the upstream, under one condition per phase (IPv6 delayed,
//! blackholed, …). The delay line's taps count its connections and bytes
//! per family and remote address; dnsmasq's query log names the addresses.
//! The report: per phase and host, the IPv6 share, the app's IPv6
//! concentration (the national app-testing method) and whether it prefers
//! IPv6 towards dual-stack hosts.

use crate::bench::{BenchError, Family, Testbed, iptables};
use crate::netns::{NetnsError, ips, run};
use crate::server::{Journal, ZONE};
use crate::trial::{AnswerKind, NamePlan, v6_delayed};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use v6scope_netem::{Rule, Selector};

/// Where the router's WAN side goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// This host's own network, through NAT (a real device reaching the
    /// real internet).
    Host { dns: IpAddr },
    /// The bench's server namespace: its test names are the whole internet
    /// (`dual.gw.eyeballs.test`, `v4.gw…`, `v6.gw…`).
    Bench,
}

/// One phase's condition on the device's path.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "'{0}' is not a condition: none, ipv6+MS, ipv4+MS, ipv6-loss=PCT, ipv4-loss=PCT, ipv6-blackhole or ipv4-blackhole"
)]
pub struct ConditionError(String);

impl std::str::FromStr for Condition {
    type Err = ConditionError;
    fn from_str(text: &str) -> Result<Condition, ConditionError> {
        let bad = || ConditionError(text.to_string());
        let rule = |selector: Selector, delay_ms: u64, loss: f64| Rule {
            selector,
            delay: Duration::from_millis(delay_ms),
            loss,
        };
        let rules = match text {
            "none" => vec![],
            "ipv6-blackhole" => vec![rule(Selector::Ipv6, 0, 1.0)],
            "ipv4-blackhole" => vec![rule(Selector::Ipv4, 0, 1.0)],
            _ if text.contains("-loss=") => {
                let (family, pct) = text.split_once("-loss=").ok_or_else(bad)?;
                let pct: f64 = pct.trim_end_matches('%').parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(bad());
                }
                match family {
                    "ipv6" => vec![rule(Selector::Ipv6, 0, pct / 100.0)],
                    "ipv4" => vec![rule(Selector::Ipv4, 0, pct / 100.0)],
                    _ => return Err(bad()),
                }
            }
            _ => {
                let (family, ms) = text.split_once('+').ok_or_else(bad)?;
                let ms: u64 = ms.trim_end_matches("ms").parse().map_err(|_| bad())?;
                if ms > 2000 {
                    return Err(bad());
                }
                match family {
                    "ipv6" => vec![rule(Selector::Ipv6, ms, 0.0)],
                    "ipv4" => vec![rule(Selector::Ipv4, ms, 0.0)],
                    _ => return Err(bad()),
                }
            }
        };
        Ok(Condition {
            name: text.to_string(),
            rules,
        })
    }
}

/// The default phases: as the device normally sees the network, then with
/// IPv6 slower, then broken.
pub fn default_conditions() -> Vec<Condition> {
    ["none", "ipv6+100", "ipv6+300", "ipv6-blackhole"]
        .iter()
        .map(|c| c.parse().expect("the default conditions parse"))
        .collect()
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The LAN interface (moved into the router's namespace while the
    /// gateway runs; a physical one returns to the host afterwards).
    pub lan: String,
    pub upstream: Upstream,
    pub conditions: Vec<Condition>,
    pub phase: Duration,
    pub workdir: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostUse {
    /// The names dnsmasq answered with this address (else the address).
    pub host: String,
    /// The name had both A and AAAA answers.
    pub dual_stack: bool,
    /// Connection attempts (TCP SYNs) by family.
    pub attempts_ipv4: u64,
    pub attempts_ipv6: u64,
    pub bytes_ipv4: u64,
    pub bytes_ipv6: u64,
}

impl HostUse {
    pub fn ipv6_byte_share(&self) -> Option<f64> {
        let all = self.bytes_ipv4 + self.bytes_ipv6;
        (all > 0).then(|| self.bytes_ipv6 as f64 / all as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub condition: String,
    pub seconds: f64,
    pub hosts: Vec<HostUse>,
    pub bytes_ipv4: u64,
    pub bytes_ipv6: u64,
    /// IPv6 bytes ÷ all bytes: the app's IPv6 concentration in this phase.
    pub ipv6_concentration: Option<f64>,
    /// Of the connection attempts to dual-stack hosts, the share over IPv6.
    pub dual_stack_ipv6_attempt_share: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayReport {
    pub lan: String,
    pub upstream: String,
    pub phases: Vec<PhaseReport>,
    /// From the first phase (normally `none`).
    pub ipv6_concentration: Option<f64>,
    pub prefers_ipv6: String,
    pub evidence: String,
    pub partial: bool,
}

/// Per phase and remote address: connection attempts (SYNs) and bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    attempts: u64,
    bytes: u64,
}

type Tally = Arc<Mutex<HashMap<(usize, IpAddr), Counts>>>;

const LAN_V4: &str = "198.51.100.1";
const LAN_V4_NET: &str = "198.51.100.1/26";
const LAN_V6: &str = "2001:db8:e7::1";
const WAN_R_V4: &str = "198.51.100.66";
/// The upstream's end of the WAN link (the bench's DNS answers there too).
const WAN_U_V4: &str = "198.51.100.65";
const WAN_V4_NET: &str = "198.51.100.64/30";
const WAN_R_V6: &str = "2001:db8:e8::2";
const WAN_U_V6: &str = "2001:db8:e8::1";
const WAN_V6_NET: &str = "2001:db8:e8::/64";

/// The router namespace and what runs in it; removed when dropped (which
/// also undoes the host's NAT rules in host mode).
struct Router {
    namespace: String,
    lan: String,
    dnsmasq: Option<Child>,
    host_undo: Vec<Vec<String>>,
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(child) = &mut self.dnsmasq {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A physical LAN interface goes back to the host before the
        // namespace goes (a veth would simply be destroyed with it).
        let _ = run("ip", &["-n", &self.namespace, "link", "set", &self.lan, "netns", "1"]);
        let _ = run("ip", &["netns", "del", &self.namespace]);
        for command in self.host_undo.iter().rev() {
            let args: Vec<&str> = command.iter().skip(1).map(String::as_str).collect();
            let _ = run(&command[0], &args);
        }
    }
}

fn sysctl_get(key: &str) -> Option<String> {
    let out = Command::new("sysctl").args(["-n", key]).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Router {
    fn start(config: &GatewayConfig, bed: Option<&Testbed>) -> Result<Router, BenchError> {
        let r = format!("v6eb{}g", std::process::id());
        let _ = run("ip", &["netns", "del", &r]);
        ips(&format!("netns add {r}"))?;
        let mut router = Router {
            namespace: r.clone(),
            lan: config.lan.clone(),
            dnsmasq: None,
            host_undo: Vec::new(),
        };
        let lan = &config.lan;
        ips(&format!("link set {lan} netns {r}")).map_err(|e| {
            BenchError::Netns(NetnsError::Command {
                command: format!("moving {lan} into the router's namespace"),
                detail: e.to_string(),
            })
        })?;
        for key in [
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.default.accept_dad=0",
        ] {
            run("ip", &["netns", "exec", &r, "sysctl", "-q", "-w", key])?;
        }
        ips(&format!("-n {r} link set lo up"))?;
        ips(&format!("-n {r} addr add {LAN_V4_NET} dev {lan}"))?;
        ips(&format!("-n {r} addr add {LAN_V6}/64 dev {lan} nodad"))?;
        ips(&format!("-n {r} link set {lan} up"))?;
        // The WAN link, to the upstream's namespace.
        let (wan_r, wan_u) = (format!("{r}w"), format!("{r}u"));
        let upstream_ns = match (&config.upstream, bed) {
            (Upstream::Bench, Some(bed)) => Some(bed.pair.server.clone()),
            _ => None,
        };
        match &upstream_ns {
            Some(ns) => ips(&format!("link add {wan_r} netns {r} type veth peer {wan_u} netns {ns}"))?,
            None => ips(&format!("link add {wan_r} netns {r} type veth peer {wan_u}"))?,
        }
        let on_upstream = |args: &str| match &upstream_ns {
            Some(ns) => ips(&format!("-n {ns} {args}")),
            None => ips(args),
        };
        on_upstream(&format!("addr add {WAN_U_V4}/30 dev {wan_u}"))?;
        on_upstream(&format!("addr add {WAN_U_V6}/64 dev {wan_u} nodad"))?;
        on_upstream(&format!("link set {wan_u} up"))?;
        ips(&format!("-n {r} addr add {WAN_R_V4}/30 dev {wan_r}"))?;
        ips(&format!("-n {r} addr add {WAN_R_V6}/64 dev {wan_r} nodad"))?;
        ips(&format!("-n {r} link set {wan_r} up"))?;
        ips(&format!("-n {r} route add default via {WAN_U_V4}"))?;
        ips(&format!("-n {r} -6 route add default via {WAN_U_V6}"))?;
        // The device's addresses leave as the router's.
        for (v6, source) in [(false, LAN_V4_NET), (true, "2001:db8:e7::/64")] {
            let rule = format!("-t nat -A POSTROUTING -s {source} -o {wan_r} -j MASQUERADE");
            router.in_router(iptables(v6), &rule)?;
        }
        if upstream_ns.is_none() {
            // Host mode: the host forwards the router's traffic and hides it
            // behind its own addresses too; undone when the gateway stops.
            for (key, value) in [("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1")] {
                let old = sysctl_get(key).unwrap_or_else(|| "0".into());
                run("sysctl", &["-q", "-w", &format!("{key}={value}")])?;
                router
                    .host_undo
                    .push(vec!["sysctl".into(), "-q".into(), "-w".into(), format!("{key}={old}")]);
            }
            for (v6, source) in [(false, WAN_V4_NET), (true, WAN_V6_NET)] {
                let program = iptables(v6);
                let rule = format!("-t nat -A POSTROUTING -s {source} ! -o {wan_u} -j MASQUERADE");
                let args: Vec<&str> = rule.split_whitespace().collect();
                run(program, &args)?;
                let mut undo = vec![program.to_string()];
                undo.extend(rule.replacen("-A", "-D", 1).split_whitespace().map(String::from));
                router.host_undo.push(undo);
            }
        }
        // Taps: what the device sends (with the phase's condition, queue 0)
        // and what reaches it (queue 1, counted only, after NAT has put the
        // device's address back). The router's own packets (DNS, DHCP, RAs)
        // are not the path under test.
        for v6 in [false, true] {
            let own = if v6 { LAN_V6 } else { LAN_V4 };
            router.in_router(
                iptables(v6),
                &format!("-t raw -A PREROUTING -i {lan} ! -d {own} -j NFQUEUE --queue-num 0 --queue-bypass"),
            )?;
            router.in_router(
                iptables(v6),
                &format!("-t mangle -A POSTROUTING -o {lan} ! -s {own} -j NFQUEUE --queue-num 1 --queue-bypass"),
            )?;
        }
        Ok(router)
    }

    fn in_router(&self, program: &str, args: &str) -> Result<(), NetnsError> {
        let mut all = vec!["netns", "exec", &self.namespace, program];
        all.extend(args.split_whitespace());
        run("ip", &all)
    }

    fn start_dnsmasq(&mut self, upstream_dns: IpAddr, workdir: &Path) -> Result<PathBuf, NetnsError> {
        let log = workdir.join("gateway-dns.log");
        let leases = workdir.join("gateway-leases");
        let lan = &self.lan;
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace,
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
            ])
            .args([
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--cache-size=0",
                "--user=root",
            ])
            .arg(format!("--interface={lan}"))
            .arg(format!("--server={upstream_dns}"))
            .arg("--dhcp-range=198.51.100.10,198.51.100.60,1h")
            .arg(format!("--dhcp-range=::,constructor:{lan},ra-stateless,1h"))
            .arg("--enable-ra")
            .arg(format!("--dhcp-option=option6:dns-server,[{LAN_V6}]"))
            .arg("--log-queries=extra")
            .arg(format!("--log-facility={}", log.display()))
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .arg("--pid-file=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| NetnsError::Command {
                command: "dnsmasq".into(),
                detail: format!("{e} (apt-get install dnsmasq-base)"),
            })?;
        self.dnsmasq = Some(child);
        Ok(log)
    }
}

/// What dnsmasq's query log says: address → the names answered with it
/// (several when names share an address, as on a CDN), and the names that
/// had both an A and an AAAA answer.
fn read_dns_log(path: &Path) -> (HashMap<IpAddr, BTreeSet<String>>, HashSet<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut names: HashMap<IpAddr, BTreeSet<String>> = HashMap::new();
    let mut families: HashMap<String, (bool, bool)> = HashMap::new();
    for line in text.lines() {
        // "... 7 198.51.100.10/40001 reply dual.gw.eyeballs.test is 203.0.113.1"
        let Some(rest) = line.split(" reply ").nth(1).or_else(|| line.split(" cached ").nth(1)) else {
            continue;
        };
        let Some((name, address)) = rest.split_once(" is ") else {
            continue;
        };
        let Ok(address) = address.trim().parse::<IpAddr>() else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let entry = families.entry(name.clone()).or_default();
        if address.is_ipv4() {
            entry.0 = true;
        } else {
            entry.1 = true;
        }
        names.entry(address).or_default().insert(name);
    }
    let dual = families
        .into_iter()
        .filter(|(_, (a, b))| *a && *b)
        .map(|(n, _)| n)
        .collect();
    (names, dual)
}

fn packet_facts(packet: &[u8], outbound: bool) -> Option<(IpAddr, u64, bool)> {
    let (src, dst, len): (IpAddr, IpAddr, u64) = match packet.first()? >> 4 {
        4 => {
            let s: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            let len = u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]);
            (s.into(), d.into(), u64::from(len))
        }
        6 => {
            let s: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            let len = u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]);
            (s.into(), d.into(), 40 + u64::from(len))
        }
        _ => return None,
    };
    let remote = if outbound { dst } else { src };
    // Link-local and multicast (NDP, MLD, RAs) are not the device's traffic
    // to the internet.
    let local_only = match remote {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.is_link_local() || a.is_unspecified(),
        IpAddr::V6(a) => a.is_multicast() || a.is_unicast_link_local() || a.is_unspecified(),
    };
    if local_only {
        return None;
    }
    let syn = outbound && crate::server::tcp_syn(packet).is_some();
    Some((remote, len, syn))
}

fn tap_thread(
    namespace: String,
    queue: u16,
    rules: Vec<Rule>,
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    tally: Tally,
    ready: mpsc::Sender<Result<(), String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        if let Err(e) = crate::netns::enter(&namespace) {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
        let ready_ok = ready.clone();
        let result = v6scope_netem::run_with_tap(
            queue,
            &rules,
            &stop,
            64,
            move || {
                let _ = ready_ok.send(Ok(()));
            },
            |_, packet| {
                if let Some((remote, bytes, syn)) = packet_facts(packet, queue == 0)
                    && let Ok(mut tally) = tally.lock()
                {
                    let counts = tally.entry((phase.load(Ordering::Relaxed), remote)).or_default();
                    counts.bytes += bytes;
                    counts.attempts += u64::from(syn);
                }
            },
        );
        if let Err(e) = result {
            let _ = ready.send(Err(e.to_string()));
        }
    })
}

fn wait(rx: &mpsc::Receiver<Result<(), String>>) -> Result<(), BenchError> {
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(BenchError::DelayLine(e)),
        Err(_) => Err(BenchError::DelayLine("no answer within 10 s".into())),
    }
}

/// The names the bench upstream serves to a device.
fn register_bench_names(journal: &mut Journal) {
    // Each name its own IPv4 address, so the per-host table can tell them apart.
    let plan = |a: Option<Ipv4Addr>, aaaa: bool| NamePlan {
        a: a.into_iter().collect(),
        aaaa: if aaaa { vec![v6_delayed(0)] } else { vec![] },
        a_answer: crate::trial::Answer {
            delay: Duration::ZERO,
            kind: AnswerKind::Records,
        },
        aaaa_answer: crate::trial::Answer {
            delay: Duration::ZERO,
            kind: AnswerKind::Records,
        },
        large_page: false,
        https_record: false,
    };
    journal.plans.insert(
        format!("dual.gw.{ZONE}"),
        plan(Some(Ipv4Addr::new(203, 0, 113, 2)), true),
    );
    journal.plans.insert(
        format!("v4.gw.{ZONE}"),
        plan(Some(Ipv4Addr::new(203, 0, 113, 3)), false),
    );
    journal.plans.insert(format!("v6.gw.{ZONE}"), plan(None, true));
}

/// Runs the phases; `progress` is told each phase as it starts.
pub fn run_gateway(
    config: &GatewayConfig,
    stop: &AtomicBool,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<GatewayReport, BenchError> {
    let bed = match config.upstream {
        Upstream::Bench => Some(Testbed::start(Vec::new(), &config.workdir, false)?),
        Upstream::Host { .. } => None,
    };
    if let Some(bed) = &bed
        && let Ok(mut journal) = bed.shared.lock()
    {
        register_bench_names(&mut journal);
    }
    let mut router = Router::start(config, bed.as_ref())?;
    let dns = match config.upstream {
        Upstream::Host { dns } => dns,
        Upstream::Bench => IpAddr::V4(Ipv4Addr::new(198, 51, 100, 65)),
    };
    let dns_log = router.start_dnsmasq(dns, &config.workdir)?;

    let tally: Tally = Arc::new(Mutex::new(HashMap::new()));
    let phase = Arc::new(AtomicUsize::new(0));
    let back_stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let back = tap_thread(
        router.namespace.clone(),
        1,
        Vec::new(),
        Arc::clone(&back_stop),
        Arc::clone(&phase),
        Arc::clone(&tally),
        ready_tx.clone(),
    );
    wait(&ready_rx)?;
    let mut seconds = Vec::new();
    let mut partial = false;
    for (i, condition) in config.conditions.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            partial = true;
            break;
        }
        progress(&condition.name, i, config.conditions.len());
        phase.store(i, Ordering::Relaxed);
        let forward_stop = Arc::new(AtomicBool::new(false));
        let forward = tap_thread(
            router.namespace.clone(),
            0,
            condition.rules.clone(),
            Arc::clone(&forward_stop),
            Arc::clone(&phase),
            Arc::clone(&tally),
            ready_tx.clone(),
        );
        wait(&ready_rx)?;
        let started = Instant::now();
        while started.elapsed() < config.phase && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        seconds.push(started.elapsed().as_secs_f64());
        if started.elapsed() < config.phase {
            partial = true;
        }
        forward_stop.store(true, Ordering::Relaxed);
        let _ = forward.join();
    }
    back_stop.store(true, Ordering::Relaxed);
    let _ = back.join();
    if let Some(child) = &mut router.dnsmasq {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (names, dual) = read_dns_log(&dns_log);
    let tally = tally.lock().map(|t| t.clone()).unwrap_or_default();
    let report = summarise(config, &seconds, &tally, &names, &dual, partial);
    drop(router);
    drop(bed);
    Ok(report)
}

fn summarise(
    config: &GatewayConfig,
    seconds: &[f64],
    tally: &HashMap<(usize, IpAddr), Counts>,
    names: &HashMap<IpAddr, BTreeSet<String>>,
    dual: &HashSet<String>,
    partial: bool,
) -> GatewayReport {
    let mut phases = Vec::new();
    for (i, secs) in seconds.iter().enumerate() {
        let mut hosts: BTreeMap<String, HostUse> = BTreeMap::new();
        for ((p, remote), counts) in tally {
            if *p != i {
                continue;
            }
            let (host, dual_stack) = match names.get(remote) {
                Some(set) => (
                    set.iter().cloned().collect::<Vec<_>>().join(", "),
                    set.iter().any(|n| dual.contains(n)),
                ),
                None => (remote.to_string(), false),
            };
            let entry = hosts.entry(host.clone()).or_insert_with(|| HostUse {
                dual_stack,
                host,
                ..HostUse::default()
            });
            match Family::of(*remote) {
                Family::Ipv4 => {
                    entry.attempts_ipv4 += counts.attempts;
                    entry.bytes_ipv4 += counts.bytes;
                }
                Family::Ipv6 => {
                    entry.attempts_ipv6 += counts.attempts;
                    entry.bytes_ipv6 += counts.bytes;
                }
            }
        }
        let mut hosts: Vec<HostUse> = hosts.into_values().collect();
        hosts.sort_by_key(|h| std::cmp::Reverse(h.bytes_ipv4 + h.bytes_ipv6));
        let (b4, b6) = hosts
            .iter()
            .fold((0, 0), |(a, b), h| (a + h.bytes_ipv4, b + h.bytes_ipv6));
        let (c4, c6) = hosts
            .iter()
            .filter(|h| h.dual_stack)
            .fold((0, 0), |(a, b), h| (a + h.attempts_ipv4, b + h.attempts_ipv6));
        phases.push(PhaseReport {
            condition: config.conditions[i].name.clone(),
            seconds: *secs,
            hosts,
            bytes_ipv4: b4,
            bytes_ipv6: b6,
            ipv6_concentration: (b4 + b6 > 0).then(|| b6 as f64 / (b4 + b6) as f64),
            dual_stack_ipv6_attempt_share: (c4 + c6 > 0).then(|| c6 as f64 / (c4 + c6) as f64),
        });
    }
    let first = phases.first();
    let (prefers, evidence) = match first.and_then(|p| p.dual_stack_ipv6_attempt_share) {
        None => (
            "not testable".to_string(),
            "no connection attempt to a dual-stack host in the first phase".to_string(),
        ),
        Some(share) if share >= 1.0 => (
            "yes".into(),
            format!(
                "every connection attempt to a dual-stack host used IPv6 in phase '{}'",
                first.map_or("", |p| &p.condition)
            ),
        ),
        Some(share) if share > 0.0 => (
            "partly".into(),
            format!(
                "{:.0} % of connection attempts to dual-stack hosts used IPv6",
                share * 100.0
            ),
        ),
        Some(_) => (
            "no".into(),
            "every connection attempt to a dual-stack host used IPv4".into(),
        ),
    };
    GatewayReport {
        lan: config.lan.clone(),
        upstream: match config.upstream {
            Upstream::Bench => "bench".into(),
            Upstream::Host { dns } => format!("host (DNS {dns})"),
        },
        ipv6_concentration: first.and_then(|p| p.ipv6_concentration),
        prefers_ipv6: prefers,
        evidence,
        phases,
        partial,
    }
}

/// The gateway report as plain text.
pub fn gateway_text(report: &GatewayReport) -> String {
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1} %", v * 100.0));
    let mut out = format!(
        "gateway on {} (upstream {}): IPv6 concentration {}, prefers IPv6: {} ({})\n",
        report.lan,
        report.upstream,
        pct(report.ipv6_concentration),
        report.prefers_ipv6,
        report.evidence
    );
    for p in &report.phases {
        out.push_str(&format!(
            "\nphase {} ({:.0} s): IPv6 concentration {}, attempts to dual-stack hosts over IPv6 {}\n",
            p.condition,
            p.seconds,
            pct(p.ipv6_concentration),
            pct(p.dual_stack_ipv6_attempt_share)
        ));
        out.push_str(&format!(
            "  {:<40} {:>5} {:>5} {:>12} {:>12} {:>8}\n",
            "host", "SYN4", "SYN6", "bytes v4", "bytes v6", "v6 share"
        ));
        for h in &p.hosts {
            out.push_str(&format!(
                "  {:<40} {:>5} {:>5} {:>12} {:>12} {:>8}{}\n",
                h.host,
                h.attempts_ipv4,
                h.attempts_ipv6,
                h.bytes_ipv4,
                h.bytes_ipv6,
                pct(h.ipv6_byte_share()),
                if h.dual_stack { "  (dual-stack)" } else { "" }
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse() {
        assert!("none".parse::<Condition>().unwrap().rules.is_empty());
        let c: Condition = "ipv6+300".parse().unwrap();
        assert_eq!(c.rules[0].selector, Selector::Ipv6);
        assert_eq!(c.rules[0].delay, Duration::from_millis(300));
        assert_eq!("ipv6-blackhole".parse::<Condition>().unwrap().rules[0].loss, 1.0);
        assert!("ipv7+1".parse::<Condition>().is_err());
        assert!("ipv6+5000".parse::<Condition>().is_err());
        let lossy: Condition = "ipv6-loss=5%".parse().unwrap();
        assert!((lossy.rules[0].loss - 0.05).abs() < 1e-12 && lossy.rules[0].delay.is_zero());
        assert!("ipv6-loss=150".parse::<Condition>().is_err());
        assert_eq!(default_conditions().len(), 4);
    }

    #[test]
    fn the_dns_log_names_addresses_and_finds_dual_stack_names() {
        let dir = std::env::temp_dir().join(format!("v6eb-dnslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        std::fs::write(
            &log,
            "Dec  7 dnsmasq[1]: 3 198.51.100.10/4000 query[A] dual.gw.eyeballs.test from 198.51.100.10\n\
             Dec  7 dnsmasq[1]: 3 198.51.100.10/4000 reply dual.gw.eyeballs.test is 203.0.113.1\n\
             Dec  7 dnsmasq[1]: 4 198.51.100.10/4001 reply dual.gw.eyeballs.test is 2001:db8:e1:1:0:1::\n\
             Dec  7 dnsmasq[1]: 5 198.51.100.10/4002 reply v4.gw.eyeballs.test is 203.0.113.1\n\
             Dec  7 dnsmasq[1]: 6 198.51.100.10/4003 reply v6.gw.eyeballs.test is NODATA-IPv6\n",
        )
        .unwrap();
        let (names, dual) = read_dns_log(&log);
        let v6: IpAddr = "2001:db8:e1:1:0:1::".parse().unwrap();
        assert!(names[&v6].contains("dual.gw.eyeballs.test"));
        // Two names share the IPv4 address: both are kept.
        let v4: IpAddr = "203.0.113.1".parse().unwrap();
        assert_eq!(names[&v4].len(), 2);
        assert!(dual.contains("dual.gw.eyeballs.test"));
        assert!(!dual.contains("v4.gw.eyeballs.test"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
