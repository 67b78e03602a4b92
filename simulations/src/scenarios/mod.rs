//! The benchmark scenarios. Each takes a [`Target`](crate::target::Target) and parameters and
//! returns its results; the binary prints and plots them.

pub mod cpu;
pub mod failover;
pub mod fanout;
pub mod forwarded;
pub mod hot_poll;
pub mod hot_poll_ws;
pub mod layout;
pub mod memory;
pub mod mixed;
pub mod setup;
pub mod throughput;
