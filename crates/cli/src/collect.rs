//! `v6scope collect`: flow telemetry, packet captures and access logs into
//! IPv4/IPv6 traffic and active-IPv6-user indicators in the store.

use anyhow::{Context, Result, bail};
use clap::Args;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use v6scope_flow::aggregate::{Aggregator, HostBytes, SamplingPolicy};
use v6scope_flow::enrich::PrefixTable;
use v6scope_flow::listener::{Listener, ListenerConfig};
use v6scope_flow::logs::LogReport;
use v6scope_flow::users::Sketch;
use v6scope_flow::{Decoders, Family, FlowRecord, pcap};
use v6scope_store::{Store, TrafficRow};

#[derive(Args)]
pub struct CollectArgs {
    /// UDP listener for NetFlow v5/v9, IPFIX and sFlow v5 (repeatable), e.g.
    /// udp://[::]:2055. One socket may carry several exporters and protocols.
    #[arg(long = "listen", value_name = "udp://ADDR:PORT")]
    listen: Vec<String>,
    /// pcap or pcapng file (repeatable; several captures of one app are
    /// averaged in the concentration report).
    #[arg(long = "pcap", value_name = "FILE")]
    pcaps: Vec<PathBuf>,
    /// Exported datagrams recorded to a file (each a 4-byte big-endian length,
    /// then the datagram, as lab/flows/udp-sink.py writes them), decoded as
    /// if received from --datagrams-from (repeatable).
    #[arg(long = "datagrams", value_name = "FILE")]
    datagram_files: Vec<PathBuf>,
    /// Exporter address for --datagrams.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    datagrams_from: IpAddr,
    /// Decode each --datagrams file this many times (benchmarks).
    #[arg(long, default_value_t = 1, value_name = "N", hide = true)]
    repeat: u32,
    /// Web server access log, combined or JSON lines (repeatable).
    #[arg(long = "access-log", value_name = "FILE")]
    access_logs: Vec<PathBuf>,
    /// Prefix table, CSV or TOML: prefix → asn, organisation, region,
    /// subscriber_len, role (repeatable).
    #[arg(long = "prefixes", value_name = "FILE")]
    prefixes: Vec<PathBuf>,
    /// Sampling rate for exporters that do not report one: PREFIX=N, e.g.
    /// 192.0.2.0/24=1000 or 127.0.0.1=1 (repeatable).
    #[arg(long = "sampling-default", value_name = "PREFIX=N")]
    sampling_default: Vec<String>,
    /// Sampling rate that replaces whatever the exporter reports: PREFIX=N.
    #[arg(long = "sampling-override", value_name = "PREFIX=N")]
    sampling_override: Vec<String>,
    /// Interval of the traffic counters, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    interval: u64,
    /// Count egress records too (by default each packet is counted once, on
    /// ingress).
    #[arg(long)]
    count_egress: bool,
    /// The store the indicators are added to.
    #[command(flatten)]
    store: crate::StoreArgs,
    #[command(flatten)]
    push: crate::push::PushArgs,
    /// Where templates are kept across restarts.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Stop listening after this many seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Stop listening after this many seconds without a datagram, once one
    /// has arrived.
    #[arg(long, value_name = "SECS")]
    idle_exit: Option<u64>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rates(specs: &[String], flag: &str) -> Result<Vec<(IpNet, u32)>> {
    specs
        .iter()
        .map(|spec| {
            let (prefix, rate) = spec
                .split_once('=')
                .with_context(|| format!("{flag} {spec}: expected PREFIX=N"))?;
            let prefix: IpNet = prefix
                .parse()
                .or_else(|_| prefix.parse::<IpAddr>().map(IpNet::from))
                .with_context(|| format!("{flag} {spec}: bad prefix"))?;
            let rate: u32 = rate.parse().with_context(|| format!("{flag} {spec}: bad rate"))?;
            if rate == 0 {
                bail!("{flag} {spec}: the rate is 1 in N, N >= 1");
            }
            Ok((prefix, rate))
        })
        .collect()
}

fn listen_addr(spec: &str) -> Result<SocketAddr> {
    let addr = spec.strip_prefix("udp://").unwrap_or(spec);
    addr.parse()
        .with_context(|| format!("--listen {spec}: expected udp://ADDR:PORT, e.g. udp://[::]:2055"))
}

pub async fn collect(args: CollectArgs) -> Result<std::process::ExitCode> {
    let no_input = args.listen.is_empty()
        && args.pcaps.is_empty()
        && args.access_logs.is_empty()
        && args.datagram_files.is_empty();
    if no_input && args.push.push.is_none() {
        return Err(crate::usage(
            "give --listen, --pcap, --datagrams or --access-log (or --push alone to send what is spooled)",
        ));
    }
    let mut table = PrefixTable::default();
    for path in &args.prefixes {
        let n = table.load(path).map_err(|e| crate::usage(e.to_string()))?;
        tracing::info!("{}: {n} prefixes", path.display());
    }
    let policy = SamplingPolicy {
        defaults: rates(&args.sampling_default, "--sampling-default").map_err(|e| crate::usage(e.to_string()))?,
        overrides: rates(&args.sampling_override, "--sampling-override").map_err(|e| crate::usage(e.to_string()))?,
    };
    let listeners: Vec<SocketAddr> = args
        .listen
        .iter()
        .map(|l| listen_addr(l))
        .collect::<Result<_>>()
        .map_err(|e| crate::usage(e.to_string()))?;
    let mut sink = match args.push.push {
        Some(_) => Sink::Push(crate::push::Sender::start(&args.push)?),
        None => Sink::Store(args.store.open()?, args.store.open_traffic()?),
    };
    let table = Arc::new(table);
    let mut summary = serde_json::Map::new();

    // SIGTERM or Ctrl-C while files are read: stop reading, store what was
    // read, exit 0 (the listening loop below handles its own).
    let stop_reading = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if args.listen.is_empty() {
        let flag = stop_reading.clone();
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            eprintln!("stopping: storing what was read so far");
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    let stopped = || stop_reading.load(std::sync::atomic::Ordering::SeqCst);
    // Captures: traffic, users, and each capture's app IPv6 concentration.
    let mut concentrations = Vec::new();
    for path in &args.pcaps {
        if stopped() {
            break;
        }
        let mut agg = Aggregator::new(args.interval, policy.clone(), table.clone());
        agg.count_egress = true; // a capture sees each packet once
        let mut names = pcap::Names::default();
        let mut hosts = HostBytes::default();
        let stats = pcap::read(path, |time, p| {
            if stopped() {
                return;
            }
            names.observe(p);
            let record = FlowRecord {
                time,
                exporter: IpAddr::from([0u8; 4]),
                domain: 0,
                src: p.src,
                dst: p.dst,
                protocol: p.protocol,
                src_port: p.src_port,
                dst_port: p.dst_port,
                bytes: u64::from(p.l3_len),
                packets: 1,
                input_interface: 0,
                output_interface: 0,
                direction: None,
                sampling: Some(1),
            };
            agg.add(&record);
            // The remote end: the named one, else the lower (service) port.
            let server = if names.name(&p.dst).is_some() || (p.src_port >= p.dst_port && names.name(&p.src).is_none()) {
                p.dst
            } else {
                p.src
            };
            hosts.add(server, names.name(&server), u64::from(p.l3_len));
        })
        .map_err(|e| crate::usage(e.to_string()))?;
        if stats.truncated_tail {
            eprintln!(
                "{}: the capture ends mid-packet; the packets before count",
                path.display()
            );
        }
        let totals = agg.totals();
        let v4 = totals.get(&Family::Ipv4).map(|c| c.bytes).unwrap_or(0);
        let v6 = totals.get(&Family::Ipv6).map(|c| c.bytes).unwrap_or(0);
        let share = if v4 + v6 > 0 { v6 as f64 / (v4 + v6) as f64 } else { 0.0 };
        concentrations.push(share);
        let ipv4_hosts: Vec<serde_json::Value> = hosts
            .ipv4_hosts()
            .into_iter()
            .take(20)
            .map(|(h, b4, b6)| serde_json::json!({"host": h, "ipv4_bytes": b4, "ipv6_bytes": b6}))
            .collect();
        let source = format!("pcap:{}", path.display());
        sink.save(&agg, &source, args.interval)?;
        summary.insert(
            source,
            serde_json::json!({
                "capture": stats,
                "traffic": totals_json(&agg),
                "users": users_json(&agg),
                "ipv6_concentration": round4(share),
                "ipv4_hosts": ipv4_hosts,
            }),
        );
    }
    if concentrations.len() > 1 {
        let mean = concentrations.iter().sum::<f64>() / concentrations.len() as f64;
        summary.insert(
            "ipv6_concentration_mean".into(),
            serde_json::json!({"captures": concentrations.len(), "mean": round4(mean)}),
        );
    }

    // Recorded datagrams, decoded on this thread (one core).
    for path in &args.datagram_files {
        if stopped() {
            break;
        }
        let bytes = std::fs::read(path).map_err(|e| crate::usage(format!("{}: {e}", path.display())))?;
        let (datagrams, cut) = v6scope_flow::split_datagrams(&bytes);
        if cut {
            eprintln!(
                "{}: the file ends inside a datagram; the ones before count",
                path.display()
            );
        }
        let mut decoders = Decoders::default();
        let state = args.state_dir.as_ref().map(|d| d.join("templates.json"));
        if let Some(saved) = state
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            decoders.netflow.load_templates(&saved);
        }
        let mut agg = Aggregator::new(args.interval, policy.clone(), table.clone());
        agg.count_egress = args.count_egress;
        let mut records = Vec::with_capacity(1024);
        let started = std::time::Instant::now();
        let time = now();
        'replay: for _ in 0..args.repeat.max(1) {
            for d in &datagrams {
                if stopped() {
                    break 'replay;
                }
                decoders.decode(args.datagrams_from, d, time, &mut records);
                for r in records.drain(..) {
                    agg.add(&r);
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        decoders.netflow.abandon_held();
        if let Some(path) = &state {
            save_templates(path, &BTreeMap::from([(0, decoders.netflow.save_templates())]))?;
        }
        let decoded = decoders.netflow.stats.records + decoders.sflow.stats.records;
        let source = format!("datagrams:{}", path.display());
        sink.save(&agg, &source, args.interval)?;
        let mut result = listener_json(&decoders, &agg);
        result["decode_seconds"] = serde_json::json!(round4(seconds));
        result["records_per_second"] = serde_json::json!((decoded as f64 / seconds.max(1e-9)).round());
        summary.insert(source, result);
    }

    // Access logs: requests and distinct clients per hour and family.
    for path in &args.access_logs {
        if stopped() {
            break;
        }
        let file = std::fs::File::open(path).map_err(|e| crate::usage(format!("{}: {e}", path.display())))?;
        let mut report = LogReport::default();
        report
            .read(std::io::BufReader::new(file))
            .with_context(|| format!("reading {}", path.display()))?;
        if report.bad_lines > 0 {
            eprintln!(
                "{}: {} line(s) not understood (first at line(s) {:?})",
                path.display(),
                report.bad_lines,
                report.first_bad
            );
        }
        let hours: Vec<serde_json::Value> = report
            .hours
            .iter()
            .map(|(start, h)| {
                let clients = [h.clients[0].count(), h.clients[1].count()];
                serde_json::json!({
                    "hour": start,
                    "requests_v4": h.requests[0],
                    "requests_v6": h.requests[1],
                    "ipv6_request_share": round4(ratio(h.requests[1], h.requests[0] + h.requests[1])),
                    "clients_v4": clients[0],
                    "clients_v6": clients[1],
                    "ipv6_client_share": round4(ratio(clients[1], clients[0] + clients[1])),
                })
            })
            .collect();
        summary.insert(
            format!("log:{}", path.display()),
            serde_json::json!({"lines": report.lines, "bad_lines": report.bad_lines, "hours": hours}),
        );
    }

    // UDP listeners until --duration, --idle-exit or Ctrl-C.
    if !listeners.is_empty() {
        let result = listen(&args, &listeners, policy, table, &mut sink).await?;
        summary.insert("udp".into(), result);
    }

    if let Sink::Push(sender) = sink {
        let dropped = sender.spool.dropped();
        // Alone, --push only empties the spool: give it longer.
        let drain = if no_input { 120 } else { 15 };
        let stats = sender.finish(Duration::from_secs(drain)).await;
        let mut push = serde_json::to_value(&stats)?;
        push["spool_dropped"] = serde_json::json!(dropped);
        summary.insert("push".into(), push);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::Value::Object(summary))?);
    } else {
        print_summary(&summary);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn listen(
    args: &CollectArgs,
    listeners: &[SocketAddr],
    policy: SamplingPolicy,
    table: Arc<PrefixTable>,
    sink: &mut Sink,
) -> Result<serde_json::Value> {
    let state = args.state_dir.as_ref().map(|d| d.join("templates.json"));
    let saved: Option<serde_json::Value> = state
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok());
    let had_saved = saved.is_some();
    let config = ListenerConfig {
        interval: args.interval,
        sampling: policy.clone(),
        count_egress: args.count_egress,
        saved_templates: saved,
        keep_templates: state.is_some(),
    };
    let mut listener = Listener::start(listeners, table.clone(), config).context("listening on udp")?;
    for address in listener.local_addresses() {
        eprintln!("listening on udp://{address}");
    }
    if had_saved {
        eprintln!("{} template(s) restored", listener.restored_templates());
    }
    let source = format!(
        "udp://{}",
        listeners.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(",")
    );
    let fresh = || {
        let mut agg = Aggregator::new(args.interval, policy.clone(), table.clone());
        agg.count_egress = args.count_egress;
        agg
    };
    // `pending` is what the next flush writes; `all` feeds the summary.
    let mut pending = fresh();
    let mut all = fresh();
    let mut finals: Vec<Decoders> = Vec::new();
    let mut templates: BTreeMap<usize, serde_json::Value> = BTreeMap::new();
    let started = tokio::time::Instant::now();
    let stop_at = args.duration.map(|d| started + Duration::from_secs(d));
    let idle = args.idle_exit.map(Duration::from_secs);
    let mut flush = tokio::time::interval(Duration::from_secs(args.interval.clamp(1, 60)));
    let mut last_datagram: Option<tokio::time::Instant> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // SIGTERM (systemd, Docker, Kubernetes) stops like Ctrl-C: flush, exit 0.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    // SIGHUP reloads the prefix tables without stopping the listeners.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let mut stopping = false;
    loop {
        let stop_timer = async {
            match stop_at {
                Some(at) if !stopping => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            delta = listener.next() => {
                let Some(delta) = delta else { break };
                if delta.datagrams > 0 {
                    last_datagram = Some(tokio::time::Instant::now());
                }
                if let Some(t) = delta.templates {
                    templates.insert(delta.thread, t);
                }
                if let Some(decoders) = delta.last {
                    finals.push(*decoders);
                }
                all.merge(&delta.agg)?;
                pending.merge(&delta.agg)?;
                if let (Some(idle), Some(last)) = (idle, last_datagram)
                    && last.elapsed() >= idle
                    && !stopping
                {
                    stopping = true;
                    listener.stop();
                }
            }
            _ = flush.tick() => {
                sink.save(&pending, &source, args.interval)?;
                pending = fresh();
                if let Some(path) = &state && !templates.is_empty() {
                    save_templates(path, &templates)?;
                }
            }
            _ = hangup.recv() => {
                let mut table = PrefixTable::default();
                let loaded: Result<usize, _> = args.prefixes.iter().map(|p| table.load(p)).sum();
                match loaded {
                    Ok(n) => {
                        listener.set_table(Arc::new(table));
                        eprintln!("prefix tables reloaded: {n} entries");
                    }
                    Err(e) => eprintln!("prefix tables not reloaded, the old ones stay: {e}"),
                }
            }
            _ = stop_timer, if !stopping => {
                stopping = true;
                listener.stop();
            }
            _ = &mut ctrl_c, if !stopping => {
                stopping = true;
                listener.stop();
            }
            _ = terminate.recv(), if !stopping => {
                stopping = true;
                listener.stop();
            }
        }
    }
    listener.join();
    sink.save(&pending, &source, args.interval)?;
    if let Some(path) = &state
        && !templates.is_empty()
    {
        save_templates(path, &templates)?;
    }
    let mut totals = Decoders::default();
    for d in &finals {
        totals.netflow.stats.absorb(&d.netflow.stats);
        totals.sflow.stats.absorb(&d.sflow.stats);
    }
    Ok(listener_json(&totals, &all))
}

/// What the decoders and aggregator of a stream of datagrams saw.
fn listener_json(decoders: &Decoders, all: &Aggregator) -> serde_json::Value {
    let mut drops: BTreeMap<String, u64> = BTreeMap::new();
    for (why, n) in decoders
        .netflow
        .stats
        .drops
        .iter()
        .chain(decoders.sflow.stats.drops.iter())
    {
        *drops.entry(why.to_string()).or_default() += n;
    }
    let unknown: u64 = all.unknown_rate.values().map(|c| c.records).sum();
    serde_json::json!({
        "datagrams": decoders.netflow.stats.datagrams + decoders.sflow.stats.datagrams,
        "records": decoders.netflow.stats.records + decoders.sflow.stats.records,
        "templates": decoders.netflow.stats.templates,
        "held_then_decoded": decoders.netflow.stats.held_then_decoded,
        "drops": drops,
        "egress_skipped": all.egress_skipped,
        "unknown_sampling_records": unknown,
        "unknown_sampling": unknown_json(all),
        "traffic": totals_json(all),
        "users": users_json(all),
    })
}

/// Writes the templates of every receiving thread (the latest of each).
fn save_templates(path: &std::path::Path, per_thread: &BTreeMap<usize, serde_json::Value>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let all: Vec<serde_json::Value> = per_thread
        .values()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .collect();
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&all)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Where closed intervals go: the local store, or the spool of a push to a server.
enum Sink {
    /// The store, and the ClickHouse traffic store when one is given.
    Store(Box<dyn Store>, Option<v6scope_store::ClickHouseTraffic>),
    Push(crate::push::Sender),
}

impl Sink {
    fn save(&mut self, agg: &Aggregator, source: &str, interval: u64) -> Result<()> {
        match self {
            Sink::Store(store, clickhouse) => save(&mut **store, clickhouse.as_ref(), agg, source, interval),
            Sink::Push(sender) => {
                if agg.is_empty() {
                    return Ok(());
                }
                sender.spool.add(agg, interval)
            }
        }
    }
}

/// Adds an aggregator's counters and sketches to the store.
fn save(
    store: &mut dyn Store,
    clickhouse: Option<&v6scope_store::ClickHouseTraffic>,
    agg: &Aggregator,
    source: &str,
    interval: u64,
) -> Result<()> {
    let mut rows: Vec<TrafficRow> = agg
        .traffic()
        .map(|(k, c)| TrafficRow {
            start: k.start as i64,
            seconds: interval as i64,
            source: source.to_string(),
            exporter: k.exporter.to_string(),
            interface: i64::from(k.interface),
            asn: i64::from(k.asn),
            organisation: k.organisation.to_string(),
            region: k.region.to_string(),
            family: k.family,
            bytes: c.bytes as i64,
            packets: c.packets as i64,
            records: c.records as i64,
            scaled: true,
        })
        .collect();
    rows.extend(agg.unknown_rate.iter().map(|((start, exporter, f), c)| TrafficRow {
        start: *start as i64,
        seconds: interval as i64,
        source: source.to_string(),
        exporter: exporter.to_string(),
        interface: 0,
        asn: 0,
        organisation: String::new(),
        region: String::new(),
        family: *f,
        bytes: c.bytes as i64,
        packets: c.packets as i64,
        records: c.records as i64,
        scaled: false,
    }));
    match clickhouse {
        Some(ch) => ch.insert(&rows).context("saving traffic to ClickHouse")?,
        None => store.add_traffic(&rows).context("saving traffic")?,
    }
    for ((day, organisation), sketches) in agg.users() {
        for (kind, sketch) in [
            ("subscribers", &sketches.subscribers),
            ("addresses", &sketches.addresses),
        ] {
            // One atomic read-merge-write in the store: another collector
            // writing the same day and organisation never loses an update.
            store.merge_sketch(&day, &organisation, kind, &mut |stored| {
                let mut merged = sketch.clone();
                if let Some(stored) = stored {
                    match Sketch::from_bytes(stored) {
                        Ok(old) => merged.merge(&old).map_err(|e| e.to_string())?,
                        Err(e) => tracing::warn!("stored sketch {day} {organisation} {kind} replaced: {e}"),
                    }
                }
                Ok(merged.to_bytes())
            })?;
        }
    }
    Ok(())
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn totals_json(agg: &Aggregator) -> serde_json::Value {
    let totals = agg.totals();
    let get = |f: Family| totals.get(&f).copied().unwrap_or_default();
    let (v4, v6) = (get(Family::Ipv4), get(Family::Ipv6));
    serde_json::json!({
        "ipv4": v4,
        "ipv6": v6,
        "ipv6_byte_share": round4(ratio(v6.bytes, v4.bytes + v6.bytes)),
        "ipv6_packet_share": round4(ratio(v6.packets, v4.packets + v6.packets)),
    })
}

fn unknown_json(agg: &Aggregator) -> serde_json::Value {
    let mut by_exporter: BTreeMap<String, u64> = BTreeMap::new();
    for ((_, exporter, _), c) in &agg.unknown_rate {
        *by_exporter.entry(exporter.to_string()).or_default() += c.records;
    }
    serde_json::json!(by_exporter)
}

fn users_json(agg: &Aggregator) -> serde_json::Value {
    let users: Vec<serde_json::Value> = agg
        .users()
        .map(|((day, org), s)| {
            serde_json::json!({
                "day": &*day,
                "organisation": &*org,
                "subscribers": s.subscribers.count(),
                "addresses": s.addresses.count(),
            })
        })
        .collect();
    serde_json::json!(users)
}

fn print_summary(summary: &serde_json::Map<String, serde_json::Value>) {
    for (source, v) in summary {
        println!("{source}");
        if let Some(t) = v.get("traffic") {
            println!(
                "  IPv4 {} bytes, {} packets, {} records; IPv6 {} bytes, {} packets, {} records",
                t["ipv4"]["bytes"],
                t["ipv4"]["packets"],
                t["ipv4"]["records"],
                t["ipv6"]["bytes"],
                t["ipv6"]["packets"],
                t["ipv6"]["records"]
            );
            println!(
                "  IPv6 share: {:.2} % of bytes, {:.2} % of packets",
                t["ipv6_byte_share"].as_f64().unwrap_or(0.0) * 100.0,
                t["ipv6_packet_share"].as_f64().unwrap_or(0.0) * 100.0
            );
        }
        if let Some(n) = v.get("unknown_sampling_records").and_then(|n| n.as_u64())
            && n > 0
        {
            println!(
                "  {n} record(s) with an unknown sampling rate, not scaled (by exporter: {}); set --sampling-default",
                v["unknown_sampling"]
            );
        }
        if let Some(users) = v.get("users").and_then(|u| u.as_array()) {
            for u in users {
                println!(
                    "  active IPv6 users {} {}: {} subscribers, {} addresses",
                    u["day"],
                    if u["organisation"] == "" {
                        "(all)".into()
                    } else {
                        u["organisation"].to_string()
                    },
                    u["subscribers"],
                    u["addresses"]
                );
            }
        }
        if let Some(c) = v.get("ipv6_concentration") {
            println!("  app IPv6 concentration: {:.2} %", c.as_f64().unwrap_or(0.0) * 100.0);
            for h in v["ipv4_hosts"].as_array().into_iter().flatten() {
                println!("    still on IPv4: {} ({} bytes over IPv4)", h["host"], h["ipv4_bytes"]);
            }
        }
        if let Some(drops) = v.get("drops").and_then(|d| d.as_object())
            && !drops.is_empty()
        {
            println!("  dropped: {}", serde_json::Value::Object(drops.clone()));
        }
        if let Some(hours) = v.get("hours").and_then(|h| h.as_array()) {
            for h in hours {
                println!(
                    "  hour {}: IPv6 {:.2} % of requests, {:.2} % of clients",
                    h["hour"],
                    h["ipv6_request_share"].as_f64().unwrap_or(0.0) * 100.0,
                    h["ipv6_client_share"].as_f64().unwrap_or(0.0) * 100.0
                );
            }
        }
        if let Some(m) = v.get("mean") {
            println!(
                "  mean over {} captures: {:.2} %",
                v["captures"],
                m.as_f64().unwrap_or(0.0) * 100.0
            );
        }
    }
}
