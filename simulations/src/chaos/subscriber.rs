//! A chaos subscriber: one WebSocket following one list on one node, recording every frame's
//! seqs. Like a real client it resubscribes with `since` when the server ends its subscription
//! and reconnects (to the next node) with `since` when its connection is lost; the checkers
//! then judge whether the frames were contiguous and whether it reached the stored head.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::wire::{self, answer, frame_type, number_after, subscribe_frame, WsSink, WsStream};

/// How long a subscriber may take to reach the stored head once it is known.
pub(crate) const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A frame's seqs, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    Snapshot(u64),
    Delta(u64, u64),
    Tally(u64),
    /// The connection was lost or replaced (frames after it come from a new subscription).
    Reconnected,
}

/// What a subscriber saw.
#[derive(Debug, Clone)]
pub(crate) struct SubscriberLog {
    pub(crate) list: usize,
    pub(crate) node: usize,
    pub(crate) frames: Vec<Seen>,
    /// Tally counts by seq (item id → votes).
    pub(crate) tallies: Vec<(u64, BTreeMap<Uuid, u64>)>,
    pub(crate) stayed_connected: bool,
    pub(crate) resubscribes: u64,
    /// The last seq it has.
    pub(crate) seq: u64,
}

type Connection = (WsSink, WsStream);

/// Follows `list` from node `node`; stops once it has the head `heads_rx` announces for it,
/// or [`CONVERGE_TIMEOUT`] after the heads are known.
pub(crate) async fn follow(
    urls: Vec<String>,
    token: String,
    (node, (list_index, list)): (usize, (usize, Uuid)),
    mut heads_rx: watch::Receiver<Option<Vec<u64>>>,
) -> SubscriberLog {
    let mut log = SubscriberLog {
        list: list_index,
        node,
        frames: Vec::new(),
        tallies: Vec::new(),
        stayed_connected: true,
        resubscribes: 0,
        seq: 0,
    };
    let mut at = node;
    let mut connection = subscribe(&urls[at], &token, list, None).await;
    let mut stop_at: Option<Instant> = None;
    loop {
        let head = heads_rx.borrow().as_ref().map(|heads| heads[list_index]);
        if head.is_some_and(|head| log.seq >= head) {
            break;
        }
        if head.is_some() && stop_at.is_none() {
            stop_at = Some(Instant::now() + CONVERGE_TIMEOUT);
        }
        if stop_at.is_some_and(|stop| Instant::now() >= stop) {
            break;
        }
        let Some((sink, stream)) = connection.as_mut() else {
            log.stayed_connected = false;
            log.frames.push(Seen::Reconnected);
            at = (at + 1) % urls.len();
            tokio::time::sleep(Duration::from_millis(200)).await;
            connection = subscribe(&urls[at], &token, list, Some(log.seq)).await;
            continue;
        };
        let frame = tokio::select! {
            frame = wire::next_text(stream) => frame.and_then(Result::ok),
            changed = heads_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
        };
        let Some(frame) = frame else {
            connection = None;
            continue;
        };
        if !record(&frame, &mut log) {
            log.resubscribes += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            if sink
                .send(subscribe_frame(list, Some(log.seq)))
                .await
                .is_err()
            {
                connection = None;
            }
        }
    }
    log
}

async fn subscribe(url: &str, token: &str, list: Uuid, since: Option<u64>) -> Option<Connection> {
    let socket = tokio::time::timeout(CONNECT_TIMEOUT, wire::connect_url(url, token))
        .await
        .ok()?
        .ok()?;
    let (mut sink, stream) = socket.split();
    sink.send(subscribe_frame(list, since)).await.ok()?;
    Some((sink, stream))
}

/// Records one frame; false when the server ended the subscription (an error without op id).
fn record(frame: &str, log: &mut SubscriberLog) -> bool {
    match kind_of(frame).as_str() {
        "snapshot" => {
            let seq = number_after(frame, r#""seq":"#).unwrap_or(0);
            log.frames.push(Seen::Snapshot(seq));
            log.seq = log.seq.max(seq);
        }
        "delta" => {
            let from = number_after(frame, r#""from":"#).unwrap_or(0);
            let to = number_after(frame, r#""to":"#).unwrap_or(0);
            log.frames.push(Seen::Delta(from, to));
            log.seq = log.seq.max(to);
        }
        "tally" => {
            let Ok(value) = serde_json::from_str::<Value>(frame) else {
                return true;
            };
            let seq = value["seq"].as_u64().unwrap_or(0);
            log.frames.push(Seen::Tally(seq));
            log.tallies.push((seq, counts(&value["counts"])));
            log.seq = log.seq.max(seq);
        }
        "error" => return answer(frame).is_some_and(|answer| answer.op_id.is_some()),
        _ => {}
    }
    true
}

/// A frame's `type`: scanned when it comes first (frames the owner encodes), parsed otherwise
/// (a `serde_json` object, such as a node's error frame, orders its keys alphabetically).
fn kind_of(frame: &str) -> String {
    let scanned = frame_type(frame);
    if !scanned.is_empty() {
        return scanned.to_owned();
    }
    serde_json::from_str::<Value>(frame)
        .ok()
        .and_then(|value| value["type"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn counts(value: &Value) -> BTreeMap<Uuid, u64> {
    let mut counts = BTreeMap::new();
    if let Some(object) = value.as_object() {
        for (item, votes) in object {
            if let (Ok(item), Some(votes)) = (item.parse(), votes.as_u64()) {
                counts.insert(item, votes);
            }
        }
    }
    counts
}
