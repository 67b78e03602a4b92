//! The invariants every run must keep, checked against the stored history (the truth) and what
//! the clients recorded.

use std::collections::{BTreeMap, BTreeSet};

use listwire::domain::{decode_batch, Change, Event};
use uuid::Uuid;

use super::clients::VOTE_LIMIT;
use super::node::Gateways;
use super::records::{FinalRead, OpRecord, Outcome, Records, SubRecord};
use super::store::FaultyStore;

/// What the checkers looked at.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Client ops (each with its whole retry history).
    pub ops: u64,
    /// Of which acknowledged.
    pub acked: u64,
    /// Stored events.
    pub events: u64,
    /// Subscribers.
    pub subscribers: u64,
    /// Votes stored.
    pub votes: u64,
}

/// The largest gauges seen while the run went on.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    /// Most active list actors on one node.
    pub active_lists: usize,
    /// Most followed lists on one node.
    pub followed: usize,
    /// Samples that broke a bound.
    pub violations: Vec<String>,
}

impl Bounds {
    /// Samples every running node's gauges; `lists` lists exist.
    pub fn sample(&mut self, gateways: &Gateways, lists: usize) {
        for index in 0..gateways.len() {
            let Some(running) = gateways.get(index) else {
                continue;
            };
            let active = running.node.host().active_lists();
            let followed = running.node.followed_lists();
            self.record(index, (active, followed), lists);
        }
    }

    /// Records node `index`'s gauges: `active` actors and `followed` lists of `lists`.
    fn record(&mut self, index: usize, (active, followed): (usize, usize), lists: usize) {
        self.active_lists = self.active_lists.max(active);
        self.followed = self.followed.max(followed);
        if active > lists || followed > lists {
            self.violations.push(format!(
                "node {index}: {active} active lists, {followed} followed, of {lists}"
            ));
        }
    }
}

/// Runs every checker; failures are appended to `failures`.
pub fn run_all(
    store: &FaultyStore,
    records: &Records,
    bounds: &Bounds,
    failures: &mut Vec<String>,
) -> Checked {
    let ops = records.ops();
    let subs = records.subs();
    let lists: BTreeSet<Uuid> = ops
        .iter()
        .map(|op| op.list)
        .chain(subs.iter().map(|s| s.list))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime for reading the store");
    let mut histories = BTreeMap::new();
    for list in lists {
        match runtime.block_on(store.history(list)) {
            Ok(batches) => {
                histories.insert(list, history(list, &batches, failures));
            }
            Err(error) => failures.push(format!("history of {list} unreadable: {error}")),
        }
    }
    let mut checked = Checked {
        ops: ops.len() as u64,
        subscribers: subs.len() as u64,
        events: histories.values().map(|h| h.len() as u64).sum(),
        ..Checked::default()
    };
    checked.acked = acked_exactly_once(&ops, &histories, failures);
    for sub in &subs {
        subscriber_converged(sub, histories.get(&sub.list), failures);
    }
    checked.votes = votes_within_limits(&histories, &subs, failures);
    no_client_waited_forever(&ops, failures);
    every_node_reads_the_head(&records.reads(), &histories, failures);
    failures.extend(bounds.violations.iter().map(|v| format!("unbounded: {v}")));
    checked
}

/// Once the run is quiet, a read through any node shows each list at its stored head: a node
/// that kept serving a copy it no longer owns fails this even when no write reaches the copy.
fn every_node_reads_the_head(
    reads: &[FinalRead],
    histories: &BTreeMap<Uuid, Vec<Event>>,
    failures: &mut Vec<String>,
) {
    for read in reads {
        let head = histories
            .get(&read.list)
            .and_then(|events| events.last())
            .map_or(0, |event| event.seq);
        if read.seq != Some(head) {
            failures.push(format!(
                "node {} reads {} at {:?} once quiet; stored head {head}",
                read.node, read.list, read.seq
            ));
        }
    }
}

/// Decodes a list's batches, checking that the history does not fork: batches contiguous from
/// seq 1, each event at its own seq.
fn history(
    list: Uuid,
    batches: &[listwire_storage::Batch],
    failures: &mut Vec<String>,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut next = 1;
    for batch in batches {
        if batch.first_seq != next {
            failures.push(format!(
                "fork/gap in {list}: batch {}..={} after seq {}",
                batch.first_seq,
                batch.last_seq,
                next - 1
            ));
        }
        match decode_batch(&batch.body) {
            Ok(decoded) => {
                for (offset, event) in decoded.iter().enumerate() {
                    if event.seq != batch.first_seq + offset as u64 {
                        failures.push(format!(
                            "fork in {list}: event seq {} in batch at {}",
                            event.seq, batch.first_seq
                        ));
                    }
                }
                events.extend(decoded);
            }
            Err(error) => failures.push(format!(
                "batch {} of {list} undecodable: {error}",
                batch.first_seq
            )),
        }
        next = batch.last_seq + 1;
    }
    events
}

/// Every acknowledged op is in its list's history exactly once, at the seq it was acked with;
/// no op (acked or not) is in it twice; a refused op is not in it. Returns how many ops were
/// acknowledged.
fn acked_exactly_once(
    ops: &[OpRecord],
    histories: &BTreeMap<Uuid, Vec<Event>>,
    failures: &mut Vec<String>,
) -> u64 {
    let mut acked = 0;
    for op in ops {
        let stored: Vec<u64> = histories
            .get(&op.list)
            .into_iter()
            .flatten()
            .filter(|event| event.op_id == op.op_id)
            .map(|event| event.seq)
            .collect();
        if stored.len() > 1 {
            failures.push(format!(
                "duplicated op {} in {}: at seqs {stored:?}",
                op.op_id, op.list
            ));
        }
        if let (Outcome::Rejected(code), true) = (&op.outcome, op.acks.is_empty()) {
            // A retry of an applied op is answered with its first outcome (the op id), never
            // refused: a refusal means the op is not in the history.
            if !stored.is_empty() {
                failures.push(format!(
                    "op {} refused ({code}) but stored at {stored:?} in {}",
                    op.op_id, op.list
                ));
            }
        }
        if !op.acks.is_empty() {
            acked += 1;
            if stored.is_empty() {
                failures.push(format!(
                    "lost acked op {} ({}) in {}: acked at {:?}, not stored",
                    op.op_id, op.kind, op.list, op.acks
                ));
            } else if op.acks.iter().any(|seq| !stored.contains(seq)) {
                failures.push(format!(
                    "op {} acked at {:?} but stored at {stored:?}",
                    op.op_id, op.acks
                ));
            }
        }
    }
    acked
}

/// A subscriber's frames were contiguous and agree with the store; one connected at the end
/// reached the stored head.
fn subscriber_converged(sub: &SubRecord, history: Option<&Vec<Event>>, failures: &mut Vec<String>) {
    for violation in &sub.violations {
        failures.push(format!(
            "subscriber {} of {}: {violation}",
            sub.index, sub.list
        ));
    }
    let Some(history) = history else {
        return;
    };
    let by_seq: BTreeMap<u64, Uuid> = history.iter().map(|e| (e.seq, e.op_id)).collect();
    for (seq, op_id) in &sub.events {
        if by_seq.get(seq) != Some(op_id) {
            failures.push(format!(
                "subscriber {} of {} saw op {op_id} at seq {seq}, stored {:?}",
                sub.index,
                sub.list,
                by_seq.get(seq)
            ));
        }
    }
    let head = history.last().map_or(0, |e| e.seq);
    if sub.connected_at_end && sub.last != head {
        failures.push(format!(
            "subscriber {} of {} ended at seq {} but the stored head is {head}",
            sub.index, sub.list, sub.last
        ));
    }
}

/// No user holds more votes than the limit; each stored vote count follows from the votes
/// before it; a subscriber's last tally at the head equals the stored counts.
fn votes_within_limits(
    histories: &BTreeMap<Uuid, Vec<Event>>,
    subs: &[SubRecord],
    failures: &mut Vec<String>,
) -> u64 {
    let mut total = 0;
    for (list, history) in histories {
        let mut per_user: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
        let mut counts: BTreeMap<Uuid, u64> = BTreeMap::new();
        for event in history {
            match &event.change {
                Change::Vote { item, votes } => {
                    total += 1;
                    per_user.entry(event.by).or_default().insert(*item);
                    let count = counts.entry(*item).or_default();
                    *count += 1;
                    if *count != *votes {
                        failures.push(format!("tally of {item} in {list}: event {} says {votes}, votes stored {count}", event.seq));
                    }
                }
                Change::AddItem { item, .. } => {
                    counts.entry(*item).or_default();
                }
                _ => {}
            }
        }
        for (user, items) in &per_user {
            if items.len() as u64 > VOTE_LIMIT {
                failures.push(format!(
                    "user {user} has {} votes in {list}, limit {VOTE_LIMIT}",
                    items.len()
                ));
            }
        }
        let head = history.last().map_or(0, |e| e.seq);
        for sub in subs
            .iter()
            .filter(|s| s.list == *list && s.connected_at_end)
        {
            if let Some((seq, tally)) = &sub.tally {
                let stored: BTreeMap<Uuid, u64> = counts
                    .iter()
                    .filter(|(item, _)| tally.contains_key(item))
                    .map(|(i, c)| (*i, *c))
                    .collect();
                if *seq == head && *tally != stored {
                    failures.push(format!(
                        "subscriber {} tally {tally:?} != stored {stored:?}",
                        sub.index
                    ));
                }
            }
        }
    }
    total
}

/// Every op was answered within its deadline: acked, refused for good, or still retryable at
/// its deadline; no attempt waited past the node's op timeout.
fn no_client_waited_forever(ops: &[OpRecord], failures: &mut Vec<String>) {
    for op in ops {
        if op.outcome == Outcome::Stuck {
            failures.push(format!(
                "client stuck: op {} on {} got no answer within the op timeout",
                op.op_id, op.list
            ));
        }
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
