//! Webhook URLs go through the scan policy the probes obey: a URL whose
//! host resolves to loopback, link-local, private or other special-purpose
//! addresses is refused when it is set and again at each delivery (its name
//! may have been re-pointed since: DNS rebinding). A delivery connects only
//! to the addresses it checked and never follows redirects.

use std::net::SocketAddr;
use std::time::Duration;
use v6scope_probe::policy::AddressPolicy;

/// A webhook URL that may be posted to, with the addresses checked for it.
#[derive(Debug)]
pub(crate) struct VettedUrl {
    pub url: reqwest::Url,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// Parses `url`, resolves its host and checks every address against
/// `policy`. One refused address refuses the URL: which one a client
/// would use is not ours to choose.
pub(crate) async fn vet(url: &str, policy: &AddressPolicy, timeout: Duration) -> Result<VettedUrl, String> {
    if url.len() > 2000 {
        return Err("url: at most 2000 characters".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("url: http or https".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("url: no user name or password in the URL".into());
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => return Err("url: no host".into()),
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(e)) => return Err(format!("url: {host} does not resolve: {e}")),
            Err(_) => return Err(format!("url: resolving {host} timed out")),
        };
    if addrs.is_empty() {
        return Err(format!("url: {host} has no address"));
    }
    for a in &addrs {
        policy
            .check(a.ip())
            .map_err(|e| format!("url: {host}: {e} (allow it with [serve] webhook_allow)"))?;
    }
    Ok(VettedUrl {
        url: parsed,
        host,
        addrs,
    })
}

/// A client that connects only to the vetted addresses (no second lookup
/// between the check and the connection) and follows no redirect.
pub(crate) fn client(vetted: &VettedUrl, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .resolve_to_addrs(&vetted.host, &vetted.addrs)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn special_purpose_webhooks_are_refused_unless_allowed() {
        let strict = AddressPolicy::public_only(Vec::new());
        let t = Duration::from_secs(5);
        for url in [
            "http://127.0.0.1:9/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:9/",
            "http://10.0.0.1/",
            "http://localhost:9/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "file:///etc/passwd",
            "http://user:pw@192.0.2.1/",
        ] {
            assert!(vet(url, &strict, t).await.is_err(), "{url}");
        }
        let lab = AddressPolicy::public_only(vec!["127.0.0.0/8".parse().unwrap()]);
        let ok = vet("http://127.0.0.1:9/hook", &lab, t).await.unwrap();
        assert_eq!(ok.addrs, vec!["127.0.0.1:9".parse().unwrap()]);
    }
}
