//! `hot-poll --ws`: the hot poll with every voter on a WebSocket that follows the poll's tally
//! and votes on that same socket — no HTTP request per vote.
//!
//! C voter connections, each one distinct minted user (`VOTER_BASE + index`), are spread
//! round-robin over the layout's gateway nodes. Each connects (at most [`CONNECTING_MAX`] at a
//! time, before the voting clock starts), subscribes to the poll and waits for its snapshot;
//! then it votes on every item exactly once, so the run casts C × items votes and the poll
//! allows `items` votes per user. Why not one vote per user as over HTTP: on 2 cores one
//! process cannot hold 100k sockets (the fd limit here is 20 000), so each user votes once per
//! item; a vote costs the server the same (its own op, op id, durable event and ack).
//!
//! Votes are paced open-loop by the [`Pacer`]: vote k is due at k / rate and goes to connection
//! k mod C for item k / C, so a connection sends its next vote only when due and its
//! unanswered votes (possibly several) are for different items. Each vote has its own op id; a
//! retryable error (`busy`, `unavailable`, `moved`, `rate_limited`) resends it with the same op
//! id after a short backoff, up to `attempts` times. A closed socket (e.g. 1013 slow consumer,
//! 1001) reconnects, resubscribes with `since` = the last seq seen and resends every unanswered
//! vote with its op id; a vote counts as acked once per op id, whatever the duplicates.
//!
//! Measured per vote: ack latency from its due time (retries included), and tally lag: on the
//! same connection, from the vote's ack (carrying its seq) to the first frame covering that seq
//! (tally `seq`, delta `to`, snapshot `seq`); zero when that frame came before the ack (a delta
//! is queued before the ack; a tally, sent about every `--tally-interval-ms`, after it). The W
//! pure watchers of the HTTP mode run too. At the end every connection must see the highest
//! acked seq (bounded wait), and the stored tally is checked item by item.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::cpu::{self, CpuMeter};
use super::hot_poll::{self, Outcome, Params, Shared, VOTER_BASE};
use super::setup::Http;
use crate::pace::Pacer;
use crate::report::{progress, Latency, LatencySummary};
use crate::target::Target;
use crate::wire::{self, covered_seq, frame_type, number_after, string_after, Ws};

/// Connections being opened at once before the clock starts.
pub const CONNECTING_MAX: usize = 200;
/// How long a connection may take to connect and receive its snapshot.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the last vote is due every vote must be answered.
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);
/// How long after the final seq is announced every connection must have seen it.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(15);
/// Reconnection attempts after a socket closes.
const RECONNECTS_MAX: u32 = 10;
/// The "item" of a pending resubscription in a connection's retries.
const RESUBSCRIBE: usize = usize::MAX;

/// Figures only the WebSocket mode has.
#[derive(Debug, Clone, Serialize)]
pub struct WsFigures {
    /// Voter connections.
    pub connections: u64,
    /// Seconds to open and subscribe every connection (before the clock).
    pub connect_seconds: f64,
    /// Connections whose last frame covered the highest acked seq.
    pub connections_converged: u64,
    /// Reconnections after a socket closed.
    pub reconnects: u64,
    /// Votes sent again (after an error or a reconnection).
    pub resent: u64,
    /// Lag from a vote's ack to the pure watchers' view covering it.
    pub watcher_lag: LatencySummary,
}

/// Runs the scenario.
pub async fn run(target: &Target, params: &Params) -> anyhow::Result<Outcome> {
    params.layout.validate(target)?;
    let items_count = params.items.max(1);
    let (list, items) =
        hot_poll::prepare(target, items_count, items_count, params.layout.owner).await?;
    let shared = Arc::new(Shared::default());
    let (final_tx, final_rx) = watch::channel(None::<u64>);
    let watchers = hot_poll::spawn_watchers(target, params, list, &shared, &final_rx).await?;
    let connections = params.connections.max(1);
    progress(format_args!(
        "hot-poll --ws: {connections} connections × {} items at {:.0} votes/s, {} watchers",
        items.len(),
        params.rate,
        params.watchers
    ));
    let connect_started = Instant::now();
    let sockets = connect_all(target, params, list, connections).await?;
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    progress(format_args!(
        "hot-poll --ws: {connections} connections subscribed in {connect_seconds:.1} s"
    ));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut senders = Vec::with_capacity(sockets.len());
    let mut tasks = Vec::with_capacity(sockets.len());
    for opened in sockets {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        let watching = (params.watchers > 0).then(|| shared.clone());
        let (ws, conn) = Conn::new(opened, list, &items, params.attempts, watching);
        tasks.push(tokio::spawn(conn.run(
            ws,
            rx,
            done_tx.clone(),
            final_rx.clone(),
        )));
    }
    drop(done_tx);
    let meter = CpuMeter::start(target);
    let started = Instant::now();
    let votes = connections * items.len() as u64;
    dispatch(&senders, votes, params.rate).await;
    drop(senders);
    let answer_deadline = tokio::time::sleep(ANSWER_DEADLINE);
    tokio::pin!(answer_deadline);
    let (mut reported, mut highest) = (0u64, 0u64);
    while reported < connections {
        tokio::select! {
            done = done_rx.recv() => match done {
                Some(seq) => (reported, highest) = (reported + 1, highest.max(seq)),
                None => break,
            },
            _ = &mut answer_deadline => break,
        }
    }
    let voting_seconds = started.elapsed().as_secs_f64();
    let _ = final_tx.send(Some(highest));
    let mut totals = Totals::default();
    for task in tasks {
        totals.add(task.await?);
    }
    let owner = params.layout.owner.unwrap_or_else(|| target.owner_of(list));
    let gateways = params.layout.gateway_nodes(target);
    let cpu = meter.finish(totals.votes_acked, |node| cpu::role(node, owner, &gateways));
    let (watcher_lag, watchers_converged) = hot_poll::join_watchers(watchers).await?;
    let state = Http::new(target).get_list(&target.token(0), list).await?;
    let (counted, exact) = hot_poll::check_tally(&state, &totals.acked_by_item);
    Ok(Outcome {
        votes_acked: totals.votes_acked,
        votes_per_sec: totals.votes_acked as f64 / voting_seconds,
        failed: totals.failed,
        ack_latency: totals.ack.summary(),
        tally_lag: totals.lag.summary(),
        tally_exact: exact && counted == totals.votes_acked,
        counted,
        watchers_converged,
        cpu,
        ws: Some(WsFigures {
            connections,
            connect_seconds,
            connections_converged: totals.converged,
            reconnects: totals.reconnects,
            resent: totals.resent,
            watcher_lag: watcher_lag.summary(),
        }),
        latency: totals.ack,
    })
}

/// A voter connection, subscribed.
struct Opened {
    voter: u64,
    url: String,
    token: String,
    ws: Ws,
    /// The seq of its snapshot.
    seen: u64,
}

/// Opens, subscribes and waits for the snapshot of every voter connection, `CONNECTING_MAX`
/// at a time, in voter order.
async fn connect_all(
    target: &Target,
    params: &Params,
    list: Uuid,
    connections: u64,
) -> anyhow::Result<Vec<Opened>> {
    // Minted before the clock starts: signing is the client's cost, not the server's.
    let tokens: Vec<String> = (0..connections)
        .map(|voter| target.token(VOTER_BASE + voter))
        .collect();
    let opening = tokens.into_iter().enumerate().map(|(voter, token)| {
        let url = target.ws_url_of(params.layout.gateway(target, voter as u64));
        async move {
            let subscribing = subscribe(&url, &token, list, None);
            let (ws, seen) = tokio::time::timeout(CONNECT_TIMEOUT, subscribing)
                .await
                .map_err(|_| anyhow::anyhow!("connection {voter}: no snapshot in time"))??;
            let voter = voter as u64;
            anyhow::Ok(Opened {
                voter,
                url,
                token,
                ws,
                seen,
            })
        }
    });
    let mut sockets: Vec<Opened> = stream::iter(opening)
        .buffer_unordered(CONNECTING_MAX)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    sockets.sort_by_key(|opened| opened.voter);
    Ok(sockets)
}

/// Connects to `url` as `token`, subscribes to `list` from `since` and, for a fresh
/// subscription, reads up to its snapshot; returns the socket and the seq it has.
async fn subscribe(
    url: &str,
    token: &str,
    list: Uuid,
    since: Option<u64>,
) -> anyhow::Result<(Ws, u64)> {
    let mut ws = wire::connect_url(url, token).await?;
    ws.send(wire::subscribe_frame(list, since)).await?;
    if let Some(seen) = since {
        return Ok((ws, seen));
    }
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            if frame_type(text.as_str()) == "snapshot" {
                return Ok((ws, covered_seq(text.as_str()).unwrap_or(0)));
            }
            anyhow::ensure!(frame_type(text.as_str()) != "error", "subscribe: {text}");
        }
    }
    anyhow::bail!("closed before the snapshot")
}

/// Releases the votes at `rate`: vote k to connection k mod C for item k / C.
async fn dispatch(senders: &[mpsc::UnboundedSender<(usize, Instant)>], votes: u64, rate: f64) {
    let connections = senders.len() as u64;
    // Half a vote of slack so rounding never drops the last one.
    let mut pacer = Pacer::new(rate, Duration::from_secs_f64((votes as f64 + 0.5) / rate));
    let mut vote = 0u64;
    while vote < votes {
        let due = pacer.due().await;
        if due.is_empty() {
            break;
        }
        for at in due.into_iter().take((votes - vote) as usize) {
            let item = (vote / connections) as usize;
            let _ = senders[(vote % connections) as usize].send((item, at));
            vote += 1;
        }
    }
}

/// Where one of a connection's votes stands.
#[derive(Clone)]
enum Slot {
    NotDue,
    Sent { due: Instant, attempt: u32 },
    Acked(u64),
    Failed(String),
}

/// One voter connection: its votes (one per item), what it has seen, what it measured.
struct Conn {
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
struct ConnResult {
    acked: Vec<Uuid>,
    failed: Vec<String>,
    ack: Vec<Duration>,
    lag: Vec<Duration>,
    converged: bool,
    reconnects: u64,
    resent: u64,
}

impl Conn {
    /// The connection of `opened` (returned apart, as its task owns it) and its state.
    fn new(
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

    async fn run(
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
        ws.send(Message::text(self.frames[item].clone()))
            .await
            .is_ok()
    }

    async fn resend_due(&mut self, ws: &mut Ws) -> bool {
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.retries.drain(..).partition(|(at, _)| *at <= now);
        self.retries = waiting;
        for (_, item) in due {
            let sent = if item == RESUBSCRIBE {
                ws.send(wire::subscribe_frame(self.list, Some(self.seen)))
                    .await
            } else {
                self.resent += 1;
                ws.send(Message::text(self.frames[item].clone())).await
            };
            if sent.is_err() {
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
            let Ok((mut ws, _)) =
                subscribe(&self.url, &self.token, self.list, Some(self.seen)).await
            else {
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
        for (item, slot) in self.slots.into_iter().enumerate() {
            match slot {
                Slot::Acked(_) => acked.push(self.item_ids[item]),
                Slot::Failed(code) => failed.push(code),
                Slot::Sent { .. } => failed.push("unanswered".into()),
                Slot::NotDue => {}
            }
        }
        ConnResult {
            acked,
            failed,
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
struct Totals {
    votes_acked: u64,
    acked_by_item: HashMap<Uuid, u64>,
    failed: HashMap<String, u64>,
    ack: Latency,
    lag: Latency,
    converged: u64,
    reconnects: u64,
    resent: u64,
}

impl Totals {
    fn add(&mut self, result: ConnResult) {
        self.votes_acked += result.acked.len() as u64;
        for item in result.acked {
            *self.acked_by_item.entry(item).or_default() += 1;
        }
        for code in result.failed {
            *self.failed.entry(code).or_default() += 1;
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
