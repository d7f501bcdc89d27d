//! What a page links to and loads: internal links (for the 二级/三级 crawl)
//! and sub-resources (images, scripts, styles, media), resolved against the
//! page URL and any `<base href>`, normalised and deduplicated.

use scraper::{Html, Selector};
use std::collections::BTreeSet;
use std::sync::LazyLock;
use url::Url;

/// Links and resources found on one page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageLinks {
    /// Pages in the site's registrable domain, in document order.
    pub internal: Vec<Url>,
    /// Links to other registrable domains (counted, not followed).
    pub external: usize,
    /// Sub-resources, any host (CDNs included), in document order.
    pub resources: Vec<Url>,
}

/// The registrable domain ("site") of a host, by the Public Suffix List.
/// Hosts under an unlisted suffix (e.g. the lab's `.test`) fall back to the
/// last two labels.
pub fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return Some(host);
    }
    match psl::domain_str(&host) {
        Some(d) => Some(d.to_string()),
        None => {
            let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
            (labels.len() >= 2).then(|| labels[labels.len() - 2..].join("."))
        }
    }
}

/// Whether `url` belongs to the site whose registrable domain is `site`.
pub fn is_internal(url: &Url, site: &str) -> bool {
    url.host_str()
        .and_then(registrable_domain)
        .is_some_and(|d| d.eq_ignore_ascii_case(site))
}

fn selector(s: &str) -> Selector {
    Selector::parse(s).expect("static selector")
}

static BASE: LazyLock<Selector> = LazyLock::new(|| selector("base[href]"));
static LINKS: LazyLock<Selector> = LazyLock::new(|| selector("a[href], area[href], frame[src], iframe[src]"));
static RESOURCES: LazyLock<Selector> = LazyLock::new(|| {
    selector(
        "img[src], img[srcset], script[src], link[href], video[src], video[poster], audio[src], \
         source[src], source[srcset], embed[src], object[data], input[type=image][src]",
    )
});
static STYLED: LazyLock<Selector> = LazyLock::new(|| selector("[style]"));
static STYLE_BLOCKS: LazyLock<Selector> = LazyLock::new(|| selector("style"));

/// `rel` values of `<link>` that make the browser load the target.
const LOADED_RELS: [&str; 6] = [
    "stylesheet",
    "icon",
    "preload",
    "apple-touch-icon",
    "modulepreload",
    "manifest",
];

/// Resolves a reference the way a browser would, keeping only http(s),
/// dropping the fragment. `javascript:`, `mailto:`, `tel:`, `data:` and bare
/// fragments give `None`.
pub fn resolve(base: &Url, reference: &str) -> Option<Url> {
    let reference = reference.trim();
    if reference.is_empty() || reference.starts_with('#') {
        return None;
    }
    let mut url = base.join(reference).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

/// The URLs inside CSS `url(...)` tokens.
pub fn css_urls(css: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = css.to_ascii_lowercase();
    let mut rest = 0;
    while let Some(at) = lower[rest..].find("url(") {
        let start = rest + at + 4;
        let Some(len) = css[start..].find(')') else { break };
        let inner = css[start..start + len].trim().trim_matches(['"', '\'']).trim();
        if !inner.is_empty() {
            out.push(inner.to_string());
        }
        rest = start + len + 1;
    }
    out
}

/// Every candidate URL of a `srcset` attribute.
fn srcset_urls(srcset: &str) -> impl Iterator<Item = &str> {
    srcset.split(',').filter_map(|c| c.split_whitespace().next())
}

/// Extracts internal links and sub-resources of a page at `page_url` that
/// belongs to the site `site` (a registrable domain).
pub fn extract(html: &str, page_url: &Url, site: &str) -> PageLinks {
    let document = Html::parse_document(html);
    let base = document
        .select(&BASE)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| page_url.join(href).ok())
        .unwrap_or_else(|| page_url.clone());
    let mut out = PageLinks::default();
    let mut seen_links = BTreeSet::new();
    for element in document.select(&LINKS) {
        let v = element.value();
        let Some(url) = v.attr("href").or_else(|| v.attr("src")).and_then(|r| resolve(&base, r)) else {
            continue;
        };
        if !seen_links.insert(url.to_string()) {
            continue;
        }
        if is_internal(&url, site) {
            out.internal.push(url);
        } else {
            out.external += 1;
        }
    }
    let mut seen_resources = BTreeSet::new();
    let mut push = |reference: &str, out: &mut PageLinks| {
        if let Some(url) = resolve(&base, reference)
            && seen_resources.insert(url.to_string())
        {
            out.resources.push(url);
        }
    };
    for element in document.select(&RESOURCES) {
        let v = element.value();
        if v.name() == "link" {
            let rel = v.attr("rel").unwrap_or_default().to_ascii_lowercase();
            if !rel.split_whitespace().any(|r| LOADED_RELS.contains(&r)) {
                continue;
            }
        }
        for attr in ["src", "href", "data", "poster"] {
            if let Some(reference) = v.attr(attr) {
                push(reference, &mut out);
            }
        }
        if let Some(srcset) = v.attr("srcset") {
            for reference in srcset_urls(srcset) {
                push(reference, &mut out);
            }
        }
    }
    for element in document.select(&STYLED) {
        for reference in css_urls(element.value().attr("style").unwrap_or_default()) {
            push(&reference, &mut out);
        }
    }
    for block in document.select(&STYLE_BLOCKS) {
        let css: String = block.text().collect();
        for reference in css_urls(&css) {
            push(&reference, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://www.gov.example.cn/news/index.html").unwrap()
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        assert_eq!(registrable_domain("www.gov.example.cn").as_deref(), Some("example.cn"));
        assert_eq!(
            registrable_domain("a.b.example.com.cn").as_deref(),
            Some("example.com.cn")
        );
        assert_eq!(registrable_domain("static.site.test").as_deref(), Some("site.test"));
        assert_eq!(registrable_domain("192.0.2.1").as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn links_are_resolved_filtered_and_deduplicated() {
        let html = r##"<html><body>
            <a href="/about.html">about</a>
            <a href="/about.html#team">same page again, other fragment</a>
            <a href="about.html">relative to the page</a>
            <a href="../contact/">relative up</a>
            <a href="//cdn.example.cn/x.html">protocol-relative, same site</a>
            <a href="https://other.org/">external</a>
            <a href="#top">fragment only</a>
            <a href="javascript:void(0)">js</a>
            <a href="mailto:a@example.cn">mail</a>
            <a href="tel:+86100">tel</a>
            <a href="data:text/html,hi">data</a>
            <area href="/map.html"><iframe src="/frame.html"></iframe>
            </body></html>"##;
        let links = extract(html, &page(), "example.cn");
        let internal: Vec<String> = links.internal.iter().map(Url::to_string).collect();
        assert_eq!(
            internal,
            vec![
                "https://www.gov.example.cn/about.html",
                "https://www.gov.example.cn/news/about.html",
                "https://www.gov.example.cn/contact/",
                "https://cdn.example.cn/x.html",
                "https://www.gov.example.cn/map.html",
                "https://www.gov.example.cn/frame.html",
            ]
        );
        assert_eq!(links.external, 1);
    }

    #[test]
    fn base_href_changes_resolution() {
        let html =
            r#"<head><base href="https://www.gov.example.cn/root/"></head><a href="page.html">p</a><img src="i.png">"#;
        let links = extract(html, &page(), "example.cn");
        assert_eq!(links.internal[0].as_str(), "https://www.gov.example.cn/root/page.html");
        assert_eq!(links.resources[0].as_str(), "https://www.gov.example.cn/root/i.png");
    }

    #[test]
    fn sub_resources_of_every_kind_are_found() {
        let html = r#"<html><head>
            <link rel="stylesheet" href="/s.css"><link rel="icon" href="/f.ico"><link rel="canonical" href="/c">
            <script src="https://cdn4.example.net/app.js"></script>
            <style>body { background: url('/bg.png') } .x { background-image: url(img/x.gif) }</style>
            </head><body>
            <img src="/a.png" srcset="/a-2x.png 2x, /a-3x.png 3x">
            <video src="/v.mp4" poster="/poster.jpg"><source src="/v.webm"></video>
            <audio src="/s.mp3"></audio><embed src="/e.swf"><object data="/o.pdf"></object>
            <div style="background:url(&quot;/div.png&quot;)"></div>
            <img src="data:image/png;base64,AAAA">
            </body></html>"#;
        let links = extract(html, &page(), "example.cn");
        let resources: Vec<String> = links.resources.iter().map(|u| u.path().to_string()).collect();
        for expected in [
            "/s.css",
            "/f.ico",
            "/app.js",
            "/a.png",
            "/a-2x.png",
            "/a-3x.png",
            "/v.mp4",
            "/poster.jpg",
            "/v.webm",
            "/s.mp3",
            "/e.swf",
            "/o.pdf",
            "/div.png",
            "/bg.png",
            "/news/img/x.gif",
        ] {
            assert!(
                resources.contains(&expected.to_string()),
                "{expected} missing from {resources:?}"
            );
        }
        assert!(!resources.contains(&"/c".to_string()), "canonical is not loaded");
        assert_eq!(
            links
                .resources
                .iter()
                .filter(|u| u.host_str() == Some("cdn4.example.net"))
                .count(),
            1
        );
    }

    #[test]
    fn hostile_markup_does_not_panic() {
        let big: String = (0..10_000).map(|i| format!("<a href=\"/p{i}\">{i}</a>")).collect();
        assert_eq!(extract(&big, &page(), "example.cn").internal.len(), 10_000);
        let _ = extract(
            "<a href=\"http://[::1\">x</a><style>url(</style><div style='url('>",
            &page(),
            "example.cn",
        );
        assert!(css_urls("url(").is_empty());
    }
}
