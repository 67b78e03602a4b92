//! Restarts cut off from their cluster (second outside review of the cluster, R3): nodes that
//! see only part of it must not host its lists.

use std::sync::Arc;
use std::time::Duration;

use listwire::client::Client;
use listwire::config::ServeArgs;
use listwire::server::{start_with, RunningNode, Stores};
use listwire_storage::memory::MemoryStore;
use uuid::Uuid;

use crate::support::cluster::{cluster_flags, free_udp_port, TestCluster};
use crate::support::*;

async fn start_isolated(
    dir: &std::path::Path,
    id: &str,
    gossip_port: u16,
    seeds: &str,
    store: Arc<MemoryStore>,
) -> RunningNode {
    let mut flags = cluster_flags(dir, id, &format!("127.0.0.1:{gossip_port}"));
    flags.extend(["--seed".to_owned(), seeds.to_owned()]);
    let args = ServeArgs::from_flags(flags).unwrap();
    let stores: Stores = (store.clone(), store);
    start_with(args, Some(stores)).await.unwrap()
}

/// Goal (second outside review, R3): nodes that restart where they cannot reach their cluster do not
/// host its lists, also when more than one restarts on the same side: two nodes seeded with a
/// five-node cluster that see only each other (2 of 2 in their gossip) stay `joining`, since
/// they see only 2 of their 5 seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_restarted_nodes_that_see_only_each_other_serve_nothing() {
    let cluster = TestCluster::start(2, &[]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let list = list(&alice_0, "split").await;
    assert_eq!(
        alice_0.op(list, Uuid::new_v4(), add("one")).await.unwrap(),
        2
    );
    // The seed list names the five nodes of the cluster; three are out of reach.
    let (unreachable_a, unreachable_b, unreachable_c) =
        (free_udp_port(), free_udp_port(), free_udp_port());
    let (port_8, port_9) = (free_udp_port(), free_udp_port());
    let seeds = format!(
        "127.0.0.1:{unreachable_a},127.0.0.1:{unreachable_b},127.0.0.1:{unreachable_c},127.0.0.1:{port_8},127.0.0.1:{port_9}"
    );
    let (dir_8, dir_9) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let n8 = start_isolated(
        dir_8.path(),
        "node-8",
        port_8,
        &seeds,
        cluster.store.clone(),
    )
    .await;
    let n9 = start_isolated(
        dir_9.path(),
        "node-9",
        port_9,
        &seeds,
        cluster.store.clone(),
    )
    .await;
    let serving = |node: &RunningNode| {
        let picture = node.cluster.as_ref().unwrap().state().picture();
        !picture.view.serving_hosts().is_empty() && picture.has_majority()
    };
    // Poll, with a deadline, for what must not happen.
    let became_serving = tokio::time::timeout(Duration::from_secs(5), async {
        while !(serving(&n8) || serving(&n9)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_ok();
    let read = if became_serving {
        let session = alice_0.token().unwrap().to_owned();
        let through_8 = Client::new(&n8.http_url()).with_token(&session);
        format!(
            "{:?}",
            through_8
                .get_list(list)
                .await
                .map(|state| state["seq"].clone())
        )
    } else {
        String::new()
    };
    assert!(
        !became_serving,
        "two nodes cut off from the cluster host its lists (a read of one through them: {read})"
    );
}
