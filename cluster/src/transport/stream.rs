//! Server-pushed streams: the server's [`StreamSender`] and the client's [`StreamReceiver`].
//!
//! Flow control is by credit. The client grants the server `stream_window` items when it opens
//! a stream and grants more as its consumer takes items out, so at most a window of items is
//! ever buffered for one stream. When the consumer is slow the credit runs out and the server's
//! [`StreamSender::try_push`] fails at once with [`PushError::Full`]: it never blocks and never
//! buffers more. listwire's policy for a slow consumer is then to end the stream (with an
//! error payload saying so) and let the consumer resubscribe from where it was, as with slow
//! WebSocket clients.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::connection::{too_large_note, Connection};
use super::frame::{FailureCode, Frame};
use crate::{metrics, Error};

/// What the client side of a stream receives.
pub(crate) enum StreamMsg {
    Item(Bytes),
    End(Result<(), Error>),
}

/// The server side's view of one stream.
pub(crate) struct ServerStreamState {
    credit: AtomicU32,
    /// Signalled when credit arrives, for [`StreamSender::push`].
    credit_arrived: Notify,
    /// Cancelled when the client cancels the stream or the connection closes.
    pub(crate) cancelled: CancellationToken,
}

impl ServerStreamState {
    pub(crate) fn new(window: u32, cancelled: CancellationToken) -> ServerStreamState {
        ServerStreamState {
            credit: AtomicU32::new(window),
            credit_arrived: Notify::new(),
            cancelled,
        }
    }

    pub(crate) fn add_credit(&self, credit: u32) {
        let _ = self
            .credit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                Some(current.saturating_add(credit))
            });
        self.credit_arrived.notify_one();
    }

    fn take_credit(&self) -> bool {
        self.credit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                current.checked_sub(1)
            })
            .is_ok()
    }
}

/// Why [`StreamSender::try_push`] refused an item. Each carries the item back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The consumer is a full window behind, or the connection's outbound queue is full.
    /// Nothing was sent. The usual answer is to end the stream with an error payload so the
    /// consumer resumes, rather than to retry in a loop.
    #[error("stream full")]
    Full(Bytes),
    /// The client cancelled the stream or the connection closed. Stop pushing.
    #[error("stream closed")]
    Closed(Bytes),
    /// The item is larger than a frame may carry.
    #[error("stream item too large")]
    TooLarge(Bytes),
}

/// The server's handle to push items into one stream, given to [`super::Handler::stream`].
///
/// End it with [`StreamSender::end`]. Dropping it without ending ends the stream for the
/// client with [`Error::ConnectionClosed`] ("abandoned").
pub struct StreamSender {
    id: u64,
    connection: Arc<Connection>,
    state: Arc<ServerStreamState>,
    ended: bool,
}

impl StreamSender {
    pub(crate) fn new(
        id: u64,
        connection: Arc<Connection>,
        state: Arc<ServerStreamState>,
    ) -> StreamSender {
        StreamSender {
            id,
            connection,
            state,
            ended: false,
        }
    }

    /// Queues one item without waiting. Fails with [`PushError::Full`] when the consumer is a
    /// window behind or the connection's queue is full (see the module doc), with
    /// [`PushError::Closed`] when the stream is gone.
    pub fn try_push(&self, item: Bytes) -> Result<(), PushError> {
        if self.state.cancelled.is_cancelled() {
            return Err(PushError::Closed(item));
        }
        if item.len() > self.connection.max_payload_bytes {
            return Err(PushError::TooLarge(item));
        }
        if !self.state.take_credit() {
            ::metrics::counter!(metrics::QUEUE_FULL_TOTAL).increment(1);
            return Err(PushError::Full(item));
        }
        let frame = Frame::StreamItem {
            id: self.id,
            payload: item,
        };
        match self.connection.outbound.try_send(frame) {
            Ok(()) => {
                ::metrics::counter!(metrics::STREAM_ITEMS_SENT_TOTAL).increment(1);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(frame)) => {
                self.state.add_credit(1);
                ::metrics::counter!(metrics::QUEUE_FULL_TOTAL).increment(1);
                Err(PushError::Full(item_of(frame)))
            }
            Err(mpsc::error::TrySendError::Closed(frame)) => Err(PushError::Closed(item_of(frame))),
        }
    }

    /// Queues one item, waiting while the consumer is a window behind or the outbound queue
    /// is full: backpressure instead of [`PushError::Full`], for streams that must not drop
    /// (a bulk transfer, say). Fails with [`PushError::Closed`] once the stream is gone.
    /// Cancel-safe: a cancelled call has sent nothing.
    pub async fn push(&self, item: Bytes) -> Result<(), PushError> {
        if item.len() > self.connection.max_payload_bytes {
            return Err(PushError::TooLarge(item));
        }
        loop {
            if self.state.cancelled.is_cancelled() {
                return Err(PushError::Closed(item));
            }
            if self.state.take_credit() {
                break;
            }
            tokio::select! {
                _ = self.state.cancelled.cancelled() => {}
                _ = self.state.credit_arrived.notified() => {}
            }
        }
        // Gives the credit back if this future is dropped before the item is queued.
        let mut credit_guard = CreditGuard {
            state: &self.state,
            armed: true,
        };
        let frame = Frame::StreamItem {
            id: self.id,
            payload: item,
        };
        let sent = tokio::select! {
            _ = self.state.cancelled.cancelled() => Err(Bytes::new()),
            sent = self.connection.outbound.send(frame) => sent.map_err(|error| item_of(error.0)),
        };
        credit_guard.armed = sent.is_err();
        match sent {
            Ok(()) => {
                ::metrics::counter!(metrics::STREAM_ITEMS_SENT_TOTAL).increment(1);
                Ok(())
            }
            Err(item) => Err(PushError::Closed(item)),
        }
    }

    /// Whether the client cancelled the stream or the connection closed.
    pub fn is_closed(&self) -> bool {
        self.state.cancelled.is_cancelled()
    }

    /// Resolves when the client cancels the stream or the connection closes.
    pub async fn closed(&self) {
        self.state.cancelled.cancelled().await;
    }

    /// The client's identity and version, as the handshake proved them.
    pub fn peer(&self) -> &super::PeerInfo {
        &self.connection.peer
    }

    /// Ends the stream: cleanly with `None`, or with an error payload the client receives as
    /// [`Error::Remote`]. Waits for room in the outbound queue (the end is never dropped while
    /// the connection lives); returns at once if the stream is already closed.
    pub async fn end(mut self, error_opt: Option<Bytes>) {
        self.ended = true;
        self.connection.forget_server_stream(self.id);
        if self.state.cancelled.is_cancelled() {
            return;
        }
        let (code, payload) = match error_opt {
            None => (None, Bytes::new()),
            Some(payload) if payload.len() <= self.connection.max_payload_bytes => {
                (Some(FailureCode::Handler), payload)
            }
            Some(payload) => (Some(FailureCode::TooLarge), too_large_note(payload.len())),
        };
        let frame = Frame::StreamEnd {
            id: self.id,
            code,
            payload,
        };
        tokio::select! {
            _ = self.state.cancelled.cancelled() => {}
            _ = self.connection.outbound.send(frame) => {}
        }
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        self.connection.forget_server_stream(self.id);
        if !self.state.cancelled.is_cancelled() {
            self.connection.send_soon(Frame::StreamEnd {
                id: self.id,
                code: Some(FailureCode::Abandoned),
                payload: Bytes::new(),
            });
        }
    }
}

struct CreditGuard<'a> {
    state: &'a ServerStreamState,
    armed: bool,
}

impl Drop for CreditGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.state.add_credit(1);
        }
    }
}

fn item_of(frame: Frame) -> Bytes {
    match frame {
        Frame::StreamItem { payload, .. } => payload,
        _ => Bytes::new(),
    }
}

/// The client's end of a stream, from [`super::Peer::open_stream`].
///
/// Dropping it (or [`StreamReceiver::cancel`]) cancels the stream on the server.
pub struct StreamReceiver {
    id: u64,
    connection: Arc<Connection>,
    item_rx: mpsc::Receiver<StreamMsg>,
    consumed: u32,
    finished: bool,
}

impl StreamReceiver {
    pub(crate) fn new(
        id: u64,
        connection: Arc<Connection>,
        item_rx: mpsc::Receiver<StreamMsg>,
    ) -> StreamReceiver {
        StreamReceiver {
            id,
            connection,
            item_rx,
            consumed: 0,
            finished: false,
        }
    }

    /// The next item. `Some(Ok(item))` for each item in order; `None` once the server ended
    /// the stream cleanly. `Some(Err(..))` ends the stream (then `None`):
    /// [`Error::Remote`] carries the server's end payload, [`Error::Busy`] means the server
    /// was at its stream limit, [`Error::ConnectionClosed`] that the connection died.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        if self.finished {
            return None;
        }
        match self.item_rx.recv().await {
            Some(StreamMsg::Item(item)) => {
                self.grant_credit();
                Some(Ok(item))
            }
            Some(StreamMsg::End(Ok(()))) => {
                self.finished = true;
                None
            }
            Some(StreamMsg::End(Err(error))) => {
                self.finished = true;
                Some(Err(error))
            }
            None => {
                self.finished = true;
                Some(Err(self.connection.closed_error()))
            }
        }
    }

    /// Returns consumed items to the server as credit once half a window has been taken.
    fn grant_credit(&mut self) {
        self.consumed += 1;
        let window = self.connection.stream_window;
        if self.consumed < window / 2 {
            return;
        }
        let frame = Frame::StreamCredit {
            id: self.id,
            credit: self.consumed,
        };
        match self.connection.outbound.try_send(frame) {
            Ok(()) => self.consumed = 0,
            // With a whole window consumed the server is stalled on us: make sure it hears.
            Err(mpsc::error::TrySendError::Full(frame)) if self.consumed >= window => {
                self.connection.send_soon(frame);
                self.consumed = 0;
            }
            Err(_) => {} // Retried after the next item.
        }
    }

    /// Cancels the stream: the server's handle sees [`StreamSender::is_closed`].
    pub fn cancel(self) {
        drop(self);
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.cancel_client_stream(self.id);
        }
    }
}
