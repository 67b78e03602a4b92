//! The cluster crate's metric names, label keys and descriptions, in one place.
//!
//! Labels stay low-cardinality (a node state, a handshake refusal reason); never a node id of
//! a client, a key or a request id. Call [`describe_metrics`] once after installing a recorder.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

use crate::membership::{NodeState, View};

/// Gauge: members in the view, labelled by [`LABEL_STATE`] (a node state, or `dead`).
pub const MEMBERS: &str = "listwire_cluster_members";
/// Gauge: serving hosts (placement candidates) in the view.
pub const SERVING_HOSTS: &str = "listwire_cluster_serving_hosts";
/// Gauge: 1 when the live hosts are a strict majority of the known hosts, else 0.
pub const HAS_MAJORITY: &str = "listwire_cluster_has_majority";
/// Gauge: authenticated internode connections open now (dialled and accepted).
pub const CONNECTIONS: &str = "listwire_cluster_connections";
/// Counter: authenticated internode connections opened (dialled or accepted).
pub const CONNECTIONS_OPENED_TOTAL: &str = "listwire_cluster_connections_opened_total";
/// Counter: authenticated internode connections closed, for any reason.
pub const CONNECTIONS_CLOSED_TOTAL: &str = "listwire_cluster_connections_closed_total";
/// Counter: dial attempts that failed before a connection was authenticated.
pub const CONNECT_ERRORS_TOTAL: &str = "listwire_cluster_connect_errors_total";
/// Counter: handshakes refused, labelled by [`LABEL_REASON`].
pub const HANDSHAKE_REFUSALS_TOTAL: &str = "listwire_cluster_handshake_refusals_total";
/// Counter: requests and stream opens sent.
pub const REQUESTS_SENT_TOTAL: &str = "listwire_cluster_requests_sent_total";
/// Counter: requests that failed for a reason other than their deadline (connection lost,
/// peer busy, not connected, queue full).
pub const REQUESTS_FAILED_TOTAL: &str = "listwire_cluster_requests_failed_total";
/// Counter: requests whose deadline expired before the response arrived.
pub const REQUESTS_TIMED_OUT_TOTAL: &str = "listwire_cluster_requests_timed_out_total";
/// Histogram: time from sending a request to its response, in seconds.
pub const REQUEST_LATENCY_SECONDS: &str = "listwire_cluster_request_latency_seconds";
/// Counter: requests handed to the local handler.
pub const REQUESTS_HANDLED_TOTAL: &str = "listwire_cluster_requests_handled_total";
/// Counter: incoming requests and streams refused as busy (per-connection limit reached).
pub const BUSY_REJECTIONS_TOTAL: &str = "listwire_cluster_busy_rejections_total";
/// Counter: stream items pushed by local handlers.
pub const STREAM_ITEMS_SENT_TOTAL: &str = "listwire_cluster_stream_items_sent_total";
/// Counter: stream items received from peers.
pub const STREAM_ITEMS_RECEIVED_TOTAL: &str = "listwire_cluster_stream_items_received_total";
/// Counter: frames refused because an outbound queue or a stream window was full.
pub const QUEUE_FULL_TOTAL: &str = "listwire_cluster_queue_full_total";
/// Counter: bytes written to internode connections (frame payloads and length prefixes).
pub const BYTES_SENT_TOTAL: &str = "listwire_cluster_bytes_sent_total";
/// Counter: bytes read from internode connections.
pub const BYTES_RECEIVED_TOTAL: &str = "listwire_cluster_bytes_received_total";

/// Label: a node state (`joining`, `serving`, `draining`, `left`) or `dead`.
pub const LABEL_STATE: &str = "state";
/// Label: why a handshake was refused (`auth`, `cluster`, `node_id`, `version`, `protocol`).
pub const LABEL_REASON: &str = "reason";

/// Registers the description of every cluster metric with the installed recorder.
pub fn describe_metrics() {
    describe_gauge!(MEMBERS, "members in the membership view, by state or dead");
    describe_gauge!(SERVING_HOSTS, "serving hosts, the placement candidates");
    describe_gauge!(
        HAS_MAJORITY,
        "1 when live hosts are a strict majority of known hosts"
    );
    describe_gauge!(
        CONNECTIONS,
        "authenticated internode connections open now (dialled and accepted)"
    );
    describe_counter!(
        CONNECTIONS_OPENED_TOTAL,
        "authenticated internode connections opened"
    );
    describe_counter!(
        CONNECTIONS_CLOSED_TOTAL,
        "authenticated internode connections closed"
    );
    describe_counter!(CONNECT_ERRORS_TOTAL, "internode dial attempts that failed");
    describe_counter!(
        HANDSHAKE_REFUSALS_TOTAL,
        "internode handshakes refused, by reason"
    );
    describe_counter!(
        REQUESTS_SENT_TOTAL,
        "internode requests and stream opens sent"
    );
    describe_counter!(
        REQUESTS_FAILED_TOTAL,
        "internode requests failed before their deadline"
    );
    describe_counter!(
        REQUESTS_TIMED_OUT_TOTAL,
        "internode requests past their deadline"
    );
    describe_histogram!(
        REQUEST_LATENCY_SECONDS,
        Unit::Seconds,
        "internode request round-trip time"
    );
    describe_counter!(
        REQUESTS_HANDLED_TOTAL,
        "internode requests handed to the local handler"
    );
    describe_counter!(
        BUSY_REJECTIONS_TOTAL,
        "internode requests and streams refused as busy"
    );
    describe_counter!(STREAM_ITEMS_SENT_TOTAL, "internode stream items pushed");
    describe_counter!(
        STREAM_ITEMS_RECEIVED_TOTAL,
        "internode stream items received"
    );
    describe_counter!(
        QUEUE_FULL_TOTAL,
        "internode frames refused by a full queue or window"
    );
    describe_counter!(
        BYTES_SENT_TOTAL,
        Unit::Bytes,
        "bytes written to internode connections"
    );
    describe_counter!(
        BYTES_RECEIVED_TOTAL,
        Unit::Bytes,
        "bytes read from internode connections"
    );
}

/// Sets the membership gauges from a freshly published view.
pub(crate) fn record_view(view: &View) {
    for (state, count) in members_by_state(view) {
        metrics::gauge!(MEMBERS, LABEL_STATE => state).set(count as f64);
    }
    metrics::gauge!(SERVING_HOSTS).set(view.serving_hosts().len() as f64);
    metrics::gauge!(HAS_MAJORITY).set(if view.has_majority() { 1.0 } else { 0.0 });
}

/// The members of `view` by [`LABEL_STATE`]: the live ones by their state; a member that
/// announced `left` as `left`, live or not (it left on purpose: a drained, stopped node); every
/// other member that is not live as `dead` (it stopped without leaving, or is cut off).
fn members_by_state(view: &View) -> [(&'static str, usize); 5] {
    let count = |keep: &dyn Fn(&crate::membership::Member) -> bool| {
        view.members().filter(|m| keep(m)).count()
    };
    let live_in = |state: NodeState| count(&|m| m.is_live() && m.state() == state);
    [
        ("joining", live_in(NodeState::Joining)),
        ("serving", live_in(NodeState::Serving)),
        ("draining", live_in(NodeState::Draining)),
        ("left", count(&|m| m.state() == NodeState::Left)),
        (
            "dead",
            count(&|m| !m.is_live() && m.state() != NodeState::Left),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{Member, Roles};
    use crate::NodeId;

    fn host(name: &str, state: NodeState, is_live: bool) -> Member {
        Member::new(NodeId::new(name).unwrap(), 1)
            .with_roles(Roles::HOST)
            .with_state(state)
            .with_liveness(is_live)
    }

    // Goal: a node drained and stopped on purpose (it announced `left`, then went quiet) is
    // `left`, not `dead`, so a planned scale-in does not page anyone; a node that stopped
    // without leaving is `dead`.
    #[test]
    fn a_node_that_left_is_not_dead() {
        let view = View::new(
            NodeId::new("a").unwrap(),
            [
                host("a", NodeState::Serving, true),
                host("b", NodeState::Draining, true),
                host("c", NodeState::Left, false),
                host("d", NodeState::Serving, false),
                host("e", NodeState::Joining, true),
            ],
        );
        let counts = members_by_state(&view);
        assert_eq!(
            counts,
            [
                ("joining", 1),
                ("serving", 1),
                ("draining", 1),
                ("left", 1),
                ("dead", 1)
            ]
        );
    }
}
