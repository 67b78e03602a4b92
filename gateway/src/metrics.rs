//! The gateway's metric names, label keys and descriptions, in one place.
//!
//! Labels stay low-cardinality: error codes, route templates and status codes, never a list or
//! user id.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::ErrorCode;
use crate::router::OpOutcome;

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
/// answer, forwarding to a remote owner included: the ack latency a user sees.
pub const OP_SECONDS: &str = "listwire_gateway_op_seconds";
/// Histogram: a frame's wait from reaching this node's outbound queue for a connection (from a
/// local owner, or a follow stream from a remote one) until it is written to the socket.
pub const DELIVERY_SECONDS: &str = "listwire_gateway_delivery_seconds";
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
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "a frame's wait from this node's outbound queue to the client's socket"
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

/// An op's kind, for the [`LABEL_KIND`] label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// Anything but a vote.
    Edit,
    /// A vote or an unvote.
    Vote,
}

impl OpKind {
    const ALL: [OpKind; 2] = [OpKind::Edit, OpKind::Vote];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpKind::Edit => "edit",
            OpKind::Vote => "vote",
        }
    }
}

/// Counts one error answered to a client.
pub(crate) fn count_error(code: ErrorCode) {
    metrics::counter!(ERRORS_TOTAL, LABEL_CODE => code.as_str()).increment(1);
}

/// The [`OP_SECONDS`] handles, one per kind.
pub(crate) struct OpSeconds {
    edit: metrics::Histogram,
    vote: metrics::Histogram,
}

impl OpSeconds {
    pub(crate) fn new() -> Self {
        Self {
            edit: metrics::histogram!(OP_SECONDS, LABEL_KIND => OpKind::Edit.as_str()),
            vote: metrics::histogram!(OP_SECONDS, LABEL_KIND => OpKind::Vote.as_str()),
        }
    }

    /// Starts timing `op` (its JSON body) of `list`, labelled by its kind.
    pub(crate) fn start(&self, list: Uuid, op_id: Uuid, op: &RawValue) -> OpTimer {
        let kind = OpKind::of(op);
        let histogram = match kind {
            OpKind::Edit => self.edit.clone(),
            OpKind::Vote => self.vote.clone(),
        };
        OpTimer {
            histogram,
            kind,
            list,
            op_id,
            started: std::time::Instant::now(),
        }
    }
}

/// A running op's clock; [`OpTimer::finish`] records it, and logs the answer, when the op is
/// answered.
pub(crate) struct OpTimer {
    histogram: metrics::Histogram,
    kind: OpKind,
    list: Uuid,
    op_id: Uuid,
    started: std::time::Instant,
}

impl OpTimer {
    /// Records the op's latency and logs its answer (at debug; an internal error at warn).
    pub(crate) fn finish(self, outcome: &OpOutcome) {
        let elapsed = self.started.elapsed();
        self.histogram.record(elapsed.as_secs_f64());
        let (list_id, op_id, kind) = (self.list, self.op_id, self.kind.as_str());
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        match outcome {
            Ok(seq) => {
                tracing::debug!(%list_id, %op_id, kind, seq, elapsed_ms, "op acked");
            }
            Err(error) if error.code == ErrorCode::Internal => {
                tracing::warn!(%list_id, %op_id, kind, code = error.code.as_str(), elapsed_ms, "op failed");
            }
            Err(error) => {
                let code = error.code.as_str();
                tracing::debug!(%list_id, %op_id, kind, code, elapsed_ms, message = %error.message, "op refused");
            }
        }
    }
}

impl OpKind {
    /// The kind of an op body: its `kind` field says `vote` or `unvote`, or anything else.
    fn of(op: &RawValue) -> Self {
        #[derive(serde::Deserialize)]
        struct Peek<'a> {
            #[serde(borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        match serde_json::from_str::<Peek<'_>>(op.get()) {
            Ok(peek) if peek.kind == "vote" || peek.kind == "unvote" => OpKind::Vote,
            _ => OpKind::Edit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: votes and unvotes are told from every other op by their `kind` alone, whatever
    // else the op says (an item's text may well be "vote").
    #[test]
    fn op_kind_reads_the_kind_field() {
        let kind = |json: &str| {
            let raw = RawValue::from_string(json.to_owned()).unwrap();
            OpKind::of(&raw)
        };
        assert_eq!(kind(r#"{"kind":"vote","item":"x"}"#), OpKind::Vote);
        assert_eq!(kind(r#"{"item":"x", "kind" : "unvote"}"#), OpKind::Vote);
        assert_eq!(kind(r#"{"kind":"add_item","text":"vote"}"#), OpKind::Edit);
        assert_eq!(kind(r#"{"text":"\"kind\":\"vote\""}"#), OpKind::Edit);
        assert_eq!(kind("[]"), OpKind::Edit);
    }
}
