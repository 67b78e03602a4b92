//! The cluster router: the node's side of the gateway seam when it is part of a cluster.
//!
//! An op for a list this node owns is a local call; otherwise it travels to the owner in the
//! owner's batch. `moved`, `busy` and `unavailable` are retried here, with backoff and jitter,
//! until the op timeout, each time at the owner of the moment: the op keeps its `op_id` (a
//! create without one gets one here), so every retry is exactly-once, across owner changes too.
//! Subscriptions go through list follows (one node subscription per list at its owner); reads
//! go to the owner; "my lists" is read from the shared account store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use listwire_cluster::membership::NodeState;
use listwire_gateway::{EdgeError, ErrorCode, FrameSink, OpOutcome, Principal, Reply, Router};
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::follow::Follows;
use super::owners::{backoff, Owners};
use super::state::{Picture, Route};
use super::wire::{WireOp, WireOpBody, WirePrincipal};
use crate::domain::parse_create;
use crate::list::rejection_to_edge;
use crate::router::create_ids;

/// Routes ops, reads and subscriptions to list owners across the cluster.
#[derive(Clone)]
pub struct ClusterRouter {
    inner: Arc<Inner>,
}

struct Inner {
    owners: Arc<Owners>,
    follows: Arc<Follows>,
    /// How long an op may be retried before its last answer goes to the client.
    timeout: Duration,
}

/// What an op asks, kept for its retries.
#[derive(Clone)]
enum Body {
    Apply(Arc<str>),
    Create(Arc<str>),
}

/// One op on its way, with what its retries need.
#[derive(Clone)]
struct Attempt {
    principal: Principal,
    list: Uuid,
    op_id: Uuid,
    body: Body,
    deadline: Instant,
    number: u32,
    /// Whether an earlier attempt reached an owner and failed in a way that may have applied
    /// the op (`unavailable`: a lost answer, a failed append): if the retries give up, the
    /// client must hear that the outcome is unknown, not that the op failed.
    maybe_applied: bool,
}

impl ClusterRouter {
    /// A router over `owners` and `follows`, retrying for `timeout`.
    pub fn new(owners: Arc<Owners>, follows: Arc<Follows>, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                owners,
                follows,
                // Just under the edge's op timeout, so the client gets our last answer.
                timeout: timeout.mul_f64(0.9),
            }),
        }
    }

    fn attempt(&self, principal: &Principal, list: Uuid, op_id: Uuid, body: Body) -> Attempt {
        Attempt {
            principal: principal.clone(),
            list,
            op_id,
            body,
            deadline: Instant::now() + self.inner.timeout,
            number: 0,
            maybe_applied: false,
        }
    }
}

/// Sends one attempt to the owner of the moment; its outcome goes to `reply`, or, if
/// retryable and time is left, to another attempt.
fn send(
    inner: Arc<Inner>,
    attempt: Attempt,
    reply: Reply,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let route = inner.owners.route(attempt.list);
        let reaches_owner = !matches!(route, Route::Nowhere(_));
        let retrying = retrying(inner.clone(), attempt.clone(), reply, reaches_owner);
        match route {
            Route::Local => {
                let local = &inner.owners.local;
                match &attempt.body {
                    Body::Apply(json) => match RawValue::from_string(json.to_string()) {
                        Ok(raw) => {
                            local
                                .submit(
                                    &attempt.principal,
                                    attempt.list,
                                    attempt.op_id,
                                    raw,
                                    retrying,
                                )
                                .await
                        }
                        Err(_) => {
                            retrying.send(Err(EdgeError::invalid("op must be a json object")))
                        }
                    },
                    Body::Create(body) => {
                        local
                            .create_at(
                                &attempt.principal,
                                attempt.list,
                                attempt.op_id,
                                body,
                                retrying,
                            )
                            .await
                    }
                }
            }
            Route::Remote { node, addr } => {
                metrics::counter!(super::metrics::FORWARDED_OPS_TOTAL).increment(1);
                let op = WireOp {
                    principal: WirePrincipal::from(&attempt.principal),
                    list: attempt.list,
                    op_id: attempt.op_id,
                    body: match &attempt.body {
                        Body::Apply(json) => WireOpBody::Apply(json.to_string()),
                        Body::Create(body) => WireOpBody::Create(body.to_string()),
                    },
                };
                inner.owners.forwarder.send(&node, &addr, op, retrying);
            }
            Route::Nowhere(error) => retrying.send(Err(error)),
        }
    })
}

/// A reply that retries a retryable outcome (after a backoff, if the deadline allows) and
/// delivers anything else. `reached_owner` says whether this attempt was sent to an owner.
fn retrying(inner: Arc<Inner>, attempt: Attempt, reply: Reply, reached_owner: bool) -> Reply {
    Reply::new(move |outcome: OpOutcome| match outcome {
        Err(error) if error.code.is_retryable() => {
            let maybe_applied =
                attempt.maybe_applied || (reached_owner && error.code == ErrorCode::Unavailable);
            let wait = backoff(attempt.number, attempt.op_id.as_u128() as u64);
            if Instant::now() + wait >= attempt.deadline {
                let error = if maybe_applied {
                    outcome_unknown(error)
                } else {
                    error
                };
                return reply.send(Err(error));
            }
            metrics::counter!(super::metrics::OP_RETRIES_TOTAL, "code" => error.code.as_str())
                .increment(1);
            let next = Attempt {
                number: attempt.number + 1,
                maybe_applied,
                ..attempt
            };
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                send(inner, next, reply).await;
            });
        }
        other => reply.send(other),
    })
}

/// The last retryable error of an op whose earlier attempt may have applied: the client
/// must retry with the same `op_id` rather than take it as failed.
fn outcome_unknown(mut error: EdgeError) -> EdgeError {
    if !error.message.contains("outcome is unknown") {
        error.message = format!(
            "{}; an earlier attempt may have applied, so the outcome is unknown: retry with the same op_id",
            error.message
        );
    }
    error
}

/// Retries a read at the owner of the moment until it answers or the deadline passes.
async fn read_with_retries<T, F, Fut>(
    timeout: Duration,
    seed: u64,
    mut read: F,
) -> Result<T, EdgeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EdgeError>>,
{
    let deadline = Instant::now() + timeout;
    let mut number = 0;
    loop {
        match read().await {
            Err(error) if error.code.is_retryable() => {
                let wait = backoff(number, seed);
                if Instant::now() + wait >= deadline {
                    return Err(error);
                }
                number += 1;
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

#[async_trait]
impl Router for ClusterRouter {
    async fn submit(
        &self,
        principal: &Principal,
        list: Uuid,
        op_id: Uuid,
        op: Box<RawValue>,
        reply: Reply,
    ) {
        let body = Body::Apply(Arc::from(op.get()));
        let attempt = self.attempt(principal, list, op_id, body);
        send(self.inner.clone(), attempt, reply).await;
    }

    async fn subscribe(
        &self,
        principal: &Principal,
        list: Uuid,
        since: Option<u64>,
        sink: FrameSink,
    ) -> Result<(), EdgeError> {
        self.inner
            .follows
            .subscribe(principal, list, since, sink)
            .await
    }

    async fn unsubscribe(&self, list: Uuid, connection_id: u64) {
        self.inner.follows.unsubscribe(list, connection_id).await;
    }

    async fn snapshot(&self, principal: &Principal, list: Uuid) -> Result<Bytes, EdgeError> {
        let owners = &self.inner.owners;
        let seed = list.as_u128() as u64;
        read_with_retries(self.inner.timeout, seed, || {
            owners.snapshot(principal, list)
        })
        .await
    }

    async fn create_list(
        &self,
        principal: &Principal,
        body: Box<RawValue>,
    ) -> Result<Uuid, EdgeError> {
        parse_create(body.get()).map_err(rejection_to_edge)?;
        // Without a client op_id, the ids chosen here stay the same for every retry below,
        // so a create that times out and is retried still makes one list.
        let (list, op_id) = create_ids(principal, body.get())?;
        let (answer_tx, answer) = oneshot::channel();
        let reply = Reply::new(move |outcome| {
            let _ = answer_tx.send(outcome);
        });
        let attempt = self.attempt(principal, list, op_id, Body::Create(Arc::from(body.get())));
        send(self.inner.clone(), attempt, reply).await;
        match answer.await {
            Ok(outcome) => outcome.map(|_seq| list),
            Err(_) => Err(EdgeError::unavailable(
                "the create was dropped; the outcome is unknown, retry with the same op_id",
            )),
        }
    }

    async fn lists_of(&self, principal: &Principal) -> Result<Bytes, EdgeError> {
        self.inner.owners.local.lists_of(principal).await
    }

    async fn ready(&self) -> bool {
        let picture = self.inner.owners.state.picture();
        takes_new_clients(&picture) && self.inner.owners.local.ready().await
    }
}

/// Whether a load balancer should send this node new clients (`/readyz`): the cluster has a
/// majority and someone to serve lists, and this node is not draining or gone. A draining node
/// still serves the connections it has until they close, but answers not ready, so new ones
/// go to the nodes that stay.
pub(crate) fn takes_new_clients(picture: &Picture) -> bool {
    let leaving = picture
        .view
        .self_member()
        .is_some_and(|member| matches!(member.state(), NodeState::Draining | NodeState::Left));
    picture.has_majority() && !picture.view.serving_hosts().is_empty() && !leaving
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
