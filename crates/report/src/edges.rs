//! CDN and cloud indicators from the edges the vantages were sent to, by
//! MIIT's CDN method:
//! - **node share**: IPv6-capable nodes ÷ all nodes, more than 85 %;
//! - **coverage ratio**: IPv6 coverage ÷ IPv4 coverage, at least 85 %,
//!   where coverage counts cells (region × access ISP).
//!
//! From probes, a node is an edge prefix a vantage was sent to: the IPv4
//! /24 of its first usable A record (the IPv6 /48 when it had no A). A node
//! is IPv6-capable when some vantage sent there also got an IPv6 address
//! that answered. A cell is a vantage's `region` and `isp` labels; it is
//! covered over a family when a fetch over that family worked from it.
//! A cloud product supports IPv6 when its endpoints' coverage ratio meets
//! the same 85 %.

use crate::plan::{Judgement, Plan, judge};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use v6scope_store::EdgeRow;

/// The method's thresholds.
pub const NODE_SHARE_ABOVE: f64 = 0.85;
pub const COVERAGE_AT_LEAST: f64 = 0.85;

/// A CDN's or cloud's nodes and coverage in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderIndicator {
    pub provider: String,
    /// "cdn" or "cloud".
    pub kind: String,
    /// Served names seen (targets' apex and www).
    pub names: i64,
    pub nodes: i64,
    pub ipv6_nodes: i64,
    pub node_share: f64,
    pub node_share_met: bool,
    /// Cells (region × ISP) covered over IPv4 and over IPv6.
    pub v4_cells: i64,
    pub v6_cells: i64,
    pub coverage_ratio: Option<f64>,
    pub coverage_met: bool,
    /// Both tests met: the provider supports IPv6 by the method.
    pub supports_ipv6: bool,
    /// The nodes that failed over IPv6, with the vantages sent there.
    pub ipv4_only_nodes: Vec<String>,
    /// The cells covered over IPv4 but not over IPv6 ("region/isp").
    pub cells_without_ipv6: Vec<String>,
}

/// A cloud product's endpoints in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductIndicator {
    pub provider: String,
    pub product: String,
    pub endpoints: i64,
    pub v4_cells: i64,
    pub v6_cells: i64,
    pub coverage_ratio: Option<f64>,
    pub supports_ipv6: bool,
}

/// A plan milestone on CDNs or cloud products, measured from the indicators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeMilestone {
    /// "cdn" or "cloud".
    pub key: String,
    pub text: String,
    pub target: f64,
    pub deadline: String,
    /// Providers (cdn) or products (cloud) that support IPv6 ÷ those measured.
    pub supporting: i64,
    pub measured: i64,
    pub value: f64,
    pub judgement: Option<Judgement>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EdgeIndicators {
    pub providers: Vec<ProviderIndicator>,
    pub products: Vec<ProductIndicator>,
}

/// The node a sighting was sent to: the IPv4 /24 of its A, else the IPv6 /48 of its AAAA.
fn node_of(row: &EdgeRow) -> Option<String> {
    let address: IpAddr = row.v4.as_ref().or(row.v6.as_ref())?.parse().ok()?;
    let len = if address.is_ipv4() { 24 } else { 48 };
    Some(ipnet::IpNet::new(address, len).ok()?.trunc().to_string())
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

#[derive(Default)]
struct Cells {
    v4: BTreeSet<(String, String)>,
    v6: BTreeSet<(String, String)>,
}

impl Cells {
    fn add(&mut self, row: &EdgeRow) {
        let cell = (row.region.clone(), row.isp.clone());
        if row.v4_ok {
            self.v4.insert(cell.clone());
        }
        if row.v6_ok {
            self.v6.insert(cell);
        }
    }

    fn ratio(&self) -> Option<f64> {
        // Only cells also covered over IPv4 count: IPv6 coverage is measured
        // against IPv4's.
        ratio(self.v6.intersection(&self.v4).count() as i64, self.v4.len() as i64)
    }
}

/// The indicators of one run's edge sightings.
pub fn indicators(rows: &[EdgeRow]) -> EdgeIndicators {
    #[derive(Default)]
    struct Acc {
        names: BTreeSet<String>,
        // node → (IPv6 worked there, vantages sent there)
        nodes: BTreeMap<String, (bool, BTreeSet<String>)>,
        cells: Cells,
    }
    let mut providers: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let mut products: BTreeMap<(String, String), (BTreeSet<String>, Cells)> = BTreeMap::new();
    for r in rows {
        if r.kind == "cloud_product" {
            let p = products.entry((r.provider.clone(), r.product.clone())).or_default();
            p.0.insert(r.name.clone());
            p.1.add(r);
            continue;
        }
        let acc = providers.entry((r.provider.clone(), r.kind.clone())).or_default();
        acc.names.insert(r.name.clone());
        if let Some(node) = node_of(r) {
            let n = acc.nodes.entry(node).or_default();
            n.0 |= r.v6_ok;
            n.1.insert(r.vantage.clone());
        }
        acc.cells.add(r);
    }
    let providers = providers
        .into_iter()
        .map(|((provider, kind), acc)| {
            let nodes = acc.nodes.len() as i64;
            let ipv6_nodes = acc.nodes.values().filter(|(v6, _)| *v6).count() as i64;
            let node_share = ratio(ipv6_nodes, nodes).unwrap_or(0.0);
            let coverage_ratio = acc.cells.ratio();
            let node_share_met = nodes > 0 && node_share > NODE_SHARE_ABOVE;
            let coverage_met = coverage_ratio.is_some_and(|r| r >= COVERAGE_AT_LEAST);
            ProviderIndicator {
                provider,
                kind,
                names: acc.names.len() as i64,
                nodes,
                ipv6_nodes,
                node_share,
                node_share_met,
                v4_cells: acc.cells.v4.len() as i64,
                v6_cells: acc.cells.v6.intersection(&acc.cells.v4).count() as i64,
                coverage_ratio,
                coverage_met,
                supports_ipv6: node_share_met && coverage_met,
                ipv4_only_nodes: acc
                    .nodes
                    .iter()
                    .filter(|(_, (v6, _))| !v6)
                    .map(|(node, (_, vantages))| {
                        format!(
                            "{node} (from {})",
                            vantages.iter().cloned().collect::<Vec<_>>().join(", ")
                        )
                    })
                    .collect(),
                cells_without_ipv6: acc
                    .cells
                    .v4
                    .difference(&acc.cells.v6)
                    .map(|(region, isp)| format!("{region}/{isp}"))
                    .collect(),
            }
        })
        .collect();
    let products = products
        .into_iter()
        .map(|((provider, product), (endpoints, cells))| {
            let coverage_ratio = cells.ratio();
            ProductIndicator {
                provider,
                product,
                endpoints: endpoints.len() as i64,
                v4_cells: cells.v4.len() as i64,
                v6_cells: cells.v6.intersection(&cells.v4).count() as i64,
                coverage_ratio,
                supports_ipv6: coverage_ratio.is_some_and(|r| r >= COVERAGE_AT_LEAST),
            }
        })
        .collect();
    EdgeIndicators { providers, products }
}

/// The plan's CDN and cloud milestones (category keys `cdn` and `cloud`)
/// measured on `day` (days since 1970-01-01): the share of CDN providers,
/// or of cloud products, that support IPv6 by the method.
pub fn milestones(plan: &Plan, indicators: &EdgeIndicators, day: i64, zh: bool) -> Vec<EdgeMilestone> {
    let cdn: Vec<&ProviderIndicator> = indicators.providers.iter().filter(|p| p.kind == "cdn").collect();
    let mut out = Vec::new();
    for m in &plan.milestones {
        let Some(key) = m.key() else { continue };
        let (supporting, measured) = match key.as_str() {
            "cdn" => (cdn.iter().filter(|p| p.supports_ipv6).count(), cdn.len()),
            "cloud" => (
                indicators.products.iter().filter(|p| p.supports_ipv6).count(),
                indicators.products.len(),
            ),
            _ => continue,
        };
        if measured == 0 {
            continue;
        }
        let value = supporting as f64 / measured as f64;
        let target = m.target.unwrap_or(1.0);
        let deadline = v6scope_model::days::parse(&m.deadline);
        out.push(EdgeMilestone {
            key,
            text: if zh { m.zh.clone() } else { m.en.clone() },
            target,
            deadline: m.deadline.clone(),
            supporting: supporting as i64,
            measured: measured as i64,
            value,
            judgement: deadline.map(|d| judge(target, d, (day, value), None)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(vantage: &str, region: &str, v4: &str, v6: &str, v6_ok: bool) -> EdgeRow {
        EdgeRow {
            idx: 0,
            vantage: vantage.into(),
            provider: "cdn-x".into(),
            kind: "cdn".into(),
            product: String::new(),
            name: "www.a.example".into(),
            region: region.into(),
            isp: vantage.into(),
            v4: Some(v4.into()),
            v6: Some(v6.into()),
            v4_ok: true,
            v6_ok,
        }
    }

    #[test]
    fn nodes_are_prefixes_and_coverage_is_cells() {
        let rows = [
            row("a", "north", "192.0.2.10", "2001:db8:1::1", true),
            // Another address of the same /24: the same node.
            row("b", "north", "192.0.2.77", "2001:db8:1::2", true),
            // Another node, whose IPv6 fails.
            row("c", "south", "198.51.100.5", "2001:db8:2::1", false),
        ];
        let i = indicators(&rows);
        let p = &i.providers[0];
        assert_eq!((p.nodes, p.ipv6_nodes), (2, 1));
        assert!((p.node_share - 0.5).abs() < 1e-9 && !p.node_share_met);
        assert_eq!((p.v4_cells, p.v6_cells), (3, 2));
        assert!((p.coverage_ratio.unwrap() - 2.0 / 3.0).abs() < 1e-9 && !p.coverage_met);
        assert!(!p.supports_ipv6);
        assert_eq!(p.ipv4_only_nodes, ["198.51.100.0/24 (from c)"]);
        assert_eq!(p.cells_without_ipv6, ["south/c"]);
        // All nodes capable and every cell covered: supports IPv6.
        let good = indicators(&rows[..2]);
        assert!(good.providers[0].supports_ipv6);
    }
}
