//! One voter connection of `hot-poll --ws`: its votes (one per item) and their retries, the
//! frames it reads (scanned, not parsed), its reconnections, and what it measured.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::{subscribe, Opened, CONVERGE_DEADLINE};
use crate::report::Latency;
use crate::scenarios::hot_poll::{self, Shared};
use crate::wire::{self, covered_seq, frame_type, number_after, string_after, Ws};

/// Reconnection attempts after a socket closes.
const RECONNECTS_MAX: u32 = 10;
/// Longest a frame may take to send, and a reconnection to connect and subscribe.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The "item" of a pending resubscription in a connection's retries.
const RESUBSCRIBE: usize = usize::MAX;

/// Where one of a connection's votes stands.
#[derive(Clone)]
enum Slot {
    NotDue,
    Sent { due: Instant, attempt: u32 },
    Acked(u64),
    Failed(String),
}

/// One voter connection: its votes (one per item), what it has seen, what it measured.
pub(super) struct Conn {
    url: String,
    token: String,
    list: Uuid,
    item_ids: Vec<Uuid>,
    op_ids: Vec<Uuid>,
    /// The pre-built op frame of each item's vote.
    frames: Vec<String>,
    slots: Vec<Slot>,
    /// Resends waiting for their backoff: (when, item).
    retries: Vec<(Instant, usize)>,
    attempts: u32,
    /// The highest seq a frame brought this connection to.
    seen: u64,
    /// Acked seqs not yet covered by a frame, with when their ack arrived.
    awaiting_frame: Vec<(u64, Instant)>,
    ack: Vec<Duration>,
    lag: Vec<Duration>,
    reconnects: u64,
    resent: u64,
    shared: Option<Arc<Shared>>,
}

/// What a connection hands back.
pub(super) struct ConnResult {
    acked: Vec<Uuid>,
    failed: Vec<String>,
    /// Items of votes whose outcome is unknown (they may or may not count).
    unknown: Vec<Uuid>,
    ack: Vec<Duration>,
    lag: Vec<Duration>,
    converged: bool,
    reconnects: u64,
    resent: u64,
}

impl Conn {
    /// The connection of `opened` (returned apart, as its task owns it) and its state.
    pub(super) fn new(
        opened: Opened,
        list: Uuid,
        items: &[Uuid],
        attempts: u32,
        shared: Option<Arc<Shared>>,
    ) -> (Ws, Self) {
        let op_ids: Vec<Uuid> = items.iter().map(|_| Uuid::new_v4()).collect();
        let frames = items
            .iter()
            .zip(&op_ids)
            .map(|(item, op_id)| {
                let op = format!(r#"{{"kind":"vote","item":"{item}"}}"#);
                format!(r#"{{"type":"op","list":"{list}","op_id":"{op_id}","op":{op}}}"#)
            })
            .collect();
        let conn = Self {
            url: opened.url,
            token: opened.token,
            list,
            item_ids: items.to_vec(),
            op_ids,
            frames,
            slots: vec![Slot::NotDue; items.len()],
            retries: Vec::new(),
            attempts: attempts.max(1),
            seen: opened.seen,
            awaiting_frame: Vec::new(),
            ack: Vec::with_capacity(items.len()),
            lag: Vec::with_capacity(items.len()),
            reconnects: 0,
            resent: 0,
            shared,
        };
        (opened.ws, conn)
    }

    pub(super) async fn run(
        mut self,
        ws: Ws,
        mut votes: mpsc::UnboundedReceiver<(usize, Instant)>,
        done: mpsc::UnboundedSender<u64>,
        mut final_rx: watch::Receiver<Option<u64>>,
    ) -> ConnResult {
        let mut ws = Some(ws);
        let (mut votes_closed, mut reported) = (false, false);
        let mut final_deadline: Option<Instant> = None;
        loop {
            if !reported && votes_closed && self.unanswered() == 0 {
                reported = true;
                let _ = done.send(self.highest_acked());
            }
            let last = *final_rx.borrow();
            if let Some(last) = last {
                if self.seen >= last {
                    return self.finish(true);
                }
                let deadline = *final_deadline.get_or_insert(Instant::now() + CONVERGE_DEADLINE);
                if Instant::now() >= deadline {
                    return self.finish(false);
                }
            }
            let Some(socket) = ws.as_mut() else {
                match self.reconnect().await {
                    Some(socket) => ws = Some(socket),
                    None => return self.finish(false),
                }
                continue;
            };
            let next_retry = self.retries.iter().map(|(at, _)| *at).min();
            let far = Instant::now() + Duration::from_secs(3600);
            let healthy = tokio::select! {
                vote = votes.recv(), if !votes_closed => match vote {
                    Some((item, due)) => {
                        self.slots[item] = Slot::Sent { due, attempt: 0 };
                        self.send(socket, item).await
                    }
                    None => { votes_closed = true; true }
                },
                message = socket.next() => match message {
                    Some(Ok(Message::Text(text))) => { self.on_frame(text.as_str()); true }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => false,
                    Some(Ok(_)) => true,
                },
                _ = tokio::time::sleep_until(next_retry.unwrap_or(far)), if next_retry.is_some() => {
                    self.resend_due(socket).await
                }
                _ = final_rx.changed(), if last.is_none() => true,
                _ = tokio::time::sleep_until(final_deadline.unwrap_or(far)), if final_deadline.is_some() => true,
            };
            if !healthy {
                ws = None;
            }
        }
    }

    /// Sends item `item`'s vote; false if the socket failed.
    async fn send(&mut self, ws: &mut Ws, item: usize) -> bool {
        send_within(ws, Message::text(self.frames[item].clone())).await
    }

    async fn resend_due(&mut self, ws: &mut Ws) -> bool {
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.retries.drain(..).partition(|(at, _)| *at <= now);
        self.retries = waiting;
        for (_, item) in due {
            let frame = if item == RESUBSCRIBE {
                wire::subscribe_frame(self.list, Some(self.seen))
            } else {
                self.resent += 1;
                Message::text(self.frames[item].clone())
            };
            if !send_within(ws, frame).await {
                return false;
            }
        }
        true
    }

    /// Handles one server frame, scanning rather than parsing it.
    fn on_frame(&mut self, frame: &str) {
        match frame_type(frame) {
            "ack" => {
                let (Some(item), Some(seq)) =
                    (self.item_of(frame), number_after(frame, r#""seq":"#))
                else {
                    return;
                };
                let Slot::Sent { due, .. } = self.slots[item] else {
                    return; // a duplicate answer: counted once per op id
                };
                let now = Instant::now();
                self.ack.push(now - due);
                self.slots[item] = Slot::Acked(seq);
                if let Some(shared) = &self.shared {
                    shared.acked(seq, now);
                }
                if self.seen >= seq {
                    self.lag.push(Duration::ZERO);
                } else {
                    self.awaiting_frame.push((seq, now));
                }
            }
            "error" => self.on_error(frame),
            _ => {
                let Some(covered) = covered_seq(frame) else {
                    return;
                };
                self.seen = self.seen.max(covered);
                let seen = self.seen;
                let now = Instant::now();
                let lag = &mut self.lag;
                self.awaiting_frame.retain(|(seq, acked_at)| {
                    let waiting = *seq > seen;
                    if !waiting {
                        lag.push(now - *acked_at);
                    }
                    waiting
                });
            }
        }
    }

    fn on_error(&mut self, frame: &str) {
        let code = string_after(frame, r#""code":""#).unwrap_or("unknown");
        let Some(item) = self.item_of(frame) else {
            // A subscription error ("list restarted; resubscribe with since"): resubscribe.
            if hot_poll::retryable(code) {
                let backoff = Instant::now() + Duration::from_millis(20);
                self.retries.push((backoff, RESUBSCRIBE));
            }
            return;
        };
        let Slot::Sent { due, attempt } = self.slots[item] else {
            return;
        };
        if hot_poll::retryable(code) && attempt + 1 < self.attempts {
            self.slots[item] = Slot::Sent {
                due,
                attempt: attempt + 1,
            };
            let backoff = Duration::from_millis(20 << attempt.min(6));
            self.retries.push((Instant::now() + backoff, item));
        } else {
            self.slots[item] = Slot::Failed(code.to_owned());
        }
    }

    /// The item whose op id a frame carries.
    fn item_of(&self, frame: &str) -> Option<usize> {
        let op_id: Uuid = string_after(frame, r#""op_id":""#)?.parse().ok()?;
        self.op_ids.iter().position(|id| *id == op_id)
    }

    fn unanswered(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| matches!(slot, Slot::Sent { .. }))
            .count()
    }

    fn highest_acked(&self) -> u64 {
        self.slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Acked(seq) => Some(*seq),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Reopens the socket, resubscribes from the last seq seen and resends every unanswered
    /// vote with its op id; `None` after `RECONNECTS_MAX` failures.
    async fn reconnect(&mut self) -> Option<Ws> {
        for attempt in 0..RECONNECTS_MAX {
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            let subscribing = subscribe(&self.url, &self.token, self.list, Some(self.seen));
            let Ok(Ok((mut ws, _))) = tokio::time::timeout(IO_TIMEOUT, subscribing).await else {
                continue;
            };
            self.reconnects += 1;
            self.retries.clear();
            let unanswered: Vec<usize> = (0..self.slots.len())
                .filter(|item| matches!(self.slots[*item], Slot::Sent { .. }))
                .collect();
            let mut sent = true;
            for item in unanswered {
                self.resent += 1;
                sent &= self.send(&mut ws, item).await;
            }
            if sent {
                return Some(ws);
            }
        }
        None
    }

    fn finish(self, converged: bool) -> ConnResult {
        let mut acked = Vec::new();
        let mut failed = Vec::new();
        let mut unknown = Vec::new();
        for (item, slot) in self.slots.into_iter().enumerate() {
            match slot {
                Slot::Acked(_) => acked.push(self.item_ids[item]),
                Slot::Failed(code) => {
                    // `unavailable` ("outcome unknown") and `internal` may have been applied.
                    if hot_poll::outcome_unknown(&code) {
                        unknown.push(self.item_ids[item]);
                    }
                    failed.push(code);
                }
                Slot::Sent { .. } => {
                    unknown.push(self.item_ids[item]);
                    failed.push("unanswered".into());
                }
                // Its connection gave up before the vote was due.
                Slot::NotDue => failed.push("not_sent".into()),
            }
        }
        ConnResult {
            acked,
            failed,
            unknown,
            ack: self.ack,
            lag: self.lag,
            converged,
            reconnects: self.reconnects,
            resent: self.resent,
        }
    }
}

/// Every connection's results together.
#[derive(Default)]
pub(super) struct Totals {
    pub(super) votes_acked: u64,
    pub(super) acked_by_item: HashMap<Uuid, u64>,
    pub(super) failed: HashMap<String, u64>,
    pub(super) unknown_by_item: HashMap<Uuid, u64>,
    pub(super) ack: Latency,
    pub(super) lag: Latency,
    pub(super) converged: u64,
    pub(super) reconnects: u64,
    pub(super) resent: u64,
}

impl Totals {
    pub(super) fn add(&mut self, result: ConnResult) {
        self.votes_acked += result.acked.len() as u64;
        for item in result.acked {
            *self.acked_by_item.entry(item).or_default() += 1;
        }
        for code in result.failed {
            *self.failed.entry(code).or_default() += 1;
        }
        for item in result.unknown {
            *self.unknown_by_item.entry(item).or_default() += 1;
        }
        result
            .ack
            .iter()
            .for_each(|latency| self.ack.record(*latency));
        result
            .lag
            .iter()
            .for_each(|latency| self.lag.record(*latency));
        self.converged += u64::from(result.converged);
        self.reconnects += result.reconnects;
        self.resent += result.resent;
    }
}

/// Sends `frame`, at most [`IO_TIMEOUT`]; false if the socket failed or stalled.
async fn send_within(ws: &mut Ws, frame: Message) -> bool {
    matches!(
        tokio::time::timeout(IO_TIMEOUT, ws.send(frame)).await,
        Ok(Ok(()))
    )
}
