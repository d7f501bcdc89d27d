//! The clients under test: presets for the common ones, or any command with
//! `{url}` in it.

use serde::Serialize;
use std::path::Path;

/// A client: its name in the report and the command that fetches `{url}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub name: String,
    pub argv: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("client '{0}': not a preset (curl, wget, python, chromium, v6scope) and no {{url}} in it")]
    NoUrl(String),
    #[error("client '{0}': unbalanced quotes")]
    Quotes(String),
}

/// The presets' names, in the order a report lists them.
pub const PRESETS: &[&str] = &["curl", "wget", "python", "chromium", "v6scope"];

impl Client {
    /// A preset by name, or a command line (shell quoting) containing `{url}`.
    /// `self_exe` is this program, for the `v6scope` preset (its own HTTP
    /// client, the one agents and webhooks use); `workdir` holds the
    /// browser's throw-away profile.
    pub fn parse(spec: &str, self_exe: &Path, workdir: &Path) -> Result<Client, ClientError> {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_string()).collect::<Vec<_>>();
        let argv = match spec {
            // Defaults as a user has them; only the output goes nowhere.
            "curl" => words(&["curl", "-sS", "-o", "/dev/null", "{url}"]),
            // One try: a retry would hide what the first attempt did.
            "wget" => words(&["wget", "-q", "-O", "/dev/null", "--tries=1", "{url}"]),
            "python" => words(&[
                "python3",
                "-c",
                "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=60).read()",
                "{url}",
            ]),
            "chromium" => {
                let profile = workdir.join("chromium-profile");
                let mut argv = words(&[
                    "chromium",
                    "--headless",
                    // Root in a namespace: the sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    // An upgrade to https:// would race on port 443 first.
                    "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
                    // Chromium trusts its own NSS store, not /etc/ssl where
                    // the bench puts its CA; this changes no connection timing.
                    "--ignore-certificate-errors",
                ]);
                argv.push(format!("--user-data-dir={}", profile.display()));
                argv.extend(words(&["--dump-dom", "{url}"]));
                argv
            }
            "v6scope" => vec![
                self_exe.display().to_string(),
                "fetch".into(),
                "--ca-file".into(),
                "{ca}".into(),
                "{url}".into(),
            ],
            _ => {
                let argv = shlex::split(spec).ok_or_else(|| ClientError::Quotes(spec.to_string()))?;
                if !argv.iter().any(|w| w.contains("{url}")) {
                    return Err(ClientError::NoUrl(spec.to_string()));
                }
                let name = argv
                    .first()
                    .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
                    .unwrap_or_default();
                return Ok(Client { name, argv });
            }
        };
        Ok(Client {
            name: spec.to_string(),
            argv,
        })
    }

    /// The command for one URL; `{ca}` is the bench's CA file (clients
    /// that do not read the system's trust store are told it by flag).
    pub fn command_for(&self, url: &str, ca_file: &Path) -> Vec<String> {
        let ca = ca_file.display().to_string();
        self.argv
            .iter()
            .map(|w| w.replace("{url}", url).replace("{ca}", &ca))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_commands() {
        let exe = Path::new("/usr/bin/v6scope");
        let dir = Path::new("/tmp/x");
        let curl = Client::parse("curl", exe, dir).unwrap();
        let ca = Path::new("/tmp/ca.pem");
        assert_eq!(curl.command_for("http://a.test/", ca).last().unwrap(), "http://a.test/");
        let own = Client::parse("v6scope", exe, dir).unwrap();
        assert_eq!(
            own.command_for("U", ca),
            ["/usr/bin/v6scope", "fetch", "--ca-file", "/tmp/ca.pem", "U"]
        );
        let custom = Client::parse("/opt/x/fetcher --quiet --ca {ca} '{url}'", exe, dir).unwrap();
        assert_eq!(custom.name, "fetcher");
        assert_eq!(
            custom.command_for("U", ca),
            ["/opt/x/fetcher", "--quiet", "--ca", "/tmp/ca.pem", "U"]
        );
        assert!(matches!(Client::parse("firefox", exe, dir), Err(ClientError::NoUrl(_))));
        assert!(matches!(
            Client::parse("x '{url}", exe, dir),
            Err(ClientError::Quotes(_))
        ));
    }
}
