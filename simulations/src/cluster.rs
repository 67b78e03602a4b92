//! A cluster the bench starts itself: N real `listwire serve` processes on loopback sharing
//! one PostgreSQL database, in a schema of their own that is dropped when the target stops.
//!
//! Ports: HTTP and internode listeners bind port 0 (the node prints its HTTP URL); gossip ports
//! are chosen up front by binding free UDP sockets and releasing them, because every node's
//! `--seed` must name the others before they start. Node ids are `node-<index>`, so the bench
//! computes placement as the nodes do. Every node gets the same JWT secret (identities are
//! minted with it) and cluster secret. Readiness is read from each node's `/metrics`: the
//! cluster is ready when every node sees all N nodes serving and a majority.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;
use uuid::Uuid;

use crate::process::spawn_and_read_url;
use crate::report::progress;
use crate::target::{random_secret, Cleanup, Endpoint, Target, BENCH_NODE_FLAGS};

/// The gauge of serving hosts in a node's view (from `listwire-cluster`).
pub const SERVING_HOSTS_GAUGE: &str = "listwire_cluster_serving_hosts";
/// The gauge that is 1 while a node sees a majority.
const HAS_MAJORITY_GAUGE: &str = "listwire_cluster_has_majority";
/// How long a started cluster may take to agree that every node serves.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

/// What cluster to start.
pub struct ClusterSpec<'a> {
    /// The `listwire` binary.
    pub binary: &'a Path,
    /// How many nodes.
    pub nodes: usize,
    /// The shared database (a `postgres://` URL or libpq string).
    pub postgres_url: &'a str,
    /// Extra flags for every node.
    pub extra: &'a [String],
}

/// Starts the cluster of `spec` and returns once every node sees all of them serving.
///
/// Spawn this from a thread that outlives the cluster (see
/// [`spawn_and_read_url`](crate::process::spawn_and_read_url)).
pub async fn spawn_cluster(spec: &ClusterSpec<'_>) -> anyhow::Result<Target> {
    anyhow::ensure!(spec.nodes >= 1, "a cluster needs at least one node");
    let dir = tempfile::tempdir()?;
    let schema = format!("bench_{}", Uuid::new_v4().simple());
    let jwt_secret = random_secret();
    let nodes = match start_nodes(spec, dir.path(), &schema, &jwt_secret) {
        Ok(nodes) => nodes,
        Err(error) => {
            // The nodes started so far were stopped when their guards dropped.
            drop_schema(spec.postgres_url.to_owned(), schema).await;
            return Err(error);
        }
    };
    let cleanup: Cleanup = Box::pin(drop_schema(spec.postgres_url.to_owned(), schema.clone()));
    let target = Target::with(
        nodes,
        Some(jwt_secret.as_bytes()),
        None,
        Some(cleanup),
        Some(dir),
    );
    let started = Instant::now();
    if let Err(error) = wait_converged(&target).await {
        target.shutdown().await?;
        return Err(error);
    }
    progress(format_args!(
        "cluster: {} nodes serving (schema {schema}) after {:.1} s",
        spec.nodes,
        started.elapsed().as_secs_f64()
    ));
    Ok(target)
}

/// Spawns the nodes one after another (each prints its URL once it has joined the gossip).
fn start_nodes(
    spec: &ClusterSpec<'_>,
    dir: &Path,
    schema: &str,
    jwt_secret: &str,
) -> anyhow::Result<Vec<Endpoint>> {
    let cluster_secret = random_secret();
    let gossip_ports = free_udp_ports(spec.nodes)?;
    let mut nodes = Vec::with_capacity(spec.nodes);
    for (index, port) in gossip_ports.iter().enumerate() {
        let node_dir = dir.join(format!("node-{index}"));
        std::fs::create_dir_all(&node_dir)?;
        let mut command = Command::new(spec.binary);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--jwt-secret", jwt_secret])
            .arg("--data-dir")
            .arg(&node_dir)
            .args(["--store", "postgres", "--postgres-url", spec.postgres_url])
            .args(["--postgres-schema", schema])
            .args(["--cluster-secret", &cluster_secret])
            .args(["--node-id", &format!("node-{index}")])
            .args(["--gossip-listen", &format!("127.0.0.1:{port}")])
            .args(["--internode-listen", "127.0.0.1:0"]);
        for (other, seed_port) in gossip_ports.iter().enumerate() {
            if other != index {
                command.args(["--seed", &format!("127.0.0.1:{seed_port}")]);
            }
        }
        command.args(BENCH_NODE_FLAGS).args(spec.extra);
        let (child, url) = spawn_and_read_url(command)
            .with_context(|| format!("starting cluster node {index}"))?;
        nodes.push(Endpoint::new(url, format!("node-{index}"), Some(child)));
    }
    Ok(nodes)
}

/// `count` distinct free UDP ports on loopback (held together while chosen, so distinct).
fn free_udp_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        sockets.push(std::net::UdpSocket::bind("127.0.0.1:0").context("a free gossip port")?);
    }
    sockets
        .iter()
        .map(|socket| Ok(socket.local_addr()?.port()))
        .collect()
}

/// Waits until every node sees every node serving, and a majority.
async fn wait_converged(target: &Target) -> anyhow::Result<()> {
    let client = metrics_client();
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let expected = target.node_count() as f64;
    for node in 0..target.node_count() {
        loop {
            let text = metrics_text(&client, target.http_url_of(node)).await;
            let serving = text.as_deref().and_then(|t| gauge(t, SERVING_HOSTS_GAUGE));
            let majority = text.as_deref().and_then(|t| gauge(t, HAS_MAJORITY_GAUGE));
            if serving == Some(expected) && majority == Some(1.0) {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "node {node} still sees {serving:?} of {expected} nodes serving"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// A client for `/metrics` polls: short timeouts, so a dead node answers `None` quickly.
pub fn metrics_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default()
}

/// The node's `/metrics` text, or `None` if it does not answer.
pub async fn metrics_text(client: &reqwest::Client, http: &str) -> Option<String> {
    let response = client.get(format!("{http}/metrics")).send().await.ok()?;
    response.text().await.ok()
}

/// The value of the unlabelled gauge `name` in Prometheus text.
pub fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// Drops the cluster's schema (best effort: a failure is reported, not fatal).
pub(crate) async fn drop_schema(url: String, schema: String) {
    let outcome = async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(connection);
        // `schema` is `bench_` plus hex digits, a valid identifier by construction.
        let dropped = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
        drop(client);
        let _ = driver.await;
        dropped
    }
    .await;
    if let Err(error) = outcome {
        progress(format_args!(
            "cluster: could not drop schema {schema}: {error}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gauges are read by exact name, not by prefix.
    #[test]
    fn reads_unlabelled_gauges() {
        let text = "# TYPE x gauge\nlistwire_cluster_serving_hosts_total 9\n\
                    listwire_cluster_serving_hosts 3\nlistwire_cluster_has_majority 1\n";
        assert_eq!(gauge(text, SERVING_HOSTS_GAUGE), Some(3.0));
        assert_eq!(gauge(text, HAS_MAJORITY_GAUGE), Some(1.0));
        assert_eq!(gauge(text, "missing"), None);
    }

    /// Chosen gossip ports are distinct.
    #[test]
    fn free_ports_are_distinct() {
        let mut ports = free_udp_ports(5).unwrap();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 5);
    }
}
