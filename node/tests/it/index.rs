//! The "my lists" index: derived from durable membership changes, repaired on activation, and
//! ordered by list seq so a late write from a stopped owner cannot undo a newer one. Component
//! tests over the in-memory store with an account store wrapper that can fail or hold index
//! writes. No sockets.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use listwire::host::{Host, HostConfig};
use listwire::router::LocalRouter;
use listwire_gateway::{Principal, Reply, Router};
use listwire_storage::memory::MemoryStore;
use listwire_storage::{AccountStore, Error, Membership, UserRecord};
use serde_json::value::RawValue;
use tokio::sync::{oneshot, Semaphore};
use uuid::Uuid;

use crate::support::eventually;

fn alice() -> Principal {
    Principal {
        user_id: Uuid::from_u128(1),
        username: "alice".into(),
    }
}

fn bob() -> UserRecord {
    UserRecord {
        user_id: Uuid::from_u128(2),
        username: "bob".into(),
        password_hash: "x".into(),
        created_at_ms: 0,
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

/// An account store whose index writes can fail (`failing`) or wait for a permit (`held`), and
/// which counts the index writes that reached the store.
struct Index {
    inner: Arc<MemoryStore>,
    failing: AtomicBool,
    held: AtomicBool,
    gate: Semaphore,
    written: AtomicUsize,
}

impl Index {
    fn new(inner: Arc<MemoryStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failing: AtomicBool::new(false),
            held: AtomicBool::new(false),
            gate: Semaphore::new(0),
            written: AtomicUsize::new(0),
        })
    }

    async fn guard(&self) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("index writes are failing".into()));
        }
        if self.held.load(Ordering::SeqCst) {
            self.gate.acquire().await.expect("gate open").forget();
        }
        Ok(())
    }
}

#[async_trait]
impl AccountStore for Index {
    async fn create_user(&self, user: UserRecord) -> Result<(), Error> {
        self.inner.create_user(user).await
    }
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        self.inner.user_by_name(username).await
    }
    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, Error> {
        self.inner.user_by_id(user_id).await
    }
    async fn put_membership(&self, user_id: Uuid, membership: Membership) -> Result<(), Error> {
        self.guard().await?;
        self.inner.put_membership(user_id, membership).await?;
        self.written.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn remove_membership(&self, user: Uuid, list: Uuid, version: u64) -> Result<(), Error> {
        self.guard().await?;
        self.inner.remove_membership(user, list, version).await?;
        self.written.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn memberships(&self, user_id: Uuid, limit: usize) -> Result<Vec<Membership>, Error> {
        self.inner.memberships(user_id, limit).await
    }
}

fn host(store: &Arc<MemoryStore>, index: Arc<dyn AccountStore>) -> (Host, LocalRouter) {
    let host = Host::new(store.clone(), index, HostConfig::default());
    let router = LocalRouter::new(host.clone());
    (host, router)
}

async fn run_op(router: &LocalRouter, list: Uuid, op: &str) -> u64 {
    let (outcome_tx, outcome) = oneshot::channel();
    let reply = Reply::new(move |result| {
        let _ = outcome_tx.send(result);
    });
    router
        .submit(&alice(), list, Uuid::new_v4(), raw(op), reply)
        .await;
    outcome.await.unwrap().unwrap()
}

const SHARE_BOB: &str = r#"{"kind":"share","user":"bob","role":"editor"}"#;
const UNSHARE_BOB: &str = r#"{"kind":"unshare","user":"bob"}"#;

/// Entries a crash left unwritten (here: every index write of the first host failed, and it
/// never shut down, so it wrote no final snapshot) are repaired when the list activates again.
#[tokio::test]
async fn activation_repairs_the_my_lists_index() {
    let store = Arc::new(MemoryStore::new());
    store.create_user(bob()).await.unwrap();
    let broken = Index::new(store.clone());
    broken.failing.store(true, Ordering::SeqCst);
    let (_crashed_host, router) = host(&store, broken.clone());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"indexed"}"#))
        .await
        .unwrap();
    run_op(&router, list, SHARE_BOB).await;
    assert!(store
        .memberships(alice().user_id, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .memberships(bob().user_id, 10)
        .await
        .unwrap()
        .is_empty());

    let (_second_host, router) = host(&store, store.clone());
    router.snapshot(&alice(), list).await.unwrap();
    eventually(Duration::from_secs(5), || async {
        let entries = store.memberships(alice().user_id, 10).await.unwrap();
        let bobs = store.memberships(bob().user_id, 10).await.unwrap();
        entries.len() == 1
            && entries[0].role == "owner"
            && bobs.len() == 1
            && bobs[0].role == "editor"
    })
    .await;
}

/// Issue "Correctness hardening", item 5: a share's index write, still in flight when its owner
/// stops serving the list, lands after the new owner's unshare removed the entry. The late
/// write carries an older seq, so the store ignores it and bob's "my lists" stays right.
#[tokio::test]
async fn a_late_index_write_from_a_stopped_owner_cannot_undo_an_unshare() {
    let store = Arc::new(MemoryStore::new());
    store.create_user(bob()).await.unwrap();
    let slow = Index::new(store.clone());
    let (_old_host, old) = host(&store, slow.clone());
    let list = old
        .create_list(&alice(), raw(r#"{"title":"moving"}"#))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), || async {
        store.memberships(alice().user_id, 10).await.unwrap().len() == 1
    })
    .await;
    // The old owner's index write for the share is held back, as by a slow network.
    slow.held.store(true, Ordering::SeqCst);
    run_op(&old, list, SHARE_BOB).await;

    // A new owner (a second host: both think they own the list) unshares bob, and its
    // removal (at seq 3) reaches the store.
    let fast = Index::new(store.clone());
    let (_new_host, new) = host(&store, fast.clone());
    assert_eq!(run_op(&new, list, UNSHARE_BOB).await, 3);
    eventually(Duration::from_secs(5), || async {
        fast.written.load(Ordering::SeqCst) >= 1
    })
    .await;
    let written_before = slow.written.load(Ordering::SeqCst);

    // Now the old owner's write (bob as editor, at seq 2) lands.
    slow.gate.add_permits(1);
    eventually(Duration::from_secs(5), || async {
        slow.written.load(Ordering::SeqCst) > written_before
    })
    .await;
    assert!(
        store
            .memberships(bob().user_id, 10)
            .await
            .unwrap()
            .is_empty(),
        "bob's index entry stays removed"
    );
}
