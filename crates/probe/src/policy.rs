//! Scan policy: which addresses the prober may send packets to at all.
//!
//! A server that runs scans on users' behalf must not become a way to probe
//! its own internal networks (a target whose name resolves to 10.0.0.1, a
//! redirect to `http://127.0.0.1:8080/`, hostile glue). Every outgoing
//! connection and datagram in this crate first asks the prober's policy
//! ([`AddressPolicy::check`]); a refusal is that operation's ordinary
//! failure, recorded as a [`ProbeError`] of kind `NotTestable` carrying the
//! [`PolicyRefused`] text. The policy is a value of the prober (its
//! [`crate::ProbeConfig`]), so one process can run scans under different
//! policies.
//!
//! - [`AddressPolicy::open`] permits everything (the CLI default).
//! - [`AddressPolicy::public_only`] refuses the special-purpose ranges of the
//!   IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and
//!   successors), except prefixes on its allow list.
//!
//! **Callers must allow their own resolvers** (and any vantage-probe or lab
//! addresses): queries to the configured recursive resolver are checked like
//! everything else, and a resolver on 127.0.0.53 or 10.0.0.2 is refused
//! unless its address is on the allow list.
//!
//! Choices made here:
//! - IPv4-mapped (`::ffff:0:0/96`), well-known NAT64 (`64:ff9b::/96`) and
//!   6to4 (`2002::/16`) addresses are judged by the IPv4 address they embed,
//!   since that is where the packets end up; the allow list is consulted for
//!   both the address and the embedded IPv4.
//! - `2001::/23` (IETF protocol assignments) is refused whole, including its
//!   few globally reachable sub-blocks (PCP/TURN anycast, AMT, AS112-v6,
//!   ORCHIDv2, DRIP): no website or mail server lives there; allow them
//!   explicitly if needed. Likewise `192.0.0.0/24` whole.
//! - IPv6 outside global unicast `2000::/3` (the IETF-reserved space, e.g.
//!   deprecated IPv4-compatible `::a.b.c.d` or site-local `fec0::/10`) is
//!   refused too: it is not routable on the internet.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;
use v6scope_model::{ErrorKind, ProbeError};

/// Which target addresses may be probed.
#[derive(Debug, Clone)]
pub struct AddressPolicy {
    deny_special: bool,
    allow: Vec<IpNet>,
}

/// A target address the installed scan policy does not permit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by scan policy: {addr} is {range} ({prefix})")]
pub struct PolicyRefused {
    pub addr: IpAddr,
    /// Human name of the special-purpose range, e.g. "private-use".
    pub range: &'static str,
    /// The registry prefix, e.g. "10.0.0.0/8".
    pub prefix: &'static str,
}

/// Recorded like any other failed step, so it never aborts other targets.
/// `NotTestable`: the vantage declined to test, the target is not blamed.
impl From<PolicyRefused> for ProbeError {
    fn from(e: PolicyRefused) -> Self {
        ProbeError::new(ErrorKind::NotTestable, e.to_string())
    }
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy::open()
    }
}

impl AddressPolicy {
    /// Permits every address (the CLI default).
    pub fn open() -> Self {
        AddressPolicy {
            deny_special: false,
            allow: Vec::new(),
        }
    }

    /// Refuses special-purpose addresses except those inside `allow`.
    pub fn public_only(allow: Vec<IpNet>) -> Self {
        AddressPolicy {
            deny_special: true,
            allow,
        }
    }

    /// Whether packets may be sent to `addr`.
    pub fn check(&self, addr: IpAddr) -> Result<(), PolicyRefused> {
        if !self.deny_special {
            return Ok(());
        }
        let embedded = match addr {
            IpAddr::V6(a) => embedded_ipv4(a).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = |a: IpAddr| self.allow.iter().any(|net| net.contains(&a));
        if allowed(addr) || embedded.is_some_and(allowed) {
            return Ok(());
        }
        match special_range(embedded.unwrap_or(addr)) {
            Some((range, prefix)) => Err(PolicyRefused { addr, range, prefix }),
            None => Ok(()),
        }
    }
}

struct Range<N> {
    net: N,
    prefix: &'static str,
    name: &'static str,
}

fn table<N: std::str::FromStr>(entries: &[(&'static str, &'static str)]) -> Vec<Range<N>>
where
    N::Err: std::fmt::Debug,
{
    entries
        .iter()
        .map(|&(prefix, name)| Range {
            net: prefix.parse().expect("static prefix"),
            prefix,
            name,
        })
        .collect()
}

/// IPv4 special-purpose ranges; first match wins (broadcast before 240/4).
static V4: LazyLock<Vec<Range<Ipv4Net>>> = LazyLock::new(|| {
    table(&[
        ("0.0.0.0/8", "this-network"),
        ("10.0.0.0/8", "private-use"),
        ("100.64.0.0/10", "shared address space (CGN)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private-use"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private-use"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "limited broadcast"),
        ("240.0.0.0/4", "reserved"),
    ])
});

/// IPv6 special-purpose ranges, apart from the ones judged by their
/// embedded IPv4; first match wins (sub-blocks before 2001::/23).
static V6: LazyLock<Vec<Range<Ipv6Net>>> = LazyLock::new(|| {
    table(&[
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("2001::/32", "Teredo"),
        ("2001:2::/48", "benchmarking"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6) SIDs"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    ])
});

static GLOBAL_UNICAST: LazyLock<Ipv6Net> = LazyLock::new(|| "2000::/3".parse().expect("static prefix"));

/// The special-purpose range `addr` is in, if any (no embedding applied):
/// its name and prefix.
fn special_range(addr: IpAddr) -> Option<(&'static str, &'static str)> {
    match addr {
        IpAddr::V4(a) => V4.iter().find(|r| r.net.contains(&a)).map(|r| (r.name, r.prefix)),
        IpAddr::V6(a) => V6
            .iter()
            .find(|r| r.net.contains(&a))
            .map(|r| (r.name, r.prefix))
            .or_else(|| (!GLOBAL_UNICAST.contains(&a)).then_some(("not global unicast", "outside 2000::/3"))),
    }
}

/// The IPv4 address that packets to `a` really go to, for IPv4-mapped,
/// well-known-prefix NAT64 (RFC 6052) and 6to4 (RFC 3056) addresses.
fn embedded_ipv4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = a.octets();
    if let Some(v4) = a.to_ipv4_mapped() {
        Some(v4)
    } else if a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if a.segments()[0] == 0x2002 {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn refused(policy: &AddressPolicy, addr: &str) -> PolicyRefused {
        policy.check(ip(addr)).expect_err(&format!("{addr} should be refused"))
    }

    #[test]
    fn every_special_range_is_refused_with_its_name() {
        let policy = AddressPolicy::public_only(Vec::new());
        let cases = [
            ("0.1.2.3", "this-network", "0.0.0.0/8"),
            ("10.1.2.3", "private-use", "10.0.0.0/8"),
            ("100.64.0.1", "shared address space (CGN)", "100.64.0.0/10"),
            ("127.0.0.1", "loopback", "127.0.0.0/8"),
            ("169.254.169.254", "link-local", "169.254.0.0/16"),
            ("172.31.255.255", "private-use", "172.16.0.0/12"),
            ("192.0.0.9", "IETF protocol assignments", "192.0.0.0/24"),
            ("192.0.2.1", "documentation (TEST-NET-1)", "192.0.2.0/24"),
            ("192.88.99.1", "deprecated 6to4 relay anycast", "192.88.99.0/24"),
            ("192.168.1.1", "private-use", "192.168.0.0/16"),
            ("198.19.0.1", "benchmarking", "198.18.0.0/15"),
            ("198.51.100.7", "documentation (TEST-NET-2)", "198.51.100.0/24"),
            ("203.0.113.9", "documentation (TEST-NET-3)", "203.0.113.0/24"),
            ("239.255.255.250", "multicast", "224.0.0.0/4"),
            ("240.0.0.1", "reserved", "240.0.0.0/4"),
            ("255.255.255.255", "limited broadcast", "255.255.255.255/32"),
            ("::", "unspecified", "::/128"),
            ("::1", "loopback", "::1/128"),
            ("64:ff9b:1::a00:1", "local-use IPv4/IPv6 translation", "64:ff9b:1::/48"),
            ("100::1", "discard-only", "100::/64"),
            ("2001:0:4136:e378::1", "Teredo", "2001::/32"),
            ("2001:2::1", "benchmarking", "2001:2::/48"),
            ("2001:1::1", "IETF protocol assignments", "2001::/23"),
            ("2001:db8::1", "documentation", "2001:db8::/32"),
            ("3fff:1::1", "documentation", "3fff::/20"),
            ("5f00::1", "segment routing (SRv6) SIDs", "5f00::/16"),
            ("fd00::1", "unique-local", "fc00::/7"),
            ("fe80::1", "link-local", "fe80::/10"),
            ("ff02::1", "multicast", "ff00::/8"),
            ("::7f00:1", "not global unicast", "outside 2000::/3"),
            ("fec0::1", "not global unicast", "outside 2000::/3"),
        ];
        for (addr, range, prefix) in cases {
            let e = refused(&policy, addr);
            assert_eq!((e.addr, e.range, e.prefix), (ip(addr), range, prefix), "{addr}");
        }
        assert_eq!(
            refused(&policy, "10.0.0.1").to_string(),
            "refused by scan policy: 10.0.0.1 is private-use (10.0.0.0/8)"
        );
    }

    #[test]
    fn public_addresses_are_permitted() {
        let policy = AddressPolicy::public_only(Vec::new());
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "198.41.0.4",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "223.255.255.255",
            "2a00:1450::1",
            "2001:503:ba3e::2:30",
            "2001:200::1",
            "2400:cb00::1",
        ] {
            assert_eq!(policy.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn allow_list_overrides() {
        let policy = AddressPolicy::public_only(vec![
            "2001:db8::/32".parse().unwrap(),
            "192.0.2.0/24".parse().unwrap(),
            "127.0.0.53/32".parse().unwrap(),
        ]);
        assert_eq!(policy.check(ip("2001:db8:1::1")), Ok(()));
        assert_eq!(policy.check(ip("192.0.2.10")), Ok(()));
        assert_eq!(policy.check(ip("127.0.0.53")), Ok(()));
        // The allowed IPv4 also covers its mapped form.
        assert_eq!(policy.check(ip("::ffff:127.0.0.53")), Ok(()));
        assert_eq!(refused(&policy, "127.0.0.1").range, "loopback");
        assert_eq!(refused(&policy, "fd00::1").range, "unique-local");
        assert_eq!(refused(&policy, "198.51.100.1").prefix, "198.51.100.0/24");
    }

    #[test]
    fn embedded_ipv4_decides_for_mapped_nat64_and_6to4() {
        let policy = AddressPolicy::public_only(Vec::new());
        for (addr, range) in [
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private-use"),
            ("64:ff9b::192.168.0.1", "private-use"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::1", "loopback"),
            ("2002:c000:201::1", "documentation (TEST-NET-1)"),
        ] {
            let e = refused(&policy, addr);
            assert_eq!((e.addr, e.range), (ip(addr), range), "{addr}");
        }
        for addr in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert_eq!(policy.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn open_permits_everything() {
        let policy = AddressPolicy::open();
        for addr in [
            "127.0.0.1",
            "10.0.0.1",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "ff02::1",
            "8.8.8.8",
        ] {
            assert_eq!(policy.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn a_refusal_is_recorded_as_not_testable() {
        let e: ProbeError = refused(&AddressPolicy::public_only(Vec::new()), "::1").into();
        assert_eq!(e.kind, ErrorKind::NotTestable);
        assert_eq!(e.message, "refused by scan policy: ::1 is loopback (::1/128)");
    }
}
