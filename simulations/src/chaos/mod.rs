//! Real-process chaos: three or more `listwire serve --store postgres` processes, each on a
//! loopback address of its own, under a mixed load, with faults injected from outside at
//! random moments (SIGKILL and restart, SIGSTOP/SIGCONT, network partitions between nodes),
//! then checkers against the database and the clients' records.
//!
//! Layout: [`nodes`] (the processes and their addresses), [`partition`] (iptables rules on the
//! node addresses, removed whatever happens), [`faults`] (the seeded schedule and its
//! injector), [`clients`] (ops over HTTP, retried with their op id), [`load`] (writers and
//! voters), [`subscriber`] (WebSocket followers), [`store`] (the audit of committed batches),
//! [`check`] (the invariants), [`report`]. `simulations/README.md` ("Real-process chaos")
//! says how to run it and what each checker checks.

mod check;
mod clients;
pub mod faults;
mod load;
mod nodes;
mod partition;
mod reads;
mod report;
mod run;
mod store;
mod subscriber;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub use check::Violation;
pub use faults::{Fault, FaultKind};
pub use report::Report;
pub use run::run;

/// What can stop a run before its checkers (a broken invariant is a [`Violation`], not this).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The run could not be set up as asked.
    #[error("chaos set-up: {0}")]
    Setup(String),
    /// A node process failed to start or to stop.
    #[error("node {0}: {1}")]
    Node(usize, String),
    /// Local IO (ports, directories, logs).
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The database.
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// A packet filter rule could not be added.
    #[error("packet filter: {0}")]
    Filter(String),
}

impl Error {
    fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
        move |error| Error::Io(what, error)
    }
}

/// Parameters of a run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Drives the fault schedule and the load's choices.
    pub seed: u64,
    /// How long the load runs (faults stop a little before it ends).
    pub duration: Duration,
    /// Node processes (at least 3).
    pub nodes: usize,
    /// The `listwire` binary.
    pub listwire_bin: PathBuf,
    /// Passed as `LISTWIRE_MUTANT` to every node.
    pub mutant: Option<String>,
    /// The shared PostgreSQL server.
    pub postgres_url: String,
    /// The first node's address; the others follow it.
    pub address_base: Ipv4Addr,
    /// Lists the writers edit (the poll comes on top).
    pub lists: usize,
    /// Writer tasks, and the most ops each sends.
    pub writers: usize,
    /// The most ops one writer sends.
    pub ops_per_writer_max: usize,
    /// Voters on the hot poll; each tries one vote more than the poll allows.
    pub voters: usize,
    /// The poll's `max_votes_per_user`.
    pub votes_per_user_max: usize,
    /// Whether to try partitions at all.
    pub partitions: bool,
    /// The resident memory no node may exceed, in bytes.
    pub rss_max_bytes: u64,
}

impl Params {
    /// Defaults for `seed` and `duration` with the node binary at `listwire_bin`.
    pub fn new(seed: u64, duration: Duration, listwire_bin: PathBuf, postgres_url: String) -> Self {
        Self {
            seed,
            duration,
            nodes: 3,
            listwire_bin,
            mutant: None,
            postgres_url,
            address_base: Ipv4Addr::new(127, 0, 0, 11),
            lists: 4,
            writers: 6,
            ops_per_writer_max: 100_000,
            voters: 120,
            votes_per_user_max: 2,
            partitions: true,
            rss_max_bytes: 1 << 30,
        }
    }
}
