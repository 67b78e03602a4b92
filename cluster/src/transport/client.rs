//! The dialling side: one supervised, self-healing connection per peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::codec::LengthDelimitedCodec;
use tokio_util::sync::CancellationToken;
use xxhash_rust::xxh3::xxh3_64;

use super::backoff::{os_seed, Backoff};
use super::connection::{Connection, Side, Wire};
use super::frame::Frame;
use super::handshake::{ClientHandshake, ClientStep, Refusal};
use super::net::Connector;
use super::{new_nonce, refused, PeerInfo, StreamReceiver, TransportConfig};
use crate::{metrics, Error, NodeId};

/// The dialling side of the transport: hands out one [`Peer`] per remote node.
///
/// Cheap to clone. [`Client::shutdown`] closes every peer's connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    config: Arc<TransportConfig>,
    connector: Arc<dyn Connector>,
    peers: Mutex<HashMap<NodeId, Peer>>,
    shutdown: CancellationToken,
    seed: u64,
}

impl Client {
    /// A client that dials through `connector` (a [`super::TcpConnector`] in production).
    pub fn new(config: TransportConfig, connector: Arc<dyn Connector>) -> Result<Client, Error> {
        config.validate()?;
        let seed = config.jitter_seed.unwrap_or_else(os_seed);
        Ok(Client {
            inner: Arc::new(ClientInner {
                config: Arc::new(config),
                connector,
                peers: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                seed,
            }),
        })
    }

    /// The peer `node_id` reachable at `addr`, dialling it in the background if this is new.
    /// Asking again with the same address returns the same peer (and connection); with another
    /// address (the node moved or restarted elsewhere) the old connection is closed and a new
    /// one dialled.
    pub fn peer(&self, node_id: &NodeId, addr: &str) -> Peer {
        let mut peers = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(peer) = peers.get(node_id) {
            if peer.addr() == addr && !self.inner.shutdown.is_cancelled() {
                return peer.clone();
            }
        }
        let peer = Peer::spawn(&self.inner, node_id.clone(), addr.to_string());
        if let Some(replaced) = peers.insert(node_id.clone(), peer.clone()) {
            replaced.inner.stop.cancel();
        }
        peer
    }

    /// Forgets `node_id` (it left the cluster): its connection closes once no [`Peer`] clone
    /// is held any more.
    pub fn remove_peer(&self, node_id: &NodeId) {
        let removed = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(node_id);
        if let Some(peer) = removed {
            peer.inner.stop.cancel();
        }
    }

    /// Closes every connection and stops redialling; calls on any peer then fail with
    /// [`Error::ShuttingDown`].
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

#[derive(Clone)]
enum Link {
    Connecting { last_error_opt: Option<String> },
    Up(Arc<Connection>),
    Stopped,
}

/// One remote node, as seen by the dialling side. Cheap to clone; all clones share one
/// connection, which is redialled with backoff whenever it is lost.
#[derive(Clone)]
pub struct Peer {
    inner: Arc<PeerInner>,
}

struct PeerInner {
    node_id: NodeId,
    addr: String,
    link_rx: watch::Receiver<Link>,
    stop: CancellationToken,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Peer {
    fn spawn(client: &ClientInner, node_id: NodeId, addr: String) -> Peer {
        let (link_tx, link_rx) = watch::channel(Link::Connecting {
            last_error_opt: None,
        });
        let stop = client.shutdown.child_token();
        // Each peer gets its own jitter stream, derived from the client's seed.
        let seed = client.seed ^ xxh3_64(node_id.as_bytes());
        let backoff = Backoff::new(
            client.config.reconnect_backoff_initial,
            client.config.reconnect_backoff_max,
            seed,
        );
        let dialer = Dialer {
            config: client.config.clone(),
            connector: client.connector.clone(),
            node_id: node_id.clone(),
            addr: addr.clone(),
        };
        tokio::spawn(dialer.maintain(link_tx, stop.clone(), backoff));
        Peer {
            inner: Arc::new(PeerInner {
                node_id,
                addr,
                link_rx,
                stop,
            }),
        }
    }

    /// The peer's node id.
    pub fn node_id(&self) -> &NodeId {
        &self.inner.node_id
    }

    /// The address this peer is dialled at.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Whether an authenticated connection is up right now.
    pub fn is_connected(&self) -> bool {
        matches!(&*self.inner.link_rx.borrow(), Link::Up(connection) if !connection.is_closed())
    }

    /// Waits until an authenticated connection is up, at most `timeout`; returns the peer's
    /// identity as the handshake proved it.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<PeerInfo, Error> {
        let connection = self.connection(Instant::now() + timeout).await?;
        Ok(connection.peer.clone())
    }

    /// Sends `payload` and waits for the response, all within `timeout`: waiting for a
    /// connection, queueing and the round trip. Fails with [`Error::Timeout`] when the
    /// deadline passes (a late response is dropped), [`Error::NotConnected`] when no
    /// connection came up in time, [`Error::QueueFull`] at once when the connection's outbound
    /// queue is full, [`Error::ConnectionClosed`] at once when the connection dies meanwhile,
    /// [`Error::Busy`] or [`Error::Remote`] from the peer.
    pub async fn request(&self, payload: Bytes, timeout: Duration) -> Result<Bytes, Error> {
        let started = Instant::now();
        let deadline = started + timeout;
        let result = match self.connection(deadline).await {
            Ok(connection) => connection.request(payload, deadline).await,
            Err(error) => Err(error),
        };
        match &result {
            Ok(_) => ::metrics::histogram!(metrics::REQUEST_LATENCY_SECONDS)
                .record(started.elapsed().as_secs_f64()),
            Err(Error::Timeout) => {
                ::metrics::counter!(metrics::REQUESTS_TIMED_OUT_TOTAL).increment(1)
            }
            Err(_) => ::metrics::counter!(metrics::REQUESTS_FAILED_TOTAL).increment(1),
        }
        result
    }

    /// Opens a server-pushed stream with `payload` as its request. `timeout` bounds only the
    /// wait for a connection; the stream itself lives until either side ends it or the
    /// connection dies (then the receiver yields [`Error::ConnectionClosed`]).
    pub async fn open_stream(
        &self,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<StreamReceiver, Error> {
        let connection = self.connection(Instant::now() + timeout).await?;
        let (id, item_rx) = connection.open_stream(payload).inspect_err(|_| {
            ::metrics::counter!(metrics::REQUESTS_FAILED_TOTAL).increment(1);
        })?;
        Ok(StreamReceiver::new(id, connection, item_rx))
    }

    /// The live connection, waiting for one until `deadline`.
    async fn connection(&self, deadline: Instant) -> Result<Arc<Connection>, Error> {
        let mut link_rx = self.inner.link_rx.clone();
        loop {
            let last_error_opt = match &*link_rx.borrow_and_update() {
                Link::Up(connection) if !connection.is_closed() => return Ok(connection.clone()),
                Link::Up(_) => None,
                Link::Connecting { last_error_opt } => last_error_opt.clone(),
                Link::Stopped => return Err(Error::ShuttingDown),
            };
            match tokio::time::timeout_at(deadline, link_rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::ShuttingDown),
                Err(_elapsed) => {
                    return Err(Error::NotConnected {
                        peer: self.inner.node_id.to_string(),
                        reason: last_error_opt.unwrap_or_else(|| "connecting".into()),
                    })
                }
            }
        }
    }
}

/// The task that keeps one peer connected.
struct Dialer {
    config: Arc<TransportConfig>,
    connector: Arc<dyn super::Connector>,
    node_id: NodeId,
    addr: String,
}

impl Dialer {
    async fn maintain(
        self,
        link_tx: watch::Sender<Link>,
        stop: CancellationToken,
        mut backoff: Backoff,
    ) {
        loop {
            let outcome = tokio::select! {
                _ = stop.cancelled() => break,
                outcome = self.dial() => outcome,
            };
            match outcome {
                Ok((wire, peer)) => {
                    let connection =
                        Connection::spawn(wire, peer, Side::Client, &self.config, None, &stop);
                    backoff.reset();
                    link_tx.send_replace(Link::Up(connection.clone()));
                    connection.closed.cancelled().await;
                    let last_error_opt = Some(connection.closed_error().to_string());
                    link_tx.send_replace(Link::Connecting { last_error_opt });
                }
                Err(error) => {
                    ::metrics::counter!(metrics::CONNECT_ERRORS_TOTAL).increment(1);
                    tracing::debug!(peer = %self.node_id, addr = self.addr, %error, "internode dial failed");
                    let last_error_opt = Some(error.to_string());
                    link_tx.send_replace(Link::Connecting { last_error_opt });
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
        link_tx.send_replace(Link::Stopped);
    }

    async fn dial(&self) -> Result<(Wire, PeerInfo), Error> {
        let io = tokio::time::timeout(
            self.config.connect_timeout,
            self.connector.connect(&self.addr),
        )
        .await
        .map_err(|_| Error::Timeout)??;
        let handshake = self.handshake(io);
        tokio::time::timeout(self.config.handshake_timeout, handshake)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// Runs the client handshake with the small pre-authentication frame limit, then raises
    /// the limit.
    async fn handshake(&self, io: super::BoxedIo) -> Result<(Wire, PeerInfo), Error> {
        let mut wire = LengthDelimitedCodec::builder()
            .max_frame_length(self.config.handshake_frame_bytes)
            .new_framed(io);
        let local = self.config.local_identity();
        let (mut handshake, hello) =
            ClientHandshake::start(local, self.node_id.clone(), new_nonce()?);
        wire.send(hello.encode()).await?;
        loop {
            let Some(received) = wire.next().await else {
                return Err(Error::Refused(
                    "peer closed the connection during the handshake".into(),
                ));
            };
            let frame = Frame::decode(received?.freeze())
                .map_err(|error| refused(&self.config, Refusal::Protocol(error.to_string())))?;
            match handshake
                .on_frame(frame)
                .map_err(|refusal| refused(&self.config, refusal))?
            {
                ClientStep::Send(reply) => wire.send(reply.encode()).await?,
                ClientStep::Done(peer) => {
                    wire.codec_mut()
                        .set_max_frame_length(self.config.max_frame_bytes);
                    return Ok((wire, PeerInfo::new(peer, self.addr.clone())));
                }
            }
        }
    }
}
