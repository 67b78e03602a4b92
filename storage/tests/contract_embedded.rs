//! The backend contract suite, run against the embedded (fjall) store on real files, plus
//! checks specific to its group commit.

use std::sync::Arc;

use bytes::Bytes;
use listwire_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use listwire_storage::{testsuite, Batch, Error, EventStore};
use tempfile::TempDir;
use uuid::Uuid;

fn open() -> (TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open store");
    (dir, store)
}

fn batch(first_seq: u64, last_seq: u64) -> Batch {
    Batch {
        first_seq,
        last_seq,
        body: Bytes::from(format!("{first_seq}..={last_seq}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_event_store_contract() {
    let (_dir, store) = open();
    testsuite::event_store_contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_racing_writers_contract() {
    let (_dir, store) = open();
    testsuite::racing_writers_contract(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_reads_racing_prunes_contract() {
    let (_dir, store) = open();
    testsuite::reads_racing_prunes_contract(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_account_store_contract() {
    let (_dir, store) = open();
    testsuite::account_store_contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_close_contract() {
    let (_dir, store) = open();
    testsuite::close_contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_contract_without_fsync_and_tiny_groups() {
    // Groups of one request and a queue of one exercise the other end of the batching logic.
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EmbeddedOptions {
        queue_capacity: 1,
        group_max_requests: 1,
        fsync: false,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options).expect("open store");
    testsuite::event_store_contract(&store).await;
    testsuite::account_store_contract(&store).await;
    testsuite::racing_writers_contract(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_queued_together_chain_within_one_group() {
    let (_dir, store) = open();
    let list = Uuid::new_v4();
    // join! polls in order and each send completes at once (the queue has room), so the four
    // requests reach the committer in this order, most likely in one group. Whatever the
    // grouping, the second append must see the first one's head, the duplicate must lose, and
    // the prune must see the batch staged before it.
    let (a, b, dup, prune, c) = tokio::join!(
        store.append(list, batch(1, 2)),
        store.append(list, batch(3, 3)),
        store.append(list, batch(3, 4)),
        store.prune(list, 2),
        store.append(list, batch(4, 6)),
    );
    a.expect("first append");
    b.expect("chained append");
    match dup {
        Err(Error::AppendConflict { head: 3, .. }) => {}
        other => panic!("duplicate first_seq must conflict with head 3, got {other:?}"),
    }
    prune.expect("prune");
    c.expect("append after prune");
    assert_eq!(store.head(list).await.expect("head"), 6);
    let read = store.read_batches(list, 0, 10).await.expect("read");
    assert_eq!(read, vec![batch(3, 3), batch(4, 6)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_start_at_the_straddling_batch_in_long_histories() {
    let (_dir, store) = open();
    let list = Uuid::new_v4();
    let mut next = 1;
    for len in 1..=200u64 {
        store
            .append(list, batch(next, next + len % 3))
            .await
            .expect("append");
        next += len % 3 + 1;
    }
    let head = store.head(list).await.expect("head");
    assert_eq!(head, next - 1);
    // Every possible after_seq returns exactly the batches ending after it, starting with the
    // one that contains after_seq + 1.
    for after in [0, 1, 2, 57, 100, head - 1, head] {
        let read = store.read_batches(list, after, 3).await.expect("read");
        if after == head {
            assert!(read.is_empty());
            continue;
        }
        let first = read.first().expect("a batch");
        assert!(
            first.first_seq <= after + 1 && first.last_seq > after,
            "after {after}"
        );
        for pair in read.windows(2) {
            assert_eq!(pair[0].last_seq + 1, pair[1].first_seq, "contiguous pages");
        }
    }
}

/// Hardening item 8, store side: fjall shows a committed group to readers before the
/// committer's fsync returns. A read must not answer from it until it is durable, or the node
/// could acknowledge or publish an op whose fsync then fails. The test holds the committer
/// between commit and fsync and checks a read of the new batch waits for the fsync.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_never_answer_from_a_group_before_its_fsync() {
    let (_dir, store) = open();
    let list = Uuid::new_v4();
    store.append(list, batch(1, 1)).await.expect("first append");
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    store.set_before_sync_hook(Some(Box::new(move || {
        let _ = held_tx.send(());
        // Blocks until released, then (once the test drops the sender) never again.
        let _ = release_rx.recv();
    })));
    let appending = {
        let store = store.clone();
        tokio::spawn(async move { store.append(list, batch(2, 2)).await })
    };
    tokio::task::spawn_blocking(move || held_rx.recv())
        .await
        .expect("join")
        .expect("the committer reached the hook");
    let mut reading = {
        let store = store.clone();
        tokio::spawn(async move { store.read_batches(list, 0, 10).await })
    };
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut reading).await;
    assert!(
        early.is_err(),
        "a read waits while the group is not fsync'd"
    );
    release_tx.send(()).expect("release the committer");
    drop(release_tx);
    appending.await.expect("join").expect("second append");
    let read = reading.await.expect("join").expect("read after the fsync");
    assert_eq!(read, vec![batch(1, 1), batch(2, 2)]);
}

/// Hardening item 9, store side: a stalled disk must not hang every op. With the committer
/// held before its fsync, a write and a read both fail with the retryable `Unavailable` once
/// the request timeout passes; the write's outcome is unknown (here it commits once released).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_committer_answers_unavailable_within_the_request_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EmbeddedOptions {
        request_timeout: std::time::Duration::from_millis(200),
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options).expect("open store");
    let list = Uuid::new_v4();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    store.set_before_sync_hook(Some(Box::new(move || {
        let _ = release_rx.recv();
    })));
    let stalled = store.append(list, batch(1, 1)).await;
    match stalled {
        Err(Error::Unavailable(message)) => assert!(message.contains("unknown"), "{message}"),
        other => panic!("a stalled append is Unavailable with an unknown outcome, got {other:?}"),
    }
    let read = store.read_batches(list, 0, 10).await;
    assert!(
        matches!(read, Err(Error::Unavailable(_))),
        "a read of unsynced data times out too, got {read:?}"
    );
    drop(release_tx);
    let mut head = 0;
    for _ in 0..100 {
        head = store.head(list).await.unwrap_or(0);
        if head == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        head, 1,
        "the timed-out append committed once the disk came back"
    );
}
