//! One WebSocket connection: a reader task that turns client frames into router calls, and a
//! writer task that drains the connection's [`FrameSink`] queue into the socket.
//!
//! Written against a generic `Sink`/`Stream` of axum WebSocket messages, so unit tests drive it
//! with channels and integration tests with a real socket.
//!
//! How a connection ends, and the close frame it gets:
//! - the client closes or the socket fails: no close frame of ours;
//! - the outbound queue overflowed (the sink marks it slow): 1013;
//! - the server shuts down: 1001;
//! - a message beyond the hard size limit: 1009;
//! - nothing received within `idle_timeout`: 1008 "idle timeout";
//! - a burst not written within `write_timeout`: 1008 "write timeout".

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Message;
use futures_util::{Sink, Stream, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::deadlines::Deadlines;
use crate::error::{EdgeError, ErrorCode};
use crate::frames::{self, ClientFrame};
use crate::gateway::Inner;
use crate::metrics as names;
use crate::router::{Principal, Reply};
use crate::sink::FrameSink;

/// Close codes (RFC 6455) and reasons.
pub(crate) const CLOSE_GOING_AWAY: (u16, &str) = (1001, "server shutting down");
const CLOSE_IDLE: (u16, &str) = (1008, "idle timeout");
pub(crate) const CLOSE_WRITE_TIMEOUT: (u16, &str) = (1008, "write timeout");
const CLOSE_TOO_BIG: (u16, &str) = (1009, "message too large");
pub(crate) const CLOSE_SLOW: (u16, &str) = (1013, "slow consumer: resubscribe with since");

/// Process-wide connection ids, unique for the life of the process.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// What the reader and writer of one connection share.
pub(crate) struct Shared {
    pub(crate) connection_id: u64,
    principal: Principal,
    pub(crate) inner: Arc<Inner>,
    pub(crate) sink: FrameSink,
    /// Cancelled when the connection must end: shutdown (parent), slow consumer (the sink),
    /// the reader or the writer finishing.
    pub(crate) cancel: CancellationToken,
    subscriptions: Mutex<HashSet<Uuid>>,
    /// A close reason chosen before cancelling; the first one chosen wins.
    pub(crate) close_reason: Mutex<Option<(u16, &'static str)>>,
    ops_in_flight: Arc<Semaphore>,
    /// Unanswered ops and when they are answered `unavailable` if their owner stays silent.
    pub(crate) deadlines: Deadlines,
}

/// How the reader stopped.
#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    ClientGone,
    Cancelled,
    Idle,
    TooLarge,
}

/// Runs one authenticated connection to its end, then ends its subscriptions.
pub(crate) async fn run<W, R, E>(inner: Arc<Inner>, principal: Principal, writer: W, mut reader: R)
where
    W: Sink<Message> + Unpin + Send + 'static,
    W::Error: std::fmt::Display,
    R: Stream<Item = Result<Message, E>> + Unpin + Send + 'static,
    E: std::error::Error + 'static,
{
    let connection_id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
    let cancel = inner.shutdown.child_token();
    let (sink, outbound_rx) = FrameSink::new(
        connection_id,
        principal.user_id,
        inner.config.outbound_queue_frames,
        cancel.clone(),
    );
    let shared = Arc::new(Shared {
        connection_id,
        principal,
        sink,
        cancel,
        subscriptions: Mutex::new(HashSet::new()),
        close_reason: Mutex::new(None),
        ops_in_flight: Arc::new(Semaphore::new(
            inner.config.ops_in_flight_per_connection_max,
        )),
        deadlines: Deadlines::new(
            inner.config.op_timeout,
            inner.config.ops_in_flight_per_connection_max,
        ),
        inner,
    });
    tracing::debug!(connection_id, user_id = %shared.principal.user_id, "connection opened");
    let writer_task = tokio::spawn(crate::writer::write_loop(
        Arc::clone(&shared),
        writer,
        outbound_rx,
    ));
    let read_end = read_loop(&shared, &mut reader).await;
    match read_end {
        ReadEnd::Idle => shared.set_close_reason(CLOSE_IDLE),
        ReadEnd::TooLarge => shared.set_close_reason(CLOSE_TOO_BIG),
        ReadEnd::ClientGone | ReadEnd::Cancelled => {}
    }
    shared.cancel.cancel();
    // Keep reading while our close frame goes out, so that unread input does not reset the
    // socket before the client has seen why it was closed.
    let linger_deadline = Instant::now() + shared.inner.config.close_linger;
    if read_end != ReadEnd::ClientGone {
        drain_until(&mut reader, linger_deadline).await;
    }
    let _ = writer_task.await;
    if read_end == ReadEnd::TooLarge {
        // The reader is unusable after an oversized frame; hold the socket for the linger time.
        tokio::time::sleep_until(linger_deadline).await;
    }
    end_subscriptions(&shared).await;
    tracing::debug!(connection_id, ?read_end, "connection closed");
}

impl Shared {
    pub(crate) fn set_close_reason(&self, reason: (u16, &'static str)) {
        let mut close_reason = self.close_reason.lock().expect("close reason lock");
        close_reason.get_or_insert(reason);
    }

    /// Queues an error frame for the client.
    fn push_error(&self, error: &EdgeError, op_id: Option<Uuid>, list: Option<Uuid>) {
        names::count_error(error.code);
        // A full queue marks the connection slow and closes it; nothing more to do here.
        let _ = self.sink.push(frames::error_frame(error, op_id, list));
    }
}

/// Reads client messages until the connection should end.
async fn read_loop<R, E>(shared: &Shared, reader: &mut R) -> ReadEnd
where
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::error::Error + 'static,
{
    let idle_timeout = shared.inner.config.idle_timeout;
    // Made once, not per message (each registers with the token when first polled).
    let cancelled = shared.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut cancelled => return ReadEnd::Cancelled,
            next = tokio::time::timeout(idle_timeout, reader.next()) => next,
        };
        let message = match next {
            Err(_elapsed) => return ReadEnd::Idle,
            Ok(None) => return ReadEnd::ClientGone,
            Ok(Some(Err(error))) if is_too_large(&error) => return ReadEnd::TooLarge,
            Ok(Some(Err(error))) => {
                tracing::debug!(connection_id = shared.connection_id, %error, "websocket read failed");
                return ReadEnd::ClientGone;
            }
            Ok(Some(Ok(message))) => message,
        };
        tokio::select! {
            biased;
            _ = &mut cancelled => return ReadEnd::Cancelled,
            () = handle_message(shared, message) => {}
        }
    }
}

/// Whether a read error is tungstenite refusing a message or frame over the hard maximum.
fn is_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(tungstenite_error) = error.downcast_ref::<tungstenite::Error>() {
            return matches!(tungstenite_error, tungstenite::Error::Capacity(_));
        }
        current = error.source();
    }
    false
}

/// Discards input until the client's close reply ends the stream, or until `deadline`.
async fn drain_until<R: Stream + Unpin>(reader: &mut R, deadline: Instant) {
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, reader.next()).await {}
}

async fn handle_message(shared: &Shared, message: Message) {
    match message {
        Message::Text(text) => handle_text(shared, text.as_str()).await,
        Message::Binary(_) => shared.push_error(
            &EdgeError::invalid("binary frames are not supported"),
            None,
            None,
        ),
        // Pings are answered by the socket itself; pongs and closes only prove liveness here.
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
    }
}

async fn handle_text(shared: &Shared, text: &str) {
    if text.len() > shared.inner.config.ws_message_bytes_max {
        let (op_id, list) = frames::read_ids(text);
        let error = EdgeError::new(ErrorCode::TooLarge, "message too large");
        shared.push_error(&error, op_id, list);
        return;
    }
    match frames::parse_client_frame(text) {
        Ok(ClientFrame::Subscribe { list, since }) => subscribe(shared, list, since).await,
        Ok(ClientFrame::Unsubscribe { list }) => unsubscribe(shared, list).await,
        Ok(ClientFrame::Op { list, op_id, op }) => submit(shared, list, op_id, op).await,
        Err(refused) => shared.push_error(&refused.error, refused.op_id, refused.list),
    }
}

async fn subscribe(shared: &Shared, list: Uuid, since: Option<u64>) {
    let is_new = {
        let mut subscriptions = shared.subscriptions.lock().expect("subscriptions lock");
        if subscriptions.contains(&list) {
            false
        } else if subscriptions.len() >= shared.inner.config.subscriptions_per_connection_max {
            drop(subscriptions);
            let error = EdgeError::new(
                ErrorCode::TooLarge,
                "too many subscriptions on this connection",
            );
            shared.push_error(&error, None, Some(list));
            return;
        } else {
            subscriptions.insert(list);
            true
        }
    };
    if is_new {
        metrics::gauge!(names::SUBSCRIPTIONS).increment(1.0);
    }
    // Re-subscribing is allowed: the router replaces the earlier subscription.
    let subscribed = shared
        .inner
        .router
        .subscribe(&shared.principal, list, since, shared.sink.clone())
        .await;
    if let Err(error) = subscribed {
        if is_new {
            forget_subscription(shared, list);
        }
        shared.push_error(&error, None, Some(list));
    }
}

async fn unsubscribe(shared: &Shared, list: Uuid) {
    forget_subscription(shared, list);
    shared
        .inner
        .router
        .unsubscribe(list, shared.connection_id)
        .await;
}

/// Removes `list` from the connection's subscriptions, if present.
pub(crate) fn forget_subscription(shared: &Shared, list: Uuid) {
    let removed = shared
        .subscriptions
        .lock()
        .expect("subscriptions lock")
        .remove(&list);
    if removed {
        metrics::gauge!(names::SUBSCRIPTIONS).decrement(1.0);
    }
}

async fn submit(shared: &Shared, list: Uuid, op_id: Uuid, op: Box<serde_json::value::RawValue>) {
    if let Err(error) = shared.inner.limits.check_op(shared.principal.user_id) {
        shared.push_error(&error, Some(op_id), Some(list));
        return;
    }
    // Waiting here stops reading the socket: backpressure on a client with too many ops out.
    let Ok(permit) = Arc::clone(&shared.ops_in_flight).acquire_owned().await else {
        return;
    };
    let sink = shared.sink.clone();
    let pending = shared.deadlines.track(op_id, list, permit);
    pending.attach_timer(shared.inner.op_seconds.start(list, op_id, &op));
    let reply = Reply::new(move |outcome| {
        if !pending.claim() {
            // Already answered `unavailable` at its deadline (which finished its clock).
            return;
        }
        if let Some(timer) = pending.take_timer() {
            timer.finish(&outcome);
        }
        let frame = match outcome {
            Ok(seq) => frames::ack_frame(op_id, list, seq),
            Err(error) => {
                names::count_error(error.code);
                frames::error_frame(&error, Some(op_id), Some(list))
            }
        };
        let _ = sink.push(frame);
    });
    shared
        .inner
        .router
        .submit(&shared.principal, list, op_id, op, reply)
        .await;
}

/// Ends every remaining subscription of the connection at its owner.
async fn end_subscriptions(shared: &Shared) {
    let lists: Vec<Uuid> = shared
        .subscriptions
        .lock()
        .expect("subscriptions lock")
        .drain()
        .collect();
    metrics::gauge!(names::SUBSCRIPTIONS).decrement(lists.len() as f64);
    for list in lists {
        shared
            .inner
            .router
            .unsubscribe(list, shared.connection_id)
            .await;
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
