//! The node's background watchers: the view watcher (installs each view, hands off the lists
//! this node no longer owns, forgets gone nodes, remembers the hosts it knows) and the pause
//! detector.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use listwire_cluster::membership::{NodeState, View};
use listwire_cluster::transport::Client;
use listwire_cluster::NodeId;

use super::forward::Forwarder;
use super::state::ClusterState;
use super::{metrics, startup};
use crate::clock::Clock;
use crate::host::Host;

/// How often the pause detector looks at the clock.
const PAUSE_TICK: Duration = Duration::from_millis(100);

/// Follows the membership view: installs each new picture, hands off the lists this node no
/// longer owns, and forgets the batchers and connections of nodes that are gone.
pub(super) async fn watch_view(
    mut view_rx: tokio::sync::watch::Receiver<View>,
    state: Arc<ClusterState>,
    host: Host,
    forwarder: Arc<Forwarder>,
    client: Client,
    data_dir: PathBuf,
) {
    let mut previous = view_rx.borrow().clone();
    let mut remembered = None;
    while view_rx.changed().await.is_ok() {
        let view = view_rx.borrow_and_update().clone();
        if view.serving_hosts() != previous.serving_hosts() {
            ::metrics::counter!(metrics::PLACEMENT_CHANGES_TOTAL).increment(1);
            tracing::info!(serving = ?view.serving_hosts().iter().map(|n| n.as_str()).collect::<Vec<_>>(), "placement changed");
        }
        state.update(view.clone());
        hand_off_unowned(&host);
        let live = |node: &NodeId| view.member(node).is_some_and(|member| member.is_live());
        forwarder.retain(live);
        for gone in previous.members().filter(|member| !live(member.node_id())) {
            // Its connection (and reconnect attempts) would otherwise linger.
            client.remove_peer(gone.node_id());
        }
        remember_hosts(&view, &data_dir, &mut remembered);
        previous = view;
    }
}

/// While this node serves, keeps the hosts it knows in the data directory: a restart must see a
/// majority of them before it serves again (see `startup`).
fn remember_hosts(view: &View, data_dir: &Path, remembered: &mut Option<BTreeSet<NodeId>>) {
    let serving = view
        .self_member()
        .is_some_and(|member| member.state() == NodeState::Serving);
    let known = view.known_hosts();
    if !serving || remembered.as_ref() == Some(&known) {
        return;
    }
    match startup::remember_hosts(data_dir, &known) {
        Ok(()) => *remembered = Some(known),
        Err(error) => tracing::warn!(%error, "could not record the cluster's hosts"),
    }
}

/// Hands off the lists this node no longer owns, counting each list once (the host asks each
/// list once, whoever notices first: the view watcher, a state change or the drain loop). The
/// actor times its own handoff.
pub(super) fn hand_off_unowned(host: &Host) {
    let released = host.release_unowned();
    if !released.is_empty() {
        ::metrics::counter!(metrics::LISTS_MOVED_TOTAL).increment(released.len() as u64);
    }
}

/// A process paused (stopped, frozen VM, swapped out) longer than `threshold` may have been
/// declared dead meanwhile, and its lists moved and written elsewhere: it hands off every list,
/// so the next request reloads each from storage instead of serving a stale copy.
pub(super) async fn detect_pauses(host: Host, threshold: Duration, wall: Arc<dyn Clock>) {
    let mut ticker = tokio::time::interval(PAUSE_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    let mut last_wall = wall.now_ms();
    loop {
        ticker.tick().await;
        let now = tokio::time::Instant::now();
        let now_wall = wall.now_ms();
        // The monotonic clock stops during a system suspend; the wall clock does not (a wall
        // clock stepped forward only costs a needless reload).
        let wall_gap = Duration::from_millis(now_wall.saturating_sub(last_wall));
        let gap = now.duration_since(last).max(wall_gap);
        last = now;
        last_wall = now_wall;
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
