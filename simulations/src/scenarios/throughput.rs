//! `throughput`: many lists, W writer connections, an open-loop offered rate; reports
//! acknowledged ops per second and ack latency measured from each op's due time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use super::setup::create_lists;
use crate::pace::Pacer;
use crate::report::{progress, Latency, LatencySummary};
use crate::target::Target;
use crate::wire::{self, answer, op_frame};

/// Parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Lists written to.
    pub lists: usize,
    /// Writer connections (each its own user).
    pub writers: usize,
    /// Offered ops per second, in total.
    pub rate: f64,
    /// How long ops are offered.
    pub seconds: f64,
    /// Items added to each list before writes turn into toggles (keeps lists bounded).
    pub items_per_list: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            lists: 1000,
            writers: 16,
            rate: 20_000.0,
            seconds: 10.0,
            items_per_list: 50,
        }
    }
}

/// Results.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Ops sent.
    pub offered: u64,
    /// Ops acknowledged.
    pub acked: u64,
    /// Acknowledged ops per second, from the first op to the last answer.
    pub acked_per_sec: f64,
    /// Seconds from the first op to the last answer.
    pub elapsed_seconds: f64,
    /// Refusals by code.
    pub errors: BTreeMap<String, u64>,
    /// Ops neither acked nor refused when the run ended.
    pub unanswered: u64,
    /// Ack latency from the op's due time.
    pub ack_latency: LatencySummary,
    /// The full distribution (not serialized).
    #[serde(skip)]
    pub latency: Latency,
}

/// What one writer connection saw.
pub(crate) struct WriterTotals {
    pub(crate) last_answer: Option<Instant>,
    pub(crate) offered: u64,
    pub(crate) acked: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) unanswered: u64,
    pub(crate) latency: Latency,
}

/// Runs the scenario.
pub async fn run(target: &Target, params: &Params) -> anyhow::Result<Outcome> {
    let writers = params.writers.max(1);
    let lists = create_lists(
        target,
        params.lists.max(1),
        |index| (index % writers) as u64,
        json!({"title": "throughput"}),
    )
    .await?;
    progress(format_args!(
        "throughput: {} lists ready, {} writers at {:.0} ops/s for {:.0} s",
        lists.len(),
        writers,
        params.rate,
        params.seconds
    ));
    let acked_counter = Arc::new(AtomicU64::new(0));
    let ticker = spawn_progress(acked_counter.clone());
    let mut tasks = Vec::new();
    let started = Instant::now();
    for writer in 0..writers {
        let own: Vec<Uuid> = lists
            .iter()
            .copied()
            .skip(writer)
            .step_by(writers)
            .collect();
        let connection = wire::connect_split(target, writer as u64).await?;
        let rate = params.rate / writers as f64;
        let duration = Duration::from_secs_f64(params.seconds);
        tasks.push(tokio::spawn(write(
            connection,
            own,
            rate,
            duration,
            params.items_per_list,
            acked_counter.clone(),
        )));
    }
    let mut outcome = Outcome {
        elapsed_seconds: 0.0,
        offered: 0,
        acked: 0,
        acked_per_sec: 0.0,
        errors: BTreeMap::new(),
        unanswered: 0,
        ack_latency: Latency::new().summary(),
        latency: Latency::new(),
    };
    let mut last_answer: Option<Instant> = None;
    for task in tasks {
        let totals = task.await??;
        last_answer = last_answer.max(totals.last_answer);
        outcome.offered += totals.offered;
        outcome.acked += totals.acked;
        outcome.unanswered += totals.unanswered;
        for (code, count) in totals.errors {
            *outcome.errors.entry(code).or_default() += count;
        }
        outcome.latency.merge(&totals.latency);
    }
    ticker.abort();
    let last_answer = last_answer.map_or(params.seconds, |at| {
        at.duration_since(started).as_secs_f64()
    });
    outcome.elapsed_seconds = last_answer;
    outcome.acked_per_sec = outcome.acked as f64 / last_answer.max(params.seconds);
    outcome.ack_latency = outcome.latency.summary();
    Ok(outcome)
}

/// Prints acked ops per second until aborted.
pub(crate) fn spawn_progress(acked: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.tick().await;
        for second in 1.. {
            interval.tick().await;
            let now = acked.load(Ordering::Relaxed);
            progress(format_args!("  t={second}s acked {now} ({}/s)", now - last));
            last = now;
        }
    })
}

/// The op for the `count`-th write to `list`: add items until the list has `items`, then toggle them.
fn op_for(list: Uuid, count: u64, items: u64) -> String {
    let item = Uuid::from_u128(list.as_u128() ^ u128::from(count % items.max(1)) ^ 0x5eed);
    if count < items {
        format!(r#"{{"kind":"add_item","text":"item {count}","after":null,"item":"{item}"}}"#)
    } else {
        format!(
            r#"{{"kind":"set_done","item":"{item}","done":{}}}"#,
            (count / items) % 2 == 1
        )
    }
}

/// One writer connection: ops at `rate` for `duration`, round-robin over `lists`, then waits
/// (bounded) for their answers.
pub(crate) async fn write(
    connection: (wire::WsSink, wire::WsStream),
    lists: Vec<Uuid>,
    rate: f64,
    duration: Duration,
    items: usize,
    acked_counter: Arc<AtomicU64>,
) -> anyhow::Result<WriterTotals> {
    let (mut sink, mut stream) = connection;
    let due_by_op: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let reader_due = due_by_op.clone();
    let reader = tokio::spawn(async move {
        let mut totals = WriterTotals {
            last_answer: None,
            offered: 0,
            acked: 0,
            errors: BTreeMap::new(),
            unanswered: 0,
            latency: Latency::new(),
        };
        while let Some(Ok(text)) = wire::next_text(&mut stream).await {
            let Some(answer) = answer(&text) else {
                continue;
            };
            let Some(due) = answer.op_id.and_then(|op_id| {
                reader_due
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&op_id)
            }) else {
                continue;
            };
            totals.last_answer = Some(Instant::now());
            if answer.kind == "ack" {
                totals.acked += 1;
                acked_counter.fetch_add(1, Ordering::Relaxed);
                totals.latency.record(due.elapsed());
            } else {
                *totals
                    .errors
                    .entry(answer.code.unwrap_or_default())
                    .or_default() += 1;
            }
        }
        totals
    });
    let mut pacer = Pacer::new(rate, duration);
    let mut counts = vec![0u64; lists.len()];
    let mut offered = 0u64;
    loop {
        let due = pacer.due().await;
        if due.is_empty() {
            break;
        }
        for at in due {
            let slot = (offered % lists.len() as u64) as usize;
            let op_id = Uuid::new_v4();
            let op = op_for(lists[slot], counts[slot], items as u64);
            counts[slot] += 1;
            due_by_op
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(op_id, at);
            sink.feed(op_frame(lists[slot], op_id, &op)).await?;
            offered += 1;
        }
        sink.flush().await?;
    }
    // Let answers drain, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !due_by_op
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = sink.close().await;
    let mut totals = reader.await?;
    totals.offered = offered;
    totals.unanswered = due_by_op.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
    Ok(totals)
}
