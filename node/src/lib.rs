//! listwire: real-time collaborative lists.
//!
//! This is the product crate and the composition root. It owns everything that knows what a
//! list is, and wires the edge (`listwire-gateway`) to storage (`listwire-storage`).
//!
//! Layout:
//! - [`domain`]: the pure list state machine (ops, events, state, permissions, votes, limits,
//!   stored encodings). No IO, no clock, no randomness.
//! - [`list`]: the list actor (ractor) — apply, group commit, ack, publish.
//! - [`host`]: the active lists of this node, activation, admission control, passivation.
//! - [`router`]: the node's implementation of the gateway's `Router` and `Accounts` seams.
//! - [`cluster`]: the node in a cluster (membership, routing to owners, forwarding, follows,
//!   handoff), over `listwire-cluster`.
//! - [`admin`]: the operator side (the admin view of the cluster, a graceful stop).
//! - [`server`]: wiring and graceful shutdown; [`config`]: every setting; [`dev_cluster`]:
//!   several nodes in one process over one store.
//! - [`client`]: the Rust client SDK; [`cli`]: the `listwire` command line.
//!
//! It is not: a membership or transport implementation (those are `listwire-cluster`'s), or
//! a storage engine (it only encodes events and snapshots).

pub mod admin;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dev_cluster;
pub mod domain;
pub mod host;
pub mod list;
pub mod metrics;
pub mod router;
pub mod secret;
pub mod server;
pub mod telemetry;
