//! Safety of the cluster layer under the sequences an outside review found: many followed
//! lists per owner, an isolated restart, a handoff racing the new owner's load, a list
//! activating while it moves, pipelined ops through a gateway node.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use listwire::client::{Client, ServerFrame};
use listwire::config::ServeArgs;
use listwire::host::{Host, HostConfig, Owner, Ownership};
use listwire::router::LocalRouter;
use listwire::server::{start_with, RunningNode, Stores};
use listwire_gateway::Router;
use listwire_storage::memory::MemoryStore;
use listwire_storage::{AccountStore, EventStore};
use uuid::Uuid;

use crate::hardening::{add_op, alice, raw, submit_with};
use crate::support::cluster::{cluster_flags, free_udp_port, TestCluster};
use crate::support::gated::GatedStore;
use crate::support::*;

/// Starts a cluster node over `events` (+ `accounts`) seeded with `seed`.
async fn start_node_over(
    dir: &std::path::Path,
    id: &str,
    seed: &str,
    events: Arc<dyn EventStore>,
    accounts: Arc<dyn AccountStore>,
    extra: &[&str],
) -> RunningNode {
    let mut flags = cluster_flags(dir, id, "127.0.0.1:0");
    flags.extend(["--drain-timeout-secs", "10"].map(String::from));
    if !seed.is_empty() {
        flags.extend(["--seed".to_owned(), seed.to_owned()]);
    }
    flags.extend(extra.iter().map(|f| f.to_string()));
    let args = ServeArgs::from_flags(flags).unwrap();
    let stores: Stores = (events, accounts);
    start_with(args, Some(stores)).await.unwrap()
}

/// Goal: a gateway node can follow far more than the transport's default stream limit (256)
/// of one owner's lists: it opens one node subscription per followed list, all on its one
/// connection to that owner. (Outside review, F4.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_node_follows_hundreds_of_lists_of_one_owner() {
    let cluster = TestCluster::start(
        2,
        &[
            "--op-timeout-ms",
            "3000",
            "--subscriptions-per-connection-max",
            "1000",
        ],
    )
    .await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let mut owned = Vec::new();
    while owned.len() < 262 {
        let list = list(&alice_0, "many").await;
        if cluster.owner_of(0, list) == 0 {
            owned.push(list);
        }
    }
    let session = alice_0.token().unwrap().to_owned();
    let on_1 = Client::new(&cluster.node(1).http_url()).with_token(&session);
    let mut live = on_1.connect().await.unwrap();
    for list in &owned {
        live.subscribe(*list, None).await.unwrap();
    }
    let mut snapshots = HashSet::new();
    let mut errors = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while snapshots.len() + errors.len() < owned.len() && tokio::time::Instant::now() < deadline {
        match live.next_within(Duration::from_secs(10)).await {
            Ok(ServerFrame::Snapshot { list, .. }) => {
                snapshots.insert(list);
            }
            Ok(ServerFrame::Error {
                list: Some(list),
                code,
                message,
                ..
            }) => {
                errors.insert(list, format!("{code}: {message}"));
            }
            Ok(_) => {}
            Err(error) => panic!("connection: {error}"),
        }
    }
    assert!(errors.is_empty(), "every subscription succeeds: {errors:?}");
    assert_eq!(snapshots.len(), owned.len());
}

/// Goal: a node that (re)starts where it cannot reach its seeds does not count itself a
/// majority of one: it stays `joining`, reports not ready and hosts nothing, so nobody reads
/// a copy that misses what the real cluster acknowledges. (Outside review, F3.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_restart_serves_nothing() {
    let cluster = TestCluster::start(2, &[]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let list = list(&alice_0, "isolated").await;
    assert_eq!(
        alice_0.op(list, Uuid::new_v4(), add("one")).await.unwrap(),
        2
    );
    let dir = tempfile::tempdir().unwrap();
    let unreachable_seed = format!("127.0.0.1:{}", free_udp_port());
    let isolated = start_node_over(
        dir.path(),
        "node-9",
        &unreachable_seed,
        cluster.store.clone(),
        cluster.store.clone(),
        &["--op-timeout-ms", "1000"],
    )
    .await;
    // Several gossip rounds (250 ms each) pass while it waits for a peer.
    let http = reqwest::Client::new();
    for _round in 0..8 {
        let ready = http
            .get(format!("{}/readyz", isolated.http_url()))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(ready, reqwest::StatusCode::SERVICE_UNAVAILABLE);
        let picture = isolated.cluster.as_ref().unwrap().state().picture();
        assert!(
            picture.view.serving_hosts().is_empty(),
            "it announces nothing"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let session = alice_0.token().unwrap().to_owned();
    let on_isolated = Client::new(&isolated.http_url()).with_token(&session);
    let read = on_isolated.get_list(list).await;
    assert!(read.is_err(), "no stale copy is served: {read:?}");
    assert!(isolated.host.active_list_ids().is_empty());
    let acked = alice_0.op(list, Uuid::new_v4(), add("two")).await.unwrap();
    assert_eq!(acked, 3, "the real cluster goes on");
}

/// The seq the next delta or snapshot brings the subscriber to, within `wait`. A follower
/// that missed frames across a handoff may be caught up with a snapshot rather than deltas
/// (the new owner loaded the old owner's final snapshot); both are correct.
async fn next_seq_within(live: &mut listwire::client::Live, wait: Duration) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match live.next_within(left).await {
            Ok(ServerFrame::Delta { to, .. }) => return Some(to),
            Ok(ServerFrame::Snapshot { seq, .. }) => return Some(seq),
            Ok(ServerFrame::Error { code, message, .. }) => {
                panic!("the subscription ended: {code}: {message}")
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Goal: a handoff whose old owner still has an accepted op in flight loses nothing. The
/// follow of a gateway node keeps its subscription at the old owner until that owner ends it
/// (so the flushed op reaches the follower), and the new owner's load waits for the old owner
/// to settle the list (so reads through the new owner include the op). (Outside review, F1.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handoff_with_an_append_in_flight_loses_nothing() {
    let inner = Arc::new(MemoryStore::new());
    let mut gates = Vec::new();
    let mut nodes: Vec<RunningNode> = Vec::new();
    let mut dirs = Vec::new();
    // The first node starts the cluster (no seed); the others join through it.
    let mut seed = String::new();
    for index in 0..3 {
        let gate = GatedStore::new(inner.clone());
        let dir = tempfile::tempdir().unwrap();
        let node = start_node_over(
            dir.path(),
            &format!("node-{index}"),
            &seed,
            gate.clone(),
            inner.clone(),
            &[],
        )
        .await;
        if index == 0 {
            seed = node.cluster.as_ref().unwrap().gossip_addr().to_string();
        }
        gates.push(gate);
        nodes.push(node);
        dirs.push(dir);
    }
    eventually(Duration::from_secs(20), || async {
        nodes.iter().all(|node| {
            let picture = node.cluster.as_ref().unwrap().state().picture();
            picture.view.serving_hosts().len() == 3 && picture.has_majority()
        })
    })
    .await;
    let alice_0 = user(&nodes[0], "alice").await;
    let list = list(&alice_0, "handoff").await;
    let owner_id = nodes[0]
        .cluster
        .as_ref()
        .unwrap()
        .state()
        .picture()
        .owner(list)
        .unwrap()
        .to_string();
    let owner: usize = owner_id.strip_prefix("node-").unwrap().parse().unwrap();
    let reader = (owner + 1) % 3;
    let session = alice_0.token().unwrap().to_owned();
    let client = |index: usize| Client::new(&nodes[index].http_url()).with_token(&session);
    let mut live = client(reader).connect().await.unwrap();
    let (seen, _) = subscribe_snapshot(&mut live, list).await;
    assert_eq!(seen, 1);

    // An op accepted by the owner, its append held (a slow commit).
    gates[owner].hold();
    let writer = client(owner);
    let write = tokio::spawn(async move { writer.op(list, Uuid::new_v4(), add("acked")).await });
    eventually(Duration::from_secs(5), || async {
        gates[owner].waiting() == 1
    })
    .await;

    // The owner drains; the others see it and the list's new owner loads it.
    let draining = nodes[owner].cluster.clone().unwrap();
    let drain = tokio::spawn(async move { draining.drain().await });
    eventually(Duration::from_secs(10), || async {
        nodes
            .iter()
            .enumerate()
            .any(|(index, node)| index != owner && node.host.active_list_ids().contains(&list))
    })
    .await;
    gates[owner].open();
    let acked = write.await.unwrap().expect("the op is acknowledged");
    assert_eq!(acked, 2);
    drain.await.unwrap();

    let reached = next_seq_within(&mut live, Duration::from_secs(5)).await;
    let state = client(reader).get_list(list).await.unwrap();
    assert_eq!(inner.head(list).await.unwrap(), 2, "stored");
    assert_eq!(reached, Some(2), "the follower gets the acknowledged op");
    assert_eq!(
        state["seq"], 2,
        "reads through the new owner include it: {state}"
    );
}

#[derive(Default)]
struct Switch {
    elsewhere: AtomicBool,
}

impl Ownership for Switch {
    fn check(&self, _list: Uuid) -> Owner {
        if self.elsewhere.load(Ordering::SeqCst) {
            Owner::Elsewhere(Some("node-b".into()))
        } else {
            Owner::Here
        }
    }
}

/// Goal: a list still activating when placement moves it away is handed off as soon as its
/// actor exists, so when placement later gives it back, the node loads it afresh instead of
/// serving a copy loaded before another node wrote. (Outside review, F5.)
#[tokio::test]
async fn a_list_activating_during_a_move_is_handed_off() {
    let inner = Arc::new(MemoryStore::new());
    let gate = GatedStore::new(inner.clone());
    let switch = Arc::new(Switch::default());
    let host1 = Host::with_ownership(
        gate.clone(),
        inner.clone(),
        HostConfig::default(),
        switch.clone(),
    );
    let local1 = LocalRouter::new(host1.clone());
    let host2 = Host::new(inner.clone(), inner.clone(), HostConfig::default());
    let local2 = LocalRouter::new(host2.clone());
    let list = local2
        .create_list(&alice(), raw(r#"{"title":"moving"}"#))
        .await
        .unwrap();
    gate.hold_reads();
    let reading = {
        let local1 = local1.clone();
        tokio::spawn(async move { local1.snapshot(&alice(), list).await })
    };
    eventually(Duration::from_secs(5), || async {
        host1.active_lists() == 1
    })
    .await;
    switch.elsewhere.store(true, Ordering::SeqCst);
    let released = host1.release_unowned();
    assert_eq!(
        released,
        vec![list],
        "an activating list counts as released"
    );
    gate.open();
    // Answered or refused (the node was told it does not own the list): both are fine.
    let _ = reading.await.unwrap();
    eventually(Duration::from_secs(5), || async {
        !host1.active_list_ids().contains(&list)
    })
    .await;
    let newer = submit_with(&local2, list, Uuid::new_v4(), &add_op("newer")).await;
    assert_eq!(newer.await.unwrap(), Ok(2));
    switch.elsewhere.store(false, Ordering::SeqCst);
    let state: serde_json::Value =
        serde_json::from_slice(&local1.snapshot(&alice(), list).await.unwrap()).unwrap();
    assert_eq!(
        state["seq"], 2,
        "served a copy loaded before seq 2 was acknowledged"
    );
}

/// Goal: "ops sent on one connection to one list reach the list in the order sent" (PROTOCOL
/// 4.2) holds through a gateway node: a list's forwarded ops go through one lane with one
/// batch in flight, and the owner submits a batch in order. (Outside review, F7.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_ops_through_a_gateway_node_keep_their_order() {
    let cluster = TestCluster::start(2, &[]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let mut list_id = list(&alice_0, "ordered").await;
    while cluster.owner_of(0, list_id) != 0 {
        list_id = list(&alice_0, "ordered").await;
    }
    let session = alice_0.token().unwrap().to_owned();
    let mut live = Client::new(&cluster.node(1).http_url())
        .with_token(&session)
        .connect()
        .await
        .unwrap();
    let mut sent = Vec::new();
    for round in 0..20 {
        for index in 0..25 {
            let op_id = Uuid::new_v4();
            live.send_op(list_id, op_id, &add(&format!("{round}-{index}")))
                .await
                .unwrap();
            sent.push(op_id);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut seqs = HashMap::new();
    while seqs.len() < sent.len() {
        match live.next_within(Duration::from_secs(10)).await.unwrap() {
            ServerFrame::Ack { op_id, seq, .. } => {
                seqs.insert(op_id, seq);
            }
            ServerFrame::Error { code, message, .. } => panic!("{code}: {message}"),
            _ => {}
        }
    }
    let in_order: Vec<u64> = sent.iter().map(|op_id| seqs[op_id]).collect();
    let inversions = in_order.windows(2).filter(|pair| pair[1] < pair[0]).count();
    assert_eq!(
        inversions,
        0,
        "{} ops, applied out of order: {in_order:?}",
        sent.len()
    );
}

/// Goal: an op sent through a gateway node just after the list's owner died is answered by
/// the new owner, well within the op timeout: the first attempt gives up on the dead owner
/// after the connect timeout (1 s), not the whole op timeout, and the router retries at the
/// owner of its newer view. (Failover benchmark finding: ops caught by an outage all waited
/// the full 10 s and failed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_op_sent_to_an_owner_that_just_died_is_answered_by_the_next() {
    let mut cluster = TestCluster::start(3, &["--op-timeout-ms", "8000"]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let mut list_id = list(&alice_0, "orphaned").await;
    while cluster.owner_of(0, list_id) != 2 {
        list_id = list(&alice_0, "orphaned").await;
    }
    cluster.crash(2).await;
    let session = alice_0.token().unwrap().to_owned();
    let through_1 = Client::new(&cluster.node(1).http_url()).with_token(&session);
    let seq = through_1
        .op(list_id, Uuid::new_v4(), add("after the crash"))
        .await
        .expect("the new owner answers before the op timeout");
    assert_eq!(seq, 2);
}
