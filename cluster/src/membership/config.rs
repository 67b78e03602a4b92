//! Membership settings.

use std::net::SocketAddr;
use std::time::Duration;

use super::member::{NodeState, Roles};
use crate::{Error, NodeId};

/// Settings of one node's membership. Build with [`MembershipConfig::new`] (which fills the
/// defaults below) and adjust the fields.
///
/// The defaults detect a crashed node in about two seconds: a gossip round every 250 ms, a
/// failure-detector prior equal to that interval and a phi threshold of 8 make a silent node
/// dead after about 8 × 250 ms, noticed at the next round. `tests/membership.rs` measures it.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// The cluster's name. Gossip from a node with another cluster id is refused, so two
    /// clusters on one network never merge.
    pub cluster_id: String,
    /// This node's id, unique in the cluster and stable across restarts.
    pub node_id: NodeId,
    /// This start's generation. It must increase on every start of the same node id (startup
    /// unix milliseconds are the usual choice); peers ignore a generation lower than one they
    /// know.
    pub generation: u64,
    /// This node's roles.
    pub roles: Roles,
    /// The state published at start. Default `joining`.
    pub initial_state: NodeState,
    /// Where this node's internode transport listens, as peers should dial it (`host:port`).
    pub internode_addr: String,
    /// Where this node's client port listens, as gateways and redirects name it (`host:port`).
    pub client_addr: String,
    /// The internode protocol version this build speaks.
    pub protocol_version: u32,
    /// The UDP address gossip binds to (may be `0.0.0.0:port`).
    pub listen_addr: SocketAddr,
    /// The UDP address peers should gossip to; usually the listen address with a routable IP.
    pub advertise_addr: SocketAddr,
    /// Gossip addresses (`ip:port` or `host:port`, re-resolved through DNS) to contact at start
    /// and whenever this node knows no live peer.
    pub seeds: Vec<String>,
    /// Time between gossip rounds. Default 250 ms. Also the floor of how fast a change is seen.
    pub gossip_interval: Duration,
    /// The failure detector's threshold: a peer is dead once the time since its last heartbeat
    /// exceeds about `phi_threshold` mean heartbeat intervals. Default 8.
    pub phi_threshold: f64,
    /// The failure detector's prior for the heartbeat interval, before samples accumulate.
    /// Default: the gossip interval (chitchat's own default of 5 s would make the first
    /// detection take 40 s).
    pub initial_interval: Duration,
    /// How long a dead node stays in the state (and so in [`super::View::known_hosts`]) before
    /// it is garbage-collected. Default 1 h. Shorter means a permanently lost host stops
    /// counting against the majority sooner, but also that a node on the minority side of a
    /// long partition forgets the others and may believe it has a majority.
    pub dead_node_grace_period: Duration,
    /// How long deleted keys are kept as tombstones before they are garbage-collected.
    /// Default 1 h.
    pub marked_for_deletion_grace_period: Duration,
}

impl MembershipConfig {
    /// Settings with the defaults above, no roles, no seeds, empty addresses and protocol
    /// version 0, gossiping on `gossip_addr` (both listen and advertise address).
    pub fn new(
        cluster_id: impl Into<String>,
        node_id: NodeId,
        generation: u64,
        gossip_addr: SocketAddr,
    ) -> MembershipConfig {
        let gossip_interval = Duration::from_millis(250);
        MembershipConfig {
            cluster_id: cluster_id.into(),
            node_id,
            generation,
            roles: Roles::NONE,
            initial_state: NodeState::Joining,
            internode_addr: String::new(),
            client_addr: String::new(),
            protocol_version: 0,
            listen_addr: gossip_addr,
            advertise_addr: gossip_addr,
            seeds: Vec::new(),
            gossip_interval,
            phi_threshold: 8.0,
            initial_interval: gossip_interval,
            dead_node_grace_period: Duration::from_secs(3600),
            marked_for_deletion_grace_period: Duration::from_secs(3600),
        }
    }

    /// Checks the settings that chitchat would otherwise misbehave on.
    pub(super) fn validate(&self) -> Result<(), Error> {
        if self.cluster_id.is_empty() {
            return Err(Error::InvalidConfig("cluster id is empty".into()));
        }
        if self.gossip_interval.is_zero() || self.initial_interval.is_zero() {
            return Err(Error::InvalidConfig(
                "gossip and initial intervals must be positive".into(),
            ));
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.0) {
            return Err(Error::InvalidConfig(
                "phi threshold must be a positive number".into(),
            ));
        }
        if self.initial_state == NodeState::Left {
            return Err(Error::InvalidConfig("a node cannot start as left".into()));
        }
        Ok(())
    }

    pub(super) fn to_chitchat(&self) -> chitchat::ChitchatConfig {
        chitchat::ChitchatConfig {
            chitchat_id: chitchat::ChitchatId::new(
                self.node_id.as_str(),
                self.generation,
                self.advertise_addr,
            ),
            cluster_id: self.cluster_id.clone(),
            gossip_interval: self.gossip_interval,
            listen_addr: self.listen_addr,
            seed_nodes: self.seeds.clone(),
            failure_detector_config: chitchat::FailureDetectorConfig {
                phi_threshold: self.phi_threshold,
                initial_interval: self.initial_interval,
                dead_node_grace_period: self.dead_node_grace_period,
                ..Default::default()
            },
            marked_for_deletion_grace_period: self.marked_for_deletion_grace_period,
            catchup_callback: None,
            extra_liveness_predicate: None,
            // V1 compresses digests but needs every peer on chitchat 0.13+; V0 keeps rolling
            // upgrades from older builds possible.
            protocol_version: chitchat::ProtocolVersion::V0,
        }
    }
}
