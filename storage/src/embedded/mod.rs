//! Embedded backend: a fjall LSM database under the data directory, with group commit.
//!
//! Layout (one fjall keyspace per table, see [`crate::record`] for the value encodings):
//!
//! | keyspace      | key                                | value              |
//! |---------------|------------------------------------|--------------------|
//! | `batches`     | list id ‖ `first_seq` (u64 BE)     | batch record       |
//! | `heads`       | list id                            | head record        |
//! | `snapshots`   | list id                            | snapshot record    |
//! | `users`       | user id                            | user record        |
//! | `usernames`   | username bytes                     | user id (16 bytes) |
//! | `memberships` | user id ‖ list id                  | membership record (live or removed) |
//!
//! Writes: every write goes through one committer OS thread fed by a bounded flume channel.
//! The thread takes a group of queued requests, validates them in order against what is stored
//! plus what earlier requests of the same group staged, writes every accepted change in one
//! atomic fjall batch, fsyncs once, then answers every request. Because one thread owns all
//! writes, the conditional append is a plain check-then-insert with no race.
//!
//! Reads run on tokio's blocking pool directly against the database. They can observe a group
//! that is committed to the memtable but not yet fsync'd; that is harmless, because nothing
//! stored is ever overwritten and a crash before the fsync simply loses a group nobody was told
//! about.

mod committer;
pub mod metrics;
mod progress;
mod reads;
mod stage;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{AccountStore, Batch, Error, EventStore, Membership, Snapshot, UserRecord};
use committer::{Committer, Message, Op};
use progress::Progress;

pub use self::metrics::describe_metrics;

/// Tuning of the embedded store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Capacity of the committer's request queue. When it is full, writers wait (backpressure).
    /// Default 4096.
    pub queue_capacity: usize,
    /// Most requests folded into one group commit (one fsync). Default 1024.
    pub group_max_requests: usize,
    /// Whether to fsync each group. Turning it off makes acknowledged writes survive a process
    /// crash but not a power loss; only for tests and benchmarks. Default `true`.
    pub fsync: bool,
    /// Block cache size in bytes. Default 64 MiB.
    pub cache_bytes: u64,
    /// Background flush and compaction threads; 0 lets fjall choose (one per core, up to 4).
    /// Default 0.
    pub worker_threads: usize,
    /// How long a request may wait for the committer (to be queued, then answered) or a read
    /// for the disk, before it fails with [`Error::Unavailable`]. A write that timed out after
    /// it was queued may still be committed: its outcome is unknown. Default 10 s.
    pub request_timeout: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            group_max_requests: 1024,
            fsync: true,
            cache_bytes: 64 << 20,
            worker_threads: 0,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Most reads running on the blocking pool at once.
const READS_CONCURRENT_MAX: usize = 64;

/// The fjall keyspaces of the store. Cloning copies cheap handles.
#[derive(Clone)]
pub(crate) struct Tables {
    /// The database, for consistent snapshots.
    pub(crate) db: Database,
    pub(crate) batches: Keyspace,
    pub(crate) heads: Keyspace,
    pub(crate) snapshots: Keyspace,
    pub(crate) users: Keyspace,
    pub(crate) usernames: Keyspace,
    pub(crate) memberships: Keyspace,
}

impl Tables {
    fn open(db: &Database) -> Result<Self, Error> {
        let open = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(backend)
        };
        Ok(Self {
            db: db.clone(),
            batches: open("batches")?,
            heads: open("heads")?,
            snapshots: open("snapshots")?,
            users: open("users")?,
            usernames: open("usernames")?,
            memberships: open("memberships")?,
        })
    }
}

/// Maps a fjall error to the crate error. fjall poisons itself after a failed journal write or
/// sync; that is reported as [`Error::Poisoned`] so callers see one meaning for it.
pub(crate) fn backend(err: fjall::Error) -> Error {
    match err {
        fjall::Error::Poisoned => Error::Poisoned,
        other => Error::Backend(other.to_string()),
    }
}

/// The fjall-backed [`EventStore`] and [`AccountStore`]. Cloning is cheap and shares the store.
///
/// Dropping the last clone stops the committer thread after it has synced everything to disk,
/// and waits for it, so the data directory can be reopened right after.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    tables: Tables,
    /// `None` only while [`Inner`] is being dropped: dropping the sender is how the committer
    /// learns that no handle is left.
    sender: Option<flume::Sender<Message>>,
    committer: Option<JoinHandle<()>>,
    closed: AtomicBool,
    progress: Arc<Progress>,
    request_timeout: Duration,
    /// Reads on the blocking pool at once. A read that times out still holds its place until
    /// its thread returns, so a stalled disk cannot pile up blocked threads without bound.
    reads: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .field("poisoned", &self.inner.progress.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir` and starts its committer thread.
    ///
    /// Recovery happens here: fjall replays its journal and drops a torn tail. Only one store may
    /// have a directory open at a time (fjall holds a lock file); a second open fails with
    /// [`Error::Backend`] saying the directory is in use.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedStore, Error> {
        let mut builder = Database::builder(dir).cache_size(options.cache_bytes);
        if options.worker_threads > 0 {
            builder = builder.worker_threads(options.worker_threads);
        }
        let db = builder.open().map_err(|err| match err {
            fjall::Error::Locked => Error::Backend(format!(
                "data directory {} is already in use by another open store; \
                     close that store first",
                dir.display()
            )),
            other => Error::Backend(format!("opening {}: {other}", dir.display())),
        })?;
        // Recovery may have replayed journal data that reached the OS but was never fsync'd
        // (the process died between a group's write and its sync). Sync it now, before any
        // read can serve it as durable.
        db.persist(fjall::PersistMode::SyncAll).map_err(|err| {
            Error::Backend(format!("syncing {} after recovery: {err}", dir.display()))
        })?;
        let tables = Tables::open(&db)?;
        let (sender, receiver) = flume::bounded(options.queue_capacity.max(1));
        let progress = Arc::new(Progress::new());
        let committer = Committer::new(db, tables.clone(), receiver, &options, progress.clone());
        let handle = std::thread::Builder::new()
            .name("listwire-committer".into())
            .spawn(move || committer.run())
            .map_err(|e| Error::Backend(format!("starting the committer thread: {e}")))?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                tables,
                sender: Some(sender),
                committer: Some(handle),
                closed: AtomicBool::new(false),
                progress,
                request_timeout: options.request_timeout,
                reads: Arc::new(tokio::sync::Semaphore::new(READS_CONCURRENT_MAX)),
            }),
        })
    }

    /// Sends `op` to the committer and waits until it is durable (or refused), both within the
    /// request timeout.
    async fn submit(&self, op: Op) -> Result<(), Error> {
        if self.inner.progress.is_poisoned() {
            return Err(Error::Poisoned);
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let (reply, answer) = oneshot::channel();
        let timeout = self.inner.request_timeout;
        let queued = tokio::time::timeout(timeout, self.send(Message::Write { op, reply })).await;
        queued.map_err(|_| {
            Error::Unavailable("storage queue is full; the outcome is unknown, retry".into())
        })??;
        match tokio::time::timeout(timeout, answer).await {
            Ok(answered) => answered.map_err(|_| self.committer_gone())?,
            Err(_elapsed) => Err(Error::Unavailable(
                "storage did not answer in time; the outcome is unknown, retry".into(),
            )),
        }
    }

    async fn send(&self, message: Message) -> Result<(), Error> {
        let sender = self.inner.sender.as_ref().ok_or(Error::ShuttingDown)?;
        sender
            .send_async(message)
            .await
            .map_err(|_| self.committer_gone())
    }

    /// Installs a hook the committer runs between a group's commit and its fsync (tests use
    /// it to hold a group visible but not yet durable).
    #[cfg(feature = "testsuite")]
    pub fn set_before_sync_hook(&self, hook: Option<Box<dyn Fn() + Send>>) {
        if let Ok(mut slot) = self.inner.progress.before_sync.lock() {
            *slot = hook;
        }
    }

    /// The error for a committer that stopped answering. It only exits once every handle is
    /// dropped, so while a handle exists this means the thread died.
    fn committer_gone(&self) -> Error {
        tracing::error!("the storage committer thread stopped unexpectedly");
        Error::Backend("the storage committer thread stopped unexpectedly".into())
    }

    /// Runs a read against the tables on tokio's blocking pool (fjall calls may block on IO).
    async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&fjall::Snapshot, &Tables) -> Result<T, Error> + Send + 'static,
    {
        // After a failed sync, written-but-unsynced data may be visible to reads and may not
        // survive a restart; serving it could acknowledge or publish what is not durable.
        if self.inner.progress.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let tables = self.inner.tables.clone();
        let timeout = self.inner.request_timeout;
        let place = tokio::time::timeout(timeout, self.inner.reads.clone().acquire_owned());
        let Ok(Ok(place)) = place.await else {
            return Err(Error::Unavailable(
                "too many storage reads waiting; retry".into(),
            ));
        };
        let read = tokio::task::spawn_blocking(move || {
            // One consistent view: a group commit (a prune's deletions with its recorded head,
            // say) is seen whole or not at all.
            let snapshot = tables.db.snapshot();
            let answer = f(&snapshot, &tables);
            drop(place);
            answer
        });
        let value = match tokio::time::timeout(timeout, read).await {
            Ok(joined) => {
                joined.map_err(|e| Error::Backend(format!("storage read task failed: {e}")))??
            }
            Err(_elapsed) => {
                return Err(Error::Unavailable(
                    "storage read did not finish in time; retry".into(),
                ))
            }
        };
        // What was read may include a group committed but not yet fsync'd: answer only once
        // it is durable.
        self.inner.progress.wait_synced(timeout).await?;
        Ok(value)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Disconnecting the channel tells the committer to sync and exit once the queue is empty.
        // Joining blocks this thread for about one fsync; it is what makes "dropped" mean "the
        // directory is released and everything acknowledged is on disk".
        drop(self.sender.take());
        if let Some(handle) = self.committer.take() {
            if handle.join().is_err() {
                tracing::error!("the storage committer thread panicked");
            }
        }
    }
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        if batch.last_seq < batch.first_seq {
            return Err(Error::InvalidArgument(format!(
                "batch last_seq {} is below first_seq {}",
                batch.last_seq, batch.first_seq
            )));
        }
        self.submit(Op::Append { list, batch }).await
    }

    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        self.read(move |s, t| reads::head(s, t, list)).await
    }

    async fn read_batches(
        &self,
        list: Uuid,
        after_seq: u64,
        max_batches: usize,
    ) -> Result<Vec<Batch>, Error> {
        self.read(move |s, t| reads::batches(s, t, list, after_seq, max_batches))
            .await
    }

    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        self.submit(Op::WriteSnapshot { list, snapshot }).await
    }

    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        self.read(move |s, t| reads::latest_snapshot(s, t, list))
            .await
    }

    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        self.submit(Op::Prune { list, up_to_seq }).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.closed.store(true, Ordering::Release);
        let (reply, answer) = oneshot::channel();
        let closing = async {
            self.send(Message::Close { reply }).await?;
            answer.await.map_err(|_| self.committer_gone())?
        };
        // The final sync can take longer than one request: allow a few request timeouts.
        tokio::time::timeout(self.inner.request_timeout * 3, closing)
            .await
            .map_err(|_| Error::Unavailable("storage did not finish closing in time".into()))?
    }
}

#[async_trait]
impl AccountStore for EmbeddedStore {
    async fn create_user(&self, user: UserRecord) -> Result<(), Error> {
        self.submit(Op::CreateUser(user)).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        let username = username.to_owned();
        self.read(move |s, t| reads::user_by_name(s, t, &username))
            .await
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, Error> {
        self.read(move |s, t| reads::user_by_id(s, t, user_id))
            .await
    }

    async fn put_membership(&self, user_id: Uuid, membership: Membership) -> Result<(), Error> {
        self.submit(Op::PutMembership {
            user_id,
            membership,
        })
        .await
    }

    async fn remove_membership(
        &self,
        user_id: Uuid,
        list_id: Uuid,
        version: u64,
    ) -> Result<(), Error> {
        self.submit(Op::RemoveMembership {
            user_id,
            list_id,
            version,
        })
        .await
    }

    async fn memberships(&self, user_id: Uuid, limit: usize) -> Result<Vec<Membership>, Error> {
        self.read(move |s, t| reads::memberships(s, t, user_id, limit))
            .await
    }
}
