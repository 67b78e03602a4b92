//! The listwire client edge: one port serving the REST API and the WebSocket protocol of
//! `PROTOCOL.md`.
//!
//! It solves getting clients safely to and from list owners: it authenticates (argon2id
//! passwords, HS256 session tokens), enforces every size, count and rate limit with the
//! protocol's error codes, parses client frames, and fans pre-encoded frames out to sockets
//! through a bounded per-connection queue, closing connections that cannot keep up.
//!
//! Main types:
//! - [`Gateway`]: built from a [`GatewayConfig`], a [`Router`] and an [`Accounts`]; its
//!   [`Gateway::app`] is the whole HTTP and WebSocket application and [`serve`] runs it with
//!   graceful shutdown.
//! - [`Router`] and [`Accounts`]: what the gateway needs from the node; [`Admin`]: what its
//!   operator routes (`/v1/admin/*`, behind the admin token) need from it.
//! - [`FrameSink`]: a connection's outbound queue, which list owners push frames into.
//! - [`EdgeError`] and [`ErrorCode`]: the one error type clients see, mapped to HTTP statuses
//!   and error frames.
//!
//! Layout: `config` (settings), `auth` (tokens, passwords), `frames` (every wire shape the
//! gateway reads or writes), `limits` (rate limits), `http` (REST routes), `admin` (the
//! operator routes and their token check), `ws` (the upgrade),
//! `connection` (reader and writer of one socket), `server` (serving and shutdown), `metrics`,
//! `web` (the browser client's embedded files from `gateway/web/`, served at `/`).
//!
//! It does not know list types or authorize anything: ops travel as raw JSON, list state and
//! deltas arrive as bytes encoded once by their owner and are never re-encoded, and roles are
//! checked by the list owner. It does not store accounts or sessions either, and it knows
//! nothing of clusters: the admin view is the node's JSON, passed through.

#![deny(missing_docs)]

mod admin;
mod auth;
mod config;
mod connection;
mod deadlines;
pub mod error;
mod frames;
mod gateway;
mod http;
mod limits;
pub mod metrics;
mod op_metrics;
pub mod router;
mod server;
pub mod sink;
mod web;
mod writer;
mod ws;

pub use auth::Tokens;
pub use config::{GatewayConfig, ADMIN_TOKEN_BYTES_MIN, JWT_SECRET_BYTES_MIN};
pub use error::{EdgeError, ErrorCode};
pub use gateway::Gateway;
pub use metrics::{describe_metrics, register_metrics};
pub use router::{Account, Accounts, Admin, OpOutcome, Principal, Reply, Router};
pub use server::serve;
pub use sink::{FrameSink, Outbound, OutboundReceiver, PushError};

/// The gateway's own errors (as opposed to [`EdgeError`], which clients see).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is invalid; the message names it.
    #[error("invalid gateway config: {0}")]
    InvalidConfig(String),
    /// Serving failed.
    #[error("gateway io: {0}")]
    Io(#[from] std::io::Error),
}
