//! Rule 1 against real faulty resolvers in the lab: a resolver that strips
//! AAAA (dnsmasq --filter-AAAA), answers NXDOMAIN for everything (dnsmasq
//! --address=/#/), SERVFAIL for everything (unbound validating against a
//! trust anchor the lab root cannot match), REFUSED (unbound access
//! control), or is dead, never gets a target blamed: `check` says why the
//! result is not testable and exits 4; `scan` refuses to judge a run; and a
//! resolver that dies mid-run is waited for, its targets evaluated again,
//! with the same verdicts as through a healthy resolver.

mod common;

use common::{CLIENT_NS, lab_env, lab_flags, v6scope_in_lab};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WORLD_NS: &str = "v6lab-world";

/// A daemon started in the world namespace on its own address; stopped (by
/// PID) and its address removed when dropped.
struct Daemon {
    child: Child,
    address: String,
}

impl Daemon {
    fn start(address: &str, program: &str, args: &[String]) -> Daemon {
        let _ = Command::new("ip")
            .args(["-n", WORLD_NS, "addr", "add", &format!("{address}/32"), "dev", "lo"])
            .stderr(Stdio::null())
            .status();
        let child = Command::new("ip")
            .args(["netns", "exec", WORLD_NS, program])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (lab/install-deps installs it)"));
        let daemon = Daemon {
            child,
            address: address.into(),
        };
        // Ready when it answers on port 53 (any answer).
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    CLIENT_NS,
                    "dig",
                    "+tries=1",
                    "+time=1",
                    &format!("@{address}"),
                    ".",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("status:") {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    /// dnsmasq forwarding to `upstream` (or to nobody), with extra options.
    fn dnsmasq(address: &str, upstream: Option<&str>, extra: &[&str]) -> Daemon {
        let mut args: Vec<String> = [
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--port=53",
            "--cache-size=0",
            "--pid-file=",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--listen-address={address}"));
        if let Some(upstream) = upstream {
            args.push(format!("--server={upstream}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Daemon::start(address, "dnsmasq", &args)
    }

    /// unbound iterating from the lab root, with extra `server:` lines.
    fn unbound(dir: &std::path::Path, address: &str, extra: &[&str]) -> Daemon {
        let conf = dir.join(format!("unbound-{address}.conf"));
        let mut lines = vec![
            "server:".to_string(),
            format!("    directory: \"{}\"", dir.display()),
            "    username: \"\"".into(),
            "    chroot: \"\"".into(),
            "    use-syslog: no".into(),
            format!("    pidfile: \"{}/unbound-{address}.pid\"", dir.display()),
            "    num-threads: 1".into(),
            "    interface-automatic: no".into(),
            format!("    interface: {address}"),
            "    access-control: 0.0.0.0/0 allow".into(),
            "    root-hints: \"/tmp/v6lab/unbound/root.hints\"".into(),
            "    local-zone: \"test.\" nodefault".into(),
            "    do-not-query-localhost: no".into(),
            "    qname-minimisation: no".into(),
        ];
        lines.extend(extra.iter().map(|s| format!("    {s}")));
        std::fs::write(&conf, lines.join("\n") + "\n").unwrap();
        Daemon::start(
            address,
            "unbound",
            &["-d".into(), "-c".into(), conf.display().to_string()],
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip")
            .args([
                "-n",
                WORLD_NS,
                "addr",
                "del",
                &format!("{}/32", self.address),
                "dev",
                "lo",
            ])
            .stderr(Stdio::null())
            .status();
    }
}

/// The lab's flags with the resolver replaced.
fn flags_with_resolver(resolver: &str) -> Vec<String> {
    let env = lab_env();
    let mut flags = lab_flags(&env);
    let mut out = Vec::new();
    let mut i = 0;
    while i < flags.len() {
        if flags[i] == "--resolver" {
            i += 2;
            continue;
        }
        out.push(std::mem::take(&mut flags[i]));
        i += 1;
    }
    out.extend(["--resolver".into(), resolver.into()]);
    out
}

fn check_json(resolver: &str, domain: &str) -> (i32, Value, String) {
    let mut args = vec!["check".to_string(), domain.into(), "--json".into()];
    args.extend([
        "--profile".into(),
        "internetnl".into(),
        "--profile".into(),
        "nist-usgv6".into(),
    ]);
    args.extend(flags_with_resolver(resolver));
    let out = v6scope_in_lab(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let value: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        value,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Every verdict not_testable, none fail, the reason named, exit 4.
fn assert_not_blamed(what: &str, resolver: &str, reason: &str) {
    for domain in ["dual-stack-good.test", "ipv4-only.test"] {
        let (code, doc, stderr) = check_json(resolver, domain);
        assert_eq!(code, 4, "{what} {domain}: exit {code}\n{stderr}\n{doc}");
        let verdicts = doc["verdicts"].as_array().unwrap_or_else(|| panic!("{what}: {doc}"));
        for v in verdicts {
            assert_eq!(v["status"], "not_testable", "{what} {domain}: {v}");
            for c in v["checks"].as_array().unwrap() {
                assert_ne!(c["status"], "fail", "{what} {domain}: {c}");
            }
        }
        let text = doc.to_string();
        assert!(
            text.contains(reason),
            "{what}: the reason '{reason}' is not given:\n{stderr}"
        );
        assert!(
            stderr.contains(reason),
            "{what}: no warning naming '{reason}':\n{stderr}"
        );
    }
}

#[test]
fn faulty_resolvers_never_get_a_target_blamed() {
    let _env = lab_env();
    let dir = tempfile::Builder::new().prefix("lab-resolvers").tempdir().unwrap();
    let lab_resolver = "198.51.100.53";
    {
        let _d = Daemon::dnsmasq("198.51.100.61", Some(lab_resolver), &["--filter-AAAA"]);
        assert_not_blamed("AAAA-stripping dnsmasq", "198.51.100.61", "strips AAAA");
    }
    {
        let _d = Daemon::dnsmasq("198.51.100.62", None, &["--address=/#/"]);
        assert_not_blamed("NXDOMAIN-everything dnsmasq", "198.51.100.62", "NXDOMAIN");
    }
    {
        // A validating resolver with a root trust anchor the (unsigned) lab
        // root cannot match: SERVFAIL for every name.
        let _d = Daemon::unbound(
            dir.path(),
            "198.51.100.63",
            &[
                "module-config: \"validator iterator\"",
                "trust-anchor: \". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\"",
            ],
        );
        assert_not_blamed("SERVFAIL-everything unbound", "198.51.100.63", "SERVFAIL");
    }
    {
        let _d = Daemon::unbound(dir.path(), "198.51.100.64", &["access-control: 0.0.0.0/0 refuse"]);
        assert_not_blamed("REFUSED unbound", "198.51.100.64", "REFUSED");
    }
    // Nobody listening at all.
    assert_not_blamed("dead resolver", "198.51.100.65", "no answer");
    // And through a healthy forwarder, the same names are judged as usual.
    let _d = Daemon::dnsmasq("198.51.100.66", Some(lab_resolver), &[]);
    let (code, doc, stderr) = check_json("198.51.100.66", "dual-stack-good.test");
    assert_eq!(code, 0, "{stderr}\n{doc}");
    let (code, doc, _) = check_json("198.51.100.66", "ipv4-only.test");
    assert_eq!(code, 1, "{doc}");
}

#[test]
fn a_scan_is_never_judged_against_a_faulty_resolver() {
    let _env = lab_env();
    let dir = tempfile::Builder::new().prefix("lab-resolvers-scan").tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    std::fs::write(&list, "dual-stack-good.test\nipv4-only.test\n").unwrap();
    let db = dir.path().join("v6scope.db");
    let _d = Daemon::dnsmasq("198.51.100.67", Some("198.51.100.53"), &["--filter-AAAA"]);
    let mut args = vec![
        "scan".to_string(),
        list.display().to_string(),
        "--db".into(),
        db.display().to_string(),
    ];
    args.extend(flags_with_resolver("198.51.100.67"));
    let out = v6scope_in_lab(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("strips AAAA") && stderr.contains("--resume"),
        "{stderr}"
    );
    // Nothing was judged: the run has no results.
    let runs = v6scope_in_lab(&["runs".into(), "--db".into(), db.display().to_string()]);
    let listing = String::from_utf8_lossy(&runs.stdout);
    assert!(!listing.contains(" 2/2"), "{listing}");
}

/// The lab's scenario domains, the whole-site ones (`site-…`) left out.
fn scenario_domains(env: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let plan = std::path::Path::new(&env["V6LAB_DIR"]).join("scenarios.json");
    let scenarios: Value = serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    scenarios
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["domain"].as_str().map(|d| d.trim_end_matches('.').to_string()))
        .filter(|d| !d.starts_with("site-"))
        .collect()
}

/// The statuses of a scan's verdicts per (domain, profile), from its JSON Lines.
fn statuses(jsonl: &str) -> std::collections::BTreeMap<(String, String), String> {
    let mut out = std::collections::BTreeMap::new();
    for line in jsonl.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        for verdict in v["verdicts"].as_array().unwrap() {
            let key = (
                v["domain"].as_str().unwrap().to_string(),
                verdict["profile"].as_str().unwrap().to_string(),
            );
            let previous = out.insert(key.clone(), verdict["status"].as_str().unwrap().to_string());
            assert!(previous.is_none(), "{key:?} reported twice");
        }
    }
    out
}

#[test]
fn a_resolver_that_dies_mid_run_is_waited_for_and_its_targets_retried() {
    let env = lab_env();
    let dir = tempfile::Builder::new().prefix("lab-resolvers-mid").tempdir().unwrap();
    let domains: Vec<String> = scenario_domains(&env).into_iter().take(30).collect();
    let list = dir.path().join("targets.txt");
    std::fs::write(&list, domains.join("\n") + "\n").unwrap();
    let scan = |db: &std::path::Path, jsonl: &std::path::Path, resolver: &str| {
        let mut args = vec![
            "scan".to_string(),
            list.display().to_string(),
            "--db".into(),
            db.display().to_string(),
            "--jsonl".into(),
            jsonl.display().to_string(),
            "--concurrency".into(),
            "2".into(),
        ];
        args.extend(flags_with_resolver(resolver));
        Command::new("ip")
            .args(["netns", "exec", CLIENT_NS, env!("CARGO_BIN_EXE_v6scope")])
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Baseline through a healthy forwarder.
    let forwarder = Daemon::dnsmasq("198.51.100.68", Some("198.51.100.53"), &[]);
    let (base_db, base_jsonl) = (dir.path().join("base.db"), dir.path().join("base.jsonl"));
    let started = Instant::now();
    let out = scan(&base_db, &base_jsonl, "198.51.100.68").wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let baseline = statuses(&std::fs::read_to_string(&base_jsonl).unwrap());
    assert_eq!(baseline.len(), domains.len(), "one internetnl verdict per domain");

    // The same run with the forwarder killed a moment after it starts and
    // started again 8 s later.
    let (db, jsonl) = (dir.path().join("mid.db"), dir.path().join("mid.jsonl"));
    assert!(
        took > Duration::from_millis(800),
        "the baseline took only {took:?}: too quick to interrupt"
    );
    let child = scan(&db, &jsonl, "198.51.100.68");
    // A quarter of the way in (the JSON Lines are written at the end).
    std::thread::sleep(took / 4);
    drop(forwarder);
    std::thread::sleep(Duration::from_secs(8));
    let _forwarder = Daemon::dnsmasq("198.51.100.68", Some("198.51.100.53"), &[]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("evaluating") && stderr.contains("again"),
        "no target was retried:\n{stderr}"
    );
    let disrupted = statuses(&std::fs::read_to_string(&jsonl).unwrap());
    assert_eq!(disrupted, baseline, "a resolver outage changed verdicts");
}

/// `--iterative`: no recursive resolver at all, the walk starts at the lab
/// root. Every scenario gets the verdict it gets through the lab's
/// resolver (unbound), and a dead root makes the vantage not testable.
#[test]
fn the_built_in_iterative_resolver_judges_as_the_lab_resolver_does() {
    let env = lab_env();
    let dir = tempfile::Builder::new().prefix("lab-iterative").tempdir().unwrap();
    let domains = scenario_domains(&env);
    let list = dir.path().join("targets.txt");
    std::fs::write(&list, domains.join("\n") + "\n").unwrap();
    let hints = std::path::Path::new(&env["V6LAB_DIR"]).join("unbound/root.hints");
    let scan = |name: &str, upstream: &[String]| {
        let jsonl = dir.path().join(format!("{name}.jsonl"));
        let mut args = vec![
            "scan".to_string(),
            list.display().to_string(),
            "--db".into(),
            dir.path().join(format!("{name}.db")).display().to_string(),
            "--jsonl".into(),
            jsonl.display().to_string(),
            "--profile".into(),
            "internetnl".into(),
            "--profile".into(),
            "nist-usgv6".into(),
        ];
        let without_resolver: Vec<String> = flags_with_resolver("unused")
            .into_iter()
            .take_while(|f| f != "--resolver")
            .collect();
        args.extend(without_resolver);
        args.extend(upstream.iter().cloned());
        let out = v6scope_in_lab(&args);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        statuses(&std::fs::read_to_string(&jsonl).unwrap())
    };
    let through_resolver = scan("resolver", &["--resolver".into(), env["V6LAB_RESOLVER_V4"].clone()]);
    let iterative = scan(
        "iterative",
        &["--iterative".into(), "--root-hints".into(), hints.display().to_string()],
    );
    assert_eq!(through_resolver.len(), 2 * domains.len());
    assert_eq!(iterative, through_resolver, "the iterative resolver changed verdicts");

    // A root that does not answer is the measurer's fault.
    let dead = dir.path().join("dead.hints");
    std::fs::write(
        &dead,
        ". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 198.51.100.65\n",
    )
    .unwrap();
    let mut args = vec![
        "check".to_string(),
        "dual-stack-good.test".into(),
        "--json".into(),
        "--iterative".into(),
        "--root-hints".into(),
        dead.display().to_string(),
    ];
    args.extend(
        flags_with_resolver("unused")
            .into_iter()
            .take_while(|f| f != "--resolver"),
    );
    let out = v6scope_in_lab(&args);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(4), "{doc}");
    for v in doc["verdicts"].as_array().unwrap() {
        assert_eq!(v["status"], "not_testable", "{v}");
    }
    assert!(doc.to_string().contains("iterative resolver"), "{doc}");
}
