//! Traffic counters in ClickHouse (`--traffic-store clickhouse://HOST:PORT/DB`).
//!
//! - `traffic_1m`: the collectors' intervals (a minute by default), a
//!   SummingMergeTree partitioned by day;
//! - `traffic_1h`, `traffic_1d`: materialised views summing them per hour
//!   (partitioned by month) and per day (by year), filled by ClickHouse as
//!   rows arrive;
//! - retention per resolution (minutes 7 days, hours 90 days, days for good,
//!   as Akvorado keeps them): ClickHouse before 19.6 — Debian ships 18.16 —
//!   has no TTL, so whole expired partitions are dropped, at most hourly, by
//!   the writer.
//!
//! Queries always `sum()`: a SummingMergeTree sums rows of one key only when
//! it merges parts, at a time of its choosing. It speaks the HTTP interface
//! with TabSeparated bodies: the official Rust client needs a newer server.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use v6scope_store_api::{
    Period, Result, StoreError, TrafficCounters, TrafficGroup, TrafficRow, TrafficTotal, family_from_number,
    family_number,
};

/// The oldest server this was tested with (Debian 12's clickhouse-server).
pub const MINIMUM_VERSION: (u32, u32) = (18, 16);

/// How long each resolution is kept, in days (`None`: for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub minutes: Option<u32>,
    pub hours: Option<u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            minutes: Some(7),
            hours: Some(90),
        }
    }
}

pub struct ClickHouseTraffic {
    agent: ureq::Agent,
    /// `http://HOST:PORT/`
    endpoint: String,
    database: String,
    user: Option<(String, String)>,
    retention: Retention,
    /// When expired partitions were last looked for (Unix seconds).
    last_retention: AtomicI64,
    shown: String,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string().into())
}

/// A TabSeparated text field.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A SQL string literal.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn period_format(period: Period) -> &'static str {
    match period {
        Period::Minute => "%Y-%m-%dT%H:%M",
        Period::Hour => "%Y-%m-%dT%H",
        Period::Day => "%Y-%m-%d",
        Period::Month => "%Y-%m",
    }
}

/// The column of a group (from this fixed list, never from a caller's text).
fn group_column(group: Option<TrafficGroup>) -> &'static str {
    match group {
        Some(TrafficGroup::Exporter) => "exporter",
        Some(TrafficGroup::Interface) => "toString(interface)",
        Some(TrafficGroup::Asn) => "toString(asn)",
        Some(TrafficGroup::Organisation) => "organisation",
        Some(TrafficGroup::Region) => "region",
        Some(TrafficGroup::Source) => "source",
        None => "''",
    }
}

const KEY: &str = "start, source, exporter, interface, asn, organisation, region, family, scaled";

impl ClickHouseTraffic {
    /// `clickhouse://HOST:PORT/DATABASE` (HTTP port; `?user=U&password=P`
    /// optional; `minutes_days=N` / `hours_days=N`, 0 = keep for good).
    /// Checks the server's version and creates the tables if needed.
    pub fn open(url: &str) -> Result<ClickHouseTraffic> {
        let rest = url
            .strip_prefix("clickhouse://")
            .ok_or_else(|| backend(format!("traffic store {url}: expected clickhouse://HOST:PORT/DATABASE")))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (host, database) = location.split_once('/').unwrap_or((location, "default"));
        let database = if database.is_empty() { "default" } else { database };
        if host.is_empty() || !database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(backend(format!(
                "traffic store {url}: expected clickhouse://HOST:PORT/DATABASE (database: letters, digits, _)"
            )));
        }
        let mut retention = Retention::default();
        let (mut user, mut password) = (None, String::new());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let days = || -> Result<Option<u32>> {
                let n: u32 = v
                    .parse()
                    .map_err(|_| backend(format!("traffic store: {k}={v}: a number of days")))?;
                Ok((n > 0).then_some(n))
            };
            match k {
                "user" => user = Some(v.to_string()),
                "password" => password = v.to_string(),
                "minutes_days" => retention.minutes = days()?,
                "hours_days" => retention.hours = days()?,
                other => return Err(backend(format!("traffic store: unknown parameter '{other}'"))),
            }
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(300)))
            .timeout_connect(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        let store = ClickHouseTraffic {
            agent: config.into(),
            endpoint: format!("http://{host}/"),
            database: database.to_string(),
            user: user.map(|u| (u, password)),
            retention,
            last_retention: AtomicI64::new(0),
            shown: format!("clickhouse://{host}/{database}"),
        };
        let version = store.version()?;
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) < MINIMUM_VERSION {
            return Err(backend(format!(
                "ClickHouse {version} at {}: v6scope needs {}.{} or newer",
                store.shown, MINIMUM_VERSION.0, MINIMUM_VERSION.1
            )));
        }
        store.migrate()?;
        Ok(store)
    }

    /// The server's version ("18.16.1").
    pub fn version(&self) -> Result<String> {
        Ok(self.query("SELECT version()", None)?.trim().to_string())
    }

    /// `clickhouse://HOST:PORT/DATABASE`, without credentials.
    pub fn describe(&self) -> String {
        self.shown.clone()
    }

    fn query(&self, sql: &str, data: Option<String>) -> Result<String> {
        let (url, body) = match data {
            // An INSERT's data follows the statement in the body.
            Some(rows) => (self.endpoint.clone(), format!("{sql}\n{rows}")),
            None => (self.endpoint.clone(), sql.to_string()),
        };
        let mut request = self.agent.post(&url).header("X-ClickHouse-Database", &self.database);
        if let Some((user, password)) = &self.user {
            request = request
                .header("X-ClickHouse-User", user)
                .header("X-ClickHouse-Key", password);
        }
        let mut response = request
            .send(body)
            .map_err(|e| backend(format!("ClickHouse at {}: {e}", self.shown)))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| backend(format!("ClickHouse at {}: {e}", self.shown)))?;
        if !status.is_success() {
            return Err(backend(format!(
                "ClickHouse at {} ({status}): {}",
                self.shown,
                text.lines().next().unwrap_or("").chars().take(500).collect::<String>()
            )));
        }
        Ok(text)
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.database)
    }

    fn migrate(&self) -> Result<()> {
        let db = &self.database;
        self.query(&format!("CREATE DATABASE IF NOT EXISTS {db}"), None)?;
        let columns = "start DateTime('UTC'), source String, exporter String, interface UInt32, asn UInt32, \
                       organisation String, region String, family UInt8, scaled UInt8, \
                       bytes UInt64, packets UInt64, records UInt64";
        self.query(
            &format!(
                "CREATE TABLE IF NOT EXISTS {db}.traffic_1m ({columns}, seconds UInt32) \
                 ENGINE = SummingMergeTree((bytes, packets, records)) PARTITION BY toYYYYMMDD(start) \
                 ORDER BY ({KEY}, seconds)"
            ),
            None,
        )?;
        for (name, start, partition) in [
            ("traffic_1h", "toStartOfHour(start)", "toYYYYMM(start)"),
            ("traffic_1d", "toDateTime(toStartOfDay(start), 'UTC')", "toYear(start)"),
        ] {
            self.query(
                &format!(
                    "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{name} \
                     ENGINE = SummingMergeTree((bytes, packets, records)) PARTITION BY {partition} ORDER BY ({KEY}) \
                     AS SELECT {start} AS start, source, exporter, interface, asn, organisation, region, family, \
                     scaled, sum(bytes) AS bytes, sum(packets) AS packets, sum(records) AS records \
                     FROM {db}.traffic_1m GROUP BY {KEY}"
                ),
                None,
            )?;
        }
        Ok(())
    }

    /// Drops partitions past their resolution's retention; returns them.
    pub fn expire(&self, now: i64) -> Result<Vec<String>> {
        let parts = self.query(
            &format!(
                "SELECT DISTINCT table, partition FROM system.parts WHERE database = {} AND active \
                 AND table IN ('traffic_1m', '.inner.traffic_1h') FORMAT TabSeparated",
                quote(&self.database)
            ),
            None,
        )?;
        let day = |days: u32| {
            let secs = now - i64::from(days) * 86_400;
            civil(secs)
        };
        let mut dropped = Vec::new();
        for line in parts.lines() {
            let Some((table, partition)) = line.split_once('\t') else {
                continue;
            };
            let table = unescape(table);
            let Ok(number) = partition.parse::<i64>() else { continue };
            let expired = match table.as_str() {
                // YYYYMMDD, older than the cut-off day.
                "traffic_1m" => self.retention.minutes.is_some_and(|d| {
                    let (y, m, dd) = day(d);
                    number < y * 10_000 + m * 100 + dd
                }),
                // YYYYMM whose whole month is older than the cut-off.
                _ => self.retention.hours.is_some_and(|d| {
                    let (y, m, _) = day(d);
                    number < y * 100 + m
                }),
            };
            if expired {
                self.query(
                    &format!("ALTER TABLE {}.`{table}` DROP PARTITION {number}", self.database),
                    None,
                )?;
                dropped.push(format!("{table}:{number}"));
            }
        }
        Ok(dropped)
    }

    fn totals(&self, sql: &str) -> Result<Vec<TrafficTotal>> {
        let text = self.query(&format!("{sql} FORMAT TabSeparated"), None)?;
        let mut out = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 6 {
                return Err(StoreError::Corrupt(format!("ClickHouse answered {line:?}")));
            }
            let number = |s: &str| -> Result<i64> {
                s.parse::<u64>()
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                    .map_err(|e| StoreError::Corrupt(format!("ClickHouse answered {s:?}: {e}")))
            };
            out.push(TrafficTotal {
                period: unescape(f[0]),
                group: unescape(f[1]),
                family: family_from_number(number(f[2])?).map_err(StoreError::Corrupt)?,
                bytes: number(f[3])?,
                packets: number(f[4])?,
                records: number(f[5])?,
            });
        }
        Ok(out)
    }

    fn grouped(&self, period: Period, column: &str, scaled: bool) -> Result<Vec<TrafficTotal>> {
        let table = match period {
            Period::Minute => "traffic_1m",
            Period::Hour => "traffic_1h",
            Period::Day | Period::Month => "traffic_1d",
        };
        self.totals(&format!(
            "SELECT formatDateTime(start, '{}', 'UTC') AS p, {column} AS g, family, sum(bytes), sum(packets), \
             sum(records) FROM {} WHERE scaled = {} GROUP BY p, g, family ORDER BY p, g, family",
            period_format(period),
            self.table(table),
            u8::from(scaled)
        ))
    }
}

/// (year, month, day) of Unix seconds, UTC.
fn civil(secs: i64) -> (i64, i64, i64) {
    // Howard Hinnant's days-to-civil.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl ClickHouseTraffic {
    /// [`TrafficCounters::add_traffic`] through a shared reference: the
    /// server's requests share one client.
    pub fn insert(&self, rows: &[TrafficRow]) -> Result<()> {
        if !rows.is_empty() {
            let mut data = String::with_capacity(rows.len() * 96);
            for r in rows {
                data.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    r.start.max(0),
                    escape(&r.source),
                    escape(&r.exporter),
                    r.interface.clamp(0, i64::from(u32::MAX)),
                    r.asn.clamp(0, i64::from(u32::MAX)),
                    escape(&r.organisation),
                    escape(&r.region),
                    family_number(r.family),
                    u8::from(r.scaled),
                    r.bytes.max(0),
                    r.packets.max(0),
                    r.records.max(0),
                    r.seconds.clamp(0, i64::from(u32::MAX)),
                ));
            }
            self.query(
                &format!(
                    "INSERT INTO {} ({KEY}, bytes, packets, records, seconds) FORMAT TabSeparated",
                    self.table("traffic_1m")
                ),
                Some(data),
            )?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if now - self.last_retention.load(Ordering::Relaxed) >= 3600 {
            self.last_retention.store(now, Ordering::Relaxed);
            match self.expire(now) {
                Ok(dropped) if !dropped.is_empty() => tracing::info!("expired traffic partitions: {dropped:?}"),
                Ok(_) => {}
                Err(e) => tracing::warn!("expiring traffic partitions: {e}"),
            }
        }
        Ok(())
    }
}

impl TrafficCounters for ClickHouseTraffic {
    fn add_traffic(&mut self, rows: &[TrafficRow]) -> Result<()> {
        self.insert(rows)
    }

    fn traffic_by(&self, period: Period, group: Option<TrafficGroup>) -> Result<Vec<TrafficTotal>> {
        self.grouped(period, group_column(group), true)
    }

    fn traffic_unscaled(&self, period: Period) -> Result<Vec<TrafficTotal>> {
        self.grouped(period, "exporter", false)
    }

    fn traffic_months(&self, from: i64, until: i64) -> Result<Vec<TrafficTotal>> {
        self.totals(&format!(
            "SELECT formatDateTime(start, '%Y-%m', 'UTC') AS p, '' AS g, family, sum(bytes), sum(packets), \
             sum(records) FROM {} WHERE scaled = 1 AND start >= toDateTime({from}) AND start < toDateTime({until}) \
             GROUP BY p, g, family ORDER BY p, g, family",
            self.table("traffic_1d")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_survives_the_tab_separated_round_trip() {
        for text in ["plain", "tab\there", "new\nline", "back\\slash", "quote'd", "中文"] {
            assert_eq!(unescape(&escape(text)), text);
        }
        assert_eq!(quote("a'b\\c"), "'a\\'b\\\\c'");
    }

    #[test]
    fn days_of_unix_seconds() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(1_791_626_400), (2026, 10, 10));
        assert_eq!(civil(951_782_400), (2000, 2, 29));
    }

    #[test]
    fn urls_are_checked() {
        for bad in [
            "http://x/",
            "clickhouse:///db",
            "clickhouse://h:1/a;drop",
            "clickhouse://h:1/d?what=1",
        ] {
            assert!(ClickHouseTraffic::open(bad).is_err(), "{bad}");
        }
    }
}
