//! A decorator that measures every request to a store, whatever its backend: latency by
//! operation, and failures by operation and kind. It gives the same storage golden signals for
//! the embedded store, PostgreSQL and ScyllaDB, so one dashboard and one set of alerts serve all.
//!
//! Labels are fixed sets (backend, operation, error kind); never a list or user id. Handles are
//! resolved once, when the decorator is built, so the request path never hashes a metric name.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::metrics::{
    counter, describe_counter, describe_histogram, histogram, Counter, Histogram, Unit,
};
use async_trait::async_trait;
use uuid::Uuid;

use crate::{AccountStore, Batch, Error, EventStore, Membership, Snapshot, UserRecord};

/// Histogram, labels `backend` and `op`: wall time of one store request, until its answer.
pub const REQUEST_SECONDS: &str = "listwire_storage_request_seconds";
/// Counter, labels `backend`, `op` and `kind`: store requests that failed.
pub const ERRORS_TOTAL: &str = "listwire_storage_errors_total";

/// The operations measured, as their `op` label spells them.
const OPS: [&str; 8] = [
    "append",
    "head",
    "read",
    "write_snapshot",
    "latest_snapshot",
    "prune",
    "account_read",
    "account_write",
];
/// The failure kinds, as their `kind` label spells them. `cancelled`: the caller stopped
/// waiting (its own deadline passed) before the store answered.
const KINDS: [&str; 6] = [
    "unavailable",
    "conflict",
    "backend",
    "corrupt",
    "cancelled",
    "other",
];

/// Registers help text and units with the installed recorder. Call once at startup.
pub fn describe_metrics() {
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Wall time of one store request, by backend and operation."
    );
    describe_counter!(
        ERRORS_TOTAL,
        "Store requests that failed, by backend, operation and kind (conflict = a stale owner fenced off)."
    );
}

/// The `kind` label of an error of `op`, or `None` for an answer that is no failure of the
/// store: on an account write, a taken username (`AlreadyExists`) is the store saying no, as a
/// lookup that finds nothing is (anywhere else it is counted, `other`); `ShuttingDown` is the
/// node's own graceful stop.
fn kind(op: &str, error: &Error) -> Option<&'static str> {
    match error {
        Error::AlreadyExists(_) if op == "account_write" => None,
        Error::AlreadyExists(_) => Some("other"),
        // The node's own graceful stop, not the store failing.
        Error::ShuttingDown => None,
        Error::Unavailable(_) => Some("unavailable"),
        Error::AppendConflict { .. } => Some("conflict"),
        Error::Backend(_) | Error::Poisoned => Some("backend"),
        Error::Corrupt(_) => Some("corrupt"),
        Error::InvalidArgument(_) => Some("other"),
    }
}

/// The handles of one operation.
struct OpMetrics {
    seconds: Histogram,
    /// One counter per entry of [`KINDS`], in order.
    errors: Vec<Counter>,
    /// A request given up on counts as `cancelled` only if it waited this long: a client that
    /// hung up mid-request is no sign of a slow store; a deadline that passed is.
    cancelled_after: Duration,
    /// The `op` label.
    op: &'static str,
}

/// The shortest wait after which a request given up on counts as `cancelled`: the readiness
/// probe's deadline, the shortest a node sets on a store request.
const CANCELLED_AFTER: Duration = Duration::from_secs(1);

impl OpMetrics {
    fn new(backend: &'static str, op: &'static str) -> Self {
        let error = |kind: &&'static str| counter!(ERRORS_TOTAL, "backend" => backend, "op" => op, "kind" => *kind);
        Self {
            seconds: histogram!(REQUEST_SECONDS, "backend" => backend, "op" => op),
            errors: KINDS.iter().map(error).collect(),
            cancelled_after: CANCELLED_AFTER,
            op,
        }
    }

    async fn measure<T>(
        &self,
        request: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let mut timing = Timing {
            op: self,
            started: Instant::now(),
            outcome: Some("cancelled"),
        };
        let result = request.await;
        timing.outcome = match &result {
            Ok(_) => None,
            Err(error) => kind(self.op, error),
        };
        result
    }

    fn count(&self, kind: &str) {
        let index = KINDS.iter().position(|k| *k == kind);
        if let Some(counter) = index.and_then(|i| self.errors.get(i)) {
            counter.increment(1);
        }
    }
}

/// One request's clock. Dropped when the request ends, answered or not: a caller that stops
/// waiting (a load's deadline, the readiness probe's) drops the request: the time it waited
/// still counts, and, past [`CANCELLED_AFTER`], a `cancelled` failure, so a store that hangs
/// shows in both signals.
struct Timing<'a> {
    op: &'a OpMetrics,
    started: Instant,
    /// The failure kind to count, if the request failed (`cancelled` until it is answered).
    outcome: Option<&'static str>,
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        let waited = self.started.elapsed();
        self.op.seconds.record(waited.as_secs_f64());
        match self.outcome {
            Some("cancelled") if waited < self.op.cancelled_after => {}
            Some(kind) => self.op.count(kind),
            None => {}
        }
    }
}

/// The handles of every operation of one backend, one field per entry of [`OPS`].
struct Handles {
    append: OpMetrics,
    head: OpMetrics,
    read: OpMetrics,
    write_snapshot: OpMetrics,
    latest_snapshot: OpMetrics,
    prune: OpMetrics,
    account_read: OpMetrics,
    account_write: OpMetrics,
}

impl Handles {
    fn new(backend: &'static str) -> Self {
        let [append, head, read, write_snapshot, latest_snapshot, prune, account_read, account_write] =
            OPS.map(|op| OpMetrics::new(backend, op));
        Self {
            append,
            head,
            read,
            write_snapshot,
            latest_snapshot,
            prune,
            account_read,
            account_write,
        }
    }
}

/// A store whose every request is measured. Wraps an event store, an account store, or both.
pub struct Metered<S: ?Sized> {
    inner: Arc<S>,
    handles: Arc<Handles>,
}

impl<S: ?Sized> Metered<S> {
    /// Measures `inner`'s requests under the label `backend` (`embedded`, `postgres`, …).
    /// Build it after installing the recorder, and the series exist (at zero) from then on.
    pub fn new(backend: &'static str, inner: Arc<S>) -> Self {
        Self {
            inner,
            handles: Arc::new(Handles::new(backend)),
        }
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for Metered<S> {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        let request = self.inner.append(list, batch);
        self.handles.append.measure(request).await
    }

    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        self.handles.head.measure(self.inner.head(list)).await
    }

    async fn read_batches(
        &self,
        list: Uuid,
        after_seq: u64,
        max_batches: usize,
    ) -> Result<Vec<Batch>, Error> {
        let request = self.inner.read_batches(list, after_seq, max_batches);
        self.handles.read.measure(request).await
    }

    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        let request = self.inner.write_snapshot(list, snapshot);
        self.handles.write_snapshot.measure(request).await
    }

    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        let request = self.inner.latest_snapshot(list);
        self.handles.latest_snapshot.measure(request).await
    }

    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        let request = self.inner.prune(list, up_to_seq);
        self.handles.prune.measure(request).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

#[async_trait]
impl<S: AccountStore + ?Sized> AccountStore for Metered<S> {
    async fn create_user(&self, user: UserRecord) -> Result<(), Error> {
        let request = self.inner.create_user(user);
        self.handles.account_write.measure(request).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        let request = self.inner.user_by_name(username);
        self.handles.account_read.measure(request).await
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, Error> {
        let request = self.inner.user_by_id(user_id);
        self.handles.account_read.measure(request).await
    }

    async fn put_membership(&self, user_id: Uuid, membership: Membership) -> Result<(), Error> {
        let request = self.inner.put_membership(user_id, membership);
        self.handles.account_write.measure(request).await
    }

    async fn remove_membership(
        &self,
        user_id: Uuid,
        list_id: Uuid,
        version: u64,
    ) -> Result<(), Error> {
        let request = self.inner.remove_membership(user_id, list_id, version);
        self.handles.account_write.measure(request).await
    }

    async fn memberships(&self, user_id: Uuid, limit: usize) -> Result<Vec<Membership>, Error> {
        let request = self.inner.memberships(user_id, limit);
        self.handles.account_read.measure(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use bytes::Bytes;

    fn batch(first_seq: u64) -> Batch {
        Batch {
            first_seq,
            last_seq: first_seq,
            body: Bytes::from_static(b"x"),
        }
    }

    /// The decorator passes every answer through unchanged, a lost conditional append included.
    #[tokio::test]
    async fn answers_pass_through_unchanged() -> Result<(), Error> {
        let store = Metered::new("memory", Arc::new(MemoryStore::new()));
        let list = Uuid::new_v4();
        store.append(list, batch(1)).await?;
        assert_eq!(store.head(list).await?, 1);
        match store.append(list, batch(1)).await {
            Err(lost @ Error::AppendConflict { head: 1, .. }) => {
                assert_eq!(kind("append", &lost), Some("conflict"))
            }
            other => panic!("expected the append to lose, got {other:?}"),
        }
        assert_eq!(store.read_batches(list, 0, 10).await?.len(), 1);
        Ok(())
    }

    /// Every failure maps to one of the label's fixed kinds; a taken username is no failure
    /// (review: it paged ListwireStorageErrors whenever someone picked a taken name).
    #[test]
    fn every_failure_has_a_known_kind_and_a_taken_name_is_none() {
        let errors = [
            Error::Unavailable("x".into()),
            Error::Backend("x".into()),
            Error::Poisoned,
            Error::Corrupt("x".into()),
            Error::InvalidArgument("x".into()),
        ];
        for error in &errors {
            assert!(
                kind("append", error).is_some_and(|kind| KINDS.contains(&kind)),
                "{error}"
            );
        }
        let taken = Error::AlreadyExists("x".into());
        assert_eq!(kind("account_write", &taken), None);
        assert_eq!(kind("append", &taken), Some("other"));
        assert_eq!(
            kind("append", &Error::ShuttingDown),
            None,
            "a graceful stop"
        );
    }

    /// A request its caller stops waiting for still counts: its time, and, once it waited as
    /// long as a deadline, a `cancelled` failure (review: a hung store showed neither latency
    /// nor errors; a second review: a client hanging up early is no store failure).
    #[tokio::test]
    async fn a_request_given_up_on_counts_as_cancelled() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = ::metrics::set_default_local_recorder(&recorder);
        let op = OpMetrics {
            cancelled_after: Duration::from_millis(50),
            ..OpMetrics::new("memory", "account_write")
        };
        let hung = || op.measure(std::future::pending::<Result<u64, Error>>());
        let hung_up_early = tokio::time::timeout(Duration::from_millis(1), hung()).await;
        assert!(hung_up_early.is_err());
        let deadline_passed = tokio::time::timeout(Duration::from_millis(60), hung()).await;
        assert!(deadline_passed.is_err());
        let taken = op.measure(async { Err::<(), _>(Error::AlreadyExists("alice".into())) });
        assert!(taken.await.is_err());
        let mut counted = Vec::new();
        let mut samples = 0;
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            match value {
                DebugValue::Counter(n) if n > 0 => {
                    let kind = key.key().labels().find(|label| label.key() == "kind");
                    counted.push((kind.map(|label| label.value().to_owned()), n));
                }
                DebugValue::Histogram(values) => samples += values.len(),
                _ => {}
            }
        }
        assert_eq!(counted, vec![(Some("cancelled".to_owned()), 1)]);
        assert_eq!(samples, 3, "every request's time is recorded");
    }
}
