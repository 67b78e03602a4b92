//! Reading history, snapshots and pruning: each one statement, so each sees one snapshot of
//! the database and is safe to retry.

use bytes::Bytes;
use uuid::Uuid;

use super::conn::{self, pg, to_i64, to_u64, Failure};
use super::events::head_of;
use super::{sql, PostgresStore};
use crate::{Batch, Error, Snapshot};

impl PostgresStore {
    pub(super) async fn head_once(&self, list: Uuid) -> Result<u64, Error> {
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let select = client
                .prepare_cached(sql::HEAD_SELECT)
                .await
                .map_err(pg("prepare"))?;
            let row = client
                .query_opt(&select, &[&list])
                .await
                .map_err(pg("read head"))?;
            Ok::<u64, Failure>(head_of(row.as_ref())?)
        }
        .await;
        conn.finish(result)
    }

    /// Batches with `last_seq > after`, at most `max`, contiguous (checked: a gap in stored
    /// history is corruption).
    pub(super) async fn read_batches_once(
        &self,
        list: Uuid,
        after: u64,
        max: usize,
    ) -> Result<Vec<Batch>, Error> {
        // Nothing can follow a seq beyond the bigint range.
        let Ok(after_i) = to_i64(after, "after_seq") else {
            return Ok(Vec::new());
        };
        let Some(target) = after_i.checked_add(1) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let select = client
                .prepare_cached(sql::BATCHES_FROM)
                .await
                .map_err(pg("prepare"))?;
            let rows = client
                .query(&select, &[&list, &after_i, &target, &limit])
                .await
                .map_err(pg("read batches"))?;
            let mut out: Vec<Batch> = Vec::with_capacity(rows.len());
            for row in rows {
                let batch = decode_batch_row(&row)?;
                if let Some(previous) = out.last() {
                    if previous.last_seq.checked_add(1) != Some(batch.first_seq) {
                        return Err(Failure::Store(Error::Corrupt(format!(
                            "list {list}: batch {}..={} does not follow {}..={}",
                            batch.first_seq, batch.last_seq, previous.first_seq, previous.last_seq
                        ))));
                    }
                }
                out.push(batch);
            }
            Ok(out)
        }
        .await;
        conn.finish(result)
    }

    /// Newest wins, in one upsert: an older or equal seq changes nothing.
    pub(super) async fn write_snapshot_once(
        &self,
        list: Uuid,
        snapshot: &Snapshot,
    ) -> Result<(), Error> {
        let seq = to_i64(snapshot.seq, "snapshot seq")?;
        let body: &[u8] = &snapshot.body;
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let upsert = client
                .prepare_cached(sql::SNAPSHOT_UPSERT)
                .await
                .map_err(pg("prepare"))?;
            client
                .execute(&upsert, &[&list, &seq, &body])
                .await
                .map_err(pg("write snapshot"))?;
            Ok(())
        }
        .await;
        conn.finish(result)
    }

    pub(super) async fn latest_snapshot_once(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let select = client
                .prepare_cached(sql::SNAPSHOT_SELECT)
                .await
                .map_err(pg("prepare"))?;
            let row = client
                .query_opt(&select, &[&list])
                .await
                .map_err(pg("read snapshot"))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let seq = to_u64(conn::column(&row, 0, "snapshot seq")?, "snapshot seq")?;
            let body: Vec<u8> = conn::column(&row, 1, "snapshot body")?;
            Ok(Some(Snapshot {
                seq,
                body: Bytes::from(body),
            }))
        }
        .await;
        conn.finish(result)
    }

    /// Deletes batches with `last_seq <= up_to`; the head row is untouched, so the head never
    /// drops and a stale writer of a pruned key still fails the head condition.
    pub(super) async fn prune_once(&self, list: Uuid, up_to: u64) -> Result<(), Error> {
        let up_to = i64::try_from(up_to).unwrap_or(i64::MAX);
        let mut conn = self.checkout().await?;
        let result = async {
            let client = conn.client()?;
            let delete = client
                .prepare_cached(sql::BATCHES_PRUNE)
                .await
                .map_err(pg("prepare"))?;
            client
                .execute(&delete, &[&list, &up_to])
                .await
                .map_err(pg("prune"))?;
            Ok(())
        }
        .await;
        conn.finish(result)
    }
}

/// A `(first_seq, last_seq, body)` row as a batch.
fn decode_batch_row(row: &tokio_postgres::Row) -> Result<Batch, Error> {
    let first_seq = to_u64(conn::column(row, 0, "batch first_seq")?, "batch first_seq")?;
    let last_seq = to_u64(conn::column(row, 1, "batch last_seq")?, "batch last_seq")?;
    if last_seq < first_seq {
        return Err(Error::Corrupt(format!(
            "batch row: last_seq {last_seq} is below first_seq {first_seq}"
        )));
    }
    let body: Vec<u8> = conn::column(row, 2, "batch body")?;
    Ok(Batch {
        first_seq,
        last_seq,
        body: Bytes::from(body),
    })
}
