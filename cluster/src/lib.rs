//! listwire's cluster plumbing: who is in the cluster, who owns what, and how nodes talk.
//!
//! placeholder (rewritten below once the transport lands)
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
