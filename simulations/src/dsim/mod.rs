//! A deterministic simulation of a listwire cluster under turmoil: several complete nodes (the
//! real `ClusterNode`: host, list actors, chitchat membership, placement, router, internode
//! transport, settle, follows) over one shared fault-injecting store, simulated clients calling
//! them through the gateway seam, a seeded plan of faults, and checkers after every run.
//!
//! Layout: [`net`] (turmoil TCP for internode, the ticket transport for gossip), [`store`]
//! (the shared store and its faults), [`node`] (one node in a turmoil host), [`node_store`]
//! (a node's handle on the store: a paused node's requests land when it wakes), [`gateway`],
//! [`clients`] and [`subscriber`] (the clients), [`faults`] (the menu and the scenarios),
//! [`driver`] (one seed, start to end), [`check`] (the invariants), [`records`], [`trace`],
//! [`rng`]. See `simulations/README.md`, section "Deterministic simulation".

pub mod check;
pub mod clients;
pub mod driver;
pub mod faults;
pub mod gateway;
pub mod net;
pub mod node;
pub mod node_store;
pub mod records;
pub mod rng;
pub mod store;
pub mod subscriber;
pub mod trace;

pub use driver::{run_seed, Options, RunReport};
pub use faults::Scenario;
