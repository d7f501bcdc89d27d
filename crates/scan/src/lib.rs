//! The scan engine that `scan`, the server's jobs and agents share.
//!
//! - [`RunConfig`]: what a run is (profiles, probe limits, crawl), typed and
//!   versioned, stored with the run so `--resume` and agents probe the
//!   same way; [`VantageSettings`] is what belongs to the machine that
//!   probes (its resolvers, CA files, self-test addresses).
//! - [`Runner`]: sets up the prober and the vantage self-test, then
//!   evaluates targets concurrently, holding back results taken while the
//!   resolvers were failing, until done or cancelled.
//! - [`Sink`]: where observations go: [`StoreSink`] judges them and writes
//!   them to a local store; an agent's sink sends them to a server.

mod config;
mod error;
mod fleet;
pub mod protocol;
mod runner;
mod select;
mod sink;

pub use config::{
    CombineRule, ConfigError, CrawlSettings, FleetSettings, ProbeSettings, RUN_CONFIG_VERSION, RunConfig,
    VantageSettings,
};
pub use error::{ScanError, SinkError};
pub use fleet::{EdgeAttribution, VANTAGES_CHECK, VantageVerdicts, combine, edge_rows};
pub use runner::{Outcome, Runner, fit_open_files, unprobed};
pub use select::Selector;
pub use sink::{Judged, Observer, Sink, StoreSink, judge, load_profiles};
pub use tokio_util::sync::CancellationToken;
