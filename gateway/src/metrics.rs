//! The gateway's metric names, label keys and descriptions, in one place.
//!
//! Labels stay low-cardinality: error codes, route templates and status codes, never a list or
//! user id.

use metrics::{describe_counter, describe_gauge};

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
/// Counter: requests and ops refused by a rate limiter.
pub const RATE_LIMITED_TOTAL: &str = "listwire_gateway_rate_limited_total";

/// Label: the protocol error code.
pub const LABEL_CODE: &str = "code";
/// Label: the matched route template (`/v1/lists/{id}`).
pub const LABEL_ROUTE: &str = "route";
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
        "requests and ops refused by a rate limiter"
    );
}

/// Counts one error answered to a client.
pub(crate) fn count_error(code: crate::ErrorCode) {
    metrics::counter!(ERRORS_TOTAL, LABEL_CODE => code.as_str()).increment(1);
    if code == crate::ErrorCode::RateLimited {
        metrics::counter!(RATE_LIMITED_TOTAL).increment(1);
    }
}
