//! Multi-node clusters in one process, with real UDP gossip and TCP on loopback over one shared
//! store: routing to owners, subscriptions across nodes, failover, joins, drains and split views.

use std::time::Duration;

use listwire::client::ServerFrame;
use serde_json::json;
use uuid::Uuid;

use crate::support::cluster::TestCluster;
use crate::support::*;

/// A client on node A edits a list owned by node B and a subscriber on node C sees it live.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edit_through_one_node_reaches_a_subscriber_on_another() {
    let cluster = TestCluster::start(3, &[]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let list = list(&alice_0, "across").await;
    let owner = cluster.owner_of(0, list);
    let writer = (owner + 1) % 3;
    let reader = (owner + 2) % 3;
    let session = alice_0.token().unwrap().to_owned();
    let alice_w =
        listwire::client::Client::new(&cluster.node(writer).http_url()).with_token(&session);
    let alice_r =
        listwire::client::Client::new(&cluster.node(reader).http_url()).with_token(&session);
    let mut live = alice_r.connect().await.unwrap();
    let (seq, _) = subscribe_snapshot(&mut live, list).await;
    assert_eq!(seq, 1);
    let acked = alice_w.op(list, Uuid::new_v4(), add("milk")).await.unwrap();
    assert_eq!(acked, 2);
    let text = expect_frame(&mut live, |frame| match frame {
        ServerFrame::Delta {
            from: 2,
            to: 2,
            events,
            ..
        } => Some(events[0]["text"].as_str().unwrap().to_owned()),
        _ => None,
    })
    .await;
    assert_eq!(text, "milk");
    let state = alice_r.get_list(list).await.unwrap();
    assert_eq!(state["items"][0]["text"], "milk");
    let _ = json!({});
    let _ = Duration::ZERO;
}

/// The stored state of `list`: its latest snapshot plus the events after it, which must
/// follow on without a gap (snapshots prune the history they cover).
async fn stored_state(cluster: &TestCluster, list: Uuid) -> listwire::domain::ListState {
    use listwire::domain::{decode_batch, decode_snapshot, evolve, Limits, ListState};
    use listwire_storage::EventStore;
    let mut state = match cluster.store.latest_snapshot(list).await.unwrap() {
        Some(snapshot) => decode_snapshot(&snapshot.body).unwrap(),
        None => ListState::new(list),
    };
    for batch in cluster
        .store
        .read_batches(list, state.seq(), 100_000)
        .await
        .unwrap()
    {
        for event in decode_batch(&batch.body).unwrap() {
            if event.seq <= state.seq() {
                continue;
            }
            assert_eq!(event.seq, state.seq() + 1, "the history is contiguous");
            evolve(&mut state, &event, &Limits::default());
        }
    }
    assert_eq!(cluster.store.head(list).await.unwrap(), state.seq());
    state
}

/// Asserts every acked `(op id, seq)` is in the stored history exactly once, at its seq (the
/// op-id window of the stored state remembers every op of these short tests).
async fn assert_acked_stored(cluster: &TestCluster, list: Uuid, acked: &[(Uuid, u64)]) {
    let state = stored_state(cluster, list).await;
    for (op_id, seq) in acked {
        assert_eq!(
            state.op_seq(*op_id),
            Some(*seq),
            "acked op {op_id} stored at its seq"
        );
    }
    let mut seqs: Vec<u64> = acked.iter().map(|(_, seq)| *seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), acked.len(), "no two acks share a seq");
}

/// Sends an op until it is acked, retrying retryable errors with the same op id (what a
/// client does), within 30 s.
async fn op_until_acked(
    client: &listwire::client::Client,
    list: Uuid,
    op_id: Uuid,
    op: serde_json::Value,
) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.op(list, op_id, op.clone()).await {
            Ok(seq) => return seq,
            Err(error) => {
                let code = error.code().unwrap_or("transport").to_owned();
                assert!(
                    matches!(
                        code.as_str(),
                        "moved" | "busy" | "unavailable" | "transport"
                    ),
                    "only retryable errors, got {error}"
                );
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "op {op_id} never acked"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The owner of a list dies abruptly under a stream of ops: every acked op survives exactly
/// once, the list serves again on another node, and a subscriber on a third node resumes with
/// no gap or duplicate without reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_owner_loses_nothing_and_followers_resume() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let list = list(&alice_0, "failover").await;
    let owner = cluster.owner_of(0, list);
    let writer = (owner + 1) % 3;
    let reader = (owner + 2) % 3;
    let session = alice_0.token().unwrap().to_owned();
    let client = |index: usize| {
        listwire::client::Client::new(&cluster.node(index).http_url()).with_token(&session)
    };
    let alice_w = client(writer);
    let mut live = client(reader).connect().await.unwrap();
    let (mut seen, _) = subscribe_snapshot(&mut live, list).await;

    let mut acked = Vec::new();
    for index in 0..40 {
        if index == 15 {
            cluster.crash(owner).await;
        }
        let op_id = Uuid::new_v4();
        let seq = op_until_acked(&alice_w, list, op_id, add(&format!("item {index}"))).await;
        acked.push((op_id, seq));
    }
    let last = acked.last().unwrap().1;
    // The subscriber, on the same connection, gets every seq once, in order.
    while seen < last {
        let frame = live
            .next_within(Duration::from_secs(20))
            .await
            .expect("frames keep coming");
        match frame {
            ServerFrame::Delta { from, to, .. } => {
                assert_eq!(from, seen + 1, "no gap, no duplicate");
                seen = to;
            }
            ServerFrame::Snapshot { seq, .. } => seen = seq,
            ServerFrame::Error { code, .. } => panic!("subscription ended: {code}"),
            _ => {}
        }
    }
    assert_acked_stored(&cluster, list, &acked).await;
    assert_eq!(stored_state(&cluster, list).await.seq(), last);
    assert_ne!(cluster.owner_of(writer, list), owner, "the list moved");
}

/// A node joins: the lists that now map to it (and only those) move from their old owners,
/// and ops sent through the cluster meanwhile are all acked, none refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joining_node_takes_over_only_its_lists_without_failing_an_op() {
    let mut cluster = TestCluster::start(2, &[]).await;
    let alice = user(cluster.node(0), "alice").await;
    let mut lists = Vec::new();
    for index in 0..30 {
        lists.push(list(&alice, &format!("list {index}")).await);
    }
    let before: Vec<usize> = lists.iter().map(|l| cluster.owner_of(0, *l)).collect();
    let joined = cluster.add_node().await;
    cluster.wait_serving(3).await;
    let after: Vec<usize> = lists.iter().map(|l| cluster.owner_of(0, *l)).collect();
    let mut moved = 0;
    for (index, (old, new)) in before.iter().zip(&after).enumerate() {
        if old != new {
            assert_eq!(*new, joined, "list {index} moved only to the new node");
            moved += 1;
        }
    }
    assert!(
        moved > 0 && moved < lists.len(),
        "about a third moved: {moved}"
    );
    // Every list takes an op at once, through node 0, wherever it lives now.
    for list in &lists {
        alice
            .op(*list, Uuid::new_v4(), add("after the join"))
            .await
            .expect("no op fails");
    }
    // The old owners no longer host what moved.
    eventually(Duration::from_secs(10), || async {
        lists.iter().zip(&after).all(|(list, owner)| {
            cluster
                .live()
                .enumerate()
                .all(|(index, node)| index == *owner || !node.host.active_list_ids().contains(list))
        })
    })
    .await;
}

/// A node drains (a graceful stop) while a client writes through another node and a third
/// follows the list: no op fails, the follower sees every seq once, and the drained node's
/// own clients are closed with 1001 only after its lists moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draining_node_hands_its_lists_over_without_a_client_visible_error() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let list = list(&alice_0, "drained").await;
    let owner = cluster.owner_of(0, list);
    let writer = (owner + 1) % 3;
    let reader = (owner + 2) % 3;
    let session = alice_0.token().unwrap().to_owned();
    let client = |index: usize| {
        listwire::client::Client::new(&cluster.node(index).http_url()).with_token(&session)
    };
    let alice_w = client(writer);
    let mut live = client(reader).connect().await.unwrap();
    let (mut seen, _) = subscribe_snapshot(&mut live, list).await;
    let mut on_owner = client(owner).connect().await.unwrap();
    subscribe_snapshot(&mut on_owner, list).await;
    let mut last = seen;
    for index in 0..10 {
        last = alice_w
            .op(list, Uuid::new_v4(), add(&format!("before {index}")))
            .await
            .unwrap();
    }
    let stopping = cluster.nodes[owner].take().unwrap();
    let stopped = tokio::spawn(stopping.stop());
    for index in 0..20 {
        last = alice_w
            .op(list, Uuid::new_v4(), add(&format!("during {index}")))
            .await
            .expect("no op fails during a drain");
    }
    stopped.await.unwrap().unwrap();
    while seen < last {
        match live.next_within(Duration::from_secs(20)).await.unwrap() {
            ServerFrame::Delta { from, to, .. } => {
                assert_eq!(from, seen + 1, "no gap, no duplicate");
                seen = to;
            }
            ServerFrame::Error { code, .. } => panic!("subscription ended: {code}"),
            _ => {}
        }
    }
    let closed = loop {
        match on_owner.next_within(Duration::from_secs(20)).await {
            Ok(_) => continue,
            Err(error) => break error.to_string(),
        }
    };
    assert!(
        closed.contains("1001"),
        "the drained node's client got 1001: {closed}"
    );
    assert_eq!(stored_state(&cluster, list).await.seq(), last);
}

/// Two nodes that cannot see each other (each alone in its own view) both own a list and take
/// writes for it at once: storage fences them, and the list keeps one history, never two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_split_view_produces_one_history() {
    let left = TestCluster::start(1, &["--cluster-id", "left"]).await;
    let mut right = TestCluster::start(0, &["--cluster-id", "right"]).await;
    right.store = left.store.clone();
    right.add_node().await;
    right.wait_serving(1).await;
    let alice = user(left.node(0), "alice").await;
    let list = list(&alice, "split").await;
    let session = alice.token().unwrap().to_owned();
    let on_right = listwire::client::Client::new(&right.node(0).http_url()).with_token(&session);
    let mut acked = Vec::new();
    let (a, b) = (alice.clone(), on_right.clone());
    let writes = |client: listwire::client::Client, side: &'static str| async move {
        let mut mine = Vec::new();
        for index in 0..25 {
            let op_id = Uuid::new_v4();
            let op = add(&format!("{side} {index}"));
            mine.push((op_id, op_until_acked(&client, list, op_id, op).await));
        }
        mine
    };
    let (from_left, from_right) = tokio::join!(writes(a, "left"), writes(b, "right"));
    acked.extend(from_left);
    acked.extend(from_right);
    assert_eq!(
        stored_state(&left, list).await.seq(),
        51,
        "create plus every op once"
    );
    assert_acked_stored(&left, list, &acked).await;
}

/// A node that cannot see a majority of the cluster's known hosts (here: two of three
/// crashed) stops hosting lists rather than serve a copy the others may have moved on from;
/// requests get the retryable `unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_without_a_majority_stops_hosting() {
    let mut cluster = TestCluster::start(3, &["--op-timeout-ms", "1500"]).await;
    let alice = user(cluster.node(0), "alice").await;
    let mut lists = Vec::new();
    for index in 0..6 {
        lists.push(list(&alice, &format!("l{index}")).await);
    }
    for list in &lists {
        alice.get_list(*list).await.unwrap();
    }
    cluster.crash(1).await;
    cluster.crash(2).await;
    let survivor = cluster.node(0);
    eventually(Duration::from_secs(20), || async {
        let picture = survivor.cluster.as_ref().unwrap().state().picture();
        !picture.has_majority() && survivor.host.active_lists() == 0
    })
    .await;
    let refused = alice
        .op(lists[0], Uuid::new_v4(), add("alone"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("unavailable"));
}
