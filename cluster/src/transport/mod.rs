//! The internode transport: authenticated, multiplexed connections carrying opaque bytes.
//!
//! - [`Client`] dials peers: [`Client::peer`] gives a [`Peer`] whose one connection carries
//!   any number of concurrent [`Peer::request`]s (each with its own deadline) and
//!   [`Peer::open_stream`]s. The connection is redialled with bounded, jittered exponential
//!   backoff whenever it is lost.
//! - [`Server`] accepts connections and hands requests and streams to the node's
//!   [`Handler`], each in its own task, with a per-connection bound on concurrency.
//! - [`StreamSender`] (server) and [`StreamReceiver`] (client) are the two ends of a
//!   server-pushed stream with credit-based flow control (see [`StreamSender::try_push`]).
//! - [`Connector`] and [`Listener`] make the network injectable: [`TcpConnector`] and
//!   [`TcpListener`] for production, [`memory::MemoryNetwork`] for tests (it can cut and
//!   restore links), a simulated network later.
//!
//! Wire: length-delimited frames (4-byte big-endian length), each starting with a framing
//! version byte and a kind. Every connection opens with the mutual HMAC challenge-response
//! described in `handshake.rs`, under a 4 KiB frame limit; nothing else is accepted or parsed
//! until it passes. A refused peer is logged and counted
//! (`listwire_cluster_handshake_refusals_total`) and the connection closed.
//!
//! Queues are bounded everywhere: the per-connection outbound queue (a full queue fails a
//! request at once with [`Error::QueueFull`]), in-flight requests and streams per connection
//! on the server ([`Error::Busy`]), and each stream's window. The writer feeds every frame
//! queued so far and flushes once, so frames queued together leave in one write. Heartbeats
//! (ping and pong each way) detect a dead peer or a silently stalled stream within the
//! heartbeat timeout; closing fails every in-flight exchange at once.

mod backoff;
mod client;
mod config;
mod connection;
mod frame;
mod handshake;
pub mod memory;
mod net;
mod pump;
mod server;
mod stream;

pub use client::{Client, Peer};
pub use config::{ClusterSecret, TransportConfig, SECRET_BYTES_MIN};
pub use frame::FRAME_VERSION;
pub use net::{BoxedIo, Connector, Io, Listener, SourceTcpConnector, TcpConnector, TcpListener};
pub use server::{Handler, Server};
pub use stream::{PushError, StreamReceiver, StreamSender};

use handshake::{Authenticated, Refusal};

use crate::{metrics, Error, NodeId};

/// An authenticated peer: its node id and protocol version as the handshake proved them, and
/// the address it was dialled at or accepted from (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    node_id: NodeId,
    protocol_version: u32,
    addr: String,
}

impl PeerInfo {
    fn new(authenticated: Authenticated, addr: String) -> PeerInfo {
        PeerInfo {
            node_id: authenticated.node_id,
            protocol_version: authenticated.protocol_version,
            addr,
        }
    }

    /// The peer's node id (proven: it is covered by the peer's HMAC).
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// The protocol version the peer's build speaks. Speak `min(own, this)` to it.
    pub fn protocol_version(&self) -> u32 {
        self.protocol_version
    }

    /// The peer's socket address (informational).
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

/// A fresh 256-bit handshake nonce from the OS.
fn new_nonce() -> Result<[u8; frame::NONCE_BYTES], Error> {
    let mut nonce = [0u8; frame::NONCE_BYTES];
    getrandom::fill(&mut nonce)
        .map_err(|error| Error::Io(std::io::Error::other(error.to_string())))?;
    Ok(nonce)
}

/// Counts and logs a refused handshake and turns it into the caller's error.
fn refused(config: &TransportConfig, refusal: Refusal) -> Error {
    ::metrics::counter!(metrics::HANDSHAKE_REFUSALS_TOTAL, metrics::LABEL_REASON => refusal.label())
        .increment(1);
    tracing::warn!(node = %config.node_id, reason = refusal.label(), detail = ?refusal, "internode handshake refused");
    match refusal {
        Refusal::Version { theirs } => Error::ProtocolVersion {
            theirs,
            ours: config.protocol_version,
            min: config.min_protocol_version,
        },
        Refusal::Auth => Error::Refused("peer failed authentication".into()),
        Refusal::Cluster { theirs } => Error::Refused(format!("peer is in cluster {theirs:?}")),
        Refusal::NodeId { theirs } => Error::Refused(format!("unexpected peer node id {theirs:?}")),
        Refusal::Protocol(detail) => Error::Refused(detail),
        Refusal::ByPeer(code) => Error::Refused(format!(
            "peer refused the handshake: {}",
            Refusal::describe_code(code)
        )),
    }
}
