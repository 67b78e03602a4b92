//! Transport settings and the cluster secret.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::frame::FRAME_OVERHEAD_BYTES_MAX;
use super::handshake::LocalIdentity;
use crate::{Error, NodeId};

/// The shortest cluster secret accepted, in bytes (128 bits).
pub const SECRET_BYTES_MIN: usize = 16;

/// The shared cluster secret every node holds. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ClusterSecret {
    /// The HMAC keyed once with the secret; cloned for every tag.
    keyed_mac: Hmac<Sha256>,
}

impl ClusterSecret {
    /// Wraps `bytes`, which must hold at least [`SECRET_BYTES_MIN`] bytes of high entropy
    /// (e.g. 32 random bytes, or a long random string from the operator's secret store).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<ClusterSecret, Error> {
        let bytes = bytes.into();
        if bytes.len() < SECRET_BYTES_MIN {
            return Err(Error::InvalidConfig(format!(
                "cluster secret must be at least {SECRET_BYTES_MIN} bytes"
            )));
        }
        let keyed_mac = Hmac::<Sha256>::new_from_slice(&bytes)
            .map_err(|_| Error::InvalidConfig("cluster secret rejected by hmac".into()))?;
        Ok(ClusterSecret { keyed_mac })
    }

    /// An HMAC keyed with the secret.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        self.keyed_mac.clone()
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

/// Settings of the internode transport, shared by [`super::Client`] and [`super::Server`].
/// Build with [`TransportConfig::new`] (which fills the defaults below) and adjust the fields.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The cluster's name; a peer of another cluster is refused.
    pub cluster_id: String,
    /// This node's id, proven to peers in the handshake.
    pub node_id: NodeId,
    /// The shared secret this node proves it holds (and signs its handshakes with).
    pub secret: ClusterSecret,
    /// Further secrets whose proofs this node accepts. Default none. Rotating without downtime
    /// takes three rolling restarts: every node accepts the new secret (signing with the old);
    /// every node signs with the new one (accepting the old); every node drops the old one.
    pub accepted_secrets: Vec<ClusterSecret>,
    /// The internode protocol version this build speaks (published in gossip too).
    pub protocol_version: u32,
    /// The oldest peer protocol version accepted. Default: `protocol_version`. During a rolling
    /// upgrade the new build accepts the old version and speaks it to old peers: each side sees
    /// the other's version in [`super::PeerInfo::protocol_version`].
    pub min_protocol_version: u32,
    /// The largest frame once authenticated, in bytes. Default 8 MiB. Payloads may be up to
    /// this minus a few bytes of framing ([`TransportConfig::max_payload_bytes`]); larger ones
    /// fail with [`Error::FrameTooLarge`]. Keep it the same on every node: a peer with a
    /// smaller limit closes the connection on a frame it cannot take.
    pub max_frame_bytes: usize,
    /// The largest frame before authentication. Default 4 KiB: an unauthenticated peer can
    /// make us allocate at most this per connection.
    pub handshake_frame_bytes: usize,
    /// Time allowed for the whole handshake. Default 5 s.
    pub handshake_timeout: Duration,
    /// Time allowed to establish the underlying stream. Default 2 s.
    pub connect_timeout: Duration,
    /// Each side sends a ping this often. Default 500 ms.
    pub heartbeat_interval: Duration,
    /// A connection that has not received a pong for this long is dead, even if the stream
    /// reports no error (a stalled TCP stream). Default 2 s. Must exceed the interval, and the
    /// time a burst of the largest frames takes to cross the network (pongs queue behind it).
    pub heartbeat_timeout: Duration,
    /// Capacity of a connection's outbound queue, in frames. Default 1024. A request offered to
    /// a full queue fails at once with [`Error::QueueFull`] (it does not wait).
    pub outbound_queue_frames: usize,
    /// Concurrent requests one connection may have running in the local handler; more are
    /// answered [`Error::Busy`]. Default 256.
    pub max_in_flight_requests: usize,
    /// Concurrent open streams one connection may have in the local handler; more are ended
    /// as busy. Default 256.
    pub max_streams: usize,
    /// Items a stream's server may push ahead of the consumer: the client's buffer per stream.
    /// Default 128. Past it, the server's [`super::StreamSender::try_push`] fails with `Full`.
    pub stream_window: u32,
    /// Concurrent connections still in their handshake that a server accepts; more are closed
    /// at once. Default 64.
    pub max_pending_handshakes: usize,
    /// First delay before redialling a lost or failed connection. Default 50 ms.
    pub reconnect_backoff_initial: Duration,
    /// Longest delay between redials. Default 5 s. Delays double up to it, with jitter.
    pub reconnect_backoff_max: Duration,
    /// Seed of the jitter generator. `None` (default): drawn from the OS. Set it for
    /// reproducible simulations; correctness never depends on it.
    pub jitter_seed: Option<u64>,
}

impl TransportConfig {
    /// Settings with the defaults above.
    pub fn new(
        cluster_id: impl Into<String>,
        node_id: NodeId,
        secret: ClusterSecret,
        protocol_version: u32,
    ) -> TransportConfig {
        TransportConfig {
            cluster_id: cluster_id.into(),
            node_id,
            secret,
            accepted_secrets: Vec::new(),
            protocol_version,
            min_protocol_version: protocol_version,
            max_frame_bytes: 8 << 20,
            handshake_frame_bytes: 4 << 10,
            handshake_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_timeout: Duration::from_secs(2),
            outbound_queue_frames: 1024,
            max_in_flight_requests: 256,
            max_streams: 256,
            stream_window: 128,
            max_pending_handshakes: 64,
            reconnect_backoff_initial: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(5),
            jitter_seed: None,
        }
    }

    /// The largest payload a frame can carry.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_frame_bytes
            .saturating_sub(FRAME_OVERHEAD_BYTES_MAX)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |message: &str| Err(Error::InvalidConfig(message.to_string()));
        if self.cluster_id.is_empty() || self.cluster_id.len() > 255 {
            return invalid("cluster id must be 1 to 255 bytes");
        }
        if self.min_protocol_version > self.protocol_version {
            return invalid("min protocol version exceeds the protocol version");
        }
        if self.handshake_frame_bytes < 512 || self.max_frame_bytes < self.handshake_frame_bytes {
            return invalid("frame limits must be >= 512 bytes and max >= handshake limit");
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_timeout <= self.heartbeat_interval {
            return invalid("heartbeat timeout must exceed a positive heartbeat interval");
        }
        if self.outbound_queue_frames == 0
            || self.max_in_flight_requests == 0
            || self.max_streams == 0
            || self.max_pending_handshakes == 0
        {
            return invalid("queue and concurrency limits must be positive");
        }
        if self.stream_window < 2 {
            return invalid("stream window must be at least 2");
        }
        if self.reconnect_backoff_initial.is_zero()
            || self.reconnect_backoff_max < self.reconnect_backoff_initial
        {
            return invalid("reconnect backoff must be positive and max >= initial");
        }
        Ok(())
    }

    pub(crate) fn local_identity(&self) -> LocalIdentity {
        LocalIdentity {
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id.clone(),
            secret: self.secret.clone(),
            accepted_secrets: self.accepted_secrets.clone(),
            protocol_version: self.protocol_version,
            min_protocol_version: self.min_protocol_version,
        }
    }
}
