//! Metric names of the embedded backend, and their descriptions.
//!
//! Handles are created once, when the committer thread starts, so the hot path never
//! re-resolves a name. No metric carries a list or user id label: that would explode cardinality.

use ::metrics::{describe_counter, describe_histogram, Counter, Histogram, Unit};

/// Histogram: how many requests each group commit carried (one fsync per group).
pub const GROUP_COMMIT_REQUESTS: &str = "listwire_storage_group_commit_requests";
/// Histogram: wall time of one group commit, from validation to the end of the fsync.
pub const GROUP_COMMIT_SECONDS: &str = "listwire_storage_group_commit_seconds";
/// Counter: conditional appends that lost (the writer was stale).
pub const APPEND_CONFLICTS_TOTAL: &str = "listwire_storage_append_conflicts_total";
/// Counter: times the store became poisoned after a failed commit or fsync.
pub const POISONED_TOTAL: &str = "listwire_storage_poisoned_total";

/// Registers help text and units for every storage metric with the installed recorder.
/// Call it once at startup, after installing the recorder.
pub fn describe_metrics() {
    describe_histogram!(
        GROUP_COMMIT_REQUESTS,
        Unit::Count,
        "Requests carried by one group commit of the embedded store (one fsync per group)."
    );
    describe_histogram!(
        GROUP_COMMIT_SECONDS,
        Unit::Seconds,
        "Duration of one group commit of the embedded store, including the fsync."
    );
    describe_counter!(
        APPEND_CONFLICTS_TOTAL,
        Unit::Count,
        "Conditional appends rejected because the writer's first_seq did not follow the head."
    );
    describe_counter!(
        POISONED_TOTAL,
        Unit::Count,
        "Times the embedded store was poisoned by a failed commit or fsync."
    );
}

/// Metric handles used by the committer thread.
pub(crate) struct CommitterMetrics {
    pub(crate) group_requests: Histogram,
    pub(crate) group_seconds: Histogram,
    pub(crate) append_conflicts: Counter,
    pub(crate) poisoned: Counter,
}

impl CommitterMetrics {
    /// Resolves every handle against the recorder installed now.
    pub(crate) fn new() -> Self {
        Self {
            group_requests: ::metrics::histogram!(GROUP_COMMIT_REQUESTS),
            group_seconds: ::metrics::histogram!(GROUP_COMMIT_SECONDS),
            append_conflicts: ::metrics::counter!(APPEND_CONFLICTS_TOTAL),
            poisoned: ::metrics::counter!(POISONED_TOTAL),
        }
    }
}
