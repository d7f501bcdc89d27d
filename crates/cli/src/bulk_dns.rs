//! `v6scope dns`: bulk lookups through the resolver as JSON Lines.

use super::*;

#[derive(Args)]
pub(crate) struct DnsArgs {
    /// Names file (same formats as scan).
    pub(crate) file: PathBuf,
    /// Recursive resolver ADDR[:PORT] (repeatable); default: /etc/resolv.conf.
    #[arg(
        long = "resolver",
        value_name = "ADDR[:PORT]",
        env = "V6SCOPE_RESOLVER",
        value_delimiter = ','
    )]
    pub(crate) resolvers: Vec<String>,
    /// Record types to ask for each name.
    #[arg(long, value_delimiter = ',', default_value = "A,AAAA,NS,MX")]
    pub(crate) types: Vec<String>,
    /// Queries in flight.
    #[arg(long, default_value_t = 256)]
    pub(crate) concurrency: usize,
    /// Query timeout in milliseconds (each attempt).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub(crate) dns_timeout: u64,
    /// Queries per second.
    #[arg(long, value_name = "QPS", env = "V6SCOPE_RATE")]
    pub(crate) rate: Option<NonZeroU32>,
    /// Print nothing but the summary (for benchmarks).
    #[arg(long)]
    pub(crate) no_output: bool,
}

pub(crate) async fn bulk_dns(args: DnsArgs, quiet: bool) -> Result<ExitCode> {
    use v6scope_probe::dns::{RecordType, Resolver, parse_name};
    let resolvers = resolver_addresses(&args.resolvers)?;
    let types: Vec<RecordType> = args
        .types
        .iter()
        .map(|t| {
            t.to_ascii_uppercase()
                .parse::<RecordType>()
                .map_err(|_| usage(format!("unknown record type '{t}'")))
        })
        .collect::<Result<_>>()?;
    let bytes = std::fs::read(&args.file).map_err(|e| usage(format!("reading {}: {e}", args.file.display())))?;
    let parsed = targets::parse(&String::from_utf8_lossy(&bytes));
    for bad in &parsed.bad {
        eprintln!("{}:{}: skipped: {}", args.file.display(), bad.line, bad.reason);
    }
    let limiter = args
        .rate
        .map(|qps| Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(qps))));
    let resolver = Resolver::new(resolvers, Duration::from_millis(args.dns_timeout), 2, limiter)
        .with_max_in_flight(args.concurrency.max(1));
    let jobs: Vec<(String, RecordType)> = parsed
        .targets
        .iter()
        .flat_map(|t| types.iter().map(move |ty| (t.domain.clone(), *ty)))
        .collect();
    let bar = ProgressBar::new(jobs.len() as u64);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut stream = futures::stream::iter(jobs.into_iter().map(|(name, rtype)| {
        let resolver = resolver.clone();
        async move {
            let outcome = match parse_name(&name) {
                Ok(n) => resolver.query(&n, rtype).await,
                Err(e) => Err(e),
            };
            (name, rtype, outcome)
        }
    }))
    .buffer_unordered(args.concurrency.max(1));
    let (mut answered, mut failed) = (0u64, 0u64);
    while let Some((name, rtype, outcome)) = stream.next().await {
        bar.inc(1);
        let line = match outcome {
            Ok(answer) => {
                answered += 1;
                if args.no_output {
                    continue;
                }
                serde_json::json!({
                    "name": name,
                    "type": rtype.to_string(),
                    "rcode": v6scope_probe::dns::rcode_name(answer.rcode()),
                    "flags": answer.flags(),
                    "rtt_ms": answer.rtt.as_secs_f64() * 1000.0,
                    "answers": answer.message.answers.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                })
            }
            Err(e) => {
                failed += 1;
                if args.no_output {
                    continue;
                }
                serde_json::json!({"name": name, "type": rtype.to_string(), "error": e})
            }
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{} queries in {elapsed:.2} s ({:.0} queries/s): {answered} answered, {failed} failed",
        answered + failed,
        (answered + failed) as f64 / elapsed
    );
    Ok(ExitCode::SUCCESS)
}
