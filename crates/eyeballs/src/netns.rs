//! The bench's own pair of network namespaces: the client's and the
//! server's, joined by a veth. Nothing else shares them, so the conditions
//! set on the server's side apply to the client under test and to nothing
//! on the host.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

/// The client's addresses on the link.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe0, 0, 0, 0, 0, 2);
/// The server's addresses on the link; the DNS server listens here.
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe0, 0, 0, 0, 0, 1);
const CLIENT_MAC: &str = "02:00:5e:eb:00:02";
const SERVER_MAC: &str = "02:00:5e:eb:00:01";
const CLIENT6_MAC: &str = "02:00:5e:eb:00:06";
const SERVER6_MAC: &str = "02:00:5e:eb:00:05";
/// The IPv6-only client's link; the DNS64 resolver listens on the server's end.
pub const CLIENT6_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe6, 0, 0, 0, 0, 2);
pub const SERVER6_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe6, 0, 0, 0, 0, 1);
/// Every address in these prefixes is the server's (an AnyIP local route):
/// the test names point into them, one address per condition.
pub const TEST_PREFIX_V4: &str = "203.0.113.0/24";
pub const TEST_PREFIX_V6: &str = "2001:db8:e1::/48";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("the bench needs root (it creates network namespaces); run it with sudo")]
    NotRoot,
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("entering network namespace {name}: {source}")]
    Enter { name: String, source: io::Error },
}

/// A client and a server namespace, deleted again when dropped.
#[derive(Debug)]
pub struct NamespacePair {
    /// The dual-stack client's namespace.
    pub client: String,
    /// The IPv6-only client's namespace (DNS64 resolver, NAT64 on the way).
    pub client_v6_only: String,
    pub server: String,
}

fn ip(args: &[&str]) -> Result<(), NetnsError> {
    run("ip", args)
}

pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), NetnsError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| NetnsError::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetnsError::Command {
            command,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl NamespacePair {
    /// Creates the namespaces for this process (names carry the PID, so
    /// benches run side by side), with routes both ways and the clients'
    /// resolvers: the dual-stack client asks the server's DNS directly, the
    /// IPv6-only one the DNS64 resolver.
    pub fn create() -> Result<NamespacePair, NetnsError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(NetnsError::NotRoot);
        }
        let id = std::process::id();
        let pair = NamespacePair {
            client: format!("v6eb{id}c"),
            client_v6_only: format!("v6eb{id}6"),
            server: format!("v6eb{id}s"),
        };
        // A stale set of an earlier, killed bench with the same PID.
        pair.remove();
        pair.build()?;
        Ok(pair)
    }

    fn build(&self) -> Result<(), NetnsError> {
        let (c, o, s) = (self.client.as_str(), self.client_v6_only.as_str(), self.server.as_str());
        for ns in [c, o, s] {
            ips(&format!("netns add {ns}"))?;
            // No DAD: an address is usable the moment it is added.
            for key in ["net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"] {
                run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", key])?;
            }
            ips(&format!("-n {ns} link set lo up"))?;
        }
        // The server forwards between the IPv6-only link and NAT64.
        for key in ["net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1"] {
            run("ip", &["netns", "exec", s, "sysctl", "-q", "-w", key])?;
        }
        // Fixed MACs and permanent neighbours: no ARP or NDP in the timings
        // (an unresolved neighbour held the first IPv6 SYNs for hundreds of ms).
        let dual = format!("{c}0");
        let server_dual = format!("{s}0");
        ips(&format!(
            "link add {dual} address {CLIENT_MAC} netns {c} type veth peer {server_dual} address {SERVER_MAC} netns {s}"
        ))?;
        let only = format!("{o}0");
        let server_only = format!("{s}1");
        ips(&format!(
            "link add {only} address {CLIENT6_MAC} netns {o} type veth peer {server_only} address {SERVER6_MAC} netns {s}"
        ))?;
        for (ns, dev, addresses) in [
            (c, &dual, vec![format!("{CLIENT_V4}/24"), format!("{CLIENT_V6}/64")]),
            (
                s,
                &server_dual,
                vec![format!("{SERVER_V4}/24"), format!("{SERVER_V6}/64")],
            ),
            (o, &only, vec![format!("{CLIENT6_V6}/64")]),
            (s, &server_only, vec![format!("{SERVER6_V6}/64")]),
        ] {
            for address in addresses {
                ips(&format!("-n {ns} addr add {address} dev {dev} nodad"))?;
            }
            ips(&format!("-n {ns} link set {dev} up"))?;
        }
        for (ns, dev, neighbour, mac) in [
            (c, &dual, SERVER_V4.to_string(), SERVER_MAC),
            (c, &dual, SERVER_V6.to_string(), SERVER_MAC),
            (s, &server_dual, CLIENT_V4.to_string(), CLIENT_MAC),
            (s, &server_dual, CLIENT_V6.to_string(), CLIENT_MAC),
            (o, &only, SERVER6_V6.to_string(), SERVER6_MAC),
            (s, &server_only, CLIENT6_V6.to_string(), CLIENT6_MAC),
        ] {
            ips(&format!(
                "-n {ns} neigh replace {neighbour} lladdr {mac} dev {dev} nud permanent"
            ))?;
        }
        ips(&format!("-n {c} route add default via {SERVER_V4}"))?;
        ips(&format!("-n {c} -6 route add default via {SERVER_V6}"))?;
        ips(&format!("-n {o} -6 route add default via {SERVER6_V6}"))?;
        ips(&format!("-n {s} route add local {TEST_PREFIX_V4} dev lo"))?;
        ips(&format!("-n {s} -6 route add local {TEST_PREFIX_V6} dev lo"))?;
        // `ip netns exec` mounts these over /etc/resolv.conf.
        write_resolv_conf(c, &SERVER_V4.to_string())?;
        write_resolv_conf(o, &SERVER6_V6.to_string())?;
        Ok(())
    }

    fn remove(&self) {
        for ns in [&self.client, &self.client_v6_only, &self.server] {
            let _ = ip(&["netns", "del", ns]);
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
    }

    /// `ip netns exec CLIENT` followed by the command (the IPv6-only client
    /// when `v6_only`).
    pub fn client_command(&self, v6_only: bool, argv: &[String]) -> Command {
        let namespace = if v6_only { &self.client_v6_only } else { &self.client };
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace]).args(argv);
        command
    }

    /// Runs a command inside the server's namespace (iptables rules);
    /// `args` are split at whitespace.
    pub fn in_server(&self, program: &str, args: &str) -> Result<(), NetnsError> {
        in_namespace(&self.server, program, args)
    }

    /// Runs a command inside the client's namespace, as `in_server`.
    pub fn in_client(&self, program: &str, args: &str) -> Result<(), NetnsError> {
        in_namespace(&self.client, program, args)
    }
}

fn in_namespace(namespace: &str, program: &str, args: &str) -> Result<(), NetnsError> {
    let mut all = vec!["netns", "exec", namespace, program];
    all.extend(args.split_whitespace());
    ip(&all)
}

pub(crate) fn enter(name: &str) -> Result<(), NetnsError> {
    let err = |source| NetnsError::Enter {
        name: name.to_string(),
        source,
    };
    let file = File::open(format!("/run/netns/{name}")).map_err(err)?;
    // SAFETY: setns on an open namespace descriptor; affects this thread only.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(())
}

impl Drop for NamespacePair {
    fn drop(&mut self) {
        self.remove();
    }
}

fn write_resolv_conf(namespace: &str, server: &str) -> Result<(), NetnsError> {
    let dir = PathBuf::from(format!("/etc/netns/{namespace}"));
    let err = |e: io::Error| NetnsError::Command {
        command: format!("writing {}/resolv.conf", dir.display()),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    std::fs::write(dir.join("resolv.conf"), format!("nameserver {server}\n")).map_err(err)
}

/// `ip` with its arguments in one string, split at whitespace.
pub(crate) fn ips(args: &str) -> Result<(), NetnsError> {
    ip(&args.split_whitespace().collect::<Vec<_>>())
}
