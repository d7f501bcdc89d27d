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
    /// With --agents: cloud products and their endpoints (TOML, see
    /// lab/cloud-products.toml); a target that is an endpoint is counted
    /// for its product in the report's cloud indicators.
    #[arg(long, value_name = "FILE", env = "V6SCOPE_CLOUD_PRODUCTS")]
    pub(crate) cloud_products: Option<PathBuf>,
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
    /// Evaluate from the server's agents instead of this machine, each target
    /// once per vantage: `all`, or a selector KEY=VALUE[,KEY=VALUE…] on the
    /// agents' labels (`vantage=NAME` names a vantage); repeatable, any
    /// selector may match. The vantages are fixed when the run starts.
    #[arg(long = "agents", value_name = "SELECTOR")]
    pub(crate) agents: Vec<String>,
    /// With --agents: how the vantages' verdicts combine into the run's:
    /// all (every vantage must pass), majority, or any.
    #[arg(long, default_value = "all", value_name = "RULE")]
    pub(crate) rule: CombineRule,
    /// With --agents: stop (the run is kept, resumable) when no vantage has
    /// delivered a result for this many seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub(crate) agent_wait: u64,
    /// With --agents: when no vantage has delivered for --agent-wait seconds,
    /// finish the run instead of stopping: each target is combined from the
    /// vantages that delivered it; those that did not are not_testable for it
    /// (they do not vote).
    #[arg(long)]
    pub(crate) close_silent: bool,
    /// The server's job this scan runs (set by `serve`).
    #[arg(long, hide = true)]
    pub(crate) job: Option<i64>,
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

/// What a scan writes besides the store, and the tally it prints.
struct Outputs {
    run: i64,
    jsonl: Option<Box<dyn Write + Send>>,
    csv: Option<csv::Writer<std::fs::File>>,
    tally: BTreeMap<(String, Status), u64>,
}

impl Outputs {
    fn record(&mut self, judged: &Judged) -> std::io::Result<()> {
        for v in &judged.verdicts {
            *self.tally.entry((v.profile.clone(), v.status)).or_default() += 1;
        }
        let observation = &judged.observation;
        if let Some(out) = self.jsonl.as_mut() {
            let line = serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "run_id": self.run,
                "idx": judged.idx,
                "domain": observation.target.domain,
                "verdicts": judged.verdicts,
                "observation": observation,
            });
            writeln!(out, "{line}")?;
        }
        if let Some(w) = self.csv.as_mut() {
            let t = &observation.target;
            let mut row = vec![
                t.domain.clone(),
                t.category.clone().unwrap_or_default(),
                t.organisation.clone().unwrap_or_default(),
                t.region.clone().unwrap_or_default(),
            ];
            for v in &judged.verdicts {
                row.push(v.status.to_string());
                row.push(format!("{:.0}", v.score));
            }
            w.write_record(&row)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(out) = self.jsonl.as_mut() {
            out.flush()?;
        }
        if let Some(w) = self.csv.as_mut() {
            w.flush()?;
        }
        Ok(())
    }
}

/// Cancelled on SIGTERM or Ctrl-C: the scan stops taking targets, stores
/// what finished and exits 0; `--resume` does the rest.
pub(crate) fn cancel_on_signals() -> Result<CancellationToken> {
    let cancel = CancellationToken::new();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let token = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        token.cancel();
    });
    Ok(cancel)
}

pub(crate) async fn scan(args: ScanArgs, quiet: bool) -> Result<ExitCode> {
    let mut store = args.store.open()?;
    let (run, pending, config) = match args.resume {
        Some(run) => {
            let info = store.run(run).map_err(|e| usage(e.to_string()))?;
            let (mut config, legacy) =
                RunConfig::from_stored(&info.config).map_err(|e| usage(format!("run {run}: {e}")))?;
            if legacy {
                // Runs from before the configuration was kept probe as told now.
                config.probe = args.probe.settings();
                config.profiles = info.profiles.clone();
            }
            let pending = store.pending_targets(run)?;
            eprintln!(
                "resuming run {run} ({}): {} of {} targets left",
                info.source,
                pending.len(),
                info.targets
            );
            (run, pending, config)
        }
        None => {
            let mut config = args.probe.run_config(&args.crawl);
            if !args.agents.is_empty() {
                let vantages = select_vantages(&store.agents()?, &args.agents)?;
                eprintln!("vantages: {}", vantages.join(", "));
                config.vantage = VantageSettings::default();
                config.fleet = Some(FleetSettings {
                    vantages,
                    rule: args.rule,
                });
            }
            // Bad profiles stop the scan before a run exists.
            load_profiles(&config.profiles).map_err(scan_error)?;
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
            let names: Vec<String> = load_profiles(&config.profiles)
                .map_err(scan_error)?
                .iter()
                .map(|p| p.name.clone())
                .collect();
            let run = store.create_run(&source, &names, &config.to_stored())?;
            store.add_targets(run, &targets)?;
            if let Some(fleet) = &config.fleet {
                store.set_run_vantages(run, &fleet.vantages)?;
            }
            let pending = targets.into_iter().enumerate().map(|(i, t)| (i as i64, t)).collect();
            eprintln!("run {run}: {} targets", store.run(run)?.targets);
            (run, pending, config)
        }
    };
    if let Some(job) = args.job {
        store.attach_job(job, run)?;
    }
    let profiles = load_profiles(&store.run_profiles(run)?).map_err(scan_error)?;
    let providers = load_providers(&args.providers)?;
    // Loaded before the scan so that a bad file stops it at once.
    let mut table = v6scope_flow::enrich::PrefixTable::default();
    for path in &args.prefixes {
        table.load(path).map_err(|e| usage(e.to_string()))?;
    }
    if let Some(fleet) = &config.fleet {
        let products = match &args.cloud_products {
            Some(path) => Some(v6scope_assess::products::Products::load(path).map_err(|e| usage(e.to_string()))?),
            None => None,
        };
        let cancel = cancel_on_signals()?;
        let wait = Duration::from_secs(args.agent_wait);
        let sources = Sources {
            providers: &providers,
            table: &table,
            products: products.as_ref(),
        };
        let patience = Patience {
            wait,
            close_silent: args.close_silent,
        };
        return own_fleet_run(store, run, fleet, patience, quiet, &cancel, &sources).await;
    }
    let vantage = args.probe.vantage_settings().or(&config.vantage);
    let public_only = args.public_only.then_some(args.scan_allow.as_slice());
    let bar = ProgressBar::new(pending.len() as u64);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("static template"),
    );
    let runner = Runner::start(&config, &vantage, public_only)
        .await
        .map_err(scan_error)?
        .with_progress(bar.clone());
    let problems = &runner.vantage().resolver_problems;
    if !problems.is_empty() {
        // A run is never judged against a faulty resolver.
        bail!(
            "run {run} not started: the resolver self-test failed ({}); fix the resolver (or --resolver) and resume with --resume {run}",
            problems.join("; ")
        );
    }
    let csv_out = match &args.csv {
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
    let outputs = Arc::new(std::sync::Mutex::new(Outputs {
        run,
        jsonl: open_output(&args.jsonl)?,
        csv: csv_out,
        tally: BTreeMap::new(),
    }));
    let recorder = outputs.clone();
    let mut sink = StoreSink::new(store, run, profiles).with_observer(Box::new(move |judged| {
        let mut outputs = recorder
            .lock()
            .map_err(|_| SinkError::Writer("outputs poisoned".into()))?;
        Ok(outputs.record(judged)?)
    }));
    let cancel = cancel_on_signals()?;
    let concurrency = fit_open_files(args.concurrency.max(1));
    let outcome = runner.run(pending, concurrency, &mut sink, &cancel).await;
    bar.finish_and_clear();
    let mut store = sink.finish()?;
    let mut outputs = std::mem::replace(
        &mut *outputs.lock().map_err(|_| anyhow::anyhow!("outputs poisoned"))?,
        Outputs {
            run,
            jsonl: None,
            csv: None,
            tally: BTreeMap::new(),
        },
    );
    outputs.flush()?;
    match outcome.map_err(scan_error)? {
        Outcome::Finished => {}
        Outcome::Cancelled { left } => {
            eprintln!(
                "run {run} stopped: {} targets left; finish it with --resume {run}",
                left.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Outcome::ResolversFailing { left } => bail!(
            "run {run}: the resolvers kept failing ({} targets not evaluated); the run is kept: finish it with --resume {run}",
            left.len()
        ),
    }
    summarise(&mut *store, run, &providers, &table, &outputs.tally)?;
    Ok(ExitCode::SUCCESS)
}

/// Finishes a run: its summary, the changes against the previous run, the tally.
fn summarise(
    store: &mut dyn Store,
    run: i64,
    providers: &v6scope_assess::providers::Providers,
    table: &v6scope_flow::enrich::PrefixTable,
    tally: &BTreeMap<(String, Status), u64>,
) -> Result<()> {
    store.finish_run(run)?;
    let info = store.run(run)?;
    eprintln!("run {run}: {} of {} targets evaluated", info.done, info.targets);
    let asn_of = |address: IpAddr| asn_in(table, address);
    let summary = v6scope_report::history::summarise_run(store, run, providers, &asn_of)?;
    if summary.regressions + summary.improvements > 0 {
        eprintln!(
            "  against the previous run: {} regressions, {} improvements",
            summary.regressions, summary.improvements
        );
    }
    for ((profile, status), n) in tally {
        eprintln!("  {profile}: {status} {n}");
    }
    Ok(())
}

/// The vantages of the registered agents a selector picks: `all`, or
/// KEY=VALUE pairs that must all match (`vantage=NAME` is the vantage).
pub(crate) fn select_vantages(agents: &[v6scope_store::AgentRow], selectors: &[String]) -> Result<Vec<String>> {
    let parsed: Vec<Selector> = selectors
        .iter()
        .map(|s| s.parse().map_err(|e| usage(format!("--agents {e}"))))
        .collect::<Result<_>>()?;
    let mut vantages: Vec<String> = agents
        .iter()
        .filter(|a| !a.revoked)
        .filter_map(|a| {
            let vantage = a.vantage.as_ref()?;
            parsed
                .iter()
                .any(|s| s.matches(vantage, &a.labels))
                .then(|| vantage.clone())
        })
        .collect();
    vantages.sort();
    vantages.dedup();
    if vantages.is_empty() {
        return Err(usage(format!(
            "no registered agent matches --agents {} (v6scope agents list)",
            selectors.join(" --agents ")
        )));
    }
    Ok(vantages)
}

/// The AS of an address in the prefix tables (none when they do not say).
fn asn_in(table: &v6scope_flow::enrich::PrefixTable, address: IpAddr) -> Option<u32> {
    Some(table.label(address).asn).filter(|asn| *asn != 0)
}

/// How long a fleet run's owner waits for silent vantages, and what then.
#[derive(Clone, Copy)]
struct Patience {
    wait: Duration,
    /// Finish the run without them (else stop, keeping it for --resume).
    close_silent: bool,
}

/// What a fleet run's owner attributes results with.
struct Sources<'a> {
    providers: &'a v6scope_assess::providers::Providers,
    table: &'a v6scope_flow::enrich::PrefixTable,
    products: Option<&'a v6scope_assess::products::Products>,
}

/// The owner of a fleet run: combines each target's per-vantage results as
/// soon as every vantage has delivered it, until the run is complete.
async fn own_fleet_run(
    mut store: Box<dyn Store>,
    run: i64,
    fleet: &FleetSettings,
    patience: Patience,
    quiet: bool,
    cancel: &CancellationToken,
    sources: &Sources<'_>,
) -> Result<ExitCode> {
    let Patience { wait, close_silent } = patience;
    let (providers, table) = (sources.providers, sources.table);
    let asn_of = |address: IpAddr| asn_in(table, address);
    let attribution = EdgeAttribution {
        providers,
        asn_of: &asn_of,
        products: sources.products,
    };
    let info = store.run(run)?;
    let bar = ProgressBar::new(info.targets as u64);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} {msg}")
            .expect("static template"),
    );
    bar.set_position(info.done as u64);
    eprintln!(
        "run {run}: waiting for the agents of {} (rule: {})",
        fleet.vantages.join(", "),
        fleet.rule
    );
    let mut tally: BTreeMap<(String, Status), u64> = BTreeMap::new();
    let mut delivered = -1i64;
    let mut last_news = std::time::Instant::now();
    loop {
        let ready = store.ready_targets(run, 500)?;
        if !ready.is_empty() {
            let n = combine_batch(&mut *store, run, fleet.rule, &ready, &attribution, &mut tally)?;
            bar.inc(n as u64);
            last_news = std::time::Instant::now();
            continue;
        }
        let (done, _) = store.observation_count(run)?;
        if done >= info.targets {
            break;
        }
        let progress = store.fleet_progress(run, v6scope_store::now_unix())?;
        let total: i64 = progress.iter().map(|p| p.done).sum();
        if total != delivered {
            delivered = total;
            last_news = std::time::Instant::now();
            let parts: Vec<String> = progress.iter().map(|p| format!("{} {}", p.vantage, p.done)).collect();
            bar.set_message(parts.join(" · "));
        }
        if last_news.elapsed() >= wait && close_silent {
            let n = close_silent_vantages(&mut *store, run, fleet, wait, &attribution, &mut tally)?;
            eprintln!(
                "run {run}: no vantage delivered for {} s; {n} targets combined without the vantages that did not deliver them (not_testable from those)",
                wait.as_secs()
            );
            bar.inc(n as u64);
            break;
        }
        if last_news.elapsed() >= wait {
            bail!(
                "run {run}: no vantage delivered a result for {} s ({}); the run is kept: finish it with --resume {run}",
                wait.as_secs(),
                progress
                    .iter()
                    .map(|p| format!("{}: {} of {}", p.vantage, p.done, info.targets))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                bar.finish_and_clear();
                eprintln!("run {run} stopped waiting; the agents go on: resume it with --resume {run}");
                return Ok(ExitCode::SUCCESS);
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    bar.finish_and_clear();
    summarise(&mut *store, run, providers, table, &tally)?;
    Ok(ExitCode::SUCCESS)
}

/// Combines targets from their per-vantage results and stores them (edge
/// sightings first: a crash before the combined results are saved leaves
/// the targets to combine again, and their edges are not stored twice).
fn combine_batch(
    store: &mut dyn Store,
    run: i64,
    rule: CombineRule,
    ready: &[(i64, Vec<v6scope_store::VantageResultRow>)],
    attribution: &EdgeAttribution<'_>,
    tally: &mut BTreeMap<(String, Status), u64>,
) -> Result<usize> {
    let combined: Vec<(i64, v6scope_model::DomainObservation, Vec<v6scope_model::Verdict>)> = ready
        .iter()
        .filter_map(|(idx, rows)| {
            let results: Vec<VantageVerdicts<'_>> = rows
                .iter()
                .map(|r| VantageVerdicts {
                    vantage: &r.vantage,
                    observation: &r.observation,
                    verdicts: &r.verdicts,
                })
                .collect();
            combine(rule, &results).map(|(o, v)| (*idx, o, v))
        })
        .collect();
    for (_, _, verdicts) in &combined {
        for v in verdicts {
            *tally.entry((v.profile.clone(), v.status)).or_default() += 1;
        }
    }
    let batch: Vec<v6scope_store::TargetResult<'_>> = combined
        .iter()
        .map(|(idx, observation, verdicts)| v6scope_store::TargetResult {
            idx: *idx,
            observation,
            verdicts,
        })
        .collect();
    let labels = v6scope_store::vantage_labels(&store.agents()?);
    let edges: Vec<v6scope_store::EdgeRow> = ready
        .iter()
        .flat_map(|(idx, rows)| {
            rows.iter()
                .flat_map(|r| edge_rows(*idx, &r.vantage, &r.observation, labels.get(&r.vantage), attribution))
                .collect::<Vec<_>>()
        })
        .collect();
    store.save_edges(run, &edges)?;
    store.save_combined(run, &batch)?;
    Ok(batch.len())
}

/// Finishes the targets some vantage never delivered: that vantage's part is
/// a not_testable result saying so, and the target is combined from the rest.
fn close_silent_vantages(
    store: &mut dyn Store,
    run: i64,
    fleet: &FleetSettings,
    wait: Duration,
    attribution: &EdgeAttribution<'_>,
    tally: &mut BTreeMap<(String, Status), u64>,
) -> Result<usize> {
    let profiles = load_profiles(&store.run_profiles(run)?).map_err(scan_error)?;
    let pending = store.pending_targets(run)?;
    let mut done = 0;
    for chunk in pending.chunks(500) {
        let mut batch = Vec::with_capacity(chunk.len());
        for (idx, target) in chunk {
            let mut rows = store.vantage_results(run, *idx)?;
            for vantage in &fleet.vantages {
                if rows.iter().any(|r| &r.vantage == vantage) {
                    continue;
                }
                let observation = v6scope_scan::unprobed(
                    target.clone(),
                    &v6scope_model::Vantage::both(),
                    0.0,
                    v6scope_model::ProbeError::new(
                        v6scope_model::ErrorKind::NotTestable,
                        format!(
                            "vantage {vantage} delivered no result for this target (no vantage delivered for {} s)",
                            wait.as_secs()
                        ),
                    ),
                );
                let verdicts = judge(&observation, &profiles);
                rows.push(v6scope_store::VantageResultRow {
                    vantage: vantage.clone(),
                    agent: String::new(),
                    observation,
                    verdicts,
                });
            }
            rows.sort_by(|a, b| a.vantage.cmp(&b.vantage));
            batch.push((*idx, rows));
        }
        done += combine_batch(store, run, fleet.rule, &batch, attribution, tally)?;
    }
    Ok(done)
}
