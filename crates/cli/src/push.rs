//! `v6scope collect --push`: closed batches go to a spool directory first
//! (written and synced before anything is sent), then to the server, oldest
//! first; a batch leaves the spool only when the server has stored it (or
//! had stored it before). Killing the collector, even with `kill -9`, loses
//! at most the interval in progress. And `v6scope collectors`: the server's
//! collectors and their tokens.

use crate::{StoreArgs, usage};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use v6scope_flow::aggregate::Aggregator;
use v6scope_flow::push::{Batch, BatchAck};

#[derive(Args, Clone)]
pub(crate) struct PushArgs {
    /// Send each closed interval to this server (`https://platform/`)
    /// instead of the local store: counters and sketches, never addresses.
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,
    /// The collector's token (`v6scope collectors add`), first line of FILE.
    #[arg(long, value_name = "FILE", requires = "push")]
    token: Option<PathBuf>,
    /// Where batches wait until the server has them.
    #[arg(long, value_name = "DIR", default_value = "v6scope-spool", requires = "push")]
    spool: PathBuf,
    /// Largest spool, in MiB. When full, new batches are dropped (the
    /// oldest are kept and sent first), each with a warning and counted.
    #[arg(long, value_name = "MIB", default_value_t = 1024, requires = "push")]
    spool_max_mib: u64,
    /// CA certificate (PEM) for a server with a private CA.
    #[arg(long, value_name = "FILE", requires = "push")]
    push_ca_file: Option<PathBuf>,
}

/// The spool: `stream` (random, made once), `NNNNNNNNNNNNNNNNNNNN.json`
/// batches, `next-seq` and `dropped`.
pub(crate) struct Spool {
    dir: PathBuf,
    stream: String,
    next_seq: i64,
    max_bytes: u64,
    dropped: Arc<AtomicI64>,
    wake: Arc<tokio::sync::Notify>,
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_number(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Spooled batches, oldest first.
fn spooled(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the spool {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let seq: i64 = name.strip_suffix(".json")?.parse().ok()?;
            Some((seq, e.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn spool_bytes(dir: &Path) -> u64 {
    spooled(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, p)| p.metadata().ok())
        .map(|m| m.len())
        .sum()
}

impl Spool {
    fn open(dir: &Path, max_bytes: u64) -> Result<Spool> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the spool {}", dir.display()))?;
        let stream_file = dir.join("stream");
        let stream = match std::fs::read_to_string(&stream_file) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let mut bytes = [0u8; 12];
                getrandom::fill(&mut bytes).context("the OS random source")?;
                let stream = hex::encode(bytes);
                write_synced(&stream_file, stream.as_bytes())?;
                stream
            }
        };
        let newest = spooled(dir)?.last().map_or(0, |(seq, _)| *seq);
        let next_seq = read_number(&dir.join("next-seq")).max(newest + 1).max(1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            stream,
            next_seq,
            max_bytes,
            dropped: Arc::new(AtomicI64::new(read_number(&dir.join("dropped")))),
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Writes a closed batch to disk (synced) and wakes the sender.
    pub(crate) fn add(&mut self, agg: &Aggregator, interval: u64) -> Result<()> {
        let seq = self.next_seq;
        let batch = Batch::of(agg, interval, &self.stream, seq, self.dropped.load(Ordering::SeqCst));
        let bytes = serde_json::to_vec(&batch)?;
        if spool_bytes(&self.dir) + bytes.len() as u64 > self.max_bytes {
            let dropped = self.dropped.fetch_add(1, Ordering::SeqCst) + 1;
            write_synced(&self.dir.join("dropped"), dropped.to_string().as_bytes())?;
            tracing::error!(
                "the spool {} is full ({} MiB): batch {seq} dropped ({dropped} so far); the server has been \
                 unreachable for too long",
                self.dir.display(),
                self.max_bytes >> 20
            );
            eprintln!("WARNING: spool full, batch {seq} dropped ({dropped} dropped so far)");
            return Ok(());
        }
        // The sequence number is taken for good before the batch exists, so
        // a crash between the two never reuses it.
        self.next_seq += 1;
        write_synced(&self.dir.join("next-seq"), self.next_seq.to_string().as_bytes())?;
        write_synced(&self.dir.join(format!("{seq:020}.json")), &bytes)?;
        self.wake.notify_one();
        Ok(())
    }

    pub(crate) fn dropped(&self) -> i64 {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// Sends spooled batches, oldest first, until told to stop; then tries
/// for `drain` more to empty the spool.
pub(crate) struct Sender {
    pub spool: Spool,
    task: tokio::task::JoinHandle<SendStats>,
    stop: Arc<tokio::sync::Notify>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct SendStats {
    pub sent: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub left_in_spool: u64,
}

impl Sender {
    pub(crate) fn start(args: &PushArgs) -> Result<Sender> {
        let url = args.push.clone().unwrap_or_default();
        let base = reqwest::Url::parse(&url).map_err(|e| usage(format!("--push {url}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(usage(format!("--push {url}: expected an http:// or https:// URL")));
        }
        let endpoint = base
            .join("collector/v1/batches")
            .map_err(|e| usage(format!("--push {url}: {e}")))?;
        let token_file = args.token.as_ref().ok_or_else(|| usage("--push needs --token FILE"))?;
        let token = std::fs::read_to_string(token_file)
            .map_err(|e| usage(format!("reading the token {}: {e}", token_file.display())))?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(usage(format!("{}: no token in the file", token_file.display())));
        }
        let client = crate::agent::agent_http_client("v6scope-collector", args.push_ca_file.as_deref())?;
        let spool = Spool::open(&args.spool, args.spool_max_mib.max(1) << 20)?;
        let left = spooled(&spool.dir)?.len();
        if left > 0 {
            eprintln!(
                "{left} batch(es) waiting in the spool {}: sending them first",
                spool.dir.display()
            );
        }
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn(send_loop(
            client,
            endpoint,
            token,
            spool.dir.clone(),
            spool.wake.clone(),
            stop.clone(),
            stopping.clone(),
        ));
        Ok(Sender {
            spool,
            task,
            stop,
            stopping,
        })
    }

    /// Stops the sender after it has tried, for at most `drain`, to send
    /// what is spooled; what is left stays for the next start.
    pub(crate) async fn finish(self, drain: Duration) -> SendStats {
        self.stopping.store(true, Ordering::SeqCst);
        self.spool.wake.notify_one();
        let stop = self.stop.clone();
        let mut task = self.task;
        let stats = match tokio::time::timeout(drain, &mut task).await {
            Ok(done) => done.unwrap_or_default(),
            Err(_) => {
                stop.notify_one();
                task.await.unwrap_or_default()
            }
        };
        if stats.left_in_spool > 0 {
            eprintln!(
                "{} batch(es) left in the spool {}: they are sent at the next start",
                stats.left_in_spool,
                self.spool.dir.display()
            );
        }
        stats
    }
}

async fn send_loop(
    client: reqwest::Client,
    endpoint: reqwest::Url,
    token: String,
    dir: PathBuf,
    wake: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
) -> SendStats {
    let mut stats = SendStats::default();
    let mut backoff = Duration::from_millis(500);
    let rejected_dir = dir.join("rejected");
    loop {
        let next = spooled(&dir).ok().and_then(|f| f.into_iter().next());
        let Some((seq, path)) = next else {
            if stopping.load(Ordering::SeqCst) {
                break;
            }
            tokio::select! {
                _ = wake.notified() => continue,
                _ = stop.notified() => break,
            }
        };
        let body = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("spooled batch {}: {e}", path.display());
                let _ = std::fs::create_dir_all(&rejected_dir);
                let _ = std::fs::rename(&path, rejected_dir.join(path.file_name().unwrap_or_default()));
                continue;
            }
        };
        let sent = client
            .post(endpoint.clone())
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let retry = match sent {
            Ok(response) if response.status().is_success() => match response.json::<BatchAck>().await {
                Ok(ack) if ack.seq == seq => {
                    if ack.status == v6scope_flow::push::BatchStatus::Duplicate {
                        stats.duplicates += 1;
                    } else {
                        stats.sent += 1;
                    }
                    let _ = std::fs::remove_file(&path);
                    backoff = Duration::from_millis(500);
                    false
                }
                other => {
                    tracing::warn!("batch {seq}: the server's answer was not an acknowledgement: {other:?}");
                    true
                }
            },
            Ok(response)
                if response.status().is_client_error()
                    && !matches!(response.status().as_u16(), 401 | 403 | 408 | 429) =>
            {
                // The server will never take it: keep it aside for a human,
                // and go on with the next.
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                tracing::error!("batch {seq} refused by the server ({status}): {text}");
                eprintln!("batch {seq} refused by the server ({status}): {text}");
                let _ = std::fs::create_dir_all(&rejected_dir);
                let _ = std::fs::rename(&path, rejected_dir.join(path.file_name().unwrap_or_default()));
                stats.rejected += 1;
                false
            }
            Ok(response) => {
                tracing::warn!("batch {seq}: the server answered {}; retrying", response.status());
                true
            }
            Err(e) => {
                tracing::warn!("batch {seq}: the server is unreachable ({e}); retrying");
                true
            }
        };
        if retry {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.notified() => break,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
    stats.left_in_spool = spooled(&dir).map(|f| f.len() as u64).unwrap_or(0);
    stats
}

#[derive(Subcommand)]
pub(crate) enum CollectorsCommand {
    /// Create a collector of an operator and its token (written to
    /// --token-file, or printed once).
    Add {
        name: String,
        /// The carrier its figures are attributed to.
        #[arg(long)]
        operator: String,
        /// Where its exporters sit: metro-egress, mobile-lte, mobile-5g,
        /// backbone-exchange or international-gateway (for the flow-based
        /// shares beside the reported ones).
        #[arg(long, value_name = "POINT", value_parser = |s: &str| s.parse::<v6scope_store::MeasurementPoint>())]
        point: Option<v6scope_store::MeasurementPoint>,
        /// Write the token here (mode 0600) instead of printing it.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a collector's token: its batches are refused from then on.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List collectors: operator, last push, batches, duplicates, spool drops.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) fn collectors(command: CollectorsCommand) -> Result<ExitCode> {
    match command {
        CollectorsCommand::Add {
            name,
            operator,
            point,
            token_file,
            store,
        } => {
            crate::agent::check_name("collector name", &name)?;
            crate::agent::check_name("operator", &operator)?;
            let token = v6scope_server::new_collector_token();
            store
                .open()?
                .add_collector(&name, &operator, point, &v6scope_server::token_hash(&token))
                .map_err(|e| usage(e.to_string()))?;
            crate::agent::hand_out_token(&format!("collector {name}"), &token, token_file.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        CollectorsCommand::Revoke { name, store } => {
            if store.open_existing()?.revoke_collector(&name)? {
                eprintln!("collector {name}: token revoked");
                Ok(ExitCode::SUCCESS)
            } else {
                Err(usage(format!("no collector named '{name}'")))
            }
        }
        CollectorsCommand::List { json, store } => {
            let now = v6scope_store::now_unix();
            for c in store.open_existing()?.collectors()? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "name": c.name, "operator": c.operator, "revoked": c.revoked,
                            "point": c.point.map(|p| p.as_str()),
                            "created_at": c.created_at, "last_push": c.last_push,
                            "last_interval_end": c.last_interval_end, "batches": c.batches, "rows": c.rows,
                            "duplicates": c.duplicates, "spool_dropped": c.spool_dropped,
                        })
                    );
                } else {
                    let ago = |t: Option<i64>| t.map_or_else(|| "never".to_string(), |t| format!("{} s ago", now - t));
                    println!(
                        "{}\t{}\t{}\tlast push {}\tnewest interval ended {}\t{} batches\t{} rows\t{} duplicates\t{} dropped",
                        c.name,
                        c.operator,
                        if c.revoked { "revoked" } else { "active" },
                        ago(c.last_push),
                        ago(c.last_interval_end),
                        c.batches,
                        c.rows,
                        c.duplicates,
                        c.spool_dropped
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
