//! The gateway node's side of the internode protocol: one op batcher per owner node, plus
//! requests and node subscriptions.
//!
//! Ops for lists owned elsewhere go through a bounded queue per owner; a task takes whatever
//! has queued (up to [`BATCH_OPS_MAX`]) and sends it as one `Ops` request, so ops that arrive
//! together — the votes of a hot poll from many connections — cost the owner one frame and
//! one handler call. Several batches may be in flight per owner (bounded), so throughput is
//! not one batch per round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use listwire_cluster::transport::{Client, Peer, StreamReceiver};
use listwire_cluster::NodeId;
use listwire_gateway::{EdgeError, ErrorCode, Reply};
use tokio::sync::Semaphore;

use super::wire::{self, Request, Response, WireOp};

/// Most ops in one forwarded batch.
pub const BATCH_OPS_MAX: usize = 256;
/// Ops queued per owner before new ones are refused `busy`.
const QUEUE_OPS_MAX: usize = 8192;
/// How long opening a node subscription waits for a connection to the owner.
pub const STREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Batches in flight per owner.
const BATCHES_IN_FLIGHT_MAX: usize = 32;

/// Forwarded ops and requests to other nodes.
pub struct Forwarder {
    client: Client,
    timeout: Duration,
    batchers: Mutex<HashMap<NodeId, Batcher>>,
}

struct Batcher {
    addr: String,
    tx: flume::Sender<(WireOp, Reply)>,
}

impl Forwarder {
    /// A forwarder over `client`, giving each request `timeout`.
    pub fn new(client: Client, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            client,
            timeout,
            batchers: Mutex::new(HashMap::new()),
        })
    }

    /// Queues `op` for `node` (at `addr`); the outcome arrives through `reply`. Never waits: a
    /// full queue answers `busy` at once.
    pub fn send(&self, node: &NodeId, addr: &str, op: WireOp, reply: Reply) {
        let tx = self.batcher(node, addr);
        if let Err(error) = tx.try_send((op, reply)) {
            let (_op, reply) = error.into_inner();
            metrics::counter!(super::metrics::FORWARD_QUEUE_FULL_TOTAL).increment(1);
            reply.send(Err(EdgeError::new(
                ErrorCode::Busy,
                "too many ops on their way to the list's node; retry",
            )));
        }
    }

    /// Sends one request to `node` and decodes the answer.
    pub async fn request(
        &self,
        node: &NodeId,
        addr: &str,
        request: &Request,
    ) -> Result<Response, EdgeError> {
        let peer = self.client.peer(node, addr);
        let answer = peer
            .request(wire::encode(request), self.timeout)
            .await
            .map_err(transport_error)?;
        wire::decode(&answer).map_err(|error| {
            tracing::warn!(node = %node, %error, "unreadable internode response");
            EdgeError::unavailable("unreadable answer from the list's node; retry")
        })
    }

    /// Opens a node subscription stream at `node`, waiting at most [`STREAM_CONNECT_TIMEOUT`]
    /// for a connection: a follow that cannot reach the owner it believes in re-routes soon
    /// (the owner may just have died) instead of waiting a whole op timeout.
    pub async fn open_stream(
        &self,
        node: &NodeId,
        addr: &str,
        payload: Bytes,
    ) -> Result<StreamReceiver, EdgeError> {
        self.client
            .peer(node, addr)
            .open_stream(payload, STREAM_CONNECT_TIMEOUT.min(self.timeout))
            .await
            .map_err(transport_error)
    }

    /// Drops the batchers of nodes not in `live` (they left or died).
    pub fn retain(&self, live: impl Fn(&NodeId) -> bool) {
        let mut batchers = self.lock();
        batchers.retain(|node, _| live(node));
    }

    fn batcher(&self, node: &NodeId, addr: &str) -> flume::Sender<(WireOp, Reply)> {
        let mut batchers = self.lock();
        if let Some(batcher) = batchers.get(node) {
            if batcher.addr == addr && !batcher.tx.is_disconnected() {
                return batcher.tx.clone();
            }
        }
        let (tx, rx) = flume::bounded(QUEUE_OPS_MAX);
        let peer = self.client.peer(node, addr);
        tokio::spawn(batch_loop(peer, rx, self.timeout));
        batchers.insert(
            node.clone(),
            Batcher {
                addr: addr.to_owned(),
                tx: tx.clone(),
            },
        );
        tx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Batcher>> {
        self.batchers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Takes whatever ops have queued and sends them as one request, until the queue is dropped.
async fn batch_loop(peer: Peer, rx: flume::Receiver<(WireOp, Reply)>, timeout: Duration) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    while let Ok(first) = rx.recv_async().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_OPS_MAX {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let peer = peer.clone();
        tokio::spawn(async move {
            send_batch(&peer, batch, timeout).await;
            drop(permit);
        });
    }
}

async fn send_batch(peer: &Peer, batch: Vec<(WireOp, Reply)>, timeout: Duration) {
    let (ops, replies): (Vec<WireOp>, Vec<Reply>) = batch.into_iter().unzip();
    metrics::histogram!(super::metrics::FORWARD_BATCH_OPS).record(ops.len() as f64);
    let started = std::time::Instant::now();
    let count = ops.len();
    let answer = peer
        .request(wire::encode(&Request::Ops(ops)), timeout)
        .await;
    let outcomes = match answer.map_err(transport_error).and_then(|bytes| {
        wire::decode::<Response>(&bytes)
            .map_err(|_| EdgeError::unavailable("unreadable answer from the list's node; retry"))
    }) {
        Ok(Response::Ops(outcomes)) if outcomes.len() == count => outcomes,
        Ok(_) => {
            let error = EdgeError::unavailable("malformed answer from the list's node; retry");
            return fail_all(replies, &error);
        }
        Err(error) => return fail_all(replies, &error),
    };
    metrics::histogram!(super::metrics::FORWARD_SECONDS).record(started.elapsed().as_secs_f64());
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        reply.send(outcome.map_err(EdgeError::from));
    }
}

fn fail_all(replies: Vec<Reply>, error: &EdgeError) {
    for reply in replies {
        reply.send(Err(error.clone()));
    }
}

/// A transport failure as the client sees it: retryable, and for anything that may have
/// reached the owner, with an unknown outcome.
pub fn transport_error(error: listwire_cluster::Error) -> EdgeError {
    use listwire_cluster::Error as E;
    match error {
        E::QueueFull | E::Busy => EdgeError::new(ErrorCode::Busy, "the list's node is busy; retry"),
        E::NotConnected { .. } | E::Refused(_) | E::ProtocolVersion { .. } => {
            EdgeError::unavailable("the list's node is unreachable; retry")
        }
        E::Timeout | E::ConnectionClosed(_) => EdgeError::unavailable(
            "no answer from the list's node; the outcome is unknown, retry with the same op_id",
        ),
        other => {
            tracing::warn!(error = %other, "internode request failed");
            EdgeError::unavailable("internode request failed; the outcome is unknown, retry")
        }
    }
}
