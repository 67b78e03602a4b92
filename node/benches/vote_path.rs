//! The owner's cost per vote, time and allocations, in process (issue 13).
//!
//! A gateway node forwards the ops of a list it does not own in `Request::Ops` batches; the
//! owner's `InternodeHandler` decodes the batch, submits each op to its list actor, which
//! applies it, appends the batch to storage (here the in-memory store) and answers, and the
//! handler encodes one `Response::Ops`. `forwarded_batch/N` times exactly that, from the
//! decoded payload to the encoded response, for a batch of N votes from N voters who have not
//! voted yet on a public poll of 10 items (the hot-poll benchmark's shape). `apply_vote` times
//! `domain::apply` of one such vote alone.
//!
//! A counting global allocator counts every allocation made on any thread during the timed
//! region (the runtime's workers included, which is where the list actor runs); the totals
//! per vote are printed to stderr after each benchmark. Building the payload (the gateway's
//! work) is outside the timed and counted region.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use listwire::cluster::wire::{self, Request, Response, WireOp, WireOpBody, WirePrincipal};
use listwire::cluster::InternodeHandler;
use listwire::domain::{
    apply, create, Command, CreateList, Limits, ListState, Op, PollSettings, UserRef, Visibility,
};
use listwire::host::{Host, HostConfig};
use listwire::router::LocalRouter;
use listwire_storage::memory::MemoryStore;
use uuid::Uuid;

/// Counts allocations (and reallocations) and the bytes they ask for, on every thread.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn counters() -> (u64, u64) {
    (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    )
}

/// Allocations, bytes and votes measured over all iterations of one benchmark.
#[derive(Default)]
struct Tally {
    allocations: u64,
    bytes: u64,
    votes: u64,
    elapsed: Duration,
}

impl Tally {
    fn add(&mut self, before: (u64, u64), after: (u64, u64), votes: u64, elapsed: Duration) {
        self.allocations += after.0 - before.0;
        self.bytes += after.1 - before.1;
        self.votes += votes;
        self.elapsed += elapsed;
    }

    fn print(&self, name: &str) {
        let votes = self.votes.max(1) as f64;
        eprintln!(
            "{name}: {:.1} allocations/vote, {:.0} bytes/vote, {:.2} µs/vote ({} votes)",
            self.allocations as f64 / votes,
            self.bytes as f64 / votes,
            self.elapsed.as_secs_f64() * 1e6 / votes,
            self.votes,
        );
    }
}

/// Items in the hot poll.
const POLL_ITEMS: u128 = 10;

fn item_id(n: u128) -> Uuid {
    Uuid::from_u128(0x1000 + n)
}

fn voter(n: u64) -> WirePrincipal {
    WirePrincipal {
        user_id: Uuid::from_u64_pair(0x0190_0000_0000_7000, n),
        username: format!("voter{n}"),
    }
}

fn owner() -> WirePrincipal {
    WirePrincipal {
        user_id: Uuid::from_u128(1),
        username: "owner".into(),
    }
}

fn wire_op(principal: WirePrincipal, list: Uuid, body: WireOpBody) -> WireOp {
    WireOp {
        principal,
        list,
        op_id: Uuid::new_v4(),
        body,
    }
}

/// Sends `ops` through the handler as one request and returns the outcomes.
async fn forward(handler: &InternodeHandler, ops: Vec<WireOp>) -> Vec<Result<u64, String>> {
    match handler.ops(ops).await {
        Response::Ops(outcomes) => outcomes
            .into_iter()
            .map(|outcome| outcome.map_err(|error| error.message))
            .collect(),
        other => panic!("expected ops, got {other:?}"),
    }
}

/// A public one-vote poll of 10 items on a fresh in-memory node; returns its handler and list.
async fn hot_poll() -> (Arc<InternodeHandler>, Uuid) {
    let store = Arc::new(MemoryStore::new());
    let host = Host::new(store.clone(), store, HostConfig::default());
    let handler = InternodeHandler::new(LocalRouter::new(host), 4096);
    let list = Uuid::from_u128(0xabc);
    let create = r#"{"title":"hot poll","visibility":"public","poll":{"max_votes_per_user":1,"allow_change":false,"open":true}}"#;
    let mut ops = vec![wire_op(owner(), list, WireOpBody::Create(create.into()))];
    for n in 0..POLL_ITEMS {
        let body = format!(
            r#"{{"kind":"add_item","text":"option {n}","after":null,"item":"{}"}}"#,
            item_id(n)
        );
        ops.push(wire_op(owner(), list, WireOpBody::Apply(body)));
    }
    for outcome in forward(&handler, ops).await {
        outcome.expect("setting up the poll");
    }
    (handler, list)
}

/// The encoded `Request::Ops` of `size` votes from voters `first..first + size`.
fn vote_payload(list: Uuid, first: u64, size: u64) -> bytes::Bytes {
    let ops = (first..first + size)
        .map(|n| {
            let item = item_id(u128::from(n) % POLL_ITEMS);
            let body = format!(r#"{{"kind":"vote","item":"{item}"}}"#);
            wire_op(voter(n), list, WireOpBody::Apply(body))
        })
        .collect();
    wire::encode(&Request::Ops(ops))
}

fn forwarded_batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("vote_path/forwarded_batch");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for size in [8u64, 64] {
        let (handler, list) = runtime.block_on(hot_poll());
        let mut next_voter = 0u64;
        let mut tally = Tally::default();
        group.throughput(Throughput::Elements(size));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    let payload = vote_payload(list, next_voter, size);
                    next_voter += size;
                    let before = counters();
                    let start = Instant::now();
                    let response = runtime.block_on(async {
                        let Ok(Request::Ops(ops)) = wire::decode::<Request>(&payload) else {
                            panic!("a vote batch decodes");
                        };
                        wire::encode(&handler.ops(ops).await)
                    });
                    let took = start.elapsed();
                    tally.add(before, counters(), size, took);
                    elapsed += took;
                    let Ok(Response::Ops(outcomes)) = wire::decode::<Response>(&response) else {
                        panic!("an ops response");
                    };
                    assert!(outcomes.iter().all(Result::is_ok), "every vote is acked");
                }
                elapsed
            });
        });
        tally.print(&format!("vote_path/forwarded_batch/{size}"));
    }
    group.finish();
}

fn apply_vote(c: &mut Criterion) {
    let limits = Limits::default();
    let mut state = ListState::new(Uuid::from_u128(0xabc));
    let owner = UserRef {
        user_id: Uuid::from_u128(1),
        username: "owner".into(),
    };
    let body = CreateList {
        title: "hot poll".into(),
        visibility: Visibility::Public,
        poll: Some(PollSettings {
            max_votes_per_user: 1,
            allow_change: false,
            open: true,
            close_at_ms: None,
        }),
    };
    let t0_ms = 1_795_000_000_000u64;
    create(&mut state, Uuid::new_v4(), &owner, t0_ms, &body, &limits).expect("create");
    for n in 0..POLL_ITEMS {
        let op = Op::AddItem {
            text: format!("option {n}"),
            after: None,
            item: Some(item_id(n)),
        };
        let command = command(owner.clone(), t0_ms, op);
        apply(&mut state, &command, &limits).expect("add_item");
    }
    let mut next_voter = 0u64;
    let mut tally = Tally::default();
    c.bench_function("vote_path/apply_vote", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let principal = voter(next_voter);
                let by = UserRef {
                    user_id: principal.user_id,
                    username: principal.username,
                };
                let item = item_id(u128::from(next_voter) % POLL_ITEMS);
                let command = command(by, t0_ms + next_voter / 100, Op::Vote { item });
                next_voter += 1;
                let before = counters();
                let start = Instant::now();
                let event = apply(&mut state, black_box(&command), &limits);
                let took = start.elapsed();
                tally.add(before, counters(), 1, took);
                elapsed += took;
                black_box(event.expect("vote"));
            }
            elapsed
        });
    });
    tally.print("vote_path/apply_vote");
}

fn command(by: UserRef, at_ms: u64, op: Op) -> Command {
    Command {
        op_id: Uuid::new_v4(),
        by,
        at_ms,
        elapsed_ms: Some(10),
        op,
        target: None,
    }
}

criterion_group!(benches, forwarded_batch, apply_vote);
criterion_main!(benches);
