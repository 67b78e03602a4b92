//! Building one page of `read_batches` from rows read bucket by bucket, while prunes may run.
//!
//! Pure, so the decisions are unit-tested: which rows are taken, which are skipped, and when a
//! row leaves a gap. A gap is not decided here: `history.rs` asks the prune mark whether the
//! missing history was pruned ([`pruned_gap`]) and then restarts the page after it (a gap the
//! caller sees as a page starting late) or reports corruption.

use crate::Batch;

/// Where a batch offered to a [`Page`] went.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Offer {
    /// It continues the page and was added.
    Taken,
    /// It ends at or before `after`: not part of the page.
    Skipped,
    /// It does not continue the page: history between the page and it is missing.
    Gap(Batch),
}

/// A page of contiguous batches with `last_seq > after`, at most `max`.
#[derive(Debug)]
pub(super) struct Page {
    after: u64,
    max: usize,
    batches: Vec<Batch>,
}

impl Page {
    /// An empty page of batches past `after`.
    pub fn new(after: u64, max: usize) -> Self {
        Self {
            after,
            max,
            batches: Vec::new(),
        }
    }

    /// Offers the next stored batch, in seq order; the caller offers at most [`Page::room`]
    /// batches between checks. The first batch must hold `after + 1` (a batch straddling
    /// `after` is returned whole); each later one must start one past the previous one's end.
    pub fn offer(&mut self, batch: Batch) -> Offer {
        if batch.last_seq <= self.after {
            return Offer::Skipped;
        }
        let follows = match self.batches.last() {
            Some(previous) => previous.last_seq.checked_add(1) == Some(batch.first_seq),
            None => batch.first_seq <= self.after.saturating_add(1),
        };
        if !follows {
            return Offer::Gap(batch);
        }
        debug_assert!(self.room() > 0, "a page never holds more than max batches");
        self.batches.push(batch);
        Offer::Taken
    }

    /// Drops the batches before `batch` (their successors were pruned while the page was read,
    /// so they are pruned history too) and continues from `batch`.
    pub fn restart(&mut self, batch: Batch) {
        self.batches.clear();
        self.batches.push(batch);
    }

    /// How many more batches fit.
    pub fn room(&self) -> usize {
        self.max.saturating_sub(self.batches.len())
    }

    /// Whether the page holds `max` batches.
    pub fn is_full(&self) -> bool {
        self.room() == 0
    }

    /// The last seq the page covers: its last batch's end, or `after` while empty.
    pub fn covered(&self) -> u64 {
        self.batches.last().map_or(self.after, |b| b.last_seq)
    }

    /// The batches, contiguous and in order.
    pub fn into_batches(self) -> Vec<Batch> {
        self.batches
    }
}

/// Whether missing history ending just before `next_first` is explained by the prune mark:
/// every batch starting below the mark is (being) deleted, and marks are batch boundaries, so
/// the missing batches were pruned exactly when `next_first <= mark`.
pub(super) fn pruned_gap(next_first: u64, mark: u64) -> bool {
    next_first <= mark
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn batch(first_seq: u64, last_seq: u64) -> Batch {
        Batch {
            first_seq,
            last_seq,
            body: Bytes::new(),
        }
    }

    #[test]
    fn takes_contiguous_batches_and_skips_what_ends_before_after() {
        let mut page = Page::new(4, 3);
        assert_eq!(page.offer(batch(1, 4)), Offer::Skipped);
        assert_eq!(
            page.offer(batch(3, 6)),
            Offer::Taken,
            "a straddling batch is whole"
        );
        assert_eq!(page.offer(batch(7, 7)), Offer::Taken);
        assert_eq!(page.covered(), 7);
        assert_eq!(page.room(), 1);
        assert_eq!(page.offer(batch(8, 9)), Offer::Taken);
        assert!(page.is_full());
        assert_eq!(
            page.into_batches(),
            vec![batch(3, 6), batch(7, 7), batch(8, 9)]
        );
    }

    #[test]
    fn a_late_start_or_a_hole_is_a_gap() {
        let mut empty = Page::new(0, 10);
        assert_eq!(empty.offer(batch(5, 6)), Offer::Gap(batch(5, 6)));
        assert_eq!(empty.covered(), 0);
        let mut page = Page::new(0, 10);
        assert_eq!(page.offer(batch(1, 2)), Offer::Taken);
        assert_eq!(page.offer(batch(4, 4)), Offer::Gap(batch(4, 4)));
        assert_eq!(
            page.offer(batch(2, 3)),
            Offer::Gap(batch(2, 3)),
            "an overlap too"
        );
        assert_eq!(page.covered(), 2, "a gap adds nothing");
    }

    /// A prune racing the read deleted batches after the ones already taken: the page starts
    /// over at the batch after the hole, so it stays contiguous and starts late.
    #[test]
    fn restart_keeps_the_page_contiguous() {
        let mut page = Page::new(0, 3);
        assert_eq!(page.offer(batch(1, 1)), Offer::Taken);
        assert_eq!(page.offer(batch(2, 2)), Offer::Taken);
        let Offer::Gap(after_hole) = page.offer(batch(6, 7)) else {
            panic!("6..=7 does not follow 2");
        };
        page.restart(after_hole);
        assert_eq!(page.room(), 2);
        assert_eq!(page.offer(batch(8, 8)), Offer::Taken);
        assert_eq!(page.into_batches(), vec![batch(6, 7), batch(8, 8)]);
    }

    #[test]
    fn gaps_below_the_mark_are_pruned_history() {
        assert!(pruned_gap(6, 6), "batches below 6 are pruned");
        assert!(pruned_gap(6, 10));
        assert!(
            !pruned_gap(6, 5),
            "batch 5.. may be missing but is not pruned"
        );
        assert!(!pruned_gap(1, 0));
    }
}
