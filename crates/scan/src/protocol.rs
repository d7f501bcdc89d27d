//! The agent API's messages (`/agent/v1/…`), shared by the server and the
//! agent so both sides agree on one definition.

use crate::config::RunConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use v6scope_model::{DomainObservation, Target, Vantage};

/// The path prefix of the agent API.
pub const AGENT_API: &str = "/agent/v1";

/// `POST /agent/v1/register`: who the agent is and what its self-test found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub vantage: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Targets it evaluates at once: the server never leases it more.
    pub concurrency: i64,
    pub version: String,
    pub selftest: Vantage,
    /// The agent's clock (Unix seconds) when it sent this: the server
    /// compares it with its own, since the agent's certificate checks run on
    /// its clock.
    #[serde(default)]
    pub clock_unix: Option<i64>,
}

/// The server's answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registered {
    pub agent: String,
    /// Seconds between heartbeats; each extends the agent's leases.
    pub heartbeat_seconds: u64,
    /// Seconds a lease lasts without a heartbeat.
    pub lease_seconds: u64,
    /// Results per delivery at most.
    pub max_batch: usize,
}

/// `POST /agent/v1/claim`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Targets wanted at most (the server also caps at the declared concurrency).
    pub max: i64,
}

/// Targets leased to the agent, and the configuration of each of their runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claimed {
    pub leases: Vec<LeasedTarget>,
    pub runs: BTreeMap<i64, RunConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeasedTarget {
    pub run: i64,
    pub idx: i64,
    pub target: Target,
}

/// `POST /agent/v1/results`: observations only; the server judges them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    pub results: Vec<ResultOf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultOf {
    pub run: i64,
    pub idx: i64,
    pub observation: DomainObservation,
}

/// What became of each delivered result, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Acks {
    pub acks: Vec<Ack>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ack {
    Stored,
    /// Stored before (a resend): nothing counted twice.
    Duplicate,
    /// Not leased to this agent (never, or no longer): refused.
    NotGiven,
}

/// `POST /agent/v1/heartbeat`: how the agent is doing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Heartbeat {
    /// Targets being evaluated now.
    pub in_flight: i64,
    /// Results waiting to be delivered.
    pub unsent: i64,
    /// The agent's clock (Unix seconds) when it sent this.
    #[serde(default)]
    pub clock_unix: Option<i64>,
}
