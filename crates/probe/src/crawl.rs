//! The whole-site crawl of the Chinese website method: the homepage (level
//! 1), the internal pages it links to (二级, level 2), the pages those link
//! to (三级, level 3), and every sub-resource the pages load — each fetched
//! over IPv4 and over IPv6 separately.

use crate::content::{self, Page};
use crate::links::{PageLinks, registrable_domain};
use crate::{Prober, Shared};
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;
use v6scope_model::{
    ErrorKind, Family, HttpFetch, NameResolution, NameRole, PageCrawl, ProbeError, ResourceCrawl, SiteObservation,
    TimingSample, UrlFetch, Vantage,
};

/// Bounds on one site's crawl. Every limit reached is reported.
#[derive(Debug, Clone)]
pub struct CrawlLimits {
    pub pages_per_level: usize,
    pub total_pages: usize,
    pub resources: usize,
    /// URLs fetched at once (each over both families).
    pub concurrency: usize,
    /// Requests in flight to one server address at most.
    pub per_host: usize,
    /// Pause between the starts of two requests to one server address
    /// (politeness).
    pub delay: Duration,
    /// Whole-site deadline.
    pub deadline: Duration,
    /// Homepage loads per family for speed and success rate.
    pub samples: usize,
    /// Pause between samples.
    pub interval: Duration,
    /// Skip pages the site's robots.txt disallows (owners testing their own
    /// site may turn this off).
    pub respect_robots: bool,
}

impl Default for CrawlLimits {
    fn default() -> Self {
        CrawlLimits {
            pages_per_level: 300,
            total_pages: 1000,
            resources: 500,
            concurrency: 16,
            per_host: 8,
            delay: Duration::ZERO,
            deadline: Duration::from_secs(300),
            samples: 3,
            interval: Duration::from_secs(1),
            respect_robots: true,
        }
    }
}

/// Politeness toward each server: at most `per_host` requests in flight to
/// one address, and `delay` between the starts of two requests to it.
struct HostGate {
    per_host: usize,
    delay: Duration,
    slots: Mutex<HashMap<IpAddr, Arc<Slot>>>,
}

struct Slot {
    permits: Arc<Semaphore>,
    next_start: tokio::sync::Mutex<tokio::time::Instant>,
}

impl HostGate {
    fn new(per_host: usize, delay: Duration) -> Self {
        HostGate {
            per_host: per_host.max(1),
            delay,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a slot on `address`; the request may start when this
    /// returns and holds the slot until the permit is dropped.
    async fn enter(&self, address: IpAddr) -> OwnedSemaphorePermit {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots
                .entry(address)
                .or_insert_with(|| {
                    Arc::new(Slot {
                        permits: Arc::new(Semaphore::new(self.per_host)),
                        next_start: tokio::sync::Mutex::new(tokio::time::Instant::now()),
                    })
                })
                .clone()
        };
        let permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the gate never closes its semaphores");
        if !self.delay.is_zero() {
            let start = {
                let mut next = slot.next_start.lock().await;
                let start = (*next).max(tokio::time::Instant::now());
                *next = start + self.delay;
                start
            };
            tokio::time::sleep_until(start).await;
        }
        permit
    }
}

/// What the fetches of one crawl share: resolved hosts, the politeness
/// gate, and (outside timed samples) idle connections for reuse.
struct Session {
    hosts: Arc<Shared<NameResolution>>,
    gate: HostGate,
    pool: Option<crate::web::ConnectionPool>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// What one family's fetch of a URL gave: the fact, and the page for links
/// and comparison.
struct Fetched {
    fact: UrlFetch,
    page: Option<Page>,
}

fn url_fetch(family: Family, fetch: &HttpFetch) -> UrlFetch {
    UrlFetch {
        family,
        address: Some(fetch.address),
        ok: fetch.completed && fetch.final_status.is_some_and(|s| (200..300).contains(&s)),
        final_status: fetch.final_status,
        redirects: fetch.hops.len().saturating_sub(1),
        bytes: fetch.content.as_ref().map(|c| c.bytes).unwrap_or(0),
        timings: fetch.timings.clone(),
        title: fetch.content.as_ref().and_then(|c| c.title.clone()),
        stalled_bytes: (fetch.final_status.is_some()
            && !fetch.completed
            && fetch.error.as_ref().is_some_and(|e| e.kind == ErrorKind::Timeout))
        .then_some(fetch.body_received),
        error: fetch.error.clone(),
    }
}

fn not_fetched(family: Family, error: ProbeError) -> UrlFetch {
    UrlFetch {
        family,
        address: None,
        ok: false,
        final_status: None,
        redirects: 0,
        bytes: 0,
        timings: Default::default(),
        title: None,
        stalled_bytes: None,
        error: Some(error),
    }
}

impl Prober {
    /// Crawls the site of `apex` to level 3 within `limits`.
    pub async fn crawl(self: &Arc<Self>, apex: &str, vantage: &Vantage, limits: &CrawlLimits) -> SiteObservation {
        let started = Instant::now();
        let site = registrable_domain(apex).unwrap_or_else(|| apex.to_string());
        let start_url = format!("http://{apex}/");
        let mut obs = SiteObservation {
            site: site.clone(),
            start_url: start_url.clone(),
            ..Default::default()
        };
        let session = Arc::new(Session {
            hosts: Arc::new(Shared::new()),
            gate: HostGate::new(limits.per_host, limits.delay),
            pool: Some(Default::default()),
        });
        let deadline = tokio::time::Instant::now() + limits.deadline;
        let Ok(start) = Url::parse(&start_url) else {
            obs.limits_reached.push(format!("bad start URL {start_url}"));
            return obs;
        };
        let robots = if limits.respect_robots {
            self.robots(&start, vantage, &session).await
        } else {
            None
        };
        let mut robots_skipped = 0usize;
        let mut seen: BTreeSet<String> = BTreeSet::from([start.to_string()]);
        let mut level_urls = vec![start.clone()];
        let mut resource_urls: Vec<Url> = Vec::new();
        let mut resource_seen: BTreeSet<String> = BTreeSet::new();
        let mut home_links: Option<PageLinks> = None;
        for level in 1..=3u8 {
            if level_urls.is_empty() {
                break;
            }
            if let Some(robots) = &robots {
                let before = level_urls.len();
                level_urls.retain(|u| u.host_str() != start.host_str() || robots.allowed(&path_and_query(u)));
                robots_skipped += before - level_urls.len();
            }
            let room = limits.total_pages.saturating_sub(obs.pages.len());
            let cap = limits.pages_per_level.min(room);
            if level_urls.len() > cap {
                obs.limits_reached.push(format!(
                    "level {level}: {} pages found, {cap} fetched (pages per level {}, total {})",
                    level_urls.len(),
                    limits.pages_per_level,
                    limits.total_pages
                ));
                level_urls.truncate(cap);
            }
            let jobs = futures::stream::iter(level_urls.drain(..).map(|url| {
                let session = session.clone();
                let site = site.clone();
                async move {
                    let (v4, v6) = tokio::join!(
                        self.fetch_in_family(&url, Family::Ipv4, vantage, &session, Some(&site)),
                        self.fetch_in_family(&url, Family::Ipv6, vantage, &session, Some(&site))
                    );
                    (url, v4, v6)
                }
            }))
            .buffer_unordered(limits.concurrency.max(1));
            let results: Vec<_> = match tokio::time::timeout_at(deadline, jobs.collect::<Vec<_>>()).await {
                Ok(results) => results,
                Err(_) => {
                    obs.limits_reached.push(format!(
                        "site deadline of {} s reached at level {level}",
                        limits.deadline.as_secs()
                    ));
                    break;
                }
            };
            let mut next = Vec::new();
            for (url, v4, v6) in results {
                let pages = [
                    v4.as_ref().and_then(|f| f.page.as_ref()),
                    v6.as_ref().and_then(|f| f.page.as_ref()),
                ];
                // Links and resources as either family's visitor sees them;
                // external links counted once per page (IPv4's view first).
                if let Some(links) = pages.iter().flatten().find_map(|p| p.links.as_ref()) {
                    obs.external_links += links.external;
                }
                if level == 1 && home_links.is_none() {
                    home_links = pages.iter().flatten().find_map(|p| p.links.clone());
                }
                for links in pages.iter().flatten().filter_map(|p| p.links.as_ref()) {
                    if level < 3 {
                        for link in &links.internal {
                            if seen.insert(link.to_string()) {
                                next.push(link.clone());
                            }
                        }
                    }
                    collect_resources(links, &mut resource_urls, &mut resource_seen);
                }
                // Content is compared only where both families got the page (2xx).
                let both_ok = v4.as_ref().is_some_and(|f| f.fact.ok) && v6.as_ref().is_some_and(|f| f.fact.ok);
                let (text_similarity, structure_similarity, title_equal) = match pages {
                    [Some(a), Some(b)] if both_ok => (
                        Some(round3(content::text_similarity(&a.text, &b.text))),
                        Some(round3(content::structure_similarity(&a.tags, &b.tags))),
                        Some(a.title == b.title),
                    ),
                    _ => (None, None, None),
                };
                obs.pages.push(PageCrawl {
                    url: url.to_string(),
                    level,
                    v4: v4.map(|f| f.fact),
                    v6: v6.map(|f| f.fact),
                    text_similarity,
                    structure_similarity,
                    title_equal,
                });
            }
            level_urls = next;
        }
        if robots_skipped > 0 {
            obs.limits_reached.push(format!(
                "{robots_skipped} page(s) skipped: disallowed by robots.txt (--ignore-robots to include them)"
            ));
        }
        if resource_urls.len() > limits.resources {
            obs.limits_reached.push(format!(
                "{} sub-resources found, {} fetched (resource limit)",
                resource_urls.len(),
                limits.resources
            ));
            resource_urls.truncate(limits.resources);
        }
        let jobs = futures::stream::iter(resource_urls.into_iter().map(|url| {
            let session = session.clone();
            async move {
                let (v4, v6) = tokio::join!(
                    self.fetch_in_family(&url, Family::Ipv4, vantage, &session, None),
                    self.fetch_in_family(&url, Family::Ipv6, vantage, &session, None)
                );
                ResourceCrawl {
                    host: url.host_str().unwrap_or_default().to_string(),
                    url: url.to_string(),
                    v4: v4.map(|f| f.fact),
                    v6: v6.map(|f| f.fact),
                }
            }
        }))
        .buffer_unordered(limits.concurrency.max(1));
        match tokio::time::timeout_at(deadline, jobs.collect::<Vec<_>>()).await {
            Ok(resources) => obs.resources = resources,
            Err(_) => obs.limits_reached.push(format!(
                "site deadline of {} s reached while fetching sub-resources",
                limits.deadline.as_secs()
            )),
        }
        let home_resources: Vec<Url> = home_links.map(|l| l.resources).unwrap_or_default();
        if let Some(home) = obs
            .pages
            .iter()
            .find(|p| p.level == 1)
            .and_then(|p| Url::parse(&p.url).ok())
        {
            for i in 0..limits.samples {
                if i > 0 {
                    tokio::time::sleep(limits.interval).await;
                }
                if tokio::time::Instant::now() >= deadline {
                    obs.limits_reached
                        .push(format!("site deadline reached after {i} timing sample(s)"));
                    break;
                }
                for family in [Family::Ipv4, Family::Ipv6] {
                    if vantage.has(family) {
                        obs.samples
                            .push(self.sample(&home, &home_resources, family, &session.gate).await);
                    }
                }
            }
        }
        obs.pages.sort_by(|a, b| (a.level, &a.url).cmp(&(b.level, &b.url)));
        obs.resources.sort_by(|a, b| a.url.cmp(&b.url));
        obs.duration_ms = ms(started.elapsed());
        obs
    }

    /// The site's robots.txt for v6scope, over IPv4 or else IPv6; none when
    /// there is none (every page allowed).
    async fn robots(
        self: &Arc<Self>,
        start: &Url,
        vantage: &Vantage,
        session: &Session,
    ) -> Option<crate::robots::Robots> {
        let url = start.join("/robots.txt").ok()?;
        for family in [Family::Ipv4, Family::Ipv6] {
            if let Some(fetched) = self.fetch_in_family(&url, family, vantage, session, None).await
                && fetched.fact.ok
            {
                return fetched.page.map(|p| crate::robots::Robots::parse(&p.text, "v6scope"));
            }
        }
        None
    }

    /// One timed load of the homepage and its sub-resources over one family,
    /// with a fresh resolution (no per-crawl cache) so DNS time is measured.
    async fn sample(self: &Arc<Self>, home: &Url, resources: &[Url], family: Family, gate: &HostGate) -> TimingSample {
        let mut sample = TimingSample {
            family,
            ok: false,
            dns_ms: None,
            connect_ms: None,
            ttfb_ms: None,
            full_page_ms: None,
            error: None,
        };
        let host = home.host_str().unwrap_or_default().to_string();
        let resolution = self.resolve(&host, NameRole::RedirectHost).await;
        sample.dns_ms = Some(match family {
            Family::Ipv4 => resolution.a_ms,
            Family::Ipv6 => resolution.aaaa_ms,
        });
        let Some(address) = resolution
            .addresses(family)
            .iter()
            .find(|a| a.usable)
            .map(|a| a.address)
        else {
            sample.error = Some(ProbeError::new(
                ErrorKind::NoAddress,
                format!("{host} has no usable {} address", family.label()),
            ));
            return sample;
        };
        let permit = gate.enter(address).await;
        let started = Instant::now();
        let hosts: Arc<Shared<NameResolution>> = Arc::new(Shared::new());
        let lookup = self.lookup_fn(hosts.clone());
        let (fetch, _) = self.web.fetch_url(home, address, &lookup, None).await;
        drop(permit);
        let fact = url_fetch(family, &fetch);
        sample.connect_ms = fact.timings.connect_ms;
        sample.ttfb_ms = fact.timings.ttfb_ms;
        sample.ok = fact.ok;
        sample.error = fact.error;
        if sample.ok {
            // The page's objects load as a browser loads them: no politeness
            // delay inside a timed sample (it would be timed too), fresh
            // connections.
            let burst = Session {
                hosts,
                gate: HostGate::new(gate.per_host, Duration::ZERO),
                pool: None,
            };
            let both = Vantage::both();
            let loads = futures::future::join_all(
                resources
                    .iter()
                    .map(|r| self.fetch_in_family(r, family, &both, &burst, None)),
            )
            .await;
            sample.full_page_ms = Some(ms(started.elapsed()));
            if let Some(failed) = loads.iter().flatten().find(|f| !f.fact.ok) {
                sample.error = failed.fact.error.clone();
            }
        }
        sample
    }

    /// One URL over one family, on the first usable address of its host.
    /// `None` when the vantage lacks the family (nothing to say).
    async fn fetch_in_family(
        self: &Arc<Self>,
        url: &Url,
        family: Family,
        vantage: &Vantage,
        session: &Session,
        links_for: Option<&str>,
    ) -> Option<Fetched> {
        if !vantage.has(family) {
            return None;
        }
        let host = url.host_str()?.trim_matches(['[', ']']).to_ascii_lowercase();
        let address = match host.parse::<IpAddr>() {
            Ok(literal) => (Family::of(&literal) == family).then_some(literal),
            Err(_) => {
                let resolution = session
                    .hosts
                    .get(&host, || self.resolve(&host, NameRole::RedirectHost))
                    .await;
                resolution
                    .addresses(family)
                    .iter()
                    .find(|a| a.usable)
                    .map(|a| a.address)
            }
        };
        let Some(address) = address else {
            return Some(Fetched {
                fact: not_fetched(
                    family,
                    ProbeError::new(
                        ErrorKind::NoAddress,
                        format!("{host} has no usable {} address", family.label()),
                    ),
                ),
                page: None,
            });
        };
        let lookup = self.lookup_fn(session.hosts.clone());
        let _permit = session.gate.enter(address).await;
        let (fetch, page) = self
            .web
            .fetch_url_pooled(url, address, &lookup, links_for, session.pool.as_ref())
            .await;
        Some(Fetched {
            fact: url_fetch(family, &fetch),
            page,
        })
    }
}

fn collect_resources(links: &PageLinks, out: &mut Vec<Url>, seen: &mut BTreeSet<String>) {
    for r in &links.resources {
        if seen.insert(r.to_string()) {
            out.push(r.clone());
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The paused tokio clock is virtual: these are orderings, not timings.
    #[tokio::test(start_paused = true)]
    async fn gate_spaces_request_starts_to_one_address_by_the_delay() {
        let gate = Arc::new(HostGate::new(4, Duration::from_millis(500)));
        let address: IpAddr = "2001:db8::1".parse().unwrap();
        let other: IpAddr = "2001:db8::2".parse().unwrap();
        let t0 = tokio::time::Instant::now();
        let mut starts = Vec::new();
        for _ in 0..3 {
            let _permit = gate.enter(address).await;
            starts.push(t0.elapsed());
        }
        assert_eq!(starts, [0, 500, 1000].map(Duration::from_millis));
        // Another address has its own schedule.
        let _permit = gate.enter(other).await;
        assert_eq!(t0.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn gate_holds_requests_beyond_the_per_host_limit() {
        let gate = Arc::new(HostGate::new(2, Duration::ZERO));
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let first = gate.enter(address).await;
        let _second = gate.enter(address).await;
        let third = tokio::time::timeout(Duration::from_secs(1), gate.enter(address)).await;
        assert!(third.is_err(), "a third request waits while two are in flight");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(1), gate.enter(address)).await;
        assert!(third.is_ok(), "and starts when one finishes");
    }
}
