//! The cluster half of the admin view: this node's membership view, each live member's
//! figures (asked over the transport, each within a short deadline, `None` when a member does
//! not answer in time) and, when asked, a list's owner and whether it is active there.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use listwire_cluster::membership::Member;
use listwire_cluster::NodeId;
use uuid::Uuid;

use super::state::Picture;
use super::wire::{self, Request, Response};
use super::ClusterNode;
use crate::admin::report::{ClusterReport, ListReport, MemberReport};

impl ClusterNode {
    /// The admin view as this node sees it now; `peer_timeout` bounds each question to another
    /// node (they are asked at once, so the whole view takes about one such deadline).
    pub async fn report(&self, list: Option<Uuid>, peer_timeout: Duration) -> ClusterReport {
        let picture = self.state.picture();
        let self_id = self.state.self_id();
        let others = picture
            .view
            .live_members()
            .filter(|member| member.node_id() != self_id)
            .map(|member| async move {
                let active_lists = self.ask_active_lists(member, peer_timeout).await;
                (member.node_id().clone(), active_lists)
            });
        let list_report = async {
            match list {
                Some(list) => Some(self.list_report(&picture, list, peer_timeout).await),
                None => None,
            }
        };
        let (answers, list_report) = tokio::join!(join_all(others), list_report);
        let mut active_lists: HashMap<NodeId, u64> = answers
            .into_iter()
            .filter_map(|(node, answer)| answer.map(|count| (node, count)))
            .collect();
        active_lists.insert(self_id.clone(), self.host.active_lists() as u64);
        ClusterReport {
            node: self_id.to_string(),
            clustered: true,
            has_majority: picture.has_majority(),
            serving_hosts: picture
                .view
                .serving_hosts()
                .iter()
                .map(NodeId::to_string)
                .collect(),
            members: picture
                .view
                .members()
                .map(|member| member_report(member, active_lists.get(member.node_id()).copied()))
                .collect(),
            list: list_report,
        }
    }

    /// Who owns `list` in `picture`, and whether it is active there.
    async fn list_report(&self, picture: &Picture, list: Uuid, timeout: Duration) -> ListReport {
        let owner = picture.owner(list).and_then(|id| picture.view.member(id));
        let active = match owner {
            Some(owner) if owner.node_id() == self.state.self_id() => {
                Some(self.host.is_active(list))
            }
            Some(owner) if owner.is_live() => {
                match self.ask(owner, &Request::Active { list }, timeout).await {
                    Some(Response::Active(active)) => Some(active),
                    _ => None,
                }
            }
            _ => None,
        };
        ListReport {
            id: list,
            owner: owner.map(|member| member.node_id().to_string()),
            owner_client_addr: owner.map(|member| member.client_addr().to_owned()),
            active,
        }
    }

    async fn ask_active_lists(&self, member: &Member, timeout: Duration) -> Option<u64> {
        match self.ask(member, &Request::Stats, timeout).await {
            Some(Response::Stats(stats)) => Some(stats.active_lists),
            _ => None,
        }
    }

    /// One admin question to `member`; `None` (logged) when it cannot be answered in time.
    async fn ask(&self, member: &Member, request: &Request, timeout: Duration) -> Option<Response> {
        let peer = self.client.peer(member.node_id(), member.internode_addr());
        let answer = peer.request(wire::encode(request), timeout).await;
        let decoded = answer
            .map_err(|error| error.to_string())
            .and_then(|bytes| wire::decode(&bytes).map_err(|error| error.to_string()));
        match decoded {
            Ok(response) => Some(response),
            Err(error) => {
                tracing::debug!(node = %member.node_id(), %error, "no admin figures from a member");
                None
            }
        }
    }
}

fn member_report(member: &Member, active_lists: Option<u64>) -> MemberReport {
    MemberReport {
        node_id: member.node_id().to_string(),
        generation: member.generation(),
        roles: member
            .roles()
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect(),
        state: member.state().as_str().to_owned(),
        live: member.is_live(),
        internode_addr: Some(member.internode_addr().to_owned()),
        client_addr: member.client_addr().to_owned(),
        protocol_version: member.protocol_version(),
        active_lists,
    }
}

#[cfg(test)]
mod tests {
    use listwire_cluster::membership::{NodeState, Roles};

    use super::*;

    /// Goal: a member's report carries what it published, its liveness and the figure given.
    #[test]
    fn a_member_report_carries_what_the_member_published() {
        let member = Member::new(NodeId::new("node-1").unwrap(), 17)
            .with_roles(Roles::ALL)
            .with_state(NodeState::Draining)
            .with_addrs("10.0.0.1:7290", "10.0.0.1:7070")
            .with_protocol_version(1)
            .with_liveness(false);
        let report = member_report(&member, None);
        assert_eq!(
            report,
            MemberReport {
                node_id: "node-1".into(),
                generation: 17,
                roles: vec!["host".into(), "gateway".into()],
                state: "draining".into(),
                live: false,
                internode_addr: Some("10.0.0.1:7290".into()),
                client_addr: "10.0.0.1:7070".into(),
                protocol_version: 1,
                active_lists: None,
            }
        );
    }
}
