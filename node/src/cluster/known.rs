//! The hosts a node counts its majority against.
//!
//! chitchat forgets a dead node once the dead-node grace period (1 h by default) has passed. If
//! the majority were counted against chitchat's members alone, the minority side of a long
//! partition would forget the hosts it cannot reach, count a "majority" of what is left, and
//! host lists the majority side hosts too (stale reads, ownership tug-of-war; writes stay
//! fenced) — and record the shrunk set for its next start. So a node keeps its own set: it
//! starts from the hosts recorded when it last served (`cluster-hosts`), adds every host it
//! learns of, drops a host that announced `left` at once, and drops a host chitchat no longer
//! holds only while it sees a strict majority of the set *with* that host in it. A minority
//! never sees that majority, so it never shrinks its way into one; the majority side forgets a
//! crashed host after the grace period, as before, so a cluster that lost a node for good
//! heals without an operator.

use std::collections::BTreeSet;

use listwire_cluster::membership::{NodeState, View};
use listwire_cluster::NodeId;

/// The hosts this node counts its majority against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    hosts: BTreeSet<NodeId>,
}

impl KnownHosts {
    /// Starting from the hosts recorded when this node last served.
    pub fn new(recorded: BTreeSet<NodeId>) -> KnownHosts {
        KnownHosts { hosts: recorded }
    }

    /// The set.
    pub fn hosts(&self) -> &BTreeSet<NodeId> {
        &self.hosts
    }

    /// Folds in `view`: adds the hosts it holds, drops those that left, and drops those it no
    /// longer holds only if the view shows a majority of the set including them.
    pub fn update(&mut self, view: &View) {
        let left: BTreeSet<&NodeId> = view
            .members()
            .filter(|member| member.is_host() && member.state() == NodeState::Left)
            .map(|member| member.node_id())
            .collect();
        let mut next: BTreeSet<NodeId> = self
            .hosts
            .iter()
            .chain(view.known_hosts().iter())
            .filter(|host| !left.contains(host))
            .cloned()
            .collect();
        let gone: Vec<NodeId> = next
            .iter()
            .filter(|host| view.member(host).is_none())
            .cloned()
            .collect();
        if !gone.is_empty() && majority_of(&view.live_hosts(), &next) {
            for host in &gone {
                next.remove(host);
            }
        }
        self.hosts = next;
    }

    /// Whether `view` shows a strict majority of these hosts live; `false` when none is known.
    pub fn majority_in(&self, view: &View) -> bool {
        majority_of(&view.live_hosts(), &self.hosts)
    }
}

fn majority_of(live: &BTreeSet<NodeId>, known: &BTreeSet<NodeId>) -> bool {
    !known.is_empty() && 2 * live.intersection(known).count() > known.len()
}

#[cfg(test)]
mod tests {
    use listwire_cluster::membership::{Member, Roles};

    use super::*;

    fn id(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    fn host(name: &str, state: NodeState, live: bool) -> Member {
        Member::new(id(name), 1)
            .with_roles(Roles::HOST)
            .with_state(state)
            .with_addrs(&format!("{name}:7001"), &format!("{name}:8080"))
            .with_liveness(live)
    }

    fn names(known: &KnownHosts) -> Vec<&str> {
        known.hosts().iter().map(NodeId::as_str).collect()
    }

    fn serving(name: &str, live: bool) -> Member {
        host(name, NodeState::Serving, live)
    }

    /// Goal (third review, finding a): a minority partitioned past the dead-node grace period,
    /// whose chitchat has forgotten the hosts it cannot reach, still counts them: no majority,
    /// and the set it would record keeps them.
    #[test]
    fn a_minority_whose_gossip_forgot_the_others_still_has_no_majority() {
        let mut known = KnownHosts::new(BTreeSet::new());
        let all = ["a", "b", "c", "d", "e"].map(|name| serving(name, true));
        known.update(&View::new(id("a"), all));
        // The partition: c, d, e dead, then garbage-collected after the grace period.
        let dead = View::new(
            id("a"),
            [serving("a", true), serving("b", true), serving("c", false)]
                .into_iter()
                .chain([serving("d", false), serving("e", false)]),
        );
        known.update(&dead);
        assert!(!known.majority_in(&dead));
        let forgotten = View::new(id("a"), [serving("a", true), serving("b", true)]);
        known.update(&forgotten);
        assert!(forgotten.has_majority(), "chitchat's members alone say yes");
        assert!(!known.majority_in(&forgotten), "2 of 5 known hosts");
        assert_eq!(names(&known), ["a", "b", "c", "d", "e"]);
    }

    /// Goal: the majority side forgets a crashed host once chitchat does (the cluster heals
    /// without an operator), and a host that announced `left` stops counting at once.
    #[test]
    fn the_majority_forgets_a_crashed_host_and_a_left_host_stops_counting() {
        let mut known = KnownHosts::new(BTreeSet::new());
        known.update(&View::new(
            id("a"),
            ["a", "b", "c", "d"].map(|name| serving(name, true)),
        ));
        let after_gc = View::new(
            id("a"),
            [serving("a", true), serving("b", true), serving("c", true)],
        );
        known.update(&after_gc);
        assert_eq!(
            names(&known),
            ["a", "b", "c"],
            "3 of 4 live: d is forgotten"
        );
        let c_left = View::new(
            id("a"),
            [
                serving("a", true),
                serving("b", true),
                host("c", NodeState::Left, false),
            ],
        );
        known.update(&c_left);
        assert_eq!(names(&known), ["a", "b"]);
        assert!(known.majority_in(&c_left), "2 of 2");
    }

    /// Goal: a node restarted from its recorded hosts counts them before gossip brings them
    /// back, so seeing only itself (or a minority) is no majority.
    #[test]
    fn recorded_hosts_count_before_gossip_brings_them_back() {
        let recorded: BTreeSet<NodeId> = ["a", "b", "c"].map(id).into_iter().collect();
        let mut known = KnownHosts::new(recorded);
        let alone = View::new(id("a"), [serving("a", true)]);
        known.update(&alone);
        assert!(!known.majority_in(&alone));
        assert_eq!(names(&known), ["a", "b", "c"]);
        let with_b = View::new(id("a"), [serving("a", true), serving("b", true)]);
        known.update(&with_b);
        assert!(known.majority_in(&with_b), "2 of 3");
        assert!(!KnownHosts::default().majority_in(&alone), "no host known");
    }
}
