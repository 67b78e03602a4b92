//! Reading history and pruning.

use uuid::Uuid;

use super::errors;
use super::events::push_contiguous;
use super::rows::{bucket_of, bucket_start, to_i64};
use super::ScyllaStore;
use crate::record;
use crate::{Batch, Error};

impl ScyllaStore {
    /// Batches with `last_seq > after`, at most `max`, never past the head read first.
    ///
    /// Start: the batch straddling `after + 1` (the newest starting at or before it), but never
    /// below the prune mark. Then bucket by bucket forward. If the newest batch's row is missing
    /// (its writer crashed between the head LWT and the row write), it is taken from the head
    /// row's tail and written back.
    pub(super) async fn read_range(
        &self,
        list: Uuid,
        after: u64,
        max: usize,
    ) -> Result<Vec<Batch>, Error> {
        let (head, mark) = tokio::join!(self.head_row(list, false), self.prune_mark(list, false));
        let (Some(head), mark) = (head?, mark?) else {
            return Ok(Vec::new());
        };
        if after >= head.head {
            return Ok(Vec::new());
        }
        let target = after.saturating_add(1);
        let start = match self.find_floor(list, target, mark).await? {
            Some(first) => first,
            None => target.max(mark),
        };
        let mut out = Vec::new();
        let mut bucket = bucket_of(start);
        let mut from = start;
        while out.len() < max && bucket_start(bucket) <= head.head {
            let rows = self
                .bucket_rows(list, bucket, from, head.head, max - out.len())
                .await?;
            for batch in rows {
                if batch.last_seq > after {
                    push_contiguous(&mut out, batch, list)?;
                }
            }
            bucket += 1;
            from = bucket_start(bucket);
        }
        let covered = out.last().map_or(after, |b| b.last_seq);
        if out.len() < max && covered < head.head && head.tail_first >= mark {
            let tail = record::decode_batch(head.tail_first, &head.tail)?;
            let follows = out.last().is_none_or(|p| p.last_seq + 1 == tail.first_seq);
            if !follows || tail.last_seq != head.head {
                return Err(Error::Corrupt(format!(
                    "list {list}: stored history ends at {covered} but the head is {}",
                    head.head
                )));
            }
            tracing::warn!(%list, first_seq = tail.first_seq, "scylla: repairing newest batch row from head tail");
            self.write_tail_row(list, &tail, &head.tail).await?;
            out.push(tail);
        }
        Ok(out)
    }

    async fn write_tail_row(&self, list: Uuid, tail: &Batch, record: &[u8]) -> Result<(), Error> {
        let bucket = to_i64(bucket_of(tail.first_seq), "bucket")?;
        let values = (list, bucket, to_i64(tail.first_seq, "first_seq")?, record);
        self.inner
            .session
            .execute_unpaged(&self.inner.st.batch_insert, values)
            .await
            .map(|_| ())
            .map_err(errors::exec("repair batch row"))
    }

    /// Deletes batches with `last_seq <= up_to` (never the head).
    ///
    /// Boundary `x`: the first_seq of the batch holding `up_to + 1` (or head + 1 when everything
    /// is covered); every batch starting below `x` is covered. The mark `pruned_below = x` is
    /// written first, so readers stop seeing the range at once (and never resurrect the tail);
    /// then whole buckets from the lowest mark (where the last completed prune started) up to
    /// `x`'s bucket are dropped with one partition delete each, and `x`'s bucket with one range
    /// delete. Older marks are dropped last, so a failed prune is redone by the next one.
    pub(super) async fn prune_batches(&self, list: Uuid, up_to: u64) -> Result<(), Error> {
        let (head, mark) = tokio::join!(self.head_row(list, false), self.prune_mark(list, false));
        let head = head?.map_or(0, |h| h.head);
        let mark = mark?;
        let up_to = up_to.min(head);
        if up_to == 0 {
            return Ok(());
        }
        let x = if up_to == head {
            head + 1
        } else {
            match self.find_floor(list, up_to + 1, mark).await? {
                Some(first) => first,
                None => return Ok(()),
            }
        };
        if x < mark {
            return Ok(());
        }
        let low = self.prune_mark(list, true).await?;
        let st = &self.inner.st;
        let x_i = to_i64(x, "pruned_below")?;
        let exec = |stmt, values: (Uuid, i64, Option<i64>), what: &'static str| async move {
            let result = match values.2 {
                Some(seq) => {
                    self.inner
                        .session
                        .execute_unpaged(stmt, (values.0, values.1, seq))
                        .await
                }
                None => {
                    self.inner
                        .session
                        .execute_unpaged(stmt, (values.0, values.1))
                        .await
                }
            };
            result.map(|_| ()).map_err(errors::exec(what))
        };
        exec(&st.mark_insert, (list, x_i, None), "write prune mark").await?;
        for bucket in bucket_of(low.min(x))..bucket_of(x) {
            let b = to_i64(bucket, "bucket")?;
            exec(&st.batch_delete_bucket, (list, b, None), "delete bucket").await?;
        }
        let b = to_i64(bucket_of(x), "bucket")?;
        exec(
            &st.batch_delete_below,
            (list, b, Some(x_i)),
            "delete batches",
        )
        .await?;
        exec(
            &st.mark_delete_below,
            (list, x_i, None),
            "drop old prune marks",
        )
        .await
    }
}
