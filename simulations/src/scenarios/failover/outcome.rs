//! The failover scenario's results, and how the writers' and subscribers' logs become them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

use super::analysis::{check_lists, deltas_again, outage, timelines, StoreChecks};
use super::number_of;
use super::subscriber::SubscriberLog;
use super::writer::{OpLog, WriterLog};
use crate::report::{Latency, LatencySummary};

/// Ops as the writers saw them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpCounts {
    /// Ops offered.
    pub sent: u64,
    /// Ops acknowledged.
    pub acked: u64,
    /// Ops refused with a code a client does not retry, by code.
    pub refused: BTreeMap<String, u64>,
    /// Ops with no answer when the run ended (outcome unknown).
    pub unanswered: u64,
    /// Attempts sent again after a retryable refusal.
    pub retries: u64,
    /// Writer connections replaced after one was lost.
    pub writer_reconnects: u64,
}

/// What the subscribers saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SubscriberChecks {
    /// Subscribers.
    pub subscribers: usize,
    /// Those whose connection lasted the whole run.
    pub stayed_connected: usize,
    /// Those that reached their list's final seq.
    pub converged: usize,
    /// Seqs skipped between consecutive frames, over all subscribers.
    pub gaps: u64,
    /// Seqs received twice, over all subscribers.
    pub duplicates: u64,
    /// Subscriptions sent again after the server ended one.
    pub resubscribes: u64,
    /// Connections opened again after one was lost.
    pub reconnects: u64,
}

/// Results.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// The node killed.
    pub victim: usize,
    /// Lists the victim owned.
    pub lists_failed_over: usize,
    /// Kill → each survivor no longer counts the victim as serving (ms; `None`: never seen).
    pub detection_ms: Vec<Option<f64>>,
    /// Over the victim's lists: kill → first ack of an op due after the kill.
    pub serving_again: LatencySummary,
    /// Over the victim's lists: the time with no ack around the kill.
    pub no_ack: LatencySummary,
    /// The same over the other lists (their clients on the victim had to reconnect).
    pub no_ack_other_lists: LatencySummary,
    /// Ack latency (from the due time) of the victim's lists' ops caught by the outage: not
    /// acked before the kill and due before their list served again.
    pub caught_ops_ack: LatencySummary,
    /// Victim's lists with no ack of a new op after the kill.
    pub lists_not_serving_again: usize,
    /// `[list, serving again in ms]` for each of the victim's lists (to pool several runs).
    pub serving_again_by_list_ms: Vec<(usize, Option<f64>)>,
    /// Over subscribers of the victim's lists that stayed connected: kill → first frame
    /// carrying an op due after the kill.
    pub deltas_again: LatencySummary,
    /// Such subscribers that never got one.
    pub subscribers_not_resumed: usize,
    /// The ops.
    pub ops: OpCounts,
    /// Ack latency of every acked op from its due time.
    pub ack_latency: LatencySummary,
    /// The final lists against the acks.
    pub store: StoreChecks,
    /// The subscribers' frames.
    pub subscriber_checks: SubscriberChecks,
    /// Distributions for plots (not serialized).
    #[serde(skip)]
    pub distributions: Distributions,
}

/// The full distributions behind the summaries.
#[derive(Debug, Clone, Default)]
pub struct Distributions {
    /// Kill → serving again, per victim list.
    pub serving_again: Latency,
    /// Kill → deltas again, per subscriber.
    pub deltas_again: Latency,
    /// Ack latency of every op.
    pub ack: Latency,
}

impl Outcome {
    /// Whether every correctness check passed: nothing acked lost, nothing applied twice, no
    /// seq acked twice, every subscriber contiguous and converged, every list served again.
    pub fn correct(&self) -> bool {
        let subscribers = &self.subscriber_checks;
        self.store
            == StoreChecks {
                unacked_applied: self.store.unacked_applied,
                ..StoreChecks::default()
            }
            && subscribers.gaps == 0
            && subscribers.duplicates == 0
            && subscribers.converged == subscribers.subscribers
            && self.lists_not_serving_again == 0
    }
}

/// What the run established besides the logs.
pub(crate) struct Facts {
    pub(crate) nodes: usize,
    pub(crate) victim: usize,
    pub(crate) killed_at: Instant,
    pub(crate) detection_ms: Vec<Option<f64>>,
}

/// The outcome of a run from its logs and the final snapshots (`snapshots[list]`).
pub(crate) fn summarize(
    facts: &Facts,
    lists: &[Uuid],
    writer_logs: Vec<WriterLog>,
    subscriber_logs: &[SubscriberLog],
    snapshots: &[Value],
) -> Outcome {
    let nodes = facts.nodes;
    let failed_over = |list: usize| list % nodes == facts.victim;
    let mut counts = OpCounts::default();
    let mut ack = Latency::new();
    for log in &writer_logs {
        counts.retries += log.retries;
        counts.writer_reconnects += log.reconnects;
    }
    let ops: Vec<&OpLog> = writer_logs.iter().flat_map(|log| &log.ops).collect();
    for op in &ops {
        counts.sent += 1;
        match (&op.acked, &op.refused) {
            (Some((at, _)), _) => {
                counts.acked += 1;
                ack.record(*at - op.due);
            }
            (None, Some(code)) => *counts.refused.entry(code.clone()).or_default() += 1,
            (None, None) => counts.unanswered += 1,
        }
    }
    let timelines = timelines(&ops, lists.len(), facts.killed_at);
    let victim_lists = outage(&ops, &timelines, facts.killed_at, failed_over);
    let other_lists = outage(&ops, &timelines, facts.killed_at, |list| !failed_over(list));
    let (resumed, not_resumed) =
        deltas_again(subscriber_logs, &timelines, facts.killed_at, failed_over);
    Outcome {
        nodes,
        victim: facts.victim,
        lists_failed_over: (0..lists.len()).filter(|list| failed_over(*list)).count(),
        detection_ms: facts.detection_ms.clone(),
        serving_again: victim_lists.serving_again.summary(),
        no_ack: victim_lists.no_ack.summary(),
        no_ack_other_lists: other_lists.no_ack.summary(),
        caught_ops_ack: victim_lists.caught.summary(),
        lists_not_serving_again: victim_lists.never_served,
        serving_again_by_list_ms: victim_lists.by_list_ms,
        deltas_again: resumed.summary(),
        subscribers_not_resumed: not_resumed,
        ops: counts,
        ack_latency: ack.summary(),
        store: check_lists(&ops, snapshots, number_of),
        subscriber_checks: subscriber_checks(subscriber_logs),
        distributions: Distributions {
            serving_again: victim_lists.serving_again,
            deltas_again: resumed,
            ack,
        },
    }
}

fn subscriber_checks(logs: &[SubscriberLog]) -> SubscriberChecks {
    let mut checks = SubscriberChecks {
        subscribers: logs.len(),
        ..SubscriberChecks::default()
    };
    for log in logs {
        checks.stayed_connected += usize::from(log.stayed_connected);
        checks.converged += usize::from(log.converged);
        checks.gaps += log.gaps;
        checks.duplicates += log.duplicates;
        checks.resubscribes += log.resubscribes;
        checks.reconnects += log.reconnects;
    }
    checks
}
