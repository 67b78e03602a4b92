//! The chaos cluster's node processes: each `listwire serve --store postgres` on a loopback
//! address of its own (gossip, internode and client ports all bound there, chosen free once
//! and kept across restarts, so clients and seeds never change), and what faults do to them:
//! SIGKILL and restart, SIGSTOP and SIGCONT. Resident memory is read from `/proc`.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Error;
use crate::cluster::{gauge, metrics_client, metrics_text, SERVING_HOSTS_GAUGE};
use crate::process::{resident_bytes, spawn_and_read_url_logging, ChildGuard};
use crate::target::BENCH_NODE_FLAGS;

/// Flags every chaos node gets: short gossip rounds and op timeouts keep failure detection
/// (about 2 s) and every bounded wait short.
const CHAOS_NODE_FLAGS: &[&str] = &[
    "--gossip-interval-ms",
    "100",
    "--op-timeout-ms",
    "3000",
    "--postgres-pool-size",
    "4",
    "--drain-timeout-secs",
    "2",
];

/// What every node of one run shares.
pub(crate) struct ClusterConfig {
    pub(crate) binary: PathBuf,
    pub(crate) postgres_url: String,
    pub(crate) schema: String,
    pub(crate) jwt_secret: String,
    pub(crate) cluster_secret: String,
    pub(crate) mutant: Option<String>,
    pub(crate) spawner: Spawner,
    /// Where node data directories and logs go.
    pub(crate) dir: PathBuf,
}

/// One node: where it listens and, while it runs, its process.
pub(crate) struct Node {
    pub(crate) index: usize,
    pub(crate) ip: Ipv4Addr,
    http_port: u16,
    internode_port: u16,
    gossip_port: u16,
    child: Option<ChildGuard>,
    paused: bool,
}

impl Node {
    /// `http://ip:port` of the node's client port.
    pub(crate) fn http_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.http_port)
    }

    /// The WebSocket URL of the node.
    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}:{}/v1/ws", self.ip, self.http_port)
    }

    pub(crate) fn gossip_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.ip), self.gossip_port)
    }

    /// The process id while the node runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildGuard::id)
    }

    /// Resident memory while the node runs.
    pub(crate) fn resident_bytes(&self) -> Option<u64> {
        resident_bytes(self.pid()?).ok()
    }
}

/// The node addresses of a run: `base`, `base + 1`, … (127.0.0.11, 127.0.0.12, … by default).
pub(crate) fn node_ips(base: Ipv4Addr, count: usize) -> Result<Vec<Ipv4Addr>, Error> {
    let first = u32::from(base);
    let mut ips = Vec::with_capacity(count);
    for offset in 0..count as u32 {
        let ip = Ipv4Addr::from(first + offset);
        if !ip.is_loopback() || ip.octets()[3] == 0 || ip.octets()[3] == 255 {
            return Err(Error::Setup(format!(
                "{ip} is not a usable loopback address"
            )));
        }
        if ip == Ipv4Addr::LOCALHOST {
            return Err(Error::Setup(
                "127.0.0.1 is the clients' and the database's address".into(),
            ));
        }
        ips.push(ip);
    }
    Ok(ips)
}

/// Chooses free ports on each address (TCP for HTTP and internode, UDP for gossip).
pub(crate) fn plan_nodes(ips: &[Ipv4Addr]) -> Result<Vec<Node>, Error> {
    let mut nodes = Vec::with_capacity(ips.len());
    for (index, ip) in ips.iter().enumerate() {
        let http = std::net::TcpListener::bind((*ip, 0)).map_err(Error::io("free http port"))?;
        let internode =
            std::net::TcpListener::bind((*ip, 0)).map_err(Error::io("free internode port"))?;
        let gossip = std::net::UdpSocket::bind((*ip, 0)).map_err(Error::io("free gossip port"))?;
        nodes.push(Node {
            index,
            ip: *ip,
            http_port: http.local_addr().map_err(Error::io("port"))?.port(),
            internode_port: internode.local_addr().map_err(Error::io("port"))?.port(),
            gossip_port: gossip.local_addr().map_err(Error::io("port"))?.port(),
            child: None,
            paused: false,
        });
    }
    Ok(nodes)
}

/// The `listwire serve` command of node `index`.
fn serve_command(config: &ClusterConfig, nodes: &[Node], index: usize) -> Command {
    let node = &nodes[index];
    let data_dir = config.dir.join(format!("node-{index}"));
    let mut command = Command::new(&config.binary);
    command
        .arg("serve")
        .args(["--listen", &format!("{}:{}", node.ip, node.http_port)])
        .args(["--jwt-secret", &config.jwt_secret])
        .arg("--data-dir")
        .arg(&data_dir)
        .args([
            "--store",
            "postgres",
            "--postgres-url",
            &config.postgres_url,
        ])
        .args(["--postgres-schema", &config.schema])
        .args(["--cluster-secret", &config.cluster_secret])
        .args(["--node-id", &format!("node-{index}")])
        .args(["--gossip-listen", &node.gossip_addr().to_string()])
        .args([
            "--internode-listen",
            &format!("{}:{}", node.ip, node.internode_port),
        ]);
    for other in nodes.iter().filter(|other| other.index != index) {
        command.args(["--seed", &other.gossip_addr().to_string()]);
    }
    command.args(BENCH_NODE_FLAGS).args(CHAOS_NODE_FLAGS);
    // Anyhow backtraces on every gossip warning (a partition makes many) cost CPU and log.
    command.env("RUST_LIB_BACKTRACE", "0");
    if let Some(mutant) = &config.mutant {
        command.env("LISTWIRE_MUTANT", mutant);
    }
    command
}

/// The log file node `index` writes its stderr to (appended to across restarts).
pub(crate) fn log_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("node-{index}.log"))
}

/// Starts node `index` (it must not be running) and waits until it prints where it listens.
pub(crate) async fn start(
    config: &ClusterConfig,
    nodes: &Mutex<Vec<Node>>,
    index: usize,
) -> Result<(), Error> {
    std::fs::create_dir_all(config.dir.join(format!("node-{index}")))
        .map_err(Error::io("node data directory"))?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(log_path(&config.dir, index))
        .map_err(Error::io("node log"))?;
    let command = serve_command(config, &lock(nodes), index);
    let (child, _url) = config
        .spawner
        .spawn(command, Stdio::from(log))
        .await
        .map_err(|error| Error::Node(index, error))?;
    let mut nodes = lock(nodes);
    nodes[index].child = Some(child);
    nodes[index].paused = false;
    Ok(())
}

/// The nodes, whatever a panicking holder left.
pub(crate) fn lock(nodes: &Mutex<Vec<Node>>) -> MutexGuard<'_, Vec<Node>> {
    nodes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

type SpawnJob = (
    Command,
    Stdio,
    oneshot::Sender<Result<(ChildGuard, String), String>>,
);

/// Spawns node processes from one thread that lives as long as the run: a child is SIGKILLed
/// by the kernel when the thread that spawned it ends (`PR_SET_PDEATHSIG`), so spawning from
/// a runtime thread that may retire would kill a restarted node some seconds later. When the
/// spawner is dropped, its thread ends, and any node still running dies with it.
pub(crate) struct Spawner {
    jobs_tx: std::sync::mpsc::Sender<SpawnJob>,
}

impl Spawner {
    pub(crate) fn new() -> Result<Spawner, Error> {
        let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("chaos-spawner".into())
            .spawn(move || {
                for (command, stderr, answer_tx) in jobs_rx {
                    let spawned = spawn_and_read_url_logging(command, stderr);
                    let _ = answer_tx.send(spawned.map_err(|error| format!("{error:#}")));
                }
            })
            .map_err(Error::io("the spawner thread"))?;
        Ok(Spawner { jobs_tx })
    }

    async fn spawn(&self, command: Command, stderr: Stdio) -> Result<(ChildGuard, String), String> {
        let (answer_tx, answer_rx) = oneshot::channel();
        self.jobs_tx
            .send((command, stderr, answer_tx))
            .map_err(|_| "the spawner thread is gone".to_owned())?;
        answer_rx
            .await
            .map_err(|_| "the spawner thread is gone".to_owned())?
    }
}

/// SIGKILLs node `index` and reaps it.
pub(crate) fn kill(nodes: &mut [Node], index: usize) -> Result<(), Error> {
    if let Some(mut child) = nodes[index].child.take() {
        child
            .kill()
            .map_err(|error| Error::Node(index, format!("{error:#}")))?;
    }
    nodes[index].paused = false;
    Ok(())
}

/// Sends SIGSTOP (`pause`) or SIGCONT to node `index`, if it runs.
pub(crate) fn signal_pause(nodes: &mut [Node], index: usize, pause: bool) {
    let Some(pid) = nodes[index].pid() else {
        return;
    };
    let signal = if pause { libc::SIGSTOP } else { libc::SIGCONT };
    // SAFETY: signalling our own child, which is not reaped while its guard is held.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
    nodes[index].paused = pause;
}

/// Wakes every paused node (before stopping them: a stopped process cannot exit on SIGTERM).
pub(crate) fn resume_all(nodes: &mut [Node]) {
    for index in 0..nodes.len() {
        if nodes[index].paused {
            signal_pause(nodes, index, false);
        }
    }
}

/// Waits until every node sees all of them serving, within `timeout`.
pub(crate) async fn wait_serving(urls: &[String], timeout: Duration) -> Result<(), Error> {
    let client = metrics_client();
    let deadline = Instant::now() + timeout;
    let expected = urls.len() as f64;
    for (index, url) in urls.iter().enumerate() {
        loop {
            let text = metrics_text(&client, url).await;
            let serving = text.as_deref().and_then(|t| gauge(t, SERVING_HOSTS_GAUGE));
            if serving == Some(expected) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Node(
                    index,
                    format!("sees {serving:?} of {expected} nodes serving after {timeout:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Stops every running node at once (SIGCONT first for paused ones), SIGKILL after the grace.
pub(crate) fn stop_all(nodes: &mut [Node]) {
    resume_all(nodes);
    let mut children: Vec<ChildGuard> = nodes
        .iter_mut()
        .filter_map(|node| node.child.take())
        .collect();
    crate::process::stop_all(&mut children, crate::process::STOP_GRACE);
}
