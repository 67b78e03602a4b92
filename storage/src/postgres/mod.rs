//! PostgreSQL backend: a shared [`EventStore`] and [`AccountStore`] for small clusters, and for
//! any machine where ScyllaDB is not at hand.
//!
//! Client: `tokio-postgres` with a `deadpool-postgres` pool (typed SQLSTATEs, no database needed
//! at build time). Every statement is static text, prepared once per connection and bound with
//! parameters (`sql.rs`). Every wait has a deadline: the pool's wait and create timeouts, the
//! driver's connect timeout, `statement_timeout`/`lock_timeout` on the server, and a client-side
//! deadline per attempt (`conn.rs`). The schema is created and migrated at connect
//! (`schema.rs`); the layout and its reasons are in `storage/SCHEMA.md`. In short:
//!
//! - `heads` holds each list's head. An append is one READ COMMITTED transaction: advance the
//!   head with `UPDATE … WHERE head = first_seq - 1` (a new list's head row is first made to
//!   exist at 0), then insert the batch row. Of two racers exactly one matches; the other gets
//!   [`Error::AppendConflict`], and so does a stale writer whose batch key was pruned, because the
//!   head row, not the batch key, fences.
//! - A commit whose answer is lost is resolved by reading the head back on another connection,
//!   waiting for the row lock the lost transaction may still hold (`events.rs`); an outcome that
//!   stays unknown is [`Error::Unavailable`] saying so, never a guess.
//! - Reads are single statements (one snapshot each), so a read racing a prune stays contiguous.
//!
//! It does not speak TLS (a URL with `sslmode=require` is refused) and does not retry appends:
//! a failed append is the caller's to handle (the node stops the list and reloads).

mod accounts;
pub mod config;
mod conn;
mod errors;
mod events;
mod history;
pub mod metrics;
pub mod schema;
mod sql;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::{AccountStore, Batch, Error, EventStore, Membership, Snapshot, UserRecord};
pub use config::PostgresConfig;
pub use metrics::describe_metrics;
use metrics::{Op, StoreMetrics};

/// The PostgreSQL store. Cloning is cheap: clones share one pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    closed: AtomicBool,
    retries: u32,
    attempt_deadline: Duration,
    statement_timeout: Duration,
    metrics: StoreMetrics,
    description: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("at", &self.inner.description)
            .finish_non_exhaustive()
    }
}

/// What the startup check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The schema version found before migrating (0 for a fresh schema).
    pub migrated_from: i32,
    /// The schema version now.
    pub schema_version: i32,
}

/// The oldest server this backend is written for (`server_version_num`).
const SERVER_VERSION_MIN: i32 = 120_000;

impl PostgresStore {
    /// Validates `config`, opens the pool, connects once (failing fast if the database cannot
    /// be reached), checks the server, and creates or migrates the schema. Fails with
    /// [`Error::InvalidArgument`] for bad settings, [`Error::Unavailable`] if the database cannot
    /// be reached in time, and [`Error::Backend`] if it refuses us (credentials, privileges, a
    /// schema newer than this build).
    pub async fn connect(config: PostgresConfig) -> Result<PostgresStore, Error> {
        Self::connect_reporting(config)
            .await
            .map(|(store, _)| store)
    }

    /// [`PostgresStore::connect`], also saying which schema version it found.
    pub async fn connect_reporting(
        config: PostgresConfig,
    ) -> Result<(PostgresStore, Connected), Error> {
        config.validate()?;
        let description = config.describe();
        let manager = Manager::from_config(
            config.driver_config()?,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.pool_wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| Error::Backend(format!("postgres pool: {e}")))?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                closed: AtomicBool::new(false),
                retries: config.retries,
                attempt_deadline: config.attempt_deadline(),
                statement_timeout: config.statement_timeout,
                metrics: StoreMetrics::new(),
                description,
            }),
        };
        let connected = store.prepare_database(&config.schema).await?;
        tracing::info!(
            at = %store.inner.description,
            schema_version = connected.schema_version,
            migrated_from = connected.migrated_from,
            "postgres: connected"
        );
        Ok((store, connected))
    }

    /// Where the data lives (no password), as given to [`PostgresStore::connect`].
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    async fn prepare_database(&self, schema: &str) -> Result<Connected, Error> {
        let deadline = self.inner.attempt_deadline * 2;
        let work = async {
            let mut conn = self.checkout().await?;
            let result = async {
                let client = conn.client()?;
                check_server(client).await?;
                let from = schema::migrate(client, schema).await?;
                Ok::<i32, Error>(from)
            }
            .await;
            conn.finish(result.map_err(conn::Failure::Store))
        };
        let migrated_from = match tokio::time::timeout(deadline, work).await {
            Ok(result) => result?,
            Err(_) => return Err(errors::timed_out("connect and migrate")),
        };
        Ok(Connected {
            migrated_from,
            schema_version: schema::latest_version(),
        })
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        Ok(())
    }
}

/// Refuses servers older than we support, and warns when the server's settings do not keep
/// acknowledged writes across a database crash (listwire acknowledges only durable ops).
async fn check_server(client: &tokio_postgres::Client) -> Result<(), Error> {
    let row = client
        .query_one(sql::DURABILITY_SETTINGS, &[])
        .await
        .map_err(|e| errors::to_error("read server settings", &e))?;
    let fsync: String = conn::column(&row, 0, "fsync setting")?;
    let synchronous_commit: String = conn::column(&row, 1, "synchronous_commit setting")?;
    let version: i32 = conn::column(&row, 2, "server version")?;
    if version < SERVER_VERSION_MIN {
        return Err(Error::Backend(format!(
            "postgres server version {version} is too old: PostgreSQL 12 or newer is needed"
        )));
    }
    if fsync != "on" {
        tracing::warn!(fsync, "postgres: the server runs with fsync off; acknowledged ops can be lost if its machine crashes");
    }
    if synchronous_commit == "off" {
        tracing::warn!(synchronous_commit, "postgres: synchronous_commit is off; acknowledged ops can be lost if the database crashes");
    }
    Ok(())
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        self.check_open()?;
        self.append_batch(list, batch).await
    }

    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        self.retried(Op::Head, "read head", || self.head_once(list))
            .await
    }

    async fn read_batches(
        &self,
        list: Uuid,
        after_seq: u64,
        max_batches: usize,
    ) -> Result<Vec<Batch>, Error> {
        if max_batches == 0 {
            return Ok(Vec::new());
        }
        self.retried(Op::ReadBatches, "read batches", || {
            self.read_batches_once(list, after_seq, max_batches)
        })
        .await
    }

    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        self.check_open()?;
        self.retried(Op::WriteSnapshot, "write snapshot", || {
            self.write_snapshot_once(list, &snapshot)
        })
        .await
    }

    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        self.retried(Op::ReadSnapshot, "read snapshot", || {
            self.latest_snapshot_once(list)
        })
        .await
    }

    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        self.check_open()?;
        self.retried(Op::Prune, "prune", || self.prune_once(list, up_to_seq))
            .await
    }

    async fn close(&self) -> Result<(), Error> {
        // Every acknowledged write is committed already; closing refuses new work and closes
        // the idle connections (requests in flight finish, and their connections are dropped).
        self.inner.closed.store(true, Ordering::Release);
        self.inner.pool.close();
        Ok(())
    }
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_user(&self, user: UserRecord) -> Result<(), Error> {
        self.check_open()?;
        self.insert_user(&user).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        if username.is_empty() {
            return Ok(None);
        }
        self.retried(Op::ReadUser, "read user", || {
            self.user_once(sql::USER_BY_NAME, Key::Name(username))
        })
        .await
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, Error> {
        self.retried(Op::ReadUser, "read user", || {
            self.user_once(sql::USER_BY_ID, Key::Id(user_id))
        })
        .await
    }

    async fn put_membership(&self, user_id: Uuid, membership: Membership) -> Result<(), Error> {
        self.check_open()?;
        let entry = accounts::Entry::live(&membership)?;
        self.retried(Op::PutMembership, "put membership", || {
            self.membership_once(user_id, &entry)
        })
        .await
    }

    async fn remove_membership(
        &self,
        user_id: Uuid,
        list_id: Uuid,
        version: u64,
    ) -> Result<(), Error> {
        self.check_open()?;
        let entry = accounts::Entry::removed(list_id, version)?;
        self.retried(Op::PutMembership, "remove membership", || {
            self.membership_once(user_id, &entry)
        })
        .await
    }

    async fn memberships(&self, user_id: Uuid, limit: usize) -> Result<Vec<Membership>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.retried(Op::ReadMemberships, "read memberships", || {
            self.memberships_once(user_id, limit)
        })
        .await
    }
}

/// How a user is looked up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'a> {
    /// By username.
    Name(&'a str),
    /// By user id.
    Id(Uuid),
}
