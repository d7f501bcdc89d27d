//! Web server access logs: the client address family of every request.
//! Reads nginx/Apache "combined" (and "common") lines and JSON lines
//! (`remote_addr`, `client_ip`, `clientip`, `ip` or `client`; `time`,
//! `time_iso8601`, `time_local`, `timestamp` or `@timestamp`). A line that
//! is neither is counted as bad with its number, never fatal.

use crate::Family;
use crate::users::Sketch;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::IpAddr;

/// Requests and distinct clients per hour and family.
#[derive(Debug, Default, Clone)]
pub struct Hour {
    pub requests: [u64; 2],
    pub clients: [Sketch; 2],
}

#[derive(Debug, Default)]
pub struct LogReport {
    /// Hour start (Unix seconds) → counts.
    pub hours: BTreeMap<u64, Hour>,
    pub lines: u64,
    pub bad_lines: u64,
    /// Line numbers of the first bad lines (at most 10).
    pub first_bad: Vec<u64>,
}

fn slot(family: Family) -> usize {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => 1,
    }
}

impl LogReport {
    pub fn read(&mut self, input: impl BufRead) -> std::io::Result<()> {
        for line in input.split(b'\n') {
            let line = line?;
            self.lines += 1;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match parse_line(text) {
                Some((client, time)) => self.add(client, time),
                None => {
                    self.bad_lines += 1;
                    if self.first_bad.len() < 10 {
                        self.first_bad.push(self.lines);
                    }
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, client: IpAddr, time: u64) {
        // An IPv4-mapped client (::ffff:a.b.c.d, dual-stack sockets) is IPv4.
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(client),
            v4 => v4,
        };
        let hour = self.hours.entry(time - time % 3600).or_default();
        let s = slot(Family::of(&client));
        hour.requests[s] += 1;
        let key = match client {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        hour.clients[s].insert(key);
    }
}

fn parse_line(line: &str) -> Option<(IpAddr, u64)> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let client = ["remote_addr", "client_ip", "clientip", "ip", "client"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()))?;
        let time = ["time_iso8601", "time", "timestamp", "@timestamp", "time_local"]
            .iter()
            .find_map(|k| v.get(*k))?;
        let time = match time {
            serde_json::Value::Number(n) => n.as_f64().map(|f| f as u64)?,
            serde_json::Value::String(s) => parse_iso8601(s).or_else(|| parse_clf_time(s))?,
            _ => return None,
        };
        return Some((parse_client(client)?, time));
    }
    // combined/common: ADDR IDENT USER [TIME] "REQUEST" STATUS BYTES ...
    let (client, rest) = line.split_once(' ')?;
    let open = rest.find('[')?;
    let close = rest[open..].find(']')? + open;
    let time = parse_clf_time(&rest[open + 1..close])?;
    Some((parse_client(client)?, time))
}

fn parse_client(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_start_matches('[');
    let s = s.split(']').next()?;
    // "a.b.c.d:port" is IPv4 with a port; a bare IPv6 has several colons.
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(a);
    }
    let (host, _) = s.rsplit_once(':')?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn to_unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, offset_secs: i64) -> Option<u64> {
    // Found by fuzzing: a year of 10^15 overflowed the arithmetic below.
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=60).contains(&s)
        || offset_secs.abs() > 86_400
    {
        return None;
    }
    let t = v6scope_model::days::from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    u64::try_from(t).ok()
}

/// "26/Nov/2026:12:00:00 +0800"
fn parse_clf_time(s: &str) -> Option<u64> {
    let (date, zone) = s.split_once(' ').unwrap_or((s, "+0000"));
    let mut parts = date.split([':', '/']);
    let d: i64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let mo = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(month))? as i64
        + 1;
    let y: i64 = parts.next()?.parse().ok()?;
    let h: i64 = parts.next()?.parse().ok()?;
    let mi: i64 = parts.next()?.parse().ok()?;
    let sec: i64 = parts.next()?.parse().ok()?;
    to_unix(y, mo, d, h, mi, sec, zone_offset(zone)?)
}

/// "2026-11-26T12:00:00+08:00", "...Z", fractions ignored.
fn parse_iso8601(s: &str) -> Option<u64> {
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.split('-');
    let (y, mo, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let zone_at = time.find(['Z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let mut c = clock.split(':');
    let h: i64 = c.next()?.parse().ok()?;
    let mi: i64 = c.next()?.parse().ok()?;
    let sec: i64 = c.next().unwrap_or("0").split('.').next()?.parse().ok()?;
    let offset = if zone.is_empty() || zone == "Z" {
        0
    } else {
        zone_offset(&zone.replace(':', ""))?
    };
    to_unix(y, mo, day, h, mi, sec, offset)
}

fn zone_offset(z: &str) -> Option<i64> {
    let z = z.trim();
    let (sign, digits) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    // Four ASCII digits (found by fuzzing: a multi-byte character made a
    // four-byte string that cannot be cut at byte 2).
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_and_json_lines_count_by_family_and_bad_lines_are_numbered() {
        let log = "\
192.0.2.7 - - [26/Nov/2026:12:00:01 +0000] \"GET / HTTP/1.1\" 200 512 \"-\" \"curl\"\n\
2001:db8::7 - - [26/Nov/2026:12:10:00 +0000] \"GET / HTTP/1.1\" 200 512 \"-\" \"curl\"\n\
2001:db8::7 - - [26/Nov/2026:20:10:00 +0800] \"GET /a HTTP/1.1\" 200 512 \"-\" \"curl\"\n\
::ffff:192.0.2.8 - - [26/Nov/2026:12:20:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"x\"\n\
this is not a log line\n\
{\"remote_addr\":\"2001:db8::9\",\"time_iso8601\":\"2026-11-26T12:30:00+00:00\",\"status\":200}\n\
{\"remote_addr\":\"2001:db8::9\"}\n";
        let mut report = LogReport::default();
        report.read(log.as_bytes()).unwrap();
        assert_eq!(report.bad_lines, 2);
        assert_eq!(report.first_bad, vec![5, 7]);
        assert_eq!(report.hours.len(), 1);
        let hour = report.hours.values().next().unwrap();
        assert_eq!(hour.requests, [2, 3]);
        assert_eq!([hour.clients[0].count(), hour.clients[1].count()], [2, 2]);
        // Absurd dates and zones are bad lines, not an overflow or a panic.
        let mut report = LogReport::default();
        report
            .read("192.0.2.7 - - [26/Nov/999999999999999:12:00:01 +0000] \"GET /\" 200 1\n".as_bytes())
            .unwrap();
        report
            .read("192.0.2.7 - - [26/Nov/2026:12:00:01 +0\u{fffd}] \"GET /\" 200 1\n".as_bytes())
            .unwrap();
        assert_eq!(report.bad_lines, 2);
    }
}
