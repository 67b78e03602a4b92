//! `hot-poll`: one public list with a poll, V distinct voters voting at an open-loop rate (each
//! retrying with its op id until answered), W watchers subscribed; reports votes/s, ack latency,
//! the lag between a vote's ack and a watcher's view including it, and verifies the final
//! tally equals the number of distinct voters, item by item.
//!
//! Identities: voters are minted tokens (the gateway trusts a valid token's subject), so a
//! hundred thousand voters need no registration. Votes go over HTTP keep-alive connections,
//! one bearer token per request, as phones behind a load balancer would.
//!
//! On a cluster, [`Layout`] puts the poll on one node and voters and watchers round-robin on
//! the gateway nodes. For nodes the bench started, the CPU time each used over the voting
//! window is reported per vote acknowledged: the owner's figure bounds how many votes per
//! second one list can take once the edge is spread over many nodes.
//!
//! With `ws` set, [`hot_poll_ws`](super::hot_poll_ws) runs instead: voters vote over the
//! WebSocket on which they follow the tally.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

use super::cpu::{self, CpuMeter, NodeCpu};
use super::layout::Layout;
use super::setup::{create_lists_placed, Http};
use crate::pace::Pacer;
use crate::report::{progress, Latency, LatencySummary};
use crate::target::Target;
use crate::wire::{self, subscribe_frame};

/// First user index of voters (watchers and the host use small indexes).
pub(super) const VOTER_BASE: u64 = 1 << 32;
/// Votes in flight at once (HTTP requests outstanding).
const IN_FLIGHT_MAX: usize = 2048;

/// Parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Distinct voters (each votes once).
    pub voters: u64,
    /// Votes per second offered.
    pub rate: f64,
    /// Items on the poll.
    pub items: usize,
    /// Watching subscribers.
    pub watchers: usize,
    /// Attempts per vote (same op id) on retryable failures.
    pub attempts: u32,
    /// Send votes over HTTP/2 (h2c, multiplexed) instead of HTTP/1.1 keep-alive connections.
    pub http2: bool,
    /// Where the poll lives and where voters and watchers connect.
    pub layout: Layout,
    /// Vote over WebSockets that follow the tally ([`hot_poll_ws`](super::hot_poll_ws)).
    pub ws: bool,
    /// WebSocket mode: voter connections, one user each, each voting once per item.
    pub connections: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            voters: 100_000,
            rate: 20_000.0,
            items: 10,
            watchers: 100,
            attempts: 5,
            http2: false,
            layout: Layout::default(),
            ws: false,
            connections: 5000,
        }
    }
}

/// Results.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Votes acknowledged.
    pub votes_acked: u64,
    /// Acknowledged votes per second of voting time.
    pub votes_per_sec: f64,
    /// Votes that failed every attempt, by last code.
    pub failed: HashMap<String, u64>,
    /// Ack latency from each vote's due time (retries included).
    pub ack_latency: LatencySummary,
    /// Lag from a vote's ack to a watcher's view covering it.
    pub tally_lag: LatencySummary,
    /// Whether the stored tally equals the acknowledged votes, item by item, with no vote of
    /// unknown outcome left.
    pub tally_exact: bool,
    /// Votes whose outcome stayed unknown (`unavailable`, `internal`, a transport error, no
    /// answer): each may or may not count.
    pub unknown: u64,
    /// Whether each item's stored count lies between its acked votes and acked + unknown.
    pub tally_consistent: bool,
    /// Sum of the stored counts.
    pub counted: u64,
    /// Watchers whose last frame covered the final seq.
    pub watchers_converged: usize,
    /// CPU time of each node the bench started over the voting window, per vote acked.
    pub cpu: Vec<NodeCpu>,
    /// WebSocket mode's own figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws: Option<super::hot_poll_ws::WsFigures>,
    /// The full ack distribution (not serialized).
    #[serde(skip)]
    pub latency: Latency,
}

/// When each acknowledged seq was acked, for the watchers' lag.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) ack_at_by_seq: Mutex<HashMap<u64, Instant>>,
}

impl Shared {
    pub(super) fn acked(&self, seq: u64, at: Instant) {
        self.ack_at_by_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(seq, at);
    }
}

/// Pure watchers on the layout's gateways (users 1..=count), each following the poll.
pub(super) async fn spawn_watchers(
    target: &Target,
    params: &Params,
    list: Uuid,
    shared: &Arc<Shared>,
    final_rx: &watch::Receiver<Option<u64>>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<(Latency, bool)>>> {
    let mut watchers = Vec::new();
    for index in 0..params.watchers {
        let node = params.layout.gateway(target, index as u64);
        let (mut sink, stream) = wire::connect_split_to(target, node, 1 + index as u64).await?;
        sink.send(subscribe_frame(list, None)).await?;
        watchers.push(tokio::spawn(watch_tally(
            sink,
            stream,
            shared.clone(),
            final_rx.clone(),
        )));
    }
    Ok(watchers)
}

/// Waits for the watchers: their merged lag, and how many reached the final seq.
pub(super) async fn join_watchers(
    watchers: Vec<tokio::task::JoinHandle<(Latency, bool)>>,
) -> anyhow::Result<(Latency, usize)> {
    let mut lag = Latency::new();
    let mut converged = 0;
    for watcher in watchers {
        let (watcher_lag, final_seen) = watcher.await?;
        lag.merge(&watcher_lag);
        converged += usize::from(final_seen);
    }
    Ok((lag, converged))
}

/// Runs the scenario.
pub async fn run(target: &Target, params: &Params) -> anyhow::Result<Outcome> {
    if params.ws {
        return super::hot_poll_ws::run(target, params).await;
    }
    params.layout.validate(target)?;
    let (list, items) = prepare(target, params.items.max(1), 1, params.layout.owner).await?;
    let shared = Arc::new(Shared::default());
    let (final_tx, final_rx) = watch::channel(None::<u64>);
    let watchers = spawn_watchers(target, params, list, &shared, &final_rx).await?;
    progress(format_args!(
        "hot-poll: {} voters at {:.0} votes/s on {} items, {} watchers",
        params.voters,
        params.rate,
        items.len(),
        params.watchers
    ));
    // Minted before the clock starts: signing is the client's cost, not the server's.
    let tokens: Vec<String> = (0..params.voters)
        .map(|voter| target.token(VOTER_BASE + voter))
        .collect();
    let meter = CpuMeter::start(target);
    let votes = vote_all(target, list, &items, params, &shared, tokens).await;
    let votes_acked: u64 = votes.acked_by_item.values().sum();
    let owner = params.layout.owner.unwrap_or_else(|| target.owner_of(list));
    let gateways = params.layout.gateway_nodes(target);
    let cpu = meter.finish(votes_acked, |node| cpu::role(node, owner, &gateways));
    let _ = final_tx.send(Some(votes.highest));
    let (lag, converged) = join_watchers(watchers).await?;
    let state = Http::new(target).get_list(&target.token(0), list).await?;
    let check = check_tally(&state, &votes.acked_by_item, &votes.unknown_by_item);
    Ok(Outcome {
        votes_acked,
        votes_per_sec: votes_acked as f64 / votes.seconds,
        failed: votes.failed,
        ack_latency: votes.latency.summary(),
        tally_lag: lag.summary(),
        tally_exact: check.exact,
        unknown: check.unknown,
        tally_consistent: check.consistent,
        counted: check.counted,
        watchers_converged: converged,
        cpu,
        ws: None,
        latency: votes.latency,
    })
}

/// How the stored tally compares with what voters were told.
pub(super) struct TallyCheck {
    /// The sum of the stored counts.
    pub(super) counted: u64,
    /// Votes whose outcome is unknown.
    pub(super) unknown: u64,
    /// Every item's count equals its acked votes, and no vote's outcome is unknown.
    pub(super) exact: bool,
    /// Every item's count lies between its acked votes and acked + unknown.
    pub(super) consistent: bool,
}

/// Checks the stored counts item by item against the acked votes and those of unknown outcome
/// (an unknown vote on one item never hides a lost acked vote on another).
pub(super) fn check_tally(
    state: &serde_json::Value,
    acked_by_item: &HashMap<Uuid, u64>,
    unknown_by_item: &HashMap<Uuid, u64>,
) -> TallyCheck {
    let acked_total: u64 = acked_by_item.values().sum();
    let unknown: u64 = unknown_by_item.values().sum();
    let (mut counted, mut equal, mut consistent) = (0, true, true);
    for (id, votes) in stored_counts(state) {
        let acked = acked_by_item.get(&id).copied().unwrap_or(0);
        let maybe = unknown_by_item.get(&id).copied().unwrap_or(0);
        counted += votes;
        equal &= acked == votes;
        consistent &= acked <= votes && votes <= acked + maybe;
    }
    TallyCheck {
        counted,
        unknown,
        exact: unknown == 0 && equal && counted == acked_total,
        consistent,
    }
}

/// Each item's id and stored vote count, from a list read over HTTP.
pub(super) fn stored_counts(state: &serde_json::Value) -> impl Iterator<Item = (Uuid, u64)> + '_ {
    state["items"].as_array().into_iter().flatten().map(|item| {
        let id = item["id"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .unwrap_or_default();
        (id, item["votes"].as_u64().unwrap_or(0))
    })
}

/// Creates the public poll (on `node` if given) with `items` items, each user allowed
/// `max_votes_per_user` votes; returns the list and the item ids.
pub(super) async fn prepare(
    target: &Target,
    items: usize,
    max_votes_per_user: usize,
    node: Option<usize>,
) -> anyhow::Result<(Uuid, Vec<Uuid>)> {
    let poll =
        json!({"max_votes_per_user": max_votes_per_user, "allow_change": false, "open": true});
    let list = create_lists_placed(
        target,
        1,
        |_| node,
        |_| 0,
        json!({"title": "hot poll", "visibility": "public", "poll": poll}),
    )
    .await?[0];
    let http = Http::new(target);
    let mut ids = Vec::new();
    for index in 0..items {
        let item = Uuid::new_v4();
        let op = json!({"kind": "add_item", "text": format!("option {index}"), "after": null, "item": item});
        http.op(&target.token(0), list, Uuid::new_v4(), op)
            .await?
            .map_err(anyhow::Error::msg)?;
        ids.push(item);
    }
    Ok((list, ids))
}

/// What the HTTP voters were told.
struct VoteTotals {
    latency: Latency,
    acked_by_item: HashMap<Uuid, u64>,
    /// Votes whose last answer left their outcome unknown, by item.
    unknown_by_item: HashMap<Uuid, u64>,
    failed: HashMap<String, u64>,
    highest: u64,
    seconds: f64,
}

async fn vote_all(
    target: &Target,
    list: Uuid,
    items: &[Uuid],
    params: &Params,
    shared: &Arc<Shared>,
    tokens: Vec<String>,
) -> VoteTotals {
    // One client per gateway node; voter `v` votes through gateway `v mod gateways`.
    let https: Vec<Http> = params
        .layout
        .gateway_nodes(target)
        .into_iter()
        .map(|node| Http::at(target, node, params.http2))
        .collect();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let mut pacer = Pacer::new(
        params.rate,
        Duration::from_secs_f64(params.voters as f64 / params.rate),
    );
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(params.voters as usize);
    let mut voter = 0u64;
    while voter < params.voters {
        let due = pacer.due().await;
        if due.is_empty() {
            break;
        }
        for at in due {
            if voter >= params.voters {
                break;
            }
            let item = items[(voter % items.len() as u64) as usize];
            let token = tokens[voter as usize].clone();
            let permit = permits.clone().acquire_owned().await;
            let http = https[(voter % https.len() as u64) as usize].clone();
            let (shared, attempts) = (shared.clone(), params.attempts);
            tasks.push(tokio::spawn(async move {
                let outcome = vote(&http, &token, list, item, attempts).await;
                drop(permit);
                if let Ok(seq) = &outcome {
                    shared.acked(*seq, Instant::now());
                }
                (at.elapsed(), item, outcome)
            }));
            voter += 1;
        }
    }
    let mut totals = VoteTotals {
        latency: Latency::new(),
        acked_by_item: HashMap::new(),
        unknown_by_item: HashMap::new(),
        failed: HashMap::new(),
        highest: 0,
        seconds: 0.0,
    };
    for task in tasks {
        let Ok((elapsed, item, outcome)) = task.await else {
            continue;
        };
        match outcome {
            Ok(seq) => {
                totals.latency.record(elapsed);
                *totals.acked_by_item.entry(item).or_default() += 1;
                totals.highest = totals.highest.max(seq);
            }
            Err(code) => {
                if outcome_unknown(&code) {
                    *totals.unknown_by_item.entry(item).or_default() += 1;
                }
                *totals.failed.entry(code).or_default() += 1;
            }
        }
    }
    totals.seconds = started.elapsed().as_secs_f64();
    totals
}

/// Whether a vote's last answer leaves it possibly applied: `unavailable` ("outcome unknown"),
/// `internal`, a transport error or no answer at all.
pub(super) fn outcome_unknown(code: &str) -> bool {
    matches!(code, "unavailable" | "internal" | "unanswered") || code.starts_with("transport")
}

/// Error codes worth retrying with the same op id.
pub(super) fn retryable(code: &str) -> bool {
    matches!(code, "busy" | "unavailable" | "moved" | "rate_limited")
}

/// One voter's vote, retried with the same op id on retryable failures.
async fn vote(
    http: &Http,
    token: &str,
    list: Uuid,
    item: Uuid,
    attempts: u32,
) -> Result<u64, String> {
    let op_id = Uuid::new_v4();
    let mut last = String::from("not attempted");
    for attempt in 0..attempts.max(1) {
        match http
            .op(token, list, op_id, json!({"kind": "vote", "item": item}))
            .await
        {
            Ok(Ok(seq)) => return Ok(seq),
            Ok(Err(code)) if !retryable(&code) => return Err(code),
            Ok(Err(code)) => last = code,
            Err(error) => last = format!("transport: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
    }
    Err(last)
}

/// A watcher: records how long after a vote's ack its view covered it (sampled at each frame's
/// newest seq); returns whether it reached the final seq.
async fn watch_tally(
    _sink: wire::WsSink,
    mut stream: wire::WsStream,
    shared: Arc<Shared>,
    mut final_rx: watch::Receiver<Option<u64>>,
) -> (Latency, bool) {
    let mut lag = Latency::new();
    let mut seen = 0u64;
    loop {
        if final_rx.borrow().is_some_and(|last| seen >= last) {
            return (lag, true);
        }
        let finishing = final_rx.borrow().is_some();
        let frame = tokio::select! {
            frame = wire::next_text(&mut stream) => frame,
            _ = final_rx.changed() => continue,
            _ = tokio::time::sleep(Duration::from_secs(5)), if finishing => return (lag, false),
        };
        let Some(Ok(frame)) = frame else {
            return (lag, false);
        };
        let Some(covered) = wire::covered_seq(&frame) else {
            continue;
        };
        if let Some(acked_at) = shared
            .ack_at_by_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&covered)
        {
            lag.record(acked_at.elapsed());
        }
        seen = seen.max(covered);
    }
}
