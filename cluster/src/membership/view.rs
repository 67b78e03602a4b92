//! A snapshot of the cluster as one node sees it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::member::{member_from_state, Member, NodeState, Role};
use crate::NodeId;

/// The membership as this node sees it at one moment: every member chitchat still knows, live
/// or dead, one per node id.
///
/// Deduplication: when several generations of one node id are known (a node restarted and the
/// old incarnation is not yet garbage-collected), the highest generation wins and the lower
/// ones are ignored, whether live or not.
///
/// Views are cheap to compare and clone (a few dozen members); the watch in
/// [`super::Membership::watch`] publishes a new one only when it differs from the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    self_id: NodeId,
    members: BTreeMap<NodeId, Member>,
}

impl View {
    /// A view seen by `self_id` made of `members`, deduplicated by node id (highest generation
    /// wins). Used by the membership and by tests that build views by hand.
    pub fn new(self_id: NodeId, members: impl IntoIterator<Item = Member>) -> View {
        let mut deduplicated: BTreeMap<NodeId, Member> = BTreeMap::new();
        for member in members {
            let is_newer = deduplicated
                .get(member.node_id())
                .is_none_or(|known| member.generation() > known.generation());
            if is_newer {
                deduplicated.insert(member.node_id().clone(), member);
            }
        }
        View {
            self_id,
            members: deduplicated,
        }
    }

    /// The id of the node whose view this is.
    pub fn self_id(&self) -> &NodeId {
        &self.self_id
    }

    /// This node's own member entry, once its state is readable (always, in a running
    /// membership).
    pub fn self_member(&self) -> Option<&Member> {
        self.members.get(&self.self_id)
    }

    /// The member with `node_id`, live or dead.
    pub fn member(&self, node_id: &NodeId) -> Option<&Member> {
        self.members.get(node_id)
    }

    /// Every known member, live or dead, in node id order.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// The live members (self included), in node id order.
    pub fn live_members(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|member| member.is_live())
    }

    /// The placement candidates: live members with role host in state `serving`.
    pub fn serving_hosts(&self) -> BTreeSet<NodeId> {
        self.members
            .values()
            .filter(|member| member.is_serving_host())
            .map(|member| member.node_id().clone())
            .collect()
    }

    /// The known hosts: every member with role host that chitchat still holds, live or dead
    /// (until the dead-node grace period garbage-collects it), except those that announced
    /// `left`.
    pub fn known_hosts(&self) -> BTreeSet<NodeId> {
        self.counted_hosts(false)
    }

    /// The live known hosts: members of [`View::known_hosts`] the failure detector considers
    /// live, whatever their state (`joining`, `serving` or `draining`).
    pub fn live_hosts(&self) -> BTreeSet<NodeId> {
        self.counted_hosts(true)
    }

    fn counted_hosts(&self, live_only: bool) -> BTreeSet<NodeId> {
        self.members
            .values()
            .filter(|member| member.roles().contains(Role::Host))
            .filter(|member| member.state() != NodeState::Left)
            .filter(|member| !live_only || member.is_live())
            .map(|member| member.node_id().clone())
            .collect()
    }

    /// The majority rule: `true` when the live hosts are a strict majority of the known hosts,
    /// that is `2 × |live_hosts| > |known_hosts|`; `false` when no host is known.
    ///
    /// A host that fails this check cannot tell a partition from crashes and must stop hosting
    /// lists (DESIGN.md, ownership safety). A host that announced `left` no longer counts, so
    /// a clean scale-in keeps the majority; a crashed host keeps counting until the dead-node
    /// grace period garbage-collects it.
    pub fn has_majority(&self) -> bool {
        let known_host_count = self.known_hosts().len();
        known_host_count > 0 && 2 * self.live_hosts().len() > known_host_count
    }

    /// Builds the view from chitchat's whole state: every node state it holds, with liveness
    /// from the failure detector.
    pub(super) fn from_chitchat(chitchat: &chitchat::Chitchat, self_node_id: &NodeId) -> View {
        let live: HashSet<&chitchat::ChitchatId> = chitchat.live_nodes().collect();
        let self_id = chitchat.self_chitchat_id();
        let members = chitchat
            .node_states()
            .iter()
            .filter_map(|(chitchat_id, node_state)| {
                let is_live = chitchat_id == self_id || live.contains(chitchat_id);
                member_from_state(chitchat_id, node_state, is_live)
            });
        View::new(self_node_id.clone(), members.collect::<Vec<_>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::Roles;

    fn id(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    fn host(name: &str, state: NodeState, is_live: bool) -> Member {
        Member::new(id(name), 1)
            .with_roles(Roles::HOST)
            .with_state(state)
            .with_liveness(is_live)
    }

    /// The highest generation of a node id wins, even if it is dead and a lower one is live.
    #[test]
    fn deduplicates_by_highest_generation() {
        let old = Member::new(id("a"), 5).with_state(NodeState::Serving);
        let new = Member::new(id("a"), 7).with_liveness(false);
        let older = Member::new(id("a"), 3);
        let view = View::new(id("a"), [old, new.clone(), older]);
        assert_eq!(view.members().count(), 1);
        assert_eq!(view.member(&id("a")), Some(&new));
    }

    /// Serving hosts are live, host and serving; known hosts exclude only `left`; live hosts
    /// are live known hosts in any state.
    #[test]
    fn host_sets_follow_their_rules() {
        let view = View::new(
            id("a"),
            [
                host("a", NodeState::Serving, true),
                host("b", NodeState::Draining, true),
                host("c", NodeState::Serving, false),
                host("d", NodeState::Left, false),
                host("e", NodeState::Joining, true),
                Member::new(id("g"), 1)
                    .with_roles(Roles::GATEWAY)
                    .with_state(NodeState::Serving),
            ],
        );
        let names =
            |set: BTreeSet<NodeId>| set.into_iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(view.serving_hosts()), ["a"]);
        assert_eq!(names(view.known_hosts()), ["a", "b", "c", "e"]);
        assert_eq!(names(view.live_hosts()), ["a", "b", "e"]);
        assert!(view.has_majority(), "3 live of 4 known");
    }

    /// The majority is strict, ignores left hosts and fails when no host is known.
    #[test]
    fn majority_is_strict() {
        let two_of_four = View::new(
            id("a"),
            [
                host("a", NodeState::Serving, true),
                host("b", NodeState::Serving, true),
                host("c", NodeState::Serving, false),
                host("d", NodeState::Serving, false),
            ],
        );
        assert!(!two_of_four.has_majority());
        let one_of_one_after_left = View::new(
            id("a"),
            [
                host("a", NodeState::Serving, true),
                host("b", NodeState::Left, false),
                host("c", NodeState::Left, true),
            ],
        );
        assert!(one_of_one_after_left.has_majority());
        let gateways_only = View::new(
            id("g"),
            [Member::new(id("g"), 1).with_roles(Roles::GATEWAY)],
        );
        assert!(!gateways_only.has_majority());
    }
}
