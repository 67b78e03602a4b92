//! Clusters of real nodes in one process for integration tests: real UDP gossip and TCP on
//! loopback, ports chosen by the OS, one shared in-memory store (the shared database).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use listwire::config::ServeArgs;
use listwire::server::{start_with, RunningNode, Stores};
use listwire_storage::memory::MemoryStore;
use uuid::Uuid;

use super::{eventually, test_flags};

/// The JWT secret every test cluster node shares.
pub const JWT_SECRET: &str = "test-cluster-jwt-secret-of-32-bytes!!";
/// The cluster secret of every test cluster node (a test dials with another one).
pub const CLUSTER_SECRET: &str = "test-cluster-internode-secret";
/// The admin token of every test cluster node.
pub const ADMIN_TOKEN: &str = "test-cluster-admin-token";

/// Nodes over one shared store; `None` where a node was stopped or crashed.
pub struct TestCluster {
    /// The shared store.
    pub store: Arc<MemoryStore>,
    /// The nodes, by index.
    pub nodes: Vec<Option<RunningNode>>,
    dirs: Vec<tempfile::TempDir>,
    extra: Vec<String>,
}

impl TestCluster {
    /// Starts `count` nodes and waits until each sees all of them serving.
    pub async fn start(count: usize, extra: &[&str]) -> TestCluster {
        let mut cluster = TestCluster {
            store: Arc::new(MemoryStore::new()),
            nodes: Vec::new(),
            dirs: Vec::new(),
            extra: extra.iter().map(|flag| flag.to_string()).collect(),
        };
        for _ in 0..count {
            cluster.add_node().await;
        }
        cluster.wait_serving(count).await;
        cluster
    }

    /// Starts one more node (seeded with the first live node) and returns its index.
    pub async fn add_node(&mut self) -> usize {
        let index = self.nodes.len();
        let dir = tempfile::tempdir().unwrap();
        let mut flags = cluster_flags(dir.path(), &format!("node-{index}"), "127.0.0.1:0");
        flags
            .extend(["--drain-timeout-secs", "10", "--admin-token", ADMIN_TOKEN].map(String::from));
        if let Some(seed) = self.live().next() {
            let gossip = seed.cluster.as_ref().unwrap().gossip_addr();
            flags.extend(["--seed".to_owned(), gossip.to_string()]);
        }
        flags.extend(self.extra.iter().cloned());
        let args = ServeArgs::from_flags(flags).expect("valid cluster flags");
        let stores: Stores = (self.store.clone(), self.store.clone());
        let node = start_with(args, Some(stores)).await.expect("node starts");
        self.nodes.push(Some(node));
        self.dirs.push(dir);
        index
    }

    /// The node at `index`.
    pub fn node(&self, index: usize) -> &RunningNode {
        self.nodes[index].as_ref().expect("node is running")
    }

    /// A client of node `index` holding the admin token, for `/v1/admin/*`.
    pub fn admin(&self, index: usize) -> listwire::client::Client {
        listwire::client::Client::new(&self.node(index).http_url()).with_token(ADMIN_TOKEN)
    }

    /// The running nodes.
    pub fn live(&self) -> impl Iterator<Item = &RunningNode> {
        self.nodes.iter().flatten()
    }

    /// Waits until every running node sees exactly `count` serving hosts.
    pub async fn wait_serving(&self, count: usize) {
        eventually(Duration::from_secs(20), || async {
            self.live().all(|node| {
                let picture = node.cluster.as_ref().unwrap().state().picture();
                picture.view.serving_hosts().len() == count && picture.has_majority()
            })
        })
        .await;
    }

    /// The index of the node that owns `list`, as node `asking` sees it.
    pub fn owner_of(&self, asking: usize, list: Uuid) -> usize {
        let picture = self
            .node(asking)
            .cluster
            .as_ref()
            .unwrap()
            .state()
            .picture();
        let owner = picture.owner(list).expect("an owner").to_string();
        owner
            .strip_prefix("node-")
            .and_then(|index| index.parse().ok())
            .expect("test node ids are node-<index>")
    }

    /// Crashes node `index` (tasks aborted, sockets closed, no handoff).
    pub async fn crash(&mut self, index: usize) {
        let node = self.nodes[index].take().expect("node is running");
        node.crash().await;
    }

    /// Stops node `index` gracefully (drain, then stop).
    pub async fn stop(&mut self, index: usize) {
        let node = self.nodes[index].take().expect("node is running");
        node.stop().await.expect("node stops cleanly");
    }
}

/// The flags of an in-process cluster node `id` on the memory store, gossiping at `gossip`
/// (internode on a free port), with the test secrets; callers add seeds and the rest.
pub fn cluster_flags(dir: &std::path::Path, id: &str, gossip: &str) -> Vec<String> {
    let mut flags = test_flags(dir);
    flags.extend(
        [
            "--store",
            "memory",
            "--jwt-secret",
            JWT_SECRET,
            "--cluster-secret",
            CLUSTER_SECRET,
            "--gossip-listen",
            gossip,
            "--internode-listen",
            "127.0.0.1:0",
            "--node-id",
            id,
        ]
        .map(String::from),
    );
    flags
}

/// A UDP port free now on 127.0.0.1 (for a gossip address chosen before the node starts, or
/// one nobody listens on).
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}
