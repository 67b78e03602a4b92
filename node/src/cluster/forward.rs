//! The gateway node's side of the internode protocol: one op batcher per owner node, plus
//! requests and node subscriptions.
//!
//! Ops for lists owned elsewhere go through [`LANES`] lanes per owner, a list always through
//! the same lane. A lane is a bounded queue and a task that takes whatever has queued (up to
//! [`BATCH_OPS_MAX`]), sends it as one `Ops` request and waits for the answer before the next:
//! so ops that arrive together — the votes of a hot poll from many connections — cost the
//! owner one frame and one handler call, and ops to one list reach it in the order they
//! were sent (the owner submits a batch's ops in order). Lanes run in parallel, so lists
//! do not queue behind each other's round trips.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use listwire_cluster::transport::{Client, Peer, StreamReceiver};
use listwire_cluster::NodeId;
use listwire_gateway::{EdgeError, ErrorCode, Reply};

use super::wire::{self, Request, Response, WireOp};

/// Most ops in one forwarded batch.
pub const BATCH_OPS_MAX: usize = 512;
/// Ops queued per lane before new ones are refused `busy`.
const LANE_QUEUE_OPS_MAX: usize = 4096;
/// Lanes (batches in flight) per owner.
pub const LANES: usize = 16;
/// How long a request or node subscription waits for a connection to the owner: one that
/// cannot be reached soon (it may just have died) is given up on, so the caller retries at
/// the owner of its next view instead of waiting a whole op timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Forwarded ops and requests to other nodes.
pub struct Forwarder {
    client: Client,
    timeout: Duration,
    batchers: Mutex<HashMap<NodeId, Batcher>>,
}

struct Batcher {
    addr: String,
    lanes: Vec<flume::Sender<(WireOp, Reply)>>,
}

/// The lane of `list`: fixed, so one list's ops keep their order.
fn lane_of(list: uuid::Uuid) -> usize {
    let bits = list.as_u128();
    ((bits as u64) ^ ((bits >> 64) as u64)) as usize % LANES
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
        let tx = self.lane(node, addr, lane_of(op.list));
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
        self.request_within(node, addr, request, self.timeout).await
    }

    /// [`Forwarder::request`] with its own deadline.
    pub async fn request_within(
        &self,
        node: &NodeId,
        addr: &str,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, EdgeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let peer = self.client.peer(node, addr);
        connected(&peer, timeout).await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let answer = peer
            .request(wire::encode(request), left)
            .await
            .map_err(transport_error)?;
        wire::decode(&answer).map_err(|error| {
            tracing::warn!(node = %node, %error, "unreadable internode response");
            EdgeError::unavailable("unreadable answer from the list's node; retry")
        })
    }

    /// Opens a node subscription stream at `node`, waiting at most [`CONNECT_TIMEOUT`]
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
            .open_stream(payload, CONNECT_TIMEOUT.min(self.timeout))
            .await
            .map_err(transport_error)
    }

    /// Drops the batchers of nodes not in `live` (they left or died).
    pub fn retain(&self, live: impl Fn(&NodeId) -> bool) {
        let mut batchers = self.lock();
        batchers.retain(|node, _| live(node));
    }

    fn lane(&self, node: &NodeId, addr: &str, lane: usize) -> flume::Sender<(WireOp, Reply)> {
        let mut batchers = self.lock();
        if let Some(batcher) = batchers.get(node) {
            if batcher.addr == addr && !batcher.lanes[lane].is_disconnected() {
                return batcher.lanes[lane].clone();
            }
        }
        let peer = self.client.peer(node, addr);
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = flume::bounded(LANE_QUEUE_OPS_MAX);
                tokio::spawn(lane_loop(peer.clone(), rx, self.timeout));
                tx
            })
            .collect::<Vec<_>>();
        let tx = lanes[lane].clone();
        batchers.insert(
            node.clone(),
            Batcher {
                addr: addr.to_owned(),
                lanes,
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

/// Takes whatever ops have queued and sends them as one request, waiting for its answer
/// before the next (see the module doc), until the lane is dropped.
async fn lane_loop(peer: Peer, rx: flume::Receiver<(WireOp, Reply)>, timeout: Duration) {
    while let Ok(first) = rx.recv_async().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_OPS_MAX {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        send_batch(&peer, batch, timeout).await;
    }
}

async fn send_batch(peer: &Peer, batch: Vec<(WireOp, Reply)>, timeout: Duration) {
    let (ops, replies): (Vec<WireOp>, Vec<Reply>) = batch.into_iter().unzip();
    metrics::histogram!(super::metrics::FORWARD_BATCH_OPS).record(ops.len() as f64);
    let started = tokio::time::Instant::now();
    let count = ops.len();
    if let Err(error) = connected(peer, timeout).await {
        return fail_all(replies, &error);
    }
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

/// Waits at most [`CONNECT_TIMEOUT`] (or `timeout`, if shorter) for a connection to `peer`.
async fn connected(peer: &Peer, timeout: Duration) -> Result<(), EdgeError> {
    if peer.is_connected() {
        return Ok(());
    }
    peer.wait_connected(CONNECT_TIMEOUT.min(timeout))
        .await
        .map(|_| ())
        .map_err(transport_error)
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
        // The peer was dropped (it left the view) while the request waited or ran.
        E::ShuttingDown => EdgeError::unavailable(
            "the list's node left; the outcome is unknown, retry with the same op_id",
        ),
        E::Timeout | E::ConnectionClosed(_) => EdgeError::unavailable(
            "no answer from the list's node; the outcome is unknown, retry with the same op_id",
        ),
        other => {
            tracing::warn!(error = %other, "internode request failed");
            EdgeError::unavailable("internode request failed; the outcome is unknown, retry")
        }
    }
}
