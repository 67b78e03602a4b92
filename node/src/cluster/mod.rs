//! The node in a cluster: membership, the internode server and client, routing, list follows,
//! handoff and failover, wired over `listwire-cluster` (which knows nothing of lists).
//!
//! Layout: `config` (flags), `state` (the view, placement and majority, and the host's
//! [`crate::host::Ownership`]), `wire` (internode messages), `handler` (the owner's side),
//! `forward` (op batches and requests to owners), `owners` (talking to an owner, here or
//! elsewhere), `follow` (one node subscription per list, fanned out to connections), `router`
//! (the gateway seam), `metrics`, `admin` (this node's half of the admin view). [`ClusterNode`]
//! starts them and runs the view watcher (which hands off lists this node no longer owns) and
//! the pause detector.

mod admin;
pub mod config;
mod follow;
mod forward;
mod handler;
pub mod metrics;
mod owners;
mod router;
pub mod state;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use listwire_cluster::membership::{Membership, MembershipConfig, NodeState, Role, Roles, View};
use listwire_cluster::transport::{
    Client, ClusterSecret, Server, TcpConnector, TcpListener, TransportConfig,
};
use listwire_cluster::NodeId;
use listwire_storage::{AccountStore, EventStore};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clock::system_now_ms;
use crate::host::{Host, HostConfig};
use crate::router::LocalRouter;
pub use config::ClusterArgs;
use follow::Follows;
use forward::Forwarder;
pub use router::ClusterRouter;
use state::ClusterState;

/// The internode protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Items a node subscription may queue at its owner before it is dropped as too slow.
const NODE_QUEUE_ITEMS: usize = 4096;
/// Largest internode frame: a full list's snapshot (10,000 items of 4 KiB) must fit.
const INTERNODE_FRAME_BYTES_MAX: usize = 64 << 20;
/// How often the pause detector looks at the clock.
const PAUSE_TICK: Duration = Duration::from_millis(100);

/// A running cluster member.
pub struct ClusterNode {
    state: Arc<ClusterState>,
    host: Host,
    membership: Mutex<Option<Membership>>,
    server: Mutex<Option<Server>>,
    client: Client,
    follows: Arc<Follows>,
    router: ClusterRouter,
    tasks: Vec<JoinHandle<()>>,
    drain_timeout: Duration,
    gossip_addr: SocketAddr,
    internode_addr: String,
}

impl ClusterNode {
    /// Starts this node's cluster side (as `joining`) over the stores; `client_addr` is where
    /// its clients connect and `op_timeout` how long ops may take. Call
    /// [`ClusterNode::serve`] once the node can serve.
    pub async fn start(
        args: &ClusterArgs,
        stores: (Arc<dyn EventStore>, Arc<dyn AccountStore>),
        host_config: HostConfig,
        client_addr: SocketAddr,
        op_timeout: Duration,
    ) -> anyhow::Result<Arc<ClusterNode>> {
        let secret = args
            .cluster_secret
            .as_deref()
            .context("no cluster secret")?;
        metrics::register();
        let node_id = NodeId::new(
            args.node_id
                .clone()
                .unwrap_or_else(|| client_addr.to_string()),
        )?;
        let state = Arc::new(ClusterState::new(
            node_id.clone(),
            View::new(node_id.clone(), []),
        ));
        let (events, accounts) = stores;
        let host = Host::with_ownership(events, accounts, host_config, state.clone());
        let local = LocalRouter::new(host.clone());

        let mut transport = TransportConfig::new(
            args.cluster_id.clone(),
            node_id.clone(),
            ClusterSecret::new(secret.as_bytes().to_vec())?,
            PROTOCOL_VERSION,
        );
        transport.max_frame_bytes = INTERNODE_FRAME_BYTES_MAX;
        let listener = TcpListener::bind(&args.internode_listen.to_string())
            .await
            .with_context(|| format!("binding internode {}", args.internode_listen))?;
        let handler = handler::InternodeHandler::new(local.clone(), NODE_QUEUE_ITEMS);
        let server = Server::spawn(transport.clone(), listener, handler)?;
        let internode_addr = args
            .internode_advertise
            .clone()
            .unwrap_or_else(|| server.local_addr().to_owned());
        let client = Client::new(transport, Arc::new(TcpConnector))?;

        let forwarder = Forwarder::new(client.clone(), op_timeout);
        let owners = Arc::new(owners::Owners {
            local,
            forwarder: forwarder.clone(),
            state: state.clone(),
            node_queue_items: NODE_QUEUE_ITEMS,
        });
        let follows = Follows::new(owners.clone(), op_timeout);
        let router = ClusterRouter::new(owners, follows.clone(), op_timeout);

        let client_advertise = args
            .client_advertise
            .clone()
            .unwrap_or_else(|| client_addr.to_string());
        let membership_config =
            membership_config(args, node_id, &internode_addr, &client_advertise)?;
        let gossip_addr = membership_config.advertise_addr;
        let membership = Membership::spawn_udp(membership_config).await?;
        state.update(membership.view());
        let tasks = vec![
            tokio::spawn(watch_view(
                membership.watch(),
                state.clone(),
                host.clone(),
                forwarder,
            )),
            tokio::spawn(detect_pauses(host.clone(), 4 * args.gossip_interval())),
        ];
        tracing::info!(node = %state.self_id(), gossip = %args.gossip_listen, internode = %internode_addr, "joined the cluster gossip as joining");
        Ok(Arc::new(ClusterNode {
            state,
            host,
            membership: Mutex::new(Some(membership)),
            server: Mutex::new(Some(server)),
            client,
            follows,
            router,
            tasks,
            drain_timeout: Duration::from_secs(args.drain_timeout_secs),
            gossip_addr,
            internode_addr,
        }))
    }

    /// The gossip address other nodes reach this one at (a seed for them).
    pub fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// The internode address other nodes dial.
    pub fn internode_addr(&self) -> &str {
        &self.internode_addr
    }

    /// The host of this node's lists.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The router the gateway uses.
    pub fn router(&self) -> ClusterRouter {
        self.router.clone()
    }

    /// This node's picture of the cluster.
    pub fn state(&self) -> &Arc<ClusterState> {
        &self.state
    }

    /// How many lists this node follows for its connections.
    pub fn followed_lists(&self) -> usize {
        self.follows.followed()
    }

    /// Announces that this node serves: lists that now map to it will come to it.
    pub async fn serve(&self) -> anyhow::Result<()> {
        self.set_state(NodeState::Serving).await
    }

    /// Drains: announces `draining` (so no list maps here any more), hands off every list and
    /// waits until they are gone, at most the drain timeout. Client connections stay open
    /// meanwhile: their subscriptions follow the lists to their new owners.
    pub async fn drain(&self) {
        if let Err(error) = self.set_state(NodeState::Draining).await {
            tracing::warn!(%error, "could not announce draining");
        }
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            hand_off_unowned(&self.host);
            if self.host.active_lists() == 0 {
                tracing::info!("drained: every list has moved");
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    active = self.host.active_lists(),
                    "drain timeout; stopping with lists still here"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Leaves the cluster (announcing `left` if it drained) and closes internode traffic.
    pub async fn stop(&self) {
        if let Some(membership) = self.membership.lock().await.take() {
            let drained = membership
                .view()
                .self_member()
                .is_some_and(|member| member.state() == NodeState::Draining);
            let result = if drained {
                membership.leave().await
            } else {
                membership.shutdown().await
            };
            if let Err(error) = result {
                tracing::warn!(%error, "leaving the gossip failed");
            }
        }
        if let Some(server) = self.server.lock().await.take() {
            server.shutdown().await;
        }
        self.client.shutdown();
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Stops everything at once, as a crash would: no handoff, no flush, no goodbye. Peers
    /// notice through their failure detectors. For in-process fault injection.
    pub async fn crash(&self) {
        for task in &self.tasks {
            task.abort();
        }
        drop(self.membership.lock().await.take());
        drop(self.server.lock().await.take());
        self.client.shutdown();
        self.host.kill_all().await;
    }

    async fn set_state(&self, state: NodeState) -> anyhow::Result<()> {
        let guard = self.membership.lock().await;
        let membership = guard.as_ref().context("membership stopped")?;
        membership.set_state(state).await?;
        self.state.update(membership.view());
        hand_off_unowned(&self.host);
        Ok(())
    }
}

fn membership_config(
    args: &ClusterArgs,
    node_id: NodeId,
    internode_addr: &str,
    client_addr: &str,
) -> anyhow::Result<MembershipConfig> {
    let listen = free_udp_port_if_zero(args.gossip_listen)?;
    let advertise = args.gossip_advertise.unwrap_or(listen);
    let generation = system_now_ms();
    let mut config = MembershipConfig::new(args.cluster_id.clone(), node_id, generation, advertise);
    config.listen_addr = listen;
    let mut roles = Vec::new();
    for role in &args.roles {
        roles.push(match role.as_str() {
            "host" => Role::Host,
            _ => Role::Gateway,
        });
    }
    config.roles = Roles::of(&roles);
    config.internode_addr = internode_addr.to_owned();
    config.client_addr = client_addr.to_owned();
    config.protocol_version = PROTOCOL_VERSION;
    config.seeds = args.seeds.clone();
    config.gossip_interval = args.gossip_interval();
    config.initial_interval = args.gossip_interval();
    config.phi_threshold = args.phi_threshold;
    config.dead_node_grace_period = Duration::from_secs(args.dead_node_grace_secs);
    Ok(config)
}

/// Chitchat must know its gossip address before it binds; port 0 is resolved by binding a
/// socket to it and releasing it.
fn free_udp_port_if_zero(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let socket = std::net::UdpSocket::bind(addr).context("finding a free gossip port")?;
    Ok(socket.local_addr()?)
}

/// Follows the membership view: installs each new picture, hands off the lists this node no
/// longer owns, and forgets batchers of nodes that are gone.
async fn watch_view(
    mut view_rx: tokio::sync::watch::Receiver<View>,
    state: Arc<ClusterState>,
    host: Host,
    forwarder: Arc<Forwarder>,
) {
    let mut serving = view_rx.borrow().serving_hosts();
    while view_rx.changed().await.is_ok() {
        let view = view_rx.borrow_and_update().clone();
        let now_serving = view.serving_hosts();
        if now_serving != serving {
            ::metrics::counter!(metrics::PLACEMENT_CHANGES_TOTAL).increment(1);
            tracing::info!(serving = ?now_serving.iter().map(|n| n.as_str()).collect::<Vec<_>>(), "placement changed");
            serving = now_serving;
        }
        state.update(view.clone());
        hand_off_unowned(&host);
        forwarder.retain(|node| view.member(node).is_some_and(|member| member.is_live()));
    }
}

/// Hands off the lists this node no longer owns, counting each list once (the host asks each
/// actor once, whoever notices first: the view watcher, a state change or the drain loop) and
/// timing how long they take to leave.
fn hand_off_unowned(host: &Host) {
    let released = host.release_unowned();
    if !released.is_empty() {
        ::metrics::counter!(metrics::LISTS_MOVED_TOTAL).increment(released.len() as u64);
        tokio::spawn(time_handoff(host.clone(), released));
    }
}

/// Records how long the released lists took to leave this node.
async fn time_handoff(host: Host, released: Vec<uuid::Uuid>) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let active = host.active_list_ids();
        if !released.iter().any(|list| active.contains(list)) {
            ::metrics::histogram!(metrics::HANDOFF_SECONDS).record(started.elapsed().as_secs_f64());
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A process paused (stopped, frozen VM, swapped out) longer than `threshold` may have been
/// declared dead meanwhile, and its lists moved and written elsewhere: it hands off every list,
/// so the next request reloads each from storage instead of serving a stale copy.
async fn detect_pauses(host: Host, threshold: Duration) {
    let mut ticker = tokio::time::interval(PAUSE_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = std::time::Instant::now();
    loop {
        ticker.tick().await;
        let now = std::time::Instant::now();
        let gap = now.duration_since(last);
        last = now;
        if gap > threshold + PAUSE_TICK {
            ::metrics::counter!(metrics::PAUSES_TOTAL).increment(1);
            let released = host.release_all();
            tracing::warn!(
                paused_ms = gap.as_millis() as u64,
                lists = released.len(),
                "this node was paused; reloading its lists from storage"
            );
        }
    }
}
