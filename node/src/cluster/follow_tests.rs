//! A list follow over a local owner, driven through owner restarts and resubscribes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use listwire_gateway::{FrameSink, Outbound, Router};
use listwire_storage::memory::MemoryStore;
use listwire_storage::{AccountStore, UserRecord};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::super::follow_task::{next_item, Follow, Upstream};
use super::super::owners::Source;
use super::super::test_support::{owners_over, principal, raw, submit, HeldLoads};
use super::*;
use crate::host::{Host, HostConfig};
use crate::list::node_sink::NodeItem;
use crate::router::LocalRouter;
use listwire_cluster::NodeId;
use tokio::time::Instant;

/// Follows over `local`, in a one-node view where this node owns every list.
fn follows_over(local: LocalRouter) -> Arc<Follows> {
    Follows::new(owners_over(local), Duration::from_secs(8))
}

fn text_of(outbound: &Outbound) -> String {
    match outbound {
        Outbound::Frame(frame) => format!("frame {}", String::from_utf8_lossy(frame)),
        Outbound::SubscriptionEnded { frame, .. } => {
            format!("ended {}", String::from_utf8_lossy(frame))
        }
    }
}

async fn drain_for(rx: &listwire_gateway::OutboundReceiver, wait: Duration) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(Ok(outbound)) = tokio::time::timeout(wait, rx.recv_async()).await {
        seen.push(text_of(&outbound));
    }
    seen
}

/// Goal: a revocation that happens while a follow is between two node subscriptions (the
/// list moved or restarted) is enforced. The owner's catch-up frames do not say that access
/// changed, so the follow re-checks its users after every resubscribe: Bob's subscription
/// ends `forbidden` and he gets nothing written after he lost access. (Outside review, F2.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_between_node_subscriptions_is_enforced() {
    let inner = Arc::new(MemoryStore::new());
    for (n, name) in [(1, "alice"), (2, "bob")] {
        inner
            .create_user(UserRecord {
                user_id: Uuid::from_u128(n),
                username: name.into(),
                password_hash: "x".into(),
                created_at_ms: 0,
            })
            .await
            .unwrap();
    }
    let held = HeldLoads::new(inner.clone());
    // host1 is the owner the follow talks to; host2 stands for the node the list moved to
    // meanwhile (same shared store).
    let host1 = Host::new(held.clone(), inner.clone(), HostConfig::default());
    let local1 = LocalRouter::new(host1.clone());
    let host2 = Host::new(inner.clone(), inner.clone(), HostConfig::default());
    let local2 = LocalRouter::new(host2.clone());
    let (alice, bob) = (principal(1, "alice"), principal(2, "bob"));

    let list = local2
        .create_list(&alice, raw(r#"{"title":"private"}"#))
        .await
        .unwrap();
    assert_eq!(
        submit(
            &local2,
            &alice,
            list,
            r#"{"kind":"share","user":"bob","role":"viewer"}"#
        )
        .await,
        Ok(2)
    );

    let follows = follows_over(local1.clone());
    let (bob_sink, bob_rx) = FrameSink::new(42, bob.user_id, 256, CancellationToken::new());
    // A fresh follow reads its first command before it can retire (outside review, F12).
    follows
        .subscribe(&bob, list, None, bob_sink.clone())
        .await
        .expect("the first subscribe of a fresh follow is attached");
    let first = drain_for(&bob_rx, Duration::from_millis(300)).await;
    assert!(first.iter().any(|f| f.contains("snapshot")), "{first:?}");

    // The owner the follow talks to hands the list off; its next load is held, so the follow
    // is between subscriptions while the list changes elsewhere.
    held.hold.store(true, Ordering::SeqCst);
    host1.release_all();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        submit(&local2, &alice, list, r#"{"kind":"unshare","user":"bob"}"#).await,
        Ok(3)
    );
    assert_eq!(
        submit(
            &local2,
            &alice,
            list,
            r#"{"kind":"add_item","text":"after revocation 1","after":null}"#
        )
        .await,
        Ok(4)
    );
    held.hold.store(false, Ordering::SeqCst);
    held.gate.add_permits(1 << 20);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // host2's copy is now behind host1's; write through host1, the follow's owner.
    let _ = host2.kill(list).await;
    assert_eq!(
        submit(
            &local1,
            &alice,
            list,
            r#"{"kind":"add_item","text":"after revocation 2","after":null}"#
        )
        .await,
        Ok(5)
    );
    let seen = drain_for(&bob_rx, Duration::from_millis(700)).await;
    let leaked = seen.iter().any(|f| f.contains("after revocation"));
    let ended = seen
        .iter()
        .any(|f| f.starts_with("ended") && f.contains("forbidden"));
    assert!(
        !leaked && ended,
        "bob's access was revoked at seq 3: {seen:#?}"
    );
}

/// Goal: a follower attached while frames were still queued in the follow's node
/// subscription (so its catch-up put it ahead of `forwarded`) never gets a seq twice. When the
/// subscription is lost with those frames (a dropped connection), the follow resubscribes with
/// `since = forwarded` and the owner's catch-up delta straddles that follower's position: the
/// follow ends that follower's subscription (it resubscribes with `since`) instead of sending
/// it, while the follower that was at `forwarded` gets the delta. (Outside review, F6.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_ahead_of_a_resubscribe_delta_resubscribes_instead_of_seeing_seqs_twice() {
    let inner = Arc::new(MemoryStore::new());
    let host1 = Host::new(inner.clone(), inner.clone(), HostConfig::default());
    let local1 = LocalRouter::new(host1.clone());
    let alice = principal(1, "alice");
    let list = local1
        .create_list(&alice, raw(r#"{"title":"busy"}"#))
        .await
        .unwrap();
    let follows = follows_over(local1.clone());
    let mut follow = Follow::new(list, follows.clone(), Default::default());
    let (c1, c1_rx) = FrameSink::new(1, alice.user_id, 256, CancellationToken::new());
    follow
        .attach(alice.user_id, None, c1, &|| true)
        .await
        .unwrap();
    // Two frames reach the follow's node subscription while it is busy (say, attaching c2).
    for text in ["two", "three"] {
        let op = format!(r#"{{"kind":"add_item","text":"{text}","after":null}}"#);
        submit(&local1, &alice, list, &op).await.unwrap();
    }
    let (c2, c2_rx) = FrameSink::new(2, alice.user_id, 256, CancellationToken::new());
    follow
        .attach(alice.user_id, None, c2, &|| true)
        .await
        .unwrap();
    assert_eq!(follow.forwarded, Some(1));
    assert_eq!(follow.followers[&2].queued_to, 3);
    // The subscription is lost with its two queued frames, as with a dropped connection.
    follow.upstream = None;
    submit(
        &local1,
        &alice,
        list,
        r#"{"kind":"add_item","text":"four","after":null}"#,
    )
    .await
    .unwrap();
    assert!(follow.reconnect().await);
    while let Ok(item) =
        tokio::time::timeout(Duration::from_millis(500), next_item(&mut follow.upstream)).await
    {
        follow.item(item);
    }
    let c1_frames = drain_for(&c1_rx, Duration::from_millis(200)).await;
    let c2_frames = drain_for(&c2_rx, Duration::from_millis(200)).await;
    assert!(
        !c2_frames.iter().any(|f| f.contains(r#""from":2"#)),
        "c2 was caught up to seq 3; a delta from seq 2 repeats seqs: {c2_frames:#?}"
    );
    assert!(
        c2_frames
            .iter()
            .any(|f| f.starts_with("ended") && f.contains("resubscribe with since")),
        "c2 is told to resubscribe: {c2_frames:#?}"
    );
    assert!(
        c1_frames
            .iter()
            .any(|f| f.contains(r#""from":2"#) && f.contains(r#""to":4"#)),
        "c1, at seq 1, gets seqs 2 to 4: {c1_frames:#?}"
    );
    assert!(follow.followers.contains_key(&1) && !follow.followers.contains_key(&2));
}

/// Goal: a subscriber whose caller gave up while the follow was still attaching it (the list
/// was slow to load) is not left attached: the client was told it is not subscribed, so it
/// gets no frames, and the follow ends once nobody else follows. (Outside review, F10.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_caller_gave_up_is_not_attached() {
    let inner = Arc::new(MemoryStore::new());
    let held = HeldLoads::new(inner.clone());
    let writer = LocalRouter::new(Host::new(
        inner.clone(),
        inner.clone(),
        HostConfig::default(),
    ));
    let alice = principal(1, "alice");
    let list = writer
        .create_list(&alice, raw(r#"{"title":"slow"}"#))
        .await
        .unwrap();
    held.hold.store(true, Ordering::SeqCst);
    let host = Host::new(held.clone(), inner.clone(), HostConfig::default());
    let follows = Follows::new(
        owners_over(LocalRouter::new(host.clone())),
        Duration::from_millis(300),
    );
    let (sink, rx) = FrameSink::new(7, alice.user_id, 64, CancellationToken::new());
    let refused = follows.subscribe(&alice, list, None, sink).await;
    assert!(refused.is_err(), "the caller timed out: {refused:?}");
    held.hold.store(false, Ordering::SeqCst);
    held.gate.add_permits(1 << 20);
    tokio::time::timeout(Duration::from_secs(10), async {
        while follows.followed() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the follow retires: it has no follower");
    drop(writer);
    let seen = drain_for(&rx, Duration::from_millis(200)).await;
    assert!(
        seen.is_empty(),
        "nothing reaches a client that is not subscribed: {seen:?}"
    );
}

/// Goal (second review, R2): a frame that changed access is re-checked with the node whose
/// copy produced it, or at least with a copy that has reached it. Here the follow's view
/// already names a new owner N (which loaded the list at seq 2), while its node subscription
/// still comes from the old owner A (superseded, within `HANDOFF_GRACE`, as after a view
/// change A has not seen yet). A revokes Bob at seq 3 and goes on writing. The follow asks the
/// owner of its view, N, whose copy is still at seq 2 and says Bob may read: Bob keeps
/// getting A's frames after he lost access.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_change_is_not_rechecked_against_a_copy_behind_it() {
    let inner = Arc::new(MemoryStore::new());
    for (n, name) in [(1, "alice"), (2, "bob")] {
        inner
            .create_user(UserRecord {
                user_id: Uuid::from_u128(n),
                username: name.into(),
                password_hash: "x".into(),
                created_at_ms: 0,
            })
            .await
            .unwrap();
    }
    let (alice, bob) = (principal(1, "alice"), principal(2, "bob"));
    // A: the old owner, still writing. N: the new owner of the follow's view.
    let local_a = LocalRouter::new(Host::new(
        inner.clone(),
        inner.clone(),
        HostConfig::default(),
    ));
    let local_n = LocalRouter::new(Host::new(
        inner.clone(),
        inner.clone(),
        HostConfig::default(),
    ));
    let list = local_a
        .create_list(&alice, raw(r#"{"title":"private"}"#))
        .await
        .unwrap();
    let share = r#"{"kind":"share","user":"bob","role":"viewer"}"#;
    assert_eq!(submit(&local_a, &alice, list, share).await, Ok(2));
    // N loads the list at seq 2 (a reader whose gateway already has the new view).
    local_n.snapshot(&alice, list).await.unwrap();

    let follows = follows_over(local_n.clone());
    let mut follow = Follow::new(list, follows.clone(), Default::default());
    let source = local_a.subscribe_node(list, None, 64).await.unwrap();
    assert!(matches!(
        source.next().await,
        Some(NodeItem::Started { seq: 2, .. })
    ));
    follow.forwarded = Some(2);
    follow.upstream = Some(Upstream {
        source: Source::Local(source),
        owner: Some(NodeId::new("node-old").unwrap()),
        superseded_at: Some(Instant::now()),
    });
    let (bob_sink, bob_rx) = FrameSink::new(42, bob.user_id, 256, CancellationToken::new());
    follow
        .attach(bob.user_id, None, bob_sink, &|| true)
        .await
        .expect("bob may read at seq 2");
    let _snapshot = drain_for(&bob_rx, Duration::from_millis(100)).await;

    // A has not seen the view change: it revokes Bob, then keeps writing.
    let unshare = r#"{"kind":"unshare","user":"bob"}"#;
    assert_eq!(submit(&local_a, &alice, list, unshare).await, Ok(3));
    let later = r#"{"kind":"add_item","text":"after revocation","after":null}"#;
    assert_eq!(submit(&local_a, &alice, list, later).await, Ok(4));
    // The follow forwards what A publishes (within the grace).
    while let Ok(item) =
        tokio::time::timeout(Duration::from_millis(500), next_item(&mut follow.upstream)).await
    {
        follow.item(item);
    }
    let seen = drain_for(&bob_rx, Duration::from_millis(200)).await;
    let leaked = seen.iter().any(|f| f.contains("after revocation"));
    let ended = seen
        .iter()
        .any(|f| f.starts_with("ended") && f.contains("forbidden"));
    assert!(
        !leaked && ended,
        "bob lost access at seq 3, checked against a copy at seq 2: {seen:#?}"
    );
}

/// Goal (second review, R6): an unsubscribe is never lost. While a follow cannot read its
/// commands (it is resubscribing at an owner that is slow to load), subscribes pile up in its
/// queue; an unsubscribe that finds the queue full gives up after the follow timeout, and the
/// connection, still open, stays attached: it keeps getting the list's frames indefinitely
/// (the sweep only drops closed connections), and the gateway no longer counts the
/// subscription against its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_is_not_lost_while_the_follow_is_busy() {
    let inner = Arc::new(MemoryStore::new());
    let held = HeldLoads::new(inner.clone());
    let host = Host::new(held.clone(), inner.clone(), HostConfig::default());
    let local = LocalRouter::new(host.clone());
    let alice = principal(1, "alice");
    let list = local
        .create_list(&alice, raw(r#"{"title":"hot"}"#))
        .await
        .unwrap();
    let follows = Follows::new(owners_over(local.clone()), Duration::from_millis(500));
    let (c1, c1_rx) = FrameSink::new(1, alice.user_id, 4096, CancellationToken::new());
    follows.subscribe(&alice, list, None, c1).await.unwrap();
    // The list restarts and its next load is slow: the follow is busy resubscribing.
    held.hold.store(true, Ordering::SeqCst);
    host.release_all();
    // A crowd subscribes meanwhile (their callers time out; their commands stay queued).
    let mut crowd = Vec::new();
    for n in 0..(2 * COMMANDS_MAX as u64) {
        let follows = follows.clone();
        let alice = alice.clone();
        let (sink, _rx) = FrameSink::new(1000 + n, alice.user_id, 16, CancellationToken::new());
        crowd.push(tokio::spawn(async move {
            let _ = follows.subscribe(&alice, list, None, sink).await;
            _rx
        }));
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while follows
            .lock()
            .get(&list)
            .is_none_or(|queue| !queue.is_full())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the follow's queue fills up");
    // Connection 1 unsubscribes (the gateway forgets the subscription at once).
    follows.unsubscribe(list, 1).await;
    // The slow load finishes; the follow catches up with its queue.
    held.hold.store(false, Ordering::SeqCst);
    held.gate.add_permits(1 << 20);
    for task in crowd {
        let _ = task.await;
    }
    let _ = drain_for(&c1_rx, Duration::from_millis(300)).await;
    let op = r#"{"kind":"add_item","text":"after unsubscribe","after":null}"#;
    submit(&local, &alice, list, op).await.unwrap();
    let seen = drain_for(&c1_rx, Duration::from_millis(500)).await;
    assert!(
        !seen.iter().any(|f| f.contains("after unsubscribe")),
        "connection 1 unsubscribed, yet gets the list's frames: {seen:#?}"
    );
}
