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
