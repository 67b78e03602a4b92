//! A failover writer: one WebSocket connection adding items to its lists at an open-loop rate,
//! behaving as a client should when a node dies under it. A retryable refusal (`busy`,
//! `unavailable`, `moved`, `rate_limited`) is retried with the same op id after a backoff; a
//! lost connection is replaced by one to the next node, and every op still unanswered is sent
//! again there with its op id, so each op is applied at most once whatever happened to the
//! attempts before. Every op is logged with its due time and how it ended.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use uuid::Uuid;

use super::{item_text, CONNECT_TIMEOUT, DRAIN_TIMEOUT};
use crate::pace::Pacer;
use crate::wire::{self, answer, op_frame, WsSink, WsStream};

/// Codes a client retries with the same op id.
const RETRYABLE: [&str; 4] = ["busy", "unavailable", "moved", "rate_limited"];
/// Wait before reconnecting after a failed connection attempt.
const RECONNECT_WAIT: Duration = Duration::from_millis(100);

/// What one writer does.
pub(crate) struct Writer {
    /// WebSocket URL of every node, by index.
    pub(crate) urls: Vec<String>,
    /// The writer's session.
    pub(crate) token: String,
    /// The node it connects to first.
    pub(crate) node: usize,
    /// Its lists: (list index, list id).
    pub(crate) lists: Vec<(usize, Uuid)>,
    /// Ops per second over all its lists.
    pub(crate) rate: f64,
    /// How long it offers ops.
    pub(crate) duration: Duration,
}

/// One op and how it ended.
pub(crate) struct OpLog {
    /// The list's index.
    pub(crate) list: usize,
    /// The op's number on its list (its item text is [`item_text`]`(list, number)`).
    pub(crate) number: u64,
    /// When it was due.
    pub(crate) due: Instant,
    /// When it was acked, and at which seq.
    pub(crate) acked: Option<(Instant, u64)>,
    /// The code it was finally refused with (not retryable).
    pub(crate) refused: Option<String>,
}

/// What a writer saw.
pub(crate) struct WriterLog {
    pub(crate) ops: Vec<OpLog>,
    /// Attempts sent again after a retryable refusal.
    pub(crate) retries: u64,
    /// Connections replaced after one was lost.
    pub(crate) reconnects: u64,
}

struct Pending {
    index: usize,
    op_id: Uuid,
    list: Uuid,
    attempts: u32,
    /// When to send it again after a retryable refusal; `None` while an attempt is out.
    retry_at: Option<Instant>,
}

type Connection = (WsSink, WsStream);

struct State {
    writer: Writer,
    connection: Option<Connection>,
    log: WriterLog,
    pending: HashMap<Uuid, Pending>,
    next_number: HashMap<usize, u64>,
}

impl Writer {
    /// Runs until its ops are sent and answered, or [`DRAIN_TIMEOUT`] after the last was due.
    pub(crate) async fn run(self) -> WriterLog {
        let mut pacer = Pacer::new(self.rate, self.duration);
        let mut state = State {
            connection: connect(&self.urls[self.node], &self.token).await,
            writer: self,
            log: WriterLog {
                ops: Vec::new(),
                retries: 0,
                reconnects: 0,
            },
            pending: HashMap::new(),
            next_number: HashMap::new(),
        };
        let mut sending = true;
        let mut give_up_at = Instant::now() + Duration::from_secs(86_400);
        let mut reconnect_at = Instant::now();
        let mut slot = 0usize;
        while sending || !state.pending.is_empty() {
            let retry_at = state.pending.values().filter_map(|p| p.retry_at).min();
            let connected = state.connection.is_some();
            tokio::select! {
                due = pacer.due(), if sending => {
                    if due.is_empty() {
                        sending = false;
                        give_up_at = Instant::now() + DRAIN_TIMEOUT;
                    }
                    for at in due {
                        state.new_op(slot, at).await;
                        slot += 1;
                    }
                }
                frame = next_frame(&mut state.connection), if connected => match frame {
                    Some(text) => state.answer(&text),
                    None => {
                        state.lost_connection();
                        reconnect_at = Instant::now();
                    }
                },
                () = sleep_until(retry_at), if retry_at.is_some() => state.retry_due().await,
                () = tokio::time::sleep_until(reconnect_at), if !connected => {
                    if !state.reconnect().await {
                        reconnect_at = Instant::now() + RECONNECT_WAIT;
                    }
                }
                () = tokio::time::sleep_until(give_up_at), if !sending => break,
            }
        }
        if let Some((mut sink, _)) = state.connection.take() {
            let _ = sink.close().await;
        }
        state.log
    }
}

impl State {
    /// Logs the op for slot `slot` (round-robin over the lists) and sends it.
    async fn new_op(&mut self, slot: usize, due: Instant) {
        let (list_index, list) = self.writer.lists[slot % self.writer.lists.len()];
        let number = self.next_number.entry(list_index).or_insert(0);
        let op_log = OpLog {
            list: list_index,
            number: *number,
            due,
            acked: None,
            refused: None,
        };
        *number += 1;
        let op_id = Uuid::new_v4();
        self.log.ops.push(op_log);
        let pending = Pending {
            index: self.log.ops.len() - 1,
            op_id,
            list,
            attempts: 0,
            retry_at: None,
        };
        self.pending.insert(op_id, pending);
        self.send(op_id).await;
    }

    /// Sends an attempt of pending op `op_id`; while disconnected it waits for the reconnect.
    async fn send(&mut self, op_id: Uuid) {
        let Some(pending) = self.pending.get_mut(&op_id) else {
            return;
        };
        pending.retry_at = None;
        let op_log = &self.log.ops[pending.index];
        let text = item_text(op_log.list, op_log.number);
        let op = format!(r#"{{"kind":"add_item","text":"{text}","after":null}}"#);
        let frame = op_frame(pending.list, op_id, &op);
        let Some((sink, _)) = self.connection.as_mut() else {
            return;
        };
        if sink.send(frame).await.is_err() {
            self.lost_connection();
        }
    }

    fn answer(&mut self, text: &str) {
        let Some(answer) = answer(text) else {
            return;
        };
        let Some(op_id) = answer.op_id else {
            return;
        };
        let Some(pending) = self.pending.get_mut(&op_id) else {
            return;
        };
        let op_log = &mut self.log.ops[pending.index];
        match (answer.kind.as_str(), answer.seq, answer.code) {
            ("ack", Some(seq), _) => {
                op_log.acked = Some((Instant::now(), seq));
                self.pending.remove(&op_id);
            }
            (_, _, Some(code)) if RETRYABLE.contains(&code.as_str()) => {
                pending.attempts += 1;
                let wait = Duration::from_millis(50 << pending.attempts.min(4));
                pending.retry_at = Some(Instant::now() + wait);
            }
            (_, _, code) => {
                op_log.refused = Some(code.unwrap_or_else(|| "unknown".into()));
                self.pending.remove(&op_id);
            }
        }
    }

    async fn retry_due(&mut self) {
        let now = Instant::now();
        let due: Vec<Uuid> = self
            .pending
            .values()
            .filter(|pending| pending.retry_at.is_some_and(|at| at <= now))
            .map(|pending| pending.op_id)
            .collect();
        for op_id in due {
            self.log.retries += 1;
            self.send(op_id).await;
        }
    }

    /// Forgets the connection; the next one goes to the next node.
    fn lost_connection(&mut self) {
        if self.connection.take().is_some() {
            self.log.reconnects += 1;
            self.writer.node = (self.writer.node + 1) % self.writer.urls.len();
        }
    }

    /// Connects to the current node and sends every unanswered op again; false if it could
    /// not connect (the next attempt tries the next node).
    async fn reconnect(&mut self) -> bool {
        self.connection = connect(&self.writer.urls[self.writer.node], &self.writer.token).await;
        if self.connection.is_none() {
            self.writer.node = (self.writer.node + 1) % self.writer.urls.len();
            return false;
        }
        let unanswered: Vec<Uuid> = self.pending.keys().copied().collect();
        for op_id in unanswered {
            self.send(op_id).await;
        }
        true
    }
}

async fn connect(url: &str, token: &str) -> Option<Connection> {
    match tokio::time::timeout(CONNECT_TIMEOUT, wire::connect_url(url, token)).await {
        Ok(Ok(socket)) => Some(socket.split()),
        _ => None,
    }
}

/// The next text frame; `None` once the connection ends. Pends forever without a connection.
async fn next_frame(connection: &mut Option<Connection>) -> Option<String> {
    match connection {
        Some((_, stream)) => wire::next_text(stream).await.and_then(Result::ok),
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
