//! The event store operations: conditional append, reads, snapshots, prune.

use scylla::response::query_result::QueryResult;
use uuid::Uuid;

use super::errors::{self, Class};
use super::rows::{self, bucket_of, bucket_start, to_i64, to_u64};
use super::ScyllaStore;
use crate::record;
use crate::{Batch, Error};

/// The `heads` row of a list.
#[derive(Debug, Clone)]
pub(super) struct HeadRow {
    /// The list's head (last_seq of its newest batch).
    pub head: u64,
    /// `first_seq` of the newest batch.
    pub tail_first: u64,
    /// The newest batch's record (a copy, so a crash before its batch row is written loses
    /// nothing).
    pub tail: Vec<u8>,
    /// `WRITETIME(tail)`: when the conditional append wrote it (not read at serial consistency).
    pub tail_written_us: Option<i64>,
}

type HeadCols = (Option<i64>, Option<i64>, Option<Vec<u8>>, Option<i64>);
type HeadColsSerial = (Option<i64>, Option<i64>, Option<Vec<u8>>);

/// The client clock in microseconds since the epoch, the unit of CQL write timestamps.
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
        })
}

fn conflict(list: Uuid, head: u64, first_seq: u64) -> Error {
    Error::AppendConflict {
        list,
        head,
        first_seq,
    }
}

fn first_row<T>(result: QueryResult, what: &str) -> Result<Option<T>, Error>
where
    T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
{
    let rows = result
        .into_rows_result()
        .map_err(errors::rows_shape(what))?;
    rows.maybe_first_row::<T>()
        .map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

impl ScyllaStore {
    /// The conditional append. See the module docs and `storage/SCHEMA.md`.
    pub(super) async fn append_batch(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        if batch.last_seq < batch.first_seq {
            return Err(Error::InvalidArgument(format!(
                "batch last_seq {} is below first_seq {}",
                batch.last_seq, batch.first_seq
            )));
        }
        rows::check_batch_size(&batch)?;
        let first = to_i64(batch.first_seq, "first_seq")?;
        let last = to_i64(batch.last_seq, "last_seq")?;
        if batch.first_seq == 0 {
            let head = self.head_row_retried(list).await?.map_or(0, |h| h.head);
            return Err(conflict(list, head, 0));
        }
        let record = record::encode_batch(&batch);
        // The batch row is written with a timestamp from before the LWT, so a row write delayed
        // past a later prune of this batch (by a newer owner) is shadowed by the prune's delete
        // instead of resurrecting the row. (A retry that finds its own earlier attempt applied
        // uses its own, later time: a prune in between needs a newer owner to have snapshotted
        // past this batch meanwhile, and would leave only a row below the mark, never read.)
        let written_at = now_us();
        let st = &self.inner.st;
        let result = if batch.first_seq == 1 {
            let values = (list, last, first, record.as_slice());
            self.inner
                .session
                .execute_unpaged(&st.head_insert, values)
                .await
        } else {
            let values = (last, first, record.as_slice(), list, first - 1);
            self.inner
                .session
                .execute_unpaged(&st.head_update, values)
                .await
        };
        match result {
            Ok(result) => {
                let outcome = lwt_result(result)?;
                if !outcome.applied {
                    if outcome.head != batch.last_seq {
                        return Err(conflict(list, outcome.head, batch.first_seq));
                    }
                    // Perhaps our own earlier attempt (a retry after a timeout): check the tail.
                    self.resolve(list, &batch, &record).await?;
                }
            }
            Err(err) => match errors::classify(&err) {
                Class::Uncertain => self.resolve(list, &batch, &record).await?,
                class => return Err(errors::to_error(class, "append", &err)),
            },
        }
        // We own this head now: write the batch row (idempotent, only the winner's bytes).
        self.retry(|| self.write_batch_row(list, batch.first_seq, &record, written_at))
            .await
    }

    /// Decides whether an uncertain (or seemingly lost) conditional append applied, by reading
    /// the head row at serial consistency (which also completes any in-progress Paxos round).
    async fn resolve(&self, list: Uuid, batch: &Batch, record: &[u8]) -> Result<(), Error> {
        let row = self.retry(|| self.head_row(list, true)).await?;
        let (head, ours) = match &row {
            Some(h) => (h.head, h.tail_first == batch.first_seq && h.tail == record),
            None => (0, false),
        };
        if ours && head == batch.last_seq {
            return Ok(());
        }
        if head.checked_add(1) == Some(batch.first_seq) {
            return Err(Error::Unavailable(format!(
                "append to list {list} timed out and did not apply; retry"
            )));
        }
        Err(conflict(list, head, batch.first_seq))
    }

    /// Writes a batch row with write timestamp `written_at_us`: no later than the conditional
    /// append that won the batch, so any prune of it (always later) shadows the row.
    pub(super) async fn write_batch_row(
        &self,
        list: Uuid,
        first_seq: u64,
        record: &[u8],
        written_at_us: i64,
    ) -> Result<(), Error> {
        let bucket = to_i64(bucket_of(first_seq), "bucket")?;
        let values = (
            list,
            bucket,
            to_i64(first_seq, "first_seq")?,
            record,
            written_at_us,
        );
        self.inner
            .session
            .execute_unpaged(&self.inner.st.batch_insert, values)
            .await
            .map(|_| ())
            .map_err(errors::exec("write batch row"))
    }

    async fn head_row_retried(&self, list: Uuid) -> Result<Option<HeadRow>, Error> {
        self.retry(|| self.head_row(list, false)).await
    }

    /// Reads the head row, at serial consistency if `serial` (then without the tail's write
    /// time: the serial read only resolves conditional appends).
    pub(super) async fn head_row(
        &self,
        list: Uuid,
        serial: bool,
    ) -> Result<Option<HeadRow>, Error> {
        let st = &self.inner.st;
        let stmt = if serial {
            &st.head_select_serial
        } else {
            &st.head_select
        };
        let result = self
            .inner
            .session
            .execute_unpaged(stmt, (list,))
            .await
            .map_err(errors::exec("read head"))?;
        let columns = if serial {
            first_row::<HeadColsSerial>(result, "head row")?.map(|(h, f, t)| (h, f, t, None))
        } else {
            first_row::<HeadCols>(result, "head row")?
        };
        let Some((head, tail_first, tail, tail_written_us)) = columns else {
            return Ok(None);
        };
        let (Some(head), Some(tail_first), Some(tail)) = (head, tail_first, tail) else {
            return Err(Error::Corrupt(format!(
                "head row of list {list} is incomplete"
            )));
        };
        Ok(Some(HeadRow {
            head: to_u64(head, "head")?,
            tail_first: to_u64(tail_first, "tail_first")?,
            tail,
            tail_written_us,
        }))
    }

    /// The seq below which every batch of `list` is pruned (`None` if never pruned): the
    /// highest mark, or the lowest with `lowest`.
    pub(super) async fn prune_mark(&self, list: Uuid, lowest: bool) -> Result<Option<u64>, Error> {
        let st = &self.inner.st;
        let stmt = if lowest {
            &st.mark_lowest
        } else {
            &st.mark_select
        };
        let result = self
            .inner
            .session
            .execute_unpaged(stmt, (list,))
            .await
            .map_err(errors::exec("read prune mark"))?;
        first_row::<(i64,)>(result, "prune mark")?
            .map(|(mark,)| to_u64(mark, "pruned_below"))
            .transpose()
    }

    /// `first_seq` of the newest batch starting at or before `seq` and not below `floor`,
    /// walking back over buckets (a bucket is empty only where a long batch spans it).
    pub(super) async fn find_floor(
        &self,
        list: Uuid,
        seq: u64,
        floor: u64,
    ) -> Result<Option<u64>, Error> {
        let mut bucket = bucket_of(seq);
        loop {
            let values = (list, to_i64(bucket, "bucket")?, to_i64(seq, "seq")?);
            let result = self
                .inner
                .session
                .execute_unpaged(&self.inner.st.batch_floor, values)
                .await
                .map_err(errors::exec("find batch"))?;
            if let Some((first, _)) = first_row::<(i64, Vec<u8>)>(result, "batch row")? {
                let first = to_u64(first, "first_seq")?;
                return Ok((first >= floor).then_some(first));
            }
            if bucket == 0 || bucket_start(bucket) <= floor {
                return Ok(None);
            }
            bucket -= 1;
        }
    }

    /// One bucket's batches with `from <= first_seq <= upto`, at most `limit`.
    pub(super) async fn bucket_rows(
        &self,
        list: Uuid,
        bucket: u64,
        from: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Batch>, Error> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let values = (
            list,
            to_i64(bucket, "bucket")?,
            to_i64(from, "seq")?,
            to_i64(upto, "seq")?,
            limit,
        );
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.st.batch_from, values)
            .await
            .map_err(errors::exec("read batches"))?;
        let rows = result
            .into_rows_result()
            .map_err(errors::rows_shape("read batches"))?;
        let mut out = Vec::new();
        for row in rows
            .rows::<(i64, &[u8])>()
            .map_err(errors::rows("batch rows"))?
        {
            let (first, record) = row.map_err(|e| Error::Corrupt(format!("batch row: {e}")))?;
            out.push(rows::decode_batch_row(first, record)?);
        }
        Ok(out)
    }
}

/// Parses a conditional result on `heads`.
fn lwt_result(result: QueryResult) -> Result<rows::LwtOutcome, Error> {
    let rows = result
        .into_rows_result()
        .map_err(errors::rows_shape("conditional append"))?;
    let names: Vec<&str> = rows.column_specs().iter().map(|c| c.name()).collect();
    let row = rows
        .first_row::<scylla::value::Row>()
        .map_err(|e| Error::Corrupt(format!("conditional append: {e}")))?;
    rows::lwt_outcome(&names, &row)
}
