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
use crate::report::{progress, LatencySummary};
use crate::target::Target;
use crate::wire::{self, covered_seq, frame_type, Ws};

mod conn;
use conn::{Conn, Totals};

/// Connections being opened at once before the clock starts.
pub const CONNECTING_MAX: usize = 200;
/// How long a connection may take to connect and receive its snapshot.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the last vote is due every vote must be answered.
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);
/// How long after the final seq is announced every connection must have seen it.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(15);

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
    // Every connection ends by CONVERGE_DEADLINE after the final seq, plus its last I/O.
    let joined_by = Instant::now() + CONVERGE_DEADLINE + Duration::from_secs(30);
    for task in tasks {
        let result = tokio::time::timeout_at(joined_by, task)
            .await
            .map_err(|_| anyhow::anyhow!("a voter connection did not finish in time"))?;
        totals.add(result?);
    }
    let owner = params.layout.owner.unwrap_or_else(|| target.owner_of(list));
    let gateways = params.layout.gateway_nodes(target);
    let cpu = meter.finish(totals.votes_acked, |node| cpu::role(node, owner, &gateways));
    let (watcher_lag, watchers_converged) = hot_poll::join_watchers(watchers).await?;
    let state = Http::new(target).get_list(&target.token(0), list).await?;
    let check = hot_poll::check_tally(&state, &totals.acked_by_item, &totals.unknown_by_item);
    Ok(Outcome {
        votes_acked: totals.votes_acked,
        votes_per_sec: totals.votes_acked as f64 / voting_seconds,
        failed: totals.failed,
        ack_latency: totals.ack.summary(),
        tally_lag: totals.lag.summary(),
        tally_exact: check.exact,
        unknown: check.unknown,
        tally_consistent: check.consistent,
        counted: check.counted,
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    // Goal: with votes of unknown outcome, a count is accepted only between the acked votes and
    // acked + unknown, item by item (a lost acked vote is never hidden by an unknown one on
    // another item), and the tally is never called exact while any outcome is unknown.
    #[test]
    fn counts_must_lie_between_acked_and_acked_plus_unknown() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let acked = HashMap::from([(a, 2), (b, 1)]);
        let unknown = HashMap::from([(a, 1)]);
        let check = |count_a: u64, count_b: u64| {
            let state = serde_json::json!({"items": [{"id": a, "votes": count_a}, {"id": b, "votes": count_b}]});
            let check = hot_poll::check_tally(&state, &acked, &unknown);
            assert!(!check.exact, "an unknown outcome is never exact");
            check.consistent
        };
        assert!(check(2, 1), "the unknown vote did not count");
        assert!(check(3, 1), "the unknown vote counted");
        assert!(!check(4, 1), "more than acked + unknown");
        assert!(!check(3, 0), "an acked vote of b is missing");
        let state = serde_json::json!({"items": [{"id": a, "votes": 2}, {"id": b, "votes": 1}]});
        assert!(hot_poll::check_tally(&state, &acked, &HashMap::new()).exact);
    }
}
