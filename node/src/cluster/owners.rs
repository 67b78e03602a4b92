//! Talking to a list's owner, wherever it is: this node (through the local router) or another
//! node (through the forwarder). Used by the cluster router and by list follows.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use listwire_cluster::transport::StreamReceiver;
use listwire_cluster::NodeId;
use listwire_gateway::{EdgeError, Principal};
use listwire_storage::mutants::{self, Mutant};
use uuid::Uuid;

use super::forward::Forwarder;
use super::items;
use super::state::{ClusterState, Route};
use super::wire::{self, Request, Response, Subscribe, WirePrincipal};
use crate::list::node_sink::{NodeItem, NodeSource};
use crate::router::LocalRouter;

/// A node subscription, from this node's host or from another node.
pub enum Source {
    /// The list lives here.
    Local(NodeSource),
    /// The list lives on another node.
    Remote(StreamReceiver),
}

impl Source {
    /// The next item; `None` when the subscription ended without saying why (the owner
    /// dropped it, the connection died): the follower resubscribes.
    pub async fn next(&mut self) -> Option<NodeItem> {
        match self {
            Source::Local(source) => source.next().await,
            Source::Remote(stream) => match stream.next().await {
                Some(Ok(payload)) => items::decode_item(payload).ok(),
                Some(Err(_)) | None => None,
            },
        }
    }
}

/// Frames that bring a user to the owner's durable state.
pub struct CatchUp {
    /// `(seq reached, frame)`, in order.
    pub frames: Vec<(u64, Bytes)>,
    /// The seq they reach.
    pub seq: u64,
}

/// Requests to list owners.
pub struct Owners {
    /// This node's lists.
    pub local: LocalRouter,
    /// Other nodes.
    pub forwarder: Arc<Forwarder>,
    /// The picture that says who owns what.
    pub state: Arc<ClusterState>,
    /// Items a local node subscription may queue.
    pub node_queue_items: usize,
}

impl Owners {
    /// Where requests for `list` go: to its owner in this node's picture. (The
    /// `stale-owner-serves` mutant keeps a list here while this node still hosts it.)
    pub fn route(&self, list: Uuid) -> Route {
        if mutants::active(Mutant::StaleOwnerServes) && self.local.host().is_active(list) {
            return Route::Local;
        }
        self.state.route(list)
    }

    /// Opens a node subscription at the list's owner; returns it and the owner (`None` here).
    pub async fn open(
        &self,
        list: Uuid,
        since: Option<u64>,
    ) -> Result<(Source, Option<NodeId>), EdgeError> {
        match self.route(list) {
            Route::Local => {
                let source = self
                    .local
                    .subscribe_node(list, since, self.node_queue_items)
                    .await?;
                Ok((Source::Local(source), None))
            }
            Route::Remote { node, addr } => {
                let payload = wire::encode(&Subscribe { list, since });
                let stream = self.forwarder.open_stream(&node, &addr, payload).await?;
                Ok((Source::Remote(stream), Some(node)))
            }
            Route::Nowhere(error) => Err(error),
        }
    }

    /// The catch-up of `user` from `since`.
    pub async fn catch_up(
        &self,
        list: Uuid,
        user: Uuid,
        since: Option<u64>,
    ) -> Result<CatchUp, EdgeError> {
        match self.route(list) {
            Route::Local => {
                let (catch_up, seq) = self.local.catch_up(user, list, since).await?;
                Ok(CatchUp {
                    frames: catch_up.frames,
                    seq,
                })
            }
            Route::Remote { node, addr } => {
                let request = Request::CatchUp { user, list, since };
                match self.forwarder.request(&node, &addr, &request).await? {
                    Response::CatchUp(Ok(catch_up)) => Ok(CatchUp {
                        frames: catch_up
                            .frames
                            .into_iter()
                            .map(|(seq, frame)| (seq, Bytes::from(frame)))
                            .collect(),
                        seq: catch_up.seq,
                    }),
                    Response::CatchUp(Err(error)) => Err(error.into()),
                    _ => Err(mismatched()),
                }
            }
            Route::Nowhere(error) => Err(error),
        }
    }

    /// The list snapshot JSON for `principal`.
    pub async fn snapshot(&self, principal: &Principal, list: Uuid) -> Result<Bytes, EdgeError> {
        match self.route(list) {
            Route::Local => {
                use listwire_gateway::Router;
                self.local.snapshot(principal, list).await
            }
            Route::Remote { node, addr } => {
                let request = Request::Snapshot {
                    principal: WirePrincipal::from(principal),
                    list,
                };
                match self.forwarder.request(&node, &addr, &request).await? {
                    Response::Snapshot(answer) => answer.map(Bytes::from).map_err(EdgeError::from),
                    _ => Err(mismatched()),
                }
            }
            Route::Nowhere(error) => Err(error),
        }
    }
}

fn mismatched() -> EdgeError {
    EdgeError::unavailable("mismatched answer from the list's node; retry")
}

/// The wait before retry `attempt` (0-based): 20 ms doubling to 640 ms, with up to half of it
/// added as jitter so retries from many gateways do not arrive in step.
pub fn backoff(attempt: u32, jitter_seed: u64) -> Duration {
    let base = 20u64 << attempt.min(5);
    // A cheap mix of the seed and attempt; jitter needs no cryptographic quality.
    let mixed = (jitter_seed ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    Duration::from_millis(base + (mixed >> 33) % (base / 2 + 1))
}
