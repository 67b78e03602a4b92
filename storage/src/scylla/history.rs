//! Reading history and pruning, safe against each other: a read racing a prune returns a page
//! that starts late (a gap the caller sees), never `Corrupt`, and never writes a pruned batch
//! back. See `storage/SCHEMA.md`, "Reads racing prunes".

use uuid::Uuid;

use super::errors;
use super::events::HeadRow;
use super::page::{pruned_gap, Offer, Page};
use super::rows::{bucket_of, bucket_start, to_i64};
use super::ScyllaStore;
use crate::record;
use crate::{Batch, Error};

/// The reads and the one write that [`read_range`] needs. [`ScyllaStore`] implements it with
/// CQL; the unit tests implement it with a scripted fake that prunes in the middle of a read.
pub(super) trait HistoryRows {
    /// The head row.
    async fn head(&self, list: Uuid) -> Result<Option<HeadRow>, Error>;
    /// The highest prune mark.
    async fn highest_mark(&self, list: Uuid) -> Result<Option<u64>, Error>;
    /// `first_seq` of the newest batch starting at or before `seq`, if not below `floor`.
    async fn floor(&self, list: Uuid, seq: u64, floor: u64) -> Result<Option<u64>, Error>;
    /// One bucket's batches with `from <= first_seq <= upto`, at most `limit`, in order.
    async fn rows(
        &self,
        list: Uuid,
        bucket: u64,
        from: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Batch>, Error>;
    /// Writes a batch row back at write timestamp `written_at_us`.
    async fn repair(
        &self,
        list: Uuid,
        first_seq: u64,
        record: &[u8],
        written_at_us: i64,
    ) -> Result<(), Error>;
}

impl HistoryRows for ScyllaStore {
    async fn head(&self, list: Uuid) -> Result<Option<HeadRow>, Error> {
        self.head_row(list, false).await
    }

    async fn highest_mark(&self, list: Uuid) -> Result<Option<u64>, Error> {
        self.prune_mark(list, false).await
    }

    async fn floor(&self, list: Uuid, seq: u64, floor: u64) -> Result<Option<u64>, Error> {
        self.find_floor(list, seq, floor).await
    }

    async fn rows(
        &self,
        list: Uuid,
        bucket: u64,
        from: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Batch>, Error> {
        self.bucket_rows(list, bucket, from, upto, limit).await
    }

    async fn repair(
        &self,
        list: Uuid,
        first_seq: u64,
        record: &[u8],
        written_at_us: i64,
    ) -> Result<(), Error> {
        self.write_batch_row(list, first_seq, record, written_at_us)
            .await
    }
}

/// Batches with `last_seq > after`, at most `max`, never past the head read first.
///
/// Start: the batch straddling `after + 1` (the newest starting at or before it), but never
/// below the prune mark. Then bucket by bucket forward. A batch that leaves a gap is checked
/// against a fresh prune mark: history pruned while we read restarts the page after it,
/// anything else is corruption. If the newest batch's row is missing (its writer crashed
/// between the head LWT and the row write), it is taken from the head row's tail.
pub(super) async fn read_range<R: HistoryRows>(
    store: &R,
    list: Uuid,
    after: u64,
    max: usize,
) -> Result<Vec<Batch>, Error> {
    let (head, mark) = tokio::join!(store.head(list), store.highest_mark(list));
    let (Some(head), mut mark) = (head?, mark?.unwrap_or(0)) else {
        return Ok(Vec::new());
    };
    if after >= head.head {
        return Ok(Vec::new());
    }
    let target = after.saturating_add(1);
    let start = match store.floor(list, target, mark).await? {
        Some(first) => first,
        None => target.max(mark),
    };
    let mut page = Page::new(after, max);
    let (mut bucket, mut from) = (bucket_of(start), start);
    while !page.is_full() && bucket_start(bucket) <= head.head {
        let limit = page.room();
        let rows = store.rows(list, bucket, from, head.head, limit).await?;
        let fetched = rows.len();
        let next_from = rows.last().map(|b| b.first_seq.saturating_add(1));
        for batch in rows {
            if let Offer::Gap(batch) = page.offer(batch) {
                resolve_gap(store, list, &mut page, batch, &mut mark).await?;
            }
        }
        // A full fetch that did not fill the page (a restart dropped batches) continues in
        // the same bucket; otherwise the bucket is exhausted.
        match next_from {
            Some(next) if fetched == limit => from = next,
            _ => {
                bucket += 1;
                from = bucket_start(bucket);
            }
        }
    }
    if !page.is_full() && page.covered() < head.head {
        take_tail(store, list, &head, &mut page, &mut mark).await?;
    }
    Ok(page.into_batches())
}

/// `batch` does not continue `page`. If the missing history lies below the prune mark
/// (re-read, since the one read first may predate a prune that ran during this read), a prune
/// deleted it under us: the page restarts at `batch`. Otherwise history is missing.
async fn resolve_gap<R: HistoryRows>(
    store: &R,
    list: Uuid,
    page: &mut Page,
    batch: Batch,
    mark: &mut u64,
) -> Result<(), Error> {
    if !pruned_gap(batch.first_seq, *mark) {
        *mark = (*mark).max(store.highest_mark(list).await?.unwrap_or(0));
    }
    if pruned_gap(batch.first_seq, *mark) {
        page.restart(batch);
        return Ok(());
    }
    Err(Error::Corrupt(format!(
        "list {list}: batch {}..={} does not follow seq {}, and the history between is not \
         pruned (pruned below {})",
        batch.first_seq,
        batch.last_seq,
        page.covered(),
        *mark
    )))
}

/// Stored history ends below the head: the newest batch's row is missing. Its writer crashed
/// between the head LWT and the row write (take it from the head row's tail and write the row
/// back), or a prune deleted it while we read (it is below a fresh mark: leave it). The mark
/// read first is not enough: a prune between that read and this one would otherwise be undone
/// by writing the pruned row back.
async fn take_tail<R: HistoryRows>(
    store: &R,
    list: Uuid,
    head: &HeadRow,
    page: &mut Page,
    mark: &mut u64,
) -> Result<(), Error> {
    let tail = record::decode_batch(head.tail_first, &head.tail)?;
    if tail.last_seq != head.head {
        return Err(Error::Corrupt(format!(
            "list {list}: the head row's batch ends at {} but the head is {}",
            tail.last_seq, head.head
        )));
    }
    *mark = (*mark).max(store.highest_mark(list).await?.unwrap_or(0));
    if tail.first_seq < *mark {
        return Ok(());
    }
    let Some(written_at) = head.tail_written_us else {
        return Err(Error::Corrupt(format!(
            "list {list}: the head row's batch has no write time"
        )));
    };
    let first_seq = tail.first_seq;
    match page.offer(tail) {
        Offer::Taken | Offer::Skipped => {}
        Offer::Gap(tail) => resolve_gap(store, list, page, tail, mark).await?,
    }
    tracing::warn!(%list, first_seq, "scylla: repairing newest batch row from head tail");
    // At the tail's own write time: a prune that deletes this row after us still wins.
    store.repair(list, first_seq, &head.tail, written_at).await
}

/// The writes of one prune below boundary `x`, in order, given the lowest mark it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PrunePlan {
    /// Marks to write first: `x`, preceded by 0 on a list never pruned before, so that an
    /// interrupted first prune leaves a lowest mark below which nothing is left undeleted.
    pub marks: Vec<u64>,
    /// Buckets deleted whole (one partition delete each): from the lowest mark's bucket (below
    /// it everything is already deleted) to `x`'s, exclusive.
    pub whole_buckets: std::ops::Range<u64>,
    /// `x`'s bucket, where rows below `x` are range-deleted.
    pub partial_bucket: u64,
    /// The boundary; marks below it are dropped after the deletes.
    pub x: u64,
}

impl PrunePlan {
    /// The plan for boundary `x` when the lowest stored mark is `lowest` (`None`: never
    /// pruned).
    pub fn new(x: u64, lowest: Option<u64>) -> PrunePlan {
        let marks = match lowest {
            None => vec![0, x],
            Some(_) => vec![x],
        };
        PrunePlan {
            marks,
            whole_buckets: bucket_of(lowest.unwrap_or(0).min(x))..bucket_of(x),
            partial_bucket: bucket_of(x),
            x,
        }
    }
}

impl ScyllaStore {
    /// Deletes batches with `last_seq <= up_to` (never the head).
    ///
    /// Boundary `x`: the first_seq of the batch holding `up_to + 1` (or head + 1 when everything
    /// is covered); every batch starting below `x` is covered, and no later append can start
    /// below it. The mark `pruned_below = x` is written first, so readers stop seeing the range
    /// at once; then whole buckets from the lowest mark (below which everything is deleted) up
    /// to `x`'s bucket are dropped with one partition delete each, and `x`'s bucket with one
    /// range delete. Older marks are dropped last, so a failed prune is redone by the next one
    /// ([`PrunePlan`]).
    pub(super) async fn prune_batches(&self, list: Uuid, up_to: u64) -> Result<(), Error> {
        let (head, mark) = tokio::join!(self.head_row(list, false), self.prune_mark(list, false));
        let head = head?.map_or(0, |h| h.head);
        let mark = mark?.unwrap_or(0);
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
        let plan = PrunePlan::new(x, self.prune_mark(list, true).await?);
        let st = &self.inner.st;
        for mark in &plan.marks {
            let mark = to_i64(*mark, "pruned_below")?;
            self.prune_step(&st.mark_insert, (list, mark), "write prune mark")
                .await?;
        }
        for bucket in plan.whole_buckets.clone() {
            let bucket = to_i64(bucket, "bucket")?;
            self.prune_step(&st.batch_delete_bucket, (list, bucket), "delete bucket")
                .await?;
        }
        let bucket = to_i64(plan.partial_bucket, "bucket")?;
        let x = to_i64(plan.x, "pruned_below")?;
        self.prune_step(&st.batch_delete_below, (list, bucket, x), "delete batches")
            .await?;
        self.prune_step(&st.mark_delete_below, (list, x), "drop old prune marks")
            .await
    }

    async fn prune_step(
        &self,
        statement: &scylla::statement::prepared::PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        what: &'static str,
    ) -> Result<(), Error> {
        self.inner
            .session
            .execute_unpaged(statement, values)
            .await
            .map(|_| ())
            .map_err(errors::exec(what))
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
