//! Plans as data: a plan's milestones (indicator, target, deadline) and the
//! judgement of a measured indicator against one: met, on track, behind,
//! with the gap.

pub mod edges;
pub mod history;
pub mod monthly;
pub mod operators;
pub mod plan;
pub mod render;
