//! Membership over chitchat's in-memory `ChannelTransport` (the injectable transport a
//! simulation will replace): a partition makes the isolated node dead to the others and
//! costs it the majority; healing the partition brings everything back.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use listwire_cluster::membership::{ChannelTransport, Membership, NodeState};
use support::*;

const LONG: Duration = Duration::from_secs(15);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn spawn(transport: &ChannelTransport, name: &str, port: u16) -> Membership {
    let mut config = membership_config(name, 1, addr(port), &[addr(1)]);
    config.gossip_interval = Duration::from_millis(50);
    config.initial_interval = config.gossip_interval;
    config.initial_state = NodeState::Serving;
    Membership::spawn(config, transport).await.unwrap()
}

/// Partition `c` from `a` and `b`: both sides declare the other dead; `a` and `b` keep the
/// majority (2 of 3), `c` loses it (1 of 3); after healing all three are live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_and_heal() {
    let transport = ChannelTransport::default();
    let a = spawn(&transport, "a", 1).await;
    let b = spawn(&transport, "b", 2).await;
    let c = spawn(&transport, "c", 3).await;
    for node in [&a, &b, &c] {
        eventually("all serving", LONG, || {
            node.view().serving_hosts().len() == 3
        })
        .await;
    }

    transport.remove_link(addr(3), addr(1)).await;
    transport.remove_link(addr(3), addr(2)).await;
    eventually("a sees c dead", LONG, || {
        live_names(&a.view()) == ["a", "b"]
    })
    .await;
    eventually("c sees a and b dead", LONG, || {
        live_names(&c.view()) == ["c"]
    })
    .await;
    assert!(a.view().has_majority());
    assert!(!c.view().has_majority());
    assert_eq!(c.view().known_hosts().len(), 3, "dead hosts stay known");

    transport.add_link(addr(3), addr(1)).await;
    transport.add_link(addr(3), addr(2)).await;
    for node in [&a, &b, &c] {
        eventually("healed", LONG, || {
            live_names(&node.view()) == ["a", "b", "c"]
        })
        .await;
    }
    assert!(c.view().has_majority());
    for node in [a, b, c] {
        node.shutdown().await.unwrap();
    }
}
