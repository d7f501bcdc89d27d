//! `report`, `plans`, `campaign`, `assess` and `runs`: reading and re-judging the store.

use super::*;

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Plan name or TOML file.
    #[arg(long, default_value = "cn-2017-action-plan")]
    pub(crate) plan: String,
    /// Campaign whose runs give the site-support rates, tables, changes and
    /// worst sites.
    #[arg(long, value_name = "NAME")]
    pub(crate) campaign: Option<String>,
    /// The month reported on (default: the month of the campaign's latest run).
    #[arg(long, value_name = "YYYY-MM")]
    pub(crate) period: Option<String>,
    /// Profile whose verdict "pass" counts as IPv6 support.
    #[arg(long, default_value = "internetnl")]
    pub(crate) profile: String,
    /// zh-CN or en.
    #[arg(long, default_value = "en")]
    pub(crate) lang: String,
    /// md, json, csv (long format), html (one self-contained page with inline
    /// SVG charts) or pdf (printed by headless Chromium; needs --out).
    #[arg(long, default_value = "md")]
    pub(crate) format: String,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Subcommand)]
pub(crate) enum CampaignCommand {
    /// Create or replace a campaign from a targets file (CSV with
    /// domain,category,organisation,region, or a domain per line).
    Import {
        name: String,
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the campaigns in the store.
    List(StoreArgs),
}

#[derive(Args)]
pub(crate) struct PlansArgs {
    /// cn-2017-action-plan, cn-2024-work-plan, or a TOML file.
    pub(crate) plan: Option<String>,
    /// Language of the milestone texts: zh-CN or en.
    #[arg(long, default_value = "en")]
    pub(crate) lang: String,
    /// JSON output.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct AssessArgs {
    #[arg(long)]
    pub(crate) run: i64,
    /// Profile name or TOML file.
    #[arg(long, default_value = "internetnl")]
    pub(crate) profile: String,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Print verdicts as JSON Lines.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn reassess(args: AssessArgs) -> Result<ExitCode> {
    let profile = Profile::load(&args.profile).map_err(|e| usage(e.to_string()))?;
    let mut store = args.store.open()?;
    store.run(args.run).map_err(|e| usage(e.to_string()))?;
    let mut verdicts = Vec::new();
    store.for_each_observation(args.run, &mut |idx, observation| {
        verdicts.push((idx, assess(&observation, &profile)));
    })?;
    store.save_verdicts(args.run, &verdicts)?;
    v6scope_report::history::summarise_run(&mut *store, args.run, &load_providers(&None)?, &|_| None)?;
    let mut tally: BTreeMap<Status, u64> = BTreeMap::new();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (_, v) in &verdicts {
        *tally.entry(v.status).or_default() += 1;
        if args.json {
            writeln!(out, "{}", serde_json::to_string(v)?)?;
        }
    }
    eprintln!(
        "run {}: {} targets judged under {}",
        args.run,
        verdicts.len(),
        profile.name
    );
    for (status, n) in tally {
        eprintln!("  {status}: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn report(args: ReportArgs) -> Result<ExitCode> {
    // The report itself lives in the library, so the server makes the same one.
    use v6scope_report::monthly::{self, ReportRequest};
    let zh = match args.lang.as_str() {
        "zh-CN" | "zh" => true,
        "en" => false,
        other => bail!(usage(format!("--lang {other}: zh-CN or en"))),
    };
    let format = args.format.as_str();
    if !matches!(format, "md" | "json" | "html" | "csv" | "pdf") {
        bail!(usage(format!("--format {format}: md, json, html, csv or pdf")));
    }
    if format == "pdf" && args.out.is_none() {
        bail!(usage("--format pdf needs --out FILE"));
    }
    let store = args.store.open_existing()?;
    let plan = v6scope_report::plan::Plan::load(&args.plan).map_err(|e| usage(e.to_string()))?;
    let request = ReportRequest {
        campaign: args.campaign,
        period: args.period,
        plan,
        profile: args.profile,
        zh,
    };
    let clickhouse = args.store.open_traffic()?;
    let traffic: &dyn v6scope_store::TrafficCounters = match &clickhouse {
        Some(ch) => ch,
        None => &*store,
    };
    let report = monthly::build_with(&*store, traffic, &request).map_err(|e| {
        if e.is_usage() {
            usage(e.to_string())
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let text = match format {
        "json" => monthly::json(&report),
        "csv" => monthly::csv(&report),
        "html" => monthly::html(&report),
        "pdf" => {
            let out = args.out.as_deref().unwrap_or(std::path::Path::new("report.pdf"));
            monthly::pdf(&monthly::html(&report), out)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => monthly::markdown(&report),
    };
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn campaign(command: CampaignCommand) -> Result<ExitCode> {
    match command {
        CampaignCommand::Import { name, file, store } => {
            if name.trim().is_empty() || name.len() > 200 {
                bail!(usage("a campaign name of 1 to 200 characters"));
            }
            let targets = read_targets(&file)?;
            let mut store = store.open()?;
            store.put_campaign(&name, &targets)?;
            let mut by_category: BTreeMap<String, usize> = BTreeMap::new();
            for t in &targets {
                *by_category.entry(t.category.clone().unwrap_or_default()).or_default() += 1;
            }
            println!("campaign {name}: {} targets", targets.len());
            for (category, n) in by_category {
                println!(
                    "  {:<32} {n}",
                    if category.is_empty() {
                        "(no category)"
                    } else {
                        &category
                    }
                );
            }
        }
        CampaignCommand::List(store) => {
            let store = store.open_existing()?;
            println!("{:<32}  {:<20}  {:>8}", "campaign", "created", "targets");
            for c in store.campaigns()? {
                println!("{:<32}  {:<20}  {:>8}", c.name, c.created_at, c.targets);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn plans(args: PlansArgs) -> Result<ExitCode> {
    use v6scope_report::plan::{Plan, builtin_names};
    let zh = match args.lang.as_str() {
        "zh-CN" | "zh" => true,
        "en" => false,
        other => bail!(usage(format!("--lang {other}: zh-CN or en"))),
    };
    let Some(name) = &args.plan else {
        for name in builtin_names() {
            let plan = Plan::load(name)?;
            println!("{name:<24}  {}", if zh { &plan.title_zh } else { &plan.title_en });
        }
        return Ok(ExitCode::SUCCESS);
    };
    let plan = Plan::load(name).map_err(|e| usage(e.to_string()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({}, {})",
        if zh { &plan.title_zh } else { &plan.title_en },
        plan.issued,
        plan.source
    );
    for m in &plan.milestones {
        let target = match (m.target, m.indicator.is_share()) {
            (Some(t), true) => format!("{:.0} %", t * 100.0),
            (Some(t), false) => format!("{t}"),
            (None, _) => "-".into(),
        };
        let indicator = serde_json::to_value(m.indicator)?;
        println!(
            "  {}  {:<22} {:<24} {:>12}  {}",
            m.deadline,
            indicator.as_str().unwrap_or_default(),
            m.category.as_deref().unwrap_or(""),
            target,
            if zh { &m.zh } else { &m.en }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn runs(args: StoreArgs) -> Result<ExitCode> {
    let store = args.open_existing()?;
    println!(
        "{:>5}  {:<20}  {:<20}  {:>9}  {:>9}  profiles  source",
        "run", "started", "finished", "targets", "done"
    );
    for r in store.runs()? {
        println!(
            "{:>5}  {:<20}  {:<20}  {:>9}  {:>9}  {}  {}",
            r.id,
            r.started_at,
            r.finished_at.unwrap_or_else(|| "(unfinished)".into()),
            r.targets,
            r.done,
            r.profiles.join(","),
            r.source
        );
    }
    Ok(ExitCode::SUCCESS)
}
