//! The typed configuration of a node: every setting has a flag, an environment variable and a
//! documented default. Parsed by clap, validated in [`ServeArgs::validate`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::domain::Limits;

/// Which storage backend the node persists to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The embedded LSM store under `--data-dir` (fsync per group commit). The default.
    Embedded,
    /// Process memory only: nothing survives a restart. For demos and tests.
    Memory,
    /// A ScyllaDB cluster (`--scylla-*` settings): for large clusters of listwire nodes.
    Scylla,
    /// A PostgreSQL database (`--postgres-*` settings): for small clusters, or anywhere
    /// ScyllaDB is not at hand.
    Postgres,
}

impl StoreKind {
    /// The backend's name as the `backend` label of storage metrics spells it.
    pub fn label(self) -> &'static str {
        match self {
            StoreKind::Embedded => "embedded",
            StoreKind::Memory => "memory",
            StoreKind::Scylla => "scylla",
            StoreKind::Postgres => "postgres",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `listwire serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address for HTTP and WebSocket clients (port 0 picks a free port).
    #[arg(long, env = "LISTWIRE_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Directory for the embedded store and the generated JWT secret.
    #[arg(long, env = "LISTWIRE_DATA_DIR", default_value = "./listwire-data")]
    pub data_dir: PathBuf,
    /// Storage backend.
    #[arg(long, env = "LISTWIRE_STORE", value_enum, default_value = "embedded")]
    pub store: StoreKind,
    /// HS256 secret for session tokens (at least 32 bytes). Without it, a secret is generated on
    /// first start and kept in `<data-dir>/jwt-secret`.
    #[arg(long, env = "LISTWIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// ScyllaDB contact points, `host:port,host:port` (with `--store scylla`).
    #[arg(long, env = "LISTWIRE_SCYLLA_NODES", default_value = "127.0.0.1:9042")]
    pub scylla_nodes: String,
    /// ScyllaDB keyspace (created with tablets disabled if missing).
    #[arg(long, env = "LISTWIRE_SCYLLA_KEYSPACE", default_value = "listwire")]
    pub scylla_keyspace: String,
    /// Replication of a new keyspace: `SimpleStrategy:1` (development) or
    /// `NetworkTopologyStrategy:dc1=3,dc2=3` (production).
    #[arg(
        long,
        env = "LISTWIRE_SCYLLA_REPLICATION",
        default_value = "SimpleStrategy:1"
    )]
    pub scylla_replication: String,
    /// Consistency of reads and writes: `quorum` (default), `all`, or `local_quorum` (only when
    /// the keyspace has one datacenter or `--scylla-datacenter` is set). Anything weaker than a
    /// quorum is refused at start.
    #[arg(long, env = "LISTWIRE_SCYLLA_CONSISTENCY", default_value = "quorum")]
    pub scylla_consistency: String,
    /// Consistency of conditions (lightweight transactions): `serial` (default), or
    /// `local_serial` (only when the keyspace has one datacenter or `--scylla-datacenter` is
    /// set).
    #[arg(
        long,
        env = "LISTWIRE_SCYLLA_SERIAL_CONSISTENCY",
        default_value = "serial"
    )]
    pub scylla_serial_consistency: String,
    /// Pin this node to one ScyllaDB datacenter, with no failover to others (empty: no pin).
    /// Makes `local_quorum`/`local_serial` safe on a `NetworkTopologyStrategy` keyspace that
    /// replicates to several datacenters, provided every listwire node of the cluster pins the
    /// same datacenter.
    #[arg(long, env = "LISTWIRE_SCYLLA_DATACENTER", default_value = "")]
    pub scylla_datacenter: String,
    /// ScyllaDB request timeout in milliseconds.
    #[arg(
        long,
        env = "LISTWIRE_SCYLLA_REQUEST_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub scylla_request_timeout_ms: u64,
    /// Retries of idempotent ScyllaDB requests on transient failures.
    #[arg(long, env = "LISTWIRE_SCYLLA_RETRIES", default_value_t = 3)]
    pub scylla_retries: u32,
    /// PostgreSQL database, `postgres://user:password@host:port/dbname` or libpq `key=value`
    /// (with `--store postgres`). Prefer the environment variable: flags show in `ps`.
    #[arg(long, env = "LISTWIRE_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// PostgreSQL schema holding listwire's tables (created if missing).
    #[arg(long, env = "LISTWIRE_POSTGRES_SCHEMA", default_value = "listwire")]
    pub postgres_schema: String,
    /// PostgreSQL connections in this node's pool.
    #[arg(long, env = "LISTWIRE_POSTGRES_POOL_SIZE", default_value_t = 16)]
    pub postgres_pool_size: usize,
    /// PostgreSQL statement timeout in milliseconds (also the lock and idle-in-transaction
    /// timeouts of listwire's sessions).
    #[arg(
        long,
        env = "LISTWIRE_POSTGRES_STATEMENT_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub postgres_statement_timeout_ms: u64,
    /// PostgreSQL connect timeout in milliseconds (TCP, startup and authentication).
    #[arg(
        long,
        env = "LISTWIRE_POSTGRES_CONNECT_TIMEOUT_MS",
        default_value_t = 3000
    )]
    pub postgres_connect_timeout_ms: u64,
    /// How long a request waits for a free pooled PostgreSQL connection, in milliseconds.
    #[arg(
        long,
        env = "LISTWIRE_POSTGRES_POOL_WAIT_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub postgres_pool_wait_timeout_ms: u64,
    /// Retries of idempotent PostgreSQL requests (and of appends that certainly did not apply)
    /// on transient failures.
    #[arg(long, env = "LISTWIRE_POSTGRES_RETRIES", default_value_t = 2)]
    pub postgres_retries: u32,
    /// Background flush/compaction threads of the embedded store (0 = one per core, up to 4).
    #[arg(long, env = "LISTWIRE_STORE_WORKER_THREADS", default_value_t = 0)]
    pub store_worker_threads: usize,
    /// How long an embedded-store request may wait for the disk (queueing, commit and fsync, or
    /// a read) before it fails as `unavailable`, in milliseconds.
    #[arg(
        long,
        env = "LISTWIRE_STORE_REQUEST_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub store_request_timeout_ms: u64,
    /// Skip fsync on group commit. Unsafe: acknowledged ops may be lost on power failure.
    #[arg(long, env = "LISTWIRE_NO_FSYNC")]
    pub no_fsync: bool,
    /// Log format.
    #[arg(long, env = "LISTWIRE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, per-module levels), e.g. `warn,listwire=debug`.
    /// The default shows listwire's own lines at info and libraries' only when they warn.
    #[arg(long, env = "LISTWIRE_LOG", default_value = crate::telemetry::DEFAULT_LOG_FILTER)]
    pub log: String,

    /// Maximum list title length in characters.
    #[arg(long, env = "LISTWIRE_TITLE_CHARS_MAX", default_value_t = 200)]
    pub title_chars_max: usize,
    /// Maximum item text length in bytes.
    #[arg(long, env = "LISTWIRE_ITEM_TEXT_BYTES_MAX", default_value_t = 4096)]
    pub item_text_bytes_max: usize,
    /// Maximum items per list.
    #[arg(long, env = "LISTWIRE_ITEMS_MAX", default_value_t = 10_000)]
    pub items_max: usize,
    /// Maximum members per list (owner included).
    #[arg(long, env = "LISTWIRE_MEMBERS_MAX", default_value_t = 10_000)]
    pub members_max: usize,

    /// Write a snapshot every this many events of a list.
    #[arg(long, env = "LISTWIRE_SNAPSHOT_EVERY", default_value_t = 1000)]
    pub snapshot_every: u64,
    /// Passivate a list actor after this many seconds without activity or subscribers.
    #[arg(long, env = "LISTWIRE_PASSIVATE_AFTER_SECS", default_value_t = 300)]
    pub passivate_after_secs: u64,
    /// Minimum interval between vote frames of a hot poll (tally coalescing), in milliseconds.
    #[arg(long, env = "LISTWIRE_TALLY_INTERVAL_MS", default_value_t = 100)]
    pub tally_interval_ms: u64,
    /// Ops admitted to one list but not yet answered; past it the list answers `busy`.
    #[arg(long, env = "LISTWIRE_LIST_INFLIGHT_MAX", default_value_t = 8192)]
    pub list_inflight_max: usize,
    /// Maximum active list actors on this node; past it new activations answer `busy`.
    #[arg(long, env = "LISTWIRE_LISTS_ACTIVE_MAX", default_value_t = 100_000)]
    pub lists_active_max: usize,
    /// Maximum concurrent list activations (storage reads) on this node.
    #[arg(
        long,
        env = "LISTWIRE_ACTIVATIONS_CONCURRENT_MAX",
        default_value_t = 64
    )]
    pub activations_concurrent_max: usize,
    /// Recent events each list keeps in memory to answer `subscribe` with `since`.
    #[arg(long, env = "LISTWIRE_RESUME_EVENTS_MAX", default_value_t = 4096)]
    pub resume_events_max: usize,
    /// Most bytes of events in one stored batch of a list (later ops form the next batch).
    #[arg(long, env = "LISTWIRE_BATCH_BYTES_MAX", default_value_t = 1 << 20)]
    pub batch_bytes_max: usize,
    /// Longest a list activation (loading its snapshot and tail) may take, in milliseconds.
    #[arg(long, env = "LISTWIRE_ACTIVATION_TIMEOUT_MS", default_value_t = 10_000)]
    pub activation_timeout_ms: u64,
    /// Longest a client waits for an op's answer before it gets `unavailable` ("outcome
    /// unknown; retry with the same op_id"); also bounds reads and subscriptions, in ms.
    #[arg(long, env = "LISTWIRE_OP_TIMEOUT_MS", default_value_t = 10_000)]
    pub op_timeout_ms: u64,

    /// Maximum WebSocket message size in bytes (bigger messages get `too_large`).
    #[arg(long, env = "LISTWIRE_WS_MESSAGE_BYTES_MAX", default_value_t = 64 * 1024)]
    pub ws_message_bytes_max: usize,
    /// WebSocket messages beyond this many bytes close the connection (1009) instead of
    /// getting a `too_large` error frame.
    #[arg(long, env = "LISTWIRE_WS_MESSAGE_BYTES_HARD_MAX", default_value_t = 1024 * 1024)]
    pub ws_message_bytes_hard_max: usize,
    /// Bytes each WebSocket connection reads at a time (allocated per connection).
    #[arg(long, env = "LISTWIRE_WS_READ_BUFFER_BYTES", default_value_t = 4096)]
    pub ws_read_buffer_bytes: usize,
    /// Ops one WebSocket connection may have unanswered; past it the server stops reading.
    #[arg(
        long,
        env = "LISTWIRE_OPS_IN_FLIGHT_PER_CONNECTION_MAX",
        default_value_t = 1024
    )]
    pub ops_in_flight_per_connection_max: usize,
    /// Seconds between server pings on an idle WebSocket.
    #[arg(long, env = "LISTWIRE_WS_PING_INTERVAL_SECS", default_value_t = 20)]
    pub ws_ping_interval_secs: u64,
    /// Close a WebSocket that sent nothing (not even a pong) for this many seconds (1008).
    #[arg(long, env = "LISTWIRE_WS_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub ws_idle_timeout_secs: u64,
    /// Close a WebSocket whose writes stall for this many seconds (1008).
    #[arg(long, env = "LISTWIRE_WS_WRITE_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_write_timeout_secs: u64,
    /// Maximum HTTP request body in bytes.
    #[arg(long, env = "LISTWIRE_HTTP_BODY_BYTES_MAX", default_value_t = 64 * 1024)]
    pub http_body_bytes_max: usize,
    /// Maximum subscriptions per WebSocket connection.
    #[arg(
        long,
        env = "LISTWIRE_SUBSCRIPTIONS_PER_CONNECTION_MAX",
        default_value_t = 100
    )]
    pub subscriptions_per_connection_max: usize,
    /// Outbound frames queued per connection before it is closed as a slow consumer.
    #[arg(long, env = "LISTWIRE_OUTBOUND_QUEUE_FRAMES", default_value_t = 4096)]
    pub outbound_queue_frames: usize,
    /// Sustained ops per second per user.
    #[arg(long, env = "LISTWIRE_OPS_PER_SECOND_PER_USER", default_value_t = 1000)]
    pub ops_per_second_per_user: u32,
    /// Op burst per user.
    #[arg(long, env = "LISTWIRE_OPS_BURST_PER_USER", default_value_t = 2000)]
    pub ops_burst_per_user: u32,
    /// Register/login attempts per second per client IP.
    #[arg(long, env = "LISTWIRE_AUTH_PER_SECOND_PER_IP", default_value_t = 10)]
    pub auth_per_second_per_ip: u32,
    /// Register/login burst per client IP.
    #[arg(long, env = "LISTWIRE_AUTH_BURST_PER_IP", default_value_t = 20)]
    pub auth_burst_per_ip: u32,
    /// Session token lifetime in seconds.
    #[arg(long, env = "LISTWIRE_TOKEN_TTL_SECS", default_value_t = 24 * 3600)]
    pub token_ttl_secs: u64,
    /// Argon2 memory cost in KiB.
    #[arg(long, env = "LISTWIRE_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// Argon2 iterations.
    #[arg(long, env = "LISTWIRE_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// Maximum concurrent WebSocket connections.
    #[arg(long, env = "LISTWIRE_CONNECTIONS_MAX", default_value_t = 100_000)]
    pub connections_max: usize,
    /// Maximum concurrent WebSocket connections of one user on this node (429 past it).
    #[arg(long, env = "LISTWIRE_CONNECTIONS_PER_USER_MAX", default_value_t = 100)]
    pub connections_per_user_max: usize,

    /// Operator credential for the admin API (`/v1/admin/*`, sent as `Authorization: Bearer`;
    /// at least 16 printable bytes). Without it the admin API is off (404).
    #[arg(long, env = "LISTWIRE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// How long the admin view waits for each other node's figures, in milliseconds.
    #[arg(long, env = "LISTWIRE_ADMIN_PEER_TIMEOUT_MS", default_value_t = 1000)]
    pub admin_peer_timeout_ms: u64,

    /// Cluster membership, internode transport and roles.
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

impl ServeArgs {
    /// Checks relationships between settings that clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("title-chars-max", self.title_chars_max),
            ("item-text-bytes-max", self.item_text_bytes_max),
            ("items-max", self.items_max),
            ("members-max", self.members_max),
            ("list-inflight-max", self.list_inflight_max),
            ("lists-active-max", self.lists_active_max),
            (
                "activations-concurrent-max",
                self.activations_concurrent_max,
            ),
            ("ws-message-bytes-max", self.ws_message_bytes_max),
            (
                "ops-in-flight-per-connection-max",
                self.ops_in_flight_per_connection_max,
            ),
            ("ws-ping-interval-secs", self.ws_ping_interval_secs as usize),
            ("ws-write-timeout-secs", self.ws_write_timeout_secs as usize),
            ("http-body-bytes-max", self.http_body_bytes_max),
            (
                "subscriptions-per-connection-max",
                self.subscriptions_per_connection_max,
            ),
            ("outbound-queue-frames", self.outbound_queue_frames),
            ("connections-max", self.connections_max),
            ("connections-per-user-max", self.connections_per_user_max),
            (
                "store-request-timeout-ms",
                self.store_request_timeout_ms as usize,
            ),
            ("activation-timeout-ms", self.activation_timeout_ms as usize),
            ("op-timeout-ms", self.op_timeout_ms as usize),
            ("batch-bytes-max", self.batch_bytes_max),
            ("admin-peer-timeout-ms", self.admin_peer_timeout_ms as usize),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("--{name} must be positive"));
            }
        }
        if self.snapshot_every == 0 {
            return Err("--snapshot-every must be positive".into());
        }
        if self.ops_per_second_per_user == 0 || self.auth_per_second_per_ip == 0 {
            return Err("rate limits must be positive".into());
        }
        if self.ops_burst_per_user < 1 || self.auth_burst_per_ip < 1 {
            return Err("bursts must be positive".into());
        }
        if self.ws_message_bytes_max >= self.ws_message_bytes_hard_max {
            return Err("--ws-message-bytes-max must be below --ws-message-bytes-hard-max".into());
        }
        if self.ws_idle_timeout_secs <= self.ws_ping_interval_secs {
            return Err("--ws-idle-timeout-secs must exceed --ws-ping-interval-secs".into());
        }
        if self.item_text_bytes_max >= self.ws_message_bytes_max {
            return Err("--item-text-bytes-max must be below --ws-message-bytes-max".into());
        }
        if self.store == StoreKind::Scylla {
            self.scylla_config()?;
        }
        self.cluster.validate()?;
        if self.store == StoreKind::Postgres {
            self.postgres_config()?;
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 32 {
                return Err("--jwt-secret must be at least 32 bytes".into());
            }
        }
        if let Some(token) = &self.admin_token {
            let printable = token.bytes().all(|byte| byte.is_ascii_graphic());
            if token.len() < listwire_gateway::ADMIN_TOKEN_BYTES_MIN || !printable {
                return Err("--admin-token must be at least 16 printable bytes, no spaces".into());
            }
        }
        Ok(())
    }

    /// The ScyllaDB settings, parsed and checked as far as possible without a server (the
    /// levels against the keyspace's replication are checked when the store connects).
    pub fn scylla_config(&self) -> Result<listwire_storage::scylla::ScyllaConfig, String> {
        use listwire_storage::scylla::config::{
            check, check_keyspace, parse_consistency, parse_datacenter, parse_nodes,
            parse_replication, parse_serial_consistency, ScyllaConfig,
        };
        use listwire_storage::scylla::safety::check_levels;
        let flag = |name: &'static str| {
            move |error: listwire_storage::Error| format!("--scylla-{name}: {error}")
        };
        check_keyspace(&self.scylla_keyspace).map_err(flag("keyspace"))?;
        let consistency = parse_consistency(&self.scylla_consistency)
            .and_then(|level| check_levels(level).map(|()| level))
            .map_err(flag("consistency"))?;
        let config = ScyllaConfig {
            nodes: parse_nodes(&self.scylla_nodes).map_err(flag("nodes"))?,
            keyspace: self.scylla_keyspace.clone(),
            replication: parse_replication(&self.scylla_replication)
                .map_err(flag("replication"))?,
            consistency,
            serial_consistency: parse_serial_consistency(&self.scylla_serial_consistency)
                .map_err(flag("serial-consistency"))?,
            datacenter: parse_datacenter(&self.scylla_datacenter).map_err(flag("datacenter"))?,
            request_timeout: Duration::from_millis(self.scylla_request_timeout_ms.max(1)),
            retries: self.scylla_retries,
            ..ScyllaConfig::default()
        };
        check(&config).map_err(|error| error.to_string())?;
        Ok(config)
    }

    /// The PostgreSQL settings, checked (the URL must be given and parse).
    pub fn postgres_config(&self) -> Result<listwire_storage::postgres::PostgresConfig, String> {
        let Some(url) = self
            .postgres_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
        else {
            return Err("--store postgres needs --postgres-url (or LISTWIRE_POSTGRES_URL)".into());
        };
        let config = listwire_storage::postgres::PostgresConfig {
            schema: self.postgres_schema.clone(),
            pool_size: self.postgres_pool_size,
            statement_timeout: Duration::from_millis(self.postgres_statement_timeout_ms),
            connect_timeout: Duration::from_millis(self.postgres_connect_timeout_ms),
            pool_wait_timeout: Duration::from_millis(self.postgres_pool_wait_timeout_ms),
            retries: self.postgres_retries,
            ..listwire_storage::postgres::PostgresConfig::new(url)
        };
        config
            .validate()
            .map_err(|error| format!("--postgres-*: {error}"))?;
        Ok(config)
    }

    /// The domain limits.
    pub fn limits(&self) -> Limits {
        Limits {
            title_chars_max: self.title_chars_max,
            item_text_bytes_max: self.item_text_bytes_max,
            items_max: self.items_max,
            members_max: self.members_max,
            ..Limits::default()
        }
    }

    /// The list actor and host settings.
    pub fn host_config(&self) -> crate::host::HostConfig {
        crate::host::HostConfig {
            limits: self.limits(),
            snapshot_every: self.snapshot_every,
            passivate_after: Duration::from_secs(self.passivate_after_secs),
            tally_interval: Duration::from_millis(self.tally_interval_ms),
            list_inflight_max: self.list_inflight_max,
            lists_active_max: self.lists_active_max,
            activations_concurrent_max: self.activations_concurrent_max,
            resume_events_max: self.resume_events_max,
            batch_bytes_max: self.batch_bytes_max,
            activation_timeout: Duration::from_millis(self.activation_timeout_ms),
            request_timeout: Duration::from_millis(self.op_timeout_ms),
            ..crate::host::HostConfig::default()
        }
    }
}

#[derive(Debug, clap::Parser)]
struct ServeFlags {
    #[command(flatten)]
    args: ServeArgs,
}

impl ServeArgs {
    /// Parses `serve` flags from a list (tests and embedding), defaults for everything else.
    pub fn from_flags<I, T>(flags: I) -> Result<ServeArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let mut all: Vec<std::ffi::OsString> = vec!["serve".into()];
        all.extend(flags.into_iter().map(Into::into));
        ServeFlags::try_parse_from(all).map(|parsed| parsed.args)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
