//! What a cluster node talks to the world through: the internode network, the gossip transport
//! and the wall clock. Production uses [`ClusterIo::tokio`] (real TCP, real UDP, the system
//! clock); a simulation passes its own (see `simulations/src/dsim`).

use std::sync::Arc;

use listwire_cluster::membership::{GossipTransport, UdpTransport};
use listwire_cluster::transport::{Connector, Listener, TcpConnector};

use crate::clock::{Clock, SystemClock};

/// The node's sockets and wall clock.
pub struct ClusterIo {
    /// Dials other nodes' internode listeners.
    pub connector: Arc<dyn Connector>,
    /// Accepts internode connections; `None` binds real TCP at `--internode-listen`.
    pub listener: Option<Box<dyn Listener>>,
    /// Carries gossip.
    pub gossip: Arc<dyn GossipTransport>,
    /// The wall clock the node reads afresh: its gossip generation at start, and the pause
    /// detector's second opinion (list event times use `HostConfig::clock`).
    pub wall: Arc<dyn Clock>,
    /// Seeds the internode client's reconnect jitter (`None`: from the OS).
    pub jitter_seed: Option<u64>,
}

impl ClusterIo {
    /// Real TCP, real UDP and the system clock.
    pub fn tokio() -> ClusterIo {
        ClusterIo {
            connector: Arc::new(TcpConnector),
            listener: None,
            gossip: Arc::new(UdpTransport),
            wall: Arc::new(SystemClock),
            jitter_seed: None,
        }
    }
}

impl std::fmt::Debug for ClusterIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterIo")
            .field("listener", &self.listener.is_some())
            .field("wall", &self.wall)
            .finish_non_exhaustive()
    }
}
