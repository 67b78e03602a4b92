//! A failover subscriber: one WebSocket connection following one list, checking that its
//! frames are contiguous (each delta starts right after the last seq it had, no seq twice) and
//! noting, after the kill, when frames carrying new ops arrive. Like a client, it resubscribes
//! with `since` when the server ends its subscription, and reconnects to the next node (then
//! resubscribes with `since`) when its connection is lost; it stops once it has the list's
//! final seq, or [`CONVERGE_TIMEOUT`] after that seq is known.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::{highest_number, CONNECT_TIMEOUT, CONVERGE_TIMEOUT};
use crate::wire::{self, answer, frame_type, number_after, subscribe_frame, WsSink, WsStream};

/// What one subscriber does.
pub(crate) struct Subscriber {
    /// WebSocket URL of every node, by index.
    pub(crate) urls: Vec<String>,
    /// Its session.
    pub(crate) token: String,
    /// The node it connects to first.
    pub(crate) node: usize,
    /// The list's index and id.
    pub(crate) list: (usize, Uuid),
}

/// What a subscriber saw.
#[derive(Default)]
pub(crate) struct SubscriberLog {
    /// The list's index.
    pub(crate) list: usize,
    /// Whether its first connection lasted the whole run.
    pub(crate) stayed_connected: bool,
    /// Connections it opened again after losing one.
    pub(crate) reconnects: u64,
    /// Subscriptions it sent again after the server ended one.
    pub(crate) resubscribes: u64,
    /// Seqs skipped between consecutive frames.
    pub(crate) gaps: u64,
    /// Seqs received again.
    pub(crate) duplicates: u64,
    /// The last seq it has.
    pub(crate) seq: u64,
    /// Whether it reached the list's final seq.
    pub(crate) converged: bool,
    /// Frames received after the kill: (when, the highest op number among their items).
    pub(crate) after_kill: Vec<(Instant, u64)>,
}

type Connection = (WsSink, WsStream);

impl Subscriber {
    /// Follows the list; tells `ready_tx` once it has its first snapshot. `killed_at` is set
    /// when the victim dies; `final_rx` names each list's final seq once writes are over.
    pub(crate) async fn run(
        self,
        ready_tx: mpsc::Sender<()>,
        killed_at: Arc<OnceLock<Instant>>,
        mut final_rx: watch::Receiver<Option<Arc<Vec<u64>>>>,
    ) -> SubscriberLog {
        let mut log = SubscriberLog {
            list: self.list.0,
            stayed_connected: true,
            ..SubscriberLog::default()
        };
        let mut node = self.node;
        let mut connection = self.subscribe(node, None).await;
        let mut ready = Some(ready_tx);
        let mut stop_at: Option<Instant> = None;
        loop {
            let final_seq = final_rx.borrow().as_ref().map(|seqs| seqs[self.list.0]);
            if final_seq.is_some_and(|last| log.seq >= last) {
                log.converged = true;
                break;
            }
            if final_seq.is_some() && stop_at.is_none() {
                stop_at = Some(Instant::now() + CONVERGE_TIMEOUT);
            }
            let Some((sink, stream)) = connection.as_mut() else {
                if stop_at.is_some_and(|at| Instant::now() >= at) {
                    break;
                }
                log.reconnects += 1;
                node = (node + 1) % self.urls.len();
                tokio::time::sleep(Duration::from_millis(100)).await;
                connection = self.subscribe(node, Some(log.seq)).await;
                continue;
            };
            let frame = tokio::select! {
                frame = wire::next_text(stream) => frame.and_then(Result::ok),
                changed = final_rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
                () = sleep_until(stop_at) => break,
            };
            let Some(frame) = frame else {
                log.stayed_connected = false;
                connection = None;
                continue;
            };
            if !self.handle(&frame, &mut log, &killed_at) {
                log.resubscribes += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = sink.send(subscribe_frame(self.list.1, Some(log.seq))).await;
            }
            if log.seq > 0 {
                if let Some(ready_tx) = ready.take() {
                    let _ = ready_tx.send(()).await;
                }
            }
        }
        log
    }

    /// Connects to `node` and subscribes from `since`.
    async fn subscribe(&self, node: usize, since: Option<u64>) -> Option<Connection> {
        let url = &self.urls[node];
        let socket = tokio::time::timeout(CONNECT_TIMEOUT, wire::connect_url(url, &self.token))
            .await
            .ok()?
            .ok()?;
        let (mut sink, stream) = socket.split();
        sink.send(subscribe_frame(self.list.1, since)).await.ok()?;
        Some((sink, stream))
    }

    /// Checks one frame against what the subscriber has; false if the server ended the
    /// subscription (the caller resubscribes).
    fn handle(&self, frame: &str, log: &mut SubscriberLog, killed_at: &OnceLock<Instant>) -> bool {
        let (from, to) = match frame_type(frame) {
            "snapshot" => {
                let seq = number_after(frame, r#""seq":"#).unwrap_or(0);
                // The first frame; or after a resubscribe whose `since` was too old to catch
                // up from, the whole state: nothing before it is missing.
                if seq < log.seq {
                    log.duplicates += log.seq - seq;
                }
                log.seq = log.seq.max(seq);
                return true;
            }
            "delta" => (
                number_after(frame, r#""from":"#).unwrap_or(0),
                number_after(frame, r#""to":"#).unwrap_or(0),
            ),
            "error" => return answer(frame).is_some_and(|answer| answer.op_id.is_some()),
            _ => return true,
        };
        if from > log.seq + 1 {
            log.gaps += from - log.seq - 1;
        }
        if from <= log.seq {
            log.duplicates += log.seq.min(to) + 1 - from;
        }
        log.seq = log.seq.max(to);
        if let Some(killed_at) = killed_at.get() {
            let now = Instant::now();
            if now >= *killed_at {
                if let Some(number) = highest_number(frame, self.list.0) {
                    log.after_kill.push((now, number));
                }
            }
        }
        true
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
