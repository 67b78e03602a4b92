//! Integration tests of a real node: loopback sockets, real WebSocket clients, real files.

mod support;

mod cli;
mod crash;
mod fencing;
mod host;
mod http;
mod idempotency;
mod index;
mod limits;
mod live;
mod permissions;
mod postgres;
mod resume;
mod tidy;
mod votes;
