//! Throughput of the embedded store's append path under group commit, fsync on.
//!
//! Every durable op waits for `EventStore::append`; the embedded store funnels all writes through
//! one committer thread that writes each group of queued requests in one fjall batch and fsyncs
//! once. So one writer gets about one append per fsync, and many concurrent writers (list actors,
//! each with its own list) should share fsyncs. This measures how appends/s scale from 1 to 16 to
//! 128 concurrent writers, which bounds the node's durable op rate across lists.
//!
//! Setup: a fresh store in a temporary directory (on the same disk as `/tmp`), default options
//! (fsync on); N tokio tasks on a multi-thread runtime, each appending ~200-byte one-event batches
//! to its own list back to back. Throughput is in appends (elements) per second.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use listwire_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use listwire_storage::{Batch, EventStore};
use uuid::Uuid;

/// A stored batch of one event as the node writes it: a format version byte, then a JSON array.
fn batch_body() -> Bytes {
    let mut body = vec![1u8];
    body.extend_from_slice(
        br#"[{"seq":42,"op_id":"5f0c2a9e-8d1b-4c3e-9a7f-2b6d1e0c4f8a","by":"0190a5c4-3b1e-7c2a-9f3d-5e6a7b8c9d0e","at_ms":1795000000000,"kind":"add_item","item":"6a1f3e2d-4c5b-4a69-8e7d-1f2a3b4c5d6e","text":"Buy oat milk","after":null}]"#,
    );
    Bytes::from(body)
}

fn bench_group_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open store");
    let body = batch_body();

    let mut group = c.benchmark_group("storage/embedded_append_fsync");
    // Every group costs a real fsync: few, flat samples keep the run short.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    for tasks in [1u64, 16, 128] {
        // Each task owns one list; its next seq carries over between samples.
        let lists: Vec<Uuid> = (0..tasks)
            .map(|t| Uuid::from_u64_pair(tasks, t + 1))
            .collect();
        let mut next_seq = vec![1u64; tasks as usize];
        group.bench_with_input(BenchmarkId::new("tasks", tasks), &tasks, |b, &tasks| {
            b.iter_custom(|iters| {
                // Split `iters` appends over the tasks as evenly as possible.
                let counts: Vec<u64> = (0..tasks)
                    .map(|t| iters / tasks + u64::from(t < iters % tasks))
                    .collect();
                let elapsed = runtime.block_on(async {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..tasks as usize)
                        .map(|t| {
                            let store = store.clone();
                            let body = body.clone();
                            let list = lists[t];
                            let first = next_seq[t];
                            let count = counts[t];
                            tokio::spawn(async move {
                                for seq in first..first + count {
                                    let batch = Batch {
                                        first_seq: seq,
                                        last_seq: seq,
                                        body: body.clone(),
                                    };
                                    store.append(list, batch).await.expect("append");
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.expect("append task");
                    }
                    start.elapsed()
                });
                for (next, count) in next_seq.iter_mut().zip(&counts) {
                    *next += count;
                }
                elapsed
            });
        });
    }
    group.finish();
    drop(store);
    drop(dir);
}

criterion_group!(benches, bench_group_commit);
criterion_main!(benches);
