//! Persistence for listwire.
//!
//! This crate stores **opaque** per-list event batches and snapshots, user accounts and the
//! user → lists index. It never interprets an event: the node crate encodes and decodes them.
//!
//! Main types: [`EventStore`] and [`AccountStore`] (the traits every backend implements),
//! [`Batch`], [`Snapshot`], [`UserRecord`], [`Membership`], and the crate [`Error`].
//! Backends: [`memory::MemoryStore`] (tests, simulation) and [`embedded::EmbeddedStore`]
//! (fjall LSM under the data directory, one fsync per group commit), [`scylla::ScyllaStore`]
//! (production ScyllaDB cluster, LWT conditional append; see `storage/SCHEMA.md`) and
//! [`postgres::PostgresStore`] (a PostgreSQL database shared by a small cluster: the conditional
//! append as one transaction on a per-list head row; also in `storage/SCHEMA.md`).
//!
//! Ownership safety: [`EventStore::append`] is conditional. A batch is written only if its
//! `first_seq` is exactly one past the list's stored head, atomically. Two writers racing on one
//! list therefore can never both succeed; the loser gets [`Error::AppendConflict`] and must stop.
//!
//! It is not: a query engine, a cache of list state, or aware of list semantics.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod embedded;
mod error;
pub mod memory;
pub mod metered;
pub mod mutants;
pub mod postgres;
pub mod record;
pub mod scylla;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;
mod types;

pub use error::Error;
pub use types::{AccountStore, Batch, EventStore, Membership, Snapshot, UserRecord};
