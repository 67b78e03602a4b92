//! `listwire dev-cluster`: a first look at a cluster on one machine. N full nodes (host and
//! gateway, each with its own client, gossip and internode ports) run in this process over
//! ONE embedded store, opened once and closed once; they share one cluster secret, JWT secret
//! and admin token, generated on first start and kept in the data directory so a restart finds
//! the same cluster, accounts and lists. Every node but the first is seeded with the first.
//!
//! A node stopped by an admin call (`POST /v1/admin/stop`) drains and stops alone, and its
//! lists move to the others; Ctrl-C (or SIGTERM) stops every node, each draining first.
//!
//! It is not a deployment: the process is one failure domain and the store lives in it. Real
//! clusters run `listwire serve` on each machine over PostgreSQL or ScyllaDB (README).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures_util::future::{join_all, select_all};
use tokio::time::Instant;

use crate::config::{LogFormat, ServeArgs};
use crate::secret;
use crate::server::{self, RunningNode, Stores};

/// Most nodes: their ports are the base ports + index, and 7280 + 9 must stay below 7290.
pub const NODES_MAX: u16 = 9;
/// How long to wait for every node to see every other serving before printing anyway.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(15);

/// `listwire dev-cluster` settings.
#[derive(Debug, Clone, Args)]
pub struct DevClusterArgs {
    /// How many nodes to run (1 to 9).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=i64::from(NODES_MAX)))]
    pub nodes: u16,
    /// Directory of the shared embedded store and the generated secrets.
    #[arg(long, default_value = "./listwire-dev-cluster")]
    pub data_dir: PathBuf,
    /// Client (HTTP + WebSocket) port of node 0; node i uses this + i. 0: free ports.
    #[arg(long, default_value_t = 7070)]
    pub client_port: u16,
    /// Gossip (UDP) port of node 0; node i uses this + i. 0: free ports.
    #[arg(long, default_value_t = 7280)]
    pub gossip_port: u16,
    /// Internode (TCP) port of node 0; node i uses this + i. 0: free ports.
    #[arg(long, default_value_t = 7290)]
    pub internode_port: u16,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, per-module levels).
    #[arg(long, env = "LISTWIRE_LOG", default_value = crate::telemetry::DEFAULT_LOG_FILTER)]
    pub log: String,
    /// More `listwire serve` flags for every node, after `--` (for example `-- --no-fsync`);
    /// not the ones dev-cluster sets itself (addresses, ids, secrets, seeds).
    #[arg(last = true)]
    pub serve_flags: Vec<String>,
}

/// The secrets every node shares, kept in the data directory.
struct Secrets {
    cluster: String,
    jwt: String,
    admin_token: String,
}

impl Secrets {
    fn load_or_create(dir: &Path) -> anyhow::Result<Secrets> {
        let read = |name: &str| -> anyhow::Result<String> {
            let bytes = secret::load_or_create(&dir.join(name))?;
            String::from_utf8(bytes).with_context(|| format!("{name} is not text"))
        };
        Ok(Secrets {
            cluster: read("cluster-secret")?,
            jwt: read("jwt-secret")?,
            admin_token: read("admin-token")?,
        })
    }
}

/// Runs the nodes until `shutdown` resolves (then stops each, draining) or every node has
/// been stopped by an admin call; closes the shared store at the end.
pub async fn run(
    args: DevClusterArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let secrets = Secrets::load_or_create(&args.data_dir)?;
    let mut store_flags = vec!["--data-dir".to_owned(), args.data_dir.display().to_string()];
    store_flags.extend(args.serve_flags.iter().cloned());
    let store_args = ServeArgs::from_flags(store_flags).context("the flags after --")?;
    store_args.validate().map_err(anyhow::Error::msg)?;
    let stores = server::open_stores(&store_args).await?;
    let ran = run_nodes(&args, &secrets, stores.clone(), shutdown).await;
    let closed = stores.0.close().await.context("closing the store");
    ran?;
    closed?;
    println!("every node stopped; the store is closed");
    Ok(())
}

async fn run_nodes(
    args: &DevClusterArgs,
    secrets: &Secrets,
    stores: Stores,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut nodes: Vec<Option<RunningNode>> = Vec::new();
    let mut seed = None;
    for index in 0..args.nodes {
        let started = match node_flags(args, secrets, index, seed.as_deref()) {
            Ok(flags) => server::start_with(flags, Some(stores.clone())).await,
            Err(error) => Err(error),
        };
        let node = match started {
            Ok(node) => node,
            Err(error) => {
                stop_all(nodes).await;
                return Err(error.context(format!("starting node-{index}")));
            }
        };
        if let Some(cluster) = &node.cluster {
            seed.get_or_insert_with(|| cluster.gossip_addr().to_string());
        }
        nodes.push(Some(node));
    }
    wait_converged(&nodes, usize::from(args.nodes)).await;
    print_banner(args, secrets, &nodes);
    supervise(nodes, shutdown).await
}

/// The `serve` flags of node `index`, seeded with node 0's gossip address.
fn node_flags(
    args: &DevClusterArgs,
    secrets: &Secrets,
    index: u16,
    seed: Option<&str>,
) -> anyhow::Result<ServeArgs> {
    let port = |base: u16| -> anyhow::Result<u16> {
        if base == 0 {
            return Ok(0);
        }
        base.checked_add(index)
            .with_context(|| format!("port {base} + {index} is out of range"))
    };
    let mut flags = args.serve_flags.clone();
    let settings = [
        ("--listen", format!("127.0.0.1:{}", port(args.client_port)?)),
        ("--data-dir", args.data_dir.display().to_string()),
        ("--node-id", format!("node-{index}")),
        (
            "--gossip-listen",
            format!("127.0.0.1:{}", port(args.gossip_port)?),
        ),
        (
            "--internode-listen",
            format!("127.0.0.1:{}", port(args.internode_port)?),
        ),
        ("--cluster-secret", secrets.cluster.clone()),
        ("--jwt-secret", secrets.jwt.clone()),
        ("--admin-token", secrets.admin_token.clone()),
    ];
    for (flag, value) in settings {
        flags.extend([flag.to_owned(), value]);
    }
    if let Some(seed) = seed {
        flags.extend(["--seed".to_owned(), seed.to_owned()]);
    }
    ServeArgs::from_flags(flags).with_context(|| format!("the settings of node-{index}"))
}

/// Waits (bounded) until every node sees `count` serving hosts, so the banner's cluster is
/// whole; a slow gossip only delays the banner, it does not stop the cluster.
async fn wait_converged(nodes: &[Option<RunningNode>], count: usize) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let converged = || {
        nodes.iter().flatten().all(|node| {
            node.cluster.as_ref().is_some_and(|cluster| {
                let picture = cluster.state().picture();
                picture.view.serving_hosts().len() == count && picture.has_majority()
            })
        })
    };
    while !converged() {
        if Instant::now() >= deadline {
            tracing::warn!(nodes = count, "the nodes do not all see each other yet");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn print_banner(args: &DevClusterArgs, secrets: &Secrets, nodes: &[Option<RunningNode>]) {
    let data_dir = args.data_dir.display();
    println!(
        "listwire dev-cluster: {} nodes in one process over one embedded store in {data_dir}/store",
        nodes.len()
    );
    for (index, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        let Some(cluster) = &node.cluster else {
            continue;
        };
        println!(
            "node-{index}  {}  gossip {}  internode {}",
            node.http_url(),
            cluster.gossip_addr(),
            cluster.internode_addr()
        );
    }
    let token = &secrets.admin_token;
    let url = |index: usize| {
        nodes
            .get(index)
            .and_then(Option::as_ref)
            .map(RunningNode::http_url)
            .unwrap_or_default()
    };
    let other = url(nodes.len().saturating_sub(1));
    println!(
        "admin token: {token} (kept in {data_dir}/admin-token, beside the cluster and JWT secrets)"
    );
    println!();
    println!("export LISTWIRE_ADMIN_TOKEN={token}");
    println!("watch the cluster:  listwire status --url {}", url(0));
    println!(
        "owner of a list:    listwire status --url {} --list <list id>",
        url(0)
    );
    println!(
        "stop one node:      curl -X POST -H \"authorization: Bearer $LISTWIRE_ADMIN_TOKEN\" {other}/v1/admin/stop"
    );
    println!("                    (it drains: its lists move to the others)");
    println!(
        "use it:             listwire --server {} register alice --password 'correct horse battery'",
        url(0)
    );
    println!("Ctrl-C stops every node, each draining first.");
}

/// Reports nodes as admin calls stop them, until `shutdown` or until none is left; then
/// stops the rest (each drains).
async fn supervise(
    mut nodes: Vec<Option<RunningNode>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failed = 0;
    loop {
        let waits: Vec<_> = nodes
            .iter()
            .enumerate()
            .filter_map(|(index, node)| {
                let node = node.as_ref()?;
                Some(Box::pin(async move {
                    node.stopped().await;
                    index
                }))
            })
            .collect();
        if waits.is_empty() {
            break;
        }
        let stopped = tokio::select! {
            () = &mut shutdown => None,
            (index, _, _) = select_all(waits) => Some(index),
        };
        let Some(index) = stopped else { break };
        if let Some(node) = nodes[index].take() {
            match node.stop().await {
                Ok(()) => println!("node-{index} stopped"),
                Err(error) => {
                    failed += 1;
                    println!("node-{index} stopped with an error: {error:#}");
                }
            }
        }
    }
    let running = nodes.iter().flatten().count();
    if running > 0 {
        println!("stopping {running} nodes (each drains first)");
    }
    failed += stop_all(nodes).await;
    anyhow::ensure!(failed == 0, "{failed} nodes did not stop cleanly");
    Ok(())
}

/// Stops every running node at once; returns how many failed.
async fn stop_all(nodes: Vec<Option<RunningNode>>) -> usize {
    let stops = nodes.into_iter().flatten().map(RunningNode::stop);
    let mut failed = 0;
    for result in join_all(stops).await {
        if let Err(error) = result {
            tracing::error!(error = %format!("{error:#}"), "a node did not stop cleanly");
            failed += 1;
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: &[&str]) -> DevClusterArgs {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: DevClusterArgs,
        }
        use clap::Parser;
        let mut all = vec!["dev-cluster"];
        all.extend_from_slice(flags);
        Wrapper::try_parse_from(all)
            .map(|wrapper| wrapper.args)
            .unwrap()
    }

    fn secrets() -> Secrets {
        Secrets {
            cluster: "c".repeat(32),
            jwt: "j".repeat(64),
            admin_token: "a".repeat(32),
        }
    }

    /// Goal: node i listens on the base ports + i, is named node-i, carries the shared
    /// secrets and the seed, and port 0 stays 0 (free ports) for every node.
    #[test]
    fn nodes_get_their_own_ports_and_the_shared_secrets() {
        let node = node_flags(&args(&[]), &secrets(), 2, Some("127.0.0.1:7280")).unwrap();
        assert_eq!(node.listen.to_string(), "127.0.0.1:7072");
        assert_eq!(node.cluster.gossip_listen.to_string(), "127.0.0.1:7282");
        assert_eq!(node.cluster.internode_listen.to_string(), "127.0.0.1:7292");
        assert_eq!(node.cluster.node_id.as_deref(), Some("node-2"));
        assert_eq!(node.cluster.seeds, ["127.0.0.1:7280"]);
        assert_eq!(node.admin_token, Some("a".repeat(32)));
        assert_eq!(node.validate(), Ok(()));
        let free = args(&[
            "--client-port",
            "0",
            "--gossip-port",
            "0",
            "--internode-port",
            "0",
        ]);
        let node = node_flags(&free, &secrets(), 3, None).unwrap();
        assert_eq!(node.listen.port(), 0);
        assert_eq!(node.cluster.gossip_listen.port(), 0);
        assert!(node.cluster.seeds.is_empty());
        let passed = args(&["--", "--no-fsync", "--snapshot-every", "7"]);
        let node = node_flags(&passed, &secrets(), 0, None).unwrap();
        assert!(node.no_fsync);
        assert_eq!(node.snapshot_every, 7);
        let overflow = args(&["--client-port", "65535"]);
        assert!(node_flags(&overflow, &secrets(), 1, None).is_err());
    }

    /// Goal: the node count is limited to 1..=9 when the flags are read.
    #[test]
    fn the_node_count_is_bounded() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: DevClusterArgs,
        }
        for refused in ["0", "10"] {
            assert!(Wrapper::try_parse_from(["dev-cluster", "--nodes", refused]).is_err());
        }
        assert_eq!(args(&["--nodes", "9"]).nodes, 9);
        assert_eq!(args(&[]).nodes, 3);
    }
}
