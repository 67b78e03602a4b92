//! Accounts: users with unique usernames, and the user → lists index.

use uuid::Uuid;

use super::conn::{self, pg, to_i64, to_u64, Failure};
use super::metrics::Op;
use super::{sql, Key, PostgresStore};
use crate::{Error, Membership, UserRecord};

/// An index row to write: a live entry or a removal (tombstone), with its version.
pub(super) struct Entry {
    list_id: Uuid,
    version: i64,
    live: bool,
    role: String,
    title: String,
}

impl Entry {
    pub(super) fn live(membership: &Membership) -> Result<Entry, Error> {
        Ok(Entry {
            list_id: membership.list_id,
            version: to_i64(membership.version, "membership version")?,
            live: true,
            role: membership.role.clone(),
            title: membership.title.clone(),
        })
    }

    pub(super) fn removed(list_id: Uuid, version: u64) -> Result<Entry, Error> {
        Ok(Entry {
            list_id,
            version: to_i64(version, "membership version")?,
            live: false,
            role: String::new(),
            title: String::new(),
        })
    }
}

impl PostgresStore {
    /// Creates a user. The insert does nothing on a taken id or username, so re-running it
    /// after a lost answer is safe: finding the username held by our own id means an earlier
    /// attempt of ours won, and that is success.
    pub(super) async fn insert_user(&self, user: &UserRecord) -> Result<(), Error> {
        if user.username.is_empty() {
            return Err(Error::InvalidArgument("username is empty".into()));
        }
        let created_at = to_i64(user.created_at_ms, "created_at_ms")?;
        let inserted = self
            .retried(Op::CreateUser, "create user", || {
                self.insert_user_once(user, created_at)
            })
            .await?;
        if inserted {
            return Ok(());
        }
        let holder = self.user_by_name_or_id(Key::Name(&user.username)).await?;
        match holder {
            Some(holder) if holder.user_id == user.user_id => Ok(()),
            Some(_) => Err(Error::AlreadyExists(format!(
                "username {:?}",
                user.username
            ))),
            None => Err(Error::AlreadyExists(format!("user id {}", user.user_id))),
        }
    }

    async fn insert_user_once(&self, user: &UserRecord, created_at: i64) -> Result<bool, Error> {
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let insert = client
                .prepare_cached(sql::USER_INSERT)
                .await
                .map_err(pg("prepare"))?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
                &user.user_id,
                &user.username,
                &user.password_hash,
                &created_at,
            ];
            let rows = client
                .execute(&insert, &params)
                .await
                .map_err(pg("create user"))?;
            Ok(rows == 1)
        }
        .await;
        conn.finish(result)
    }

    async fn user_by_name_or_id(&self, key: Key<'_>) -> Result<Option<UserRecord>, Error> {
        let statement = match key {
            Key::Name(_) => sql::USER_BY_NAME,
            Key::Id(_) => sql::USER_BY_ID,
        };
        self.retried(Op::ReadUser, "read user", || self.user_once(statement, key))
            .await
    }

    pub(super) async fn user_once(
        &self,
        statement: &'static str,
        key: Key<'_>,
    ) -> Result<Option<UserRecord>, Error> {
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let select = client
                .prepare_cached(statement)
                .await
                .map_err(pg("prepare"))?;
            let row = match key {
                Key::Name(name) => client.query_opt(&select, &[&name]).await,
                Key::Id(id) => client.query_opt(&select, &[&id]).await,
            }
            .map_err(pg("read user"))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let created_at: i64 = conn::column(&row, 3, "user created_at_ms")?;
            Ok::<_, Failure>(Some(UserRecord {
                user_id: conn::column(&row, 0, "user id")?,
                username: conn::column(&row, 1, "username")?,
                password_hash: conn::column(&row, 2, "password hash")?,
                created_at_ms: to_u64(created_at, "created_at_ms")?,
            }))
        }
        .await;
        conn.finish(result)
    }

    /// Writes an index row unless a newer version is stored (one upsert; idempotent).
    pub(super) async fn membership_once(&self, user_id: Uuid, entry: &Entry) -> Result<(), Error> {
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let upsert = client
                .prepare_cached(sql::MEMBERSHIP_UPSERT)
                .await
                .map_err(pg("prepare"))?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
                &user_id,
                &entry.list_id,
                &entry.version,
                &entry.live,
                &entry.role,
                &entry.title,
            ];
            client
                .execute(&upsert, &params)
                .await
                .map_err(pg("write membership"))?;
            Ok(())
        }
        .await;
        conn.finish(result)
    }

    /// Live entries only: removals are filtered in the query, so they never use up the limit.
    pub(super) async fn memberships_once(
        &self,
        user_id: Uuid,
        limit: usize,
    ) -> Result<Vec<Membership>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let select = client
                .prepare_cached(sql::MEMBERSHIPS_SELECT)
                .await
                .map_err(pg("prepare"))?;
            let rows = client
                .query(&select, &[&user_id, &limit])
                .await
                .map_err(pg("read memberships"))?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let version: i64 = conn::column(&row, 3, "membership version")?;
                out.push(Membership {
                    list_id: conn::column(&row, 0, "membership list id")?,
                    role: conn::column(&row, 1, "membership role")?,
                    title: conn::column(&row, 2, "membership title")?,
                    version: to_u64(version, "membership version")?,
                });
            }
            Ok::<_, Failure>(out)
        }
        .await;
        conn.finish(result)
    }
}
