//! A fleet in the lab for tests: `v6scope serve` in the world namespace
//! and `v6scope agent`s in the vantage networks (`lab/vantages`), each with
//! its own path into the world.

use super::server::Server;
use super::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use v6scope_store::prelude::*;

pub const ADMIN_TOKEN: &str = "fleet-admin-token-0123456789";

/// Where the fleet's server keeps its store.
pub enum FleetStore {
    Postgres(v6scope_store::testing::ScratchPostgres),
    Sqlite(v6scope_store::Location),
}

pub fn vantages_env() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string("/tmp/v6lab/vantages.env").unwrap_or_else(|_| {
        panic!("agent tests need the lab's vantage networks: run as root `lab/up` (it runs `lab/vantages up`), or `bash .ci/run`")
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

pub struct Fleet {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    vantages: BTreeMap<String, String>,
    store: FleetStore,
    config: PathBuf,
    port: u16,
    server: Option<Server>,
    agents: Vec<(String, Child)>,
}

impl Fleet {
    /// A fleet whose server keeps its store in a scratch PostgreSQL database.
    pub fn new(port: u16) -> Fleet {
        Fleet::with_store(
            port,
            FleetStore::Postgres(v6scope_store::testing::ScratchPostgres::create()),
        )
    }

    /// A fleet whose server keeps its store in a SQLite file (which
    /// outlives the fleet, for serving afterwards).
    pub fn on_sqlite(port: u16, db: &std::path::Path) -> Fleet {
        Fleet::with_store(
            port,
            FleetStore::Sqlite(v6scope_store::Location::Sqlite(db.to_path_buf())),
        )
    }

    fn with_store(port: u16, store: FleetStore) -> Fleet {
        let env = lab_env();
        let vantages = vantages_env();
        let dir = tempfile::Builder::new().prefix("lab-agents").tempdir().unwrap();
        std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
        let config = dir.path().join("server.toml");
        std::fs::write(
            &config,
            format!(
                "[serve]\ntoken_file = \"{}\"\ntick_seconds = 1\nagent_lease_seconds = 4\nagent_heartbeat_seconds = 1\n",
                dir.path().join("admin-token").display()
            ),
        )
        .unwrap();
        let mut fleet = Fleet {
            dir,
            env,
            vantages,
            store,
            config,
            port,
            server: None,
            agents: Vec::new(),
        };
        fleet.start_server();
        fleet
    }

    fn location(&self) -> &v6scope_store::Location {
        match &self.store {
            FleetStore::Postgres(p) => &p.location,
            FleetStore::Sqlite(l) => l,
        }
    }

    pub fn store_url(&self) -> String {
        self.location().to_url()
    }

    pub fn store(&self) -> Box<dyn Store> {
        v6scope_store::open(self.location()).unwrap()
    }

    /// The server, in the world namespace, reachable from every vantage network.
    pub fn start_server(&mut self) {
        let config = self.config.display().to_string();
        let listen = format!("0.0.0.0:{}", self.port);
        self.server = Some(Server::start_listening(
            Some("v6lab-world"),
            &self.store_url(),
            &["--config", &config],
            &listen,
            &[],
        ));
    }

    pub fn stop_server(&mut self) {
        self.server = None;
    }

    /// The server's URL as vantage `k` (a, b, c) reaches it.
    pub fn server_url(&self, k: char) -> String {
        let key = format!("V6LAB_V{}_SERVER", k.to_ascii_uppercase());
        format!("http://{}:{}/", self.vantages[&key], self.port)
    }

    pub fn v6scope(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_v6scope"))
            .args(args)
            .output()
            .expect("running v6scope")
    }

    pub fn add_agent(&self, name: &str) -> PathBuf {
        let file = self.dir.path().join(format!("{name}.token"));
        let url = self.store_url();
        let out = self.v6scope(&[
            "agents",
            "add",
            name,
            "--token-file",
            file.to_str().unwrap(),
            "--store",
            &url,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        file
    }

    pub fn token(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.token")))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn import(&self, campaign: &str, domains: &[&str]) {
        let file = self.dir.path().join(format!("{campaign}.txt"));
        std::fs::write(&file, domains.join("\n")).unwrap();
        let url = self.store_url();
        let out = self.v6scope(&["campaign", "import", campaign, file.to_str().unwrap(), "--store", &url]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts `v6scope agent` in vantage network `k`.
    pub fn start_agent(&mut self, name: &str, k: char, vantage: &str, labels: &[&str], concurrency: usize) {
        let ns = format!("v6lab-v{k}");
        // A network with a resolver of its own (v6lab-vc's) uses it, as an
        // agent would use its ISP's.
        let mut flags = lab_flags(&self.env);
        let upper = k.to_ascii_uppercase();
        for (family, own) in [
            ("V4", format!("V6LAB_V{upper}_RESOLVER_V4")),
            ("V6", format!("V6LAB_V{upper}_RESOLVER_V6")),
        ] {
            if let Some(own) = self.vantages.get(&own) {
                let lab = &self.env[&format!("V6LAB_RESOLVER_{family}")];
                for f in flags.iter_mut().filter(|f| *f == lab) {
                    *f = own.clone();
                }
            }
        }
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_v6scope"), "agent"])
            .args(["--server", &self.server_url(k)])
            .args([
                "--token",
                self.dir.path().join(format!("{name}.token")).to_str().unwrap(),
            ])
            .args(["--vantage", vantage, "--concurrency", &concurrency.to_string()])
            .args(flags)
            .args([
                "--dns-timeout",
                "1000",
                "--connect-timeout",
                "1000",
                "--fetch-timeout",
                "3",
                "--deadline",
                "20",
            ]);
        for l in labels {
            command.args(["--label", l]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting an agent");
        self.agents.push((name.to_string(), child));
    }

    pub fn agent_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn agent(&mut self, name: &str) -> &mut Child {
        &mut self.agents.iter_mut().find(|(n, _)| n == name).unwrap().1
    }

    /// Waits until the named agents have registered.
    pub fn wait_registered(&self, names: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let agents = self.store().agents().unwrap();
            let ready = names
                .iter()
                .all(|n| agents.iter().any(|a| a.name == *n && a.vantage.is_some()));
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agents {names:?} did not register: {}",
                names
                    .iter()
                    .map(|n| self.agent_log(n))
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `scan --campaign C --agents …` (the run's owner), waited for.
    pub fn fleet_scan(&self, campaign: &str, extra: &[&str]) -> i64 {
        let child = self.spawn_fleet_scan(campaign, extra);
        let out = wait_output(child, Duration::from_secs(240));
        assert!(out.status.success(), "scan: {}", String::from_utf8_lossy(&out.stderr));
        self.last_run(campaign)
    }

    pub fn spawn_fleet_scan(&self, campaign: &str, extra: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_v6scope"))
            .args(["--quiet", "scan", "--campaign", campaign, "--store", &self.store_url()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn last_run(&self, campaign: &str) -> i64 {
        let source = format!("campaign:{campaign}");
        self.store()
            .run_list(100)
            .unwrap()
            .into_iter()
            .find(|r| r.source == source)
            .map(|r| r.id)
            .expect("a run of the campaign")
    }

    /// HTTP from vantage network `k`.
    pub fn http(&self, k: char, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, String) {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &format!("v6lab-v{k}"),
            "curl",
            "-sS",
            "-m",
            "30",
            "-X",
            method,
        ])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Content-Type: application/json"])
        .args(["-w", "\n%{http_code}"])
        .arg(format!("{}{}", self.server_url(k).trim_end_matches('/'), path));
        if let Some(b) = body {
            c.args(["--data-binary", b]);
        }
        let out = c.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (_, child) in &mut self.agents {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn wait_output(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("timed out: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
