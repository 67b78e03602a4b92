//! `fanout`: one list, S subscriber connections, one writer at an open-loop rate; reports
//! edit → subscriber delivery latency, deliveries per second, and lost and duplicate
//! deliveries. Works against listwire and against the reference rebroadcast server, with the
//! same client code, so the two can be compared in one run.
//!
//! On a cluster, [`Layout`] places the list on one node and the subscribers round-robin on
//! others (the gateways); the writer then connects to the list's owner, so what is measured
//! beyond the single-node path is the owner → gateway hop of every delta.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use super::layout::Layout;
use super::setup::{create_lists_placed, Http};
use crate::pace::Pacer;
use crate::report::{progress, Latency, LatencySummary};
use crate::target::Target;
use crate::wire::{self, marker_text, markers, op_frame, subscribe_frame, unix_nanos};

/// Parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Subscriber connections.
    pub subscribers: usize,
    /// Edits per second from the one writer.
    pub rate: f64,
    /// How long edits are sent.
    pub seconds: f64,
    /// Where the list lives and where subscribers connect.
    pub layout: Layout,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            subscribers: 1000,
            rate: 100.0,
            seconds: 10.0,
            layout: Layout::default(),
        }
    }
}

/// Results of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Edit rate offered.
    pub rate: f64,
    /// Edits sent.
    pub edits: u64,
    /// Deliveries received by subscribers.
    pub deliveries: u64,
    /// Deliveries per second.
    pub deliveries_per_sec: f64,
    /// Edits a subscriber never received.
    pub lost: u64,
    /// Edits a subscriber received more than once.
    pub duplicates: u64,
    /// Subscribers whose connection closed during the run (e.g. slow consumer).
    pub closed_subscribers: u64,
    /// Delivery latency (writer send time → subscriber receipt).
    pub delivery_latency: LatencySummary,
    /// The full distribution (not serialized).
    #[serde(skip)]
    pub latency: Latency,
}

#[derive(Default)]
struct SubscriberTotals {
    deliveries: u64,
    lost: u64,
    duplicates: u64,
    closed: bool,
    latency: Latency,
}

/// Runs one fan-out measurement at `params.rate`.
pub async fn run(target: &Target, params: &Params) -> anyhow::Result<Outcome> {
    params.layout.validate(target)?;
    let writer_user = 0;
    let (list, item) = prepare_list(target, writer_user, params.layout.owner).await?;
    let (last_tx, last_rx) = watch::channel(None::<u64>);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(params.subscribers.max(1));
    let mut subscribers = Vec::with_capacity(params.subscribers);
    for index in 0..params.subscribers {
        let node = params.layout.gateway(target, index as u64);
        let (mut sink, stream) = wire::connect_split_to(target, node, 1 + index as u64).await?;
        if !target.is_reference() {
            sink.send(subscribe_frame(list, None)).await?;
        }
        subscribers.push(tokio::spawn(subscribe(
            sink,
            stream,
            last_rx.clone(),
            ready_tx.clone(),
        )));
    }
    let writer_node = params
        .layout
        .owner
        .unwrap_or_else(|| target.client_node(writer_user));
    let (mut writer, mut writer_stream) =
        wire::connect_split_to(target, writer_node, writer_user).await?;
    // Acks come back to the writer; keep reading them so its queue never fills.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = writer_stream.next().await {} });
    // Warm-up barrier: every subscriber has seen edit 0 before the measured edits start.
    writer.send(edit(list, item, 0)).await?;
    for _ in 0..params.subscribers {
        tokio::time::timeout(Duration::from_secs(30), ready_rx.recv()).await?;
    }
    progress(format_args!(
        "fanout: {} subscribers ready; {:.0} edits/s for {:.0} s",
        params.subscribers, params.rate, params.seconds
    ));
    let mut pacer = Pacer::new(params.rate, Duration::from_secs_f64(params.seconds));
    let mut sequence = 0u64;
    loop {
        let due = pacer.due().await;
        if due.is_empty() {
            break;
        }
        for _ in due {
            sequence += 1;
            writer.feed(edit(list, item, sequence)).await?;
        }
        writer.flush().await?;
    }
    let _ = last_tx.send(Some(sequence));
    let mut outcome = Outcome {
        rate: params.rate,
        edits: sequence,
        deliveries: 0,
        deliveries_per_sec: 0.0,
        lost: 0,
        duplicates: 0,
        closed_subscribers: 0,
        delivery_latency: Latency::new().summary(),
        latency: Latency::new(),
    };
    for subscriber in subscribers {
        let totals = subscriber.await?;
        outcome.deliveries += totals.deliveries;
        outcome.lost += totals.lost;
        outcome.duplicates += totals.duplicates;
        outcome.closed_subscribers += u64::from(totals.closed);
        outcome.latency.merge(&totals.latency);
    }
    let _ = writer.close().await;
    drain.abort();
    outcome.deliveries_per_sec = outcome.deliveries as f64 / params.seconds;
    outcome.delivery_latency = outcome.latency.summary();
    Ok(outcome)
}

/// A public list (on node `node`, if given) with one item that the writer edits over and over.
async fn prepare_list(
    target: &Target,
    owner: u64,
    node: Option<usize>,
) -> anyhow::Result<(Uuid, Uuid)> {
    let item = Uuid::from_u128(0xfa_0017);
    if target.is_reference() {
        return Ok((Uuid::nil(), item));
    }
    let list = create_lists_placed(
        target,
        1,
        |_| node,
        |_| owner,
        json!({"title": "fanout", "visibility": "public"}),
    )
    .await?[0];
    let http = Http::new(target);
    let add = json!({"kind": "add_item", "text": "fanout", "after": null, "item": item});
    http.op(&target.token(owner), list, Uuid::new_v4(), add)
        .await?
        .map_err(anyhow::Error::msg)?;
    Ok((list, item))
}

fn edit(list: Uuid, item: Uuid, sequence: u64) -> tokio_tungstenite::tungstenite::Message {
    let text = marker_text(unix_nanos(), sequence);
    let op = format!(r#"{{"kind":"edit_item","item":"{item}","text":"{text}"}}"#);
    op_frame(list, Uuid::new_v4(), &op)
}

async fn subscribe(
    _sink: wire::WsSink,
    mut stream: wire::WsStream,
    mut last_rx: watch::Receiver<Option<u64>>,
    ready_tx: tokio::sync::mpsc::Sender<()>,
) -> SubscriberTotals {
    let mut totals = SubscriberTotals::default();
    let mut warmed_up = false;
    let mut highest = 0u64;
    loop {
        let last = *last_rx.borrow();
        if last.is_some_and(|last| highest >= last) {
            break;
        }
        let frame = tokio::select! {
            frame = wire::next_text(&mut stream) => frame,
            _ = last_rx.changed() => continue,
            _ = tokio::time::sleep(Duration::from_secs(5)), if last.is_some() => break,
        };
        let Some(Ok(frame)) = frame else {
            totals.closed = true;
            break;
        };
        let received = unix_nanos();
        for (sent, sequence) in markers(&frame) {
            if sequence == 0 {
                if !warmed_up {
                    warmed_up = true;
                    let _ = ready_tx.send(()).await;
                }
                continue;
            }
            if sequence <= highest {
                totals.duplicates += 1;
                continue;
            }
            totals.lost += sequence - highest - 1;
            highest = sequence;
            totals.deliveries += 1;
            totals
                .latency
                .record(Duration::from_nanos(received.saturating_sub(sent)));
        }
    }
    if let Some(last) = *last_rx.borrow() {
        totals.lost += last.saturating_sub(highest);
    }
    totals
}
