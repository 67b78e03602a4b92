//! What a benchmark runs against — one node, or the nodes of a cluster — and the identities it
//! uses there.
//!
//! A target has one or more nodes. Clients spread over them round-robin by user index
//! ([`Target::client_node`]) unless a scenario places them; which node owns a list is computed
//! the way the nodes compute it, by rendezvous placement over their node ids
//! ([`Target::owner_of`]), so scenarios can create lists on the node they mean.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use listwire::server::RunningNode;
use listwire_cluster::placement::Placement;
use listwire_cluster::NodeId;
use listwire_gateway::{Principal, Tokens};
use uuid::Uuid;

pub use crate::process::{resident_bytes, sibling_binary};
use crate::process::{spawn_and_read_url, stop_all, ChildGuard, STOP_GRACE};

/// Flags every node spawned by the bench gets, so the bench measures the node and not the
/// per-user abuse limits (each simulated user is far busier than a person).
pub const BENCH_NODE_FLAGS: &[&str] = &[
    "--ops-per-second-per-user",
    "10000000",
    "--ops-burst-per-user",
    "10000000",
    "--auth-per-second-per-ip",
    "100000",
    "--auth-burst-per-ip",
    "100000",
    "--connections-max",
    "200000",
    "--connections-per-user-max",
    "200000",
    "--log",
    "warn",
];

/// One node of a target.
pub(crate) struct Endpoint {
    pub(crate) http: String,
    /// Its cluster node id (for placement); a lone node's is its address.
    pub(crate) node_id: String,
    pub(crate) pid: Option<u32>,
    pub(crate) child: Mutex<Option<ChildGuard>>,
}

impl Endpoint {
    pub(crate) fn new(http: String, node_id: String, child: Option<ChildGuard>) -> Self {
        Self {
            http: http.trim_end_matches('/').to_owned(),
            node_id,
            pid: child.as_ref().map(ChildGuard::id),
            child: Mutex::new(child),
        }
    }
}

/// Something a target must undo when it stops, after its processes (e.g. drop a schema).
pub(crate) type Cleanup = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The endpoint under test.
pub struct Target {
    nodes: Vec<Endpoint>,
    tokens: Option<Tokens>,
    salt: u128,
    node: Option<RunningNode>,
    cleanup: Option<Cleanup>,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    /// Nodes that are already running at `urls`, with `secret` their shared JWT secret (from
    /// `<data-dir>/jwt-secret` or `--jwt-secret`), used to mint identities. `node_ids` name
    /// their cluster node ids in the same order, for placement; missing ones default to the
    /// URL's `host:port`, which is a node's default id.
    pub fn remote(urls: &[String], node_ids: &[String], secret: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(!urls.is_empty(), "no --url");
        anyhow::ensure!(node_ids.len() <= urls.len(), "more --node-id than --url");
        let mut nodes = Vec::new();
        for (index, url) in urls.iter().enumerate() {
            let node_id = match node_ids.get(index) {
                Some(id) => id.clone(),
                None => authority(url).with_context(|| format!("--url {url}"))?,
            };
            nodes.push(Endpoint::new(url.clone(), node_id, None));
        }
        Ok(Self::with(nodes, Some(secret), None, None, None))
    }

    /// Starts `listwire serve` from `binary` on a free loopback port with a fresh data
    /// directory and a fresh secret, plus `extra` flags.
    pub fn spawn_node(binary: &Path, extra: &[String]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let secret = random_secret();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--jwt-secret", &secret])
            .arg("--data-dir")
            .arg(dir.path());
        command.args(BENCH_NODE_FLAGS).args(extra);
        let (child, url) = spawn_and_read_url(command)?;
        let node_id = authority(&url)?;
        let nodes = vec![Endpoint::new(url, node_id, Some(child))];
        Ok(Self::with(
            nodes,
            Some(secret.as_bytes()),
            None,
            None,
            Some(dir),
        ))
    }

    /// Starts the reference rebroadcast server from `binary`.
    pub fn spawn_reference(binary: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command.args(["--listen", "127.0.0.1:0"]);
        let (child, url) = spawn_and_read_url(command)?;
        let node_id = authority(&url)?;
        let nodes = vec![Endpoint::new(url, node_id, Some(child))];
        Ok(Self::with(nodes, None, None, None, None))
    }

    /// A node running in this process (tests).
    pub fn in_process(node: RunningNode) -> Self {
        let secret = node.jwt_secret.clone();
        let nodes = vec![Endpoint::new(node.http_url(), node.addr.to_string(), None)];
        Self::with(nodes, Some(&secret), Some(node), None, None)
    }

    pub(crate) fn with(
        nodes: Vec<Endpoint>,
        secret: Option<&[u8]>,
        node: Option<RunningNode>,
        cleanup: Option<Cleanup>,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let tokens = secret.map(|secret| Tokens::new(secret, Duration::from_secs(24 * 3600)));
        Self {
            nodes,
            tokens,
            salt: Uuid::new_v4().as_u128(),
            node,
            cleanup,
            _dir: dir,
        }
    }

    /// Base HTTP URL of the first node.
    pub fn http_url(&self) -> &str {
        self.http_url_of(0)
    }

    /// The WebSocket URL of the first node.
    pub fn ws_url(&self) -> String {
        self.ws_url_of(0)
    }

    /// How many nodes the target has.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Base HTTP URL of node `node`.
    pub fn http_url_of(&self, node: usize) -> &str {
        &self.nodes[node].http
    }

    /// The WebSocket URL of node `node`.
    pub fn ws_url_of(&self, node: usize) -> String {
        format!("{}/v1/ws", self.nodes[node].http.replacen("http", "ws", 1))
    }

    /// The first node's process id, when the bench started it (for memory figures).
    pub fn pid(&self) -> Option<u32> {
        self.pid_of(0)
    }

    /// Node `node`'s process id, when the bench started it.
    pub fn pid_of(&self, node: usize) -> Option<u32> {
        self.nodes[node].pid
    }

    /// The node simulated user `user` connects to unless a scenario places it: round-robin.
    pub fn client_node(&self, user: u64) -> usize {
        (user % self.nodes.len() as u64) as usize
    }

    /// The node that owns `list` while every node serves.
    pub fn owner_of(&self, list: Uuid) -> usize {
        let every: Vec<usize> = (0..self.nodes.len()).collect();
        self.owner_among(list, &every)
    }

    /// The node that owns `list` when only the nodes `serving` serve (e.g. after one died).
    pub fn owner_among(&self, list: Uuid, serving: &[usize]) -> usize {
        let ids = serving
            .iter()
            .filter_map(|node| NodeId::new(self.nodes[*node].node_id.clone()).ok());
        let placement = Placement::new(ids);
        let owner = placement
            .owner(list.as_bytes())
            .map(|id| id.as_str().to_owned());
        serving
            .iter()
            .copied()
            .find(|node| Some(&self.nodes[*node].node_id) == owner.as_ref())
            .unwrap_or(0)
    }

    /// SIGKILLs node `node` (it must be a process the bench started) and reaps it.
    pub fn kill(&self, node: usize) -> anyhow::Result<()> {
        let mut child = self.nodes[node]
            .child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        child
            .as_mut()
            .context("only a node the bench started can be killed")?
            .kill()
    }

    /// Whether this is the reference rebroadcast server (no auth, no lists).
    pub fn is_reference(&self) -> bool {
        self.tokens.is_none()
    }

    /// The id of simulated user `index` (distinct per run).
    pub fn user(&self, index: u64) -> Uuid {
        Uuid::from_u128(self.salt ^ u128::from(index))
    }

    /// A session token for simulated user `index`. The gateway trusts a valid token's subject,
    /// so simulated users need not be registered (argon2 makes registration slow by design).
    pub fn token(&self, index: u64) -> String {
        match &self.tokens {
            Some(tokens) => {
                tokens
                    .mint(&Principal {
                        user_id: self.user(index),
                        username: format!("bench{index}"),
                    })
                    .0
            }
            None => String::from("reference"),
        }
    }

    /// Stops what the bench started (gracefully, every process at once) and waits; then
    /// removes what it created (a cluster's schema).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(node) = self.node.take() {
            node.stop().await?;
        }
        let mut children: Vec<ChildGuard> = self
            .nodes
            .iter()
            .filter_map(|node| {
                node.child
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .take()
            })
            .collect();
        tokio::task::spawn_blocking(move || stop_all(&mut children, STOP_GRACE)).await?;
        if let Some(cleanup) = self.cleanup.take() {
            cleanup.await;
        }
        Ok(())
    }
}

/// 64 random hex digits.
pub(crate) fn random_secret() -> String {
    format!(
        "{:032x}{:032x}",
        Uuid::new_v4().as_u128(),
        Uuid::new_v4().as_u128()
    )
}

/// The `host:port` of an `http://host:port/...` URL.
fn authority(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .context("not an http:// URL")?;
    let authority = rest.split('/').next().unwrap_or_default();
    anyhow::ensure!(!authority.is_empty(), "no host in the URL");
    Ok(authority.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_nodes() -> Target {
        let urls: Vec<String> = (0..3)
            .map(|port| format!("http://127.0.0.1:{}/", 7000 + port))
            .collect();
        Target::remote(&urls, &["a".into(), "b".into()], b"secret").unwrap()
    }

    /// Node ids default to the URL's authority, and placement agrees with the cluster crate.
    #[test]
    fn owners_follow_the_cluster_placement() {
        let target = three_nodes();
        assert_eq!(target.http_url_of(0), "http://127.0.0.1:7000");
        let ids = ["a", "b", "127.0.0.1:7002"].map(|id| NodeId::new(id.to_owned()).unwrap());
        let placement = Placement::new(ids.clone());
        let mut owned = [0usize; 3];
        for index in 0..300u128 {
            let list = Uuid::from_u128(index * 7919 + 1);
            let owner = target.owner_of(list);
            assert_eq!(Some(&ids[owner]), placement.owner(list.as_bytes()));
            owned[owner] += 1;
            // Without node 2, its lists move and nobody else's do.
            let survivor = target.owner_among(list, &[0, 1]);
            assert!(survivor == owner || owner == 2, "list {list} moved");
        }
        assert!(owned.iter().all(|count| *count > 50), "{owned:?}");
    }

    /// Clients spread round-robin over the nodes.
    #[test]
    fn clients_spread_round_robin() {
        let target = three_nodes();
        let nodes: Vec<usize> = (0..6).map(|user| target.client_node(user)).collect();
        assert_eq!(nodes, [0, 1, 2, 0, 1, 2]);
        assert_eq!(target.ws_url_of(2), "ws://127.0.0.1:7002/v1/ws");
    }
}
