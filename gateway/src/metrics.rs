//! The gateway's metric names, label keys and descriptions, in one place.
//!
//! Labels stay low-cardinality: error codes, route templates and status codes, never a list or
//! user id.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

use crate::error::ErrorCode;
use crate::op_metrics::OpKind;

/// Gauge: open WebSocket connections.
pub const CONNECTIONS: &str = "listwire_gateway_connections";
/// Gauge: live subscriptions over all connections.
pub const SUBSCRIPTIONS: &str = "listwire_gateway_subscriptions";
/// Counter: frames written to WebSocket clients.
pub const FRAMES_SENT_TOTAL: &str = "listwire_gateway_frames_sent_total";
/// Counter: connections closed because their outbound queue overflowed (incremented by the sink).
pub const SLOW_CONSUMER_CLOSES_TOTAL: &str = "listwire_gateway_slow_consumer_closes_total";
/// Counter: errors answered to clients, labelled by [`LABEL_CODE`].
pub const ERRORS_TOTAL: &str = "listwire_gateway_errors_total";
/// Counter: HTTP requests, labelled by [`LABEL_ROUTE`] and [`LABEL_STATUS`].
pub const HTTP_REQUESTS_TOTAL: &str = "listwire_gateway_http_requests_total";
/// Counter: requests and ops refused by a rate limiter, labelled by [`LABEL_REASON`].
pub const RATE_LIMITED_TOTAL: &str = "listwire_gateway_rate_limited_total";
/// Histogram, label [`LABEL_KIND`]: an op's arrival at the gateway (HTTP or WebSocket) to its
/// answer, forwarding to a remote owner included. On a WebSocket the answer is then queued for
/// the socket; that wait is in [`DELIVERY_SECONDS`].
pub const OP_SECONDS: &str = "listwire_gateway_op_seconds";
/// Counter, labels [`LABEL_KIND`] and [`LABEL_CODE`]: ops answered with an error, by code.
/// With [`OP_SECONDS`]' count (every op answered) it gives the op error ratio.
pub const OP_ERRORS_TOTAL: &str = "listwire_gateway_op_errors_total";
/// Histogram, one sample per socket write: how long the oldest frame in it waited, from
/// reaching this node's outbound queue for a connection (from a local owner, a follow stream
/// from a remote one, an ack) until the write finished or timed out.
pub const DELIVERY_SECONDS: &str = "listwire_gateway_delivery_seconds";
/// Counter: frames written more than [`LATE_AFTER`] after they were queued (frame-weighted:
/// with [`FRAMES_SENT_TOTAL`] it says what share of frames arrive late).
pub const FRAMES_LATE_TOTAL: &str = "listwire_gateway_frames_late_total";
/// A frame written this long after it was queued is late.
pub const LATE_AFTER: std::time::Duration = std::time::Duration::from_millis(100);
/// Histogram: frames waiting in a connection's outbound queue when its writer wakes.
pub const OUTBOUND_QUEUE_FRAMES: &str = "listwire_gateway_outbound_queue_frames";
/// Counter: WebSocket connections accepted.
pub const CONNECTIONS_ACCEPTED_TOTAL: &str = "listwire_gateway_connections_accepted_total";
/// Counter: WebSocket upgrades refused, labelled by [`LABEL_REASON`].
pub const CONNECTIONS_REFUSED_TOTAL: &str = "listwire_gateway_connections_refused_total";

/// Label: the protocol error code.
pub const LABEL_CODE: &str = "code";
/// Label: the matched route template (`/v1/lists/{id}`).
pub const LABEL_ROUTE: &str = "route";
/// Label: why something was refused (a rate limiter: `ops`, `auth`, `admin`; a connection:
/// `limit`, `user_limit`, `unauthorized`, `shutting_down`).
pub const LABEL_REASON: &str = "reason";
/// Label: an op's kind, `edit` or `vote`.
pub const LABEL_KIND: &str = "kind";
/// Label: the HTTP status code.
pub const LABEL_STATUS: &str = "status";

/// Registers the description of every gateway metric with the installed recorder.
pub fn describe_metrics() {
    describe_gauge!(CONNECTIONS, "open websocket connections");
    describe_gauge!(
        SUBSCRIPTIONS,
        "live list subscriptions over all connections"
    );
    describe_counter!(FRAMES_SENT_TOTAL, "frames written to websocket clients");
    describe_counter!(
        SLOW_CONSUMER_CLOSES_TOTAL,
        "connections closed because their outbound queue overflowed"
    );
    describe_counter!(
        ERRORS_TOTAL,
        "errors answered to clients, by protocol error code"
    );
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "http requests by route template and status"
    );
    describe_counter!(
        RATE_LIMITED_TOTAL,
        "requests and ops refused by a rate limiter, by limiter"
    );
    describe_histogram!(
        OP_SECONDS,
        Unit::Seconds,
        "op arrival at the gateway to its answer (ack or error), forwarding included, by kind"
    );
    describe_counter!(
        OP_ERRORS_TOTAL,
        "ops and votes answered with an error, by kind and protocol error code"
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "a frame's wait from this node's outbound queue to the client's socket"
    );
    describe_counter!(
        FRAMES_LATE_TOTAL,
        "frames written to a websocket more than 100 ms after they were queued"
    );
    describe_histogram!(
        OUTBOUND_QUEUE_FRAMES,
        Unit::Count,
        "frames queued for a connection when its writer wakes"
    );
    describe_counter!(CONNECTIONS_ACCEPTED_TOTAL, "websocket connections accepted");
    describe_counter!(
        CONNECTIONS_REFUSED_TOTAL,
        "websocket upgrades refused, by reason"
    );
}

/// Registers the gateway's series at zero, so `/metrics` shows them before their first event.
pub fn register_metrics() {
    metrics::gauge!(CONNECTIONS).increment(0.0);
    metrics::gauge!(SUBSCRIPTIONS).increment(0.0);
    for name in [
        FRAMES_SENT_TOTAL,
        FRAMES_LATE_TOTAL,
        SLOW_CONSUMER_CLOSES_TOTAL,
        CONNECTIONS_ACCEPTED_TOTAL,
    ] {
        metrics::counter!(name).increment(0);
    }
    for code in ErrorCode::ALL {
        metrics::counter!(ERRORS_TOTAL, LABEL_CODE => code.as_str()).increment(0);
    }
    for reason in ["ops", "auth", "admin"] {
        metrics::counter!(RATE_LIMITED_TOTAL, LABEL_REASON => reason).increment(0);
    }
    for reason in ["limit", "user_limit", "unauthorized", "shutting_down"] {
        metrics::counter!(CONNECTIONS_REFUSED_TOTAL, LABEL_REASON => reason).increment(0);
    }
    for kind in OpKind::ALL {
        drop(metrics::histogram!(OP_SECONDS, LABEL_KIND => kind.as_str()));
        for code in ErrorCode::ALL {
            crate::op_metrics::op_errors(kind, code).increment(0);
        }
    }
    drop(metrics::histogram!(DELIVERY_SECONDS));
    drop(metrics::histogram!(OUTBOUND_QUEUE_FRAMES));
}

/// The collector of the `process_*` metrics, described with the installed recorder.
pub(crate) fn process_collector() -> metrics_process::Collector {
    let collector = metrics_process::Collector::default();
    collector.describe();
    collector
}

/// Counts one error answered to a client.
pub(crate) fn count_error(code: ErrorCode) {
    metrics::counter!(ERRORS_TOTAL, LABEL_CODE => code.as_str()).increment(1);
}
