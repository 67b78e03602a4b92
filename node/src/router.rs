//! The node's side of the gateway seam: routes ops, subscriptions and reads to list actors.
//!
//! Today every list is owned locally ([`LocalRouter`]). A cluster router will look the owner
//! up by rendezvous hashing and either call the local host or forward over the internode
//! transport; the gateway does not change.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use listwire_gateway::{
    Account, Accounts, EdgeError, ErrorCode, FrameSink, Principal, Reply, Router,
};
use listwire_storage::{AccountStore, UserRecord};
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::domain::{parse_create, parse_op, Command, Op, UserRef};
use crate::host::{Activation, Host};
use crate::list::node_sink::{NodeSink, NodeSource, SubscriberSink};
use crate::list::{
    now_ms, rejection_to_edge, BatchedOp, CatchUp, ListMsg, OpBatch, OpKind, OpRequest,
    SubscribeRequest,
};

/// How long `/readyz` waits for its storage probe.
const READY_STORAGE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most entries returned by `GET /v1/lists`.
const MY_LISTS_MAX: usize = 10_000;

/// Routes everything to the lists of this node.
#[derive(Clone)]
pub struct LocalRouter {
    host: Host,
    accounts: Arc<dyn AccountStore>,
}

impl LocalRouter {
    /// A router over `host`.
    pub fn new(host: Host) -> Self {
        let accounts = host.context().accounts.clone();
        Self { host, accounts }
    }

    fn answer_timeout(&self) -> Duration {
        self.host.context().config.request_timeout
    }

    /// Creates `list` (ids from [`create_ids`]) from the raw create body; the outcome (seq 1)
    /// arrives through `reply`.
    pub async fn create_at(
        &self,
        principal: &Principal,
        list: Uuid,
        op_id: Uuid,
        body: &str,
        reply: Reply,
    ) {
        let kind = match Self::prepare_create(principal_ref(principal), op_id, body) {
            Ok(kind) => kind,
            Err(error) => return reply.send(Err(error)),
        };
        let request = OpRequest {
            kind,
            reply: reply.into(),
            admitted: None,
            received: Instant::now(),
        };
        self.dispatch(list, ListMsg::Op(Box::new(request)), Activation::Activate)
            .await;
    }

    /// A client op from its raw JSON: parsed, a shared username resolved, ready for the list
    /// actor. A failure is the op's own outcome.
    pub async fn prepare_apply(
        &self,
        by: UserRef,
        op_id: Uuid,
        raw_json: &str,
    ) -> Result<OpKind, EdgeError> {
        let op = parse_op(raw_json).map_err(rejection_to_edge)?;
        let target = self.resolve_target(&op).await?;
        Ok(OpKind::Apply(Command {
            op_id,
            by,
            // Stamped by the list's owner (see `clock`).
            at_ms: 0,
            elapsed_ms: None,
            op,
            target,
        }))
    }

    /// A create from its raw body, ready for the list actor.
    pub fn prepare_create(by: UserRef, op_id: Uuid, body: &str) -> Result<OpKind, EdgeError> {
        let create = parse_create(body).map_err(rejection_to_edge)?;
        Ok(OpKind::Create {
            op_id,
            by,
            // Stamped by the list's owner (see `clock`).
            at_ms: 0,
            create,
        })
    }

    /// Hands prepared ops of `list`, in order, to its actor as one message with one admission
    /// (a forwarded batch: issue 13). Each op is answered through its own place, and a refusal
    /// (`moved`, `busy`, `unavailable`) answers each op it covers.
    pub async fn submit_batch(&self, list: Uuid, ops: Vec<BatchedOp>, received: Instant) {
        if ops.is_empty() {
            return;
        }
        let batch = OpBatch {
            ops,
            admitted: None,
            received,
        };
        self.dispatch(
            list,
            ListMsg::OpBatch(Box::new(batch)),
            Activation::Activate,
        )
        .await;
    }

    /// Subscribes a gateway node to `list` (live frames, after catching up from `since` if
    /// given) through a queue of `capacity` items.
    pub async fn subscribe_node(
        &self,
        list: Uuid,
        since: Option<u64>,
        capacity: usize,
    ) -> Result<NodeSource, EdgeError> {
        let (sink, source) = NodeSink::new(capacity);
        let (reply, answer) = oneshot::channel();
        let request = SubscribeRequest {
            sink: SubscriberSink::Node(sink),
            since,
            reply,
            admitted: None,
        };
        let message = ListMsg::Subscribe(Box::new(request));
        self.dispatch(list, message, Activation::Activate).await;
        await_answer(answer, self.answer_timeout()).await?;
        Ok(source)
    }

    /// The frames that bring `user` from `since` to `list`'s durable state, and its seq.
    pub async fn catch_up(
        &self,
        user: Uuid,
        list: Uuid,
        since: Option<u64>,
    ) -> Result<(CatchUp, u64), EdgeError> {
        let (reply, answer) = oneshot::channel();
        let message = ListMsg::CatchUp {
            user,
            since,
            reply,
            admitted: None,
        };
        self.dispatch(list, message, Activation::Activate).await;
        await_answer(answer, self.answer_timeout()).await
    }

    /// The host behind this router.
    pub fn host(&self) -> &Host {
        &self.host
    }

    async fn dispatch(&self, list: Uuid, message: ListMsg, activation: Activation) {
        if let Err((error, message)) = self.host.dispatch(list, message, activation).await {
            message.refuse(error);
        }
    }

    async fn resolve_target(&self, op: &Op) -> Result<Option<UserRef>, EdgeError> {
        let Op::Share { user, .. } = op else {
            return Ok(None);
        };
        let found = self
            .accounts
            .user_by_name(user)
            .await
            .map_err(storage_to_edge)?;
        Ok(found.map(|record| UserRef {
            user_id: record.user_id,
            username: record.username,
        }))
    }
}

/// The list id and op id of a create. With a client-chosen `op_id`, the list id is derived from
/// (user, op id), so a retried create reaches the same list and is answered from its op-id
/// window: exactly once. Without one, both are fresh (the caller keeps them for its retries).
pub fn create_ids(principal: &Principal, body: &str) -> Result<(Uuid, Uuid), EdgeError> {
    Ok(match create_op_id(body)? {
        Some(op_id) => (Uuid::new_v5(&principal.user_id, op_id.as_bytes()), op_id),
        None => (Uuid::now_v7(), Uuid::new_v4()),
    })
}

/// The optional `op_id` of a create body (a listwire addition to `POST /v1/lists`).
fn create_op_id(body: &str) -> Result<Option<Uuid>, EdgeError> {
    #[derive(serde::Deserialize)]
    struct WithOpId {
        #[serde(default)]
        op_id: Option<Uuid>,
    }
    serde_json::from_str::<WithOpId>(body)
        .map(|parsed| parsed.op_id)
        .map_err(|_| EdgeError::invalid("op_id must be a uuid"))
}

fn principal_ref(principal: &Principal) -> UserRef {
    UserRef {
        user_id: principal.user_id,
        username: principal.username.clone(),
    }
}

/// Storage failures as clients see them; the cause is logged here, never sent.
pub fn storage_to_edge(error: listwire_storage::Error) -> EdgeError {
    match error {
        listwire_storage::Error::AlreadyExists(what) => {
            EdgeError::new(ErrorCode::Conflict, format!("{what} already exists"))
        }
        error if error.is_retryable() => EdgeError::unavailable("storage unavailable; retry"),
        error => {
            tracing::error!(%error, "storage error");
            EdgeError::internal()
        }
    }
}

/// Waits for a list actor's answer, at most `timeout`. A request that was dropped or timed
/// out may still take effect (a create may still commit), so both say the outcome is unknown:
/// never a definite failure.
async fn await_answer<T>(
    answer: oneshot::Receiver<Result<T, EdgeError>>,
    timeout: Duration,
) -> Result<T, EdgeError> {
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_dropped)) => Err(EdgeError::unavailable(
            "list stopped before answering; the outcome is unknown, retry with the same op_id",
        )),
        Err(_elapsed) => Err(EdgeError::unavailable(
            "list did not answer in time; the outcome is unknown, retry with the same op_id",
        )),
    }
}

#[async_trait]
impl Router for LocalRouter {
    async fn submit(
        &self,
        principal: &Principal,
        list: Uuid,
        op_id: Uuid,
        op: Box<RawValue>,
        reply: Reply,
    ) {
        let received = Instant::now();
        let kind = match self
            .prepare_apply(principal_ref(principal), op_id, op.get())
            .await
        {
            Ok(kind) => kind,
            Err(error) => return reply.send(Err(error)),
        };
        let request = OpRequest {
            kind,
            reply: reply.into(),
            admitted: None,
            received,
        };
        self.dispatch(list, ListMsg::Op(Box::new(request)), Activation::Activate)
            .await;
    }

    async fn subscribe(
        &self,
        principal: &Principal,
        list: Uuid,
        since: Option<u64>,
        sink: FrameSink,
    ) -> Result<(), EdgeError> {
        let (reply, answer) = oneshot::channel();
        debug_assert_eq!(sink.user_id(), principal.user_id);
        let request = SubscribeRequest {
            sink: SubscriberSink::Connection(sink),
            since,
            reply,
            admitted: None,
        };
        self.dispatch(
            list,
            ListMsg::Subscribe(Box::new(request)),
            Activation::Activate,
        )
        .await;
        await_answer(answer, self.answer_timeout()).await
    }

    async fn unsubscribe(&self, list: Uuid, connection_id: u64) {
        let message = ListMsg::Unsubscribe {
            connection_id,
            admitted: None,
        };
        self.dispatch(list, message, Activation::IfActive).await;
    }

    async fn snapshot(&self, principal: &Principal, list: Uuid) -> Result<Bytes, EdgeError> {
        let (reply, answer) = oneshot::channel();
        let message = ListMsg::Snapshot {
            user: principal.user_id,
            reply,
            admitted: None,
        };
        self.dispatch(list, message, Activation::Activate).await;
        await_answer(answer, self.answer_timeout()).await
    }

    async fn create_list(
        &self,
        principal: &Principal,
        body: Box<RawValue>,
    ) -> Result<Uuid, EdgeError> {
        parse_create(body.get()).map_err(rejection_to_edge)?;
        let (list, op_id) = create_ids(principal, body.get())?;
        let (answer_tx, answer) = oneshot::channel();
        let reply = Reply::new(move |outcome| {
            let _ = answer_tx.send(outcome);
        });
        self.create_at(principal, list, op_id, body.get(), reply)
            .await;
        await_answer(answer, self.answer_timeout())
            .await
            .map(|_seq| list)
    }

    async fn lists_of(&self, principal: &Principal) -> Result<Bytes, EdgeError> {
        let memberships = self
            .accounts
            .memberships(principal.user_id, MY_LISTS_MAX)
            .await
            .map_err(storage_to_edge)?;
        let entries: Vec<serde_json::Value> = memberships
            .into_iter()
            .map(|entry| serde_json::json!({"list_id": entry.list_id, "title": entry.title, "role": entry.role}))
            .collect();
        let body = serde_json::to_vec(&entries).map_err(|_| EdgeError::internal())?;
        Ok(Bytes::from(body))
    }

    async fn ready(&self) -> bool {
        if self.host.is_shutting_down() {
            return false;
        }
        // A probe must answer promptly: an unreachable shared store counts as not ready, not as
        // a probe that hangs until the orchestrator's own timeout.
        let probe = self.host.context().events.head(Uuid::nil());
        matches!(
            tokio::time::timeout(READY_STORAGE_TIMEOUT, probe).await,
            Ok(Ok(_))
        )
    }
}

/// The gateway's account view over the account store.
pub struct NodeAccounts {
    store: Arc<dyn AccountStore>,
}

impl NodeAccounts {
    /// Accounts over `store`.
    pub fn new(store: Arc<dyn AccountStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Accounts for NodeAccounts {
    async fn create(&self, account: Account) -> Result<(), EdgeError> {
        let record = UserRecord {
            user_id: account.user_id,
            username: account.username,
            password_hash: account.password_hash,
            created_at_ms: now_ms(),
        };
        self.store
            .create_user(record)
            .await
            .map_err(|error| match error {
                listwire_storage::Error::AlreadyExists(_) => {
                    EdgeError::new(ErrorCode::Conflict, "username is taken")
                }
                error => storage_to_edge(error),
            })
    }

    async fn find(&self, username: &str) -> Result<Option<Account>, EdgeError> {
        let found = self
            .store
            .user_by_name(username)
            .await
            .map_err(storage_to_edge)?;
        Ok(found.map(|record| Account {
            user_id: record.user_id,
            username: record.username,
            password_hash: record.password_hash,
        }))
    }
}
