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
    pub client: String,
    pub server: String,
    resolv_dir: PathBuf,
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
    /// Creates the pair for this process (names carry the PID, so benches
    /// run side by side), with routes both ways and the client's resolver
    /// set to the server's DNS.
    pub fn create() -> Result<NamespacePair, NetnsError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(NetnsError::NotRoot);
        }
        let id = std::process::id();
        let client = format!("v6eb{id}c");
        let server = format!("v6eb{id}s");
        // A stale pair of an earlier, killed bench with the same PID.
        let _ = ip(&["netns", "del", &client]);
        let _ = ip(&["netns", "del", &server]);
        let resolv_dir = PathBuf::from(format!("/etc/netns/{client}"));
        let pair = NamespacePair {
            client,
            server,
            resolv_dir,
        };
        pair.build()?;
        Ok(pair)
    }

    fn build(&self) -> Result<(), NetnsError> {
        let (c, s) = (self.client.as_str(), self.server.as_str());
        ip(&["netns", "add", c])?;
        ip(&["netns", "add", s])?;
        let (cdev, sdev) = (format!("{c}0"), format!("{s}0"));
        // Fixed MACs and permanent neighbours: no ARP, NDP or DAD in the
        // timings (an unresolved neighbour held the first IPv6 SYNs for
        // hundreds of ms).
        for ns in [c, s] {
            for key in ["net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"] {
                run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", key])?;
            }
        }
        ip(&[
            "link", "add", &cdev, "address", CLIENT_MAC, "netns", c, "type", "veth", "peer", &sdev, "address",
            SERVER_MAC, "netns", s,
        ])?;
        let client_v4 = format!("{CLIENT_V4}/24");
        let client_v6 = format!("{CLIENT_V6}/64");
        let server_v4 = format!("{SERVER_V4}/24");
        let server_v6 = format!("{SERVER_V6}/64");
        let (sv4, sv6) = (SERVER_V4.to_string(), SERVER_V6.to_string());
        for (ns, dev, v4, v6) in [(c, &cdev, &client_v4, &client_v6), (s, &sdev, &server_v4, &server_v6)] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "addr", "add", v4, "dev", dev])?;
            ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        let (cv4, cv6) = (CLIENT_V4.to_string(), CLIENT_V6.to_string());
        for (ns, dev, neighbour, mac) in [
            (c, &cdev, &sv4, SERVER_MAC),
            (c, &cdev, &sv6, SERVER_MAC),
            (s, &sdev, &cv4, CLIENT_MAC),
            (s, &sdev, &cv6, CLIENT_MAC),
        ] {
            ip(&[
                "-n",
                ns,
                "neigh",
                "replace",
                neighbour,
                "lladdr",
                mac,
                "dev",
                dev,
                "nud",
                "permanent",
            ])?;
        }
        ip(&["-n", c, "route", "add", "default", "via", &sv4])?;
        ip(&["-n", c, "-6", "route", "add", "default", "via", &sv6])?;
        ip(&["-n", s, "route", "add", "local", TEST_PREFIX_V4, "dev", "lo"])?;
        ip(&["-n", s, "-6", "route", "add", "local", TEST_PREFIX_V6, "dev", "lo"])?;
        // `ip netns exec` mounts this over /etc/resolv.conf for the client.
        std::fs::create_dir_all(&self.resolv_dir).map_err(|e| NetnsError::Command {
            command: format!("mkdir {}", self.resolv_dir.display()),
            detail: e.to_string(),
        })?;
        std::fs::write(self.resolv_dir.join("resolv.conf"), format!("nameserver {SERVER_V4}\n")).map_err(|e| {
            NetnsError::Command {
                command: format!("writing {}/resolv.conf", self.resolv_dir.display()),
                detail: e.to_string(),
            }
        })?;
        Ok(())
    }

    /// `ip netns exec CLIENT` followed by the command.
    pub fn client_command(&self, argv: &[String]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.client]).args(argv);
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
        let _ = ip(&["netns", "del", &self.client]);
        let _ = ip(&["netns", "del", &self.server]);
        let _ = std::fs::remove_dir_all(&self.resolv_dir);
    }
}
