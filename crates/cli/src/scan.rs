//! `v6scope scan`: evaluate a targets file into the store, resumably.

use super::*;

#[derive(Args)]
pub(crate) struct ScanArgs {
    /// Targets file: a domain per line, or CSV with header domain,category,organisation,region.
    pub(crate) file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) probe: ProbeArgs,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Targets evaluated at once. Over the internet most of a target's time is
    /// round trips and timeouts, so many must be in flight to use the CPU;
    /// lowered (with a warning) when the open-files limit cannot hold them.
    #[arg(long, default_value_t = 1024, env = "V6SCOPE_CONCURRENCY")]
    pub(crate) concurrency: usize,
    /// Finish an interrupted run instead of starting a new one.
    #[arg(long, value_name = "RUN")]
    pub(crate) resume: Option<i64>,
    /// Scan a campaign's targets (v6scope campaign import) instead of a file.
    #[arg(long, value_name = "NAME")]
    pub(crate) campaign: Option<String>,
    #[command(flatten)]
    pub(crate) crawl: CrawlArgs,
    /// Write schema-versioned JSON Lines (observation + verdicts) to FILE ('-' for stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) jsonl: Option<PathBuf>,
    /// Write a CSV summary (one row per domain) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Provider signatures (TOML) for the run's attribution; default: the shipped set.
    #[arg(long, value_name = "FILE", env = "V6SCOPE_PROVIDERS")]
    pub(crate) providers: Option<PathBuf>,
    /// Prefix tables (operator CSV/TOML, ip-location-db CSV, MMDB) mapping
    /// addresses to AS numbers, for attributing providers by AS (repeatable).
    #[arg(
        long = "prefixes",
        value_name = "FILE",
        env = "V6SCOPE_PREFIXES",
        value_delimiter = ','
    )]
    pub(crate) prefixes: Vec<PathBuf>,
    /// Refuse private and special-purpose target addresses (as `serve` does).
    #[arg(long)]
    pub(crate) public_only: bool,
    /// With --public-only: a special-purpose prefix that may be reached all the same (repeatable).
    #[arg(long = "scan-allow", value_name = "CIDR")]
    pub(crate) scan_allow: Vec<ipnet::IpNet>,
    /// The server's job this scan runs (set by `serve`).
    #[arg(long, hide = true)]
    pub(crate) job: Option<i64>,
}

/// How often a scan repeats the resolver self-test in the background.
pub(crate) const RESOLVER_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How long a scan waits for failing resolvers before it stops (resumable).
pub(crate) const RESOLVER_WAIT: Duration = Duration::from_secs(600);

/// What the scan writer thread receives.
pub(crate) struct Finished {
    pub(crate) idx: i64,
    pub(crate) observation: DomainObservation,
    pub(crate) verdicts: Vec<Verdict>,
}

/// Writes finished targets to the store in batches on its own thread, so
/// SQLite never blocks the probes.
pub(crate) fn spawn_store_writer(
    mut store: Box<dyn Store>,
    run: i64,
) -> (
    std::sync::mpsc::SyncSender<Finished>,
    std::thread::JoinHandle<Result<Box<dyn Store>>>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Finished>(1024);
    let handle = std::thread::spawn(move || -> Result<Box<dyn Store>> {
        let mut batch: Vec<Finished> = Vec::new();
        let flush = |store: &mut dyn Store, batch: &mut Vec<Finished>| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let results: Vec<TargetResult<'_>> = batch
                .iter()
                .map(|f| TargetResult {
                    idx: f.idx,
                    observation: &f.observation,
                    verdicts: &f.verdicts,
                })
                .collect();
            store.save_results(run, &results).context("saving results")?;
            batch.clear();
            Ok(())
        };
        loop {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(item) => {
                    batch.push(item);
                    if batch.len() >= 200 {
                        flush(&mut *store, &mut batch)?;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => flush(&mut *store, &mut batch)?,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    flush(&mut *store, &mut batch)?;
                    return Ok(store);
                }
            }
        }
    });
    (tx, handle)
}

pub(crate) fn open_output(path: &Option<PathBuf>) -> Result<Option<Box<dyn Write + Send>>> {
    Ok(match path {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::BufWriter::new(std::io::stdout()))),
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ))),
    })
}

/// A targets file, its bad lines and duplicates reported (never fatal).
pub(crate) fn read_targets(file: &std::path::Path) -> Result<Vec<Target>> {
    let bytes = std::fs::read(file).map_err(|e| usage(format!("reading {}: {e}", file.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    let parsed = targets::parse(&text);
    for bad in &parsed.bad {
        eprintln!("{}:{}: skipped: {}", file.display(), bad.line, bad.reason);
    }
    if parsed.duplicates > 0 {
        eprintln!("{}: {} duplicate domain(s) skipped", file.display(), parsed.duplicates);
    }
    if parsed.targets.is_empty() {
        return Err(usage(format!("{}: no valid targets", file.display())));
    }
    Ok(parsed.targets)
}

pub(crate) async fn scan(mut args: ScanArgs, quiet: bool) -> Result<ExitCode> {
    let mut store = args.store.open()?;
    let (run, pending, profiles) = match args.resume {
        Some(run) => {
            let info = store.run(run).map_err(|e| usage(e.to_string()))?;
            let profiles = load_profiles(&info.profiles)?;
            inherit_probe_settings(&mut args.probe, &info.config);
            if let Some(crawl) = serde_json::from_str::<serde_json::Value>(&info.config)
                .ok()
                .and_then(|c| serde_json::from_value::<CrawlArgs>(c["crawl"].clone()).ok())
            {
                args.crawl = crawl;
            }
            let pending = store.pending_targets(run)?;
            eprintln!(
                "resuming run {run} ({}): {} of {} targets left",
                info.source,
                pending.len(),
                info.targets
            );
            (run, pending, profiles)
        }
        None => {
            let profiles = load_profiles(&args.probe.profiles)?;
            let (source, targets) = match (&args.file, &args.campaign) {
                (Some(file), None) => (file.display().to_string(), read_targets(file)?),
                (None, Some(campaign)) => {
                    let targets = store.campaign_targets(campaign)?.ok_or_else(|| {
                        usage(format!(
                            "no campaign '{campaign}' in the store (v6scope campaign import)"
                        ))
                    })?;
                    if targets.is_empty() {
                        return Err(usage(format!("campaign '{campaign}' has no targets")));
                    }
                    (format!("campaign:{campaign}"), targets)
                }
                (Some(_), Some(_)) => return Err(usage("give a targets FILE or --campaign NAME, not both")),
                (None, None) => return Err(usage("give a targets FILE, --campaign NAME, or --resume RUN")),
            };
            let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
            let config = serde_json::json!({
                "resolvers": args.probe.resolvers,
                "allow_prefixes": args.probe.allow_prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "ca_files": args.probe.ca_files,
                "vantage_probes": args.probe.vantage_probes,
                "canaries": args.probe.canaries,
                "crawl": args.crawl,
            });
            let run = store.create_run(&source, &names, &config.to_string())?;
            store.add_targets(run, &targets)?;
            let pending = targets.into_iter().enumerate().map(|(i, t)| (i as i64, t)).collect();
            eprintln!("run {run}: {} targets", store.run(run)?.targets);
            (run, pending, profiles)
        }
    };
    if let Some(job) = args.job {
        store.attach_job(job, run)?;
    }
    let providers = load_providers(&args.providers)?;
    // Loaded before the scan so that a bad file stops it at once.
    let mut table = v6scope_flow::enrich::PrefixTable::default();
    for path in &args.prefixes {
        table.load(path).map_err(|e| usage(e.to_string()))?;
    }
    let policy = if args.public_only {
        public_only_policy(&args.probe, &args.scan_allow)?
    } else {
        v6scope_probe::policy::AddressPolicy::open()
    };
    let (prober, vantage, watch) = setup(&args.probe, policy).await?;
    if !vantage.resolver_problems.is_empty() {
        // A run is never judged against a faulty resolver.
        bail!(
            "run {run} not started: the resolver self-test failed ({}); fix the resolver (or --resolver) and resume with --resume {run}",
            vantage.resolver_problems.join("; ")
        );
    }
    let site = SiteWork::new(
        &prober,
        &vantage,
        &args.crawl,
        args.probe.root_hints.as_deref(),
        &profiles,
    )
    .await?;
    let site = &site;
    let total = pending.len() as u64;
    let bar = ProgressBar::new(total);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("static template"),
    );
    let (tx, writer) = spawn_store_writer(store, run);
    let mut jsonl = open_output(&args.jsonl)?;
    let mut csv_out = match &args.csv {
        Some(p) => {
            let mut w = csv::Writer::from_path(p).with_context(|| format!("creating {}", p.display()))?;
            let mut header = vec![
                "domain".to_string(),
                "category".into(),
                "organisation".into(),
                "region".into(),
            ];
            for p in &profiles {
                header.push(format!("{}_status", p.name));
                header.push(format!("{}_score", p.name));
            }
            w.write_record(&header)?;
            Some(w)
        }
        None => None,
    };
    let deadline = Duration::from_secs(args.probe.deadline);
    let concurrency = fit_open_files(args.concurrency.max(1));
    let mut tally: BTreeMap<(String, Status), u64> = BTreeMap::new();
    // Targets whose result came while the resolvers were failing are
    // evaluated again once they are healthy (rounds below).
    let mut pending = pending;
    let mut round = 0;
    let ticker = watch.spawn_ticker(RESOLVER_CHECK_EVERY);
    loop {
        let mut retry: Vec<(i64, Target)> = Vec::new();
        let mut stream = futures::stream::iter(pending.into_iter().map(|(idx, target)| {
            let prober = prober.clone();
            let vantage = vantage.clone();
            let watch = watch.clone();
            async move {
                let faults = watch.faults();
                let observation = observe(&prober, target, &vantage, deadline, site).await;
                let suspicious = v6scope_probe::health::looks_like_resolver_failure(&observation);
                let trusted = watch.health(suspicious).await.healthy() && watch.faults() == faults;
                (idx, observation, trusted)
            }
        }))
        .buffer_unordered(concurrency);
        while let Some((idx, observation, trusted)) = stream.next().await {
            if !trusted {
                bar.set_message(format!("resolver failing: {} to retry", retry.len() + 1));
                retry.push((idx, observation.target));
                continue;
            }
            let verdicts: Vec<Verdict> = profiles.iter().map(|p| assess(&observation, p)).collect();
            for v in &verdicts {
                *tally.entry((v.profile.clone(), v.status)).or_default() += 1;
            }
            if let Some(out) = jsonl.as_mut() {
                let line = serde_json::json!({
                    "schema_version": SCHEMA_VERSION,
                    "run_id": run,
                    "idx": idx,
                    "domain": observation.target.domain,
                    "verdicts": verdicts,
                    "observation": observation,
                });
                writeln!(out, "{line}")?;
            }
            if let Some(w) = csv_out.as_mut() {
                let t = &observation.target;
                let mut row = vec![
                    t.domain.clone(),
                    t.category.clone().unwrap_or_default(),
                    t.organisation.clone().unwrap_or_default(),
                    t.region.clone().unwrap_or_default(),
                ];
                for v in &verdicts {
                    row.push(v.status.to_string());
                    row.push(format!("{:.0}", v.score));
                }
                w.write_record(&row)?;
            }
            bar.set_message(observation.target.domain.clone());
            bar.inc(1);
            if tx
                .send(Finished {
                    idx,
                    observation,
                    verdicts,
                })
                .is_err()
            {
                break;
            }
        }
        drop(stream);
        if retry.is_empty() {
            break;
        }
        round += 1;
        // Wait for the resolvers (up to 10 minutes), then evaluate again.
        let mut waited = Duration::ZERO;
        while !watch.health(true).await.healthy() {
            if waited >= RESOLVER_WAIT || round > 3 {
                drop(tx);
                let _ = writer.join();
                bail!(
                    "run {run}: the resolvers kept failing ({} targets not evaluated); the run is kept: finish it with --resume {run}",
                    retry.len()
                );
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            waited += Duration::from_secs(5);
        }
        eprintln!(
            "run {run}: the resolvers answer again; evaluating {} targets again",
            retry.len()
        );
        pending = retry;
    }
    ticker.abort();
    drop(tx);
    bar.finish_and_clear();
    if let Some(mut out) = jsonl {
        out.flush()?;
    }
    if let Some(mut w) = csv_out {
        w.flush()?;
    }
    let mut store = writer.join().map_err(|_| anyhow::anyhow!("store writer panicked"))??;
    store.finish_run(run)?;
    let info = store.run(run)?;
    eprintln!("run {run}: {} of {} targets evaluated", info.done, info.targets);
    let asn_of = |address: IpAddr| Some(table.label(address).asn).filter(|asn| *asn != 0);
    let summary = v6scope_report::history::summarise_run(&mut *store, run, &providers, &asn_of)?;
    if summary.regressions + summary.improvements > 0 {
        eprintln!(
            "  against the previous run: {} regressions, {} improvements",
            summary.regressions, summary.improvements
        );
    }
    for ((profile, status), n) in &tally {
        eprintln!("  {profile}: {status} {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A resumed run probes the way it started unless told otherwise.
pub(crate) fn inherit_probe_settings(probe: &mut ProbeArgs, stored: &str) {
    let Ok(config) = serde_json::from_str::<serde_json::Value>(stored) else {
        return;
    };
    let strings = |key: &str| -> Vec<String> {
        config[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    if probe.resolvers.is_empty() {
        probe.resolvers = strings("resolvers");
    }
    if probe.allow_prefixes.is_empty() {
        probe.allow_prefixes = strings("allow_prefixes")
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    if probe.ca_files.is_empty() {
        probe.ca_files = strings("ca_files").into_iter().map(PathBuf::from).collect();
    }
    if probe.vantage_probes.is_empty() {
        probe.vantage_probes = strings("vantage_probes")
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    if probe.canaries.is_empty() {
        probe.canaries = strings("canaries");
    }
}
