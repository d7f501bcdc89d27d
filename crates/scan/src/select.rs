//! Choosing vantages by their agents' labels.

use std::collections::BTreeMap;

/// `all`, or `KEY=VALUE[,KEY=VALUE…]`: a vantage matches when every pair
/// matches one of its agent's labels (the key `vantage` is its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pairs: Vec<(String, String)>,
}

impl std::str::FromStr for Selector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            return Ok(Selector { pairs: Vec::new() });
        }
        let mut pairs = Vec::new();
        for pair in s.split(',') {
            match pair.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => pairs.push((k.to_string(), v.to_string())),
                _ => return Err(format!("'{s}': 'all' or KEY=VALUE[,KEY=VALUE…]")),
            }
        }
        Ok(Selector { pairs })
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pairs.is_empty() {
            return f.write_str("all");
        }
        let parts: Vec<String> = self.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(","))
    }
}

impl Selector {
    pub fn matches(&self, vantage: &str, labels: &BTreeMap<String, String>) -> bool {
        self.pairs.iter().all(|(k, v)| {
            if k == "vantage" {
                vantage == v
            } else {
                labels.get(k) == Some(v)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_must_all_match_and_vantage_is_the_name() {
        let labels: BTreeMap<String, String> = [("isp".into(), "B".into()), ("access".into(), "mobile".into())].into();
        let s = |t: &str| t.parse::<Selector>().unwrap();
        assert!(s("all").matches("vb", &labels));
        assert!(s("isp=B").matches("vb", &labels));
        assert!(s("isp=B,access=mobile").matches("vb", &labels));
        assert!(!s("isp=B,access=fixed").matches("vb", &labels));
        assert!(s("vantage=vb").matches("vb", &labels));
        assert!(!s("vantage=va").matches("vb", &labels));
        assert_eq!(s("isp=B,access=mobile").to_string(), "isp=B,access=mobile");
        for bad in ["", "isp", "isp=", "=B", "isp=B,"] {
            assert!(bad.parse::<Selector>().is_err(), "{bad:?}");
        }
    }
}
