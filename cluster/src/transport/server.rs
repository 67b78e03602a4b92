//! The accepting side: a listener loop, the server handshake and the [`Handler`] trait.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::codec::LengthDelimitedCodec;
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, Side, Wire};
use super::frame::Frame;
use super::handshake::{Refusal, ServerHandshake, ServerStep};
use super::net::{BoxedIo, Listener};
use super::{new_nonce, refused, PeerInfo, StreamSender, TransportConfig};
use crate::Error;

/// What the node does with requests and streams from authenticated peers. Implemented by the
/// node; the transport calls it concurrently, one spawned task per request or stream.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Answers one request: `Ok` bytes become the caller's response, `Err` bytes reach it as
    /// [`Error::Remote`]. The future is dropped, and nothing is sent, once the caller's
    /// deadline has passed or the connection closes, so keep side effects idempotent.
    async fn request(&self, peer: &PeerInfo, payload: Bytes) -> Result<Bytes, Bytes>;

    /// Serves one stream: push items into `stream` (the task may keep it and return) and end
    /// it. The default refuses streams with an error payload.
    async fn stream(&self, peer: &PeerInfo, payload: Bytes, stream: StreamSender) {
        let _ = (peer, payload);
        stream
            .end(Some(Bytes::from_static(b"streams not supported")))
            .await;
    }
}

/// A running internode server. [`Server::shutdown`] stops it and waits; dropping it stops it
/// too (as a crash would), without waiting.
pub struct Server {
    local_addr: String,
    shutdown: CancellationToken,
    accept_task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Server {
    /// Accepts connections on `listener`, authenticates them and serves them with `handler`.
    pub fn spawn(
        config: TransportConfig,
        listener: impl Listener,
        handler: Arc<dyn Handler>,
    ) -> Result<Server, Error> {
        config.validate()?;
        let local_addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let accept_task = tokio::spawn(accept_loop(
            Arc::new(config),
            Box::new(listener),
            handler,
            shutdown.clone(),
        ));
        Ok(Server {
            local_addr,
            shutdown,
            accept_task,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// Stops accepting and closes every connection: peers' in-flight requests and open
    /// streams fail with [`Error::ConnectionClosed`].
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let accept_task = std::mem::replace(&mut self.accept_task, tokio::spawn(async {}));
        let _ = accept_task.await;
    }
}

async fn accept_loop(
    config: Arc<TransportConfig>,
    mut listener: Box<dyn Listener>,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) {
    let pending_handshakes = Arc::new(Semaphore::new(config.max_pending_handshakes));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (io, remote_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually out of file descriptors: pause instead of spinning.
                tracing::warn!(%error, "internode accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = pending_handshakes.clone().try_acquire_owned() else {
            tracing::warn!(
                remote_addr,
                "too many internode handshakes in progress; closing"
            );
            continue;
        };
        let config = config.clone();
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(
                config.handshake_timeout,
                accept_handshake(io, &config, &remote_addr),
            )
            .await;
            drop(permit);
            match outcome {
                Ok(Ok((wire, peer))) => {
                    Connection::spawn(wire, peer, Side::Server, &config, Some(handler), &shutdown);
                }
                Ok(Err(error)) => {
                    tracing::debug!(remote_addr, %error, "internode handshake failed")
                }
                Err(_elapsed) => tracing::debug!(remote_addr, "internode handshake timed out"),
            }
        });
    }
}

/// Runs the server handshake over `io` with the small pre-authentication frame limit, then
/// raises the limit.
async fn accept_handshake(
    io: BoxedIo,
    config: &TransportConfig,
    remote_addr: &str,
) -> Result<(Wire, PeerInfo), Error> {
    let mut wire = LengthDelimitedCodec::builder()
        .max_frame_length(config.handshake_frame_bytes)
        .new_framed(io);
    let mut handshake = ServerHandshake::new(config.local_identity(), new_nonce()?);
    loop {
        let Some(received) = wire.next().await else {
            return Err(Error::ConnectionClosed("closed during handshake".into()));
        };
        // An oversize or unreadable frame is the peer's fault too: count it as a refusal.
        let step = received
            .map_err(|error| Refusal::Protocol(format!("read failed: {error}")))
            .and_then(|bytes| {
                Frame::decode(bytes.freeze()).map_err(|error| Refusal::Protocol(error.to_string()))
            })
            .and_then(|frame| handshake.on_frame(frame));
        let step = match step {
            Ok(step) => step,
            Err(refusal) => {
                // Say why before closing, so the refused node's operator sees the cause.
                let _ = wire
                    .send(
                        Frame::Refused {
                            code: refusal.code(),
                        }
                        .encode(),
                    )
                    .await;
                return Err(refused(config, refusal));
            }
        };
        match step {
            ServerStep::Send(reply) => wire.send(reply.encode()).await?,
            ServerStep::SendAndDone(reply, peer) => {
                wire.send(reply.encode()).await?;
                wire.codec_mut()
                    .set_max_frame_length(config.max_frame_bytes);
                return Ok((wire, PeerInfo::new(peer, remote_addr.to_string())));
            }
        }
    }
}
