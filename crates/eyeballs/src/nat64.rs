//! IPv6-only with DNS64/NAT64 for the IPv6-only client: unbound's dns64
//! module as its resolver (forwarding to the bench's DNS) and tayga as the
//! NAT64, both in the server's namespace, stopped by PID when dropped.

use crate::netns::{NamespacePair, NetnsError, SERVER_V4, SERVER6_V6, run};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The NAT64 prefix (network-specific: tayga refuses the well-known
/// 64:ff9b::/96 for non-global IPv4 such as the documentation prefixes).
pub const NAT64_PREFIX: &str = "2001:db8:64::/96";
/// The IPv4 addresses NAT64 maps clients to, as the server sees them.
pub const NAT64_POOL: &str = "198.51.100.128/25";
const TAYGA_ADDRESS: &str = "198.51.100.1";
const TUN: &str = "nat64";

pub struct Nat64 {
    daemons: Vec<Child>,
}

fn daemon_error(what: &str, detail: impl Into<String>) -> NetnsError {
    NetnsError::Command {
        command: what.to_string(),
        detail: detail.into(),
    }
}

impl Nat64 {
    pub fn start(pair: &NamespacePair, workdir: &Path) -> Result<Nat64, NetnsError> {
        let s = pair.server.as_str();
        let tayga_dir = workdir.join("tayga");
        std::fs::create_dir_all(&tayga_dir).map_err(|e| daemon_error("mkdir tayga", e.to_string()))?;
        let tayga_conf = workdir.join("tayga.conf");
        std::fs::write(
            &tayga_conf,
            format!(
                "tun-device {TUN}\nipv4-addr {TAYGA_ADDRESS}\nprefix {NAT64_PREFIX}\ndynamic-pool {NAT64_POOL}\ndata-dir {}\n",
                tayga_dir.display()
            ),
        )
        .map_err(|e| daemon_error("writing tayga.conf", e.to_string()))?;
        let conf = tayga_conf.display().to_string();
        run("ip", &["netns", "exec", s, "tayga", "-c", &conf, "--mktun"])?;
        run("ip", &["-n", s, "link", "set", TUN, "up"])?;
        run("ip", &["-n", s, "route", "add", NAT64_POOL, "dev", TUN])?;
        run("ip", &["-n", s, "-6", "route", "add", NAT64_PREFIX, "dev", TUN])?;
        let mut nat64 = Nat64 { daemons: Vec::new() };
        nat64.spawn(s, &["tayga", "-c", &conf, "--nodetach"])?;

        let unbound_conf = workdir.join("unbound.conf");
        std::fs::write(
            &unbound_conf,
            format!(
                r#"server:
  interface: {SERVER6_V6}
  port: 53
  access-control: ::/0 allow
  module-config: "dns64 iterator"
  dns64-prefix: {NAT64_PREFIX}
  do-daemonize: no
  username: ""
  chroot: ""
  pidfile: ""
  directory: "{dir}"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  qname-minimisation: no
  do-not-query-localhost: no
  local-zone: "test." nodefault
  domain-insecure: "test."
  cache-max-ttl: 0
  cache-max-negative-ttl: 0
forward-zone:
  name: "."
  forward-addr: {SERVER_V4}
"#,
                dir = workdir.display()
            ),
        )
        .map_err(|e| daemon_error("writing unbound.conf", e.to_string()))?;
        let conf = unbound_conf.display().to_string();
        nat64.spawn(s, &["unbound", "-d", "-c", &conf])?;
        nat64.wait_listening(s)?;
        Ok(nat64)
    }

    fn spawn(&mut self, namespace: &str, argv: &[&str]) -> Result<(), NetnsError> {
        let child = Command::new("ip")
            .args(["netns", "exec", namespace])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| daemon_error(argv[0], format!("{e} (apt-get install {})", argv[0])))?;
        self.daemons.push(child);
        Ok(())
    }

    /// Until unbound listens (tayga is ready once its TUN is up).
    fn wait_listening(&mut self, namespace: &str) -> Result<(), NetnsError> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            for child in &mut self.daemons {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(daemon_error("tayga/unbound", format!("exited at start with {status}")));
                }
            }
            let out = Command::new("ip")
                .args(["netns", "exec", namespace, "ss", "-Hlun", "sport = :53"])
                .output()
                .map_err(|e| daemon_error("ss", e.to_string()))?;
            if String::from_utf8_lossy(&out.stdout).contains(&SERVER6_V6.to_string()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(daemon_error("unbound", "not listening after 10 s"))
    }
}

impl Drop for Nat64 {
    fn drop(&mut self) {
        for child in &mut self.daemons {
            // `ip netns exec` execs the daemon: the PID is the daemon's.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether an address is one NAT64 maps clients to.
pub fn from_nat64_pool(address: std::net::IpAddr) -> bool {
    NAT64_POOL
        .parse::<ipnet::IpNet>()
        .is_ok_and(|pool| pool.contains(&address))
}
