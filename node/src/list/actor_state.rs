//! The data and pipeline of one list actor (see the module doc of `list`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use listwire_gateway::{EdgeError, ErrorCode};
use listwire_storage::Batch;
use ractor::ActorRef;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::batching::{encode_batch_body, Batching, EventEncoder, Waiter};
use super::fanout::{Fanout, VotePlan};
use super::index::IndexSync;
use super::lifecycle::{SnapshotBackoff, Stopping};
use super::load::Loaded;
use super::node_sink::Access;
use super::{ListArgs, ListMsg};
use crate::domain::{evolve, Change, ListState};
use crate::host::{ListContext, Slot};
use crate::metrics as m;

/// The state of one list actor.
pub struct ListActorState {
    pub(super) list: Uuid,
    pub(super) context: Arc<ListContext>,
    pub(super) slot: Arc<Slot>,
    pub(super) myself: ActorRef<ListMsg>,
    /// What is durable: the only state reads and subscribers see.
    pub(super) durable: ListState,
    /// `durable` plus everything applied since (in flight and pending).
    pub(super) head: ListState,
    pub(super) pending: Batching,
    pub(super) encoder: EventEncoder,
    in_flight: Option<(Batching, Instant)>,
    /// Retries of ops that are applied but not yet durable.
    pub(super) parked: Vec<Waiter>,
    pub(super) fanout: Fanout,
    pub(super) index: IndexSync,
    pub(super) snapshot_seq: u64,
    /// Size of the latest snapshot written or loaded (sets the snapshot interval).
    pub(super) snapshot_bytes: usize,
    pub(super) snapshot_writing: bool,
    /// When this actor applied its last event (the op-id window's clock advances by at most
    /// the real time between events); `None` before its first.
    pub(super) last_event_at: Option<tokio::time::Instant>,
    /// Waits between attempts after failed snapshots.
    pub(super) snapshot_backoff: SnapshotBackoff,
    pub(super) snapshot_cache: Option<(u64, Bytes)>,
    pub(super) last_activity: Instant,
    /// Set once the list is shutting down or being handed off.
    pub(super) stopping: Option<Stopping>,
    /// Set by [`Self::abort`]: `head` holds an event that will never be stored, so nothing
    /// more may be applied or appended (the rest of a batch is refused, `flush` starts nothing).
    pub(super) aborted: bool,
    pub(super) shutdown_index_attempts: u32,
    /// The housekeeping tick.
    pub(super) tick: JoinHandle<()>,
    /// The timer of the pending tally, if one is armed.
    pub(super) tally_timer: Option<JoinHandle<()>>,
    /// The generation of the armed tally timer; a `TallyDue` of another is stale.
    pub(super) tally_generation: u64,
    /// The timer of the head rechecks after loading; `None` once this actor has written
    /// (a successful conditional append proves its copy was current).
    pub(super) head_rechecks: Option<JoinHandle<()>>,
    /// When the host asked this actor to hand the list off.
    pub(super) handoff_requested: Option<tokio::time::Instant>,
    /// Nodes waiting for ops accepted up to a seq to be durable (see `ListMsg::Settle`).
    settling: Vec<(u64, tokio::sync::oneshot::Sender<()>)>,
}

impl ListActorState {
    /// The state of a freshly loaded list.
    pub fn new(myself: ActorRef<ListMsg>, args: ListArgs, loaded: Loaded) -> Self {
        let config = &args.context.config;
        let fanout = Fanout::new(
            args.list_id,
            loaded.tail,
            config.resume_events_max,
            config.tally_interval,
            args.context.metrics.clone(),
        );
        let tick_every =
            (config.passivate_after / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let tick = myself.send_interval(tick_every, || ListMsg::Tick);
        let mut state = Self {
            list: args.list_id,
            slot: args.slot,
            myself,
            head: loaded.state.clone(),
            durable: loaded.state,
            pending: Batching::default(),
            encoder: EventEncoder::default(),
            in_flight: None,
            parked: Vec::new(),
            fanout,
            index: loaded.index,
            snapshot_seq: loaded.snapshot_seq,
            snapshot_bytes: loaded.snapshot_bytes,
            snapshot_writing: false,
            snapshot_backoff: SnapshotBackoff::default(),
            last_event_at: None,
            snapshot_cache: None,
            last_activity: Instant::now(),
            stopping: None,
            aborted: false,
            shutdown_index_attempts: 0,
            tick,
            tally_timer: None,
            tally_generation: 0,
            head_rechecks: None,
            handoff_requested: None,
            settling: Vec::new(),
            context: args.context,
        };
        state.head_rechecks = state.schedule_head_rechecks();
        state
            .index
            .start(&state.context, &state.durable, &state.myself);
        // A long replay (a crash far from the last snapshot) is not paid again next time.
        state.maybe_snapshot();
        state
    }

    /// Handles one message.
    pub async fn handle(&mut self, myself: &ActorRef<ListMsg>, message: ListMsg) {
        match message {
            ListMsg::Op(request) => {
                self.last_activity = Instant::now();
                self.on_op(*request);
                self.flush();
            }
            ListMsg::OpBatch(batch) => {
                self.last_activity = Instant::now();
                self.on_batch(*batch);
                self.flush();
            }
            ListMsg::Subscribe(request) => {
                self.last_activity = Instant::now();
                self.on_subscribe(*request).await;
            }
            ListMsg::Unsubscribe {
                connection_id,
                admitted,
            } => {
                self.fanout.unsubscribe(connection_id);
                drop(admitted);
            }
            ListMsg::Snapshot {
                user,
                reply,
                admitted,
            } => {
                self.last_activity = Instant::now();
                let _ = reply.send(self.read_snapshot(user));
                // Answered: free the admission now, so the idle check below sees it.
                drop(admitted);
            }
            ListMsg::Durable(result) => self.on_durable(result).await,
            ListMsg::SnapshotWritten { seq, ok } => {
                self.snapshot_writing = false;
                self.snapshot_written(seq, ok);
            }
            ListMsg::IndexSynced(outcome) => {
                self.index.finished(outcome);
                self.maybe_snapshot();
                self.finish_shutdown_if_flushed().await;
            }
            ListMsg::Tick => self.on_tick().await,
            ListMsg::TallyDue(generation) => {
                // A timer that fired while its tally went out another way (a delta, a burst
                // tally) must not take the handle of the timer armed after it.
                if generation == self.tally_generation {
                    self.tally_timer = None;
                    if self.fanout.tally_pending() {
                        self.publish_pending_tally(Instant::now());
                    }
                }
            }
            ListMsg::Shutdown { done } => self.begin_stopping(false, Some(done)).await,
            ListMsg::Handoff { requested } => {
                self.handoff_requested.get_or_insert(requested);
                self.begin_stopping(true, None).await
            }
            ListMsg::Settle { reply } => {
                let accepted = self.head.seq();
                if self.durable.seq() >= accepted {
                    let _ = reply.send(());
                } else {
                    self.settling.push((accepted, reply));
                }
            }
            ListMsg::RecheckHead => self.recheck_head(),
            ListMsg::HeadChecked(result) => self.head_checked(result),
            ListMsg::CatchUp {
                user,
                since,
                reply,
                admitted,
            } => {
                self.last_activity = Instant::now();
                let answer = self.catch_up_for(user, since).await;
                let _ = reply.send(answer);
                drop(admitted);
            }
        }
        if !self.durable.exists() && !self.head.exists() && self.is_quiet() {
            // A request for a list that does not exist: do not keep an actor for it.
            self.passivate(myself).await;
        }
    }

    /// Hands the pending batch to storage if no append is in flight: as many pending events as
    /// fit in `batch_bytes_max` (at least one); the rest wait for the next batch.
    fn flush(&mut self) {
        if self.aborted || self.in_flight.is_some() || self.pending.events.is_empty() {
            return;
        }
        let batching = self.pending.take_front(self.context.config.batch_bytes_max);
        let (Some(first), Some(last)) = (batching.events.first(), batching.events.last()) else {
            return;
        };
        let batch = Batch {
            first_seq: first.seq,
            last_seq: last.seq,
            body: encode_batch_body(&batching.encoded),
        };
        self.context
            .metrics
            .commit_events
            .record(batching.events.len() as f64);
        let store = self.context.events.clone();
        let list = self.list;
        let myself = self.myself.clone();
        // Held until the store answers, even if this actor dies meanwhile: the host activates
        // no successor for this list before that (see `Slot::start_append`).
        let guard = self.slot.start_append();
        if guard.is_none() {
            tracing::error!(list_id = %self.list, "an append was already marked in flight");
        }
        tokio::spawn(async move {
            let result = store.append(list, batch).await;
            drop(guard);
            let _ = myself.send_message(ListMsg::Durable(result));
        });
        self.in_flight = Some((batching, Instant::now()));
    }

    async fn on_durable(&mut self, result: Result<(), listwire_storage::Error>) {
        let Some((batching, started)) = self.in_flight.take() else {
            tracing::error!(list_id = %self.list, "durable notice without a batch in flight");
            return;
        };
        self.context
            .metrics
            .commit_latency
            .record(started.elapsed().as_secs_f64());
        if let Err(error) = result {
            self.fail_and_stop(batching, error);
            return;
        }
        if let Some(rechecks) = self.head_rechecks.take() {
            // Its conditional append won: no other writer got ahead of this copy.
            rechecks.abort();
        }
        self.fold_and_publish(&batching);
        for waiter in batching.waiters {
            self.context
                .metrics
                .ack_latency
                .record(waiter.received.elapsed().as_secs_f64());
            waiter.reply.send(Ok(waiter.seq));
        }
        let durable_seq = self.durable.seq();
        let (settled, settling): (Vec<_>, Vec<_>) = std::mem::take(&mut self.settling)
            .into_iter()
            .partition(|(accepted, _)| *accepted <= durable_seq);
        self.settling = settling;
        for (_, reply) in settled {
            let _ = reply.send(());
        }
        let (ready, parked): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|waiter| waiter.seq <= durable_seq);
        self.parked = parked;
        for waiter in ready {
            waiter.reply.send(Ok(waiter.seq));
        }
        self.index.start(&self.context, &self.durable, &self.myself);
        self.maybe_snapshot();
        self.flush();
        self.finish_shutdown_if_flushed().await;
    }

    /// Folds a durable batch into `durable` and publishes it (delta, or coalesced into a tally).
    fn fold_and_publish(&mut self, batching: &Batching) {
        let now = Instant::now();
        let all_votes = batching.events.iter().all(|event| event.change.is_vote());
        let plan = self.fanout.plan(all_votes, batching.events.len(), now);
        if plan == VotePlan::Delta && self.fanout.tally_pending() {
            // The tally stands for every coalesced vote before this batch; it goes out first.
            self.publish_pending_tally(now);
        }
        let mut access_changed = false;
        for (event, encoded) in batching.events.iter().zip(&batching.encoded) {
            evolve(&mut self.durable, event, &self.context.config.limits);
            self.fanout.remember(event.seq, encoded.clone());
            self.index.note(&event.change);
            access_changed |= matches!(
                event.change,
                Change::Share { .. } | Change::Unshare { .. } | Change::SetVisibility { .. }
            );
            if event.change.is_vote() {
                self.context.metrics.votes_applied.increment(1);
            }
        }
        self.context
            .metrics
            .ops_applied
            .increment(batching.events.len() as u64);
        match plan {
            VotePlan::Coalesce => {
                if let Some(delay) = self.fanout.coalesced(now) {
                    let myself = self.myself.clone();
                    self.tally_generation += 1;
                    let generation = self.tally_generation;
                    self.tally_timer = Some(tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = myself.send_message(ListMsg::TallyDue(generation));
                    }));
                }
            }
            // Covers every vote so far, coalesced ones included (a timer armed for them finds
            // nothing owed).
            VotePlan::Tally => self.publish_pending_tally(now),
            VotePlan::Delta => {
                let (Some(first), Some(last)) = (batching.events.first(), batching.events.last())
                else {
                    return;
                };
                let range = (first.seq, last.seq);
                let access = access_changed.then(|| std::sync::Arc::new(Access::of(&self.durable)));
                self.fanout
                    .publish_delta(range, &batching.encoded, all_votes, access, now);
            }
        }
        if access_changed {
            self.fanout.revoke_unauthorized(&self.durable);
        }
    }

    /// A failed append leaves the durable outcome of later ops unknown to this actor: answer
    /// everything with a retryable error and stop; the next request reloads from storage.
    fn fail_and_stop(&mut self, batching: Batching, error: listwire_storage::Error) {
        let edge = match error {
            listwire_storage::Error::AppendConflict { .. } => {
                m::stale_owner().increment(1);
                tracing::warn!(list_id = %self.list, %error, "lost the conditional append; another writer owns this list");
                EdgeError::new(ErrorCode::Moved, "list changed owner; retry")
            }
            error => {
                tracing::error!(list_id = %self.list, %error, "append failed; stopping the list");
                EdgeError::unavailable("storage unavailable; retry")
            }
        };
        for waiter in batching.waiters {
            waiter.reply.send(Err(edge.clone()));
        }
        self.abort(edge);
    }

    /// Answers every op that is not durable with `error` and stops the actor; replies of an
    /// append still in flight answer `unavailable` when they are dropped.
    pub(super) fn abort(&mut self, error: EdgeError) {
        self.aborted = true;
        let pending = std::mem::take(&mut self.pending);
        for waiter in pending
            .waiters
            .into_iter()
            .chain(std::mem::take(&mut self.parked))
        {
            waiter.reply.send(Err(error.clone()));
        }
        self.context.forget(self.list, &self.slot);
        self.myself.stop(Some("aborted".into()));
    }

    /// Publishes the owed tally and disarms its timer, so a timer armed for this tally cannot
    /// fire into the next coalescing window and publish that one early.
    pub(super) fn publish_pending_tally(&mut self, now: Instant) {
        if let Some(timer) = self.tally_timer.take() {
            timer.abort();
        }
        self.fanout.publish_tally(&self.durable, now);
    }

    /// Whether ops are applied but not yet durable (pending or in flight).
    pub(super) fn has_unflushed(&self) -> bool {
        self.in_flight.is_some() || !self.pending.events.is_empty()
    }
}

impl Drop for ListActorState {
    fn drop(&mut self) {
        // Also covers a panic in a handler, where `post_stop` does not run.
        self.stopped();
    }
}
