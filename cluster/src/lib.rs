//! listwire's cluster plumbing: who is in the cluster, which node owns a key, and how nodes
//! talk to each other.
//!
//! It solves three problems, one module each:
//! - [`membership`]: gossip membership on chitchat (UDP). Each node publishes its id,
//!   generation, [`membership::Roles`], [`membership::NodeState`] (`joining` → `serving` →
//!   `draining` → `left`), internode and client addresses and protocol version.
//!   [`membership::Membership`] keeps a [`membership::View`] of every member in a
//!   `tokio::sync::watch`, with the serving hosts, the known hosts and the majority rule;
//!   [`membership::diff`] turns two views into added / updated / removed events.
//! - [`placement`]: a pure function of (serving hosts, 16-byte key) → owner, by rendezvous
//!   hashing over a specified hash, so every node and every build agrees.
//! - [`transport`]: authenticated, multiplexed internode connections carrying opaque
//!   [`bytes::Bytes`]: requests with per-request deadlines and server-pushed streams with
//!   bounded buffering, redialled with backoff, heartbeated, over any network behind the
//!   [`transport::Connector`] and [`transport::Listener`] traits.
//!
//! Plus [`NodeId`], the crate [`Error`] (each variant says whether to retry) and [`metrics`]
//! (names, labels, [`metrics::describe_metrics`]).
//!
//! How a node wires them (the node crate owns this; error handling shortened):
//!
//! ```no_run
//! # async fn wire(handler: std::sync::Arc<dyn listwire_cluster::transport::Handler>) -> Result<(), listwire_cluster::Error> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use listwire_cluster::membership::{Membership, MembershipConfig, NodeState, Roles};
//! use listwire_cluster::placement::Placement;
//! use listwire_cluster::transport::{Client, ClusterSecret, Server, TcpConnector, TcpListener, TransportConfig};
//! use listwire_cluster::NodeId;
//!
//! let node_id = NodeId::new("node-1")?;
//! let secret = ClusterSecret::new(b"32 random bytes from the secret store".to_vec())?;
//! let transport = TransportConfig::new("prod", node_id.clone(), secret, 1);
//! let server = Server::spawn(transport.clone(), TcpListener::bind("0.0.0.0:7100").await?, handler)?;
//! let client = Client::new(transport, Arc::new(TcpConnector))?;
//!
//! let generation = 1_764_000_000_000; // startup unix millis
//! let mut config = MembershipConfig::new("prod", node_id, generation, "10.0.0.1:7000".parse().unwrap());
//! config.roles = Roles::ALL;
//! config.internode_addr = "10.0.0.1:7100".into();
//! config.client_addr = "10.0.0.1:8080".into();
//! config.protocol_version = 1;
//! config.seeds = vec!["10.0.0.2:7000".into()];
//! let membership = Membership::spawn_udp(config).await?;
//! membership.set_state(NodeState::Serving).await?;
//!
//! let list_id = [7u8; 16];
//! let view = membership.view();
//! let placement = Placement::from_view(&view);
//! if let Some(owner) = placement.owner(&list_id).and_then(|id| view.member(id)) {
//!     let peer = client.peer(owner.node_id(), owner.internode_addr());
//!     let _reply = peer.request(bytes::Bytes::from_static(b"op"), Duration::from_secs(2)).await?;
//! }
//! membership.set_state(NodeState::Draining).await?;
//! // ... hand lists off, then:
//! membership.leave().await?;
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! It does **not**: know anything of lists, ops or users (payloads are opaque bytes); fence
//! owners (two nodes may briefly both believe they own a key; storage's conditional append is
//! what keeps one writer per list); route, hand off or fail over (the node builds those on this
//! API); encrypt traffic.
//!
//! # Threat model
//!
//! **Gossip is not authenticated.** Chitchat's UDP port accepts any datagram that names the
//! right cluster id. Someone who can reach it can forge membership: add fake members (with
//! any roles, states and addresses), mark real members' states (a fake `draining` or `left`
//! under a new generation), and so disturb placement and availability: lists move to nodes
//! that do not exist, the majority rule trips, requests go to wrong addresses. They can
//! **not** forge internode requests or streams: every transport connection opens with a mutual
//! HMAC-SHA256 challenge-response over the cluster secret (fresh 256-bit nonces, role labels,
//! both node ids and versions bound in), so a fake member's address never yields an
//! authenticated peer, and a client dialling a node id only accepts a server that proves that
//! id. And they cannot corrupt lists: ownership safety never depends on the view, because
//! storage fences writers.
//!
//! **The transport authenticates connections, not frames.** After the handshake, frames are
//! neither MACed nor encrypted: an attacker on the path (who can inject into or read a TCP
//! stream) could tamper with or read internode traffic, including the principals ops carry.
//!
//! Operators must therefore keep the gossip port and the internode port on a private network
//! (or firewall them to cluster nodes only), never expose them to clients, keep the cluster
//! secret in a secret store (at least 16 bytes, ideally 32 random bytes) and rotate it with
//! rolling restarts (`TransportConfig::accepted_secrets` says how); where the network itself
//! is not trusted, run internode traffic over an encrypted overlay (WireGuard, IPsec).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod error;
pub mod membership;
pub mod metrics;
mod node_id;
pub mod placement;
pub mod transport;

pub use error::Error;
pub use node_id::{NodeId, NODE_ID_BYTES_MAX};
