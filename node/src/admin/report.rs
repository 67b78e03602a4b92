//! The JSON of `GET /v1/admin/cluster`: the node's view of the cluster as an operator reads it.
//!
//! These types are the wire shape (documented in `docs/PROTOCOL.md`, "Operator endpoints") and
//! are read back by `listwire status`, so a field added here must be optional for readers.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The JSON of `GET /v1/admin/lists`: the busiest lists the answering node hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusiestReport {
    /// The id of the node that answered.
    pub node: String,
    /// Its busiest active lists, most admitted messages first.
    pub lists: Vec<crate::host::ListLoad>,
}

/// The cluster as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// The id of the node that answered.
    pub node: String,
    /// Whether the node runs in a cluster (`false`: a single node, the only member).
    pub clustered: bool,
    /// Whether the node sees a strict majority of the known hosts (it hosts lists only then).
    pub has_majority: bool,
    /// The placement candidates: live hosts in state `serving`, by node id.
    pub serving_hosts: Vec<String>,
    /// Every member of the node's view, live or dead, by node id.
    pub members: Vec<MemberReport>,
    /// With `?list=`: that list's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListReport>,
}

/// One member of the view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    /// Its node id.
    pub node_id: String,
    /// Its generation (start time in ms; higher after a restart).
    pub generation: u64,
    /// Its roles: `host`, `gateway`.
    pub roles: Vec<String>,
    /// Its published state: `joining`, `serving`, `draining` or `left`.
    pub state: String,
    /// Whether the failure detector considers it live.
    pub live: bool,
    /// Its internode address (`None` for a single node, which has none).
    pub internode_addr: Option<String>,
    /// Where its clients connect.
    pub client_addr: String,
    /// The internode protocol version its build speaks.
    pub protocol_version: u32,
    /// Lists with an actor on it; `None` when it is dead or did not answer in time.
    pub active_lists: Option<u64>,
}

/// Who owns one list, per the answering node's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReport {
    /// The list.
    pub id: Uuid,
    /// The owner's node id; `None` when no host serves.
    pub owner: Option<String>,
    /// The owner's client address, when it is known.
    pub owner_client_addr: Option<String>,
    /// Whether the list has an actor on its owner now (it activates on first use); `None` when
    /// the owner did not answer in time or there is none.
    pub active: Option<bool>,
}

/// The roles of a node that runs alone: it hosts every list and serves its clients.
pub const SINGLE_NODE_ROLES: [&str; 2] = ["host", "gateway"];

/// A node running alone: the only member, serving, owning every list.
pub struct SingleNode<'a> {
    /// Its id (`--node-id`, else its client address).
    pub node_id: &'a str,
    /// Its start time in ms.
    pub generation: u64,
    /// Where its clients connect.
    pub client_addr: &'a str,
    /// Lists with an actor on it.
    pub active_lists: u64,
}

impl SingleNode<'_> {
    /// The report of this node; `list` is the asked list and whether it is active here.
    pub fn report(&self, list: Option<(Uuid, bool)>) -> ClusterReport {
        let member = MemberReport {
            node_id: self.node_id.to_owned(),
            generation: self.generation,
            roles: SINGLE_NODE_ROLES.map(str::to_owned).to_vec(),
            state: "serving".into(),
            live: true,
            internode_addr: None,
            client_addr: self.client_addr.to_owned(),
            protocol_version: crate::cluster::PROTOCOL_VERSION,
            active_lists: Some(self.active_lists),
        };
        ClusterReport {
            node: self.node_id.to_owned(),
            clustered: false,
            has_majority: true,
            serving_hosts: vec![self.node_id.to_owned()],
            members: vec![member],
            list: list.map(|(id, active)| ListReport {
                id,
                owner: Some(self.node_id.to_owned()),
                owner_client_addr: Some(self.client_addr.to_owned()),
                active: Some(active),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: a single node reports itself as the only, serving member and the owner of any
    /// list, and the JSON round-trips (the shape `listwire status` reads), with `list` left out
    /// when not asked.
    #[test]
    fn a_single_node_is_the_only_member_and_owns_every_list() {
        let node = SingleNode {
            node_id: "127.0.0.1:7070",
            generation: 42,
            client_addr: "127.0.0.1:7070",
            active_lists: 3,
        };
        let list = Uuid::from_u128(9);
        let report = node.report(Some((list, true)));
        assert_eq!(report.members.len(), 1);
        assert_eq!(report.members[0].active_lists, Some(3));
        assert_eq!(report.members[0].state, "serving");
        assert_eq!(report.serving_hosts, ["127.0.0.1:7070"]);
        let owned = report.list.clone().unwrap();
        assert_eq!(owned.owner.as_deref(), Some("127.0.0.1:7070"));
        assert_eq!(owned.active, Some(true));
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(
            serde_json::from_str::<ClusterReport>(&json).unwrap(),
            report
        );
        let unasked = serde_json::to_value(node.report(None)).unwrap();
        assert!(unasked.get("list").is_none());
        assert_eq!(
            unasked["members"][0]["internode_addr"],
            serde_json::Value::Null
        );
    }
}
