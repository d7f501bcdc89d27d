//! Cloud products and their endpoints (a data file), for the plan's cloud
//! milestones: a product supports IPv6 when its endpoints work over IPv6
//! from the vantages that reach them over IPv4.
//!
//! ```toml
//! [[product]]
//! provider = "Example Cloud"
//! name = "Object storage"
//! name_zh = "对象存储"
//! endpoints = ["oss.example-cloud.com", "oss-cn-north.example-cloud.com"]
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ProductsError {
    #[error("reading cloud products {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("parsing cloud products: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("product #{index} (counting from 1): {reason}")]
    Invalid { index: usize, reason: String },
    #[error("endpoint '{endpoint}' is listed by two products ('{first}' and '{second}')")]
    DuplicateEndpoint {
        endpoint: String,
        first: String,
        second: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub provider: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
    pub endpoints: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    product: Vec<Product>,
}

/// A validated products file, with its endpoints looked up by host name.
#[derive(Debug, Clone, Default)]
pub struct Products {
    products: Vec<Product>,
    by_endpoint: BTreeMap<String, usize>,
}

impl Products {
    pub fn load(path: impl AsRef<Path>) -> Result<Products, ProductsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ProductsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Products::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Products, ProductsError> {
        let raw: RawFile = toml::from_str(text)?;
        let mut by_endpoint = BTreeMap::new();
        for (i, p) in raw.product.iter().enumerate() {
            let invalid = |reason: &str| ProductsError::Invalid {
                index: i + 1,
                reason: reason.into(),
            };
            if p.provider.trim().is_empty() || p.name.trim().is_empty() {
                return Err(invalid("provider and name must not be empty"));
            }
            if p.endpoints.is_empty() {
                return Err(invalid("no endpoints"));
            }
            for e in &p.endpoints {
                let host = normalise(e);
                if host.is_empty() || host.len() > 253 || !host.contains('.') || host.contains(['/', ':', ' ']) {
                    return Err(invalid(&format!("endpoint '{e}' is not a host name")));
                }
                if let Some(&first) = by_endpoint.get(&host) {
                    let first: &Product = &raw.product[first];
                    return Err(ProductsError::DuplicateEndpoint {
                        endpoint: host,
                        first: format!("{}/{}", first.provider, first.name),
                        second: format!("{}/{}", p.provider, p.name),
                    });
                }
                by_endpoint.insert(host, i);
            }
        }
        Ok(Products {
            products: raw.product,
            by_endpoint,
        })
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The product one of whose endpoints is `host`.
    pub fn by_endpoint(&self, host: &str) -> Option<&Product> {
        self.by_endpoint.get(&normalise(host)).map(|&i| &self.products[i])
    }

    /// Every endpoint, for a campaign that probes them.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.by_endpoint.keys().map(String::as_str)
    }
}

fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_looked_up_and_bad_files_are_refused() {
        let p = Products::parse(
            "[[product]]\nprovider = \"C\"\nname = \"OSS\"\nendpoints = [\"OSS.C.example.\", \"oss2.c.example\"]\n\
             [[product]]\nprovider = \"C\"\nname = \"VM\"\nname_zh = \"云主机\"\nendpoints = [\"vm.c.example\"]\n",
        )
        .unwrap();
        assert_eq!(p.by_endpoint("oss.c.example").unwrap().name, "OSS");
        assert_eq!(
            p.by_endpoint("vm.c.example.").unwrap().name_zh.as_deref(),
            Some("云主机")
        );
        assert!(p.by_endpoint("c.example").is_none());
        assert_eq!(p.endpoints().count(), 3);
        for bad in [
            "[[product]]\nprovider = \"C\"\nname = \"x\"\nendpoints = []\n",
            "[[product]]\nprovider = \"\"\nname = \"x\"\nendpoints = [\"a.b\"]\n",
            "[[product]]\nprovider = \"C\"\nname = \"x\"\nendpoints = [\"http://a.b/\"]\n",
            "[[product]]\nprovider = \"C\"\nname = \"x\"\nendpoint = [\"a.b\"]\n",
            "[[product]]\nprovider = \"C\"\nname = \"x\"\nendpoints = [\"a.b\"]\n[[product]]\nprovider = \"D\"\nname = \"y\"\nendpoints = [\"A.b\"]\n",
        ] {
            assert!(Products::parse(bad).is_err(), "{bad}");
        }
    }
}
