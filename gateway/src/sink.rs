//! The per-connection outbound queue that list owners push pre-encoded frames into.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// One item on a connection's outbound queue.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A complete JSON text frame (encoded once, shared by every subscriber).
    Frame(Bytes),
    /// The owner ended this connection's subscription to `list` (for example, access revoked);
    /// `frame` tells the client why.
    SubscriptionEnded {
        /// The list whose subscription ended.
        list: Uuid,
        /// The frame to send (an `error` frame).
        frame: Bytes,
    },
}

/// An outbound item and when it was queued: the writer measures delivery from that moment.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) outbound: Outbound,
    pub(crate) at: Instant,
}

/// The receiving end of a connection's outbound queue, drained by its writer (or by a test, or
/// a simulated client, standing in for one).
#[derive(Debug, Clone)]
pub struct OutboundReceiver {
    rx: flume::Receiver<Queued>,
}

impl OutboundReceiver {
    /// The next item, if one is queued now.
    pub fn try_recv(&self) -> Result<Outbound, flume::TryRecvError> {
        self.rx.try_recv().map(|queued| queued.outbound)
    }

    /// The next item, waiting for one; fails once every sink is dropped and the queue is empty.
    pub async fn recv_async(&self) -> Result<Outbound, flume::RecvError> {
        self.rx.recv_async().await.map(|queued| queued.outbound)
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    pub(crate) fn queued(&self) -> &flume::Receiver<Queued> {
        &self.rx
    }
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue was full: the connection is too slow and is being closed (1013).
    Full,
    /// The connection is gone.
    Closed,
}

/// A cheap, cloneable handle to one connection's bounded outbound queue.
///
/// Owners push with [`FrameSink::push`], which never waits. When the queue is full the
/// connection is marked slow and cancelled; the gateway closes it with code 1013 and the client
/// resumes with `since`.
#[derive(Clone, Debug)]
pub struct FrameSink {
    connection_id: u64,
    user_id: Uuid,
    tx: flume::Sender<Queued>,
    slow: Arc<AtomicBool>,
    cancel: CancellationToken,
}

impl FrameSink {
    /// Creates a sink and the receiving end the connection's writer drains.
    pub fn new(
        connection_id: u64,
        user_id: Uuid,
        capacity: usize,
        cancel: CancellationToken,
    ) -> (Self, OutboundReceiver) {
        let (tx, rx) = flume::bounded(capacity.max(1));
        let sink = Self {
            connection_id,
            user_id,
            tx,
            slow: Arc::new(AtomicBool::new(false)),
            cancel,
        };
        (sink, OutboundReceiver { rx })
    }

    /// The connection this sink belongs to (unique per gateway process).
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// The authenticated user of the connection.
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// Queues a frame without waiting.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        self.push_outbound(Outbound::Frame(frame), Instant::now())
    }

    /// Queues a frame without waiting, stamped `at`: a publisher pushing one frame to many
    /// sinks reads the clock once for all of them.
    pub fn push_at(&self, frame: Bytes, at: Instant) -> Result<(), PushError> {
        self.push_outbound(Outbound::Frame(frame), at)
    }

    /// Queues the end of a subscription without waiting.
    pub fn end_subscription(&self, list: Uuid, frame: Bytes) -> Result<(), PushError> {
        self.push_outbound(Outbound::SubscriptionEnded { list, frame }, Instant::now())
    }

    /// Whether the connection is closed or closing; owners drop such subscribers.
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled() || self.tx.is_disconnected()
    }

    /// Whether the connection was closed for being too slow.
    pub fn is_slow(&self) -> bool {
        self.slow.load(Ordering::Relaxed)
    }

    fn push_outbound(&self, outbound: Outbound, at: Instant) -> Result<(), PushError> {
        if self.cancel.is_cancelled() {
            return Err(PushError::Closed);
        }
        let queued = Queued { outbound, at };
        match self.tx.try_send(queued) {
            Ok(()) => Ok(()),
            Err(flume::TrySendError::Full(_)) => {
                self.slow.store(true, Ordering::Relaxed);
                self.cancel.cancel();
                metrics::counter!(crate::metrics::SLOW_CONSUMER_CLOSES_TOTAL).increment(1);
                Err(PushError::Full)
            }
            Err(flume::TrySendError::Disconnected(_)) => Err(PushError::Closed),
        }
    }
}
