//! The cluster's metrics on `/metrics`: described at startup (each has its `# HELP`), and
//! counting real cluster activity: a forwarded op, a drain that moves lists, a dial with the
//! wrong secret and a dial to nothing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use listwire::client::Client;
use listwire::cluster::PROTOCOL_VERSION;
use listwire_cluster::transport::{ClusterSecret, TcpConnector, TransportConfig};
use listwire_cluster::NodeId;
use uuid::Uuid;

use crate::support::cluster::TestCluster;
use crate::support::*;

/// Every cluster metric an operator relies on, with whether this test's activity must have
/// counted it (the others must be present, at zero if nothing happened).
const CLUSTER_METRICS: [(&str, bool); 11] = [
    ("listwire_cluster_members", true),
    ("listwire_placement_changes_total", true),
    ("listwire_lists_moved_total", true),
    ("listwire_handoff_seconds", true),
    ("listwire_forwarded_ops_total", true),
    ("listwire_forward_seconds", true),
    ("listwire_cluster_connect_errors_total", true),
    ("listwire_cluster_handshake_refusals_total", true),
    ("listwire_stale_owner_rejections_total", false),
    ("listwire_not_owner_refusals_total", false),
    ("listwire_cluster_request_latency_seconds", true),
];

/// A forwarded op, a refused and a failed dial and an admin stop (a drain) happen in a test
/// cluster; one remaining node's `/metrics` then describes every cluster metric and shows the
/// activity counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_metrics_show_on_metrics_after_cluster_activity() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let list = list(&alice_0, "measured").await;
    let owner = cluster.owner_of(0, list);
    let via = (owner + 1) % 3;
    let session = alice_0.token().unwrap().to_owned();
    let alice_via = Client::new(&cluster.node(via).http_url()).with_token(&session);
    alice_via
        .op(list, Uuid::new_v4(), add("forwarded"))
        .await
        .expect("a forwarded op");

    let owner_internode = cluster
        .node(owner)
        .cluster
        .as_ref()
        .unwrap()
        .internode_addr();
    dial_with_wrong_secret(&format!("node-{owner}"), owner_internode).await;
    dial_nothing().await;
    cluster.admin(owner).admin_stop().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), cluster.node(owner).stopped())
        .await
        .expect("the drained node stops");
    cluster.stop(owner).await;

    let url = format!("{}/metrics", cluster.node(via).http_url());
    // The drained node announced `left`, then went quiet. First both remaining nodes must see
    // it not live (until then even a gauge that called every non-live member dead reads
    // left 1, dead 0); then it must count as left, not dead: no page for a planned scale-in.
    let gone = format!("node-{owner}");
    eventually(Duration::from_secs(30), || async {
        let mut not_live = true;
        for index in (0..3).filter(|index| *index != owner) {
            let Ok(report) = cluster.admin(index).admin_cluster(None).await else {
                return false;
            };
            not_live &= report
                .members
                .iter()
                .any(|member| member.node_id == gone && !member.live && member.state == "left");
        }
        not_live
    })
    .await;
    eventually(Duration::from_secs(30), || async {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let members = |state: &str| {
            let series = format!("listwire_cluster_members{{state=\"{state}\"}} ");
            text.lines()
                .find_map(|line| line.strip_prefix(&series))
                .and_then(|value| value.parse::<f64>().ok())
        };
        members("left") == Some(1.0) && members("dead") == Some(0.0)
    })
    .await;
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    for (name, counted) in CLUSTER_METRICS {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} is described"
        );
        let total = sample_total(&text, name);
        assert!(total.is_some(), "{name} is on /metrics");
        if counted {
            assert!(total > Some(0.0), "{name} counted the activity: {total:?}");
        }
    }
}

/// Dials `node` at `addr` claiming to be a cluster member but holding another secret: the
/// node refuses the handshake (and counts it).
async fn dial_with_wrong_secret(node: &str, addr: &str) {
    let secret = ClusterSecret::new(b"not-the-test-cluster-secret".to_vec()).unwrap();
    let config = TransportConfig::new(
        "listwire",
        NodeId::new("intruder").unwrap(),
        secret,
        PROTOCOL_VERSION,
    );
    let client = listwire_cluster::transport::Client::new(config, Arc::new(TcpConnector)).unwrap();
    let peer = client.peer(&NodeId::new(node).unwrap(), addr);
    let answer = peer
        .request(Bytes::from_static(b"hello"), Duration::from_secs(2))
        .await;
    assert!(answer.is_err(), "a wrong secret is refused");
    client.shutdown();
}

/// Dials an address nobody listens on (a port just released): the dial fails (and counts).
async fn dial_nothing() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let secret = ClusterSecret::new(crate::support::cluster::CLUSTER_SECRET.as_bytes().to_vec());
    let config = TransportConfig::new(
        "listwire",
        NodeId::new("dialler").unwrap(),
        secret.unwrap(),
        PROTOCOL_VERSION,
    );
    let client = listwire_cluster::transport::Client::new(config, Arc::new(TcpConnector)).unwrap();
    let peer = client.peer(&NodeId::new("nobody").unwrap(), &addr);
    let connected = peer.wait_connected(Duration::from_millis(500)).await;
    assert!(connected.is_err(), "nothing listens there");
    client.shutdown();
}

/// The sum of every sample of metric `name` (a histogram or summary by its `_count`); `None`
/// when it has no sample at all.
fn sample_total(text: &str, name: &str) -> Option<f64> {
    let count = format!("{name}_count");
    let mut total = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric = series.split('{').next().unwrap_or(series);
        if metric == name || metric == count {
            let value: f64 = value.parse().unwrap_or(0.0);
            *total.get_or_insert(0.0) += value;
        }
    }
    total
}
