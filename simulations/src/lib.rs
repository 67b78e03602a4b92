//! listwire's load generator and benchmarks.
//!
//! `listwire-bench` drives any listwire endpoint over the real client protocol (HTTP +
//! WebSocket), or starts a local node itself, and measures it honestly: offered load is
//! open-loop (latency counts from when an op was *due*, so a stalled server cannot hide its
//! queueing — no coordinated omission), and every figure is a distribution (p50/p99/p999/max).
//!
//! Layout: [`target`] (what to measure: a spawned node, running nodes, the reference
//! rebroadcast server, or an in-process node for tests; which node owns a list), [`cluster`]
//! (a cluster of `listwire serve` processes over PostgreSQL that the bench starts itself),
//! [`process`] (spawning, stopping and reading the memory and CPU time of processes),
//! [`wire`] (a lean WebSocket client and frame scanning), [`pace`] (open-loop scheduling),
//! [`report`] (histograms, JSON result lines, progress), [`plot`] (SVG latency plots), and one
//! module per scenario in [`scenarios`].
//!
//! [`chaos`] is the real-process chaos runner (`listwire-chaos`): a cluster of node processes
//! on loopback addresses of their own, faults from outside (kills, pauses, partitions), and
//! checkers over the database and the clients' records. The deterministic simulation comes
//! with its own module.

pub mod chaos;
pub mod cluster;
pub mod dsim;
pub mod pace;
pub mod plot;
pub mod process;
pub mod reference;
pub mod report;
pub mod scenarios;
pub mod target;
pub mod wire;

/// Raises this process's open-file limit to its hard limit (load tests open many sockets).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
