//! What a collector pushes to a central server (`collect --push`): one
//! batch per flush, with counters and day sketches, never an address of a
//! subscriber. A batch is named by its stream and sequence number, so a
//! batch sent again (after an outage or a restart) is stored once.

use crate::Family;
use crate::aggregate::Aggregator;
use crate::users::Sketch;
use serde::{Deserialize, Serialize};

/// The schema of [`Batch`]; a server refuses others.
pub const BATCH_SCHEMA: u32 = 1;

/// Sketch kinds a collector sends.
pub const SKETCH_KINDS: [&str; 2] = ["subscribers", "addresses"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Batch {
    pub schema_version: u32,
    /// Made once per spool (random): sequence numbers count within it.
    pub stream: String,
    pub seq: i64,
    /// The intervals the batch covers, Unix seconds.
    pub first_start: i64,
    pub last_end: i64,
    pub traffic: Vec<PushedTraffic>,
    pub sketches: Vec<PushedSketch>,
    /// Batches the collector dropped because its spool was full, since it started.
    #[serde(default)]
    pub spool_dropped: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PushedTraffic {
    pub start: i64,
    pub seconds: i64,
    pub exporter: String,
    pub interface: i64,
    pub asn: i64,
    pub organisation: String,
    pub region: String,
    pub family: Family,
    pub bytes: i64,
    pub packets: i64,
    pub records: i64,
    /// False for records whose sampling rate nobody stated.
    pub scaled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PushedSketch {
    /// "YYYY-MM-DD".
    pub day: String,
    pub organisation: String,
    pub kind: String,
    pub sketch: Sketch,
}

/// The server's answer to a batch.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Stored,
    /// It had been stored before; nothing was added.
    Duplicate,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BatchAck {
    pub status: BatchStatus,
    pub seq: i64,
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Batch {
    /// The counters and sketches of an aggregator (empty ones included: a
    /// flush with no traffic still says the collector is alive).
    pub fn of(agg: &Aggregator, interval: u64, stream: &str, seq: i64, spool_dropped: i64) -> Batch {
        let mut traffic: Vec<PushedTraffic> = agg
            .traffic()
            .map(|(k, c)| PushedTraffic {
                start: signed(k.start),
                seconds: signed(interval),
                exporter: k.exporter.to_string(),
                interface: i64::from(k.interface),
                asn: i64::from(k.asn),
                organisation: k.organisation.to_string(),
                region: k.region.to_string(),
                family: k.family,
                bytes: signed(c.bytes),
                packets: signed(c.packets),
                records: signed(c.records),
                scaled: true,
            })
            .collect();
        traffic.extend(
            agg.unknown_rate
                .iter()
                .map(|((start, exporter, family), c)| PushedTraffic {
                    start: signed(*start),
                    seconds: signed(interval),
                    exporter: exporter.to_string(),
                    interface: 0,
                    asn: 0,
                    organisation: String::new(),
                    region: String::new(),
                    family: *family,
                    bytes: signed(c.bytes),
                    packets: signed(c.packets),
                    records: signed(c.records),
                    scaled: false,
                }),
        );
        let mut sketches = Vec::new();
        for ((day, organisation), s) in agg.users() {
            for (kind, sketch) in SKETCH_KINDS.iter().zip([&s.subscribers, &s.addresses]) {
                sketches.push(PushedSketch {
                    day: day.to_string(),
                    organisation: organisation.to_string(),
                    kind: kind.to_string(),
                    sketch: sketch.clone(),
                });
            }
        }
        let first_start = traffic.iter().map(|t| t.start).min().unwrap_or(0);
        let last_end = traffic.iter().map(|t| t.start + t.seconds).max().unwrap_or(0);
        Batch {
            schema_version: BATCH_SCHEMA,
            stream: stream.to_string(),
            seq,
            first_start,
            last_end,
            traffic,
            sketches,
            spool_dropped,
        }
    }
}
