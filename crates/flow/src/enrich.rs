//! The prefix table: longest-prefix match from an address to the AS,
//! organisation, region, subscriber prefix length and role of the network
//! it belongs to. Loaded from CSV or TOML; reloading builds a new table and
//! swaps it in (the collector never stops).

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
}

#[derive(Default)]
pub struct PrefixTable {
    v4: PrefixMap<Ipv4Net, Arc<Network>>,
    v6: PrefixMap<Ipv6Net, Arc<Network>>,
    entries: usize,
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
        match prefix.trunc() {
            IpNet::V4(p) => {
                self.v4.insert(p, network);
            }
            IpNet::V6(p) => {
                self.v6.insert(p, network);
            }
        }
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
        let text = std::fs::read_to_string(path).map_err(|source| TableError::Read {
            path: name.clone(),
            source,
        })?;
        let before = self.entries;
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
