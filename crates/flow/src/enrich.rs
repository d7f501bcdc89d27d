//! The prefix table: longest-prefix match from an address to the AS,
//! organisation, region, subscriber prefix length and role of the network
//! it belongs to. The operator's own table (CSV or TOML) says which
//! networks hold subscribers; registry data — IP-range CSVs such as
//! ip-location-db's `asn` and `asn-country`, or MMDB files — fills in AS,
//! organisation and country where the operator's table says nothing. MMDB
//! and range files are flattened into prefixes at load. Reloading builds a
//! new table and swaps it in (the collector never stops).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// What a prefix is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, Default)]
pub struct Network {
    #[serde(default)]
    pub asn: u32,
    #[serde(default)]
    pub organisation: String,
    #[serde(default)]
    pub region: String,
    /// Prefix length of one subscriber (default /64; /56 or /60 for fixed lines).
    #[serde(default = "default_subscriber_len")]
    pub subscriber_len: u8,
    /// `subscriber` (access networks: users are counted here) or anything
    /// else (`server`, `transit`, ...).
    #[serde(default = "default_role")]
    pub role: String,
}

fn default_subscriber_len() -> u8 {
    64
}
fn default_role() -> String {
    "subscriber".into()
}

impl Network {
    pub fn is_subscriber(&self) -> bool {
        self.role == "subscriber"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {reason}")]
    Bad { path: String, line: usize, reason: String },
    #[error("{path}: {reason}")]
    Mmdb { path: String, reason: String },
}

/// An AS from registry data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsInfo {
    pub asn: u32,
    pub organisation: String,
}

/// What is known of an address: the operator's network, else registry data.
#[derive(Debug, Clone, Copy, Default)]
pub struct Label<'a> {
    pub asn: u32,
    pub organisation: &'a str,
    pub region: &'a str,
}

#[derive(Default)]
pub struct PrefixTable {
    v4: PrefixMap<Ipv4Net, Arc<Network>>,
    v6: PrefixMap<Ipv6Net, Arc<Network>>,
    asn_v4: PrefixMap<Ipv4Net, Arc<AsInfo>>,
    asn_v6: PrefixMap<Ipv6Net, Arc<AsInfo>>,
    region_v4: PrefixMap<Ipv4Net, Arc<str>>,
    region_v6: PrefixMap<Ipv6Net, Arc<str>>,
    entries: usize,
    /// The longest prefix of any map, IPv4 and IPv6: every address of a
    /// block that long looks the same to the table.
    longest: [u8; 2],
}

#[derive(serde::Deserialize)]
struct MmdbCountry {
    iso_code: Option<String>,
}

/// The fields v6scope reads from an MMDB record (GeoLite2-ASN, GeoLite2
/// Country, ip-location-db and iptoasn layouts).
#[derive(serde::Deserialize)]
struct MmdbRecord {
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
    country_code: Option<String>,
    country: Option<MmdbCountry>,
}

#[derive(serde::Deserialize)]
struct TomlTable {
    #[serde(default)]
    prefix: Vec<TomlEntry>,
}

#[derive(serde::Deserialize)]
struct TomlEntry {
    prefix: IpNet,
    #[serde(flatten)]
    network: Network,
}

impl PrefixTable {
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn insert(&mut self, prefix: IpNet, network: Network) {
        let network = Arc::new(network);
        self.entries += 1;
        self.note_length(prefix);
        match prefix.trunc() {
            IpNet::V4(p) => {
                self.v4.insert(p, network);
            }
            IpNet::V6(p) => {
                self.v6.insert(p, network);
            }
        }
    }

    fn insert_asn(&mut self, prefix: IpNet, info: AsInfo) {
        let info = Arc::new(info);
        self.entries += 1;
        self.note_length(prefix);
        match prefix.trunc() {
            IpNet::V4(p) => {
                self.asn_v4.insert(p, info);
            }
            IpNet::V6(p) => {
                self.asn_v6.insert(p, info);
            }
        }
    }

    fn note_length(&mut self, prefix: IpNet) {
        let family = usize::from(prefix.addr().is_ipv6());
        self.longest[family] = self.longest[family].max(prefix.prefix_len());
    }

    /// The block of `address` as long as the table's longest prefix of its
    /// family: the table answers the same for every address in it (so a
    /// cache may hold the answer per block).
    pub fn block_of(&self, address: IpAddr) -> IpAddr {
        match address {
            IpAddr::V4(a) => {
                let len = u32::from(self.longest[0]);
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                IpAddr::V4((a.to_bits() & mask).into())
            }
            IpAddr::V6(a) => {
                let len = u32::from(self.longest[1]);
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                IpAddr::V6((a.to_bits() & mask).into())
            }
        }
    }

    fn insert_region(&mut self, prefix: IpNet, region: &str) {
        let region: Arc<str> = Arc::from(region);
        self.entries += 1;
        self.note_length(prefix);
        match prefix.trunc() {
            IpNet::V4(p) => {
                self.region_v4.insert(p, region);
            }
            IpNet::V6(p) => {
                self.region_v6.insert(p, region);
            }
        }
    }

    /// AS, organisation and region of `address`: the operator's network's
    /// where it names them, else the registry data's.
    pub fn label(&self, address: IpAddr) -> Label<'_> {
        self.label_with(address, self.lookup(address).map(|(_, n)| &**n))
    }

    /// As [`PrefixTable::label`], with the operator's network already looked up.
    pub fn label_with<'a>(&'a self, address: IpAddr, network: Option<&'a Network>) -> Label<'a> {
        let mut label = Label::default();
        if let Some(n) = network {
            label = Label {
                asn: n.asn,
                organisation: &n.organisation,
                region: &n.region,
            };
        }
        let complete = label.asn != 0 && !label.organisation.is_empty() && !label.region.is_empty();
        if complete || !self.has_registry() {
            return label;
        }
        let (registry_as, registry_region) = match address {
            IpAddr::V4(a) => (
                self.asn_v4.get_lpm(&Ipv4Net::from(a)).map(|(_, i)| &**i),
                self.region_v4.get_lpm(&Ipv4Net::from(a)).map(|(_, r)| &**r),
            ),
            IpAddr::V6(a) => (
                self.asn_v6.get_lpm(&Ipv6Net::from(a)).map(|(_, i)| &**i),
                self.region_v6.get_lpm(&Ipv6Net::from(a)).map(|(_, r)| &**r),
            ),
        };
        if label.asn == 0
            && let Some(i) = registry_as
        {
            label.asn = i.asn;
        }
        if label.organisation.is_empty()
            && let Some(i) = registry_as
        {
            label.organisation = &i.organisation;
        }
        if label.region.is_empty()
            && let Some(r) = registry_region
        {
            label.region = r;
        }
        label
    }

    /// Whether [`PrefixTable::label_with`] gives every address of
    /// `network` (or of no network) the same label: the network says all,
    /// or there is no registry to fill gaps per address.
    pub(crate) fn label_is_the_network(&self, network: Option<&Network>) -> bool {
        network.is_some_and(|n| n.asn != 0 && !n.organisation.is_empty() && !n.region.is_empty())
            || !self.has_registry()
    }

    fn has_registry(&self) -> bool {
        !(self.asn_v4.is_empty() && self.asn_v6.is_empty() && self.region_v4.is_empty() && self.region_v6.is_empty())
    }

    /// The most specific network holding `address`.
    pub fn lookup(&self, address: IpAddr) -> Option<(IpNet, &Arc<Network>)> {
        match address {
            IpAddr::V4(a) => self.v4.get_lpm(&Ipv4Net::from(a)).map(|(p, n)| (IpNet::V4(p), n)),
            IpAddr::V6(a) => self.v6.get_lpm(&Ipv6Net::from(a)).map(|(p, n)| (IpNet::V6(p), n)),
        }
    }

    /// Adds the entries of a file: `.toml` (`[[prefix]] prefix = "...",
    /// asn, organisation, region, subscriber_len, role`) or CSV with a header
    /// naming `prefix` and any of those columns.
    pub fn load(&mut self, path: &Path) -> Result<usize, TableError> {
        let name = path.display().to_string();
        if path.extension().is_some_and(|e| e == "mmdb") {
            return self.load_mmdb(path);
        }
        let text = std::fs::read_to_string(path).map_err(|source| TableError::Read {
            path: name.clone(),
            source,
        })?;
        let before = self.entries;
        if is_range_file(&text) {
            return self.load_ranges(&name, &text);
        }
        if path.extension().is_some_and(|e| e == "toml") {
            let table: TomlTable = toml::from_str(&text).map_err(|e| TableError::Bad {
                path: name.clone(),
                line: 0,
                reason: e.to_string(),
            })?;
            for entry in table.prefix {
                check(&entry.network).map_err(|reason| TableError::Bad {
                    path: name.clone(),
                    line: 0,
                    reason: format!("{}: {reason}", entry.prefix),
                })?;
                self.insert(entry.prefix, entry.network);
            }
        } else {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| TableError::Bad {
                    path: name.clone(),
                    line: 1,
                    reason: e.to_string(),
                })?
                .clone();
            let column = |n: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(n));
            let Some(prefix_col) = column("prefix") else {
                return Err(TableError::Bad {
                    path: name,
                    line: 1,
                    reason: "no 'prefix' column".into(),
                });
            };
            let cols = [
                column("asn"),
                column("organisation").or(column("organization")),
                column("region"),
                column("subscriber_len"),
                column("role"),
            ];
            for (i, row) in reader.records().enumerate() {
                let line = i + 2;
                let bad = |reason: String| TableError::Bad {
                    path: name.clone(),
                    line,
                    reason,
                };
                let row = row.map_err(|e| bad(e.to_string()))?;
                let get = |c: Option<usize>| c.and_then(|c| row.get(c)).map(str::trim).unwrap_or("");
                let prefix: IpNet = get(Some(prefix_col))
                    .parse()
                    .map_err(|e| bad(format!("prefix '{}': {e}", get(Some(prefix_col)))))?;
                let asn = get(cols[0]).trim_start_matches("AS");
                let network = Network {
                    asn: if asn.is_empty() {
                        0
                    } else {
                        asn.parse().map_err(|e| bad(format!("asn '{asn}': {e}")))?
                    },
                    organisation: get(cols[1]).to_string(),
                    region: get(cols[2]).to_string(),
                    subscriber_len: match get(cols[3]) {
                        "" => default_subscriber_len(),
                        n => n.parse().map_err(|e| bad(format!("subscriber_len '{n}': {e}")))?,
                    },
                    role: match get(cols[4]) {
                        "" => default_role(),
                        r => r.to_string(),
                    },
                };
                check(&network).map_err(bad)?;
                self.insert(prefix, network);
            }
        }
        Ok(self.entries - before)
    }
}

impl PrefixTable {
    /// Headerless IP-range CSV (ip-location-db): `start,end,asn,organisation`
    /// or `start,end,country`. Ranges become the prefixes that cover them.
    fn load_ranges(&mut self, name: &str, text: &str) -> Result<usize, TableError> {
        let before = self.entries;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for (i, row) in reader.records().enumerate() {
            let bad = |reason: String| TableError::Bad {
                path: name.to_string(),
                line: i + 1,
                reason,
            };
            let row = row.map_err(|e| bad(e.to_string()))?;
            let field = |n: usize| row.get(n).map(str::trim).unwrap_or("");
            let (Ok(start), Ok(end)) = (field(0).parse::<IpAddr>(), field(1).parse::<IpAddr>()) else {
                return Err(bad(format!("'{},{}' is not an address range", field(0), field(1))));
            };
            let prefixes: Vec<IpNet> = match (start, end) {
                (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => ipnet::Ipv4Subnets::new(s, e, 0).map(IpNet::V4).collect(),
                (IpAddr::V6(s), IpAddr::V6(e)) if s <= e => ipnet::Ipv6Subnets::new(s, e, 0).map(IpNet::V6).collect(),
                _ => return Err(bad(format!("range {start} .. {end} is empty or mixes families"))),
            };
            match field(2).parse::<u32>() {
                Ok(asn) => {
                    for p in prefixes {
                        self.insert_asn(
                            p,
                            AsInfo {
                                asn,
                                organisation: field(3).to_string(),
                            },
                        );
                    }
                }
                Err(_) if !field(2).is_empty() => {
                    for p in prefixes {
                        self.insert_region(p, field(2));
                    }
                }
                Err(_) => return Err(bad("neither an AS number nor a region in the third column".into())),
            }
        }
        Ok(self.entries - before)
    }

    /// An MMDB file (AS and/or country records), every network flattened in.
    fn load_mmdb(&mut self, path: &Path) -> Result<usize, TableError> {
        let name = path.display().to_string();
        let err = |reason: String| TableError::Mmdb {
            path: name.clone(),
            reason,
        };
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| err(e.to_string()))?;
        let before = self.entries;
        for item in reader.networks(Default::default()).map_err(|e| err(e.to_string()))? {
            let item = item.map_err(|e| err(e.to_string()))?;
            let network = item.network().map_err(|e| err(e.to_string()))?;
            let Ok(prefix) = network.to_string().parse::<IpNet>() else {
                continue;
            };
            let Some(record) = item.decode::<MmdbRecord>().map_err(|e| err(e.to_string()))? else {
                continue;
            };
            if let Some(asn) = record.autonomous_system_number {
                self.insert_asn(
                    prefix,
                    AsInfo {
                        asn,
                        organisation: record.autonomous_system_organization.unwrap_or_default(),
                    },
                );
            }
            if let Some(region) = record.country_code.or(record.country.and_then(|c| c.iso_code)) {
                self.insert_region(prefix, &region);
            }
        }
        Ok(self.entries - before)
    }
}

/// Whether a CSV is a headerless range file: its first line starts with two
/// addresses.
fn is_range_file(text: &str) -> bool {
    let first = text.lines().next().unwrap_or("");
    let mut fields = first.split(',');
    matches!(
        (fields.next().map(str::trim), fields.next().map(str::trim)),
        (Some(a), Some(b)) if a.parse::<IpAddr>().is_ok() && b.parse::<IpAddr>().is_ok()
    )
}

fn check(network: &Network) -> Result<(), String> {
    if network.subscriber_len == 0 || network.subscriber_len > 128 {
        return Err(format!("subscriber_len {} is not 1..=128", network.subscriber_len));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_bad_rows_name_their_line() {
        let dir = std::env::temp_dir().join(format!("v6scope-prefixes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("t.csv");
        std::fs::write(
            &csv,
            "prefix,asn,organisation,region,subscriber_len\n\
             2001:db8::/32,AS64500,Lab Telecom,North,64\n\
             2001:db8:b::/48,64501,Lab Fixed,South,56\n\
             192.0.2.0/24,64500,Lab Telecom,North,\n",
        )
        .unwrap();
        let mut table = PrefixTable::default();
        assert_eq!(table.load(&csv).unwrap(), 3);
        let (p, n) = table.lookup("2001:db8:b:1::5".parse().unwrap()).unwrap();
        assert_eq!(
            (p.to_string().as_str(), n.organisation.as_str(), n.subscriber_len),
            ("2001:db8:b::/48", "Lab Fixed", 56)
        );
        assert_eq!(table.lookup("2001:db8:a::1".parse().unwrap()).unwrap().1.asn, 64500);
        assert!(table.lookup("198.51.100.1".parse().unwrap()).is_none());
        std::fs::write(&csv, "prefix,asn\n2001:db8::/32,64500\nnot-a-prefix,1\n").unwrap();
        let err = PrefixTable::default().load(&csv).unwrap_err().to_string();
        assert!(err.contains(":3: prefix 'not-a-prefix'"), "{err}");
        let toml = dir.join("t.toml");
        std::fs::write(
            &toml,
            "[[prefix]]\nprefix = \"203.0.113.0/24\"\norganisation = \"Lab Cloud\"\nrole = \"server\"\n",
        )
        .unwrap();
        let mut table = PrefixTable::default();
        table.load(&toml).unwrap();
        assert!(!table.lookup("203.0.113.9".parse().unwrap()).unwrap().1.is_subscriber());
        // ip-location-db range files fill in what the operator's table lacks.
        let asn = dir.join("asn-ipv4.csv");
        std::fs::write(
            &asn,
            "203.0.113.0,203.0.113.127,64511,\"Lab Cloud, Inc.\"\n198.51.100.0,198.51.100.10,64512,X\n",
        )
        .unwrap();
        let country = dir.join("asn-country-ipv6.csv");
        std::fs::write(&country, "2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,CN\n").unwrap();
        assert_eq!(
            table.load(&asn).unwrap(),
            1 + 3,
            "198.51.100.0 .. .10 is a /29 and a /31 and a /32"
        );
        assert_eq!(table.load(&country).unwrap(), 1);
        let label = table.label("203.0.113.9".parse().unwrap());
        assert_eq!((label.asn, label.organisation), (64511, "Lab Cloud"));
        let label = table.label("198.51.100.10".parse().unwrap());
        assert_eq!((label.asn, label.organisation), (64512, "X"));
        assert_eq!(table.label("2001:db8::1".parse().unwrap()).region, "CN");
        assert_eq!(table.label("192.0.2.1".parse().unwrap()).asn, 0);
        std::fs::write(&country, "2001:db8::,192.0.2.1,CN\n").unwrap();
        assert!(table.load(&country).unwrap_err().to_string().contains(":1: range"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
