//! Gossip membership on chitchat: who is in the cluster, in which role and state.
//!
//! [`Membership`] runs chitchat for this node, publishes what the node is (id, generation,
//! roles, state, internode and client addresses, protocol version) and keeps a [`View`] of
//! every member up to date in a `tokio::sync::watch`. [`diff`] turns two views into
//! [`MemberEvent`]s. Chitchat's keys and string encodings stay private to this module.
//!
//! The gossip transport is injectable: [`Membership::spawn_udp`] uses chitchat's real UDP
//! transport, [`Membership::spawn`] takes any [`GossipTransport`] (chitchat's in-memory
//! `ChannelTransport` in unit tests, a simulated one later).

mod change;
mod config;
mod member;
mod view;

use std::sync::Arc;
use std::time::Duration;

use chitchat::ChitchatHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use change::{diff, MemberEvent};
pub use chitchat::transport::{ChannelTransport, Transport as GossipTransport, UdpTransport};
pub use config::MembershipConfig;
pub use member::{Member, NodeState, Role, Roles};
pub use view::View;

use crate::{metrics, Error, NodeId};

/// One node's membership: a running chitchat instance plus the live [`View`].
///
/// Dropping it without [`Membership::shutdown`] or [`Membership::leave`] aborts gossip
/// abruptly (peers then see the node die, as after a crash).
pub struct Membership {
    handle: Option<ChitchatHandle>,
    self_id: NodeId,
    gossip_interval: Duration,
    view_tx: Arc<watch::Sender<View>>,
    refresher: JoinHandle<()>,
}

impl Membership {
    /// Starts gossip over real UDP on `config.listen_addr`.
    pub async fn spawn_udp(config: MembershipConfig) -> Result<Membership, Error> {
        Membership::spawn(config, &UdpTransport).await
    }

    /// Starts gossip over `transport`, publishing this node as `config` describes.
    pub async fn spawn(
        config: MembershipConfig,
        transport: &dyn GossipTransport,
    ) -> Result<Membership, Error> {
        config.validate()?;
        let self_member = Member::new(config.node_id.clone(), config.generation)
            .with_roles(config.roles)
            .with_state(config.initial_state)
            .with_addrs(&config.internode_addr, &config.client_addr)
            .with_protocol_version(config.protocol_version);
        let handle = chitchat::spawn_chitchat(
            config.to_chitchat(),
            member::initial_key_values(&self_member),
            transport,
        )
        .await
        .map_err(|error| Error::Gossip(format!("{error:#}")))?;
        let self_id = config.node_id.clone();
        let initial_view = View::new(self_id.clone(), [self_member]);
        let view_tx = Arc::new(watch::Sender::new(initial_view));
        let refresher = tokio::spawn(refresh_view(
            handle.chitchat(),
            self_id.clone(),
            config.gossip_interval,
            view_tx.clone(),
        ));
        Ok(Membership {
            handle: Some(handle),
            self_id,
            gossip_interval: config.gossip_interval,
            view_tx,
            refresher,
        })
    }

    /// This node's id.
    pub fn self_id(&self) -> &NodeId {
        &self.self_id
    }

    /// The current view (a clone of the latest published one).
    pub fn view(&self) -> View {
        self.view_tx.borrow().clone()
    }

    /// A watch of the view. It fires when a member joins, dies, is garbage-collected or
    /// changes anything it publishes (including this node); heartbeats alone do not fire it.
    /// Changes are seen within about one gossip interval of reaching this node.
    pub fn watch(&self) -> watch::Receiver<View> {
        self.view_tx.subscribe()
    }

    /// Publishes this node's state. Refuses to leave `left` or to return to `joining`
    /// ([`NodeState::may_become`]); setting the current state again is a no-op.
    pub async fn set_state(&self, state: NodeState) -> Result<(), Error> {
        let handle = self.handle.as_ref().ok_or(Error::ShuttingDown)?;
        let current = self
            .view()
            .self_member()
            .map(Member::state)
            .unwrap_or(NodeState::Joining);
        if !current.may_become(state) {
            return Err(Error::InvalidTransition {
                from: current.as_str(),
                to: state.as_str(),
            });
        }
        let chitchat = handle.chitchat();
        let mut guard = chitchat.lock().await;
        guard
            .self_node_state()
            .set(member::STATE_KEY, state.as_str());
        let view = View::from_chitchat(&guard, &self.self_id);
        drop(guard);
        publish(&self.view_tx, view);
        tracing::info!(node = %self.self_id, state = state.as_str(), "published node state");
        Ok(())
    }

    /// Leaves the cluster cleanly: announces `left`, waits two gossip intervals so peers
    /// hear it (they then stop counting this node as a known host), and stops gossip. Call it
    /// after draining.
    pub async fn leave(self) -> Result<(), Error> {
        self.set_state(NodeState::Left).await?;
        tokio::time::sleep(2 * self.gossip_interval).await;
        self.shutdown().await
    }

    /// Stops gossip without announcing anything: peers see this node die through their
    /// failure detectors.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.refresher.abort();
        let Some(handle) = self.handle.take() else {
            return Ok(());
        };
        handle
            .shutdown()
            .await
            .map_err(|error| Error::Gossip(format!("{error:#}")))
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.refresher.abort();
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

/// Recomputes the view when chitchat reports a change of the live set or of a live node's
/// state, and also once per gossip interval: a node dying or being garbage-collected changes
/// the known hosts without always firing chitchat's watcher. Publishes only real changes.
async fn refresh_view(
    chitchat: Arc<tokio::sync::Mutex<chitchat::Chitchat>>,
    self_id: NodeId,
    gossip_interval: Duration,
    view_tx: Arc<watch::Sender<View>>,
) {
    let mut live_nodes_rx = chitchat.lock().await.live_nodes_watcher();
    let mut ticker = tokio::time::interval(gossip_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = live_nodes_rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = ticker.tick() => {}
        }
        let view = View::from_chitchat(&*chitchat.lock().await, &self_id);
        publish(&view_tx, view);
    }
}

fn publish(view_tx: &watch::Sender<View>, view: View) {
    if *view_tx.borrow() == view {
        return;
    }
    metrics::record_view(&view);
    view_tx.send_replace(view);
}
