//! The crate's one error type.

use bytes::Bytes;

/// Errors of the cluster crate. Each variant says what the caller can do next; see also
/// [`Error::is_retryable`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request's deadline passed before its response arrived. The peer may or may not have
    /// handled it, so retry only what is idempotent (listwire ops carry an `op_id`). Any late
    /// response is dropped.
    #[error("request timed out")]
    Timeout,
    /// No authenticated connection to the peer could be had before the deadline (it is down,
    /// unreachable, or still being dialled). Nothing was sent; retry later or elsewhere.
    #[error("not connected to {peer}: {reason}")]
    NotConnected {
        /// The peer's node id.
        peer: String,
        /// The last reason a connection attempt failed, or "connecting".
        reason: String,
    },
    /// The connection died (peer crashed, heartbeat missed, link cut) while the exchange was in
    /// flight. The peer may or may not have handled it; retry what is idempotent.
    #[error("connection closed: {0}")]
    ConnectionClosed(String),
    /// The connection's bounded outbound queue is full: the peer or the network is slower than
    /// the offered load. Nothing was sent; back off and retry, or answer `busy` upstream.
    #[error("outbound queue full")]
    QueueFull,
    /// The peer refused the request because it already runs its maximum of concurrent
    /// requests (or streams) for this connection. Nothing was handled; back off and retry.
    #[error("peer is busy")]
    Busy,
    /// The peer's handler answered with an error. The payload is the handler's own encoding;
    /// what it means (and whether to retry) is the caller's protocol.
    #[error("remote handler error ({} bytes)", .0.len())]
    Remote(Bytes),
    /// The handshake failed: wrong cluster secret, cluster id or node id, or a message out of
    /// order. Retrying will not help until the configuration is fixed.
    #[error("handshake refused: {0}")]
    Refused(String),
    /// The peer speaks a protocol version outside what this build accepts. Not retryable until
    /// one side is upgraded.
    #[error("protocol version {theirs} not accepted (this build speaks {ours}, accepts >= {min})")]
    ProtocolVersion {
        /// The peer's protocol version.
        theirs: u32,
        /// This build's protocol version.
        ours: u32,
        /// The oldest version this build accepts.
        min: u32,
    },
    /// A frame carried an unknown framing version byte. The peer runs an incompatible build;
    /// the connection is closed.
    #[error("unknown frame version {0}")]
    FrameVersion(u8),
    /// A payload is larger than the connection allows. Not retryable as is: split the payload
    /// or raise the limit on both sides.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The frame's size in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The peer broke the wire protocol (undecodable frame, unexpected kind, unknown id). The
    /// connection is closed; not retryable.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// This side is shutting down (or the handle was closed) and takes no more work.
    #[error("shutting down")]
    ShuttingDown,
    /// A configuration value is invalid. Fix the configuration.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The requested node-state change is not allowed (a node that announced `left` stays left).
    #[error("invalid state transition from {from} to {to}")]
    InvalidTransition {
        /// The current state.
        from: &'static str,
        /// The requested state.
        to: &'static str,
    },
    /// The gossip layer failed (for example its UDP port could not be bound).
    #[error("gossip: {0}")]
    Gossip(String),
    /// An IO error from a socket.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the same call may succeed if retried later, as is, perhaps against another node.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Timeout
                | Error::NotConnected { .. }
                | Error::ConnectionClosed(_)
                | Error::QueueFull
                | Error::Busy
                | Error::Io(_)
        )
    }
}
