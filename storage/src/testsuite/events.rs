//! Contract checks for [`EventStore`] backends.

use std::sync::Arc;

use tokio::sync::Barrier;
use uuid::Uuid;

use super::{assert_conflict, batch, ok, snapshot};
use crate::{Batch, Error, EventStore};

/// Runs every [`EventStore`] check against `store`.
pub async fn event_store_contract<S: EventStore + ?Sized>(store: &S) {
    empty_list(store).await;
    append_and_read(store).await;
    paging(store).await;
    wrong_first_seq_conflicts(store).await;
    invalid_batch_is_rejected(store).await;
    snapshots_newest_wins(store).await;
    prune_keeps_head(store).await;
    lists_are_isolated(store).await;
    large_records(store).await;
}

async fn empty_list<S: EventStore + ?Sized>(store: &S) {
    let list = Uuid::new_v4();
    assert_eq!(ok(store.head(list).await, "head of new list"), 0);
    let read = ok(store.read_batches(list, 0, 10).await, "read new list");
    assert!(read.is_empty(), "a new list has no batches");
    let snap = ok(store.latest_snapshot(list).await, "snapshot of new list");
    assert!(snap.is_none(), "a new list has no snapshot");
}

async fn append_and_read<S: EventStore + ?Sized>(store: &S) {
    let list = Uuid::new_v4();
    let a = batch(1, 3, "a");
    let b = batch(4, 4, "b");
    ok(store.append(list, a.clone()).await, "append 1..=3");
    ok(store.append(list, b.clone()).await, "append 4..=4");
    assert_eq!(ok(store.head(list).await, "head"), 4);
    let read = |after, max| store.read_batches(list, after, max);
    let all = vec![a.clone(), b.clone()];
    assert_eq!(ok(read(0, 10).await, "read from 0"), all);
    // A batch that straddles after_seq is returned whole.
    assert_eq!(ok(read(2, 10).await, "read mid-batch"), all);
    assert_eq!(ok(read(3, 10).await, "read at batch end"), vec![b.clone()]);
    assert!(ok(read(4, 10).await, "read at head").is_empty());
    assert!(ok(read(100, 10).await, "read past head").is_empty());
    assert_eq!(ok(read(0, 1).await, "read capped"), vec![a]);
    assert_eq!(ok(read(3, 1).await, "read next page"), vec![b]);
    assert!(ok(read(0, 0).await, "read zero batches").is_empty());
}

async fn paging<S: EventStore + ?Sized>(store: &S) {
    let list = Uuid::new_v4();
    let expected = vec![
        batch(1, 2, "p1"),
        batch(3, 3, "p2"),
        batch(4, 8, "p3"),
        batch(9, 9, "p4"),
        batch(10, 12, "p5"),
    ];
    for b in &expected {
        ok(store.append(list, b.clone()).await, "append for paging");
    }
    let mut pages = 0;
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let page = ok(store.read_batches(list, after, 2).await, "read page");
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 2, "a page respects max_batches");
        after = last.last_seq;
        got.extend(page);
        pages += 1;
    }
    assert_eq!(got, expected, "paging returns every batch once, in order");
    assert_eq!(pages, 3, "5 batches in pages of 2 take 3 pages");
}

async fn wrong_first_seq_conflicts<S: EventStore + ?Sized>(store: &S) {
    let empty = Uuid::new_v4();
    assert_conflict(
        store.append(empty, batch(2, 2, "x")).await,
        empty,
        0,
        2,
        "gap on a new list",
    );
    assert_conflict(
        store.append(empty, batch(0, 0, "x")).await,
        empty,
        0,
        0,
        "first_seq 0 on a new list",
    );
    let list = Uuid::new_v4();
    ok(store.append(list, batch(1, 3, "a")).await, "append 1..=3");
    ok(store.append(list, batch(4, 4, "b")).await, "append 4..=4");
    let cases = [
        (7, 7, "gap"),
        (4, 5, "duplicate"),
        (1, 1, "rewrite"),
        (0, 0, "zero"),
    ];
    for (first, last, what) in cases {
        let result = store.append(list, batch(first, last, "stale")).await;
        assert_conflict(result, list, 4, first, what);
    }
    assert_eq!(ok(store.head(list).await, "head after conflicts"), 4);
    let read = ok(
        store.read_batches(list, 0, 10).await,
        "read after conflicts",
    );
    assert_eq!(
        read,
        vec![batch(1, 3, "a"), batch(4, 4, "b")],
        "conflicts write nothing"
    );
    assert_eq!(
        ok(
            store.head(empty).await,
            "head of empty list after conflicts"
        ),
        0
    );
}

async fn invalid_batch_is_rejected<S: EventStore + ?Sized>(store: &S) {
    let list = Uuid::new_v4();
    let result = store.append(list, batch(1, 0, "bad")).await;
    assert!(
        matches!(result, Err(Error::InvalidArgument(_))),
        "last_seq < first_seq must be InvalidArgument, got {result:?}"
    );
    ok(
        store.append(list, batch(1, 1, "a")).await,
        "append after invalid",
    );
    let result = store.append(list, batch(2, 1, "bad")).await;
    assert!(
        matches!(result, Err(Error::InvalidArgument(_))),
        "last_seq < first_seq must be InvalidArgument even at head + 1, got {result:?}"
    );
    assert_eq!(ok(store.head(list).await, "head after invalid"), 1);
}

async fn snapshots_newest_wins<S: EventStore + ?Sized>(store: &S) {
    let list = Uuid::new_v4();
    let latest = || store.latest_snapshot(list);
    ok(
        store.write_snapshot(list, snapshot(3, "s3")).await,
        "snapshot 3",
    );
    assert_eq!(ok(latest().await, "latest"), Some(snapshot(3, "s3")));
    ok(
        store.write_snapshot(list, snapshot(2, "s2")).await,
        "older snapshot",
    );
    assert_eq!(
        ok(latest().await, "after older"),
        Some(snapshot(3, "s3")),
        "older ignored"
    );
    ok(
        store.write_snapshot(list, snapshot(3, "again")).await,
        "equal snapshot",
    );
    assert_eq!(
        ok(latest().await, "after equal"),
        Some(snapshot(3, "s3")),
        "equal ignored"
    );
    ok(
        store.write_snapshot(list, snapshot(5, "s5")).await,
        "newer snapshot",
    );
    assert_eq!(
        ok(latest().await, "after newer"),
        Some(snapshot(5, "s5")),
        "newer wins"
    );
    let other = ok(store.latest_snapshot(Uuid::new_v4()).await, "other list");
    assert_eq!(other, None, "snapshots are per list");
}

async fn prune_keeps_head<S: EventStore + ?Sized>(store: &S) {
    let list = Uuid::new_v4();
    let all = [
        batch(1, 3, "a"),
        batch(4, 4, "b"),
        batch(5, 6, "c"),
        batch(7, 9, "d"),
    ];
    for b in &all {
        ok(store.append(list, b.clone()).await, "append before prune");
    }
    let read = |after| store.read_batches(list, after, 100);
    ok(store.prune(list, 0).await, "prune nothing");
    ok(store.prune(list, 2).await, "prune mid-batch");
    assert_eq!(
        ok(read(0).await, "after mid-batch prune"),
        all.to_vec(),
        "1..=3 is kept"
    );
    ok(store.prune(list, 4).await, "prune to 4");
    let rest = all.get(2..).map(<[Batch]>::to_vec).unwrap_or_default();
    assert_eq!(
        ok(read(0).await, "read after prune"),
        rest,
        "1..=3 and 4..=4 are gone"
    );
    assert_eq!(ok(read(5).await, "read mid-batch after prune"), rest);
    assert_eq!(
        ok(store.head(list).await, "head after prune"),
        9,
        "prune keeps the head"
    );
    ok(
        store.append(list, batch(10, 10, "e")).await,
        "append after prune",
    );
    ok(store.prune(list, 100).await, "prune past head");
    assert!(ok(read(0).await, "read after full prune").is_empty());
    assert_eq!(ok(store.head(list).await, "head after full prune"), 10);
    let result = store.append(list, batch(1, 1, "again")).await;
    assert_conflict(result, list, 10, 1, "re-append after full prune");
    ok(
        store.append(list, batch(11, 12, "f")).await,
        "append after full prune",
    );
    assert_eq!(
        ok(read(0).await, "read after re-append"),
        vec![batch(11, 12, "f")]
    );
}

async fn lists_are_isolated<S: EventStore + ?Sized>(store: &S) {
    // Adjacent ids, so a backend that scans by key range must stop exactly at the list boundary.
    let base = Uuid::new_v4().as_u128() & !0xff;
    let (a, b, c) = (
        Uuid::from_u128(base),
        Uuid::from_u128(base + 1),
        Uuid::from_u128(base + 2),
    );
    ok(store.append(b, batch(1, 2, "b1")).await, "append b");
    ok(store.append(a, batch(1, 1, "a1")).await, "append a");
    ok(store.append(c, batch(1, 5, "c1")).await, "append c");
    ok(store.append(b, batch(3, 3, "b2")).await, "append b again");
    assert_eq!(ok(store.head(a).await, "head a"), 1);
    assert_eq!(ok(store.head(b).await, "head b"), 3);
    assert_eq!(ok(store.head(c).await, "head c"), 5);
    let read_b = ok(store.read_batches(b, 0, 10).await, "read b");
    assert_eq!(read_b, vec![batch(1, 2, "b1"), batch(3, 3, "b2")]);
    let read_a = ok(store.read_batches(a, 0, 10).await, "read a");
    assert_eq!(
        read_a,
        vec![batch(1, 1, "a1")],
        "reads stay inside the list"
    );
    ok(store.prune(b, 3).await, "prune b");
    let read_a = ok(store.read_batches(a, 0, 10).await, "read a after pruning b");
    assert_eq!(
        read_a,
        vec![batch(1, 1, "a1")],
        "prune stays inside the list"
    );
    let read_c = ok(store.read_batches(c, 0, 10).await, "read c after pruning b");
    assert_eq!(
        read_c,
        vec![batch(1, 5, "c1")],
        "prune stays inside the list"
    );
    ok(
        store.write_snapshot(a, snapshot(1, "sa")).await,
        "snapshot a",
    );
    assert_eq!(ok(store.latest_snapshot(b).await, "snapshot b"), None);
}

/// Snapshot and batch sizes that a full list produces (10,000 items of 4 KiB is a 40 MiB
/// snapshot; the node caps a batch at 1 MiB) are stored and read back intact. ScyllaDB refuses
/// single mutations over half a commitlog segment, so a backend may have to split them.
async fn large_records<S: EventStore + ?Sized>(store: &S) {
    let list = Uuid::new_v4();
    let patterned = |len: usize, salt: u8| -> bytes::Bytes {
        (0..len)
            .map(|i| (i % 251) as u8 ^ salt)
            .collect::<Vec<u8>>()
            .into()
    };
    let big_batch = Batch {
        first_seq: 1,
        last_seq: 300,
        body: patterned(1 << 20, 7),
    };
    ok(
        store.append(list, big_batch.clone()).await,
        "append 1 MiB batch",
    );
    let read = ok(store.read_batches(list, 0, 10).await, "read 1 MiB batch");
    assert_eq!(read, vec![big_batch], "a 1 MiB batch reads back intact");
    let big = crate::Snapshot {
        seq: 300,
        body: patterned(40 << 20, 3),
    };
    ok(
        store.write_snapshot(list, big.clone()).await,
        "write 40 MiB snapshot",
    );
    let latest = ok(store.latest_snapshot(list).await, "read 40 MiB snapshot");
    assert!(
        latest.as_ref() == Some(&big),
        "a 40 MiB snapshot reads back intact"
    );
    let small = snapshot(301, "small after big");
    ok(
        store.write_snapshot(list, small.clone()).await,
        "small snapshot",
    );
    assert_eq!(
        ok(store.latest_snapshot(list).await, "latest after big"),
        Some(small),
        "a newer small snapshot replaces a big one"
    );
}

/// Reads racing prunes: a pruner keeps snapshotting-and-pruning a growing list while a reader
/// pages through it from the start again and again. A read must never fail or return a page
/// that is not contiguous; history it misses was pruned, so a page may start past
/// `after_seq + 1` (the caller then reloads from the newer snapshot).
pub async fn reads_racing_prunes_contract<S: EventStore + ?Sized>(store: Arc<S>) {
    const BATCHES: u64 = 200;
    let list = Uuid::new_v4();
    for seq in 1..=BATCHES {
        ok(store.append(list, batch(seq, seq, "x")).await, "append");
    }
    let pruner = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for up_to in (0..=BATCHES).step_by(5) {
                ok(store.prune(list, up_to).await, "prune");
                tokio::task::yield_now().await;
            }
        })
    };
    let mut reads = 0u32;
    while !pruner.is_finished() || reads < 3 {
        let mut after = 0;
        loop {
            let page = ok(
                store.read_batches(list, after, 7).await,
                "read during prunes",
            );
            let Some(last) = page.last() else { break };
            for pair in page.windows(2) {
                let (Some(a), Some(b)) = (pair.first(), pair.get(1)) else {
                    continue;
                };
                assert_eq!(a.last_seq + 1, b.first_seq, "a page is contiguous");
            }
            let first = page.first().map_or(0, |b| b.first_seq);
            assert!(first > after, "a page starts past after_seq");
            assert!(last.last_seq > after, "a page advances");
            after = last.last_seq;
        }
        reads += 1;
    }
    ok_join(pruner.await);
    assert_eq!(ok(store.head(list).await, "head after prunes"), BATCHES);
}

fn ok_join(result: Result<(), tokio::task::JoinError>) {
    if let Err(err) = result {
        panic!("pruner task failed: {err}");
    }
}

/// Races writers on one list: in each of 50 rounds, 8 tasks append the same `first_seq` at once.
/// Exactly one must win each round, the rest must get [`Error::AppendConflict`], and the stored
/// history must be the winners' batches, contiguous, with no gap or fork.
pub async fn racing_writers_contract<S: EventStore + ?Sized>(store: Arc<S>) {
    const ROUNDS: u64 = 50;
    const WRITERS: usize = 8;
    let list = Uuid::new_v4();
    let mut winners = Vec::new();
    for seq in 1..=ROUNDS {
        let barrier = Arc::new(Barrier::new(WRITERS));
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                let body = format!("round {seq} writer {writer}");
                barrier.wait().await;
                let result = store.append(list, batch(seq, seq, &body)).await;
                (body, result)
            }));
        }
        let mut won = Vec::new();
        for task in tasks {
            let (body, result) = match task.await {
                Ok(outcome) => outcome,
                Err(err) => panic!("writer task failed: {err}"),
            };
            match result {
                Ok(()) => won.push(body),
                other => assert_conflict(other, list, seq, seq, "losing writer"),
            }
        }
        assert_eq!(
            won.len(),
            1,
            "round {seq}: exactly one writer wins, got {won:?}"
        );
        winners.extend(won);
    }
    assert_eq!(ok(store.head(list).await, "head after races"), ROUNDS);
    let history = ok(
        store.read_batches(list, 0, 1000).await,
        "read raced history",
    );
    let expected: Vec<Batch> = (1..=ROUNDS)
        .zip(&winners)
        .map(|(seq, body)| batch(seq, seq, body))
        .collect();
    assert_eq!(
        history, expected,
        "history is the winners' batches, contiguous"
    );
}
