//! The checkers, run after the faults stopped and the load drained, against the database's
//! audit of committed batches and the clients' records. Each broken invariant is one
//! [`Violation`] with its evidence (list, op id, seqs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use listwire::domain::{check_invariants, decode_batch, evolve, Change, Event, Limits, ListState};
use uuid::Uuid;

use super::clients::{Answer, OpRecord};
use super::faults::{FaultKind, Window};
use super::store::StoredList;
use super::subscriber::{Seen, SubscriberLog};

/// How long after a pause or a restart a node may still be catching up.
const FAULT_GRACE: Duration = Duration::from_secs(1);

/// One broken invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What shows it.
    pub evidence: String,
}

/// Collects violations.
#[derive(Default)]
pub(crate) struct Findings {
    pub(crate) violations: Vec<Violation>,
}

impl Findings {
    pub(crate) fn add(&mut self, invariant: &'static str, evidence: String) {
        self.violations.push(Violation {
            invariant,
            evidence,
        });
    }
}

/// (2) A list's committed batches form one contiguous history from seq 1, ending at the head
/// row; its events in seq order, or `None` when the history is broken.
pub(crate) fn history(
    findings: &mut Findings,
    list: Uuid,
    stored: &StoredList,
) -> Option<Vec<Event>> {
    let mut batches = stored.batches.clone();
    batches.sort_by_key(|batch| (batch.first_seq, batch.last_seq));
    let mut events = Vec::new();
    let mut last = 0;
    for batch in &batches {
        if batch.first_seq <= last {
            findings.add(
                "no fork",
                format!(
                    "list {list}: a committed batch {}..={} overlaps history up to {last}",
                    batch.first_seq, batch.last_seq
                ),
            );
            return None;
        }
        if batch.first_seq != last + 1 {
            findings.add(
                "contiguous seqs",
                format!(
                    "list {list}: history jumps from {last} to batch {}..={}",
                    batch.first_seq, batch.last_seq
                ),
            );
            return None;
        }
        let decoded = match decode_batch(&batch.body) {
            Ok(decoded) => decoded,
            Err(error) => {
                findings.add(
                    "contiguous seqs",
                    format!(
                        "list {list}: batch {} does not decode: {error}",
                        batch.first_seq
                    ),
                );
                return None;
            }
        };
        let seqs: Vec<u64> = decoded.iter().map(|event| event.seq).collect();
        let expected: Vec<u64> = (batch.first_seq..=batch.last_seq).collect();
        if seqs != expected {
            findings.add(
                "contiguous seqs",
                format!("list {list}: batch {} holds seqs {seqs:?}", batch.first_seq),
            );
            return None;
        }
        events.extend(decoded);
        last = batch.last_seq;
    }
    if stored.head != Some(last) {
        findings.add(
            "contiguous seqs",
            format!(
                "list {list}: head row {:?}, history ends at {last}",
                stored.head
            ),
        );
    }
    Some(events)
}

/// (1) Every acked op is in its list's history exactly once, at its acked seq; no op (acked
/// or not) is applied twice.
pub(crate) fn acked_ops(
    findings: &mut Findings,
    ops: &[OpRecord],
    histories: &[Option<Vec<Event>>],
) {
    let mut by_op: Vec<HashMap<Uuid, Vec<u64>>> = Vec::new();
    for events in histories {
        let mut seqs: HashMap<Uuid, Vec<u64>> = HashMap::new();
        for event in events.iter().flatten() {
            seqs.entry(event.op_id).or_default().push(event.seq);
        }
        by_op.push(seqs);
    }
    for op in ops {
        if histories[op.list].is_none() {
            continue;
        }
        let seqs = by_op[op.list].get(&op.op_id).cloned().unwrap_or_default();
        if seqs.len() > 1 {
            findings.add(
                "acked op exactly once",
                format!(
                    "op {} applied {} times on list #{} at seqs {seqs:?}",
                    op.op_id,
                    seqs.len(),
                    op.list
                ),
            );
        }
        if let Some(acked) = op.acked() {
            if seqs != [acked] {
                findings.add(
                    "acked op exactly once",
                    format!(
                        "op {} acked at seq {acked} on list #{}, stored at seqs {seqs:?}",
                        op.op_id, op.list
                    ),
                );
            }
        }
    }
}

/// (3) Every subscriber's frames are contiguous (no gap, no duplicate; a tally only stands for
/// vote events) and it reached the stored head.
pub(crate) fn subscribers(
    findings: &mut Findings,
    logs: &[SubscriberLog],
    histories: &[Option<Vec<Event>>],
) {
    for log in logs {
        let Some(events) = &histories[log.list] else {
            continue;
        };
        let who = format!("subscriber of list #{} on node {}", log.list, log.node);
        let mut last = 0u64;
        for frame in &log.frames {
            match *frame {
                Seen::Snapshot(seq) if seq < last => findings.add(
                    "subscriber contiguous",
                    format!("{who}: snapshot at {seq} after {last}"),
                ),
                Seen::Delta(from, to) if from != last + 1 => findings.add(
                    "subscriber contiguous",
                    format!(
                        "{who}: delta {from}..={to} after {last} ({})",
                        if from > last { "gap" } else { "duplicate" }
                    ),
                ),
                Seen::Tally(seq) if seq < last => findings.add(
                    "subscriber contiguous",
                    format!("{who}: tally at {seq} after {last}"),
                ),
                Seen::Tally(seq) => {
                    let covered = events
                        .iter()
                        .filter(|event| event.seq > last && event.seq <= seq);
                    if let Some(event) = covered.into_iter().find(|event| !event.change.is_vote()) {
                        findings.add(
                            "subscriber contiguous",
                            format!(
                                "{who}: tally at {seq} after {last} skips non-vote seq {}",
                                event.seq
                            ),
                        );
                    }
                }
                _ => {}
            }
            last = match *frame {
                Seen::Snapshot(seq) | Seen::Tally(seq) => last.max(seq),
                Seen::Delta(_, to) => last.max(to),
                Seen::Reconnected => last,
            };
        }
        let head = events.last().map_or(0, |event| event.seq);
        if last != head {
            findings.add(
                "subscriber converged",
                format!(
                    "{who} (stayed connected: {}): reached {last}, stored head {head}",
                    log.stayed_connected
                ),
            );
        }
    }
}

/// (4) No user exceeds the poll's vote limit, no vote counts twice, every event's count and
/// every tally a subscriber saw equal the stored votes at that seq, and the list's invariants
/// hold.
/// Folds `event` into `state`; a history that breaks the list's invariants can trip the
/// domain's own (debug) self-check, which is a finding here, not a panic of the checker: the
/// replay stops there and the vote checks go on without it.
fn replay(
    findings: &mut Findings,
    list: Uuid,
    mut state: ListState,
    event: &Event,
) -> Option<ListState> {
    let folded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        evolve(&mut state, event, &Limits::default())
    }));
    match folded {
        Ok(()) => Some(state),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            findings.add(
                "list invariants",
                format!(
                    "list {list}: replaying seq {} fails the domain's self-check: {why}",
                    event.seq
                ),
            );
            None
        }
    }
}

pub(crate) fn votes(
    findings: &mut Findings,
    list: Uuid,
    events: &[Event],
    limit: usize,
    tallies: &[(u64, BTreeMap<Uuid, u64>)],
) {
    let mut by_user: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    let mut counts: BTreeMap<Uuid, u64> = BTreeMap::new();
    let mut at_seq: BTreeMap<u64, BTreeMap<Uuid, u64>> = BTreeMap::new();
    let wanted: HashSet<u64> = tallies.iter().map(|(seq, _)| *seq).collect();
    let mut state = Some(ListState::new(list));
    for event in events {
        state = state.and_then(|state| replay(findings, list, state, event));
        let user_votes = by_user.entry(event.by).or_default();
        let (item, reported) = match event.change {
            Change::Vote { item, votes } => {
                if !user_votes.insert(item) {
                    findings.add(
                        "votes exactly once",
                        format!(
                            "list {list}: user {} voted twice for item {item} (seq {})",
                            event.by, event.seq
                        ),
                    );
                }
                *counts.entry(item).or_default() += 1;
                (item, votes)
            }
            Change::Unvote { item, votes } => {
                user_votes.remove(&item);
                let count = counts.entry(item).or_default();
                *count = count.saturating_sub(1);
                (item, votes)
            }
            _ => continue,
        };
        if user_votes.len() > limit {
            findings.add(
                "vote limit",
                format!(
                    "list {list}: user {} has {} votes at seq {}, limit {limit}",
                    event.by,
                    user_votes.len(),
                    event.seq
                ),
            );
        }
        if counts.get(&item) != Some(&reported) {
            findings.add(
                "tally equals votes",
                format!(
                    "list {list}: seq {} says item {item} has {reported} votes, stored votes {:?}",
                    event.seq,
                    counts.get(&item)
                ),
            );
        }
        if wanted.contains(&event.seq) {
            at_seq.insert(event.seq, counts.clone());
        }
    }
    if let Some(Err(broken)) = state.map(|state| check_invariants(&state, &Limits::default())) {
        findings.add("list invariants", format!("list {list}: {broken}"));
    }
    for (seq, tally) in tallies {
        let Some(stored) = at_seq.get(seq) else {
            continue;
        };
        let nonzero = |map: &BTreeMap<Uuid, u64>| {
            map.iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| (*k, *v))
                .collect::<Vec<_>>()
        };
        if nonzero(stored) != nonzero(tally) {
            findings.add(
                "tally equals votes",
                format!("list {list}: tally at seq {seq} {tally:?}, stored {stored:?}"),
            );
        }
    }
}

/// (5) Every attempt was answered within its timeout unless its node was killed or paused
/// meanwhile, and every op ended acked or refused for good within its deadline.
pub(crate) fn answers(findings: &mut Findings, ops: &[OpRecord], windows: &[Window]) {
    for op in ops {
        for attempt in &op.attempts {
            if attempt.answer != Answer::Silent {
                continue;
            }
            let excused = windows.iter().any(|window| {
                let end = window.end.map(|end| end + FAULT_GRACE);
                window.node == attempt.node
                    && window.kind != FaultKind::Partition
                    && window.start < attempt.answered
                    && end.is_none_or(|end| end > attempt.sent)
            });
            if !excused {
                findings.add("no client waits forever", format!("op {} on list #{}: node {} did not answer within {:?} (no kill or pause of it meanwhile)", op.op_id, op.list, attempt.node, attempt.answered - attempt.sent));
            }
        }
        match op.outcome() {
            Some(Answer::Acked(_)) => {}
            Some(Answer::Refused(code)) if op.vote && code == "conflict" => {}
            Some(Answer::Refused(code)) if !["moved", "busy", "unavailable", "rate_limited"].contains(&code.as_str()) => {
                findings.add("no unexpected refusal", format!("op {} on list #{} refused {code}", op.op_id, op.list));
            }
            outcome => findings.add("no client waits forever", format!("op {} on list #{} not answered for good within its deadline after {} attempts ({:?}): last {outcome:?}", op.op_id, op.list, op.attempts.len(), op.latency())),
        }
    }
}

/// (6) Every node's resident memory stayed under `limit_bytes`.
pub(crate) fn memory(findings: &mut Findings, rss_max: &[u64], limit_bytes: u64) {
    for (node, rss) in rss_max.iter().enumerate() {
        if *rss > limit_bytes {
            findings.add(
                "bounded memory",
                format!(
                    "node {node}: resident {} MiB, limit {} MiB",
                    rss >> 20,
                    limit_bytes >> 20
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::chaos::clients::Attempt;

    fn subscriber(frames: Vec<Seen>) -> SubscriberLog {
        SubscriberLog {
            list: 0,
            node: 1,
            frames,
            tallies: Vec::new(),
            stayed_connected: true,
            resubscribes: 0,
            seq: 0,
        }
    }

    /// The subscriber checker catches a gap, a duplicate and a subscriber left behind.
    #[test]
    fn subscriber_checker_fails_on_gaps_duplicates_and_lag() {
        let mut findings = Findings::default();
        let frames = vec![Seen::Delta(1, 2), Seen::Delta(4, 5), Seen::Delta(5, 5)];
        subscribers(&mut findings, &[subscriber(frames)], &[Some(Vec::new())]);
        let found: Vec<&str> = findings.violations.iter().map(|v| v.invariant).collect();
        assert_eq!(
            found,
            [
                "subscriber contiguous",
                "subscriber contiguous",
                "subscriber converged"
            ],
            "{:?}",
            findings.violations
        );
    }

    /// An attempt left unanswered by a node nobody paused or killed is a stuck client; one
    /// during a pause of its node is not.
    #[test]
    fn answer_checker_fails_on_a_silent_healthy_node() {
        let start = Instant::now();
        let attempt = |node| Attempt {
            node,
            sent: start,
            answered: start + Duration::from_secs(5),
            answer: Answer::Silent,
        };
        let op = OpRecord {
            op_id: Uuid::nil(),
            list: 0,
            vote: false,
            attempts: vec![attempt(0), attempt(1), attempt(2)],
        };
        let pause = Window {
            kind: FaultKind::Pause,
            node: 1,
            start,
            end: Some(start + Duration::from_secs(3)),
        };
        let mut findings = Findings::default();
        answers(&mut findings, &[op], &[pause]);
        let evidence: Vec<&str> = findings
            .violations
            .iter()
            .map(|v| v.evidence.as_str())
            .collect();
        assert_eq!(findings.violations.len(), 3, "{evidence:?}");
        assert!(evidence[0].contains("node 0 did not answer"));
        assert!(evidence[1].contains("node 2 did not answer"));
        assert!(evidence[2].contains("not answered for good"));
    }
}
