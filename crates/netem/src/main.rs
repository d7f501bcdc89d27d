//! `v6scope-netem`: the lab's delay line. See the library docs and lab/README.md.

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use v6scope_netem::{Rule, run};

/// Delay or drop packets that nftables queues to NFQUEUE QUEUE.
///
/// Example (in the namespace that receives the packets):
///   nft add rule inet t pre iifname "veth0" queue num 0
///   v6scope-netem --queue 0 --rule "ipv4 delay=40ms" --rule "ipv6 delay=60ms loss=1%"
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// NFQUEUE number the nftables rule queues to.
    #[arg(long, default_value_t = 0)]
    queue: u16,
    /// SELECTOR [delay=MS] [loss=PCT%]; SELECTOR is ipv4, ipv6, all or a prefix
    /// (matching source or destination). The first matching rule applies;
    /// packets no rule matches pass at once. Repeatable.
    #[arg(long = "rule", value_name = "RULE", required = true)]
    rules: Vec<Rule>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("signal handler")?;
    }
    for rule in &cli.rules {
        tracing::info!("rule: {rule}");
    }
    let stats = run(cli.queue, &cli.rules, &stop)?;
    for (i, rule) in cli.rules.iter().enumerate() {
        eprintln!(
            "v6scope-netem: {rule}: {} delayed, {} dropped",
            stats.delayed[i], stats.dropped[i]
        );
    }
    eprintln!(
        "v6scope-netem: {} passed without a rule; at most {} packets held at once",
        stats.passed, stats.peak_held
    );
    Ok(())
}
