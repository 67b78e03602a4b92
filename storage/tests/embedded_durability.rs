//! Durability of the embedded store across close, drop, reopen and a crash, on real files.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use listwire_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use listwire_storage::{AccountStore, Batch, Error, EventStore, Membership, Snapshot, UserRecord};
use uuid::Uuid;

fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, EmbeddedOptions::default()).expect("open store")
}

fn batch(first_seq: u64, last_seq: u64, body: &str) -> Batch {
    Batch {
        first_seq,
        last_seq,
        body: Bytes::from(body.to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everything_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (list, user_id) = (Uuid::new_v4(), Uuid::new_v4());
    let user = UserRecord {
        user_id,
        username: "grace".into(),
        password_hash: "$argon2id$v=19$hash".into(),
        created_at_ms: 42,
    };
    let member = Membership {
        list_id: list,
        role: "owner".into(),
        title: "Shopping".into(),
        version: 1,
    };
    let snap = Snapshot {
        seq: 3,
        body: Bytes::from_static(b"state@3"),
    };
    {
        let store = open(dir.path());
        store.append(list, batch(1, 3, "a")).await.expect("append");
        store.append(list, batch(4, 5, "b")).await.expect("append");
        store
            .write_snapshot(list, snap.clone())
            .await
            .expect("snapshot");
        store.prune(list, 3).await.expect("prune");
        store.create_user(user.clone()).await.expect("user");
        store
            .put_membership(user_id, member.clone())
            .await
            .expect("member");
        store.close().await.expect("close");
    }
    let store = open(dir.path());
    assert_eq!(store.head(list).await.expect("head"), 5);
    let read = store.read_batches(list, 0, 10).await.expect("read");
    assert_eq!(
        read,
        vec![batch(4, 5, "b")],
        "the pruned batch stays pruned"
    );
    assert_eq!(store.latest_snapshot(list).await.expect("snap"), Some(snap));
    assert_eq!(
        store.user_by_name("grace").await.expect("name"),
        Some(user.clone())
    );
    assert_eq!(
        store.user_by_id(user_id).await.expect("id"),
        Some(user.clone())
    );
    let members = store.memberships(user_id, 10).await.expect("members");
    assert_eq!(members, vec![member]);
    // The conditional append still holds after reopening: the head came back from disk.
    match store.append(list, batch(5, 5, "stale")).await {
        Err(Error::AppendConflict { head: 5, .. }) => {}
        other => panic!("expected a conflict at head 5, got {other:?}"),
    }
    match store.create_user(user).await {
        Err(Error::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists after reopen, got {other:?}"),
    }
    store
        .append(list, batch(6, 6, "c"))
        .await
        .expect("append after reopen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_appends_survive_drop_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = Uuid::new_v4();
    {
        let store = open(dir.path());
        let clone = store.clone();
        for seq in 1..=20 {
            clone
                .append(list, batch(seq, seq, "x"))
                .await
                .expect("append");
        }
        drop(clone);
        // Dropping the last handle stops the committer and releases the directory.
    }
    let store = open(dir.path());
    assert_eq!(store.head(list).await.expect("head"), 20);
    assert_eq!(
        store.read_batches(list, 0, 100).await.expect("read").len(),
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_across_many_lists_are_all_durable() {
    const TASKS: usize = 16;
    const LISTS: usize = 100;
    const PER_LIST: u64 = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let lists: Arc<Vec<Uuid>> = Arc::new((0..LISTS).map(|_| Uuid::new_v4()).collect());
    {
        let store = open(dir.path());
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let (store, lists) = (store.clone(), Arc::clone(&lists));
            tasks.push(tokio::spawn(async move {
                // Each task owns the lists congruent to its index, so appends never conflict
                // but many lists share every commit group.
                for seq in 1..=PER_LIST {
                    for list in lists.iter().skip(task).step_by(TASKS) {
                        let body = format!("{list}/{seq}");
                        store.append(*list, batch(seq, seq, &body)).await?;
                    }
                }
                Ok::<(), Error>(())
            }));
        }
        for task in tasks {
            task.await.expect("task").expect("appends");
        }
        store.close().await.expect("close");
    }
    let store = open(dir.path());
    for list in lists.iter() {
        assert_eq!(store.head(*list).await.expect("head"), PER_LIST);
        let read = store.read_batches(*list, 0, 100).await.expect("read");
        let expected: Vec<Batch> = (1..=PER_LIST)
            .map(|seq| batch(seq, seq, &format!("{list}/{seq}")))
            .collect();
        assert_eq!(read, expected);
    }
}

#[tokio::test]
async fn second_open_of_the_same_directory_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    match EmbeddedStore::open(dir.path(), EmbeddedOptions::default()) {
        Err(Error::Backend(msg)) => assert!(msg.contains("already in use"), "message: {msg}"),
        Err(other) => panic!("expected a Backend error saying the dir is in use, got {other:?}"),
        Ok(_) => panic!("a second store opened a directory that is already open"),
    }
    // The first store is unaffected.
    store
        .append(Uuid::new_v4(), batch(1, 1, "x"))
        .await
        .expect("append");
    drop(store);
    // Once the first store is gone, the directory opens again.
    let _again = open(dir.path());
}

#[tokio::test]
async fn writes_after_close_are_refused_and_reads_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let list = Uuid::new_v4();
    store.append(list, batch(1, 1, "a")).await.expect("append");
    store.close().await.expect("close");
    store.close().await.expect("close is idempotent");
    match store.append(list, batch(2, 2, "b")).await {
        Err(Error::ShuttingDown) => {}
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
    assert_eq!(store.head(list).await.expect("head"), 1);
}

/// Name of the environment variable that turns [`crash_child`] into the crashing writer.
const CRASH_DIR_ENV: &str = "LISTWIRE_STORAGE_CRASH_DIR";
const CRASH_LIST: Uuid = Uuid::from_u128(0x1157_0000_0000_0000_0000_0000_0000_0001);
const CRASH_APPENDS: u64 = 50;

/// The child half of [`acknowledged_appends_survive_a_crash`]. Run normally it does nothing.
/// With the environment variable set it appends, and aborts the process right after the last
/// acknowledgement: no close, no drop, no destructor runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let store = open(Path::new(&dir));
    for seq in 1..=CRASH_APPENDS {
        let body = format!("crash {seq}");
        store
            .append(CRASH_LIST, batch(seq, seq, &body))
            .await
            .expect("append");
    }
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR_ENV, dir.path())
        .status()
        .expect("run the crashing child");
    assert!(!status.success(), "the child must abort, not exit cleanly");
    let store = open(dir.path());
    assert_eq!(store.head(CRASH_LIST).await.expect("head"), CRASH_APPENDS);
    let read = store.read_batches(CRASH_LIST, 0, 100).await.expect("read");
    let expected: Vec<Batch> = (1..=CRASH_APPENDS)
        .map(|seq| batch(seq, seq, &format!("crash {seq}")))
        .collect();
    assert_eq!(
        read, expected,
        "every acknowledged append is on disk after the crash"
    );
}
