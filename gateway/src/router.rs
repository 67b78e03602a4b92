//! The seam between the edge and the node: what the gateway asks of whoever owns lists.
//!
//! The gateway never sees list types. Ops travel as raw JSON (`Box<RawValue>`), list state comes
//! back as pre-encoded JSON bytes, and live frames are pushed into a per-connection [`FrameSink`].

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::EdgeError;
use crate::sink::FrameSink;

/// An authenticated caller, as established by the gateway from a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id (the token's subject).
    pub user_id: Uuid,
    /// The username carried in the token.
    pub username: String,
}

/// The answer to one op: its seq once durable, or an error.
pub type OpOutcome = Result<u64, EdgeError>;

/// A one-shot reply to an op. It is answered exactly once: by [`Reply::send`], or, if it is
/// dropped unanswered (an actor died, a queue was torn down), with `unavailable` so the client
/// knows to retry with the same `op_id`.
pub struct Reply {
    callback: Option<Box<dyn FnOnce(OpOutcome) + Send>>,
}

impl Reply {
    /// Wraps a callback that delivers the outcome (into a socket queue, or a oneshot).
    pub fn new(callback: impl FnOnce(OpOutcome) + Send + 'static) -> Self {
        Self {
            callback: Some(Box::new(callback)),
        }
    }

    /// Delivers the outcome.
    pub fn send(mut self, outcome: OpOutcome) {
        if let Some(callback) = self.callback.take() {
            callback(outcome);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(callback) = self.callback.take() {
            callback(Err(EdgeError::unavailable(
                "the op was dropped before completion; retry with the same op_id",
            )));
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("answered", &self.callback.is_none())
            .finish()
    }
}

/// What the gateway needs from the node: list ops, subscriptions, reads.
#[async_trait]
pub trait Router: Send + Sync + 'static {
    /// Submits one op. Returns once the op is admitted (or refused); the outcome arrives through
    /// `reply`, after the op is durable. `op` is the raw JSON object of the op (`{"kind":..}`).
    async fn submit(
        &self,
        principal: &Principal,
        list: Uuid,
        op_id: Uuid,
        op: Box<RawValue>,
        reply: Reply,
    );

    /// Subscribes `sink` to `list`. On success the owner has already queued, in order, either the
    /// deltas after `since` or a snapshot, and will queue every later delta or tally frame.
    async fn subscribe(
        &self,
        principal: &Principal,
        list: Uuid,
        since: Option<u64>,
        sink: FrameSink,
    ) -> Result<(), EdgeError>;

    /// Ends the subscription of connection `connection_id` to `list`. Idempotent.
    async fn unsubscribe(&self, list: Uuid, connection_id: u64);

    /// The list snapshot JSON (the same shape as the WebSocket `snapshot.state`).
    async fn snapshot(&self, principal: &Principal, list: Uuid) -> Result<Bytes, EdgeError>;

    /// Creates a list from the raw JSON body of `POST /v1/lists`; returns its id.
    async fn create_list(
        &self,
        principal: &Principal,
        body: Box<RawValue>,
    ) -> Result<Uuid, EdgeError>;

    /// The caller's lists as a JSON array `[{"list_id","title","role"}]`.
    async fn lists_of(&self, principal: &Principal) -> Result<Bytes, EdgeError>;

    /// Whether the node can serve (storage reachable, not shutting down), for `/readyz`.
    async fn ready(&self) -> bool;
}

/// A stored account as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user id.
    pub user_id: Uuid,
    /// The username.
    pub username: String,
    /// PHC-format argon2 password hash.
    pub password_hash: String,
}

/// Account storage, implemented by the node over its account store.
#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// Creates an account; `Err` with code `conflict` if the username is taken.
    async fn create(&self, account: Account) -> Result<(), EdgeError>;
    /// Finds an account by username.
    async fn find(&self, username: &str) -> Result<Option<Account>, EdgeError>;
}

/// What the gateway needs from the node for its operator routes (`/v1/admin/*`). The gateway
/// authenticates the operator (the admin token) and rate-limits the calls; the node answers.
/// Like [`Router`], it knows nothing of clusters: the cluster view comes back as opaque JSON.
#[async_trait]
pub trait Admin: Send + Sync + 'static {
    /// The node's view of the cluster as a JSON object (for `GET /v1/admin/cluster`); with
    /// `list`, it also says which node owns that list.
    async fn cluster(&self, list: Option<Uuid>) -> Result<Bytes, EdgeError>;

    /// The `limit` busiest lists this node hosts, as a JSON object (for `GET /v1/admin/lists`):
    /// how an operator finds a hot list, since no metric names a list.
    async fn lists(&self, limit: usize) -> Result<Bytes, EdgeError>;

    /// Begins a graceful stop of this node (in a cluster: drain, then stop) and returns at
    /// once, before the stop completes: the request that asked must still get its answer.
    async fn stop(&self) -> Result<(), EdgeError>;
}
