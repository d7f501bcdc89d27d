//! A packet-level delay line for a kernel without `sch_netem`.
//!
//! nftables hands packets to an NFQUEUE; this program holds each one for the
//! delay of the first rule that matches it (by family, or by a prefix that
//! holds its source or destination) and then accepts it, or drops it with the
//! rule's loss probability. Packets no rule matches pass at once.
//!
//! Queueing in `prerouting` of the receiving namespace (one delay line per
//! direction) keeps the packets away from their sockets while they wait: TCP
//! small queues and early demux see them only after the verdict, when they
//! continue through the stack as if they had just arrived. No reinjection
//! through a TUN device and no policy routing are needed.

mod rule;
mod run;

pub use rule::{Rule, RuleError, Selector, classify};
pub use run::{DelayLine, RunError, Stats, run, run_with_tap};
