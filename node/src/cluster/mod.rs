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
mod follow_task;
mod forward;
mod handler;
mod io;
mod items;
pub mod metrics;
mod owners;
mod router;
mod settle;
mod startup;
pub mod state;
#[cfg(test)]
mod test_support;
mod watch;
pub mod wire;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use listwire_cluster::membership::{Membership, MembershipConfig, NodeState, Role, Roles, View};
use listwire_cluster::transport::{
    Client, ClusterSecret, Listener, Server, TcpListener, TransportConfig,
};
use listwire_cluster::NodeId;
use listwire_storage::{AccountStore, EventStore};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::host::{Host, HostConfig};
use crate::router::LocalRouter;
pub use config::ClusterArgs;
use follow::Follows;
use forward::Forwarder;
pub use handler::InternodeHandler;
pub use io::ClusterIo;
pub use router::ClusterRouter;
use state::ClusterState;

/// The internode protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Items a node subscription may queue at its owner before it is dropped as too slow.
const NODE_QUEUE_ITEMS: usize = 4096;
/// Largest internode frame: a full list's snapshot (10,000 items of 4 KiB) must fit.
const INTERNODE_FRAME_BYTES_MAX: usize = 64 << 20;
/// Node subscriptions one gateway node may hold at one owner (one per followed list, on one
/// connection): far above the lists a gateway follows, so the transport's default (sized for
/// generic use) never refuses a follower.
const INTERNODE_STREAMS_MAX: usize = 65_536;
/// Requests one peer may have running here at once: forwarded op batches (one per lane),
/// reads and catch-ups of many connections. Past it, requests are refused `busy` (retried).
const INTERNODE_REQUESTS_MAX: usize = 4096;
/// When a freshly loaded list compares its copy with the store's head (until its first
/// write): the list's previous owner may have been flushing an accepted op when this node
/// loaded it. A handoff flushes within a store request; the later checks cover slow stores.
const HEAD_RECHECKS: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(30),
];

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
    /// Waits for peers before announcing `serving` (a seeded node); cancelled on stop.
    announce: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// What a node given seeds (other than itself) must see before it serves (see `startup`).
    quorum: Option<Arc<startup::Quorum>>,
    gossip_interval: Duration,
    drain_timeout: Duration,
    gossip_addr: SocketAddr,
    internode_addr: String,
}

impl ClusterNode {
    /// Starts this node's cluster side (as `joining`) over the stores; `client_addr` is where
    /// its clients connect, `op_timeout` how long ops may take and `data_dir` where the node
    /// keeps its gossip generation; `io` is its network and wall clock ([`ClusterIo::tokio`]
    /// in production). Call [`ClusterNode::serve`] once the node can serve.
    pub async fn start(
        args: &ClusterArgs,
        stores: (Arc<dyn EventStore>, Arc<dyn AccountStore>),
        mut host_config: HostConfig,
        client_addr: SocketAddr,
        op_timeout: Duration,
        data_dir: &Path,
        io: ClusterIo,
    ) -> anyhow::Result<Arc<ClusterNode>> {
        let secret = args
            .cluster_secret
            .as_deref()
            .context("no cluster secret")?;
        metrics::register();
        let node_id = startup::node_id(args, client_addr)?;
        host_config.head_rechecks = HEAD_RECHECKS.to_vec();
        let state = Arc::new(ClusterState::new(
            node_id.clone(),
            View::new(node_id.clone(), []),
        ));
        let mut transport = TransportConfig::new(
            args.cluster_id.clone(),
            node_id.clone(),
            ClusterSecret::new(secret.as_bytes().to_vec())?,
            PROTOCOL_VERSION,
        );
        transport.max_frame_bytes = INTERNODE_FRAME_BYTES_MAX;
        transport.max_streams = INTERNODE_STREAMS_MAX;
        transport.max_in_flight_requests = INTERNODE_REQUESTS_MAX;
        transport.jitter_seed = io.jitter_seed;
        let client = Client::new(transport.clone(), io.connector)?;
        let forwarder = Forwarder::new(client.clone(), op_timeout);

        let (events, accounts) = stores;
        let ownership = settle::ClusterOwnership::new(state.clone(), forwarder.clone());
        let host = Host::with_ownership(events, accounts, host_config, ownership);
        let local = LocalRouter::new(host.clone());
        let listener = match io.listener {
            Some(listener) => listener,
            None => Box::new(
                TcpListener::bind(&args.internode_listen.to_string())
                    .await
                    .with_context(|| format!("binding internode {}", args.internode_listen))?,
            ) as Box<dyn Listener>,
        };
        let handler = handler::InternodeHandler::new(local.clone(), NODE_QUEUE_ITEMS);
        let server = Server::spawn(transport, listener, handler)?;
        let internode_addr = args
            .internode_advertise
            .clone()
            .unwrap_or_else(|| server.local_addr().to_owned());

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
        let generation = startup::next_generation(data_dir, io.wall.now_ms())?;
        let membership_config = membership_config(
            args,
            (node_id, generation),
            &internode_addr,
            &client_advertise,
        )?;
        let gossip_addr = membership_config.advertise_addr;
        let quorum = if startup::has_other_seeds(&args.seeds, gossip_addr) {
            Some(Arc::new(startup::Quorum::new(&args.seeds, data_dir).await?))
        } else {
            None
        };
        let membership = Membership::spawn(membership_config, io.gossip.as_ref()).await?;
        state.update(membership.view());
        let tasks = vec![
            tokio::spawn(watch::watch_view(
                membership.watch(),
                state.clone(),
                host.clone(),
                forwarder,
                client.clone(),
                data_dir.to_owned(),
            )),
            tokio::spawn(watch::detect_pauses(
                host.clone(),
                4 * args.gossip_interval(),
                io.wall,
            )),
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
            announce: std::sync::Mutex::new(None),
            quorum,
            gossip_interval: args.gossip_interval(),
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

    /// Announces that this node serves (lists that now map to it will come to it): at once
    /// for a node without seeds, else in the background once it sees its cluster (see
    /// `startup`); until then it stays `joining` and not ready.
    pub async fn serve(self: &Arc<Self>) -> anyhow::Result<()> {
        let Some(quorum) = self.quorum.clone() else {
            return self.set_state(NodeState::Serving).await;
        };
        let node = self.clone();
        let announce = tokio::spawn(async move {
            let own = node.gossip_addr;
            startup::wait_for_peers(&node.state, node.gossip_interval, &quorum, own).await;
            if let Err(error) = node.become_serving().await {
                tracing::warn!(%error, "could not announce serving");
            }
        });
        let previous = self.lock_announce().replace(announce);
        if let Some(previous) = previous {
            previous.abort();
        }
        Ok(())
    }

    /// Announces `serving` if the node is still `joining` (a drain may have begun meanwhile).
    async fn become_serving(&self) -> anyhow::Result<()> {
        let guard = self.membership.lock().await;
        let membership = guard.as_ref().context("membership stopped")?;
        let joining = membership
            .view()
            .self_member()
            .is_some_and(|member| member.state() == NodeState::Joining);
        if !joining {
            return Ok(());
        }
        membership.set_state(NodeState::Serving).await?;
        self.state.update(membership.view());
        tracing::info!("sees its cluster; serving");
        Ok(())
    }

    fn lock_announce(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.announce
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drains: announces `draining` (so no list maps here any more), hands off every list and
    /// waits until they are gone, at most the drain timeout. Client connections stay open
    /// meanwhile: their subscriptions follow the lists to their new owners.
    pub async fn drain(&self) {
        if let Some(announce) = self.lock_announce().take() {
            announce.abort();
        }
        if let Err(error) = self.set_state(NodeState::Draining).await {
            tracing::warn!(%error, "could not announce draining");
        }
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            watch::hand_off_unowned(&self.host);
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
        if let Some(announce) = self.lock_announce().take() {
            announce.abort();
        }
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
        if let Some(announce) = self.lock_announce().take() {
            announce.abort();
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
        watch::hand_off_unowned(&self.host);
        Ok(())
    }
}

fn membership_config(
    args: &ClusterArgs,
    (node_id, generation): (NodeId, u64),
    internode_addr: &str,
    client_addr: &str,
) -> anyhow::Result<MembershipConfig> {
    let listen = free_udp_port_if_zero(args.gossip_listen)?;
    let advertise = args.gossip_advertise.unwrap_or(listen);
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
