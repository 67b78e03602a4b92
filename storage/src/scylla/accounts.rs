//! Accounts: users, unique usernames, the user → lists index.

use uuid::Uuid;

use super::errors;
use super::rows;
use super::ScyllaStore;
use crate::record;
use crate::{Error, Membership, UserRecord};

impl ScyllaStore {
    /// Creates a user: the `users` row first (a fresh id, idempotent), then the username
    /// reservation as `INSERT … IF NOT EXISTS`. A loser deletes its `users` row. Because the
    /// reservation stores the user id, re-running it after a timeout is safe: finding our own
    /// id means our earlier attempt won. So a name never points to a missing user.
    pub(super) async fn insert_user(&self, user: UserRecord) -> Result<(), Error> {
        if user.username.is_empty() {
            return Err(Error::InvalidArgument("username is empty".into()));
        }
        let record = record::encode_user(&user)?;
        let st = &self.inner.st;
        let id = user.user_id;
        self.retry(|| async {
            self.inner
                .session
                .execute_unpaged(&st.user_insert, (id, record.as_slice()))
                .await
                .map(|_| ())
                .map_err(errors::exec("write user"))
        })
        .await?;
        let owner = self.retry(|| self.reserve_name(&user.username, id)).await?;
        if owner == Some(id) || owner.is_none() {
            return Ok(());
        }
        let cleanup = self
            .retry(|| async {
                self.inner
                    .session
                    .execute_unpaged(&st.user_delete, (id,))
                    .await
                    .map(|_| ())
                    .map_err(errors::exec("delete losing user"))
            })
            .await;
        if let Err(err) = cleanup {
            tracing::warn!(%err, user_id = %id, "scylla: could not delete the user row of a lost signup");
        }
        Err(Error::AlreadyExists(format!(
            "username {:?}",
            user.username
        )))
    }

    /// Runs the reservation; `None` if it applied, else the owner's id.
    async fn reserve_name(&self, name: &str, id: Uuid) -> Result<Option<Uuid>, Error> {
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.st.username_insert, (name, id))
            .await
            .map_err(errors::exec("reserve username"))?;
        let rows = result
            .into_rows_result()
            .map_err(errors::rows_shape("reserve username"))?;
        let names: Vec<&str> = rows.column_specs().iter().map(|c| c.name()).collect();
        let row = rows
            .first_row::<scylla::value::Row>()
            .map_err(|e| Error::Corrupt(format!("reserve username: {e}")))?;
        match row.columns.first() {
            Some(Some(scylla::value::CqlValue::Boolean(true))) => Ok(None),
            Some(Some(scylla::value::CqlValue::Boolean(false))) => {
                match rows::lwt_user_id(&names, &row) {
                    Some(owner) => Ok(Some(owner)),
                    None => Err(Error::Corrupt(format!("username {name:?} has no user id"))),
                }
            }
            other => Err(Error::Corrupt(format!(
                "reserve username: first column is not [applied]: {other:?}"
            ))),
        }
    }

    pub(super) async fn find_user_by_name(&self, name: &str) -> Result<Option<UserRecord>, Error> {
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.st.username_select, (name,))
            .await
            .map_err(errors::exec("read username"))?;
        let rows = result
            .into_rows_result()
            .map_err(errors::rows_shape("read username"))?;
        let Some((id,)) = rows
            .maybe_first_row::<(Uuid,)>()
            .map_err(|e| Error::Corrupt(format!("username row: {e}")))?
        else {
            return Ok(None);
        };
        match self.find_user(id).await? {
            Some(user) if user.username == name => Ok(Some(user)),
            Some(user) => Err(Error::Corrupt(format!(
                "username {name:?} maps to user {id}, whose name is {:?}",
                user.username
            ))),
            None => Err(Error::Corrupt(format!(
                "username {name:?} maps to missing user {id}"
            ))),
        }
    }

    pub(super) async fn find_user(&self, id: Uuid) -> Result<Option<UserRecord>, Error> {
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.st.user_select, (id,))
            .await
            .map_err(errors::exec("read user"))?;
        let rows = result
            .into_rows_result()
            .map_err(errors::rows_shape("read user"))?;
        let row = rows
            .maybe_first_row::<(&[u8],)>()
            .map_err(|e| Error::Corrupt(format!("user row: {e}")))?;
        row.map(|(bytes,)| record::decode_user(id, bytes))
            .transpose()
    }

    pub(super) async fn list_memberships(
        &self,
        user: Uuid,
        limit: usize,
    ) -> Result<Vec<Membership>, Error> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.st.memberships_select, (user, limit))
            .await
            .map_err(errors::exec("read memberships"))?;
        let rows = result
            .into_rows_result()
            .map_err(errors::rows_shape("read memberships"))?;
        let mut out = Vec::new();
        for row in rows
            .rows::<(&[u8], &[u8])>()
            .map_err(errors::rows("memberships"))?
        {
            let (key, bytes) = row.map_err(|e| Error::Corrupt(format!("membership row: {e}")))?;
            // Removals are row deletions here (see `membership_timestamp`); a removal record
            // could only come from another backend's data and is skipped like a tombstone.
            if let Some(membership) =
                record::decode_membership(record::decode_id(key)?, bytes)?.into_live()
            {
                out.push(membership);
            }
        }
        Ok(out)
    }
}
