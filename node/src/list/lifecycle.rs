//! The lifecycle of a list actor: periodic snapshots, housekeeping ticks, passivation when
//! idle, and the flush-then-stop of a graceful shutdown.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use listwire_gateway::ErrorCode;
use listwire_storage::Snapshot;
use ractor::ActorRef;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::actor_state::ListActorState;
use super::ListMsg;
use crate::domain::encode_snapshot;
use crate::metrics as m;

/// Snapshot bytes written per event, at most, on average. A snapshot's cost grows with the
/// list's state (a hot poll with 100,000 voters and its op-id window is megabytes), while
/// replaying events costs per event; so a list snapshots every `snapshot_every` events or every
/// `last snapshot size / SNAPSHOT_BYTES_PER_EVENT` events, whichever is more. Encoding a
/// multi-megabyte snapshot every 1,000 votes was a fifth of server CPU in the hot-poll profile.
const SNAPSHOT_BYTES_PER_EVENT: usize = 64;

/// How often shutdown retries failed "my lists" index entries before giving up on them.
const SHUTDOWN_INDEX_ATTEMPTS: u32 = 3;

/// The first wait after a failed snapshot; it doubles with each failure in a row.
const SNAPSHOT_BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between snapshot attempts of a list whose snapshots keep failing.
const SNAPSHOT_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// A list that is stopping: flushing what it accepted, then leaving.
pub struct Stopping {
    /// Whether it hands the list off (this node no longer owns it) rather than shutting down.
    pub handoff: bool,
    /// Told when the list is flushed (shutdown).
    pub done: Option<oneshot::Sender<()>>,
}

/// When a list may try its next snapshot after failures: encoding a big state and sending it
/// every tick, only to fail again, would burn the node's CPU and storage bandwidth.
#[derive(Debug, Default)]
pub struct SnapshotBackoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl SnapshotBackoff {
    fn allows(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    fn record(&mut self, ok: bool, now: Instant) {
        if ok {
            *self = Self::default();
            return;
        }
        let wait = SNAPSHOT_BACKOFF_FIRST.saturating_mul(1 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + wait.min(SNAPSHOT_BACKOFF_MAX));
    }
}

impl ListActorState {
    pub(super) fn maybe_snapshot(&mut self) {
        let size_based = (self.snapshot_bytes / SNAPSHOT_BYTES_PER_EVENT) as u64;
        let interval = self.context.config.snapshot_every.max(size_based);
        let due = self.durable.seq() >= self.snapshot_seq + interval;
        // A snapshot promises the index is synced up to its seq (see `index.rs`).
        if !due || self.snapshot_writing || !self.durable.exists() || self.index.is_busy() {
            return;
        }
        if !self.snapshot_backoff.allows(Instant::now()) {
            return;
        }
        self.snapshot_writing = true;
        let snapshot = Snapshot {
            seq: self.durable.seq(),
            body: Bytes::from(encode_snapshot(&self.durable)),
        };
        self.snapshot_bytes = snapshot.body.len();
        let store = self.context.events.clone();
        let list = self.list;
        let myself = self.myself.clone();
        tokio::spawn(async move {
            let seq = snapshot.seq;
            let ok = write_snapshot_and_prune(store.as_ref(), list, snapshot).await;
            let _ = myself.send_message(ListMsg::SnapshotWritten { seq, ok });
        });
    }

    pub(super) async fn on_tick(&mut self) {
        self.fanout.drop_closed();
        self.index.start(&self.context, &self.durable, &self.myself);
        // A list that does not exist (its first request was cancelled before it arrived) is
        // not kept for the idle period.
        let missing = !self.durable.exists() && !self.head.exists();
        let idle = missing || self.last_activity.elapsed() >= self.context.config.passivate_after;
        if idle && self.is_quiet() && self.fanout.is_empty() {
            let myself = self.myself.clone();
            self.passivate(&myself).await;
        }
    }

    pub(super) fn is_quiet(&self) -> bool {
        // Parked retries wait for a seq that is pending or in flight, so they count as unflushed.
        !self.has_unflushed() && !self.index.is_busy() && !self.snapshot_writing
    }

    /// Snapshots if needed, then leaves the host if nothing is in flight. A failed (or backed
    /// off) snapshot does not keep the list in memory: its whole history is durable, and the
    /// next activation replays it from the older snapshot.
    pub(super) async fn passivate(&mut self, myself: &ActorRef<ListMsg>) {
        if !self.write_final_snapshot().await {
            tracing::warn!(list_id = %self.list, "passivating without a final snapshot");
        }
        if self.context.try_release(self.list, &self.slot) {
            myself.stop(Some("passivated".into()));
        }
    }

    /// Completes a shutdown or handoff once everything accepted is durable: finishes the
    /// index (a few tries), writes a final snapshot, and stops. A handoff also tells every
    /// subscriber the list moved (gateway nodes resubscribe at the new owner) and leaves the
    /// host at once, so the next request for the list is routed afresh.
    pub(super) async fn finish_shutdown_if_flushed(&mut self) {
        if self.stopping.is_none() || self.has_unflushed() {
            return;
        }
        if self.index.is_running() {
            return;
        }
        if self.index.is_busy() && self.shutdown_index_attempts < SHUTDOWN_INDEX_ATTEMPTS {
            // Finish the "my lists" index first, retrying failed entries a few times.
            self.shutdown_index_attempts += 1;
            self.index.start(&self.context, &self.durable, &self.myself);
            return;
        }
        if self.index.is_busy() {
            // No snapshot, so the next activation replays these changes into the index.
            tracing::warn!(list_id = %self.list, "index not synced at shutdown; it is repaired on next activation");
        } else {
            self.write_final_snapshot().await;
        }
        let Some(stopping) = self.stopping.take() else {
            return;
        };
        if stopping.handoff {
            m::handoffs().increment(1);
            if let Some(requested) = self.handoff_requested {
                m::handoff_seconds().record(requested.elapsed().as_secs_f64());
            }
            self.fanout.end_all(
                ErrorCode::Moved,
                "list moved to another node; resubscribe with since",
            );
            self.context.forget(self.list, &self.slot);
        }
        if let Some(done) = stopping.done {
            let _ = done.send(());
        }
        self.myself.stop(Some("shutdown".into()));
    }

    /// Starts a shutdown (`done` is told when the list is flushed) or a handoff.
    pub(super) async fn begin_stopping(
        &mut self,
        handoff: bool,
        done: Option<oneshot::Sender<()>>,
    ) {
        let stopping = self.stopping.get_or_insert(Stopping {
            handoff,
            done: None,
        });
        stopping.handoff |= handoff;
        if done.is_some() {
            stopping.done = done;
        }
        self.finish_shutdown_if_flushed().await;
    }

    /// Writes a snapshot of the durable state now, unless one covers it already or recent
    /// failures ask to wait; true when the state is covered by a snapshot afterwards.
    pub(super) async fn write_final_snapshot(&mut self) -> bool {
        if !self.durable.exists() || self.durable.seq() <= self.snapshot_seq {
            return true;
        }
        if !self.snapshot_backoff.allows(Instant::now()) {
            return false;
        }
        let snapshot = Snapshot {
            seq: self.durable.seq(),
            body: Bytes::from(encode_snapshot(&self.durable)),
        };
        let seq = snapshot.seq;
        self.snapshot_bytes = snapshot.body.len();
        let ok = write_snapshot_and_prune(self.context.events.as_ref(), self.list, snapshot).await;
        self.snapshot_written(seq, ok);
        ok
    }

    /// Records the outcome of a snapshot write.
    pub(super) fn snapshot_written(&mut self, seq: u64, ok: bool) {
        self.snapshot_backoff.record(ok, Instant::now());
        if ok {
            self.snapshot_seq = self.snapshot_seq.max(seq);
        } else {
            m::snapshot_failures().increment(1);
        }
    }

    /// Called when the actor stops: cancel timers. Unanswered replies answer `unavailable` on drop.
    pub fn stopped(&mut self) {
        self.tick.abort();
        if let Some(rechecks) = self.head_rechecks.take() {
            rechecks.abort();
        }
        self.index.cancel();
        if let Some(timer) = self.tally_timer.take() {
            timer.abort();
        }
        self.fanout.end_all(
            ErrorCode::Unavailable,
            "list restarted; resubscribe with since",
        );
    }
}

async fn write_snapshot_and_prune(
    store: &dyn listwire_storage::EventStore,
    list: Uuid,
    snapshot: Snapshot,
) -> bool {
    let seq = snapshot.seq;
    if let Err(error) = store.write_snapshot(list, snapshot).await {
        tracing::warn!(list_id = %list, %error, "snapshot write failed");
        return false;
    }
    m::snapshots().increment(1);
    if let Err(error) = store.prune(list, seq).await {
        tracing::warn!(list_id = %list, %error, "pruning history before the snapshot failed");
    }
    true
}
