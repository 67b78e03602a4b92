//! The backend contract suite: one set of checks that every [`EventStore`] and [`AccountStore`]
//! implementation must pass. Each backend's tests call these functions on a fresh store.
//!
//! Every check uses fresh random list and user ids, so the suite can share a store with other
//! tests (for example a long-lived ScyllaDB keyspace). The functions panic on a violation, with a
//! message naming the broken promise.
//!
//! [`postgres`] and [`proxy`] help backend-specific tests: a real PostgreSQL named by
//! `LISTWIRE_POSTGRES_URL`, and a TCP proxy that injects connection faults.

mod accounts;
mod events;
pub mod postgres;
pub mod proxy;

use bytes::Bytes;
use uuid::Uuid;

use crate::{AccountStore, Batch, Error, EventStore, Snapshot};
use accounts::{membership, user};

pub use accounts::account_store_contract;
pub use events::{event_store_contract, racing_writers_contract, reads_racing_prunes_contract};

/// Unwraps `result` or panics with `what` and the error.
pub(super) fn ok<T>(result: Result<T, Error>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what}: unexpected error {err:?}"),
    }
}

pub(super) fn batch(first_seq: u64, last_seq: u64, body: &str) -> Batch {
    Batch {
        first_seq,
        last_seq,
        body: Bytes::from(body.to_owned()),
    }
}

pub(super) fn snapshot(seq: u64, body: &str) -> Snapshot {
    Snapshot {
        seq,
        body: Bytes::from(body.to_owned()),
    }
}

/// Asserts that `result` is an [`Error::AppendConflict`] reporting `head`.
pub(super) fn assert_conflict(
    result: Result<(), Error>,
    list: Uuid,
    head: u64,
    first_seq: u64,
    what: &str,
) {
    match result {
        Err(Error::AppendConflict {
            list: l,
            head: h,
            first_seq: f,
        }) => assert_eq!(
            (l, h, f),
            (list, head, first_seq),
            "{what}: conflict reports the wrong list, head or first_seq"
        ),
        other => panic!("{what}: expected AppendConflict with head {head}, got {other:?}"),
    }
}

/// Checks [`EventStore::close`]: it is idempotent and every later write is refused with
/// [`Error::ShuttingDown`]. Run it last: it closes `store`.
pub async fn close_contract<S: EventStore + AccountStore + ?Sized>(store: &S) {
    let list = Uuid::new_v4();
    ok(
        store.append(list, batch(1, 1, "before close")).await,
        "append before close",
    );
    ok(store.close().await, "close");
    ok(store.close().await, "second close");
    let refused = [
        store.append(list, batch(2, 2, "after close")).await,
        store.write_snapshot(list, snapshot(1, "s")).await,
        store.prune(list, 1).await,
        store
            .create_user(user(&format!("late-{}", Uuid::new_v4())))
            .await,
        store
            .put_membership(Uuid::new_v4(), membership(list, "owner", "t"))
            .await,
        store.remove_membership(Uuid::new_v4(), list, 1).await,
    ];
    for result in refused {
        assert!(
            matches!(result, Err(Error::ShuttingDown)),
            "writes after close get ShuttingDown, got {result:?}"
        );
    }
}
