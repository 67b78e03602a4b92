//! Cluster settings of `listwire serve`. A node joins a cluster when it has a cluster secret;
//! without one it runs alone and owns every list.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// `listwire serve` cluster flags.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Shared secret that authenticates internode connections (at least 16 bytes; the same on
    /// every node). Setting it makes this node part of a cluster.
    #[arg(long, env = "LISTWIRE_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// This node's id, unique in the cluster and stable across restarts. Default: the client
    /// address (`--listen`).
    #[arg(long, env = "LISTWIRE_NODE_ID")]
    pub node_id: Option<String>,
    /// The cluster's name; nodes of another cluster are refused.
    #[arg(long, env = "LISTWIRE_CLUSTER_ID", default_value = "listwire")]
    pub cluster_id: String,
    /// Gossip (UDP) address. Port 0 picks a free port.
    #[arg(long, env = "LISTWIRE_GOSSIP_LISTEN", default_value = "127.0.0.1:7280")]
    pub gossip_listen: SocketAddr,
    /// Gossip address other nodes use (default: `--gossip-listen`).
    #[arg(long, env = "LISTWIRE_GOSSIP_ADVERTISE")]
    pub gossip_advertise: Option<SocketAddr>,
    /// Internode (TCP) address. Port 0 picks a free port.
    #[arg(
        long,
        env = "LISTWIRE_INTERNODE_LISTEN",
        default_value = "127.0.0.1:7290"
    )]
    pub internode_listen: SocketAddr,
    /// Internode address other nodes dial (default: the bound `--internode-listen`).
    #[arg(long, env = "LISTWIRE_INTERNODE_ADVERTISE")]
    pub internode_advertise: Option<String>,
    /// Client address published to other nodes and the admin view (default: the bound
    /// `--listen`).
    #[arg(long, env = "LISTWIRE_CLIENT_ADVERTISE")]
    pub client_advertise: Option<String>,
    /// Gossip address of another node to join through (`host:port`); repeat for more.
    #[arg(long = "seed", env = "LISTWIRE_SEEDS", value_delimiter = ',')]
    pub seeds: Vec<String>,
    /// Roles of this node: `host` (owns lists), `gateway` (serves clients), or both.
    #[arg(
        long,
        env = "LISTWIRE_ROLES",
        default_value = "host,gateway",
        value_delimiter = ','
    )]
    pub roles: Vec<String>,
    /// Time between gossip rounds, in milliseconds.
    #[arg(long, env = "LISTWIRE_GOSSIP_INTERVAL_MS", default_value_t = 250)]
    pub gossip_interval_ms: u64,
    /// Failure-detector threshold: a node silent for about this many gossip intervals is dead.
    #[arg(long, env = "LISTWIRE_PHI_THRESHOLD", default_value_t = 8.0)]
    pub phi_threshold: f64,
    /// How long a dead node still counts as a known host (for the majority rule), in seconds.
    #[arg(long, env = "LISTWIRE_DEAD_NODE_GRACE_SECS", default_value_t = 3600)]
    pub dead_node_grace_secs: u64,
    /// How long a draining node waits for its lists to move before it stops, in seconds.
    #[arg(long, env = "LISTWIRE_DRAIN_TIMEOUT_SECS", default_value_t = 30)]
    pub drain_timeout_secs: u64,
}

impl ClusterArgs {
    /// Whether this node runs in a cluster.
    pub fn enabled(&self) -> bool {
        self.cluster_secret.is_some()
    }

    /// Checks the settings clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        let Some(secret) = &self.cluster_secret else {
            return Ok(());
        };
        if secret.len() < listwire_cluster::transport::SECRET_BYTES_MIN {
            return Err(format!(
                "--cluster-secret must be at least {} bytes",
                listwire_cluster::transport::SECRET_BYTES_MIN
            ));
        }
        for role in &self.roles {
            if !matches!(role.as_str(), "host" | "gateway") {
                return Err(format!("--roles: unknown role {role:?} (host, gateway)"));
            }
        }
        if self.gossip_interval_ms == 0
            || !self.phi_threshold.is_finite()
            || self.phi_threshold <= 0.0
        {
            return Err("--gossip-interval-ms and --phi-threshold must be positive".into());
        }
        if self.gossip_listen.ip().is_unspecified() && self.gossip_advertise.is_none() {
            return Err("--gossip-listen on all interfaces needs --gossip-advertise".into());
        }
        if self.internode_listen.ip().is_unspecified() && self.internode_advertise.is_none() {
            return Err("--internode-listen on all interfaces needs --internode-advertise".into());
        }
        Ok(())
    }

    /// The gossip interval.
    pub fn gossip_interval(&self) -> Duration {
        Duration::from_millis(self.gossip_interval_ms)
    }
}
