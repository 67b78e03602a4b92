//! Metric names of the node's cluster layer (routing, forwarding, follows, handoffs).

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, histogram, Unit};

/// Counter: ops forwarded to another node (attempts, retries included).
pub const FORWARDED_OPS_TOTAL: &str = "listwire_forwarded_ops_total";
/// Counter: ops refused at once because the queue to their owner node was full.
pub const FORWARD_QUEUE_FULL_TOTAL: &str = "listwire_forward_queue_full_total";
/// Histogram: ops per forwarded batch.
pub const FORWARD_BATCH_OPS: &str = "listwire_forward_batch_ops";
/// Histogram: round trip of a forwarded batch, until every op in it is durable at the owner.
pub const FORWARD_SECONDS: &str = "listwire_forward_seconds";
/// Counter: op attempts retried after `moved`, `busy` or `unavailable`, by code.
pub const OP_RETRIES_TOTAL: &str = "listwire_op_retries_total";
/// Gauge: lists this node follows for its connections.
pub const FOLLOWED_LISTS: &str = "listwire_followed_lists";
/// Counter: node subscriptions reopened at a (new) owner.
pub const FOLLOW_RESUBSCRIBES_TOTAL: &str = "listwire_follow_resubscribes_total";
/// Counter: placement changes (views whose serving hosts differ from the previous one's).
pub const PLACEMENT_CHANGES_TOTAL: &str = "listwire_placement_changes_total";
/// Counter: lists handed off because this node no longer owned them.
pub const LISTS_MOVED_TOTAL: &str = "listwire_lists_moved_total";
/// Histogram: time from the host asking a list to hand off until it left this node.
pub const HANDOFF_SECONDS: &str = "listwire_handoff_seconds";
/// Histogram: how long loading a list waited for its previous holder to settle it.
pub const SETTLE_SECONDS: &str = "listwire_settle_seconds";
/// Counter: settle requests that failed (the holder was gone or slow); the list loaded anyway.
pub const SETTLE_FAILURES_TOTAL: &str = "listwire_settle_failures_total";
/// Counter: settle requests not waited for (sent in the background) because the holder failed
/// one moments before.
pub const SETTLE_SKIPPED_TOTAL: &str = "listwire_settle_skipped_total";
/// Counter: pauses of this node long enough that others may have moved its lists.
pub const PAUSES_TOTAL: &str = "listwire_pauses_total";

/// Registers help text for the metrics above.
pub fn describe() {
    describe_counter!(
        FORWARDED_OPS_TOTAL,
        "ops sent to the node that owns their list"
    );
    describe_counter!(
        FORWARD_QUEUE_FULL_TOTAL,
        "ops refused busy because the queue to their owner node was full"
    );
    describe_histogram!(FORWARD_BATCH_OPS, Unit::Count, "ops per forwarded batch");
    describe_histogram!(
        FORWARD_SECONDS,
        Unit::Seconds,
        "round trip of a forwarded batch, until its ops are durable at the owner"
    );
    describe_counter!(
        OP_RETRIES_TOTAL,
        "op attempts retried at this gateway node, by code"
    );
    describe_gauge!(
        FOLLOWED_LISTS,
        "lists this node follows for its connections"
    );
    describe_counter!(
        FOLLOW_RESUBSCRIBES_TOTAL,
        "node subscriptions reopened at a list's (new) owner"
    );
    describe_counter!(PLACEMENT_CHANGES_TOTAL, "changes of the serving hosts");
    describe_counter!(LISTS_MOVED_TOTAL, "lists handed off by this node");
    describe_histogram!(
        HANDOFF_SECONDS,
        Unit::Seconds,
        "time from asking a list to hand off until it left this node (flushed, snapshotted)"
    );
    describe_histogram!(
        SETTLE_SECONDS,
        Unit::Seconds,
        "time a list's load waited for its previous holder to settle it"
    );
    describe_counter!(
        SETTLE_FAILURES_TOTAL,
        "settle requests that failed; the list loaded without waiting"
    );
    describe_counter!(
        SETTLE_SKIPPED_TOTAL,
        "settle requests not waited for because the holder failed one within the last 10 s (each is sent in the background when one of 32 slots is free, else not at all)"
    );
    describe_counter!(
        PAUSES_TOTAL,
        "pauses of this process long enough that its lists may have moved"
    );
}

/// Registers the cluster's rare-event counters and histograms at zero, so `/metrics` shows
/// them (and a dashboard or an alert can rely on them) before their first event: handoffs,
/// placement changes, forwarding, failed dials, refused handshakes, fencing refusals.
pub fn register() {
    let counters = [
        FORWARDED_OPS_TOTAL,
        FORWARD_QUEUE_FULL_TOTAL,
        PLACEMENT_CHANGES_TOTAL,
        LISTS_MOVED_TOTAL,
        PAUSES_TOTAL,
        SETTLE_FAILURES_TOTAL,
        SETTLE_SKIPPED_TOTAL,
        FOLLOW_RESUBSCRIBES_TOTAL,
        listwire_cluster::metrics::CONNECT_ERRORS_TOTAL,
        listwire_cluster::metrics::REQUESTS_FAILED_TOTAL,
        listwire_cluster::metrics::REQUESTS_TIMED_OUT_TOTAL,
        listwire_cluster::metrics::BUSY_REJECTIONS_TOTAL,
        listwire_cluster::metrics::QUEUE_FULL_TOTAL,
    ];
    for name in counters {
        counter!(name).increment(0);
    }
    counter!(
        listwire_cluster::metrics::HANDSHAKE_REFUSALS_TOTAL,
        listwire_cluster::metrics::LABEL_REASON => "auth"
    )
    .increment(0);
    metrics::gauge!(FOLLOWED_LISTS).increment(0.0);
    crate::metrics::stale_owner().increment(0);
    crate::metrics::not_owner_refusals().increment(0);
    for name in [
        HANDOFF_SECONDS,
        SETTLE_SECONDS,
        FORWARD_SECONDS,
        FORWARD_BATCH_OPS,
    ] {
        // Registering a histogram makes it render (empty) without recording a sample.
        drop(histogram!(name));
    }
}
