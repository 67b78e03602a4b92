//! The owner's side of the internode protocol: ops, reads, catch-ups and node subscriptions
//! that gateway nodes send to the node owning a list.
//!
//! Everything goes through this node's [`LocalRouter`], so it meets the same checks as a
//! local request: the host refuses a list this node does not own with `moved` (naming the
//! owner it believes in) and the list actor authorizes the user. Nothing is retried here; the
//! gateway node retries with its own, possibly newer, view.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use listwire_cluster::transport::{Handler, PeerInfo, PushError, StreamSender};
use listwire_gateway::{EdgeError, ErrorCode, Principal};
use serde_json::value::RawValue;
use tokio::time::Instant;
use uuid::Uuid;

use super::items;
use super::wire::{
    self, NodeStats, Request, Response, Subscribe, WireCatchUp, WireError, WireOp, WireOpBody,
};
use crate::domain::UserRef;
use crate::list::answers::{BatchAnswers, BatchPlace};
use crate::list::node_sink::{NodeItem, NodeSource};
use crate::list::{BatchedOp, OpKind};
use crate::router::LocalRouter;

/// How long a settle request waits for this node's accepted ops of a list: under the asking
/// node's own deadline, so it hears the answer.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Serves internode requests with this node's lists.
pub struct InternodeHandler {
    local: LocalRouter,
    /// Items a node subscription may queue before it is dropped as too slow.
    node_queue_items: usize,
}

impl InternodeHandler {
    /// A handler over `local`.
    pub fn new(local: LocalRouter, node_queue_items: usize) -> Arc<Self> {
        Arc::new(Self {
            local,
            node_queue_items,
        })
    }

    /// Submits a batch's ops, each list's in the order sent as one message to its actor and
    /// the lists side by side (a list that is slow to load holds up only its own ops), then
    /// collects every outcome, in the order sent. Public for the owner's vote-path benchmark
    /// (`benches/vote_path.rs`).
    pub async fn ops(&self, ops: Vec<WireOp>) -> Response {
        let received = Instant::now();
        let mut answers = BatchAnswers::new(ops.len());
        let mut groups: Vec<(Uuid, Vec<(WireOp, BatchPlace)>)> = Vec::new();
        let mut group_of: HashMap<Uuid, usize> = HashMap::new();
        for op in ops {
            let place = answers.next_place();
            let index = *group_of.entry(op.list).or_insert_with(|| {
                groups.push((op.list, Vec::new()));
                groups.len() - 1
            });
            groups[index].1.push((op, place));
        }
        let submissions = groups
            .into_iter()
            .map(|(list, group)| self.submit_list(list, group, received));
        futures_util::future::join_all(submissions).await;
        let outcomes = answers
            .outcomes()
            .await
            .into_iter()
            .map(|outcome| outcome.map_err(|error| WireError::from(&error)))
            .collect();
        Response::Ops(outcomes)
    }

    /// Prepares one list's ops in order (one that fails to parse is answered at once) and hands
    /// the rest to the list as one batch.
    async fn submit_list(&self, list: Uuid, group: Vec<(WireOp, BatchPlace)>, received: Instant) {
        let mut batch = Vec::with_capacity(group.len());
        for (op, answer) in group {
            match self.prepare(op).await {
                Ok(kind) => batch.push(BatchedOp { kind, answer }),
                Err(error) => answer.send(Err(error)),
            }
        }
        self.local.submit_batch(list, batch, received).await;
    }

    async fn prepare(&self, op: WireOp) -> Result<OpKind, EdgeError> {
        // The gateway node's principal is trusted (authenticated internode connection); its
        // username moves into the op instead of being copied.
        let by = UserRef {
            user_id: op.principal.user_id,
            username: op.principal.username,
        };
        match op.body {
            WireOpBody::Apply(json) => {
                let prepared = self.local.prepare_apply(by, op.op_id, &json).await;
                // Only input that does not parse can fail to be JSON; checked only then, so a
                // well-formed op is parsed once.
                if prepared.is_err() && serde_json::from_str::<&RawValue>(&json).is_err() {
                    return Err(EdgeError::invalid("op must be a json object"));
                }
                prepared
            }
            WireOpBody::Create(body) => LocalRouter::prepare_create(by, op.op_id, &body),
        }
    }

    async fn catch_up(&self, user: Uuid, list: Uuid, since: Option<u64>) -> Response {
        let answer = self.local.catch_up(user, list, since).await;
        Response::CatchUp(
            answer
                .map(|(catch_up, seq)| WireCatchUp {
                    frames: catch_up
                        .frames
                        .into_iter()
                        .map(|(seq, frame)| (seq, frame.to_vec()))
                        .collect(),
                    snapshot: catch_up.snapshot,
                    seq,
                })
                .map_err(|error| WireError::from(&error)),
        )
    }
}

#[async_trait]
impl Handler for InternodeHandler {
    async fn request(&self, peer: &PeerInfo, payload: Bytes) -> Result<Bytes, Bytes> {
        let request: Request = wire::decode(&payload).map_err(|error| {
            tracing::warn!(peer = %peer.node_id(), %error, "unreadable internode request");
            Bytes::from(error.to_string())
        })?;
        let response = match request {
            Request::Ops(ops) => self.ops(ops).await,
            Request::Snapshot { principal, list } => {
                use listwire_gateway::Router;
                let principal = Principal::from(principal);
                let answer = self.local.snapshot(&principal, list).await;
                Response::Snapshot(
                    answer
                        .map(|json| json.to_vec())
                        .map_err(|error| WireError::from(&error)),
                )
            }
            Request::CatchUp { user, list, since } => self.catch_up(user, list, since).await,
            Request::Stats => Response::Stats(NodeStats {
                active_lists: self.local.host().active_lists() as u64,
            }),
            Request::Active { list } => Response::Active(self.local.host().is_active(list)),
            Request::Settle { list } => {
                self.local.host().settle(list, SETTLE_WAIT).await;
                Response::Settled
            }
        };
        Ok(wire::encode(&response))
    }

    async fn stream(&self, peer: &PeerInfo, payload: Bytes, stream: StreamSender) {
        let subscribe: Subscribe = match wire::decode(&payload) {
            Ok(subscribe) => subscribe,
            Err(error) => {
                tracing::warn!(peer = %peer.node_id(), %error, "unreadable node subscription");
                return stream.end(Some(Bytes::from(error.to_string()))).await;
            }
        };
        let opened = self
            .local
            .subscribe_node(subscribe.list, subscribe.since, self.node_queue_items)
            .await;
        match opened {
            Ok(source) => pump(source, stream).await,
            Err(error) => {
                let end = NodeItem::End {
                    code: error.code,
                    message: error.message,
                };
                // A refusal fits the window of a fresh stream.
                let _ = stream.try_push(items::encode_item(&end));
                stream.end(None).await;
            }
        }
    }
}

/// Moves a node subscription's items into the transport stream until either side ends,
/// waiting for the gateway node's credit (the stream's window) meanwhile. A gateway node that
/// falls so far behind that the owner's queue overflows is told so and cut off; it
/// resubscribes with `since`.
async fn pump(source: NodeSource, stream: StreamSender) {
    loop {
        let item = tokio::select! {
            item = source.next() => item,
            () = stream.closed() => {
                source.close();
                return;
            }
        };
        let item = item.unwrap_or_else(|| NodeItem::End {
            code: ErrorCode::Unavailable,
            message: if source.overflowed() {
                "node subscription fell too far behind; resubscribe with since".into()
            } else {
                "list stopped; resubscribe with since".into()
            },
        });
        let is_end = matches!(item, NodeItem::End { .. });
        // `push` waits for credit and gives up once the stream closes.
        match stream.push(items::encode_item(&item)).await {
            Ok(()) if is_end => break,
            Ok(()) => {}
            Err(PushError::Closed(_)) => {
                source.close();
                return;
            }
            Err(PushError::TooLarge(_)) | Err(PushError::Full(_)) => {
                // Larger than an internode frame (a list past its limits): the gateway node
                // cannot have it; it resubscribes and gets a snapshot instead.
                source.close();
                tracing::warn!("a node subscription item exceeds the internode frame limit");
                let reason = Bytes::from_static(b"node subscription item too large");
                return stream.end(Some(reason)).await;
            }
        }
    }
    stream.end(None).await;
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "handler_batch_tests.rs"]
mod batch_tests;
