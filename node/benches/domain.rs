//! Micro-benchmarks of the pure list state machine (`listwire::domain`).
//!
//! Every op a list actor accepts runs `parse_op` (in the router) and `apply` (decide + evolve, on
//! the actor's `head` state) on the actor's single task, so their cost bounds one list's op rate
//! no matter how well storage groups commits. `encode_snapshot` runs on the same task whenever a
//! list snapshots (passivation, periodic snapshots), so a slow one stalls that list's ops.
//!
//! Measured: `apply` of `add_item` to lists of 0, 1,000 and 9,000 items (at the top and after the
//! last item: both touch the whole display order); `apply` of `vote` on a public poll with
//! 100,000 existing voters, a new voter each iteration; `parse_op` of a typical `add_item`; and
//! `encode_snapshot` of a 1,000-item list. Only the operation is timed: each added item or vote
//! is undone (`remove_item`, `unvote`) outside the timed region, so the state keeps its size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use listwire::domain::{
    apply, create, encode_snapshot, parse_op, Command, CreateList, ItemId, Limits, ListState, Op,
    PollSettings, UserRef, Visibility,
};
use uuid::Uuid;

/// The command time of the first event; later events step forward from here.
const T0_MS: u64 = 1_795_000_000_000;
/// Voters already in the hot poll before measuring.
const POLL_VOTERS: u64 = 100_000;
/// Items in the hot poll.
const POLL_ITEMS: u64 = 10;
/// Milliseconds between two ops of the hot poll (100 ops/s), so the op-id window is pruned
/// by age and stays at its steady size (about 60,000 op ids) while measuring.
const POLL_STEP_MS: u64 = 10;

/// A well-spread op id (client op ids are random v4 uuids).
fn op_id(n: u64) -> Uuid {
    let mut x = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    Uuid::from_u64_pair(x, n)
}

/// A user whose id sorts by `n`, like the time-ordered (v7) ids the gateway hands out.
fn user(n: u64) -> UserRef {
    UserRef {
        user_id: Uuid::from_u64_pair(0x0190_0000_0000_7000, n),
        username: format!("user{n}"),
    }
}

fn owner() -> UserRef {
    user(0)
}

fn command(op_id: Uuid, by: UserRef, at_ms: u64, op: Op) -> Command {
    Command {
        op_id,
        by,
        at_ms,
        elapsed_ms: Some(u64::MAX),
        op,
        target: None,
    }
}

fn add_item_op(n: u64, after: Option<ItemId>) -> Op {
    Op::AddItem {
        text: format!("Buy oat milk, 2 l (item {n})"),
        after,
        item: None,
    }
}

/// A list created by its owner, holding `items` items added one after another at the end.
/// Returns the state and the id of its last item.
fn list_with_items(items: u64, limits: &Limits) -> (ListState, Option<ItemId>) {
    let mut state = ListState::new(Uuid::from_u128(1));
    let body = CreateList {
        title: "Groceries".into(),
        visibility: Visibility::Private,
        poll: None,
    };
    create(&mut state, op_id(0), &owner(), T0_MS, &body, limits).expect("create");
    let mut last = None;
    for n in 1..=items {
        let cmd = command(op_id(n), owner(), T0_MS + n, add_item_op(n, last));
        let event = apply(&mut state, &cmd, limits).expect("add_item");
        if let listwire::domain::Change::AddItem { item, .. } = event.change {
            last = Some(item);
        }
    }
    (state, last)
}

/// Milliseconds between two ops of the item lists (10 ops/s): the op-id window then holds its
/// minimum of 10,000 op ids, pruned by one per op.
const ITEM_STEP_MS: u64 = 100;
/// Add/remove pairs run before measuring, so the op-id window is at its steady size.
const ITEM_CHURN_PAIRS: u64 = 6_000;

/// Adds an item (placed after `after`) with a fresh op id; returns the new item's id.
fn add(
    state: &mut ListState,
    n: u64,
    at_ms: u64,
    after: Option<ItemId>,
    limits: &Limits,
) -> ItemId {
    let cmd = command(op_id(n), owner(), at_ms, add_item_op(n, after));
    match apply(state, &cmd, limits).expect("add_item").change {
        listwire::domain::Change::AddItem { item, .. } => item,
        _ => unreachable!("built as add_item"),
    }
}

fn remove(state: &mut ListState, n: u64, at_ms: u64, item: ItemId, limits: &Limits) {
    let cmd = command(op_id(n), owner(), at_ms, Op::RemoveItem { item });
    apply(state, &cmd, limits).expect("remove_item");
}

/// Applies one fresh `add_item` to every state, timed together, then removes the item from every
/// state untimed. Returns the time of the adds.
fn add_round(
    states: &mut [ListState],
    n: &mut u64,
    clock: &mut u64,
    after: Option<ItemId>,
    limits: &Limits,
) -> Duration {
    *clock += ITEM_STEP_MS;
    let cmd = command(op_id(*n), owner(), *clock, add_item_op(*n, after));
    let mut events = Vec::with_capacity(states.len());
    let start = Instant::now();
    for state in states.iter_mut() {
        events.push(apply(state, black_box(&cmd), limits));
    }
    let elapsed = start.elapsed();
    let item = match events.swap_remove(0).expect("add_item").change {
        listwire::domain::Change::AddItem { item, .. } => item,
        _ => unreachable!("built as add_item"),
    };
    drop(events);
    *clock += ITEM_STEP_MS;
    for state in states.iter_mut() {
        remove(state, *n + 1, *clock, item, limits);
    }
    *n += 2;
    elapsed
}

fn bench_add_item(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("domain/apply_add_item");
    group.throughput(Throughput::Elements(1));
    for items in [0u64, 1_000, 9_000] {
        // Long-lived states, as in the actor: each timed `apply` adds an item and an untimed
        // `remove_item` takes it out again, so every list keeps `items` items and its vectors
        // keep the spare capacity they have in a running actor. (A fresh clone per iteration
        // would have vectors with no spare capacity, and every timed add would pay for
        // reallocating the display order and the op-id window: ~130 µs at 9,000 items.)
        // Several identical states, each getting the same add in turn, spread the timer reads
        // over several adds; few for big lists, so each state stays in cache as in an actor.
        let states_count: u64 = match items {
            0 => 64,
            1_000 => 8,
            _ => 1,
        };
        let mut placements = vec![("top", false)];
        if items > 0 {
            placements.push(("after_last", true));
        }
        for (placement, after_last) in placements {
            let (mut base, last) = list_with_items(items, &limits);
            let after = if after_last { last } else { None };
            let mut n = items + 1;
            let mut clock = T0_MS + n * ITEM_STEP_MS;
            for _ in 0..ITEM_CHURN_PAIRS {
                clock += ITEM_STEP_MS;
                let item = add(&mut base, n, clock, after, &limits);
                clock += ITEM_STEP_MS;
                remove(&mut base, n + 1, clock, item, &limits);
                n += 2;
            }
            let mut states: Vec<ListState> = (0..states_count).map(|_| base.clone()).collect();
            drop(base);
            // One untimed round gives each clone's vectors spare capacity again.
            add_round(&mut states, &mut n, &mut clock, after, &limits);
            group.bench_function(BenchmarkId::new(placement, items), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut remaining = iters;
                    while remaining > 0 {
                        let used = remaining.min(states_count) as usize;
                        timed += add_round(&mut states[..used], &mut n, &mut clock, after, &limits);
                        remaining -= used as u64;
                    }
                    timed
                });
            });
        }
    }
    group.finish();
}

/// The vote command of voter `n` for one of the poll's items.
fn vote_cmd(n: u64, at_ms: u64, items: &[ItemId]) -> Command {
    let item = items[(n % items.len() as u64) as usize];
    command(op_id(n), user(n), at_ms, Op::Vote { item })
}

fn bench_vote(c: &mut Criterion) {
    let limits = Limits::default();
    let mut state = ListState::new(Uuid::from_u128(2));
    let body = CreateList {
        title: "Lunch poll".into(),
        visibility: Visibility::Public,
        poll: Some(PollSettings {
            max_votes_per_user: 1,
            allow_change: true,
            open: true,
            close_at_ms: None,
        }),
    };
    create(&mut state, op_id(0), &owner(), T0_MS, &body, &limits).expect("create");
    let mut items = Vec::new();
    let mut clock = T0_MS;
    for n in 1..=POLL_ITEMS {
        clock += POLL_STEP_MS;
        let cmd = command(op_id(n), owner(), clock, add_item_op(n, None));
        if let listwire::domain::Change::AddItem { item, .. } =
            apply(&mut state, &cmd, &limits).expect("add_item").change
        {
            items.push(item);
        }
    }
    // Voter numbers double as op numbers; start them past the item ops.
    let first_voter = 1_000u64;
    for n in first_voter..first_voter + POLL_VOTERS {
        clock += POLL_STEP_MS;
        apply(&mut state, &vote_cmd(n, clock, &items), &limits).expect("vote");
    }
    let mut next_voter = first_voter + POLL_VOTERS;
    // Unvote op numbers live in their own range so they never meet vote op ids.
    let mut next_unvote_op = 1u64 << 40;

    let mut group = c.benchmark_group("domain/apply_vote");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("public_poll_voters", POLL_VOTERS), |b| {
        b.iter_custom(|iters| {
            // Time the votes of a chunk of new voters, then take those votes back untimed so
            // the poll stays at about POLL_VOTERS voters however many iterations run.
            const CHUNK: u64 = 1_024;
            let mut timed = Duration::ZERO;
            let mut remaining = iters;
            while remaining > 0 {
                let chunk = remaining.min(CHUNK);
                let votes: Vec<Command> = (0..chunk)
                    .map(|k| {
                        clock += POLL_STEP_MS;
                        vote_cmd(next_voter + k, clock, &items)
                    })
                    .collect();
                next_voter += chunk;
                let start = Instant::now();
                for cmd in &votes {
                    black_box(apply(&mut state, black_box(cmd), &limits).expect("vote"));
                }
                timed += start.elapsed();
                for cmd in votes {
                    let Op::Vote { item } = cmd.op else {
                        unreachable!("built as votes")
                    };
                    clock += POLL_STEP_MS;
                    let unvote = command(op_id(next_unvote_op), cmd.by, clock, Op::Unvote { item });
                    next_unvote_op += 1;
                    apply(&mut state, &unvote, &limits).expect("unvote");
                }
                remaining -= chunk;
            }
            timed
        });
    });
    group.finish();
}

fn bench_parse_op(c: &mut Criterion) {
    let raw = r#"{"kind":"add_item","text":"Buy oat milk, 2 l","after":"0190a5c4-3b1e-7c2a-9f3d-5e6a7b8c9d0e"}"#;
    let mut group = c.benchmark_group("domain/parse_op");
    group.throughput(Throughput::Bytes(raw.len() as u64));
    group.bench_function("add_item", |b| {
        b.iter(|| parse_op(black_box(raw)).expect("parses"));
    });
    group.finish();
}

fn bench_encode_snapshot(c: &mut Criterion) {
    let limits = Limits::default();
    let (state, _) = list_with_items(1_000, &limits);
    let encoded_len = encode_snapshot(&state).len() as u64;
    let mut group = c.benchmark_group("domain/encode_snapshot");
    group.throughput(Throughput::Bytes(encoded_len));
    group.bench_function(BenchmarkId::new("items", 1_000), |b| {
        b.iter(|| encode_snapshot(black_box(&state)));
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_add_item,
    bench_vote,
    bench_parse_op,
    bench_encode_snapshot
);
criterion_main!(benches);
