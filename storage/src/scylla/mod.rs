//! ScyllaDB backend: the production [`EventStore`] and [`AccountStore`].
//!
//! One keyspace (tablets disabled: LWT needs vnodes), prepared statements only, token-aware
//! routing, LWT only where a condition is needed. The schema and the reasoning behind it are in
//! `storage/SCHEMA.md`; in short:
//!
//! - `heads` holds each list's head **and a copy of its newest batch** (`tail`). An append wins
//!   `UPDATE heads … IF head = first_seq - 1` (or `INSERT … IF NOT EXISTS` for seq 1) and only
//!   then writes the batch row into its bucket of `batches`. Losers never write a batch row, so
//!   no orphan can shadow a winner's row, and a pruned key cannot be rewritten by a stale writer
//!   (the head condition fails).
//! - A crash between the two writes leaves the head one batch ahead of `batches`; the tail in the
//!   head row holds exactly that batch, and readers write it back (idempotent, identical bytes).
//! - Prune records a mark (`pruned_below`) first, then deletes whole buckets and a row range; it
//!   never touches the head.
//! - A snapshot over 64 KiB is written as 512 KiB chunks, then a small pointer row (length,
//!   chunk count, CRC-32C) written last makes it visible at once; readers verify before they
//!   return it. Older snapshots and their chunks are range-deleted after the pointer is written.
//! - At start, the consistency levels are checked against the keyspace's actual replication
//!   (`safety.rs`): a combination that could let two owners both win is refused.

mod accounts;
pub mod chunks;
pub mod config;
pub mod crc32c;
mod errors;
mod events;
mod history;
mod migrate;
mod page;
pub mod rows;
pub mod safety;
pub mod schema;
mod snapshots;
mod statements;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::{DefaultPolicy, LoadBalancingPolicy};
use scylla::statement::{Consistency as DriverConsistency, SerialConsistency as DriverSerial};
use uuid::Uuid;

use crate::{AccountStore, Batch, Error, EventStore, Membership, Snapshot, UserRecord};
pub use config::{Consistency, Replication, ScyllaConfig, SerialConsistency};
use statements::{Preparer, Statements};

/// The ScyllaDB store. Cloning is cheap: clones share one session.
#[derive(Clone)]
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    st: Statements,
    closed: AtomicBool,
    retries: u32,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore").finish_non_exhaustive()
    }
}

fn driver_consistency(c: Consistency) -> DriverConsistency {
    match c {
        Consistency::One => DriverConsistency::One,
        Consistency::LocalOne => DriverConsistency::LocalOne,
        Consistency::Quorum => DriverConsistency::Quorum,
        Consistency::LocalQuorum => DriverConsistency::LocalQuorum,
        Consistency::EachQuorum => DriverConsistency::EachQuorum,
        Consistency::All => DriverConsistency::All,
    }
}

/// Token-aware routing to `datacenter` only: with failover disabled the driver never sends a
/// request to another datacenter, so `LOCAL_SERIAL` Paxos rounds all run among that
/// datacenter's replicas (a dead datacenter makes the node unavailable, not unsafe).
fn pinned_policy(datacenter: &str) -> Arc<dyn LoadBalancingPolicy> {
    DefaultPolicy::builder()
        .prefer_datacenter(datacenter.to_owned())
        .permit_dc_failover(false)
        .token_aware(true)
        .build()
}

fn driver_serial(c: SerialConsistency) -> DriverSerial {
    match c {
        SerialConsistency::Serial => DriverSerial::Serial,
        SerialConsistency::LocalSerial => DriverSerial::LocalSerial,
    }
}

impl ScyllaStore {
    /// Connects to the cluster, creates or upgrades the schema (see `storage/SCHEMA.md`), checks
    /// the consistency settings against the keyspace's actual replication ([`safety`]), and
    /// prepares every statement. Fails with [`Error::Unavailable`] if the cluster cannot be
    /// reached, [`Error::InvalidArgument`] for a bad or unsafe config (the message says what to
    /// set instead), and [`Error::Backend`] (with the fix) if the keyspace uses tablets.
    pub async fn connect(config: ScyllaConfig) -> Result<ScyllaStore, Error> {
        config::check(&config)?;
        let serial = driver_serial(config.serial_consistency);
        let mut profile = ExecutionProfile::builder()
            .consistency(driver_consistency(config.consistency))
            .serial_consistency(Some(serial))
            .request_timeout(Some(config.request_timeout));
        if let Some(datacenter) = &config.datacenter {
            profile = profile.load_balancing_policy(pinned_policy(datacenter));
        }
        let session = SessionBuilder::new()
            .known_nodes(&config.nodes)
            .connection_timeout(config.connect_timeout)
            .default_execution_profile_handle(profile.build().into_handle())
            .build()
            .await
            .map_err(errors::connect)?;
        migrate::migrate(&session, &config.keyspace, &config.replication).await?;
        let shape = migrate::keyspace_shape(&session, &config.keyspace).await?;
        let levels = safety::Levels {
            consistency: config.consistency,
            serial: config.serial_consistency,
            datacenter: config.datacenter.as_deref(),
        };
        safety::check_keyspace(&config.keyspace, &levels, &shape)?;
        let preparer = Preparer {
            session: &session,
            keyspace: &config.keyspace,
            serial,
        };
        let st = preparer.all().await?;
        Ok(ScyllaStore {
            inner: Arc::new(Inner {
                session,
                st,
                closed: AtomicBool::new(false),
                retries: config.retries,
            }),
        })
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        Ok(())
    }

    /// Runs an idempotent operation, retrying transient failures up to `retries` times with a
    /// short exponential backoff. Never used for conditional writes.
    async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0u32;
        loop {
            match op().await {
                Err(err) if err.is_retryable() && attempt < self.inner.retries => {
                    let backoff = Duration::from_millis(20u64 << attempt.min(6));
                    tracing::debug!(%err, attempt, "scylla: retrying idempotent request");
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl EventStore for ScyllaStore {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        self.check_open()?;
        self.append_batch(list, batch).await
    }

    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        let row = self.retry(|| self.head_row(list, false)).await?;
        Ok(row.map_or(0, |r| r.head))
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
        self.retry(|| history::read_range(self, list, after_seq, max_batches))
            .await
    }

    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        self.check_open()?;
        self.put_snapshot(list, snapshot).await
    }

    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        self.retry(|| self.get_snapshot(list)).await
    }

    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        self.check_open()?;
        self.retry(|| self.prune_batches(list, up_to_seq)).await
    }

    async fn close(&self) -> Result<(), Error> {
        // Every acknowledged write is already durable on the replicas (the driver waits for the
        // consistency level), so closing only refuses new writes. The session's connections
        // close when the last clone is dropped.
        self.inner.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl AccountStore for ScyllaStore {
    async fn create_user(&self, user: UserRecord) -> Result<(), Error> {
        self.check_open()?;
        self.insert_user(user).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        if username.is_empty() {
            return Ok(None);
        }
        self.retry(|| self.find_user_by_name(username)).await
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, Error> {
        self.retry(|| self.find_user(user_id)).await
    }

    async fn put_membership(&self, user_id: Uuid, membership: Membership) -> Result<(), Error> {
        self.check_open()?;
        let record = crate::record::encode_membership(&membership)?;
        let key = membership.list_id.as_bytes().to_vec();
        let timestamp = rows::membership_timestamp(membership.version)?;
        self.retry(|| async {
            let values = (user_id, key.as_slice(), record.as_slice(), timestamp);
            self.inner
                .session
                .execute_unpaged(&self.inner.st.membership_put, values)
                .await
                .map(|_| ())
                .map_err(errors::exec("put membership"))
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
        let key = list_id.as_bytes().to_vec();
        let timestamp = rows::membership_timestamp(version)?;
        self.retry(|| async {
            let values = (timestamp, user_id, key.as_slice());
            self.inner
                .session
                .execute_unpaged(&self.inner.st.membership_delete, values)
                .await
                .map(|_| ())
                .map_err(errors::exec("remove membership"))
        })
        .await
    }

    async fn memberships(&self, user_id: Uuid, limit: usize) -> Result<Vec<Membership>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.retry(|| self.list_memberships(user_id, limit)).await
    }
}
