//! Membership over real UDP gossip on 127.0.0.1, with the default timings: discovery via a
//! seed, state changes, crash detection (its time is printed), restarts, clean leaves and the
//! majority rule.

mod support;

use std::time::Duration;

use listwire_cluster::membership::{diff, MemberEvent, Membership, NodeState};
use support::*;
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(15);

/// Three hosts, `b` and `c` seeded with `a`, all `serving`, each seeing all three live.
async fn three_serving_hosts() -> (Membership, Membership, Membership) {
    let a_addr = free_udp_addr();
    let a = Membership::spawn_udp(membership_config("a", 1, a_addr, &[]))
        .await
        .unwrap();
    let b = Membership::spawn_udp(membership_config("b", 1, free_udp_addr(), &[a_addr]))
        .await
        .unwrap();
    let c = Membership::spawn_udp(membership_config("c", 1, free_udp_addr(), &[a_addr]))
        .await
        .unwrap();
    for node in [&a, &b, &c] {
        node.set_state(NodeState::Serving).await.unwrap();
    }
    for node in [&a, &b, &c] {
        eventually("all serving everywhere", LONG, || {
            node.view().serving_hosts().len() == 3
        })
        .await;
    }
    (a, b, c)
}

/// Nodes find each other through one seed; the view includes self; a state change on one
/// node fires the others' watches and shows in their views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_state_changes() {
    let a_addr = free_udp_addr();
    let a = Membership::spawn_udp(membership_config("a", 1, a_addr, &[]))
        .await
        .unwrap();
    let b = Membership::spawn_udp(membership_config("b", 1, free_udp_addr(), &[a_addr]))
        .await
        .unwrap();
    let c = Membership::spawn_udp(membership_config("c", 1, free_udp_addr(), &[a_addr]))
        .await
        .unwrap();
    let discovery = Instant::now();
    for node in [&a, &b, &c] {
        eventually("three live members", LONG, || {
            live_names(&node.view()) == ["a", "b", "c"]
        })
        .await;
    }
    println!(
        "three nodes discovered each other in {:?}",
        discovery.elapsed()
    );
    let view = c.view();
    let member_a = view.member(&id("a")).unwrap();
    assert_eq!(member_a.internode_addr(), "a:7000");
    assert_eq!(member_a.client_addr(), "a:8080");
    assert_eq!(member_a.protocol_version(), 1);
    assert_eq!(member_a.state(), NodeState::Joining);
    assert!(view.serving_hosts().is_empty());

    let mut a_watch = a.watch();
    a_watch.borrow_and_update();
    b.set_state(NodeState::Serving).await.unwrap();
    tokio::time::timeout(LONG, a_watch.changed())
        .await
        .unwrap()
        .unwrap();
    for node in [&a, &c] {
        eventually("b serving", LONG, || {
            node.view().serving_hosts().contains(&id("b"))
        })
        .await;
    }
    assert!(matches!(
        b.set_state(NodeState::Joining).await,
        Err(listwire_cluster::Error::InvalidTransition { .. })
    ));
    for node in [a, b, c] {
        node.shutdown().await.unwrap();
    }
}

/// A node that stops gossiping without a word is declared dead by the others within about
/// two seconds with the default settings; it stays a known host, so the majority rule counts
/// it: 2 of 3 live keeps the majority, 1 of 3 loses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_node_is_declared_dead() {
    let (a, b, c) = three_serving_hosts().await;
    let crashed_at = Instant::now();
    c.shutdown().await.unwrap();
    let mut detected = Vec::new();
    for node in [&a, &b] {
        eventually("c dead", LONG, || {
            !node.view().member(&id("c")).unwrap().is_live()
        })
        .await;
        detected.push(crashed_at.elapsed());
    }
    println!(
        "dead-node detection with default settings: a after {:?}, b after {:?}",
        detected[0], detected[1]
    );
    assert!(detected[1] < Duration::from_secs(6), "{detected:?}");
    let view = a.view();
    assert_eq!(view.serving_hosts().len(), 2);
    assert_eq!(view.known_hosts().len(), 3);
    assert!(view.has_majority());

    b.shutdown().await.unwrap();
    eventually("b dead", LONG, || {
        !a.view().member(&id("b")).unwrap().is_live()
    })
    .await;
    assert!(!a.view().has_majority(), "1 live of 3 known");
    a.shutdown().await.unwrap();
}

/// A node that restarts with a higher generation replaces its old incarnation in the others'
/// views; the diff reports the old one removed and the new one added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_higher_generation_replaces_the_old_one() {
    let a_addr = free_udp_addr();
    let a = Membership::spawn_udp(membership_config("a", 1, a_addr, &[]))
        .await
        .unwrap();
    let b = Membership::spawn_udp(membership_config("b", 10, free_udp_addr(), &[a_addr]))
        .await
        .unwrap();
    eventually("a sees b", LONG, || live_names(&a.view()) == ["a", "b"]).await;
    let before = a.view();
    b.shutdown().await.unwrap();

    let b_again = Membership::spawn_udp(membership_config("b", 11, free_udp_addr(), &[a_addr]))
        .await
        .unwrap();
    eventually("a sees b's new generation", LONG, || {
        a.view()
            .member(&id("b"))
            .is_some_and(|b| b.generation() == 11 && b.is_live())
    })
    .await;
    let after = a.view();
    assert_eq!(after.members().count(), 2, "one entry per node id");
    let events = diff(&before, &after);
    assert!(
        matches!(&events[..], [MemberEvent::Removed(old), MemberEvent::Added(new)]
        if old.generation() == 10 && new.generation() == 11),
        "{events:?}"
    );
    a.shutdown().await.unwrap();
    b_again.shutdown().await.unwrap();
}

/// A node that leaves cleanly announces `left` and stops counting as a known host, so the
/// survivors keep their majority; a later crash then counts against the smaller set (1 of 2
/// live is not a strict majority).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn left_node_leaves_the_known_hosts() {
    let (a, b, c) = three_serving_hosts().await;
    c.leave().await.unwrap();
    eventually("a sees c left", LONG, || {
        a.view()
            .member(&id("c"))
            .is_some_and(|c| c.state() == NodeState::Left)
    })
    .await;
    let view = a.view();
    assert_eq!(view.known_hosts().len(), 2);
    assert!(!view.serving_hosts().contains(&id("c")));
    assert!(view.has_majority());

    b.shutdown().await.unwrap();
    eventually("b dead", LONG, || {
        !a.view().member(&id("b")).unwrap().is_live()
    })
    .await;
    assert!(!a.view().has_majority(), "1 live of 2 known");
    a.shutdown().await.unwrap();
}
