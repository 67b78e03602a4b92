//! Membership changes as a diff of two views.

use super::member::Member;
use super::view::View;

/// One change between two views, over their **live** members.
///
/// A member incarnation is a (node id, generation) pair: a node that restarted with a higher
/// generation shows up as `Removed` (the old incarnation: its connections and streams are gone)
/// followed by `Added` (the new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member became live: it joined, came back from dead, or is a new incarnation.
    Added(Member),
    /// A live member's published fields changed (state, roles, addresses, protocol version).
    Updated {
        /// The member as the previous view had it.
        previous: Member,
        /// The member as the new view has it.
        current: Member,
    },
    /// A member is no longer live: declared dead, garbage-collected, replaced by a newer
    /// incarnation, or gone after announcing `left`. Carries the member as last seen live.
    Removed(Member),
}

/// The events that turn `previous` into `next`, in node id order (a `Removed` before the
/// `Added` of the same node id). Pure: the same two views always give the same events.
pub fn diff(previous: &View, next: &View) -> Vec<MemberEvent> {
    let mut events = Vec::new();
    for previous_member in previous.live_members() {
        let current_opt = next
            .member(previous_member.node_id())
            .filter(|current| current.is_live());
        match current_opt {
            None => events.push(MemberEvent::Removed(previous_member.clone())),
            Some(current) if current.generation() != previous_member.generation() => {
                events.push(MemberEvent::Removed(previous_member.clone()));
                events.push(MemberEvent::Added(current.clone()));
            }
            Some(current) if current != previous_member => events.push(MemberEvent::Updated {
                previous: previous_member.clone(),
                current: current.clone(),
            }),
            Some(_) => {}
        }
    }
    for current in next.live_members() {
        let was_live = previous
            .member(current.node_id())
            .is_some_and(|member| member.is_live());
        if !was_live {
            events.push(MemberEvent::Added(current.clone()));
        }
    }
    events.sort_by(|a, b| event_order(a).cmp(&event_order(b)));
    events
}

fn event_order(event: &MemberEvent) -> (&crate::NodeId, u8) {
    match event {
        MemberEvent::Removed(member) => (member.node_id(), 0),
        MemberEvent::Updated { current, .. } => (current.node_id(), 1),
        MemberEvent::Added(member) => (member.node_id(), 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{NodeState, Roles};
    use crate::NodeId;

    fn member(name: &str, generation: u64) -> Member {
        Member::new(NodeId::new(name).unwrap(), generation)
            .with_roles(Roles::HOST)
            .with_state(NodeState::Serving)
            .with_addrs("127.0.0.1:1", "127.0.0.1:2")
    }

    fn view(members: &[Member]) -> View {
        View::new(NodeId::new("self").unwrap(), members.to_vec())
    }

    /// Identical views give no events.
    #[test]
    fn no_change_no_event() {
        let members = [member("a", 1), member("b", 1)];
        assert!(diff(&view(&members), &view(&members)).is_empty());
    }

    /// A new live member is added; a vanished or dead one is removed.
    #[test]
    fn added_and_removed() {
        let before = view(&[member("a", 1), member("b", 1)]);
        let after = view(&[member("b", 1).with_liveness(false), member("c", 1)]);
        assert_eq!(
            diff(&before, &after),
            [
                MemberEvent::Removed(member("a", 1)),
                MemberEvent::Removed(member("b", 1)),
                MemberEvent::Added(member("c", 1)),
            ]
        );
    }

    /// A dead member coming back is added again; a dead member staying dead is silent.
    #[test]
    fn revival_is_added_and_dead_stays_silent() {
        let before = view(&[
            member("a", 1).with_liveness(false),
            member("b", 1).with_liveness(false),
        ]);
        let after = view(&[member("a", 1), member("b", 1).with_liveness(false)]);
        assert_eq!(diff(&before, &after), [MemberEvent::Added(member("a", 1))]);
    }

    /// A state change of a live member is an update carrying both versions.
    #[test]
    fn state_change_is_updated() {
        let before = view(&[member("a", 1)]);
        let draining = member("a", 1).with_state(NodeState::Draining);
        let after = view(std::slice::from_ref(&draining));
        assert_eq!(
            diff(&before, &after),
            [MemberEvent::Updated {
                previous: member("a", 1),
                current: draining,
            }]
        );
    }

    /// A restart (higher generation) removes the old incarnation, then adds the new one.
    #[test]
    fn restart_is_removed_then_added() {
        let before = view(&[member("a", 1)]);
        let after = view(&[member("a", 1).with_liveness(false), member("a", 2)]);
        assert_eq!(
            diff(&before, &after),
            [
                MemberEvent::Removed(member("a", 1)),
                MemberEvent::Added(member("a", 2)),
            ]
        );
    }
}
