//! Node subscribers: a gateway node following a list on behalf of all its local connections.
//!
//! In a cluster, a gateway node subscribes once per list at the list's owner and fans the
//! owner's pre-encoded frames out to its own connections. Its subscription is a [`NodeSink`]: a
//! bounded queue of [`NodeItem`]s carrying each frame with the seq it reaches, so the gateway
//! can resume with `since` after an owner change, and who may read the list ([`Access`]) at
//! the start and with every frame that changed it, so the gateway ends its own subscribers
//! who lost access exactly where the owner ends its direct ones, with no request and no race.
//! The owner trusts node subscribers (they are internode peers, authenticated by the cluster
//! secret); the gateway authorizes each of its users with the owner before attaching them.
//!
//! A full queue means the gateway cannot keep up: the owner drops the subscriber, the
//! consumer sees the queue end, and resubscribes with `since`, as a slow WebSocket client does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use listwire_gateway::{ErrorCode, FrameSink, PushError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{ListState, Visibility};

/// Who may read a list at some seq: everyone, if it is public, or its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Whether anyone may read it.
    pub public: bool,
    /// Its members (every role may read), sorted.
    pub members: Vec<Uuid>,
}

impl Access {
    /// Who may read `state`.
    pub fn of(state: &ListState) -> Access {
        let mut members: Vec<Uuid> = state.members().map(|(user, _, _)| user).collect();
        members.sort_unstable();
        Access {
            public: state.exists() && state.visibility() == Visibility::Public,
            members,
        }
    }

    /// Whether `user` may read.
    pub fn allows(&self, user: Uuid) -> bool {
        self.public || self.members.binary_search(&user).is_ok()
    }
}

/// One item of a node subscription, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeItem {
    /// First item: the list's durable seq when the subscription started. Catch-up frames (if a
    /// `since` was given) and live frames follow, each past it or up to it.
    Started {
        /// The durable seq at subscribe time.
        seq: u64,
        /// Who may read the list at that seq.
        access: Arc<Access>,
    },
    /// A frame (delta, tally or snapshot JSON, as clients get it) that brings a follower to
    /// `seq`.
    Frame {
        /// The first seq a delta carries (its `from`); `None` for a tally or snapshot, which
        /// stand for the whole state at `seq`. A follower whose last seq is not `from - 1`
        /// cannot take the delta (it would see events twice, or miss some).
        from: Option<u64>,
        /// The seq the frame reaches (`to` of a delta, `seq` of a tally or snapshot).
        seq: u64,
        /// Whether it is a snapshot (it replaces the follower's state).
        snapshot: bool,
        /// Who may read the list after it, when its events changed that (share, unshare,
        /// visibility): the gateway ends its followers who lost access, after this frame.
        access: Option<Arc<Access>>,
        /// The frame, encoded once.
        frame: Bytes,
    },
    /// The subscription ended: `moved` (the list changed owner), `unavailable` (it stopped).
    End {
        /// Why.
        code: ErrorCode,
        /// A short message.
        message: String,
    },
}

static NEXT_NODE_SINK_ID: AtomicU64 = AtomicU64::new(1);

/// The owner's handle on a node subscription's bounded queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeSink {
    id: u64,
    tx: flume::Sender<NodeItem>,
    closed: Arc<AtomicBool>,
}

/// The consumer's end of a node subscription.
#[derive(Debug)]
pub struct NodeSource {
    rx: flume::Receiver<NodeItem>,
    closed: Arc<AtomicBool>,
}

impl NodeSink {
    /// A node subscription queue holding at most `capacity` items, and its consumer's end.
    pub fn new(capacity: usize) -> (NodeSink, NodeSource) {
        let (tx, rx) = flume::bounded(capacity.max(1));
        let closed = Arc::new(AtomicBool::new(false));
        let sink = NodeSink {
            id: NEXT_NODE_SINK_ID.fetch_add(1, Ordering::Relaxed),
            tx,
            closed: closed.clone(),
        };
        (sink, NodeSource { rx, closed })
    }

    /// Unique per process; node subscribers are keyed by it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues an item without waiting; a full queue closes the subscription.
    pub fn push(&self, item: NodeItem) -> Result<(), PushError> {
        if self.is_closed() {
            return Err(PushError::Closed);
        }
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(flume::TrySendError::Full(_)) => {
                self.closed.store(true, Ordering::Release);
                metrics::counter!(crate::metrics::NODE_SUBSCRIBER_SLOW_TOTAL).increment(1);
                Err(PushError::Full)
            }
            Err(flume::TrySendError::Disconnected(_)) => Err(PushError::Closed),
        }
    }

    /// Whether the consumer went away or the queue overflowed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.tx.is_disconnected()
    }
}

impl NodeSource {
    /// The next item; `None` once the owner dropped the subscription (it ended, overflowed or
    /// the list stopped) and every queued item was taken.
    pub async fn next(&self) -> Option<NodeItem> {
        self.rx.recv_async().await.ok()
    }

    /// Whether the queue overflowed (the consumer was too slow).
    pub fn overflowed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Tells the owner this consumer is gone; it drops the subscription at its next frame.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

impl Drop for NodeSource {
    fn drop(&mut self) {
        self.close();
    }
}

/// What a frame covers, as a node subscriber is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpan {
    /// The first seq of a delta; `None` for a tally or snapshot.
    pub from: Option<u64>,
    /// The seq the frame reaches.
    pub seq: u64,
    /// Whether it is a snapshot.
    pub snapshot: bool,
    /// Who may read after it, if its events changed that.
    pub access: Option<Arc<Access>>,
}

impl FrameSpan {
    /// A delta of `from..=to`; `access` if its events changed who may read.
    pub fn delta(from: u64, to: u64, access: Option<Arc<Access>>) -> Self {
        Self {
            from: Some(from),
            seq: to,
            snapshot: false,
            access,
        }
    }

    /// A tally at `seq`.
    pub fn tally(seq: u64) -> Self {
        Self {
            from: None,
            seq,
            snapshot: false,
            access: None,
        }
    }

    /// A snapshot at `seq`.
    pub fn snapshot(seq: u64) -> Self {
        Self {
            from: None,
            seq,
            snapshot: true,
            access: None,
        }
    }
}

/// Where a subscriber's frames go.
#[derive(Debug, Clone)]
pub enum SubscriberSink {
    /// A client connection on this node.
    Connection(FrameSink),
    /// A gateway node following the list.
    Node(NodeSink),
}

/// How subscribers are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriberKey {
    /// A client connection, by connection id.
    Connection(u64),
    /// A node subscription, by sink id.
    Node(u64),
}

impl SubscriberSink {
    /// The key of this subscriber.
    pub fn key(&self) -> SubscriberKey {
        match self {
            SubscriberSink::Connection(sink) => SubscriberKey::Connection(sink.connection_id()),
            SubscriberSink::Node(sink) => SubscriberKey::Node(sink.id()),
        }
    }

    /// The user a connection belongs to; `None` for a (trusted) node subscription.
    pub fn user(&self) -> Option<Uuid> {
        match self {
            SubscriberSink::Connection(sink) => Some(sink.user_id()),
            SubscriberSink::Node(_) => None,
        }
    }

    /// Whether the subscriber is gone.
    pub fn is_closed(&self) -> bool {
        match self {
            SubscriberSink::Connection(sink) => sink.is_closed(),
            SubscriberSink::Node(sink) => sink.is_closed(),
        }
    }

    /// Queues a frame covering `from..=seq` (`from` is `None` for a tally or snapshot),
    /// published `at`.
    pub fn push_frame(
        &self,
        frame: Bytes,
        span: FrameSpan,
        at: std::time::Instant,
    ) -> Result<(), PushError> {
        let FrameSpan {
            from,
            seq,
            snapshot,
            access,
        } = span;
        match self {
            SubscriberSink::Connection(sink) => sink.push_at(frame, at),
            SubscriberSink::Node(sink) => sink.push(NodeItem::Frame {
                from,
                seq,
                snapshot,
                access,
                frame,
            }),
        }
    }

    /// Ends the subscription: a connection gets the `error` frame; a node gets `End`.
    pub fn end(&self, list: Uuid, code: ErrorCode, message: &str) {
        match self {
            SubscriberSink::Connection(sink) => {
                let frame = super::frames::list_error(list, code.as_str(), message);
                let _ = sink.end_subscription(list, frame);
            }
            SubscriberSink::Node(sink) => {
                let _ = sink.push(NodeItem::End {
                    code,
                    message: message.to_owned(),
                });
            }
        }
    }
}
