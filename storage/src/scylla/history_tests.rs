//! `read_range` against a scripted in-memory fake of the rows it reads, with prunes injected
//! between its calls: the races of `reads_racing_prunes_contract`, made deterministic and run
//! without a server. The fake keeps ScyllaDB's shapes: rows per bucket partition, a set of
//! prune marks (the highest counts), a prune that writes its mark before deleting.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use bytes::Bytes;

use super::*;
use crate::scylla::rows::BUCKET_EVENTS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Head,
    Mark,
    Floor,
    Rows,
}

#[derive(Default)]
struct State {
    head: Option<HeadRow>,
    marks: BTreeSet<u64>,
    rows: BTreeMap<u64, Batch>,
    repaired: Vec<(u64, i64)>,
    calls: Vec<Call>,
}

impl State {
    /// A completed prune below `x`: the mark, then the deletes.
    fn prune(&mut self, x: u64) {
        self.marks.insert(x);
        self.rows.retain(|first, _| *first >= x);
    }

    fn count(&self, call: Call) -> usize {
        self.calls.iter().filter(|c| **c == call).count()
    }
}

type Hook = Box<dyn FnMut(Call, &mut State) + Send>;

/// The fake. `hook` runs before each call answers and may change the state (a prune).
struct Fake {
    state: Mutex<State>,
    hook: Mutex<Hook>,
}

const WRITTEN_AT: i64 = 1_800_000_000_000_000;

fn batch(first_seq: u64, last_seq: u64) -> Batch {
    Batch {
        first_seq,
        last_seq,
        body: Bytes::from(format!("{first_seq}..={last_seq}")),
    }
}

impl Fake {
    /// A list of one-event batches `first..=last`; the head row holds the last one.
    fn new(first: u64, last: u64, hook: Hook) -> Fake {
        let mut state = State::default();
        for seq in first..=last {
            state.rows.insert(seq, batch(seq, seq));
        }
        state.head = Some(HeadRow {
            head: last,
            tail_first: last,
            tail: record::encode_batch(&batch(last, last)),
            tail_written_us: Some(WRITTEN_AT),
        });
        Fake {
            state: Mutex::new(state),
            hook: Mutex::new(hook),
        }
    }

    fn with<T>(&self, call: Call, read: impl FnOnce(&State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.calls.push(call);
        let mut hook = self.hook.lock().unwrap_or_else(|p| p.into_inner());
        (hook)(call, &mut state);
        read(&state)
    }

    fn state<T>(&self, read: impl FnOnce(&mut State) -> T) -> T {
        read(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl HistoryRows for Fake {
    async fn head(&self, _list: Uuid) -> Result<Option<HeadRow>, Error> {
        Ok(self.with(Call::Head, |s| s.head.clone()))
    }

    async fn highest_mark(&self, _list: Uuid) -> Result<Option<u64>, Error> {
        Ok(self.with(Call::Mark, |s| s.marks.last().copied()))
    }

    async fn floor(&self, _list: Uuid, seq: u64, floor: u64) -> Result<Option<u64>, Error> {
        let newest = self.with(Call::Floor, |s| {
            s.rows.range(..=seq).next_back().map(|(f, _)| *f)
        });
        Ok(newest.filter(|first| *first >= floor))
    }

    async fn rows(
        &self,
        _list: Uuid,
        bucket: u64,
        from: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Batch>, Error> {
        let end = bucket_start(bucket + 1).min(upto.saturating_add(1));
        let start = from.max(bucket_start(bucket));
        Ok(self.with(Call::Rows, |s| {
            if start >= end {
                return Vec::new();
            }
            s.rows
                .range(start..end)
                .take(limit)
                .map(|(_, b)| b.clone())
                .collect()
        }))
    }

    async fn repair(
        &self,
        _list: Uuid,
        first_seq: u64,
        record: &[u8],
        written_at_us: i64,
    ) -> Result<(), Error> {
        let repaired = record::decode_batch(first_seq, record)?;
        self.state(|s| {
            s.rows.insert(first_seq, repaired);
            s.repaired.push((first_seq, written_at_us));
        });
        Ok(())
    }
}

fn no_hook() -> Hook {
    Box::new(|_, _| {})
}

fn read(fake: &Fake, after: u64, max: usize) -> Result<Vec<Batch>, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    let Ok(runtime) = runtime else {
        panic!("a test runtime");
    };
    runtime.block_on(read_range(fake, Uuid::nil(), after, max))
}

fn seqs(page: &[Batch]) -> Vec<u64> {
    page.iter().map(|b| b.first_seq).collect()
}

#[test]
fn pages_cross_buckets_without_races() {
    let fake = Fake::new(4090, 4100, no_hook());
    let page = read(&fake, 4091, 5).ok();
    assert_eq!(
        page.as_deref().map(seqs),
        Some(vec![4092, 4093, 4094, 4095, 4096])
    );
    let page = read(&fake, 4096, 100).ok();
    assert_eq!(page.as_deref().map(seqs), Some((4097..=4100).collect()));
    assert!(fake.state(|s| s.repaired.is_empty()));
}

/// A prune between two bucket reads deletes the rest of bucket 0 and the start of bucket 1
/// (the old code returned `Corrupt`): the page restarts after the hole, and a restart that
/// leaves the page short continues in the same bucket instead of skipping its rest.
#[test]
fn a_prune_between_bucket_reads_restarts_the_page() {
    let hook: Hook = Box::new(|call, state| {
        if call == Call::Rows && state.count(Call::Rows) == 2 {
            state.prune(4100);
        }
    });
    let fake = Fake::new(4094, 4110, hook);
    let page = read(&fake, 4093, 4);
    assert_eq!(
        page.as_ref().ok().map(|p| seqs(p)),
        Some(vec![4100, 4101, 4102, 4103]),
        "{page:?}"
    );
}

/// The first batch starts late because history below the mark is pruned.
#[test]
fn a_page_starts_late_after_pruned_history() {
    let fake = Fake::new(1, 20, no_hook());
    fake.state(|s| s.prune(8));
    assert_eq!(
        read(&fake, 2, 3).ok().as_deref().map(seqs),
        Some(vec![8, 9, 10])
    );
    // Pruned after the mark was read: the fresh mark explains the late start.
    let hook: Hook = Box::new(|call, state| {
        if call == Call::Floor {
            state.prune(12);
        }
    });
    let raced = Fake::new(1, 20, hook);
    assert_eq!(
        read(&raced, 2, 3).ok().as_deref().map(seqs),
        Some(vec![12, 13, 14])
    );
}

/// A hole above every prune mark is real damage.
#[test]
fn a_hole_that_no_prune_explains_is_corrupt() {
    let fake = Fake::new(1, 20, no_hook());
    fake.state(|s| s.rows.remove(&5));
    let page = read(&fake, 0, 10);
    assert!(matches!(page, Err(Error::Corrupt(_))), "{page:?}");
    let late = Fake::new(1, 20, no_hook());
    late.state(|s| {
        s.prune(3);
        s.rows.remove(&3);
    });
    let page = read(&late, 0, 10);
    assert!(
        matches!(page, Err(Error::Corrupt(_))),
        "history from the mark on is missing: {page:?}"
    );
}

/// The newest row is missing (its writer crashed after the LWT): the reader returns it from
/// the head row and writes it back at the tail's own write time.
#[test]
fn a_missing_newest_row_is_repaired_at_its_write_time() {
    let fake = Fake::new(1, 10, no_hook());
    fake.state(|s| s.rows.remove(&10));
    let page = read(&fake, 7, 10).ok();
    assert_eq!(page.as_deref().map(seqs), Some(vec![8, 9, 10]));
    assert_eq!(fake.state(|s| s.repaired.clone()), vec![(10, WRITTEN_AT)]);
    let only_tail = Fake::new(1, 10, no_hook());
    only_tail.state(|s| {
        s.prune(10);
        s.rows.remove(&10);
    });
    assert_eq!(
        read(&only_tail, 0, 10).ok().as_deref().map(seqs),
        Some(vec![10])
    );
}

/// A full prune runs after the reader read the head and a stale mark: the tail row is gone
/// because it was pruned, and must not be written back (the old code repaired it, resurrecting
/// pruned history).
#[test]
fn a_stale_mark_never_resurrects_a_pruned_tail() {
    let hook: Hook = Box::new(|call, state| {
        if call == Call::Floor {
            state.prune(11);
        }
    });
    let fake = Fake::new(1, 10, hook);
    fake.state(|s| s.prune(5));
    let page = read(&fake, 6, 10);
    assert_eq!(
        page.ok(),
        Some(Vec::new()),
        "everything was pruned: an empty page"
    );
    assert!(
        fake.state(|s| s.repaired.is_empty()),
        "nothing written back"
    );
    assert!(fake.state(|s| s.rows.is_empty()));
}

/// Paging the whole history while a prune deletes the lowest `stride` batches before every
/// row read, for every stride from 1 to 12 (some overtake the reader mid-page, some at the
/// bucket boundary, some at the tail): every page is contiguous, starts past `after`, and
/// nothing is ever written back.
#[test]
fn paging_while_prunes_advance_never_fails() {
    for stride in 1..=12 {
        let hook: Hook = Box::new(move |call, state| {
            if call == Call::Rows {
                if let Some(lowest) = state.rows.keys().next().copied() {
                    state.prune(lowest + stride);
                }
            }
        });
        let fake = Fake::new(BUCKET_EVENTS - 30, BUCKET_EVENTS + 30, hook);
        let mut after = 0;
        loop {
            let page = match read(&fake, after, 4) {
                Ok(page) => page,
                Err(err) => panic!("stride {stride}, read after {after}: {err}"),
            };
            let Some(last) = page.last() else { break };
            assert!(page.first().is_some_and(|b| b.first_seq > after));
            assert!(page
                .windows(2)
                .all(|w| matches!(w, [a, b] if a.last_seq + 1 == b.first_seq)));
            after = last.last_seq;
        }
        assert!(fake.state(|s| s.repaired.is_empty()), "stride {stride}");
    }
}

/// The first prune of a list also writes mark 0 (the old code wrote only `x`: an interrupted
/// first prune left `x` as the lowest mark, and the buckets below it were never deleted); a
/// later prune deletes from the lowest mark's bucket to `x`'s.
#[test]
fn prune_plans() {
    let first = PrunePlan::new(3 * BUCKET_EVENTS + 5, None);
    assert_eq!(first.marks, vec![0, 3 * BUCKET_EVENTS + 5]);
    assert_eq!(first.whole_buckets, 0..3);
    assert_eq!(first.partial_bucket, 3);
    let later = PrunePlan::new(3 * BUCKET_EVENTS + 5, Some(BUCKET_EVENTS + 1));
    assert_eq!(later.marks, vec![3 * BUCKET_EVENTS + 5]);
    assert_eq!(later.whole_buckets, 1..3);
    let same_bucket = PrunePlan::new(20, Some(10));
    assert_eq!(
        (same_bucket.whole_buckets, same_bucket.partial_bucket),
        (0..0, 0)
    );
    // A redo at the boundary of the last completed prune deletes nothing new, harmlessly.
    let redo = PrunePlan::new(BUCKET_EVENTS, Some(BUCKET_EVENTS));
    assert_eq!((redo.whole_buckets, redo.partial_bucket), (1..1, 1));
}
