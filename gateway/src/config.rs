//! Every limit and timing of the edge, as one documented settings struct.

use std::time::Duration;

use crate::Error;

/// The shortest accepted JWT signing key, in bytes (HS256 wants at least the hash size).
pub const JWT_SECRET_BYTES_MIN: usize = 32;
/// The shortest accepted admin token, in bytes.
pub const ADMIN_TOKEN_BYTES_MIN: usize = 16;

/// The gateway's settings. `Default` gives the production limits; the JWT secret must be
/// supplied (the default is empty and [`crate::Gateway::new`] refuses it).
#[derive(Clone)]
pub struct GatewayConfig {
    /// Largest WebSocket text message handled; a bigger one (under the hard maximum) is answered
    /// with an `error` frame with code `too_large` and the connection stays open.
    pub ws_message_bytes_max: usize,
    /// Largest WebSocket message or frame read at all; beyond it the connection is closed with
    /// code 1009.
    pub ws_message_bytes_hard_max: usize,
    /// Largest HTTP request body; a bigger one gets `413` with code `too_large`.
    pub http_body_bytes_max: usize,
    /// Subscriptions one connection may hold; one more gets `too_large`.
    pub subscriptions_per_connection_max: usize,
    /// Capacity of a connection's outbound queue, in frames; overflowing it closes the
    /// connection with 1013 (slow consumer).
    pub outbound_queue_frames: usize,
    /// Ops one connection may have awaiting their outcome; past it the reader stops reading
    /// the socket until an outcome arrives (backpressure).
    pub ops_in_flight_per_connection_max: usize,
    /// Sustained ops per second per user (WebSocket and HTTP together).
    pub ops_per_second_per_user: u32,
    /// Ops a user may send in a burst above the sustained rate.
    pub ops_burst_per_user: u32,
    /// Sustained register and login attempts per second per client IP.
    pub auth_per_second_per_ip: u32,
    /// Register and login attempts per client IP in a burst.
    pub auth_burst_per_ip: u32,
    /// How long a session token stays valid.
    pub token_ttl: Duration,
    /// The HS256 signing key for session tokens; at least [`JWT_SECRET_BYTES_MIN`] bytes.
    pub jwt_secret: Vec<u8>,
    /// The operator credential of the admin routes (`/v1/admin/*`), sent as
    /// `Authorization: Bearer <token>`; at least [`ADMIN_TOKEN_BYTES_MIN`] bytes. `None`
    /// disables the admin routes (they answer 404). No user's session token is ever accepted
    /// there. Admin calls share the per-IP quota settings of register and login, with a
    /// budget of their own.
    pub admin_token: Option<String>,
    /// Argon2id memory cost in KiB (at least 8).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (at least 1).
    pub argon2_iterations: u32,
    /// How often the server pings each WebSocket.
    pub ping_interval: Duration,
    /// A WebSocket that sends nothing (no data, no pong) for this long is closed.
    pub idle_timeout: Duration,
    /// Longest a burst of outbound frames may take to reach the socket; exceeded → close 1008.
    pub write_timeout: Duration,
    /// Longest a client waits for an op's answer (HTTP or WebSocket). Past it the op is answered
    /// `unavailable` ("outcome unknown; retry with the same op_id"): it may still be applied,
    /// and the retry is answered from the list's op-id window.
    pub op_timeout: Duration,
    /// Concurrent WebSocket connections; past it an upgrade gets `503 unavailable`.
    pub connections_max: usize,
    /// Concurrent WebSocket connections of one user on this node; past it an upgrade gets
    /// `429 rate_limited`, so one account (a stolen token, a runaway script) cannot take the
    /// node's connections.
    pub connections_per_user_max: usize,
    /// Bytes each WebSocket reads from its socket at a time. Allocated per connection for its
    /// whole life (tungstenite's default is 128 KiB, which dominated the memory of idle
    /// connections); bigger messages are still assembled, in more reads.
    pub ws_read_buffer_bytes: usize,
    /// After the server sends a close frame, how long it keeps the socket open for the client
    /// to read it (so unread input does not reset the connection before the client sees why).
    pub close_linger: Duration,
    /// On shutdown, how long [`crate::serve`] waits for WebSocket connections to finish.
    pub shutdown_drain_timeout: Duration,
    /// How often idle rate-limiter keys are dropped and the metrics handle is upkept.
    pub maintenance_interval: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            ws_message_bytes_max: 64 << 10,
            ws_message_bytes_hard_max: 1 << 20,
            http_body_bytes_max: 64 << 10,
            subscriptions_per_connection_max: 100,
            outbound_queue_frames: 4096,
            ops_in_flight_per_connection_max: 1024,
            ops_per_second_per_user: 1000,
            ops_burst_per_user: 2000,
            auth_per_second_per_ip: 10,
            auth_burst_per_ip: 20,
            token_ttl: Duration::from_secs(24 * 3600),
            jwt_secret: Vec::new(),
            admin_token: None,
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            op_timeout: Duration::from_secs(10),
            ws_read_buffer_bytes: 4096,
            connections_max: 100_000,
            connections_per_user_max: 100,
            close_linger: Duration::from_secs(1),
            shutdown_drain_timeout: Duration::from_secs(10),
            maintenance_interval: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for GatewayConfig {
    // Hand-written so the secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("ws_message_bytes_max", &self.ws_message_bytes_max)
            .field("ws_message_bytes_hard_max", &self.ws_message_bytes_hard_max)
            .field("http_body_bytes_max", &self.http_body_bytes_max)
            .field(
                "subscriptions_per_connection_max",
                &self.subscriptions_per_connection_max,
            )
            .field("outbound_queue_frames", &self.outbound_queue_frames)
            .field(
                "ops_in_flight_per_connection_max",
                &self.ops_in_flight_per_connection_max,
            )
            .field("ops_per_second_per_user", &self.ops_per_second_per_user)
            .field("ops_burst_per_user", &self.ops_burst_per_user)
            .field("auth_per_second_per_ip", &self.auth_per_second_per_ip)
            .field("auth_burst_per_ip", &self.auth_burst_per_ip)
            .field("token_ttl", &self.token_ttl)
            .field("jwt_secret", &"<redacted>")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("argon2_memory_kib", &self.argon2_memory_kib)
            .field("argon2_iterations", &self.argon2_iterations)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("connections_max", &self.connections_max)
            .field("connections_per_user_max", &self.connections_per_user_max)
            .field("close_linger", &self.close_linger)
            .field("shutdown_drain_timeout", &self.shutdown_drain_timeout)
            .field("maintenance_interval", &self.maintenance_interval)
            .finish()
    }
}

impl GatewayConfig {
    /// Checks the settings and their relationships; the message names the offending field.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |message: &str| Err(Error::InvalidConfig(message.to_string()));
        if self.jwt_secret.len() < JWT_SECRET_BYTES_MIN {
            return invalid("jwt_secret must be at least 32 bytes");
        }
        if let Some(admin_token) = &self.admin_token {
            if admin_token.len() < ADMIN_TOKEN_BYTES_MIN {
                return invalid("admin_token must be at least 16 bytes");
            }
            // It travels in an `Authorization` header, which is trimmed before comparing.
            if !admin_token.bytes().all(|byte| byte.is_ascii_graphic()) {
                return invalid("admin_token must be printable ascii without spaces");
            }
        }
        if self.ws_message_bytes_max == 0
            || self.ws_message_bytes_hard_max < self.ws_message_bytes_max
        {
            return invalid("ws_message_bytes_hard_max must be at least ws_message_bytes_max, which must be positive");
        }
        let positive_counts = [
            ("http_body_bytes_max", self.http_body_bytes_max),
            (
                "subscriptions_per_connection_max",
                self.subscriptions_per_connection_max,
            ),
            ("outbound_queue_frames", self.outbound_queue_frames),
            (
                "ops_in_flight_per_connection_max",
                self.ops_in_flight_per_connection_max,
            ),
            ("connections_max", self.connections_max),
            ("connections_per_user_max", self.connections_per_user_max),
        ];
        for (name, value) in positive_counts {
            if value == 0 {
                return invalid(&format!("{name} must be positive"));
            }
        }
        let positive_rates = [
            ("ops_per_second_per_user", self.ops_per_second_per_user),
            ("ops_burst_per_user", self.ops_burst_per_user),
            ("auth_per_second_per_ip", self.auth_per_second_per_ip),
            ("auth_burst_per_ip", self.auth_burst_per_ip),
        ];
        for (name, value) in positive_rates {
            if value == 0 {
                return invalid(&format!("{name} must be positive"));
            }
        }
        let positive_durations = [
            ("token_ttl", self.token_ttl),
            ("ping_interval", self.ping_interval),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
            ("op_timeout", self.op_timeout),
            ("maintenance_interval", self.maintenance_interval),
        ];
        for (name, value) in positive_durations {
            if value.is_zero() {
                return invalid(&format!("{name} must be positive"));
            }
        }
        if self.idle_timeout <= self.ping_interval {
            return invalid("idle_timeout must be longer than ping_interval");
        }
        Ok(())
    }
}
