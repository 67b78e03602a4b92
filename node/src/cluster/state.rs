//! This node's picture of the cluster: the latest membership view, the placement over its
//! serving hosts, and whether the node sees a majority. Read on every routed request.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use listwire_cluster::membership::{NodeState, View};
use listwire_cluster::placement::Placement;
use listwire_cluster::NodeId;
use listwire_gateway::EdgeError;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::host::{Owner, Ownership};

/// How many of the top-ranked live holders a node asks to settle a list before loading it,
/// besides the list's owners in its last few placements: enough that the old owner is among
/// them when up to two hosts join at once even if this node did not see the placement before.
pub const LIKELY_HOLDERS: usize = 3;

/// How long a picture remembers an earlier placement (one per distinct serving set), so a node
/// asks a list's owner before the latest changes to settle it, however many hosts joined and
/// in however many steps; at most [`REMEMBERED_PLACEMENTS_MAX`] are kept.
const REMEMBER_PLACEMENTS_FOR: Duration = Duration::from_secs(60);
const REMEMBERED_PLACEMENTS_MAX: usize = 16;

/// One consistent picture: a view and what follows from it.
pub struct Picture {
    /// The membership view.
    pub view: View,
    placement: Arc<Placement>,
    /// Placement over every live host that serves or drains: who may still hold a list.
    holders: Placement,
    /// The placements before this one (most recent first), one per distinct serving set,
    /// each with when it was replaced.
    earlier: Vec<(Instant, Arc<Placement>)>,
    majority: bool,
}

impl Picture {
    /// The picture of `view`, following `before` (whose placements it remembers).
    fn new(view: View, before: Option<&Picture>) -> Picture {
        let holders = view.live_members().filter(|member| {
            member.is_host() && matches!(member.state(), NodeState::Serving | NodeState::Draining)
        });
        let placement = Arc::new(Placement::from_view(&view));
        let now = Instant::now();
        let mut earlier = match before {
            Some(before) if before.view.serving_hosts() != view.serving_hosts() => {
                // One entry per serving set: a host that flaps adds nothing new, so it cannot
                // push the placement from before a join out of memory.
                let replaced = before.placement.hosts();
                let current = placement.hosts();
                std::iter::once((now, before.placement.clone()))
                    .chain(
                        before
                            .earlier
                            .iter()
                            .filter(|(_, earlier)| {
                                earlier.hosts() != replaced && earlier.hosts() != current
                            })
                            .cloned(),
                    )
                    .collect()
            }
            Some(before) => before.earlier.clone(),
            None => Vec::new(),
        };
        earlier.retain(|(replaced, _)| now.duration_since(*replaced) <= REMEMBER_PLACEMENTS_FOR);
        earlier.truncate(REMEMBERED_PLACEMENTS_MAX);
        Picture {
            holders: Placement::new(holders.map(|member| member.node_id().clone())),
            placement,
            earlier,
            majority: view.has_majority(),
            view,
        }
    }

    /// The owner of `list` in this picture, if any host serves.
    pub fn owner(&self, list: Uuid) -> Option<&NodeId> {
        self.placement.owner(list.as_bytes())
    }

    /// The nodes other than `self_id` most likely to have held `list` until now, with their
    /// internode addresses: its owners in the earlier placements this node saw, then the first
    /// [`LIKELY_HOLDERS`] in its ranking among live hosts that serve or drain — each once,
    /// and only live hosts that serve or drain. After a join the old owner is among them
    /// however many hosts joined at once; during a drain, the draining node is.
    pub fn likely_holders(&self, self_id: &NodeId, list: Uuid) -> Vec<(NodeId, String)> {
        let live_holders = self.holders.hosts();
        let earlier = self
            .earlier
            .iter()
            .filter_map(|(_, placement)| placement.owner(list.as_bytes()))
            .filter(|owner| live_holders.contains(owner));
        let ranked = self
            .holders
            .candidates(list.as_bytes())
            .filter(|candidate| *candidate != self_id)
            .take(LIKELY_HOLDERS);
        let mut asked = BTreeSet::new();
        earlier
            .chain(ranked)
            .filter(|holder| *holder != self_id && asked.insert((*holder).clone()))
            .filter_map(|holder| {
                let member = self.view.member(holder)?;
                Some((holder.clone(), member.internode_addr().to_owned()))
            })
            .collect()
    }

    /// Whether this node sees a majority of the known hosts.
    pub fn has_majority(&self) -> bool {
        self.majority
    }
}

/// Where a request for a list goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node owns it.
    Local,
    /// Another node owns it, reachable at `addr` (internode).
    Remote {
        /// Its id.
        node: NodeId,
        /// Its internode address.
        addr: String,
    },
    /// Nobody can take it now (no serving host, or this node has no majority and would own
    /// it): retry.
    Nowhere(EdgeError),
}

/// The shared, always-current picture. Cheap to read (a read lock and an `Arc` clone).
pub struct ClusterState {
    self_id: NodeId,
    current: RwLock<Arc<Picture>>,
    epoch_tx: watch::Sender<u64>,
}

impl ClusterState {
    /// The state of `self_id`, starting from `view`.
    pub fn new(self_id: NodeId, view: View) -> ClusterState {
        ClusterState {
            self_id,
            current: RwLock::new(Arc::new(Picture::new(view, None))),
            epoch_tx: watch::Sender::new(0),
        }
    }

    /// This node's id.
    pub fn self_id(&self) -> &NodeId {
        &self.self_id
    }

    /// The current picture.
    pub fn picture(&self) -> Arc<Picture> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Installs a new view; followers of [`ClusterState::epochs`] hear of it.
    pub fn update(&self, view: View) {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new(Picture::new(view, Some(&current)));
        drop(current);
        self.epoch_tx.send_modify(|epoch| *epoch += 1);
    }

    /// A watch that changes whenever the picture does.
    pub fn epochs(&self) -> watch::Receiver<u64> {
        self.epoch_tx.subscribe()
    }

    /// Where requests for `list` go now.
    pub fn route(&self, list: Uuid) -> Route {
        route_in(&self.picture(), &self.self_id, list)
    }
}

/// Where requests for `list` go in `picture`, seen from `self_id`.
pub fn route_in(picture: &Picture, self_id: &NodeId, list: Uuid) -> Route {
    match picture.owner(list) {
        Some(owner) if owner == self_id => {
            if picture.has_majority() {
                Route::Local
            } else {
                Route::Nowhere(EdgeError::unavailable(
                    "this node cannot see a majority of the cluster; retry",
                ))
            }
        }
        Some(owner) => match picture.view.member(owner) {
            Some(member) => Route::Remote {
                node: owner.clone(),
                addr: member.internode_addr().to_owned(),
            },
            None => Route::Nowhere(EdgeError::unavailable("owner unknown; retry")),
        },
        None => Route::Nowhere(EdgeError::unavailable("no node serves lists now; retry")),
    }
}

impl Ownership for ClusterState {
    fn check(&self, list: Uuid) -> Owner {
        let picture = self.picture();
        if !picture.has_majority() {
            return Owner::NoMajority;
        }
        match picture.owner(list) {
            Some(owner) if *owner == self.self_id => Owner::Here,
            owner => Owner::Elsewhere(owner.map(|id| id.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use listwire_cluster::membership::{Member, Roles};

    use super::*;

    fn host(name: &str, state: NodeState, live: bool) -> Member {
        Member::new(NodeId::new(name).unwrap(), 1)
            .with_roles(Roles::HOST)
            .with_state(state)
            .with_addrs(&format!("{name}:7001"), &format!("{name}:8080"))
            .with_liveness(live)
    }

    /// Goal: the likely previous holder of a list is the first, in the list's ranking, of the
    /// live hosts that serve or drain, other than this node: a draining node still counts
    /// (its lists are leaving it), a joining or dead one does not.
    #[test]
    fn the_likely_holder_is_the_top_ranked_live_serving_or_draining_host() {
        let me = NodeId::new("a").unwrap();
        let view = View::new(
            me.clone(),
            [
                host("a", NodeState::Serving, true),
                host("b", NodeState::Draining, true),
                host("c", NodeState::Joining, true),
                host("d", NodeState::Serving, false),
                host("e", NodeState::Serving, true),
            ],
        );
        let picture = Picture::new(view, None);
        let holders = Placement::new(["a", "b", "e"].map(|n| NodeId::new(n).unwrap()));
        for n in 0..200u128 {
            let list = Uuid::from_u128(n * 0x9e37_79b9_7f4a_7c15);
            let expected = holders
                .candidates(list.as_bytes())
                .find(|candidate| **candidate != me)
                .cloned()
                .unwrap();
            let holders = picture.likely_holders(&me, list);
            let (holder, addr) = &holders[0];
            assert_eq!(*holder, expected);
            assert_eq!(*addr, format!("{holder}:7001"));
            assert_eq!(
                holders.len(),
                2,
                "the other serving or draining hosts: b and e"
            );
        }
        let alone = Picture::new(
            View::new(me.clone(), [host("a", NodeState::Serving, true)]),
            None,
        );
        assert!(alone.likely_holders(&me, Uuid::from_u128(1)).is_empty());
    }

    /// Goal (second review, R5): after two hosts join together (a scale-out by two), a
    /// list that moves to one of them is settled with its old owner, which may rank after
    /// the other newcomer (who never held the list): the first few holders are asked.
    #[test]
    fn after_two_hosts_join_together_the_old_owner_settles_the_list() {
        let me = NodeId::new("d").unwrap();
        let view = View::new(
            me.clone(),
            ["a", "b", "c", "d", "e"].map(|name| host(name, NodeState::Serving, true)),
        );
        let picture = Picture::new(view, None);
        let old = Placement::new(["a", "b", "c"].map(|n| NodeId::new(n).unwrap()));
        let all = Placement::new(["a", "b", "c", "d", "e"].map(|n| NodeId::new(n).unwrap()));
        let list = (0..10_000u128)
            .map(|n| Uuid::from_u128(n * 0x9e37_79b9_7f4a_7c15 + 1))
            .find(|list| {
                let ranking: Vec<&NodeId> = all.candidates(list.as_bytes()).collect();
                ranking[0].as_str() == "d" && ranking[1].as_str() == "e"
            })
            .expect("such a list exists");
        let old_owner = old.owner(list.as_bytes()).unwrap().clone();
        let asked: Vec<NodeId> = picture
            .likely_holders(&me, list)
            .into_iter()
            .map(|(holder, _)| holder)
            .collect();
        assert!(
            asked.contains(&old_owner),
            "d loads {list}, which {old_owner} held until d and e joined; asked {asked:?}"
        );
    }

    /// The owner of a list in `old_hosts`'s placement and the holders `state` asks for it, for a
    /// list that `every` ranks d, e, f, g first (found from `salt`).
    fn old_owner_and_asked(
        state: &ClusterState,
        old_hosts: &[&str],
        every: &[&str],
        salt: u128,
    ) -> (NodeId, Vec<NodeId>) {
        let ids = |names: &[&str]| {
            Placement::new(
                names
                    .iter()
                    .map(|n| NodeId::new(*n).unwrap())
                    .collect::<Vec<_>>(),
            )
        };
        let (old, every) = (ids(old_hosts), ids(every));
        let list = (0..100_000u128)
            .map(|n| Uuid::from_u128(n * 0x9e37_79b9_7f4a_7c15 + salt))
            .find(|list| {
                let ranking: Vec<&str> = every
                    .candidates(list.as_bytes())
                    .map(NodeId::as_str)
                    .collect();
                ranking[..4] == ["d", "e", "f", "g"]
            })
            .expect("such a list exists");
        let asked = state
            .picture()
            .likely_holders(state.self_id(), list)
            .into_iter()
            .map(|(holder, _)| holder)
            .collect();
        (old.owner(list.as_bytes()).unwrap().clone(), asked)
    }

    /// Goal (third review, finding b): after four hosts join at once, a list that moves to one
    /// of them is settled with its old owner even though the three other newcomers rank before
    /// it: the node remembers the placement it saw before the join.
    #[test]
    fn after_four_hosts_join_at_once_the_old_owner_is_still_asked() {
        let me = NodeId::new("d").unwrap();
        let old_hosts = ["a", "b", "c"];
        let newcomers = ["d", "e", "f", "g"];
        let joining = View::new(
            me.clone(),
            old_hosts
                .map(|name| host(name, NodeState::Serving, true))
                .into_iter()
                .chain(newcomers.map(|name| host(name, NodeState::Joining, true))),
        );
        let state = ClusterState::new(me.clone(), joining);
        let all: Vec<&str> = old_hosts.into_iter().chain(newcomers).collect();
        state.update(View::new(
            me.clone(),
            all.iter().map(|name| host(name, NodeState::Serving, true)),
        ));
        let (old_owner, asked) = old_owner_and_asked(&state, &old_hosts, &all, 3);
        assert_eq!(
            asked[0], old_owner,
            "the owner before the join first: {asked:?}"
        );
        assert_eq!(
            asked.iter().filter(|n| **n == old_owner).count(),
            1,
            "asked once"
        );
        assert!(!asked.contains(&me));
    }

    /// Seven hosts `a`…`g` as node `me` sees them: the first `serving` serve, the others are
    /// joining; with `flap`, `b` is not live.
    const JOINING_SEVEN: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

    fn seven_joining(me: &NodeId, serving: usize, flap: bool) -> View {
        let members = JOINING_SEVEN.iter().enumerate().map(|(index, name)| {
            let state = if index < serving {
                NodeState::Serving
            } else {
                NodeState::Joining
            };
            host(name, state, !(flap && *name == "b"))
        });
        View::new(me.clone(), members)
    }

    /// Goal (review of the fix above, D4): newcomers that turn `serving` one view at a time,
    /// with a liveness flap in between, do not push the placement from before the join out of
    /// memory: the old owner is still asked.
    #[test]
    fn newcomers_serving_one_view_at_a_time_still_ask_the_old_owner() {
        let me = NodeId::new("d").unwrap();
        let names = JOINING_SEVEN;
        let view_with = |serving: usize, flap: bool| seven_joining(&me, serving, flap);
        let state = ClusterState::new(me.clone(), view_with(3, false));
        for serving in 4..=7 {
            state.update(view_with(serving, false));
            state.update(view_with(serving, true));
            state.update(view_with(serving, false));
        }
        let (old_owner, asked) = old_owner_and_asked(&state, &["a", "b", "c"], &names, 5);
        assert!(
            asked.contains(&old_owner),
            "{old_owner} not asked: {asked:?}"
        );
    }

    /// Goal (review of the fix above): a host flapping many times after a join adds no new
    /// serving set, so the placement from before the join stays remembered.
    #[test]
    fn a_flapping_host_does_not_push_out_the_placement_before_a_join() {
        let me = NodeId::new("d").unwrap();
        let names = JOINING_SEVEN;
        let view_with = |serving: usize, flap: bool| seven_joining(&me, serving, flap);
        let state = ClusterState::new(me.clone(), view_with(3, false));
        state.update(view_with(7, false));
        for _ in 0..20 {
            state.update(view_with(7, true));
            state.update(view_with(7, false));
        }
        let (old_owner, asked) = old_owner_and_asked(&state, &["a", "b", "c"], &names, 5);
        assert!(
            asked.contains(&old_owner),
            "{old_owner} not asked: {asked:?}"
        );
    }
}
