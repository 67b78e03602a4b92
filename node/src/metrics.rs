//! Metric names and handles of the node crate. Labels stay low-cardinality: never a list or
//! user id.

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};

const OPS_APPLIED: &str = "listwire_ops_applied_total";
const OPS_REJECTED: &str = "listwire_ops_rejected_total";
const VOTES_APPLIED: &str = "listwire_votes_applied_total";
const ACK_LATENCY: &str = "listwire_ack_latency_seconds";
const COMMIT_LATENCY: &str = "listwire_list_commit_seconds";
const COMMIT_EVENTS: &str = "listwire_list_commit_events";
const FANOUT_SUBSCRIBERS: &str = "listwire_fanout_subscribers";
const FRAMES_PUBLISHED: &str = "listwire_frames_published_total";
const ACTIVE_LISTS: &str = "listwire_active_lists";
const ACTIVATIONS: &str = "listwire_activations_total";
const ACTIVATION_SECONDS: &str = "listwire_activation_seconds";
const PASSIVATIONS: &str = "listwire_passivations_total";
const ADMISSION_REJECTIONS: &str = "listwire_admission_rejections_total";
const STALE_OWNER: &str = "listwire_stale_owner_rejections_total";
const SNAPSHOTS: &str = "listwire_snapshots_written_total";
const SNAPSHOT_FAILURES: &str = "listwire_snapshot_failures_total";
const HANDOFFS: &str = "listwire_list_handoffs_total";
const NOT_OWNER: &str = "listwire_not_owner_refusals_total";
const STALE_READS: &str = "listwire_stale_owner_reads_total";
/// Counter: node subscriptions dropped because their gateway node fell a queue behind.
pub const NODE_SUBSCRIBER_SLOW_TOTAL: &str = "listwire_node_subscriber_slow_total";
const DUPLICATE_OPS: &str = "listwire_duplicate_ops_total";

/// Registers descriptions once at startup.
pub fn describe() {
    describe_counter!(OPS_APPLIED, "ops applied and made durable");
    describe_counter!(
        OPS_REJECTED,
        "ops rejected by the list state machine, by code"
    );
    describe_counter!(VOTES_APPLIED, "votes and unvotes made durable");
    describe_histogram!(
        ACK_LATENCY,
        Unit::Seconds,
        "time from op admission to durable ack"
    );
    describe_histogram!(
        COMMIT_LATENCY,
        Unit::Seconds,
        "time of one list batch append"
    );
    describe_histogram!(COMMIT_EVENTS, "events per list batch append");
    describe_histogram!(FANOUT_SUBSCRIBERS, "subscribers a frame was queued to");
    describe_counter!(FRAMES_PUBLISHED, "frames published by list owners, by type");
    describe_gauge!(ACTIVE_LISTS, "active list actors on this node");
    describe_counter!(ACTIVATIONS, "list activations");
    describe_histogram!(
        ACTIVATION_SECONDS,
        Unit::Seconds,
        "time to load a list (snapshot + tail)"
    );
    describe_counter!(PASSIVATIONS, "list passivations");
    describe_counter!(
        ADMISSION_REJECTIONS,
        "messages refused with busy by admission control"
    );
    describe_counter!(
        STALE_OWNER,
        "appends that lost the conditional write (stale owner fenced off)"
    );
    describe_counter!(SNAPSHOTS, "list snapshots written");
    describe_counter!(
        NOT_OWNER,
        "requests refused as moved because this node does not own the list"
    );
    describe_counter!(
        HANDOFFS,
        "lists this node stopped hosting because it no longer owns them"
    );
    describe_counter!(
        STALE_READS,
        "list copies found behind the store (a follower was ahead, or a recheck after loading) and reloaded"
    );
    describe_counter!(
        NODE_SUBSCRIBER_SLOW_TOTAL,
        "node subscriptions dropped for falling a queue behind (the gateway resubscribes)"
    );
    describe_counter!(
        SNAPSHOT_FAILURES,
        "list snapshots that failed to write (retried with backoff)"
    );
    describe_counter!(
        DUPLICATE_OPS,
        "retried ops answered from the op-id dedupe window"
    );
}

/// Ops made durable.
pub fn ops_applied() -> Counter {
    counter!(OPS_APPLIED)
}
/// Ops rejected, by protocol code.
pub fn ops_rejected(code: &'static str) -> Counter {
    counter!(OPS_REJECTED, "code" => code)
}
/// Votes made durable.
pub fn votes_applied() -> Counter {
    counter!(VOTES_APPLIED)
}
/// Admission to durable ack.
pub fn ack_latency() -> Histogram {
    histogram!(ACK_LATENCY)
}
/// One list batch append.
pub fn commit_latency() -> Histogram {
    histogram!(COMMIT_LATENCY)
}
/// Events per list batch.
pub fn commit_events() -> Histogram {
    histogram!(COMMIT_EVENTS)
}
/// Subscribers per published frame.
pub fn fanout_subscribers() -> Histogram {
    histogram!(FANOUT_SUBSCRIBERS)
}
/// Frames published, by type.
pub fn frames_published(kind: &'static str) -> Counter {
    counter!(FRAMES_PUBLISHED, "type" => kind)
}
/// Active list actors.
pub fn active_lists() -> Gauge {
    gauge!(ACTIVE_LISTS)
}
/// Activations.
pub fn activations() -> Counter {
    counter!(ACTIVATIONS)
}
/// Activation time.
pub fn activation_seconds() -> Histogram {
    histogram!(ACTIVATION_SECONDS)
}
/// Passivations.
pub fn passivations() -> Counter {
    counter!(PASSIVATIONS)
}
/// Busy answers from admission control.
pub fn admission_rejections() -> Counter {
    counter!(ADMISSION_REJECTIONS)
}
/// Stale-owner fencing.
pub fn stale_owner() -> Counter {
    counter!(STALE_OWNER)
}
/// Snapshots written.
pub fn snapshots() -> Counter {
    counter!(SNAPSHOTS)
}
/// Requests refused because this node does not own the list.
pub fn not_owner_refusals() -> Counter {
    counter!(NOT_OWNER)
}
/// Lists handed off.
pub fn handoffs() -> Counter {
    counter!(HANDOFFS)
}
/// Seconds from the host asking a list to hand off until it left (flushed, snapshotted).
pub fn handoff_seconds() -> Histogram {
    histogram!(crate::cluster::metrics::HANDOFF_SECONDS)
}
/// List copies found behind the store (a follower ahead of them, a recheck after loading).
pub fn stale_reads() -> Counter {
    counter!(STALE_READS)
}
/// Snapshots that failed to write.
pub fn snapshot_failures() -> Counter {
    counter!(SNAPSHOT_FAILURES)
}
/// Retries answered from the dedupe window.
pub fn duplicate_ops() -> Counter {
    counter!(DUPLICATE_OPS)
}

/// The per-op handles of the list actors, resolved once per node: looking a metric up by name
/// hashes its key on every call, which showed up on the op path.
///
/// Create it after the recorder is installed, or the handles record into nothing.
#[derive(Clone)]
pub struct ListMetrics {
    /// Ops made durable.
    pub ops_applied: Counter,
    /// Votes made durable.
    pub votes_applied: Counter,
    /// Admission to durable ack.
    pub ack_latency: Histogram,
    /// One list batch append.
    pub commit_latency: Histogram,
    /// Events per list batch.
    pub commit_events: Histogram,
    /// Retries answered from the dedupe window.
    pub duplicate_ops: Counter,
    /// Delta frames published.
    pub deltas_published: Counter,
    /// Tally frames published.
    pub tallies_published: Counter,
    /// Subscribers per published frame.
    pub fanout_subscribers: Histogram,
}

impl ListMetrics {
    /// Resolves every handle from the installed recorder.
    pub fn new() -> Self {
        Self {
            ops_applied: ops_applied(),
            votes_applied: votes_applied(),
            ack_latency: ack_latency(),
            commit_latency: commit_latency(),
            commit_events: commit_events(),
            duplicate_ops: duplicate_ops(),
            deltas_published: frames_published("delta"),
            tallies_published: frames_published("tally"),
            fanout_subscribers: fanout_subscribers(),
        }
    }
}

impl Default for ListMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers the node's series at zero, so `/metrics` shows each (and a dashboard or an alert
/// can rely on it) before its first event. Labelled series appear once their label is seen.
pub fn register() {
    for name in [
        OPS_APPLIED,
        VOTES_APPLIED,
        ACTIVATIONS,
        PASSIVATIONS,
        ADMISSION_REJECTIONS,
        STALE_OWNER,
        SNAPSHOTS,
        SNAPSHOT_FAILURES,
        HANDOFFS,
        NOT_OWNER,
        STALE_READS,
        NODE_SUBSCRIBER_SLOW_TOTAL,
        DUPLICATE_OPS,
    ] {
        counter!(name).increment(0);
    }
    for kind in ["delta", "tally"] {
        frames_published(kind).increment(0);
    }
    active_lists().increment(0.0);
    for name in [
        ACK_LATENCY,
        COMMIT_LATENCY,
        COMMIT_EVENTS,
        FANOUT_SUBSCRIBERS,
        ACTIVATION_SECONDS,
    ] {
        // Registering a histogram makes it render (empty) without recording a sample.
        drop(histogram!(name));
    }
}
