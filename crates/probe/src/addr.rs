//! Address classification: which addresses count as real, global IPv6 (or IPv4).
//!
//! Prefixes follow the IANA special-purpose registries (RFC 6890 and updates).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use v6scope_model::{AddrInfo, AddressClass};

/// Classifies addresses, treating operator-allowed prefixes as usable.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        AddressPolicy { allowed }
    }

    pub fn info(&self, address: IpAddr) -> AddrInfo {
        let class = classify(address);
        let usable = class == AddressClass::Global || self.allowed.iter().any(|net| net.contains(&address));
        AddrInfo { address, class, usable }
    }
}

fn v6net(s: &str) -> Ipv6Net {
    s.parse().expect("static prefix")
}

fn v4net(s: &str) -> Ipv4Net {
    s.parse().expect("static prefix")
}

/// Classify one address. IPv4 special-purpose space is reported as
/// `SpecialPurpose` except for the documentation and benchmarking blocks.
pub fn classify(address: IpAddr) -> AddressClass {
    match address {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn classify_v4(a: Ipv4Addr) -> AddressClass {
    if a.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if a.is_loopback() {
        return AddressClass::Loopback;
    }
    if a.is_multicast() {
        return AddressClass::Multicast;
    }
    if a.is_link_local() {
        return AddressClass::LinkLocal;
    }
    if ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
        .iter()
        .any(|p| v4net(p).contains(&a))
    {
        return AddressClass::Documentation;
    }
    if v4net("198.18.0.0/15").contains(&a) {
        return AddressClass::Benchmarking;
    }
    let special = [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "240.0.0.0/4",
    ];
    if special.iter().any(|p| v4net(p).contains(&a)) {
        return AddressClass::SpecialPurpose;
    }
    AddressClass::Global
}

fn classify_v6(a: Ipv6Addr) -> AddressClass {
    let table: [(&str, AddressClass); 16] = [
        ("::/128", AddressClass::Unspecified),
        ("::1/128", AddressClass::Loopback),
        ("::ffff:0:0/96", AddressClass::Ipv4Mapped),
        ("64:ff9b::/96", AddressClass::Nat64),
        ("64:ff9b:1::/48", AddressClass::Nat64),
        ("100::/64", AddressClass::Discard),
        ("2001::/32", AddressClass::Teredo),
        ("2001:2::/48", AddressClass::Benchmarking),
        ("2001:db8::/32", AddressClass::Documentation),
        ("3fff::/20", AddressClass::Documentation),
        ("2002::/16", AddressClass::SixToFour),
        ("fc00::/7", AddressClass::UniqueLocal),
        ("fe80::/10", AddressClass::LinkLocal),
        ("ff00::/8", AddressClass::Multicast),
        // Deprecated site-local space is not global either.
        ("fec0::/10", AddressClass::UniqueLocal),
        ("::/96", AddressClass::Ipv4Compatible),
    ];
    for (prefix, class) in table {
        if v6net(prefix).contains(&a) {
            return class;
        }
    }
    // Global unicast is 2000::/3; anything else is reserved.
    if v6net("2000::/3").contains(&a) {
        AddressClass::Global
    } else {
        AddressClass::SpecialPurpose
    }
}

/// The /48 that contains an IPv6 address (for name-server diversity).
pub fn slash48(a: Ipv6Addr) -> Ipv6Net {
    Ipv6Net::new(a, 48).expect("48 is a valid prefix length").trunc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classifies_the_special_ranges() {
        assert_eq!(c("2a00:1450::1"), AddressClass::Global);
        assert_eq!(c("::ffff:192.0.2.1"), AddressClass::Ipv4Mapped);
        assert_eq!(c("::192.0.2.1"), AddressClass::Ipv4Compatible);
        assert_eq!(c("fd00::1"), AddressClass::UniqueLocal);
        assert_eq!(c("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(c("::1"), AddressClass::Loopback);
        assert_eq!(c("::"), AddressClass::Unspecified);
        assert_eq!(c("ff02::1"), AddressClass::Multicast);
        assert_eq!(c("2001:db8::1"), AddressClass::Documentation);
        assert_eq!(c("3fff:1::1"), AddressClass::Documentation);
        assert_eq!(c("64:ff9b::c000:201"), AddressClass::Nat64);
        assert_eq!(c("64:ff9b:1::1"), AddressClass::Nat64);
        assert_eq!(c("2002:c000:0201::1"), AddressClass::SixToFour);
        assert_eq!(c("2001:0:4136::1"), AddressClass::Teredo);
        assert_eq!(c("100::1"), AddressClass::Discard);
        assert_eq!(c("2001:2::1"), AddressClass::Benchmarking);
        assert_eq!(c("8.8.8.8"), AddressClass::Global);
        assert_eq!(c("10.1.2.3"), AddressClass::SpecialPurpose);
        assert_eq!(c("203.0.113.9"), AddressClass::Documentation);
    }

    #[test]
    fn allowed_prefix_makes_an_address_usable() {
        let policy = AddressPolicy::new(vec!["2001:db8::/32".parse().unwrap()]);
        let info = policy.info("2001:db8:1::1".parse().unwrap());
        assert!(info.usable);
        assert_eq!(info.class, AddressClass::Documentation);
        assert!(!policy.info("fd00::1".parse().unwrap()).usable);
    }

    #[test]
    fn slash48_truncates() {
        assert_eq!(
            slash48("2001:db8:10:ffff::1".parse().unwrap()).to_string(),
            "2001:db8:10::/48"
        );
    }
}
