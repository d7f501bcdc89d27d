//! Flow records → indicator samples: sampling-corrected IPv4/IPv6 bytes,
//! packets and exported records per interval, exporter, interface and
//! network (AS, organisation, region); active IPv6 subscribers and
//! addresses per day and organisation; bytes per named host for captures.

use crate::enrich::{Network, PrefixTable};
use crate::users::Sketch;
use crate::{Direction, Family, FlowRecord};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// 1-in-N sampling per exporter: `defaults` apply when the exporter says
/// nothing, `overrides` whatever it says. The longest matching prefix wins.
#[derive(Debug, Clone, Default)]
pub struct SamplingPolicy {
    pub defaults: Vec<(IpNet, u32)>,
    pub overrides: Vec<(IpNet, u32)>,
}

impl SamplingPolicy {
    fn lookup(list: &[(IpNet, u32)], exporter: IpAddr) -> Option<u32> {
        list.iter()
            .filter(|(net, _)| net.contains(&exporter))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|&(_, rate)| rate)
    }

    /// The rate to scale by; none when nothing says (counted apart, never
    /// silently scaled by 1).
    /// A rate an exporter states above `MAX_REPORTED_RATE` is a lie (one
    /// such record once scaled 5 MB of fuzz into 201 GB): it is treated as
    /// unknown. Operators' own rates are taken as given.
    pub fn rate(&self, exporter: IpAddr, reported: Option<u32>) -> Option<u32> {
        Self::lookup(&self.overrides, exporter)
            .or(reported.filter(|&r| r > 0 && r <= MAX_REPORTED_RATE))
            .or_else(|| Self::lookup(&self.defaults, exporter))
    }
}

/// 1 in 2^20 packets: sparser than any router samples.
pub const MAX_REPORTED_RATE: u32 = 1 << 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub bytes: u64,
    pub packets: u64,
    /// Exported records (flows or samples), not scaled.
    pub records: u64,
}

impl Counters {
    fn add(&mut self, bytes: u64, packets: u64) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.packets = self.packets.saturating_add(packets);
        self.records += 1;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrafficKey {
    /// Interval start, Unix seconds.
    pub start: u64,
    pub exporter: IpAddr,
    pub interface: u32,
    pub asn: u32,
    pub organisation: Arc<str>,
    pub region: Arc<str>,
    pub family: Family,
}

/// Distinct active IPv6 subscribers (prefixes) and addresses.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UserSketches {
    pub subscribers: Sketch,
    pub addresses: Sketch,
}

pub struct Aggregator {
    interval: u64,
    sampling: SamplingPolicy,
    table: Arc<PrefixTable>,
    /// Count egress records too (each packet would then be counted twice
    /// on a router exporting both directions).
    pub count_egress: bool,
    /// Counters per key, names by number ([`Aggregator::traffic`] gives
    /// them with their names).
    traffic: FastMap<IdKey, Counters>,
    /// Records whose sampling rate nobody knows: (interval, exporter,
    /// family) → unscaled counters.
    pub unknown_rate: FastMap<(u64, IpAddr, Family), Counters>,
    /// (UTC day number, organisation) → sketches ([`Aggregator::users`]
    /// gives them with the day and organisation named).
    users: FastMap<(u64, u32), UserSketches>,
    pub egress_skipped: u64,
    /// Organisation and region names shared by every key that uses them
    /// (no allocation per record), by number.
    names: Names,
    /// The last exporter's sampling rate: records come in runs per exporter.
    last_rate: Option<(IpAddr, Option<u32>, Option<u32>)>,
    /// Recently seen blocks (see [`PrefixTable::block_of`]) with what the
    /// table says of them: flows repeat endpoints and networks, and a
    /// longest-prefix match costs more than the rest of a record.
    /// Direct-mapped; emptied when the table changes.
    endpoints: [Vec<Option<Endpoint>>; 2],
    /// What the table says of every address of a network (by the network's
    /// address in the table; 0 for none), where that is the same for all.
    networks: FastMap<usize, Endpoint>,
}

/// One address as the table labels it (names by number: no reference
/// counts touched per record). In the cache, `address` is the block.
#[derive(Clone, Copy)]
struct Endpoint {
    address: IpAddr,
    asn: u32,
    organisation: u32,
    region: u32,
    /// The operator's network holds it and is a `subscriber` network.
    subscriber_network: bool,
    /// That network's organisation and subscriber prefix length.
    subscriber: Option<(u32, u8)>,
}

const ENDPOINT_SLOTS: usize = 1 << 11;

fn endpoint_slot(address: IpAddr) -> usize {
    let bits = match address {
        IpAddr::V4(a) => u64::from(a.to_bits()),
        IpAddr::V6(a) => {
            let b = a.to_bits();
            (b as u64) ^ ((b >> 64) as u64).rotate_left(17)
        }
    };
    (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 11)) as usize
}

/// The maps a record touches: hashed with foldhash (per-process random seed,
/// so an exporter cannot aim collisions at it), not SipHash, which was a
/// fifth of the time per record; nothing reads them in key order.
pub type FastMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

/// Interned names: each distinct organisation or region string once.
#[derive(Default)]
struct Names {
    ids: FastMap<Arc<str>, u32>,
    list: Vec<Arc<str>>,
}

impl Names {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.list.len() as u32;
        let name: Arc<str> = Arc::from(s);
        self.list.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn get(&self, id: u32) -> &Arc<str> {
        &self.list[id as usize]
    }
}

/// A [`TrafficKey`] with its names by number: a record's key hashes and
/// compares as integers, not strings.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct IdKey {
    start: u64,
    exporter: IpAddr,
    interface: u32,
    asn: u32,
    organisation: u32,
    region: u32,
    family: Family,
}

impl IdKey {
    /// The same key with its names numbered in `to` instead of `from`.
    fn renamed(self, from: &Names, to: &mut Names) -> IdKey {
        IdKey {
            organisation: to.id(from.get(self.organisation)),
            region: to.id(from.get(self.region)),
            ..self
        }
    }
}

impl Aggregator {
    pub fn new(interval_secs: u64, sampling: SamplingPolicy, table: Arc<PrefixTable>) -> Self {
        Aggregator {
            interval: interval_secs.max(1),
            sampling,
            table,
            count_egress: false,
            traffic: FastMap::default(),
            unknown_rate: FastMap::default(),
            users: FastMap::default(),
            egress_skipped: 0,
            names: Default::default(),
            last_rate: None,
            endpoints: [Vec::new(), Vec::new()],
            networks: FastMap::default(),
        }
    }

    /// Counters per key, with the names.
    pub fn traffic(&self) -> impl Iterator<Item = (TrafficKey, &Counters)> + '_ {
        self.traffic.iter().map(|(k, c)| {
            (
                TrafficKey {
                    start: k.start,
                    exporter: k.exporter,
                    interface: k.interface,
                    asn: k.asn,
                    organisation: self.names.get(k.organisation).clone(),
                    region: self.names.get(k.region).clone(),
                    family: k.family,
                },
                c,
            )
        })
    }

    /// Sketches per (UTC day "YYYY-MM-DD", organisation).
    pub fn users(&self) -> impl Iterator<Item = ((Arc<str>, Arc<str>), &UserSketches)> + '_ {
        self.users.iter().map(|((day, organisation), s)| {
            let day: Arc<str> = Arc::from(day_of(day * 86_400));
            ((day, self.names.get(*organisation).clone()), s)
        })
    }

    /// Nothing counted: no traffic, no unscaled records, no users.
    pub fn is_empty(&self) -> bool {
        self.traffic.is_empty() && self.unknown_rate.is_empty() && self.users.is_empty()
    }

    /// The counters and sketches so far, as an aggregator of their own;
    /// this one starts again empty but keeps its caches.
    pub fn take(&mut self) -> Aggregator {
        let mut taken = Aggregator::new(self.interval, self.sampling.clone(), self.table.clone());
        taken.count_egress = self.count_egress;
        // The keys move with their names (this one's numbering stays, for
        // its caches).
        for (key, c) in self.traffic.drain() {
            taken.traffic.insert(key.renamed(&self.names, &mut taken.names), c);
        }
        for ((day, organisation), s) in self.users.drain() {
            let organisation = taken.names.id(self.names.get(organisation));
            taken.users.insert((day, organisation), s);
        }
        taken.unknown_rate = std::mem::take(&mut self.unknown_rate);
        taken.egress_skipped = std::mem::take(&mut self.egress_skipped);
        taken
    }

    /// `address` as the table labels it, from the cache when its block (as
    /// long as the table's longest prefix) was seen; one cache per side of
    /// the flow, so the two never evict each other.
    fn endpoint(&mut self, side: usize, address: IpAddr) -> Endpoint {
        let cache = &mut self.endpoints[side];
        if cache.is_empty() {
            *cache = vec![None; ENDPOINT_SLOTS];
        }
        let block = self.table.block_of(address);
        let slot = endpoint_slot(block);
        if let Some(e) = cache[slot]
            && e.address == block
        {
            return Endpoint { address, ..e };
        }
        let table = &self.table;
        let network = table.lookup(address).map(|(_, n)| n);
        // Most labels are the network's alone: worked out once per network.
        let by_network = table
            .label_is_the_network(network.map(|n| &**n))
            .then(|| network.map_or(0, |n| Arc::as_ptr(n) as usize));
        let e = match by_network.and_then(|at| self.networks.get(&at)) {
            Some(e) => *e,
            None => {
                let network = network.map(|n| &**n);
                let label = table.label_with(address, network);
                let names = &mut self.names;
                let e = Endpoint {
                    address: block,
                    asn: label.asn,
                    organisation: names.id(label.organisation),
                    region: names.id(label.region),
                    subscriber_network: network.is_some_and(Network::is_subscriber),
                    subscriber: network
                        .filter(|n| n.is_subscriber())
                        .map(|n| (names.id(&n.organisation), n.subscriber_len)),
                };
                if let Some(at) = by_network {
                    self.networks.insert(at, e);
                }
                e
            }
        };
        self.endpoints[side][slot] = Some(Endpoint { address: block, ..e });
        Endpoint { address, ..e }
    }

    pub fn sampling(&self) -> &SamplingPolicy {
        &self.sampling
    }

    pub fn table(&self) -> &Arc<PrefixTable> {
        &self.table
    }

    /// A reloaded table applies from the next record on.
    pub fn set_table(&mut self, table: Arc<PrefixTable>) {
        self.table = table;
        self.endpoints = [Vec::new(), Vec::new()];
        self.networks.clear();
    }

    pub fn add(&mut self, rec: &FlowRecord) {
        if rec.direction == Some(Direction::Egress) && !self.count_egress {
            self.egress_skipped += 1;
            return;
        }
        let family = rec.family();
        let start = rec.time - rec.time % self.interval;
        // Each endpoint's network, looked up once for labels and users.
        let (src, dst) = (self.endpoint(0, rec.src), self.endpoint(1, rec.dst));
        let rate = match self.last_rate {
            Some((exporter, reported, rate)) if exporter == rec.exporter && reported == rec.sampling => rate,
            _ => {
                let rate = self.sampling.rate(rec.exporter, rec.sampling);
                self.last_rate = Some((rec.exporter, rec.sampling, rate));
                rate
            }
        };
        match rate {
            Some(rate) => {
                let rate = u64::from(rate);
                // The network of the traffic: the subscriber side's (either
                // direction of a subscriber's traffic is that network's),
                // else the source's, else the destination's.
                let mut label = if !src.subscriber_network && dst.subscriber_network {
                    dst
                } else {
                    src
                };
                if label.asn == 0 && self.names.get(label.organisation).is_empty() {
                    label = dst;
                }
                let key = IdKey {
                    start,
                    exporter: rec.exporter,
                    interface: rec.input_interface,
                    asn: label.asn,
                    organisation: label.organisation,
                    region: label.region,
                    family,
                };
                let (bytes, packets) = (rec.bytes.saturating_mul(rate), rec.packets.saturating_mul(rate));
                self.traffic.entry(key).or_default().add(bytes, packets);
            }
            None => self
                .unknown_rate
                .entry((start, rec.exporter, family))
                .or_default()
                .add(rec.bytes, rec.packets),
        }
        if family == Family::Ipv6 && counts_for_users(rec) {
            for end in [src, dst] {
                let IpAddr::V6(v6) = end.address else { continue };
                let Some((organisation, len)) = self.subscriber(v6, &end) else {
                    continue;
                };
                let sketches = self.users.entry((rec.time / 86_400, organisation)).or_default();
                sketches.subscribers.insert(mask(v6, len));
                sketches.addresses.insert(u128::from(v6));
            }
        }
    }

    /// Whether `address` (in `network`, if the table has it) is a
    /// subscriber, and of which organisation with which subscriber prefix
    /// length. With a prefix table, subscribers are the addresses of
    /// `subscriber` networks (documentation prefixes too: the operator said
    /// so); without one, every global unicast address.
    fn subscriber(&mut self, address: Ipv6Addr, end: &Endpoint) -> Option<(u32, u8)> {
        if !unicast(address) {
            return None;
        }
        if self.table.is_empty() {
            return global(address).then(|| (self.names.id(""), 64));
        }
        end.subscriber
    }

    /// Adds another aggregator's counters and sketches (another thread's,
    /// or another collector's).
    pub fn merge(&mut self, other: &Aggregator) -> Result<(), crate::users::SketchError> {
        for (key, c) in &other.traffic {
            let mine = self
                .traffic
                .entry(key.renamed(&other.names, &mut self.names))
                .or_default();
            mine.bytes = mine.bytes.saturating_add(c.bytes);
            mine.packets = mine.packets.saturating_add(c.packets);
            mine.records += c.records;
        }
        for (key, c) in &other.unknown_rate {
            let mine = self.unknown_rate.entry(*key).or_default();
            mine.bytes = mine.bytes.saturating_add(c.bytes);
            mine.packets = mine.packets.saturating_add(c.packets);
            mine.records += c.records;
        }
        for (&(day, organisation), sketches) in &other.users {
            let organisation = self.names.id(other.names.get(organisation));
            let mine = self.users.entry((day, organisation)).or_default();
            mine.subscribers.merge(&sketches.subscribers)?;
            mine.addresses.merge(&sketches.addresses)?;
        }
        self.egress_skipped += other.egress_skipped;
        Ok(())
    }

    /// Totals per family across everything aggregated (scaled).
    pub fn totals(&self) -> BTreeMap<Family, Counters> {
        let mut totals: BTreeMap<Family, Counters> = BTreeMap::new();
        for (key, c) in &self.traffic {
            let t = totals.entry(key.family).or_default();
            t.bytes += c.bytes;
            t.packets += c.packets;
            t.records += c.records;
        }
        totals
    }
}

/// ICMPv6 and DNS alone do not make an active user (Chinese definition).
fn counts_for_users(rec: &FlowRecord) -> bool {
    rec.protocol != 58 && rec.src_port != 53 && rec.dst_port != 53
}

fn unicast(a: Ipv6Addr) -> bool {
    let s = a.segments();
    !(a.is_unspecified()
        || a.is_loopback()
        || s[0] & 0xff00 == 0xff00 // multicast
        || s[0] & 0xffc0 == 0xfe80 // link-local
        || s[0] & 0xfe00 == 0xfc00) // ULA
}

/// Global unicast (2000::/3) outside the documentation prefix.
fn global(a: Ipv6Addr) -> bool {
    let s = a.segments();
    s[0] & 0xe000 == 0x2000 && !(s[0] == 0x2001 && s[1] == 0x0db8)
}

fn mask(a: Ipv6Addr, len: u8) -> u128 {
    let bits = u128::from(a);
    match len {
        0 => 0,
        128.. => bits,
        n => bits & !(u128::MAX >> n),
    }
}

/// "YYYY-MM-DD" (UTC) of a Unix time.
pub fn day_of(secs: u64) -> String {
    v6scope_model::days::format((secs / 86_400) as i64)
}

/// Unix seconds at the start of a "YYYY-MM-DD" (UTC) day.
pub fn day_start(day: &str) -> Option<u64> {
    u64::try_from(v6scope_model::days::parse(day)? * 86_400).ok()
}

/// Bytes per host (named by DNS/SNI from the capture where possible) and
/// family: the "app IPv6 concentration" of a capture.
#[derive(Debug, Default, Clone)]
pub struct HostBytes {
    pub by_host: HashMap<String, [u64; 2]>,
}

impl HostBytes {
    /// `server` is the remote end of the packet, `name` its name if known.
    pub fn add(&mut self, server: IpAddr, name: Option<&str>, bytes: u64) {
        let host = name.map(str::to_string).unwrap_or_else(|| server.to_string());
        let slot = match server {
            IpAddr::V4(_) => 0,
            IpAddr::V6(_) => 1,
        };
        self.by_host.entry(host).or_default()[slot] += bytes;
    }

    /// Hosts still carrying IPv4 bytes, largest first: (host, v4, v6).
    pub fn ipv4_hosts(&self) -> Vec<(String, u64, u64)> {
        let mut hosts: Vec<(String, u64, u64)> = self
            .by_host
            .iter()
            .filter(|(_, b)| b[0] > 0)
            .map(|(h, b)| (h.clone(), b[0], b[1]))
            .collect();
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(src: &str, dst: &str, protocol: u8, dst_port: u16, bytes: u64, sampling: Option<u32>) -> FlowRecord {
        FlowRecord {
            time: 1_790_000_000,
            exporter: "127.0.0.1".parse().unwrap(),
            domain: 0,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol,
            src_port: 40000,
            dst_port,
            bytes,
            packets: 2,
            input_interface: 1,
            output_interface: 2,
            direction: None,
            sampling,
        }
    }

    /// The endpoint cache holds answers per block as long as the table's
    /// longest prefix: a more specific network inside a block-mate's network
    /// still gets its own label, whichever is seen first, and its addresses
    /// are counted as users one by one.
    #[test]
    fn the_endpoint_cache_never_lends_a_label_across_a_longer_prefix() {
        let mut table = PrefixTable::default();
        let network = |organisation: &str| Network {
            organisation: organisation.into(),
            region: "R".into(),
            asn: 64500,
            subscriber_len: 64,
            role: "subscriber".into(),
        };
        table.insert("2001:db8:a::/48".parse().unwrap(), network("Wide"));
        table.insert("2001:db8:a:5::/64".parse().unwrap(), network("Narrow"));
        table.insert("198.51.100.0/24".parse().unwrap(), network("Wide4"));
        table.insert("198.51.100.128/25".parse().unwrap(), network("Narrow4"));
        let table = Arc::new(table);
        assert_eq!(
            table.block_of("2001:db8:a:5:1:2:3:4".parse().unwrap()),
            "2001:db8:a:5::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            table.block_of("198.51.100.200".parse().unwrap()),
            "198.51.100.128".parse::<IpAddr>().unwrap()
        );
        for order in [
            ["2001:db8:a:5::1", "2001:db8:a:6::1"],
            ["2001:db8:a:6::1", "2001:db8:a:5::1"],
        ] {
            let mut agg = Aggregator::new(60, SamplingPolicy::default(), table.clone());
            for src in order.into_iter().chain(["2001:db8:a:5::2", "2001:db8:a:6::2"]) {
                agg.add(&record(src, "2001:db8:ffff::80", 6, 443, 100, Some(1)));
            }
            for (src, dst) in [("198.51.100.1", "192.0.2.80"), ("198.51.100.129", "192.0.2.80")] {
                agg.add(&record(src, dst, 6, 443, 100, Some(1)));
            }
            let mut by_organisation: Vec<(String, u64)> = agg
                .traffic()
                .map(|(k, c)| (k.organisation.to_string(), c.bytes))
                .collect();
            by_organisation.sort();
            let want = [("Narrow", 200), ("Narrow4", 100), ("Wide", 200), ("Wide4", 100)];
            assert_eq!(
                by_organisation,
                want.map(|(o, b)| (o.to_string(), b)),
                "order {order:?}"
            );
            let users: BTreeMap<String, u64> = agg
                .users()
                .map(|((_, o), s)| (o.to_string(), s.addresses.count()))
                .collect();
            assert_eq!(users, BTreeMap::from([("Narrow".into(), 2), ("Wide".into(), 2)]));
        }
    }

    #[test]
    fn sampling_scales_known_rates_and_sets_unknown_apart() {
        let table = Arc::new(PrefixTable::default());
        let mut agg = Aggregator::new(60, SamplingPolicy::default(), table);
        agg.add(&record("2001:db8::1", "2001:db8::2", 6, 443, 1000, Some(100)));
        agg.add(&record("192.0.2.1", "192.0.2.2", 6, 443, 500, None));
        let totals = agg.totals();
        assert_eq!(totals[&Family::Ipv6].bytes, 100_000);
        assert_eq!(totals[&Family::Ipv6].packets, 200);
        assert_eq!(totals[&Family::Ipv6].records, 1);
        assert!(!totals.contains_key(&Family::Ipv4));
        assert_eq!(agg.unknown_rate.values().next().unwrap().bytes, 500);
        let policy = SamplingPolicy {
            defaults: vec![("127.0.0.0/8".parse().unwrap(), 1)],
            overrides: vec![],
        };
        assert_eq!(policy.rate("127.0.0.1".parse().unwrap(), None), Some(1));
        assert_eq!(policy.rate("127.0.0.1".parse().unwrap(), Some(10)), Some(10));
        let policy = SamplingPolicy {
            defaults: vec![],
            overrides: vec![("127.0.0.1/32".parse().unwrap(), 1000)],
        };
        assert_eq!(policy.rate("127.0.0.1".parse().unwrap(), Some(10)), Some(1000));
    }

    #[test]
    fn users_are_subscriber_prefixes_with_more_than_icmpv6_or_dns() {
        let mut table = PrefixTable::default();
        table.insert(
            "2001:db8:a::/48".parse().unwrap(),
            Network {
                organisation: "Mobile".into(),
                subscriber_len: 64,
                role: "subscriber".into(),
                ..Default::default()
            },
        );
        table.insert(
            "2001:db8:b::/48".parse().unwrap(),
            Network {
                organisation: "Fixed".into(),
                subscriber_len: 56,
                role: "subscriber".into(),
                ..Default::default()
            },
        );
        let mut agg = Aggregator::new(60, SamplingPolicy::default(), Arc::new(table));
        let server = "2001:db8:ffff::80";
        // Two addresses in one /64: one subscriber, two addresses.
        agg.add(&record("2001:db8:a:1::1", server, 6, 443, 100, Some(1)));
        agg.add(&record("2001:db8:a:1::2", server, 6, 443, 100, Some(1)));
        // ICMPv6-only and DNS-only subscribers do not count.
        agg.add(&record("2001:db8:a:2::1", server, 58, 0, 100, Some(1)));
        agg.add(&record("2001:db8:a:3::1", server, 17, 53, 100, Some(1)));
        // Two /64s inside one /56 of the fixed network: one subscriber.
        agg.add(&record("2001:db8:b:0::1", server, 6, 443, 100, Some(1)));
        agg.add(&record("2001:db8:b:1::1", server, 6, 443, 100, Some(1)));
        // Link-local is never a user.
        agg.add(&record("fe80::1", server, 6, 443, 100, Some(1)));
        let day = day_of(1_790_000_000);
        assert_eq!(day, "2026-09-21");
        assert_eq!(day_start(&day), Some(1_790_000_000 - 1_790_000_000 % 86_400));
        assert_eq!(day_of(day_start("2024-02-29").unwrap()), "2024-02-29");
        assert_eq!(day_start("2024-13-01"), None);
        let users: HashMap<_, _> = agg.users().collect();
        let key = |org: &str| (Arc::<str>::from(day.as_str()), Arc::<str>::from(org));
        let mobile = users[&key("Mobile")];
        assert_eq!((mobile.subscribers.count(), mobile.addresses.count()), (1, 2));
        let fixed = users[&key("Fixed")];
        assert_eq!((fixed.subscribers.count(), fixed.addresses.count()), (1, 2));
        assert_eq!(users.len(), 2);
    }
}
