//! `v6scope check`: evaluate a few domains and explain the verdicts.

use super::*;

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Domains to evaluate.
    #[arg(required = true)]
    pub(crate) domains: Vec<String>,
    #[command(flatten)]
    pub(crate) probe: ProbeArgs,
    /// JSON output: one object with observations and verdicts per domain.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) crawl: CrawlArgs,
}

pub(crate) async fn check(args: CheckArgs) -> Result<ExitCode> {
    let profiles = load_profiles(&args.probe.profiles).map_err(scan_error)?;
    let mut domains = Vec::new();
    for d in &args.domains {
        let domain = targets::normalise_domain(d).map_err(|e| usage(format!("{d}: {e}")))?;
        domains.push(domain);
    }
    let config = args.probe.run_config(&args.crawl);
    let runner = Runner::start(&config, &args.probe.vantage_settings(), None)
        .await
        .map_err(scan_error)?;
    let observations = futures::future::join_all(domains.into_iter().map(|domain| {
        runner.evaluate(Target {
            domain,
            ..Default::default()
        })
    }))
    .await;
    let (mut any_fail, mut any_untested) = (false, false);
    let mut documents = Vec::new();
    for observation in &observations {
        let verdicts = judge(observation, &profiles);
        any_fail |= verdicts.iter().any(|v| v.status == Status::Fail);
        any_untested |= verdicts
            .iter()
            .any(|v| matches!(v.status, Status::NotTestable | Status::Error));
        if args.json {
            documents.push(serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "domain": observation.target.domain,
                "verdicts": verdicts,
                "observation": observation,
            }));
        } else {
            print!("{}", render::explain(observation, &verdicts));
        }
    }
    if args.json {
        let value = if documents.len() == 1 {
            documents.remove(0)
        } else {
            serde_json::Value::Array(documents)
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    // 0 only when everything was tested and passed: a result that could not
    // be tested has its own code (4), never "all pass".
    Ok(if any_fail {
        ExitCode::from(1)
    } else if any_untested {
        ExitCode::from(EXIT_NOT_TESTABLE)
    } else {
        ExitCode::SUCCESS
    })
}
