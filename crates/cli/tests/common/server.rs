//! Starting `v6scope serve` on a loopback port for tests, and a generated
//! store to serve.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Everything the server wrote to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `v6scope [leading] serve --listen 127.0.0.1:0 --store sqlite:DB [args]`
    /// and waits for its address.
    pub fn start(db: &Path, leading: &[&str], args: &[&str]) -> Server {
        Self::start_in(None, db, leading, args)
    }

    /// The same, inside a network namespace (`ip netns exec NS`).
    pub fn start_in(netns: Option<&str>, db: &Path, leading: &[&str], args: &[&str]) -> Server {
        Self::start_on(netns, &format!("sqlite:{}", db.display()), leading, args)
    }

    /// The same on any store (`--store sqlite:PATH` or `postgres://…`).
    pub fn start_on(netns: Option<&str>, store: &str, leading: &[&str], args: &[&str]) -> Server {
        Self::start_listening(netns, store, leading, "127.0.0.1:0", args)
    }

    /// The same, listening on `listen` (`base` is its first address).
    pub fn start_listening(netns: Option<&str>, store: &str, leading: &[&str], listen: &str, args: &[&str]) -> Server {
        let bin = env!("CARGO_BIN_EXE_v6scope");
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        command
            .args(leading)
            .args(["serve", "--listen", listen, "--store", store])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting v6scope serve");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("v6scope serve: http://") {
                    let _ = tx.send(format!("http://{addr}"));
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start: {}", log.lock().unwrap());
            }
        };
        Server { child, base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generates a store with campaign `name` (`targets` targets, `runs`
/// monthly runs up to 2026-10) under the cn-website profile.
pub fn synth_store(db: &Path, name: &str, targets: usize, runs: usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["synth-store", "--campaign", name, "--targets"])
        .arg(targets.to_string())
        .arg("--runs")
        .arg(runs.to_string())
        .arg("--db")
        .arg(db)
        .output()
        .expect("running synth-store");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
