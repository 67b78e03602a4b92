//! What one node publishes about itself, and its (private) encoding as chitchat key-values.

use std::fmt;

use crate::NodeId;

/// What a node does in the cluster. A node may have several roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Hosts list actors: a placement candidate while it is [`NodeState::Serving`].
    Host,
    /// Holds client connections and routes their ops to owners.
    Gateway,
}

impl Role {
    /// The role's name, as gossiped and shown to operators (`host`, `gateway`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Gateway => "gateway",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "host" => Some(Role::Host),
            "gateway" => Some(Role::Gateway),
            _ => None,
        }
    }
}

/// A set of [`Role`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Roles {
    host: bool,
    gateway: bool,
}

impl Roles {
    /// No role.
    pub const NONE: Roles = Roles {
        host: false,
        gateway: false,
    };
    /// Only [`Role::Host`].
    pub const HOST: Roles = Roles {
        host: true,
        gateway: false,
    };
    /// Only [`Role::Gateway`].
    pub const GATEWAY: Roles = Roles {
        host: false,
        gateway: true,
    };
    /// Both roles (a single-binary node).
    pub const ALL: Roles = Roles {
        host: true,
        gateway: true,
    };

    /// The set of the given roles.
    pub fn of(roles: &[Role]) -> Roles {
        let mut set = Roles::NONE;
        for role in roles {
            match role {
                Role::Host => set.host = true,
                Role::Gateway => set.gateway = true,
            }
        }
        set
    }

    /// Whether `role` is in the set.
    pub fn contains(self, role: Role) -> bool {
        match role {
            Role::Host => self.host,
            Role::Gateway => self.gateway,
        }
    }

    /// The roles in the set, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        [Role::Host, Role::Gateway]
            .into_iter()
            .filter(move |role| self.contains(*role))
    }

    fn encode(self) -> String {
        let names: Vec<&str> = self.iter().map(Role::as_str).collect();
        names.join(",")
    }

    /// Unknown role names are skipped, so a newer build may add roles without older builds
    /// dropping the member altogether.
    fn decode(text: &str) -> Roles {
        let roles: Vec<Role> = text.split(',').filter_map(Role::parse).collect();
        Roles::of(&roles)
    }
}

/// A node's lifecycle state, published in gossip. It only moves forward:
/// `joining` → `serving` → `draining` → `left` (a drain may be cancelled back to `serving`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    /// Started, not yet ready: owns nothing.
    Joining,
    /// Ready; a host in this state is a placement candidate.
    Serving,
    /// Shedding its work before leaving: not a placement candidate, still counted as a known
    /// host while it is live.
    Draining,
    /// Finished draining and about to stop gossiping: no longer counted as a known host.
    Left,
}

impl NodeState {
    /// The state's name, as logged and gossiped.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Joining => "joining",
            NodeState::Serving => "serving",
            NodeState::Draining => "draining",
            NodeState::Left => "left",
        }
    }

    fn parse(text: &str) -> Option<NodeState> {
        match text {
            "joining" => Some(NodeState::Joining),
            "serving" => Some(NodeState::Serving),
            "draining" => Some(NodeState::Draining),
            "left" => Some(NodeState::Left),
            _ => None,
        }
    }

    /// Whether a node may move from `self` to `next`: `left` is final and nobody goes back to
    /// `joining`.
    pub fn may_become(self, next: NodeState) -> bool {
        match (self, next) {
            (NodeState::Left, NodeState::Left) => true,
            (NodeState::Left, _) => false,
            (current, NodeState::Joining) => current == NodeState::Joining,
            _ => true,
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node as the view knows it: what it published and whether the failure detector
/// currently considers it live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    node_id: NodeId,
    generation: u64,
    roles: Roles,
    state: NodeState,
    internode_addr: String,
    client_addr: String,
    gossip_addr: Option<std::net::SocketAddr>,
    protocol_version: u32,
    is_live: bool,
}

impl Member {
    /// A live member with no roles, state `joining`, empty addresses and protocol version 0.
    /// Chain the `with_*` methods to describe it (useful to build views in tests).
    pub fn new(node_id: NodeId, generation: u64) -> Member {
        Member {
            node_id,
            generation,
            roles: Roles::NONE,
            state: NodeState::Joining,
            internode_addr: String::new(),
            client_addr: String::new(),
            gossip_addr: None,
            protocol_version: 0,
            is_live: true,
        }
    }

    /// This member gossiping at `gossip_addr`.
    pub fn with_gossip_addr(mut self, gossip_addr: std::net::SocketAddr) -> Member {
        self.gossip_addr = Some(gossip_addr);
        self
    }

    /// The address it gossips at (what other nodes name as its seed), if known.
    pub fn gossip_addr(&self) -> Option<std::net::SocketAddr> {
        self.gossip_addr
    }

    /// This member with `roles`.
    pub fn with_roles(mut self, roles: Roles) -> Member {
        self.roles = roles;
        self
    }

    /// This member in `state`.
    pub fn with_state(mut self, state: NodeState) -> Member {
        self.state = state;
        self
    }

    /// This member with the given internode (transport) and client (HTTP) addresses.
    pub fn with_addrs(mut self, internode_addr: &str, client_addr: &str) -> Member {
        self.internode_addr = internode_addr.to_string();
        self.client_addr = client_addr.to_string();
        self
    }

    /// This member speaking `protocol_version`.
    pub fn with_protocol_version(mut self, protocol_version: u32) -> Member {
        self.protocol_version = protocol_version;
        self
    }

    /// This member, live or dead.
    pub fn with_liveness(mut self, is_live: bool) -> Member {
        self.is_live = is_live;
        self
    }

    /// The node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }
    /// The node's generation: it increases on every start, so a higher one is a restart.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// The node's roles.
    pub fn roles(&self) -> Roles {
        self.roles
    }
    /// The node's published lifecycle state.
    pub fn state(&self) -> NodeState {
        self.state
    }
    /// Where the node's internode transport listens (`host:port`).
    pub fn internode_addr(&self) -> &str {
        &self.internode_addr
    }
    /// Where the node's client (HTTP and WebSocket) port listens (`host:port`).
    pub fn client_addr(&self) -> &str {
        &self.client_addr
    }
    /// The internode protocol version the node's build speaks.
    pub fn protocol_version(&self) -> u32 {
        self.protocol_version
    }
    /// Whether the failure detector considers the node live (self is always live).
    pub fn is_live(&self) -> bool {
        self.is_live
    }
    /// Whether the node is a host.
    pub fn is_host(&self) -> bool {
        self.roles.contains(Role::Host)
    }
    /// Live, a host and serving: a placement candidate.
    pub fn is_serving_host(&self) -> bool {
        self.is_live && self.is_host() && self.state == NodeState::Serving
    }
}

// The chitchat keys. They are private: only this module reads or writes them.
const KEY_ROLES: &str = "lw.roles";
const KEY_STATE: &str = "lw.state";
const KEY_INTERNODE_ADDR: &str = "lw.internode_addr";
const KEY_CLIENT_ADDR: &str = "lw.client_addr";
const KEY_PROTOCOL_VERSION: &str = "lw.protocol_version";

/// The key under which the state is published (used by [`super::Membership::set_state`]).
pub(super) const STATE_KEY: &str = KEY_STATE;

/// The key-values a node publishes at start.
pub(super) fn initial_key_values(member: &Member) -> Vec<(String, String)> {
    vec![
        (KEY_ROLES.to_string(), member.roles.encode()),
        (KEY_STATE.to_string(), member.state.as_str().to_string()),
        (
            KEY_INTERNODE_ADDR.to_string(),
            member.internode_addr.clone(),
        ),
        (KEY_CLIENT_ADDR.to_string(), member.client_addr.clone()),
        (
            KEY_PROTOCOL_VERSION.to_string(),
            member.protocol_version.to_string(),
        ),
    ]
}

/// Reads a member back from a chitchat node state. `None` if a key is missing or malformed
/// (a node whose state has not fully arrived yet, or not a listwire node): such a node is
/// left out of the view until its state is complete.
pub(super) fn member_from_state(
    chitchat_id: &chitchat::ChitchatId,
    node_state: &chitchat::NodeState,
    is_live: bool,
) -> Option<Member> {
    let node_id = NodeId::new(chitchat_id.node_id.to_string()).ok()?;
    let state = NodeState::parse(node_state.get(KEY_STATE)?)?;
    let protocol_version = node_state.get(KEY_PROTOCOL_VERSION)?.parse().ok()?;
    Some(Member {
        node_id,
        generation: chitchat_id.generation_id,
        roles: Roles::decode(node_state.get(KEY_ROLES)?),
        state,
        internode_addr: node_state.get(KEY_INTERNODE_ADDR)?.to_string(),
        client_addr: node_state.get(KEY_CLIENT_ADDR)?.to_string(),
        gossip_addr: Some(chitchat_id.gossip_advertise_addr),
        protocol_version,
        is_live,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Roles round-trip through their gossip encoding, and unknown names are skipped.
    #[test]
    fn roles_encoding_round_trips() {
        for roles in [Roles::NONE, Roles::HOST, Roles::GATEWAY, Roles::ALL] {
            assert_eq!(Roles::decode(&roles.encode()), roles);
        }
        assert_eq!(Roles::decode("host,archiver"), Roles::HOST);
        assert_eq!(
            Roles::ALL.iter().collect::<Vec<_>>(),
            [Role::Host, Role::Gateway]
        );
    }

    /// Every state round-trips; `left` is final and nobody returns to `joining`.
    #[test]
    fn states_encode_and_move_forward() {
        let all = [
            NodeState::Joining,
            NodeState::Serving,
            NodeState::Draining,
            NodeState::Left,
        ];
        for state in all {
            assert_eq!(NodeState::parse(state.as_str()), Some(state));
            assert!(NodeState::Joining.may_become(state));
            assert_eq!(NodeState::Left.may_become(state), state == NodeState::Left);
        }
        assert!(NodeState::Draining.may_become(NodeState::Serving));
        assert!(!NodeState::Serving.may_become(NodeState::Joining));
    }
}
