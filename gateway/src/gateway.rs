//! The [`Gateway`] handle: validated settings plus everything the routes share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::auth::{Passwords, Tokens};
use crate::config::GatewayConfig;
use crate::error::{EdgeError, ErrorCode};
use crate::limits::RateLimits;
use crate::metrics as names;
use crate::op_metrics::OpSeconds;
use crate::router::{Accounts, Admin, Principal, Router};
use crate::Error;

/// The client edge: build it once, then serve [`Gateway::app`] (usually through [`crate::serve`]).
/// Cloning is cheap; clones share everything.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

/// State shared by every route and connection.
pub(crate) struct Inner {
    pub config: GatewayConfig,
    pub router: Arc<dyn Router>,
    pub accounts: Arc<dyn Accounts>,
    /// The node's operator side; the admin routes answer 404 without it or without a token.
    pub admin: Option<Arc<dyn Admin>>,
    pub metrics: Option<PrometheusHandle>,
    pub tokens: Tokens,
    pub passwords: Passwords,
    pub limits: RateLimits,
    /// Op latency handles, resolved once.
    pub op_seconds: OpSeconds,
    /// The `process_*` metrics (CPU, memory, threads, file descriptors), read at each scrape.
    pub process: metrics_process::Collector,
    /// Cancelled when the server shuts down; every connection's token is a child of it.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket connection tasks, which axum's graceful shutdown does not see.
    pub connections: TaskTracker,
    connection_count: AtomicUsize,
    /// Open connections per user; a user's entry goes when its last connection closes.
    connections_per_user: Mutex<HashMap<Uuid, usize>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Validates `config` (the JWT secret must be at least 32 bytes) and builds the gateway.
    /// `admin` answers the admin routes, which are enabled only with it and
    /// [`GatewayConfig::admin_token`]. `metrics` is the handle `/metrics` renders; `None`
    /// answers that route with 404.
    pub fn new(
        config: GatewayConfig,
        router: Arc<dyn Router>,
        accounts: Arc<dyn Accounts>,
        admin: Option<Arc<dyn Admin>>,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Gateway, Error> {
        config.validate()?;
        let passwords = Passwords::new(config.argon2_memory_kib, config.argon2_iterations)?;
        let inner = Inner {
            tokens: Tokens::new(&config.jwt_secret, config.token_ttl),
            limits: RateLimits::new(&config),
            op_seconds: OpSeconds::new(),
            process: names::process_collector(),
            passwords,
            config,
            router,
            accounts,
            admin,
            metrics,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            connection_count: AtomicUsize::new(0),
            connections_per_user: Mutex::new(HashMap::new()),
        };
        Ok(Gateway {
            inner: Arc::new(inner),
        })
    }

    /// The whole HTTP and WebSocket application. Tests call it in-process.
    pub fn app(&self) -> axum::Router {
        crate::http::app(self.clone())
    }

    /// A session token for `principal` and its expiry in milliseconds since the epoch.
    pub fn mint_token(&self, principal: &Principal) -> (String, u64) {
        self.inner.tokens.mint(principal)
    }

    /// The principal of a valid, unexpired token, or `unauthorized`.
    pub fn verify_token(&self, token: &str) -> Result<Principal, EdgeError> {
        self.inner.tokens.verify(token)
    }

    /// Closes every WebSocket now (as [`crate::serve`] does on shutdown, but without waiting).
    /// For a node that must stop at once.
    pub fn close_connections(&self) {
        self.inner.shutdown.cancel();
    }

    /// The settings in force.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// Open WebSocket connections right now.
    pub fn connection_count(&self) -> usize {
        self.inner.connection_count.load(Ordering::Relaxed)
    }
}

impl Inner {
    /// Takes one of `user`'s connection slots: `rate_limited` when the user has
    /// `connections_per_user_max` open on this node.
    pub fn try_reserve_user_connection(
        self: &Arc<Self>,
        user: Uuid,
    ) -> Result<UserSlot, EdgeError> {
        let mut counts = self.user_counts();
        let count = counts.entry(user).or_insert(0);
        if *count >= self.config.connections_per_user_max {
            return Err(EdgeError {
                code: ErrorCode::RateLimited,
                message: "too many connections for this user; close some first".into(),
                retry_after_ms: Some(USER_LIMIT_RETRY_MS),
            });
        }
        *count += 1;
        Ok(UserSlot {
            inner: Arc::clone(self),
            user,
        })
    }

    fn user_counts(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, usize>> {
        self.connections_per_user
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a connection slot, or `unavailable` when `connections_max` are open.
    pub fn try_reserve_connection(self: &Arc<Self>) -> Result<ConnectionSlot, EdgeError> {
        let reserved =
            self.connection_count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                    (count < self.config.connections_max).then_some(count + 1)
                });
        match reserved {
            Ok(_) => {
                metrics::gauge!(names::CONNECTIONS).increment(1.0);
                Ok(ConnectionSlot {
                    inner: Arc::clone(self),
                })
            }
            Err(_) => Err(EdgeError::new(
                ErrorCode::Unavailable,
                "too many connections; retry later",
            )),
        }
    }
}

/// One of the `connections_max` connection slots; released on drop (also when an upgrade
/// fails and the connection never starts).
pub(crate) struct ConnectionSlot {
    inner: Arc<Inner>,
}

/// The wait a user over its connection limit is told to leave before trying again.
const USER_LIMIT_RETRY_MS: u64 = 5_000;

/// One of a user's `connections_per_user_max` slots; released on drop.
pub(crate) struct UserSlot {
    inner: Arc<Inner>,
    user: Uuid,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self.inner.user_counts();
        if let Some(count) = counts.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.inner.connection_count.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(names::CONNECTIONS).decrement(1.0);
    }
}
