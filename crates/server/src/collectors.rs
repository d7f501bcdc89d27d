//! The collector API (`/collector/v1/batches`): carriers' `v6scope collect
//! --push` send closed batches of counters and day sketches. A collector's
//! token opens only this route. Every figure is stored under the source
//! `collector:NAME`; sketches are unioned into the national ones and into
//! the collector's operator's (kinds `operator-subscribers`,
//! `operator-addresses`, organisation = operator).

use crate::{ApiError, SharedState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use v6scope_flow::push::{BATCH_SCHEMA, Batch, BatchAck, BatchStatus, SKETCH_KINDS};
use v6scope_flow::users::Sketch;
use v6scope_store::{BatchOutcome, BatchSketch, CollectorBatch, CollectorRow, TrafficRow};

pub(crate) fn routes() -> Router<SharedState> {
    Router::new().route("/collector/v1/batches", post(batch))
}

/// An authenticated collector call: the token is checked before a byte of
/// the body is read.
struct CollectorCall {
    collector: CollectorRow,
    batch: Batch,
}

impl FromRequest<SharedState> for CollectorCall {
    type Rejection = Response;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let collector = collector_of(request.headers(), state).await?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let batch = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the batch: {e}")).into_response())?;
        Ok(CollectorCall { collector, batch })
    }
}

/// The collector whose token the request bears (never a revoked one),
/// looked up before a byte of the body is read.
pub(crate) async fn collector_of(
    headers: &axum::http::HeaderMap,
    state: &SharedState,
) -> Result<CollectorRow, Response> {
    let hash = crate::api::bearer_token(headers)
        .map(crate::token_hash)
        .ok_or_else(|| ApiError::Unauthorized.into_response())?;
    state
        .store(move |s| Ok(s.collector_by_token(&hash)?))
        .await
        .map_err(IntoResponse::into_response)?
        .ok_or_else(|| ApiError::Unauthorized.into_response())
}

/// Earliest interval a batch may hold (2000-01-01): older is a broken clock.
const EARLIEST: i64 = 946_684_800;
/// How far ahead of the server's clock an interval may start.
const FUTURE_SLACK: i64 = 86_400;
const MAX_TEXT: usize = 256;

fn text_ok(text: &str) -> bool {
    text.len() <= MAX_TEXT && !text.chars().any(char::is_control)
}

/// Checks a batch whole before anything is stored, naming the first bad row.
fn check(batch: &Batch, now: i64) -> Result<(), ApiError> {
    let bad = |what: String| Err(ApiError::Unprocessable(what));
    if batch.schema_version != BATCH_SCHEMA {
        return bad(format!(
            "batch schema {} (this server takes {BATCH_SCHEMA})",
            batch.schema_version
        ));
    }
    if batch.stream.is_empty() || batch.stream.len() > 64 || !batch.stream.chars().all(|c| c.is_ascii_alphanumeric()) {
        return bad("stream: 1 to 64 ASCII letters or digits".into());
    }
    if batch.seq < 0 || batch.spool_dropped < 0 {
        return bad("seq and spool_dropped are never negative".into());
    }
    for (i, t) in batch.traffic.iter().enumerate() {
        let why = if t.start < EARLIEST || t.start > now + FUTURE_SLACK {
            Some(format!("start {} is not a plausible time", t.start))
        } else if !(1..=86_400).contains(&t.seconds) {
            Some(format!("seconds {} (1 to 86400)", t.seconds))
        } else if t.bytes < 0 || t.packets < 0 || t.records < 0 {
            Some("negative counter".into())
        } else if !(0..=i64::from(u32::MAX)).contains(&t.interface) || !(0..=i64::from(u32::MAX)).contains(&t.asn) {
            Some("interface and asn are 32-bit unsigned".into())
        } else if !(text_ok(&t.exporter) && text_ok(&t.organisation) && text_ok(&t.region)) {
            Some(format!(
                "exporter, organisation and region: at most {MAX_TEXT} bytes, no control characters"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return bad(format!("traffic[{i}]: {why}"));
        }
    }
    for (i, s) in batch.sketches.iter().enumerate() {
        let day_ok = v6scope_flow::aggregate::day_start(&s.day)
            .is_some_and(|start| (EARLIEST..=now + FUTURE_SLACK).contains(&(start as i64)));
        let why = if !day_ok {
            Some(format!(
                "day '{}' is not a plausible YYYY-MM-DD",
                s.day.chars().take(20).collect::<String>()
            ))
        } else if !SKETCH_KINDS.contains(&s.kind.as_str()) {
            Some(format!("kind must be one of {SKETCH_KINDS:?}"))
        } else if !text_ok(&s.organisation) {
            Some(format!("organisation: at most {MAX_TEXT} bytes, no control characters"))
        } else {
            None
        };
        if let Some(why) = why {
            return bad(format!("sketches[{i}]: {why}"));
        }
    }
    Ok(())
}

async fn batch(State(state): State<SharedState>, call: CollectorCall) -> Result<Response, ApiError> {
    let now = crate::scheduler::now();
    let CollectorCall { collector, batch } = call;
    check(&batch, now)?;
    let traffic: Vec<TrafficRow> = batch
        .traffic
        .iter()
        .map(|t| TrafficRow {
            start: t.start,
            seconds: t.seconds,
            source: String::new(),
            exporter: t.exporter.clone(),
            interface: t.interface,
            asn: t.asn,
            organisation: t.organisation.clone(),
            region: t.region.clone(),
            family: t.family,
            bytes: t.bytes,
            packets: t.packets,
            records: t.records,
            scaled: t.scaled,
        })
        .collect();
    let mut sketches: Vec<BatchSketch> = Vec::with_capacity(batch.sketches.len() * 2);
    for s in &batch.sketches {
        let bytes = s.sketch.to_bytes();
        sketches.push(BatchSketch {
            day: s.day.clone(),
            organisation: s.organisation.clone(),
            kind: s.kind.clone(),
            sketch: bytes.clone(),
        });
        sketches.push(BatchSketch {
            day: s.day.clone(),
            organisation: collector.operator.clone(),
            kind: format!("operator-{}", s.kind),
            sketch: bytes,
        });
    }
    // One order for every writer: two batches merging the same sketches
    // take their locks in the same order and cannot deadlock.
    sketches.sort_by(|a, b| (&a.day, &a.organisation, &a.kind).cmp(&(&b.day, &b.organisation, &b.kind)));
    let (stream, seq, first_start, last_end, dropped) = (
        batch.stream,
        batch.seq,
        batch.first_start,
        batch.last_end,
        batch.spool_dropped,
    );
    let rows = traffic.len() + batch.sketches.len();
    let clickhouse = state.traffic.clone();
    let outcome = state
        .store(move |s| {
            // With ClickHouse the counters go there first, unless the batch
            // was stored before; the store then records the batch and its
            // sketches. A server that dies between the two counts that one
            // batch twice when it is resent (docs/OPERATIONS.md).
            let traffic: &[TrafficRow] = match &clickhouse {
                Some(ch) => {
                    if s.batch_stored(collector.id, &stream, seq)? {
                        &[]
                    } else {
                        let source = format!("collector:{}", collector.name);
                        let rows: Vec<TrafficRow> = traffic
                            .iter()
                            .cloned()
                            .map(|r| TrafficRow {
                                source: source.clone(),
                                ..r
                            })
                            .collect();
                        ch.insert(&rows)?;
                        &[]
                    }
                }
                None => &traffic,
            };
            let batch = CollectorBatch {
                stream: &stream,
                seq,
                first_start,
                last_end,
                traffic,
                sketches: &sketches,
                spool_dropped: dropped,
            };
            Ok(s.store_batch(collector.id, &batch, &mut merge_sketch, now)?)
        })
        .await?;
    state.metrics.collector_rows.inc_by(if outcome == BatchOutcome::Stored {
        rows as u64
    } else {
        0
    });
    let status = match outcome {
        BatchOutcome::Stored => BatchStatus::Stored,
        BatchOutcome::Duplicate => BatchStatus::Duplicate,
    };
    Ok(axum::Json(BatchAck { status, seq }).into_response())
}

/// The union of a stored sketch and an arriving one; a stored sketch that
/// cannot be read (damaged, or of the old format) is an error, never
/// silently replaced: the batch is refused and the collector keeps it.
fn merge_sketch(stored: Option<&[u8]>, arriving: &[u8]) -> Result<Vec<u8>, String> {
    let mut merged = Sketch::from_bytes(arriving).map_err(|e| e.to_string())?;
    if let Some(stored) = stored {
        let old = Sketch::from_bytes(stored).map_err(|e| format!("the stored sketch: {e}"))?;
        merged.merge(&old).map_err(|e| e.to_string())?;
    }
    Ok(merged.to_bytes())
}

/// Collectors' state for `/metrics`, read from the store at scrape time.
pub(crate) fn export(state: &SharedState, collectors: &[CollectorRow]) {
    let g = &state.metrics.collectors;
    for family in [&g.last_push_age, &g.lag, &g.batches, &g.duplicates, &g.spool_dropped] {
        family.clear();
    }
    let now = crate::scheduler::now();
    let live: Vec<&CollectorRow> = collectors.iter().filter(|c| !c.revoked).collect();
    g.count.set(live.len() as i64);
    for c in live {
        let labels = crate::scheduler::CollectorLabels {
            collector: c.name.clone(),
            operator: c.operator.clone(),
        };
        if let Some(at) = c.last_push {
            g.last_push_age.get_or_create(&labels).set(now - at);
        }
        if let Some(end) = c.last_interval_end {
            g.lag.get_or_create(&labels).set(now - end);
        }
        g.batches.get_or_create(&labels).set(c.batches);
        g.duplicates.get_or_create(&labels).set(c.duplicates);
        g.spool_dropped.get_or_create(&labels).set(c.spool_dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6scope_flow::push::{PushedSketch, PushedTraffic};

    fn batch() -> Batch {
        Batch {
            schema_version: BATCH_SCHEMA,
            stream: "abc123".into(),
            seq: 1,
            first_start: 1_796_000_000,
            last_end: 1_796_000_060,
            traffic: vec![PushedTraffic {
                start: 1_796_000_000,
                seconds: 60,
                exporter: "192.0.2.1".into(),
                interface: 3,
                asn: 64500,
                organisation: "Mobile".into(),
                region: "BJ".into(),
                family: v6scope_flow::Family::Ipv6,
                bytes: 1000,
                packets: 10,
                records: 1,
                scaled: true,
            }],
            sketches: vec![PushedSketch {
                day: "2026-12-01".into(),
                organisation: "Mobile".into(),
                kind: "subscribers".into(),
                sketch: Sketch::default(),
            }],
            spool_dropped: 0,
        }
    }

    #[test]
    fn a_batch_is_checked_whole_and_the_bad_row_is_named() {
        let now = 1_796_100_000;
        assert!(check(&batch(), now).is_ok());
        let mut b = batch();
        b.traffic.push(PushedTraffic {
            start: 5,
            ..b.traffic[0].clone()
        });
        assert!(check(&b, now).unwrap_err().to_string().contains("traffic[1]: start 5"));
        let mut b = batch();
        b.traffic[0].bytes = -1;
        assert!(check(&b, now).unwrap_err().to_string().contains("traffic[0]: negative"));
        let mut b = batch();
        b.sketches[0].kind = "passwords".into();
        assert!(check(&b, now).unwrap_err().to_string().contains("sketches[0]: kind"));
        let mut b = batch();
        b.sketches[0].day = "2026-13-45".into();
        assert!(check(&b, now).unwrap_err().to_string().contains("sketches[0]: day"));
        let mut b = batch();
        b.stream = "../etc".into();
        assert!(check(&b, now).is_err());
        let mut b = batch();
        b.schema_version = 2;
        assert!(check(&b, now).is_err());
    }

    #[test]
    fn a_damaged_stored_sketch_refuses_the_merge() {
        let mut s = Sketch::default();
        s.insert(1);
        assert!(merge_sketch(None, &s.to_bytes()).is_ok());
        assert!(merge_sketch(Some(b"{\"old\":1}"), &s.to_bytes()).is_err());
        assert!(merge_sketch(None, b"\x11").is_err());
    }
}
