//! `failover`: writers and subscribers on the lists of a cluster; the node owning some of them
//! is SIGKILLed mid-run. Reports the client-visible outage and checks that nothing acked was
//! lost or applied twice.
//!
//! Set-up: M public lists placed round-robin on the nodes (list `i` on node `i mod N`); list
//! `i` is written by writer `(i / N) mod W`, so each writer has lists on every node, and the
//! writers connect round-robin to the nodes (most of their ops are forwarded). S subscribers
//! per list connect round-robin to the nodes. After `kill_after` seconds the victim is
//! SIGKILLed; writes go on until `seconds`, then every writer waits (bounded) for its answers.
//! Clients behave as real ones: see [`writer`] and [`subscriber`].
//!
//! Figures, over the victim's lists: time from the kill to the first ack of an op due after
//! it (the list serves again), the time with no ack around the kill, the ack latency of the
//! ops the outage caught, and for each subscriber whose connection lasted (so on another node),
//! the time from the kill to the first frame carrying a new op (deltas flow again). Detection
//! is when each survivor's `/metrics` stops counting the victim among its serving hosts
//! (polled every 20 ms).
//!
//! Checks: each list's final snapshot holds every acked op's item exactly once and no item
//! twice (an op with an unknown outcome may be there once); no two acks of a list name one
//! seq; every subscriber saw contiguous frames with no seq twice and reached the final seq.

mod analysis;
mod outcome;
mod subscriber;
mod writer;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

pub use analysis::StoreChecks;
use outcome::{summarize, Facts};
pub use outcome::{Distributions, OpCounts, Outcome, SubscriberChecks};
use subscriber::{Subscriber, SubscriberLog};
use writer::{Writer, WriterLog};

use super::setup::{create_lists_placed, Http};
use crate::cluster::{gauge, metrics_client, metrics_text, SERVING_HOSTS_GAUGE};
use crate::report::progress;
use crate::target::Target;

/// Longest a client waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long writers wait for answers after their last op was due.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long subscribers may take to reach the final seq once it is known.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long survivors may take to notice the kill before the bench stops looking.
const DETECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// First user index of subscribers (writers use 0..W).
const SUBSCRIBER_BASE: u64 = 1 << 32;

/// Parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Lists, placed round-robin on the nodes.
    pub lists: usize,
    /// Ops per second offered to each list.
    pub rate_per_list: f64,
    /// Writer connections.
    pub writers: usize,
    /// Subscriber connections per list.
    pub subscribers_per_list: usize,
    /// How long ops are offered, in seconds.
    pub seconds: f64,
    /// When the victim is killed, in seconds after the first op.
    pub kill_after: f64,
    /// The node killed (default: the last one).
    pub victim: Option<usize>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            lists: 30,
            rate_per_list: 20.0,
            writers: 6,
            subscribers_per_list: 4,
            seconds: 12.0,
            kill_after: 4.0,
            victim: None,
        }
    }
}

/// The item text of op `number` on list `list`.
pub(crate) fn item_text(list: usize, number: u64) -> String {
    format!("fo:{list}:{number}")
}

/// The op number in an item text of list `list`.
fn number_of(list: usize, text: &str) -> Option<u64> {
    text.strip_prefix(&format!("fo:{list}:"))?.parse().ok()
}

/// The highest op number of list `list` among the item texts in a frame.
pub(crate) fn highest_number(frame: &str, list: usize) -> Option<u64> {
    let needle = format!("\"fo:{list}:");
    frame
        .match_indices(&needle)
        .filter_map(|(at, _)| {
            let digits = &frame[at + needle.len()..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            digits[..end].parse().ok()
        })
        .max()
}

/// Runs the scenario on a cluster the bench started (it kills one of its nodes).
pub async fn run(target: &Target, params: &Params) -> anyhow::Result<Outcome> {
    let nodes = target.node_count();
    anyhow::ensure!(nodes >= 3, "failover needs a cluster of at least 3 nodes");
    anyhow::ensure!(
        params.lists >= nodes && params.kill_after < params.seconds,
        "failover needs a list per node at least, and the kill before the writes end"
    );
    let victim = params.victim.unwrap_or(nodes - 1);
    anyhow::ensure!(
        victim < nodes && target.pid_of(victim).is_some(),
        "failover kills a node the bench started (--cluster N)"
    );
    let lists = create_lists_placed(
        target,
        params.lists,
        |index| Some(index % nodes),
        |index| ((index / nodes) % params.writers.max(1)) as u64,
        json!({"title": "failover", "visibility": "public"}),
    )
    .await?;
    let killed_at = Arc::new(OnceLock::new());
    let (final_tx, final_rx) = watch::channel(None);
    let subscribers = start_subscribers(target, &lists, params, &killed_at, final_rx).await?;
    progress(format_args!(
        "failover: {} lists on {nodes} nodes, {} subscribers; {:.0} ops/s per list for {:.0} s, node {victim} killed at {:.0} s",
        lists.len(),
        subscribers.len(),
        params.rate_per_list,
        params.seconds,
        params.kill_after
    ));
    let writers = start_writers(target, &lists, params);
    tokio::time::sleep(Duration::from_secs_f64(params.kill_after)).await;
    target.kill(victim)?;
    // Taken once the victim is reaped, so no op due after it can have been served by it.
    let kill_instant = Instant::now();
    let _ = killed_at.set(kill_instant);
    progress(format_args!("failover: node {victim} killed"));
    let detection = tokio::spawn(detect(target, victim));
    let mut writer_logs = Vec::new();
    for writer in writers {
        writer_logs.push(writer.await?);
    }
    let detection_ms = detection.await?;
    let survivor = (victim + 1) % nodes;
    let snapshots = final_snapshots(target, survivor, &lists).await?;
    let final_seqs: Vec<u64> = snapshots
        .iter()
        .map(|s| s["seq"].as_u64().unwrap_or(0))
        .collect();
    let _ = final_tx.send(Some(Arc::new(final_seqs)));
    let mut subscriber_logs = Vec::new();
    for subscriber in subscribers {
        subscriber_logs.push(subscriber.await?);
    }
    let facts = Facts {
        nodes,
        victim,
        killed_at: kill_instant,
        detection_ms,
    };
    Ok(summarize(
        &facts,
        &lists,
        writer_logs,
        &subscriber_logs,
        &snapshots,
    ))
}

/// Connects every subscriber and waits until each has its first snapshot.
async fn start_subscribers(
    target: &Target,
    lists: &[Uuid],
    params: &Params,
    killed_at: &Arc<OnceLock<Instant>>,
    final_rx: watch::Receiver<Option<Arc<Vec<u64>>>>,
) -> anyhow::Result<Vec<JoinHandle<SubscriberLog>>> {
    let urls: Vec<String> = (0..target.node_count())
        .map(|n| target.ws_url_of(n))
        .collect();
    let count = lists.len() * params.subscribers_per_list;
    let (ready_tx, mut ready_rx) = mpsc::channel(count.max(1));
    let mut tasks = Vec::with_capacity(count);
    for index in 0..count {
        let list = index / params.subscribers_per_list;
        let subscriber = Subscriber {
            urls: urls.clone(),
            token: target.token(SUBSCRIBER_BASE + index as u64),
            node: index % target.node_count(),
            list: (list, lists[list]),
        };
        let run = subscriber.run(ready_tx.clone(), killed_at.clone(), final_rx.clone());
        tasks.push(tokio::spawn(run));
    }
    for _ in 0..count {
        tokio::time::timeout(Duration::from_secs(30), ready_rx.recv())
            .await
            .map_err(|_| anyhow::anyhow!("subscribers did not all get their snapshot"))?;
    }
    Ok(tasks)
}

/// Starts the writers: writer `w` connects to node `w mod N` and writes the lists `i` with
/// `(i / N) mod W == w`.
fn start_writers(target: &Target, lists: &[Uuid], params: &Params) -> Vec<JoinHandle<WriterLog>> {
    let nodes = target.node_count();
    let writers = params.writers.max(1);
    let urls: Vec<String> = (0..nodes).map(|n| target.ws_url_of(n)).collect();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let mine: Vec<(usize, Uuid)> = lists
            .iter()
            .copied()
            .enumerate()
            .filter(|(index, _)| (index / nodes) % writers == writer)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let writer = Writer {
            urls: urls.clone(),
            token: target.token(writer as u64),
            node: writer % nodes,
            rate: params.rate_per_list * mine.len() as f64,
            lists: mine,
            duration: Duration::from_secs_f64(params.seconds),
        };
        tasks.push(tokio::spawn(writer.run()));
    }
    tasks
}

/// Polls every survivor's `/metrics` until it no longer counts the victim as serving; the
/// time from the kill for each survivor (`None`: not within [`DETECTION_TIMEOUT`]).
fn detect(
    target: &Target,
    victim: usize,
) -> impl std::future::Future<Output = Vec<Option<f64>>> + Send + 'static {
    let started = Instant::now();
    let expected = (target.node_count() - 1) as f64;
    let survivors: Vec<String> = (0..target.node_count())
        .filter(|node| *node != victim)
        .map(|node| target.http_url_of(node).to_owned())
        .collect();
    async move {
        let client = metrics_client();
        let mut detected: Vec<Option<f64>> = vec![None; survivors.len()];
        while detected.iter().any(Option::is_none) && started.elapsed() < DETECTION_TIMEOUT {
            for (index, http) in survivors.iter().enumerate() {
                if detected[index].is_some() {
                    continue;
                }
                let text = metrics_text(&client, http).await;
                if text.and_then(|t| gauge(&t, SERVING_HOSTS_GAUGE)) == Some(expected) {
                    detected[index] = Some(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        detected
    }
}

/// Every list's snapshot, read through node `node`, retried while the list is unavailable.
async fn final_snapshots(
    target: &Target,
    node: usize,
    lists: &[Uuid],
) -> anyhow::Result<Vec<Value>> {
    let http = Http::at(target, node, false);
    let token = target.token(0);
    let mut snapshots = Vec::with_capacity(lists.len());
    for list in lists {
        let mut attempts = 0;
        let snapshot = loop {
            let snapshot = http.get_list(&token, *list).await?;
            if snapshot["items"].is_array() || attempts >= 40 {
                break snapshot;
            }
            attempts += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        anyhow::ensure!(
            snapshot["items"].is_array(),
            "list {list} unreadable: {snapshot}"
        );
        snapshots.push(snapshot);
    }
    Ok(snapshots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Item texts are scanned per list: list 1 never matches list 12's items.
    #[test]
    fn op_numbers_are_read_per_list() {
        let frame = r#"{"type":"delta","from":5,"to":6,"events":[{"text":"fo:12:40"},{"text":"fo:1:7"},{"text":"fo:1:9"}]}"#;
        assert_eq!(highest_number(frame, 1), Some(9));
        assert_eq!(highest_number(frame, 12), Some(40));
        assert_eq!(highest_number(frame, 2), None);
        assert_eq!(number_of(1, &item_text(1, 33)), Some(33));
        assert_eq!(number_of(1, "fo:12:3"), None);
    }
}
