//! The committer thread: the only writer of the embedded store, doing group commit.
//!
//! Loop: block for one request, take whatever else is queued (up to `group_max_requests`),
//! validate and stage each in order, write all accepted changes in one atomic fjall batch,
//! fsync once, answer everyone. A failed commit or fsync poisons the store: durability is then
//! unknown, so every later write is refused with [`Error::Poisoned`] until a restart.
//!
//! After a `Close` request the thread syncs everything with `SyncAll` and keeps answering
//! (refusing writes with [`Error::ShuttingDown`]) until every store handle is dropped; exiting
//! earlier could strand requests that were already queued. When the channel disconnects it
//! syncs once more, if it was never closed, and exits.

use std::sync::Arc;
use std::time::Instant;

use fjall::{Database, PersistMode};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::metrics::CommitterMetrics;
use super::progress::Progress;
use super::stage::{HeadCache, Stage};
use super::{backend, EmbeddedOptions, Tables};
use crate::{Batch, Error, Membership, Snapshot, UserRecord};

/// A write the committer performs.
pub(super) enum Op {
    Append {
        list: Uuid,
        batch: Batch,
    },
    WriteSnapshot {
        list: Uuid,
        snapshot: Snapshot,
    },
    Prune {
        list: Uuid,
        up_to_seq: u64,
    },
    CreateUser(UserRecord),
    PutMembership {
        user_id: Uuid,
        membership: Membership,
    },
    RemoveMembership {
        user_id: Uuid,
        list_id: Uuid,
        version: u64,
    },
}

/// Where the committer sends a request's outcome.
pub(super) type Reply = oneshot::Sender<Result<(), Error>>;

/// A request to the committer.
pub(super) enum Message {
    /// Perform `op` durably, then reply.
    Write { op: Op, reply: Reply },
    /// Sync everything with `SyncAll`, refuse later writes, then reply.
    Close { reply: Reply },
}

pub(super) struct Committer {
    db: Database,
    tables: Tables,
    receiver: flume::Receiver<Message>,
    group_max: usize,
    fsync: bool,
    progress: Arc<Progress>,
    closed: bool,
    heads: HeadCache,
    metrics: CommitterMetrics,
}

impl Committer {
    pub(super) fn new(
        db: Database,
        tables: Tables,
        receiver: flume::Receiver<Message>,
        options: &EmbeddedOptions,
        progress: Arc<Progress>,
    ) -> Self {
        Self {
            db,
            tables,
            receiver,
            group_max: options.group_max_requests.max(1),
            fsync: options.fsync,
            progress,
            closed: false,
            heads: HeadCache::default(),
            metrics: CommitterMetrics::new(),
        }
    }

    /// The thread body. Returns once every store handle is dropped and the queue is empty.
    pub(super) fn run(mut self) {
        while let Ok(first) = self.receiver.recv() {
            let mut group = Vec::with_capacity(self.receiver.len().min(self.group_max) + 1);
            group.push(first);
            group.extend(self.receiver.try_iter().take(self.group_max - 1));
            self.handle_group(group);
        }
        if !self.closed {
            // The last handle was dropped without close(): still leave everything on disk.
            if let Err(err) = self.sync_all() {
                tracing::error!(error = %err, "final sync of the embedded store failed");
            }
        }
        tracing::debug!("storage committer stopped");
    }

    fn handle_group(&mut self, group: Vec<Message>) {
        let mut writes = Vec::with_capacity(group.len());
        for message in group {
            match message {
                Message::Write { op, reply } if !self.closed => writes.push((op, reply)),
                Message::Write { reply, .. } => {
                    let _ = reply.send(Err(Error::ShuttingDown));
                }
                Message::Close { reply } => {
                    // Writes queued before the close are committed first, in order.
                    self.commit_group(std::mem::take(&mut writes));
                    let _ = reply.send(self.close());
                }
            }
        }
        self.commit_group(writes);
    }

    /// Handles a close request. Only the first one syncs; later ones report the same outcome.
    fn close(&mut self) -> Result<(), Error> {
        if !self.closed {
            self.closed = true;
            self.sync_all()?;
        }
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    fn sync_all(&mut self) -> Result<(), Error> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        match self.db.persist(PersistMode::SyncAll) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.poison(&backend(err));
                Err(Error::Poisoned)
            }
        }
    }

    fn is_poisoned(&self) -> bool {
        self.progress.is_poisoned()
    }

    fn poison(&mut self, err: &Error) {
        self.progress.poison();
        self.metrics.poisoned.increment(1);
        tracing::error!(
            error = %err,
            "storage commit or fsync failed; durability is unknown, so the store is poisoned \
             and refuses every write until the node restarts"
        );
    }

    /// Validates, writes and syncs one group, then answers each request.
    fn commit_group(&mut self, writes: Vec<(Op, Reply)>) {
        if writes.is_empty() {
            return;
        }
        let started = Instant::now();
        // Precision loss is irrelevant: a group never holds 2^52 requests.
        #[allow(clippy::cast_precision_loss)]
        self.metrics.group_requests.record(writes.len() as f64);
        if self.is_poisoned() {
            for (_, reply) in writes {
                let _ = reply.send(Err(Error::Poisoned));
            }
            return;
        }
        self.heads.trim();
        let mut stage = Stage::default();
        let mut outcomes = Vec::with_capacity(writes.len());
        for (op, reply) in writes {
            let outcome = stage.apply(&self.tables, &mut self.heads, op);
            if matches!(outcome, Err(Error::AppendConflict { .. })) {
                self.metrics.append_conflicts.increment(1);
            }
            outcomes.push((reply, outcome));
        }
        match self.write_stage(stage) {
            Ok(()) => {
                for (reply, outcome) in outcomes {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                self.poison(&err);
                // The staged heads never reached the disk.
                self.heads.clear();
                // Even refused requests get Poisoned: they were judged against staged writes
                // whose fate is now unknown.
                for (reply, _) in outcomes {
                    let _ = reply.send(Err(Error::Poisoned));
                }
            }
        }
        self.metrics
            .group_seconds
            .record(started.elapsed().as_secs_f64());
    }

    /// Writes the stage as one atomic batch, then fsyncs once (unless fsync is off). The group
    /// is announced before it becomes visible and published as synced after the fsync, so
    /// readers never answer from data that is not durable (see `progress`).
    fn write_stage(&self, stage: Stage) -> Result<(), Error> {
        if stage.is_empty() {
            return Ok(());
        }
        let mut batch = fjall::OwnedWriteBatch::with_capacity(self.db.clone(), stage.len());
        stage.write_to(&self.tables, &mut batch);
        let group = self.progress.announce();
        batch.commit().map_err(backend)?;
        self.progress.before_sync();
        if self.fsync {
            self.db.persist(PersistMode::SyncData).map_err(backend)?;
        }
        self.progress.synced(group);
        Ok(())
    }
}
