//! One simulated node: the real `ClusterNode` (host, list actors, membership, placement,
//! router, internode transport, settle, follows) inside a turmoil host, reached by simulated
//! clients through a channel to its gateway seam (`listwire_gateway::Router`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use listwire::clock::{Clock, MonotonicClock};
use listwire::cluster::{ClusterArgs, ClusterIo, ClusterNode};
use listwire::host::HostConfig;
use listwire_gateway::{EdgeError, FrameSink, OpOutcome, Principal, Reply, Router};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::net::{SimConnector, SimListener, TicketDesk, TicketTransport};
use super::node_store::NodeStore;
use super::store::FaultyStore;
use super::trace::Trace;

/// Gossip (UDP) port of every simulated node.
pub const GOSSIP_PORT: u16 = 7280;
/// Internode (TCP) port of every simulated node.
pub const INTERNODE_PORT: u16 = 7281;
/// The cluster's gossip interval.
pub const GOSSIP_INTERVAL_MS: u64 = 200;
/// How long a node lets an op take (the edge op timeout).
pub const OP_TIMEOUT: Duration = Duration::from_secs(8);
const SECRET: &str = "simulated-cluster-secret-0123456789";

/// What a client asks of a node's gateway.
pub enum Request {
    /// `Router::submit`.
    Submit {
        /// Who.
        principal: Principal,
        /// Which list.
        list: Uuid,
        /// The op's id.
        op_id: Uuid,
        /// The op's JSON.
        op: String,
        /// Where the outcome goes.
        outcome: oneshot::Sender<OpOutcome>,
    },
    /// `Router::subscribe`.
    Subscribe {
        /// Who.
        principal: Principal,
        /// Which list.
        list: Uuid,
        /// Resume after this seq.
        since: Option<u64>,
        /// The connection's queue.
        sink: FrameSink,
        /// Whether it worked.
        done: oneshot::Sender<Result<(), EdgeError>>,
    },
    /// `Router::create_list`.
    Create {
        /// Who.
        principal: Principal,
        /// The body.
        body: String,
        /// The list id.
        done: oneshot::Sender<Result<Uuid, EdgeError>>,
    },
    /// `Router::snapshot`.
    Snapshot {
        /// Who.
        principal: Principal,
        /// Which list.
        list: Uuid,
        /// The state JSON.
        done: oneshot::Sender<Result<bytes::Bytes, EdgeError>>,
    },
    /// Drain the node, then stop it (SIGTERM).
    Drain,
}

/// The nodes as clients see them: a request channel per running node.
#[derive(Clone, Default)]
pub struct Gateways {
    slots: Arc<Mutex<Vec<Option<Running>>>>,
    /// Each process's connection token, kept while it drains (out of `slots`, so it takes no
    /// new request) until the process ends, however it ends.
    closers: Arc<Mutex<Vec<Option<CancellationToken>>>>,
}

/// A running node.
#[derive(Clone)]
pub struct Running {
    /// Its request channel.
    pub tx: mpsc::UnboundedSender<Request>,
    /// The node (for the bounds checker's gauges).
    pub node: Arc<ClusterNode>,
    /// Cancelled when the process ends: its clients' connections close.
    pub closed: CancellationToken,
    /// Every node's pause state ([`RUNNING`] when running), and this node's index in it.
    pub frozen: (Arc<Vec<AtomicI64>>, usize),
}

impl Running {
    /// Whether the node is paused now (a stopped process: it takes and answers nothing).
    pub fn is_paused(&self) -> bool {
        let (frozen, index) = &self.frozen;
        frozen[*index].load(Ordering::SeqCst) != RUNNING
    }
}

impl Gateways {
    /// `count` empty slots.
    pub fn new(count: usize) -> Gateways {
        Gateways {
            slots: Arc::new(Mutex::new(vec![None; count])),
            closers: Arc::new(Mutex::new(vec![None; count])),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Option<Running>>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The node at `index`, if it runs.
    pub fn get(&self, index: usize) -> Option<Running> {
        self.lock().get(index).cloned().flatten()
    }

    /// Takes node `index` out of reach of new requests (a crash, a drain starting).
    pub fn take(&self, index: usize) -> Option<Running> {
        self.lock().get_mut(index).and_then(Option::take)
    }

    /// Node `index`'s process ended (crashed, or restarted mid-drain): its connections close,
    /// those of requests it took while draining included.
    pub fn close(&self, index: usize) {
        self.take(index);
        let closer = self.closers_lock().get_mut(index).and_then(Option::take);
        if let Some(closed) = closer {
            closed.cancel();
        }
    }

    fn set(&self, index: usize, running: Running) {
        if let Some(closer) = self.closers_lock().get_mut(index) {
            *closer = Some(running.closed.clone());
        }
        if let Some(slot) = self.lock().get_mut(index) {
            *slot = Some(running);
        }
    }

    fn closers_lock(&self) -> MutexGuard<'_, Vec<Option<CancellationToken>>> {
        self.closers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many slots.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What every node of one simulation shares.
#[derive(Clone)]
pub struct World {
    /// The shared store.
    pub store: Arc<FaultyStore>,
    /// The gossip envelopes in flight.
    pub desk: TicketDesk,
    /// The nodes' request channels.
    pub gateways: Gateways,
    /// Each node's wall-clock error in ms (clock steps).
    pub clock_offsets: Arc<Vec<AtomicI64>>,
    /// Each node's pause: the wall time (ms) its clock froze at, or [`RUNNING`].
    pub frozen: Arc<Vec<AtomicI64>>,
    /// Each node's data directory (its gossip generation and known hosts).
    pub dirs: Arc<Vec<PathBuf>>,
    /// The run's trace.
    pub trace: Trace,
    /// The run's seed.
    pub seed: u64,
    /// Nodes whose process has exited after a drain (the driver then crashes the host).
    pub exited: Arc<Vec<AtomicBool>>,
}

/// The turmoil host name of node `index`.
pub fn host_name(index: usize) -> String {
    format!("n{index}")
}

/// The value of [`World::frozen`] for a node that is not paused.
pub const RUNNING: i64 = i64::MIN;

/// A node's wall clock: simulated time since the epoch plus its step; it stands still while
/// the node is paused, so on waking the node sees the whole pause at once (as a process
/// stopped by SIGSTOP does).
#[derive(Debug)]
struct SimWall {
    offsets: Arc<Vec<AtomicI64>>,
    frozen: Arc<Vec<AtomicI64>>,
    index: usize,
}

impl Clock for SimWall {
    fn now_ms(&self) -> u64 {
        let frozen = self.frozen[self.index].load(Ordering::SeqCst);
        if frozen != RUNNING {
            return u64::try_from(frozen).unwrap_or(0);
        }
        u64::try_from(wall_ms(&self.offsets, self.index)).unwrap_or(0)
    }
}

/// Node `index`'s wall time now, in ms (simulated time plus its step).
pub fn wall_ms(offsets: &[AtomicI64], index: usize) -> i64 {
    let base = turmoil::since_epoch().unwrap_or_default().as_millis() as i64;
    base.saturating_add(offsets[index].load(Ordering::SeqCst))
}

fn cluster_args(index: usize, count: usize) -> ClusterArgs {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let seeds = (0..count)
        .filter(|other| *other != index)
        .map(|other| SocketAddr::new(turmoil::lookup(host_name(other)), GOSSIP_PORT).to_string())
        .collect();
    ClusterArgs {
        cluster_secret: Some(SECRET.into()),
        node_id: Some(format!("node-{index}")),
        cluster_id: "listwire-sim".into(),
        gossip_listen: SocketAddr::new(any, GOSSIP_PORT),
        gossip_advertise: Some(SocketAddr::new(
            turmoil::lookup(host_name(index)),
            GOSSIP_PORT,
        )),
        internode_listen: SocketAddr::new(any, INTERNODE_PORT),
        internode_advertise: Some(format!("{}:{INTERNODE_PORT}", host_name(index))),
        client_advertise: Some(format!("{}:8080", host_name(index))),
        seeds,
        roles: vec!["host".into(), "gateway".into()],
        gossip_interval_ms: GOSSIP_INTERVAL_MS,
        phi_threshold: 8.0,
        dead_node_grace_secs: 3600,
        drain_timeout_secs: 10,
    }
}

/// Runs node `index` until it is crashed or drained: the turmoil host's software.
pub async fn run_node(world: World, index: usize) -> turmoil::Result {
    let count = world.gateways.len();
    let args = cluster_args(index, count);
    let wall = Arc::new(SimWall {
        offsets: world.clock_offsets.clone(),
        frozen: world.frozen.clone(),
        index,
    });
    let wall_now = wall.now_ms();
    let host_config = HostConfig {
        snapshot_every: 25,
        passivate_after: Duration::from_secs(20),
        activation_timeout: Duration::from_secs(5),
        request_timeout: OP_TIMEOUT,
        clock: Arc::new(MonotonicClock::starting_at(wall_now)),
        ..HostConfig::default()
    };
    let listener = SimListener::bind(args.internode_listen).await?;
    let io = ClusterIo {
        connector: Arc::new(SimConnector),
        listener: Some(Box::new(listener)),
        gossip: Arc::new(TicketTransport::new(world.desk.clone())),
        wall,
        jitter_seed: Some(world.seed ^ index as u64),
    };
    let client_addr = SocketAddr::new(turmoil::lookup(host_name(index)), 8080);
    let stores = (
        Arc::new(NodeStore::new(
            world.store.clone(),
            world.frozen.clone(),
            index,
        )) as Arc<dyn listwire_storage::EventStore>,
        world.store.inner.clone() as Arc<dyn listwire_storage::AccountStore>,
    );
    let dir = world.dirs[index].clone();
    let node = ClusterNode::start(
        &args,
        stores,
        host_config,
        client_addr,
        OP_TIMEOUT,
        &dir,
        io,
    )
    .await
    .map_err(|error| format!("node {index} failed to start: {error:#}"))?;
    node.serve().await.map_err(|error| format!("{error:#}"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let closed = CancellationToken::new();
    world.gateways.set(
        index,
        Running {
            tx,
            node: node.clone(),
            closed: closed.clone(),
            frozen: (world.frozen.clone(), index),
        },
    );
    world.trace.record(format!("node {index} started"));
    let mut in_flight = serve_requests(&node, rx, (&world.frozen, index)).await;
    world.gateways.take(index);
    node.drain().await;
    node.stop().await;
    in_flight.abort_all();
    while in_flight.join_next().await.is_some() {}
    world
        .trace
        .record(format!("node {index} drained and stopped"));
    // The process exits: its connections close, and the driver crashes this host, which
    // cancels every task still waiting (turmoil stops polling a host whose software
    // returned, freezing its tasks).
    closed.cancel();
    world.exited[index].store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
    Ok(())
}

/// Answers client requests until a drain is asked for; returns the requests still running.
async fn serve_requests(
    node: &Arc<ClusterNode>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    (frozen, index): (&[AtomicI64], usize),
) -> JoinSet<()> {
    let mut in_flight = JoinSet::new();
    while let Some(request) = rx.recv().await {
        // A paused node takes no new request until it wakes.
        while frozen[index].load(Ordering::SeqCst) != RUNNING {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while in_flight.try_join_next().is_some() {}
        if matches!(request, Request::Drain) {
            break;
        }
        let router = node.router();
        in_flight.spawn(async move { handle(router, request).await });
    }
    in_flight
}

async fn handle(router: impl Router, request: Request) {
    match request {
        Request::Submit {
            principal,
            list,
            op_id,
            op,
            outcome,
        } => {
            let reply = Reply::new(move |result| {
                let _ = outcome.send(result);
            });
            router.submit(&principal, list, op_id, raw(op), reply).await;
        }
        Request::Subscribe {
            principal,
            list,
            since,
            sink,
            done,
        } => {
            let _ = done.send(router.subscribe(&principal, list, since, sink).await);
        }
        Request::Create {
            principal,
            body,
            done,
        } => {
            let _ = done.send(router.create_list(&principal, raw(body)).await);
        }
        Request::Snapshot {
            principal,
            list,
            done,
        } => {
            let _ = done.send(router.snapshot(&principal, list).await);
        }
        Request::Drain => {}
    }
}

fn raw(json: String) -> Box<RawValue> {
    RawValue::from_string(json).unwrap_or_else(|_| {
        RawValue::from_string("{}".into()).unwrap_or_else(|_| unreachable!("{{}} is JSON"))
    })
}
