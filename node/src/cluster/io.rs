//! What a cluster node talks to the world through: the internode network, the gossip transport
//! and the wall clock. Production uses [`ClusterIo::tokio`] (real TCP, real UDP, the system
//! clock); a simulation passes its own (see `simulations/src/dsim`).

use std::net::IpAddr;
use std::sync::Arc;

use listwire_cluster::membership::{GossipTransport, UdpTransport};
use listwire_cluster::transport::{Connector, Listener, SourceTcpConnector, TcpConnector};

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
    /// Real TCP, real UDP and the system clock, for a node whose internode listener is on
    /// `internode_ip`.
    pub fn tokio(internode_ip: IpAddr) -> ClusterIo {
        ClusterIo {
            connector: connector(internode_ip),
            listener: None,
            gossip: Arc::new(UdpTransport),
            wall: Arc::new(SystemClock),
            jitter_seed: None,
        }
    }
}

/// How a node dials its peers. A node listening on a loopback address of its own (one
/// machine, nodes on 127.0.0.11, 127.0.0.12, …) dials from it, so its peers and packet filters
/// see which node is calling; elsewhere the kernel's choice of source is the right one.
fn connector(internode_ip: IpAddr) -> Arc<dyn Connector> {
    if internode_ip.is_loopback() && !internode_ip.is_unspecified() {
        Arc::new(SourceTcpConnector::new(internode_ip))
    } else {
        Arc::new(TcpConnector)
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
