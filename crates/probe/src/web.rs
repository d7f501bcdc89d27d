//! HTTP/1.1 and HTTPS fetches pinned to one address and one family.
//!
//! TCP and TLS are done by hand so each phase is timed; `hyper` speaks
//! HTTP/1.1 on the resulting stream. Redirects are followed here, each hop
//! resolved within the same family, so a dual-stack site that redirects to
//! an IPv4-only host fails over IPv6.

use crate::content::{self, Page};
use crate::dns::io_error;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;
use v6scope_model::{
    AddrInfo, ContentSummary, ErrorKind, Family, HttpFetch, HttpHop, ProbeError, Scheme, Timings, TlsObservation,
};

/// What one crawl reuses between fetches: idle HTTP/1.1 connections, per
/// server address and port, host name and scheme (a TLS session is bound to
/// its name); and analysed pages, so that the same body fetched for the same
/// URL over the other family is not parsed twice. Fetches outside a crawl,
/// and timed samples, never use one: they time a fresh connection.
#[derive(Default)]
pub struct ConnectionPool {
    idle: std::sync::Mutex<std::collections::HashMap<PoolKey, Vec<Sender>>>,
    pages: std::sync::Mutex<std::collections::HashMap<(String, u64), Page>>,
}

/// Analysed pages waiting for the other family's fetch of the same URL.
const PAGES_KEPT: usize = 4096;

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;
type PoolKey = (SocketAddr, String, bool);

/// A connection taken for one request, returned once its response body has
/// been read in full.
struct Lease {
    key: PoolKey,
    sender: Sender,
}

/// How long a pooled connection may live (idle or not).
const POOLED_LIFETIME: Duration = Duration::from_secs(60);

impl ConnectionPool {
    fn take(&self, key: &PoolKey) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let senders = idle.get_mut(key)?;
        while let Some(sender) = senders.pop() {
            if sender.is_ready() && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// The page analysed for the same URL and body, taken (the other family
    /// needs it once).
    fn reuse_page(&self, key: &(String, u64)) -> Option<Page> {
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).remove(key)
    }

    fn keep_page(&self, key: (String, u64), page: &Page) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if pages.len() < PAGES_KEPT {
            pages.insert(key, page.clone());
        }
    }

    fn put(&self, lease: Lease) {
        if lease.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.entry(lease.key).or_default().push(lease.sender);
    }
}

/// Redirect hops followed before giving up.
pub const MAX_REDIRECTS: usize = 10;

/// Headers worth keeping as evidence.
const KEPT_HEADERS: [&str; 8] = [
    "server",
    "content-type",
    "content-length",
    "content-encoding",
    "location",
    "strict-transport-security",
    "cache-control",
    "via",
];

#[derive(Debug, thiserror::Error)]
pub enum WebSetupError {
    #[error("reading CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("CA file {0} holds no usable certificate")]
    EmptyCaFile(PathBuf),
    #[error("building the TLS verifier: {0}")]
    Verifier(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub ca_files: Vec<PathBuf>,
    pub connect_timeout: Duration,
    /// Whole fetch, all hops, body included.
    pub deadline: Duration,
    pub body_cap: usize,
    pub user_agent: String,
    /// Which addresses may be connected to: the prober's scan policy.
    pub(crate) policy: crate::policy::AddressPolicy,
}

/// Looks up the usable addresses of a host in one family (for redirect hops).
pub type HostLookup = Arc<dyn Fn(String, Family) -> BoxFuture<'static, Vec<AddrInfo>> + Send + Sync>;

/// Accepts any certificate during the handshake so that the page can still
/// be compared; the real verification runs after the handshake and is
/// recorded as a fact.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct WebClient {
    config: WebConfig,
    tls: Arc<ClientConfig>,
    roots: Arc<RootCertStore>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
    verified: ChainCache,
}

/// Results of validating a chain up to a trust anchor, so that the
/// thousands of sites behind one certificate (a CDN's, a host's wildcard)
/// cost one path validation, not one each; the name is still checked for
/// every site. An entry is trusted for at most `CHAIN_CACHE_TTL` and never
/// past the leaf's notAfter.
#[derive(Default)]
struct ChainCache {
    entries: std::sync::Mutex<HashMap<Vec<String>, CachedChain>>,
}

#[derive(Clone)]
struct CachedChain {
    checked: std::time::Instant,
    not_after: Option<i64>,
    result: Result<(), rustls::Error>,
}

const CHAIN_CACHE_TTL: Duration = Duration::from_secs(600);
const CHAIN_CACHE_ENTRIES: usize = 1 << 16;

impl ChainCache {
    fn get(&self, key: &Vec<String>, now_unix: i64) -> Option<CachedChain> {
        let entries = self.entries.lock().expect("chain cache lock");
        let hit = entries.get(key)?;
        let fresh = hit.checked.elapsed() < CHAIN_CACHE_TTL && hit.not_after.is_none_or(|t| now_unix < t);
        fresh.then(|| hit.clone())
    }

    fn put(&self, key: Vec<String>, value: CachedChain) {
        let mut entries = self.entries.lock().expect("chain cache lock");
        if entries.len() >= CHAIN_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

impl WebClient {
    pub fn new(config: WebConfig) -> Result<Self, WebSetupError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in &config.ca_files {
            let mut added = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|source| WebSetupError::CaFile {
                path: path.clone(),
                source,
            })? {
                let cert = cert.map_err(|source| WebSetupError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                if roots.add(cert).is_ok() {
                    added += 1;
                }
            }
            if added == 0 {
                return Err(WebSetupError::EmptyCaFile(path.clone()));
            }
        }
        // AES-128-GCM with SHA-256 first: servers take the client's order in
        // TLS 1.3, and SHA-384 has no hardware support on common CPUs (it was
        // 2 % of a scan's CPU), while both are equally valid for the verdict.
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites.sort_by_key(|s| {
            use rustls::CipherSuite::*;
            match s.suite() {
                TLS13_AES_128_GCM_SHA256 => 0,
                TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 1,
                _ => 2,
            }
        });
        let provider = Arc::new(provider);
        let algorithms = provider.signature_verification_algorithms;
        let roots = Arc::new(roots);
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| WebSetupError::Verifier(e.to_string()))?;
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RecordingVerifier {
                inner: verifier.clone(),
            }))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(WebClient {
            config,
            tls: Arc::new(tls),
            roots,
            algorithms,
            verified: ChainCache::default(),
        })
    }

    pub fn config(&self) -> &WebConfig {
        &self.config
    }

    /// GET `scheme://name/` on `address`, following redirects within the family.
    pub async fn fetch(
        &self,
        name: &str,
        address: IpAddr,
        scheme: Scheme,
        lookup: &HostLookup,
    ) -> (HttpFetch, Option<Page>) {
        let scheme_str = match scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        match Url::parse(&format!("{scheme_str}://{name}/")) {
            Ok(url) => self.fetch_url(&url, address, lookup, None).await,
            Err(e) => {
                let mut fetch = empty_fetch(name, address, scheme, scheme.port());
                fetch.error = Some(ProbeError::new(ErrorKind::Http, format!("bad URL for {name}: {e}")));
                (fetch, None)
            }
        }
    }

    /// GET `url` on `address`, following redirects within the address's family.
    /// With `links_for` (a site's registrable domain), the page's links and
    /// sub-resources are extracted too.
    pub async fn fetch_url(
        &self,
        url: &Url,
        address: IpAddr,
        lookup: &HostLookup,
        links_for: Option<&str>,
    ) -> (HttpFetch, Option<Page>) {
        self.fetch_url_pooled(url, address, lookup, links_for, None).await
    }

    /// As [`WebClient::fetch_url`], reusing idle connections of `pool`
    /// (HTTP keep-alive) when one is given.
    pub async fn fetch_url_pooled(
        &self,
        url: &Url,
        address: IpAddr,
        lookup: &HostLookup,
        links_for: Option<&str>,
        pool: Option<&ConnectionPool>,
    ) -> (HttpFetch, Option<Page>) {
        let scheme = if url.scheme() == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let port = url.port_or_known_default().unwrap_or(scheme.port());
        let mut fetch = empty_fetch(url.host_str().unwrap_or_default(), address, scheme, port);
        let started = Instant::now();
        let deadline = self.config.deadline;
        let outcome = tokio::time::timeout(
            deadline,
            self.follow(&mut fetch, url.clone(), lookup, links_for, started, pool),
        )
        .await;
        fetch.timings.total_ms = Some(ms(started.elapsed()));
        match outcome {
            Ok(Ok(page)) => (fetch, page),
            Ok(Err(e)) => {
                fetch.error = Some(e);
                (fetch, None)
            }
            Err(_) => {
                let message = match fetch.final_status {
                    Some(status) if !fetch.completed => format!(
                        "stalled after the response headers (status {status}) and {} body bytes; \
                         not complete within {} ms",
                        fetch.body_received,
                        deadline.as_millis()
                    ),
                    _ => format!(
                        "fetch did not complete within {} ms ({} hop(s) done)",
                        deadline.as_millis(),
                        fetch.hops.len()
                    ),
                };
                fetch.error = Some(ProbeError::new(ErrorKind::Timeout, message));
                (fetch, None)
            }
        }
    }

    async fn follow(
        &self,
        fetch: &mut HttpFetch,
        mut url: Url,
        lookup: &HostLookup,
        links_for: Option<&str>,
        started: Instant,
        pool: Option<&ConnectionPool>,
    ) -> Result<Option<Page>, ProbeError> {
        let mut address = fetch.address;
        let mut seen: Vec<String> = Vec::new();
        loop {
            if fetch.hops.len() > MAX_REDIRECTS {
                return Err(ProbeError::new(
                    ErrorKind::TooManyRedirects,
                    format!("more than {MAX_REDIRECTS} redirects"),
                ));
            }
            seen.push(url.to_string());
            let first = fetch.hops.is_empty();
            fetch.hops.push(HttpHop {
                url: url.to_string(),
                address: Some(address),
                status: None,
                location: None,
                host_has_family: None,
                tls_error: None,
            });
            let (response, lease) = self.request(fetch, &url, address, first, started, pool).await?;
            let status = response.status().as_u16();
            let hop = fetch.hops.last_mut().expect("pushed above");
            hop.status = Some(status);
            fetch.final_status = Some(status);
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if response.status().is_redirection()
                && let Some(location) = location
            {
                hop.location = Some(location.clone());
                let next = url
                    .join(&location)
                    .map_err(|e| ProbeError::new(ErrorKind::Http, format!("bad Location '{location}': {e}")))?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(ProbeError::new(
                        ErrorKind::Http,
                        format!("redirect to unsupported URL {next}"),
                    ));
                }
                if seen.contains(&next.to_string()) {
                    return Err(ProbeError::new(
                        ErrorKind::RedirectLoop,
                        format!("redirect loop: {} -> {next}", url),
                    ));
                }
                let next_host = next
                    .host_str()
                    .ok_or_else(|| ProbeError::new(ErrorKind::Http, format!("redirect without host: {next}")))?
                    .trim_matches(['[', ']'])
                    .to_ascii_lowercase();
                if next_host
                    != url
                        .host_str()
                        .unwrap_or_default()
                        .trim_matches(['[', ']'])
                        .to_ascii_lowercase()
                {
                    let candidates: Vec<IpAddr> = match next_host.parse::<IpAddr>() {
                        Ok(literal) => vec![literal],
                        Err(_) => (lookup)(next_host.clone(), fetch.family)
                            .await
                            .into_iter()
                            .filter(|a| a.usable)
                            .map(|a| a.address)
                            .collect(),
                    };
                    let candidate = candidates.into_iter().find(|a| Family::of(a) == fetch.family);
                    match candidate {
                        Some(a) => address = a,
                        None => {
                            fetch.hops.push(HttpHop {
                                url: next.to_string(),
                                address: None,
                                status: None,
                                location: None,
                                host_has_family: Some(false),
                                tls_error: None,
                            });
                            return Err(ProbeError::new(
                                ErrorKind::RedirectNoFamily,
                                format!(
                                    "redirect to {next_host}, which has no usable {} address",
                                    fetch.family.label()
                                ),
                            ));
                        }
                    }
                }
                url = next;
                if let Some(h) = fetch.hops.last_mut() {
                    h.host_has_family.get_or_insert(true);
                }
                continue;
            }
            keep_headers(&mut fetch.headers, response.headers());
            let content_type = response
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let encoding = response
                .headers()
                .get(hyper::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_ascii_lowercase());
            let (raw, truncated) = self.read_body(response.into_body(), &mut fetch.body_received).await?;
            // A body read to its end leaves the connection ready for the next
            // request; a truncated one does not.
            if let (Some(pool), Some(lease), false) = (pool, lease, truncated) {
                pool.put(lease);
            }
            let raw_len = raw.len() as u64;
            let body = decompress(raw, encoding.as_deref(), self.config.body_cap)?;
            let is_html = content_type
                .as_deref()
                .is_none_or(|t| t.contains("html") || t.contains("text"));
            // robots.txt is plain text whatever the server calls it.
            let plain =
                content_type.as_deref().is_some_and(|t| t.starts_with("text/plain")) || url.path() == "/robots.txt";
            let page = if plain {
                // Plain text (robots.txt, for one) keeps its lines.
                let (text, charset) = content::decode(&body, content_type.as_deref());
                Some(Page {
                    charset,
                    text,
                    ..Default::default()
                })
            } else if is_html {
                let key = pool.map(|_| {
                    use std::hash::{Hash, Hasher};
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    (&body, content_type.as_deref(), links_for).hash(&mut hasher);
                    (url.to_string(), hasher.finish())
                });
                match pool.zip(key.as_ref()).and_then(|(p, k)| p.reuse_page(k)) {
                    Some(page) => Some(page),
                    None => {
                        let (text, charset) = content::decode(&body, content_type.as_deref());
                        let mut page = content::analyse(&text, charset);
                        if let Some(site) = links_for {
                            page.links = Some(crate::links::extract(&text, &url, site));
                        }
                        if let (Some(pool), Some(key)) = (pool, key) {
                            pool.keep_page(key, &page);
                        }
                        Some(page)
                    }
                }
            } else {
                None
            };
            fetch.content = Some(ContentSummary {
                bytes: raw_len,
                truncated,
                content_type,
                charset: page.as_ref().map(|p| p.charset.clone()).unwrap_or_default(),
                title: page.as_ref().and_then(|p| p.title.clone()),
                text_sha256: page.as_ref().map(|p| p.text_sha256()).unwrap_or_default(),
                text_chars: page.as_ref().map(|p| p.text.chars().count()).unwrap_or(0),
            });
            fetch.completed = true;
            return Ok(page);
        }
    }

    /// One request, on an idle pooled connection if there is one, else on a
    /// fresh connection (kept for the pool when there is a pool).
    async fn request(
        &self,
        fetch: &mut HttpFetch,
        url: &Url,
        address: IpAddr,
        first: bool,
        started: Instant,
        pool: Option<&ConnectionPool>,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, Option<Lease>), ProbeError> {
        // Before any request, pooled or fresh: redirects may name any address.
        self.config.policy.check(address)?;
        let port = url.port_or_known_default().unwrap_or(80);
        let socket = SocketAddr::new(address, port);
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
        let key: PoolKey = (socket, host.clone(), url.scheme() == "https");
        if let Some(mut sender) = pool.and_then(|p| p.take(&key)) {
            if first {
                fetch.tcp_connected = true;
            }
            // A server may close an idle connection at any time: a failed
            // send on a reused connection falls back to a fresh one.
            if let Ok(response) = sender.send_request(self.build_request(url, false)?).await {
                self.note_ttfb(fetch, &response, started);
                return Ok((response, Some(Lease { key, sender })));
            }
        }
        let connect_started = Instant::now();
        let tcp = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(socket))
            .await
            .map_err(|_| {
                ProbeError::new(
                    ErrorKind::Timeout,
                    format!(
                        "TCP connect to {socket}: no answer within {} ms",
                        self.config.connect_timeout.as_millis()
                    ),
                )
            })?
            .map_err(|e| io_error(&format!("TCP connect to {socket}"), &e))?;
        let _ = tcp.set_nodelay(true);
        if first {
            fetch.tcp_connected = true;
            fetch.timings.connect_ms = Some(ms(connect_started.elapsed()));
        }
        let stream: Box<dyn Stream> = if url.scheme() == "https" {
            let tls_started = Instant::now();
            let server_name = ServerName::try_from(host.clone())
                .map_err(|e| ProbeError::new(ErrorKind::Tls, format!("bad TLS server name '{host}': {e}")))?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let tls = connector
                .connect(server_name.clone(), tcp)
                .await
                .map_err(|e| ProbeError::new(ErrorKind::Tls, format!("TLS handshake with {socket}: {e}")))?;
            let observation = self.observe_tls(tls.get_ref().1, &server_name);
            if first {
                fetch.timings.tls_ms = Some(ms(tls_started.elapsed()));
                fetch.tls = Some(observation);
            } else if !observation.verified
                && let Some(hop) = fetch.hops.last_mut()
            {
                // Recorded, not fatal: content is still compared, and the
                // judging decides what a bad certificate on a hop means.
                hop.tls_error = Some(format!(
                    "certificate of {host} at {socket} not valid: {}",
                    observation.verify_error.unwrap_or_default()
                ));
            }
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ProbeError::new(ErrorKind::Http, format!("HTTP handshake with {socket}: {e}")))?;
        // Bounded even if the server never closes: no task or socket outlives
        // its fetch by more than the fetch deadline (a pooled one, its
        // lifetime; it also ends when the pool drops it).
        let lifetime = if pool.is_some() {
            POOLED_LIFETIME
        } else {
            self.config.deadline
        };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(lifetime, connection).await;
        });
        let response = sender
            .send_request(self.build_request(url, pool.is_none())?)
            .await
            .map_err(|e| http_error(&format!("HTTP request to {socket}"), &e))?;
        self.note_ttfb(fetch, &response, started);
        let lease = pool.is_some().then_some(Lease { key, sender });
        Ok((response, lease))
    }

    fn note_ttfb(&self, fetch: &mut HttpFetch, response: &hyper::Response<hyper::body::Incoming>, started: Instant) {
        // Time to first byte of the page itself: the first 2xx, after any
        // redirects (the Chinese method's 首字节 to the first 200).
        if response.status().is_success() && fetch.timings.ttfb_ms.is_none() {
            fetch.timings.ttfb_ms = Some(ms(started.elapsed()));
        }
    }

    fn build_request(&self, url: &Url, close: bool) -> Result<hyper::Request<Empty<Bytes>>, ProbeError> {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let host_header = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        hyper::Request::get(path)
            .header(hyper::header::HOST, host_header)
            .header(hyper::header::USER_AGENT, &self.config.user_agent)
            .header(hyper::header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
            .header(hyper::header::ACCEPT_ENCODING, "gzip, deflate")
            .header(hyper::header::CONNECTION, if close { "close" } else { "keep-alive" })
            .body(Empty::<Bytes>::new())
            .map_err(|e| ProbeError::new(ErrorKind::Http, format!("building request: {e}")))
    }

    fn observe_tls(&self, connection: &rustls::ClientConnection, server_name: &ServerName<'static>) -> TlsObservation {
        let chain = connection.peer_certificates().unwrap_or_default();
        let mut observation = TlsObservation {
            chain_sha256: chain.iter().map(|c| hex::encode(Sha256::digest(c.as_ref()))).collect(),
            alpn: connection
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            version: connection.protocol_version().map(|v| format!("{v:?}")),
            ..Default::default()
        };
        let Some((leaf, intermediates)) = chain.split_first() else {
            observation.verify_error = Some("no certificate presented".into());
            return observation;
        };
        let now = UnixTime::now();
        let now_unix = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let parsed = rustls::server::ParsedCertificate::try_from(leaf);
        let checked = match self.verified.get(&observation.chain_sha256, now_unix) {
            Some(hit) => hit,
            None => {
                let not_after = x509_parser::parse_x509_certificate(leaf.as_ref())
                    .ok()
                    .map(|(_, cert)| cert.validity().not_after.timestamp());
                let result = parsed.as_ref().map_err(Clone::clone).and_then(|cert| {
                    rustls::client::verify_server_cert_signed_by_trust_anchor(
                        cert,
                        &self.roots,
                        intermediates,
                        now,
                        self.algorithms.all,
                    )
                });
                let fresh = CachedChain {
                    checked: std::time::Instant::now(),
                    not_after,
                    result,
                };
                self.verified.put(observation.chain_sha256.clone(), fresh.clone());
                fresh
            }
        };
        // As WebPkiServerVerifier does: the chain first, then the name.
        let checked = CachedChain {
            result: checked.result.clone().and_then(|()| match &parsed {
                Ok(cert) => rustls::client::verify_server_name(cert, server_name),
                Err(e) => Err(e.clone()),
            }),
            ..checked
        };
        observation.not_after = checked.not_after;
        match checked.result {
            Ok(()) => {
                observation.verified = true;
                observation.name_match = true;
            }
            Err(e) => {
                observation.name_match = !matches!(
                    e,
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForName
                            | rustls::CertificateError::NotValidForNameContext { .. }
                    )
                );
                observation.verify_error = Some(e.to_string());
            }
        }
        observation
    }

    /// Reads at most `body_cap` bytes; more is reported as truncated.
    async fn read_body(
        &self,
        mut body: hyper::body::Incoming,
        received: &mut u64,
    ) -> Result<(Vec<u8>, bool), ProbeError> {
        let cap = self.config.body_cap;
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| http_error("reading body", &e))?;
            if let Ok(data) = frame.into_data() {
                *received += data.len() as u64;
                let room = cap - out.len();
                if data.len() >= room {
                    out.extend_from_slice(&data[..room]);
                    return Ok((out, true));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok((out, false))
    }
}

fn empty_fetch(name: &str, address: IpAddr, scheme: Scheme, port: u16) -> HttpFetch {
    HttpFetch {
        name: name.to_string(),
        address,
        family: Family::of(&address),
        scheme,
        port,
        tcp_connected: false,
        tls: None,
        hops: Vec::new(),
        final_status: None,
        completed: false,
        body_received: 0,
        timings: Timings::default(),
        headers: BTreeMap::new(),
        content: None,
        error: None,
    }
}

fn http_error(context: &str, e: &hyper::Error) -> ProbeError {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_error(&format!("{context}: {e}"), io);
        }
        source = s.source();
    }
    ProbeError::new(ErrorKind::Http, format!("{context}: {e}"))
}

fn keep_headers(kept: &mut BTreeMap<String, String>, headers: &hyper::HeaderMap) {
    for name in KEPT_HEADERS {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            kept.insert(name.to_string(), value.chars().take(256).collect());
        }
    }
}

/// Undoes gzip/deflate, never producing more than `cap` bytes (zip bombs).
fn decompress(raw: Vec<u8>, encoding: Option<&str>, cap: usize) -> Result<Vec<u8>, ProbeError> {
    let mut out = Vec::new();
    let limit = cap as u64;
    let result = match encoding {
        Some("gzip") | Some("x-gzip") => flate2::read::MultiGzDecoder::new(&raw[..])
            .take(limit)
            .read_to_end(&mut out),
        Some("deflate") => flate2::read::ZlibDecoder::new(&raw[..])
            .take(limit)
            .read_to_end(&mut out),
        _ => return Ok(raw),
    };
    match result {
        Ok(_) => Ok(out),
        // A capped body cut mid-stream still yields what was decoded.
        Err(_) if !out.is_empty() => Ok(out),
        Err(e) => Err(ProbeError::new(ErrorKind::Http, format!("decompressing body: {e}"))),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bomb_is_capped() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b'a'; 10 * 1024 * 1024]).unwrap();
        let compressed = encoder.finish().unwrap();
        let out = decompress(compressed, Some("gzip"), 1024 * 1024).unwrap();
        assert_eq!(out.len(), 1024 * 1024);
    }

    #[test]
    fn garbage_gzip_is_an_error() {
        assert!(decompress(b"not gzip".to_vec(), Some("gzip"), 1024).is_err());
    }

    fn client() -> WebClient {
        client_under(crate::policy::AddressPolicy::open())
    }

    fn client_under(policy: crate::policy::AddressPolicy) -> WebClient {
        WebClient::new(WebConfig {
            ca_files: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(3),
            body_cap: 1024,
            user_agent: "v6scope-test".into(),
            policy,
        })
        .unwrap()
    }

    fn no_lookup() -> HostLookup {
        Arc::new(|_, _| Box::pin(async { Vec::new() }))
    }

    #[tokio::test]
    async fn scan_policy_refuses_loopback_without_connecting() {
        use crate::policy::AddressPolicy;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port())).unwrap();
        let (lookup, loopback) = (no_lookup(), "127.0.0.1".parse().unwrap());
        let refusing = client_under(AddressPolicy::public_only(Vec::new()));
        let (fetch, page) = refusing.fetch_url(&url, loopback, &lookup, None).await;
        let client = client();
        assert!(page.is_none() && !fetch.tcp_connected);
        let error = fetch.error.expect("refused");
        assert_eq!(error.kind, ErrorKind::NotTestable);
        assert_eq!(
            error.message,
            "refused by scan policy: 127.0.0.1 is loopback (127.0.0.0/8)"
        );
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accepted.is_err(), "no connection may reach the listener");
        // Control: without a policy the same fetch does connect.
        let open = tokio::spawn(async move { client.fetch_url(&url, loopback, &lookup, None).await });
        let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
        assert!(accepted.is_ok_and(|a| a.is_ok()));
        open.abort();
    }

    #[tokio::test]
    async fn scan_policy_refuses_a_redirect_to_a_literal_internal_address() {
        use crate::policy::AddressPolicy;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let reply =
                format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{port}/admin\r\nContent-Length: 0\r\n\r\n");
            let _ = conn.write_all(reply.as_bytes()).await;
        });
        // The lab-style allow list admits the first server only.
        let policy = AddressPolicy::public_only(vec!["127.0.0.1/32".parse().unwrap()]);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let (client, lookup) = (client_under(policy), no_lookup());
        let (fetch, _) = client
            .fetch_url(&url, "127.0.0.1".parse().unwrap(), &lookup, None)
            .await;
        assert_eq!(fetch.hops.len(), 2);
        assert_eq!(fetch.hops[0].status, Some(302));
        let error = fetch.error.expect("refused");
        assert_eq!(error.kind, ErrorKind::NotTestable);
        assert!(error.message.contains("127.0.0.2 is loopback"), "{}", error.message);
    }
}
