//! Micro-benchmarks of building what a list publishes: event JSON and delta frames.
//!
//! Each accepted op's event is encoded once with `serde_json::to_vec` (on the list actor's task,
//! in `push_pending`); when its batch is durable the actor splices those bytes into one `delta`
//! frame (`listwire::list::frames::delta`) whose `Bytes` every subscriber shares. Both run on the
//! list's single task for every op, so their cost is part of one list's op budget; the frame cost
//! grows with the batch, which grows with load.
//!
//! Measured: `delta` over 1, 16 and 256 pre-encoded real events (`add_item` events from
//! `listwire::domain::apply`), and `serde_json::to_vec` of one `add_item` event and one `vote`
//! event.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use listwire::domain::{
    apply, create, Change, Command, CreateList, Event, Limits, ListState, Op, PollSettings,
    UserRef, Visibility,
};
use listwire::list::frames;
use uuid::Uuid;

const T0_MS: u64 = 1_795_000_000_000;

fn owner() -> UserRef {
    UserRef {
        user_id: Uuid::from_u64_pair(0x0190_0000_0000_7000, 1),
        username: "alice".into(),
    }
}

fn op_id(n: u64) -> Uuid {
    Uuid::from_u64_pair(0x4b1d_0000_0000_4000 ^ n.rotate_left(17), n)
}

fn command(n: u64, op: Op) -> Command {
    Command {
        op_id: op_id(n),
        by: owner(),
        at_ms: T0_MS + n,
        elapsed_ms: Some(u64::MAX),
        op,
        target: None,
    }
}

/// A public poll list and the events of adding `count` items to it, each after the previous one.
fn add_item_events(count: u64) -> (ListState, Vec<Event>) {
    let limits = Limits::default();
    let mut state = ListState::new(Uuid::from_u128(0x0190_a5c4_3b1e_7c2a_9f3d_5e6a_7b8c_9d0e));
    let body = CreateList {
        title: "Team offsite".into(),
        visibility: Visibility::Public,
        poll: Some(PollSettings {
            max_votes_per_user: 3,
            allow_change: true,
            open: true,
            close_at_ms: None,
        }),
    };
    create(&mut state, op_id(0), &owner(), T0_MS, &body, &limits).expect("create");
    let mut events = Vec::new();
    let mut after = None;
    for n in 1..=count {
        let op = Op::AddItem {
            text: format!("Book the train tickets for day {n}"),
            after,
            item: None,
        };
        let event = apply(&mut state, &command(n, op), &limits).expect("add_item");
        if let Change::AddItem { item, .. } = &event.change {
            after = Some(*item);
        }
        events.push(event);
    }
    (state, events)
}

fn bench_delta(c: &mut Criterion) {
    let (state, events) = add_item_events(256);
    let encoded: Vec<Bytes> = events
        .iter()
        .map(|event| Bytes::from(serde_json::to_vec(event).expect("event encodes")))
        .collect();
    let list = state.list_id();
    let mut group = c.benchmark_group("frames/delta");
    for count in [1usize, 16, 256] {
        let slice = &encoded[..count];
        let from = events[0].seq;
        let to = events[count - 1].seq;
        let frame_len = frames::delta(list, from, to, slice).len() as u64;
        group.throughput(Throughput::Bytes(frame_len));
        group.bench_with_input(BenchmarkId::new("events", count), &slice, |b, slice| {
            b.iter(|| frames::delta(black_box(list), from, to, black_box(slice)));
        });
    }
    group.finish();
}

fn bench_event_to_vec(c: &mut Criterion) {
    let (mut state, events) = add_item_events(1);
    let add_item = events.into_iter().next().expect("one event");
    let Change::AddItem { item, .. } = add_item.change else {
        unreachable!("built as add_item")
    };
    let vote = apply(
        &mut state,
        &command(2, Op::Vote { item }),
        &Limits::default(),
    )
    .expect("vote");
    let mut group = c.benchmark_group("frames/event_to_vec");
    for (name, event) in [("add_item", &add_item), ("vote", &vote)] {
        let len = serde_json::to_vec(event).expect("event encodes").len() as u64;
        group.throughput(Throughput::Bytes(len));
        group.bench_with_input(BenchmarkId::from_parameter(name), event, |b, event| {
            b.iter(|| serde_json::to_vec(black_box(event)).expect("event encodes"));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_delta, bench_event_to_vec);
criterion_main!(benches);
