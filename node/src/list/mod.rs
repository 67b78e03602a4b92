//! The list actor: one per active list, the single writer of that list on this node.
//!
//! It applies commands in arrival order to a speculative `head` state, hands batches to storage
//! (one append in flight at a time; commands that arrive meanwhile form the next batch — group
//! commit per list, on top of the store's group commit across lists), and only when a batch is
//! durable does it fold the events into the `durable` state, acknowledge the writers and publish
//! one frame per batch to subscribers. Reads (snapshots, subscriptions) see only `durable`.

mod actor_state;
pub mod answers;
mod batching;
#[cfg(test)]
pub(crate) use batching::tests::fail_encoding_of;
mod fanout;
pub mod frames;
mod index;
mod lifecycle;
mod load;
pub mod node_sink;
mod ops;
mod reads;

use tokio::time::Instant;

use bytes::Bytes;
use listwire_gateway::{EdgeError, ErrorCode};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::domain::{Command, CreateList, RejectCode, Rejection, UserRef};
use crate::host::{Admitted, ListContext, Slot};
use actor_state::ListActorState;
use answers::{Answer, BatchPlace};

pub use fanout::CatchUp;
pub use load::LoadError;
use node_sink::SubscriberSink;

/// What an op request asks for.
#[derive(Debug)]
pub enum OpKind {
    /// A client op on an existing list.
    Apply(Command),
    /// The creation of the list (its first event).
    Create {
        /// The op id: the client's `op_id` from the create body, or a fresh one.
        op_id: Uuid,
        /// The creator, who becomes the owner.
        by: UserRef,
        /// Time of the request.
        at_ms: u64,
        /// The validated create body.
        create: CreateList,
    },
}

/// One op on its way to the actor.
#[derive(Debug)]
pub struct OpRequest {
    /// What to do.
    pub kind: OpKind,
    /// Where the outcome goes.
    pub reply: Answer,
    /// Admission (freed when answered).
    pub admitted: Option<Admitted>,
    /// When the node received it (for ack latency).
    pub received: Instant,
}

/// The ops of one list from one forwarded request, in the order sent: one actor message and one
/// admission for all of them (issue 13), each still answered on its own.
#[derive(Debug)]
pub struct OpBatch {
    /// The ops, in order.
    pub ops: Vec<BatchedOp>,
    /// Admission, one place per op (each op takes its own when applied).
    pub admitted: Option<Admitted>,
    /// When the node received the batch (for ack latency).
    pub received: Instant,
}

/// One op of an [`OpBatch`].
#[derive(Debug)]
pub struct BatchedOp {
    /// What to do.
    pub kind: OpKind,
    /// Where its outcome goes.
    pub answer: BatchPlace,
}

/// A subscription request.
#[derive(Debug)]
pub struct SubscribeRequest {
    /// The subscriber: a client connection (whose user is authorized here) or a gateway node.
    pub sink: SubscriberSink,
    /// The last seq the subscriber has, if any.
    pub since: Option<u64>,
    /// Answered once the catch-up frames are queued.
    pub reply: oneshot::Sender<Result<(), EdgeError>>,
    /// Admission.
    pub admitted: Option<Admitted>,
}

/// Messages of the list actor. Everything that must be ordered goes through this one mailbox.
#[derive(Debug)]
pub enum ListMsg {
    /// Apply an op.
    Op(Box<OpRequest>),
    /// Apply a forwarded batch of ops, in order.
    OpBatch(Box<OpBatch>),
    /// Subscribe a connection.
    Subscribe(Box<SubscribeRequest>),
    /// Unsubscribe a connection.
    Unsubscribe {
        /// The connection.
        connection_id: u64,
        /// Admission.
        admitted: Option<Admitted>,
    },
    /// The frames that bring `user`, at `since`, to the durable state (a gateway node is about
    /// to attach that user to its node subscription), and the seq they reach.
    CatchUp {
        /// The user to authorize.
        user: Uuid,
        /// What the user has.
        since: Option<u64>,
        /// The frames and the seq they reach.
        reply: oneshot::Sender<Result<(CatchUp, u64), EdgeError>>,
        /// Admission.
        admitted: Option<Admitted>,
    },
    /// Read the durable snapshot JSON.
    Snapshot {
        /// The reading user.
        user: Uuid,
        /// The answer.
        reply: oneshot::Sender<Result<Bytes, EdgeError>>,
        /// Admission.
        admitted: Option<Admitted>,
    },
    /// The in-flight batch append finished.
    Durable(Result<(), listwire_storage::Error>),
    /// A snapshot write finished.
    SnapshotWritten {
        /// The seq the snapshot covers.
        seq: u64,
        /// Whether it was written.
        ok: bool,
    },
    /// A membership index sync finished; entries that failed are retried.
    IndexSynced(index::IndexOutcome),
    /// Periodic housekeeping: drop closed subscribers, passivate when idle.
    Tick,
    /// The coalesced tally armed as `generation` is due (an older generation's timer, which
    /// fired after its tally went out another way, is ignored).
    TallyDue(u64),
    /// Flush, snapshot and stop.
    Shutdown {
        /// Signalled when the list is flushed.
        done: oneshot::Sender<()>,
    },
    /// This node no longer owns the list (placement moved it, the node drains, lost its
    /// majority or was paused): refuse new ops with `moved`, flush what was accepted, snapshot,
    /// tell subscribers it moved, leave the host and stop.
    Handoff {
        /// When the host asked (the handoff's duration is measured from it).
        requested: Instant,
    },
    /// Answer once every op accepted so far is durable (or failed): another node is about to
    /// load the list.
    Settle {
        /// Answered then; dropped if the actor stops first.
        reply: oneshot::Sender<()>,
    },
    /// Time to compare this actor's state with the store's head (see
    /// `HostConfig::head_rechecks`).
    RecheckHead,
    /// The store's head, as a recheck read it.
    HeadChecked(Result<u64, listwire_storage::Error>),
}

impl ListMsg {
    /// Attaches the admission proof the host issued for this message.
    pub fn set_admitted(&mut self, admission: Admitted) {
        match self {
            ListMsg::Op(request) => request.admitted = Some(admission),
            ListMsg::OpBatch(batch) => batch.admitted = Some(admission),
            ListMsg::Subscribe(request) => request.admitted = Some(admission),
            ListMsg::Unsubscribe { admitted, .. }
            | ListMsg::Snapshot { admitted, .. }
            | ListMsg::CatchUp { admitted, .. } => *admitted = Some(admission),
            _ => drop(admission),
        }
    }

    /// How many places the message takes in the list's in-flight limit: one per op of a batch,
    /// one for any other message.
    pub fn admission_count(&self) -> usize {
        match self {
            ListMsg::OpBatch(batch) => batch.ops.len().max(1),
            _ => 1,
        }
    }

    /// Answers the ops of a batch beyond the first `keep` with `error` and drops them (the
    /// host admitted only `keep`); other messages are left as they are.
    pub fn refuse_beyond(&mut self, keep: usize, error: EdgeError) {
        if let ListMsg::OpBatch(batch) = self {
            for op in batch.ops.drain(keep.min(batch.ops.len())..) {
                op.answer.send(Err(error.clone()));
            }
        }
    }

    /// Whether the message frees resources and must never be refused by admission control:
    /// refusing an unsubscribe with `busy` would keep frames flowing to a connection that
    /// asked them to stop, and keep the list from passivating while that connection lives.
    pub fn is_control(&self) -> bool {
        matches!(
            self,
            ListMsg::Unsubscribe { .. } | ListMsg::Handoff { .. } | ListMsg::Settle { .. }
        )
    }

    /// Answers the message's requester with `error` (used when the host refuses it).
    pub fn refuse(self, error: EdgeError) {
        match self {
            ListMsg::Op(request) => request.reply.send(Err(error)),
            ListMsg::OpBatch(batch) => {
                for op in batch.ops {
                    op.answer.send(Err(error.clone()));
                }
            }
            ListMsg::Subscribe(request) => {
                let _ = request.reply.send(Err(error));
            }
            ListMsg::Snapshot { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            ListMsg::CatchUp { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            _ => {}
        }
    }
}

/// Arguments of a list actor.
pub struct ListArgs {
    /// The list.
    pub list_id: Uuid,
    /// Stores and settings.
    pub context: Arc<ListContext>,
    /// This actor's slot in the host.
    pub slot: Arc<Slot>,
}

/// The list actor's behaviour; its data lives in [`ListActorState`].
pub struct ListActor;

impl Actor for ListActor {
    type Msg = ListMsg;
    type State = ListActorState;
    type Arguments = ListArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ListMsg>,
        args: ListArgs,
    ) -> Result<ListActorState, ActorProcessingErr> {
        // Each storage read of the load is bounded by the activation timeout (see `load`).
        let loaded = load::load(&args.context, args.list_id).await?;
        Ok(ListActorState::new(myself, args, loaded))
    }

    async fn handle(
        &self,
        myself: ActorRef<ListMsg>,
        message: ListMsg,
        state: &mut ListActorState,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(&myself, message).await;
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ListMsg>,
        state: &mut ListActorState,
    ) -> Result<(), ActorProcessingErr> {
        state.stopped();
        Ok(())
    }
}

/// Maps a domain rejection to the edge error the client sees.
pub fn rejection_to_edge(rejection: Rejection) -> EdgeError {
    let code = match rejection.code {
        RejectCode::Forbidden => ErrorCode::Forbidden,
        RejectCode::NotFound => ErrorCode::NotFound,
        RejectCode::Invalid => ErrorCode::Invalid,
        RejectCode::TooLarge => ErrorCode::TooLarge,
        RejectCode::Conflict => ErrorCode::Conflict,
    };
    EdgeError::new(code, rejection.message)
}

/// Wall-clock milliseconds since the Unix epoch (the shell reads the clock; the domain never does).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
