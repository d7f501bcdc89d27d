//! The dashboard in a real browser: Debian's headless `chromium`, driven over
//! WebDriver by `chromedriver` (packages `chromium` and `chromium-driver`,
//! which .ci/run installs). Each test starts `v6scope serve` on loopback over
//! a generated store (3000 targets × 3 runs, made once per test binary), its
//! own chromedriver on a free loopback port and a fresh browser profile, then
//! clicks through the pages like a person would; one test serves a store
//! seeded from real lab runs instead (a campaign scanned twice in the lab,
//! with one site's IPv6 dropped by nftables in between). Screenshots of the pages go
//! to `target/browser-artifacts/` (`$CARGO_TARGET_DIR/browser-artifacts/`
//! when that is set), with chromedriver's log beside them.
//!
//! Nothing here reaches beyond loopback: the browser is started with every
//! background service off (no sync, no component updates, no QUIC), resolves
//! no names (`--host-resolver-rules`; the pages are on 127.0.0.1), and the
//! pages have no external assets. (Chromium and chromedriver still connect()
//! a UDP socket to a public IPv6 address to learn whether IPv6 is routed;
//! that sends nothing.)
//!
//! Missing chromium or chromedriver is a failure, not a skip.

mod common;

use common::server::{Server, synth_store};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long one test may take before it is failed (a hung browser must not
/// hang CI).
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// The binary at `env` (if set) or `default`; a panic that says how to
/// install it otherwise.
fn tool(env: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| default.into());
    assert!(
        path.is_file(),
        "browser tests need {} (Debian package `{package}`): install it with \
         `apt-get install -y chromium chromium-driver` (CI does, in .ci/run), \
         or point {env} at it",
        path.display()
    );
    path
}

/// `$CARGO_TARGET_DIR/browser-artifacts`, else `<repo>/target/browser-artifacts`.
fn artifacts() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => common::repo_root().join(dir),
        None => common::repo_root().join("target"),
    };
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The generated store every test serves: made once per test binary, under
/// cargo's per-target scratch directory.
fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-store");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("v6scope.db");
        synth_store(&db, "gen", 3000, 3);
        db
    })
}

fn serve() -> Server {
    Server::start(store(), &[], &["--profile", "cn-website"])
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// chromedriver and the chromium it starts. Dropping it ends both: the
/// driver runs in a process group of its own, which the browser's processes
/// join, and the whole group is killed.
struct Browser {
    driver: Child,
    client: Option<Client>,
    /// The browser's fresh profile (--user-data-dir), removed after it.
    profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group id is the driver's pid (process_group(0) below).
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port, waits until it answers
    /// and opens a session with headless chromium in a fresh profile.
    async fn start(test: &str) -> Browser {
        let chromium = tool("CHROMIUM", CHROMIUM, "chromium");
        let chromedriver = tool("CHROMEDRIVER", CHROMEDRIVER, "chromium-driver");
        let profile = tempfile::Builder::new().prefix("v6scope-chromium").tempdir().unwrap();
        let log = artifacts().join(format!("chromedriver-{test}.log"));
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let mut browser = Browser {
            driver,
            client: None,
            profile,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!("chromedriver exited ({status}) before answering; see {}", log.display());
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {addr}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            // No name lookups at all: the pages are on 127.0.0.1, and
            // without this the browser still resolves its default search
            // engine and Google's account, update and autofill hosts.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", browser.profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .unwrap_or_else(|e| panic!("opening a chromium session: {e}; see {}", log.display()));
        browser.client = Some(client);
        browser
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Ends the session (the driver closes chromium); the drop kills what
    /// is left.
    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }

    async fn goto(&self, url: &str) {
        self.c()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let url = self.url().await;
        self.c()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} on {url}: {e}"))
    }

    async fn find_all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.c().find_all(Locator::Css(css)).await.unwrap()
    }

    async fn url(&self) -> String {
        self.c().current_url().await.unwrap().to_string()
    }

    /// The decoded query of the current URL.
    async fn query(&self) -> Vec<(String, String)> {
        let url = self.c().current_url().await.unwrap();
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    async fn js(&self, script: &str) -> Value {
        self.c()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The query of the current URL once `ready` holds for it and the page
    /// has loaded (after a click that navigates).
    async fn wait_query(&self, what: &str, ready: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let query = self.query().await;
            let state = self.js("return document.readyState").await;
            if ready(&query) && state == "complete" {
                return query;
            }
            let url = self.url().await;
            assert!(Instant::now() < deadline, "waiting for {what}: still at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the whole page (the window made as tall as the page, at its
    /// current width) as `<artifacts>/<name>.png`.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let (width, height) = self.c().get_window_size().await.unwrap();
        // The window is taller than the page's viewport by the browser's
        // own frame.
        let sizes = self
            .js("return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
            .await;
        let page = sizes[0].as_u64().unwrap_or(height);
        let frame = sizes[1].as_u64().unwrap_or(0);
        let tall = (page + frame).clamp(height, 10_000) as u32;
        self.c().set_window_size(width as u32, tall).await.unwrap();
        let png = self.c().screenshot().await.unwrap();
        self.c().set_window_size(width as u32, height as u32).await.unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        let path = artifacts().join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        path
    }
}

/// Runs one browser test with a time limit.
async fn limited(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("browser test timed out");
}

/// The text of the element at `css`.
async fn text(b: &Browser, css: &str) -> String {
    b.find(css).await.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn overview_renders_campaign_card_and_trend_chart() {
    limited(async {
        let server = serve();
        let b = Browser::start("overview").await;
        b.goto(&server.url("/")).await;
        let card = text(&b, ".campaign-card").await;
        assert!(card.contains("gen"), "campaign card: {card:?}");
        let points = b.find_all("svg#trend-gen circle.point").await;
        assert_eq!(points.len(), 3, "one trend point per run");
        // The chart is drawn, not just present: it has a size on the page.
        let (_, _, w, h) = b.find("svg#trend-gen").await.rectangle().await.unwrap();
        assert!(w > 200.0 && h > 50.0, "trend chart is {w}×{h}");
        assert!(
            !b.find_all("#milestones tbody tr").await.is_empty(),
            "plan table has rows"
        );
        b.screenshot("overview-en").await;
        b.close().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn campaign_page_filters_by_region() {
    limited(async {
        let server = serve();
        let b = Browser::start("campaign-filter").await;
        b.goto(&server.url("/campaigns/gen")).await;
        assert!(b.find_all("svg#by-category rect.bar").await.len() > 1, "category bars");
        let select = b.find("select#filter-region").await;
        let mut regions = Vec::new();
        for option in select.find_all(Locator::Css("option")).await.unwrap() {
            let value = option.attr("value").await.unwrap().unwrap_or_default();
            if !value.is_empty() {
                regions.push(value);
            }
        }
        assert!(regions.len() > 1, "region choices: {regions:?}");
        let region = if regions.iter().any(|r| r == "四川") {
            "四川".to_string()
        } else {
            regions.last().unwrap().clone()
        };
        // As a person would: open the list, pick the region, apply.
        select.click().await.unwrap();
        let option = select
            .find(Locator::Css(&format!("option[value='{region}']")))
            .await
            .unwrap();
        option.click().await.unwrap();
        assert_eq!(select.prop("value").await.unwrap().as_deref(), Some(region.as_str()));
        b.find("#filter-apply").await.click().await.unwrap();
        let query = b
            .wait_query("the filtered page", |q| q.iter().any(|(k, _)| k == "region"))
            .await;
        assert!(
            query.iter().any(|(k, v)| k == "region" && *v == region),
            "query after filtering: {query:?}"
        );
        let cells = b.find_all("#targets tr.target td.region").await;
        assert!(!cells.is_empty(), "no targets in {region}");
        for cell in &cells {
            assert_eq!(cell.text().await.unwrap(), region, "a row of the filtered table");
        }
        // The form shows the filter that is in force.
        let chosen = b.find("select#filter-region").await.prop("value").await.unwrap();
        assert_eq!(chosen.as_deref(), Some(region.as_str()));
        b.screenshot("campaign-filtered").await;
        b.close().await;
    })
    .await
}

/// A domain that the API lists with a regression.
async fn regressed_domain(server: &Server) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let body: Value = reqwest::Client::new()
        .get(server.url("/api/campaigns/gen"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    body["changes"]
        .as_array()
        .expect("changes in /api/campaigns/gen")
        .iter()
        .find(|c| c["kind"] == "regression")
        .and_then(|c| c["domain"].as_str())
        .expect("the generated campaign has a regression")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn site_page_shows_a_regression() {
    limited(async {
        let server = serve();
        let domain = regressed_domain(&server).await;
        let b = Browser::start("site").await;
        b.goto(&server.url(&format!("/sites/{domain}?campaign=gen"))).await;
        let h1 = text(&b, "h1").await;
        assert!(h1.contains(&domain), "site page heading: {h1:?}");
        assert!(!b.find_all("#timeline tbody tr").await.is_empty(), "timeline rows");
        let regressions = b.find_all("#changelog li.regression").await;
        assert!(!regressions.is_empty(), "no regression in the changelog of {domain}");
        assert!(!regressions[0].text().await.unwrap().is_empty());
        b.screenshot("site").await;
        b.close().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn chinese_ui_and_language_switch() {
    limited(async {
        let server = serve();
        let b = Browser::start("lang").await;
        b.goto(&server.url("/?lang=zh-CN")).await;
        let lang = b.find("html").await.attr("lang").await.unwrap();
        assert_eq!(lang.as_deref(), Some("zh-CN"));
        let nav = text(&b, "header").await;
        assert!(nav.contains("总览"), "zh-CN header: {nav:?}");
        // Chinese labels on the page itself, not just the header.
        let points = b.find_all("svg#trend-gen circle.point").await;
        assert_eq!(points.len(), 3);
        b.screenshot("overview-zh-CN").await;

        b.find("a#lang-switch").await.click().await.unwrap();
        b.wait_query("the English page", |q| q.iter().any(|(k, v)| k == "lang" && v == "en"))
            .await;
        let lang = b.find("html").await.attr("lang").await.unwrap();
        assert_eq!(lang.as_deref(), Some("en"));
        let nav = text(&b, "header").await;
        assert!(
            nav.contains("Overview") && !nav.contains("总览"),
            "English header: {nav:?}"
        );
        b.close().await;
    })
    .await
}

/// Every page answers in the browser (in both languages) without an error
/// and is screenshotted.
#[tokio::test(flavor = "multi_thread")]
async fn every_page_renders() {
    limited(async {
        let server = serve();
        let domain = regressed_domain(&server).await;
        let b = Browser::start("pages").await;
        let pages = [
            ("campaign", "/campaigns/gen".to_string()),
            ("providers", "/campaigns/gen/providers".to_string()),
            ("traffic", "/traffic".to_string()),
            ("runs", "/runs".to_string()),
            ("site", format!("/sites/{domain}?campaign=gen")),
        ];
        for (name, path) in &pages {
            for lang in ["en", "zh-CN"] {
                let sep = if path.contains('?') { '&' } else { '?' };
                b.goto(&server.url(&format!("{path}{sep}lang={lang}"))).await;
                let url = b.url().await;
                assert!(b.find_all("p.error").await.is_empty(), "{url} shows an error");
                let html_lang = b.find("html").await.attr("lang").await.unwrap();
                assert_eq!(html_lang.as_deref(), Some(lang), "{url}");
                assert!(!text(&b, "h1").await.is_empty(), "{url} has no heading");
                if lang == "en" || *name == "campaign" {
                    b.screenshot(&format!("page-{name}-{lang}")).await;
                }
            }
        }
        b.close().await;
    })
    .await
}

/// At a phone's width the pages fit: wide tables scroll inside their
/// `.scroll` box, the page itself does not scroll sideways.
#[tokio::test(flavor = "multi_thread")]
async fn pages_fit_a_phone() {
    limited(async {
        let server = serve();
        let domain = regressed_domain(&server).await;
        let b = Browser::start("phone").await;
        b.c().set_window_size(390, 844).await.unwrap();
        for (name, path) in [
            ("campaign", "/campaigns/gen?lang=zh-CN".to_string()),
            ("overview", "/?lang=zh-CN".to_string()),
            ("site", format!("/sites/{domain}?campaign=gen")),
        ] {
            b.goto(&server.url(&path)).await;
            let inner = b.js("return window.innerWidth").await.as_f64().unwrap();
            assert!(inner <= 400.0, "the window is {inner} px wide, not a phone's");
            let scroll = b
                .js("return document.documentElement.scrollWidth")
                .await
                .as_f64()
                .unwrap();
            if name == "campaign" {
                b.screenshot("phone-campaign").await;
            }
            // Chart text stays legible (it was 5-6 px when charts shrank).
            let smallest = b
                .js("let t=[...document.querySelectorAll('svg.chart text')].map(e=>e.getBoundingClientRect().height).filter(h=>h>0); return t.length? Math.min(...t) : 99")
                .await
                .as_f64()
                .unwrap();
            assert!(smallest >= 9.0, "{path}: chart text {smallest} px high at phone width");
            // Remedies and evidence are not cut off at the right edge.
            let overflow = b
                .js("return [...document.querySelectorAll('table.checks td')].filter(e=>e.getBoundingClientRect().right>window.innerWidth+1).length")
                .await
                .as_f64()
                .unwrap();
            assert_eq!(overflow, 0.0, "{path}: check cells past the window's edge");
            assert!(
                scroll <= inner + 1.0,
                "{path} at phone width: the page is {scroll} px wide in a {inner} px window"
            );
        }
        b.close().await;
    })
    .await
}

/// A store seeded from real lab runs: a campaign scanned twice in the lab,
/// with IPv6 to one site's web server dropped (nftables) before the second.
fn lab_store() -> PathBuf {
    let env = common::lab_env();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-lab-store");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("v6scope.db");
    let list = dir.join("lab.csv");
    std::fs::write(
        &list,
        "domain,category,organisation,region\n\
         dual-stack-good.test,中央媒体,Lab Media,北京\n\
         ipv4-only.test,商业网站,Lab Shop,上海\n\
         site-good.test,商业网站,Lab Shop,上海\n",
    )
    .unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["campaign", "import", "lab"])
        .arg(&list)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let scan = || {
        let mut args: Vec<String> = [
            "scan",
            "--campaign",
            "lab",
            "--db",
            db.to_str().unwrap(),
            "--profile",
            "internetnl",
        ]
        .map(String::from)
        .to_vec();
        args.extend(common::lab_flags(&env));
        let out = common::v6scope_in_lab(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    scan();
    let hole = common::Blackhole::v6("2001:db8:101::1");
    scan();
    drop(hole);
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_over_lab_runs_show_the_regression_with_its_evidence() {
    limited(async {
        let db = lab_store();
        let server = Server::start(&db, &[], &["--profile", "internetnl"]);
        let b = Browser::start("lab").await;
        b.goto(&server.url("/?lang=zh-CN")).await;
        assert_eq!(b.find_all("svg#trend-lab circle.point").await.len(), 2, "two lab runs");
        b.screenshot("lab-overview-zh-CN").await;

        b.goto(&server.url("/sites/dual-stack-good.test?campaign=lab")).await;
        let regressions = b.find_all("#changelog li.regression").await;
        assert!(!regressions.is_empty(), "the blackholed site regressed");
        let checks = text(&b, "table.checks").await;
        assert!(
            checks.contains("2001:db8:101::1"),
            "the evidence names the unreachable address: {checks}"
        );
        assert_eq!(b.find_all("#timeline tbody tr").await.len(), 2);
        b.screenshot("lab-site").await;

        // The campaign page filtered to one region shows only its targets.
        b.goto(&server.url("/campaigns/lab")).await;
        b.find("select#filter-region").await.click().await.unwrap();
        b.find("select#filter-region option[value='上海']")
            .await
            .click()
            .await
            .unwrap();
        b.find("#filter-apply").await.click().await.unwrap();
        // Wait for the filtered page, not the rows of the page being left.
        b.wait_query("the filtered page", |q| q.iter().any(|(k, _)| k == "region"))
            .await;
        let mut domains = Vec::new();
        for row in b.find_all("#targets tr.target").await {
            domains.push(row.find(Locator::Css("td")).await.unwrap().text().await.unwrap());
        }
        domains.sort();
        assert_eq!(domains, vec!["ipv4-only.test", "site-good.test"]);
        b.screenshot("lab-campaign-filtered").await;
        b.close().await;
    })
    .await
}

/// A store from a real fleet run in the lab: agents in two vantage networks
/// (`lab/vantages`; vb's path drops IPv6 to dual-stack-good's web server)
/// and the server that coordinated them in the world namespace, on a SQLite
/// file that is served again afterwards.
fn fleet_store() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-fleet-store");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("v6scope.db");
    let mut fleet = common::fleet::Fleet::on_sqlite(18941, &db);
    fleet.add_agent("a");
    fleet.add_agent("b");
    fleet.import("fleet", &["dual-stack-good.test", "ipv4-only.test"]);
    fleet.start_agent("a", 'a', "isp-a", &["isp=A", "region=north", "access=fixed"], 8);
    fleet.start_agent("b", 'b', "isp-b", &["isp=B", "region=south", "access=mobile"], 8);
    fleet.wait_registered(&["a", "b"]);
    fleet.fleet_scan("fleet", &["--agents", "all"]);
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn vantages_page_and_a_site_that_differs_between_vantages() {
    limited(async {
        let db = fleet_store();
        let server = Server::start(&db, &[], &[]);
        let b = Browser::start("fleet").await;

        // The vantages page lists both agents; the label filter keeps one.
        b.goto(&server.url("/vantages")).await;
        assert_eq!(b.find_all("#agents tr[data-agent]").await.len(), 2);
        assert!(text(&b, "#agents").await.contains("region=south"));
        assert_eq!(b.find_all("#fleet-runs tbody tr").await.len(), 1);
        b.screenshot("fleet-vantages").await;
        b.find("#filter-label").await.send_keys("isp=B").await.unwrap();
        b.find("#filter-apply").await.click().await.unwrap();
        b.wait_query("the filtered vantages", |q| {
            q.iter().any(|(k, v)| k == "label" && v == "isp=B")
        })
        .await;
        let rows = b.find_all("#agents tr[data-agent]").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].attr("data-agent").await.unwrap().as_deref(), Some("b"));

        // The site page: a column per vantage, the differing rows marked, the
        // failing vantage's evidence naming the address it could not reach.
        b.goto(&server.url("/sites/dual-stack-good.test?campaign=fleet")).await;
        let heads = b.find_all("table.per-vantage th[data-vantage]").await;
        let mut names = Vec::new();
        for h in &heads {
            names.push(h.attr("data-vantage").await.unwrap().unwrap_or_default());
        }
        assert!(
            names.len() >= 2 && names.starts_with(&["isp-a".into(), "isp-b".into()]),
            "{names:?}"
        );
        let differing = b.find_all("table.per-vantage tr.differs").await;
        assert!(!differing.is_empty(), "a check differs between isp-a and isp-b");
        let per_vantage = text(&b, "table.per-vantage").await;
        assert!(per_vantage.contains("2001:db8:101"), "{per_vantage}");
        let combined = text(&b, "table.checks").await;
        assert!(combined.contains("differs: "), "{combined}");
        b.screenshot("fleet-site").await;
        b.find("#filter-label").await.send_keys("isp=A").await.unwrap();
        b.find("#filter-apply").await.click().await.unwrap();
        b.wait_query("the site from isp-a only", |q| {
            q.iter().any(|(k, v)| k == "label" && v == "isp=A")
        })
        .await;
        let first = b.find("table.per-vantage").await;
        assert_eq!(first.find_all(Locator::Css("th[data-vantage]")).await.unwrap().len(), 1);
        assert!(b.find_all("table.per-vantage tr.differs").await.is_empty());
        b.close().await;
    })
    .await
}

/// Operator reports submitted over the API (a first report and a
/// correction), then the operators page: the national and per-operator
/// shares, the chart, the version, the history with the superseded row,
/// and the CSV template's link; in Chinese too.
#[tokio::test(flavor = "multi_thread")]
async fn operators_page_shows_shares_versions_and_corrections() {
    limited(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("operators.db");
        let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
            .args(["collectors", "add", "cmcc-reports", "--operator", "CMCC", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let server = Server::start(&db, &[], &[]);
        let url = server.url("/api/operator-reports");
        tokio::task::spawn_blocking(move || {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::blocking::Client::new();
            for body in [
                "point,period,unit,ipv6_traffic,total_traffic\nmobile-lte,2026-10,gbps,50,100\nmobile-lte,2026-11,gbps,60,100\nmetro-egress,2026-11,gbps,20,100\n",
                "point,period,unit,ipv6_traffic,total_traffic\nmobile-lte,2026-11,gbps,66,100\n",
            ] {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("Content-Type", "text/csv")
                    .body(body)
                    .send()
                    .unwrap();
                assert_eq!(response.status().as_u16(), 201);
            }
        })
        .await
        .unwrap();
        let b = Browser::start("operators").await;
        b.goto(&server.url("/operators?until=2026-11")).await;
        let national = text(&b, "#national").await;
        assert!(national.contains("66.0 %"), "the corrected mobile share: {national}");
        assert!(national.contains("20.0 %"), "the fixed share: {national}");
        assert!(!b.find_all("#operator-CMCC tbody tr").await.is_empty());
        let version = text(&b, "#national tr[data-period='2026-11'] td.version").await;
        assert_eq!(version, "2");
        assert_eq!(b.find_all("#history tr.superseded").await.len(), 1);
        let lte = text(&b, "#points-CMCC tr[data-point='mobile-lte']").await;
        assert!(lte.contains("50.0 %") && lte.contains("66.0 % (v2)"), "the LTE core's trend: {lte}");
        assert_eq!(b.find_all("#history tr.current").await.len(), 3);
        let (_, _, w, h) = b.find("svg#mobile-share-chart").await.rectangle().await.unwrap();
        assert!(w > 200.0 && h > 50.0, "mobile share chart is {w}×{h}");
        let href = b.find("#template").await.attr("href").await.unwrap();
        assert_eq!(href.as_deref(), Some("/api/operator-reports/template.csv"));
        assert!(text(&b, "ul.targets").await.contains("65.0 %"));
        b.screenshot("operators-en").await;

        // The page's upload: a bad row refuses the file and is named; a good
        // file is the LTE figure's third version.
        let token = String::from_utf8(
            Command::new(env!("CARGO_BIN_EXE_v6scope"))
                .args(["collectors", "add", "cmcc-page", "--operator", "CMCC", "--db"])
                .arg(&db)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        let upload = |csv: &'static str| {
            let token = token.clone();
            let b = &b;
            async move {
                b.find("#upload summary").await.click().await.unwrap();
                b.find("#upload-csv").await.send_keys(csv).await.unwrap();
                b.find("#upload-token").await.send_keys(&token).await.unwrap();
                b.find("#upload-submit").await.click().await.unwrap();
            }
        };
        upload("point,period,unit,ipv6_traffic,total_traffic\nmobile-lte,2026-11,gbps,70,100\nmobile-9g,2026-11,gbps,1,2\n").await;
        let errors = b
            .c()
            .wait()
            .for_element(Locator::Css("#upload-errors"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(errors.contains("3") && errors.contains("mobile-9g"), "{errors}");
        b.goto(&server.url("/operators?until=2026-11")).await;
        upload("point,period,unit,ipv6_traffic,total_traffic\nmobile-lte,2026-11,gbps,70,100\n").await;
        b.wait_query("back on the operators page", |q| q.iter().any(|(k, _)| k == "lang")).await;
        b.goto(&server.url("/operators?until=2026-11")).await;
        let lte = text(&b, "#points-CMCC tr[data-point='mobile-lte']").await;
        assert!(lte.contains("70.0 % (v3)"), "the uploaded correction: {lte}");
        b.goto(&server.url("/operators?until=2026-11&lang=zh-CN")).await;
        assert!(text(&b, "h1").await.contains("运营商"));
        assert!(text(&b, "#history").await.contains("LTE核心网"));
        b.screenshot("operators-zh").await;
        b.close().await;
    })
    .await
}
