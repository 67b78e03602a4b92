//! Turning the writers' and subscribers' logs into the failover figures, and checking the
//! final lists against what was acknowledged. Pure functions over the logs.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::subscriber::SubscriberLog;
use super::writer::OpLog;
use crate::report::Latency;

/// One list around the kill, from its writer's log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timeline {
    /// The last ack received before the kill.
    pub(crate) last_ack_before: Option<Instant>,
    /// The first ack received after it.
    pub(crate) first_ack_after: Option<Instant>,
    /// The first ack of an op due after the kill (it can only come from the new owner).
    pub(crate) first_new_ack: Option<Instant>,
    /// The number of the first op due after the kill.
    pub(crate) first_new_number: Option<u64>,
}

/// Each list's timeline around `killed_at`.
pub(crate) fn timelines(ops: &[&OpLog], lists: usize, killed_at: Instant) -> Vec<Timeline> {
    let mut timelines = vec![Timeline::default(); lists];
    for op in ops {
        let timeline = &mut timelines[op.list];
        if op.due >= killed_at {
            timeline.first_new_number = Some(
                timeline
                    .first_new_number
                    .map_or(op.number, |number| number.min(op.number)),
            );
        }
        let Some((acked_at, _)) = op.acked else {
            continue;
        };
        if acked_at < killed_at {
            timeline.last_ack_before = timeline.last_ack_before.max(Some(acked_at));
        } else {
            timeline.first_ack_after = earliest(timeline.first_ack_after, acked_at);
            if op.due >= killed_at {
                timeline.first_new_ack = earliest(timeline.first_new_ack, acked_at);
            }
        }
    }
    timelines
}

fn earliest(current: Option<Instant>, candidate: Instant) -> Option<Instant> {
    Some(current.map_or(candidate, |at| at.min(candidate)))
}

/// Outage figures over a set of lists.
pub(crate) struct Outage {
    /// Kill → first ack of an op due after it, per list.
    pub(crate) serving_again: Latency,
    /// Last ack before the kill → first ack after it, per list.
    pub(crate) no_ack: Latency,
    /// Lists with no ack of a new op after the kill.
    pub(crate) never_served: usize,
    /// `(list, kill → serving again in ms)` for each list, for pooling runs.
    pub(crate) by_list_ms: Vec<(usize, Option<f64>)>,
    /// Ack latency (from the due time) of the ops caught by the outage: not acked before the
    /// kill and due before their list served again.
    pub(crate) caught: Latency,
}

/// The outage of the lists `chosen` selects.
pub(crate) fn outage(
    ops: &[&OpLog],
    timelines: &[Timeline],
    killed_at: Instant,
    chosen: impl Fn(usize) -> bool,
) -> Outage {
    let mut outage = Outage {
        serving_again: Latency::new(),
        no_ack: Latency::new(),
        never_served: 0,
        by_list_ms: Vec::new(),
        caught: Latency::new(),
    };
    for op in ops {
        let Some((acked_at, _)) = op.acked else {
            continue;
        };
        let served_again = timelines[op.list].first_new_ack;
        if chosen(op.list) && acked_at >= killed_at && served_again.is_some_and(|at| op.due < at) {
            outage.caught.record(acked_at - op.due);
        }
    }
    for (list, timeline) in timelines.iter().enumerate() {
        if !chosen(list) {
            continue;
        }
        match timeline.first_new_ack {
            Some(at) => outage.serving_again.record(at - killed_at),
            None => outage.never_served += 1,
        }
        let serving_ms = timeline
            .first_new_ack
            .map(|at| (at - killed_at).as_secs_f64() * 1000.0);
        outage.by_list_ms.push((list, serving_ms));
        if let (Some(before), Some(after)) = (timeline.last_ack_before, timeline.first_ack_after) {
            outage.no_ack.record(after - before);
        }
    }
    outage
}

/// Kill → the first frame carrying an op due after the kill, for each subscriber of a list
/// `chosen` selects whose connection lasted; and how many such subscribers never got one.
pub(crate) fn deltas_again(
    subscribers: &[SubscriberLog],
    timelines: &[Timeline],
    killed_at: Instant,
    chosen: impl Fn(usize) -> bool,
) -> (Latency, usize) {
    let mut latency = Latency::new();
    let mut never = 0;
    for subscriber in subscribers {
        if !subscriber.stayed_connected || !chosen(subscriber.list) {
            continue;
        }
        let Some(first_new) = timelines[subscriber.list].first_new_number else {
            continue;
        };
        let resumed = subscriber
            .after_kill
            .iter()
            .find(|(_, number)| *number >= first_new)
            .map(|(at, _)| *at);
        match resumed {
            Some(at) => latency.record(at - killed_at),
            None => never += 1,
        }
    }
    (latency, never)
}

/// What the final lists say about the acknowledged ops.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreChecks {
    /// Acked ops whose item is not in the final list.
    pub lost: u64,
    /// Ops whose item is in the final list more than once.
    pub duplicated: u64,
    /// Ops never acked (unknown outcome) whose item is in the list once: applied, allowed.
    pub unacked_applied: u64,
    /// Items that no writer sent.
    pub foreign: u64,
    /// Acks of one list that named the same seq for two ops.
    pub acked_seq_reused: u64,
}

/// Checks every list's final snapshot (`snapshots[list]`) against the ops sent to it.
/// `numbers_of(list, text)` reads an op number from an item text of that list.
pub(crate) fn check_lists(
    ops: &[&OpLog],
    snapshots: &[Value],
    number_of: impl Fn(usize, &str) -> Option<u64>,
) -> StoreChecks {
    let mut checks = StoreChecks::default();
    let mut stored: Vec<HashMap<u64, u64>> = vec![HashMap::new(); snapshots.len()];
    for (list, snapshot) in snapshots.iter().enumerate() {
        for item in snapshot["items"].as_array().into_iter().flatten() {
            let text = item["text"].as_str().unwrap_or_default();
            match number_of(list, text) {
                Some(number) => *stored[list].entry(number).or_default() += 1,
                None => checks.foreign += 1,
            }
        }
    }
    let mut seqs: HashSet<(usize, u64)> = HashSet::new();
    let mut sent: HashSet<(usize, u64)> = HashSet::new();
    for op in ops {
        sent.insert((op.list, op.number));
        let copies = stored[op.list].get(&op.number).copied().unwrap_or(0);
        checks.duplicated += u64::from(copies > 1);
        match op.acked {
            Some((_, seq)) => {
                checks.lost += u64::from(copies == 0);
                checks.acked_seq_reused += u64::from(!seqs.insert((op.list, seq)));
            }
            None => checks.unacked_applied += u64::from(copies == 1),
        }
    }
    for (list, numbers) in stored.iter().enumerate() {
        let unsent = numbers.keys().filter(|n| !sent.contains(&(list, **n)));
        checks.foreign += unsent.count() as u64;
    }
    checks
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn op(list: usize, number: u64, due: Instant, acked: Option<(Instant, u64)>) -> OpLog {
        OpLog {
            list,
            number,
            due,
            acked,
            refused: None,
        }
    }

    /// Outage per list: the gap in acks around the kill, and the first ack of a new op.
    #[test]
    fn outage_of_a_list_is_measured_from_its_acks() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let ops = [
            op(0, 0, ms(0), Some((ms(5), 2))),
            op(0, 1, ms(90), Some((ms(2500), 3))), // pending at the kill, acked late
            op(0, 2, ms(150), Some((ms(2600), 4))), // due after the kill
            op(1, 0, ms(0), Some((ms(4), 2))),     // a list that never came back
        ];
        let refs: Vec<&OpLog> = ops.iter().collect();
        let killed_at = ms(100);
        let timelines = timelines(&refs, 2, killed_at);
        assert_eq!(timelines[0].first_new_number, Some(2));
        let outage = outage(&refs, &timelines, killed_at, |_| true);
        assert_eq!(outage.never_served, 1);
        assert_eq!(outage.by_list_ms.len(), 2);
        assert_eq!(outage.by_list_ms[1], (1, None));
        // Ops 1 and 2 of list 0 were caught: due at 90 and 150 ms, acked at 2500 and 2600 ms.
        assert_eq!(outage.caught.count(), 2);
        assert!((outage.caught.quantile_ms(0.0) - 2410.0).abs() < 5.0);
        assert!((outage.caught.quantile_ms(1.0) - 2450.0).abs() < 5.0);
        assert_eq!(outage.serving_again.count(), 1);
        assert!((outage.serving_again.quantile_ms(0.5) - 2500.0).abs() < 5.0);
        assert!((outage.no_ack.quantile_ms(0.5) - 2495.0).abs() < 5.0);

        let subscriber = SubscriberLog {
            list: 0,
            stayed_connected: true,
            after_kill: vec![(ms(2550), 1), (ms(2650), 2)],
            ..SubscriberLog::default()
        };
        let (again, never) = deltas_again(&[subscriber], &timelines, killed_at, |_| true);
        assert_eq!(never, 0);
        assert!((again.quantile_ms(0.5) - 2550.0).abs() < 5.0);
    }

    /// Lost, duplicated, foreign and reused-seq items are all counted; an unacked op may be
    /// applied once.
    #[test]
    fn final_lists_are_checked_against_acks() {
        let t0 = Instant::now();
        let ops = [
            op(0, 0, t0, Some((t0, 2))),
            op(0, 1, t0, Some((t0, 3))), // lost
            op(0, 2, t0, None),          // applied without an ack
            op(0, 3, t0, Some((t0, 3))), // same seq as op 1
            op(0, 4, t0, None),          // applied twice
        ];
        let refs: Vec<&OpLog> = ops.iter().collect();
        let snapshot = json!({"items": [
            {"text": "n0"}, {"text": "n2"}, {"text": "n3"}, {"text": "n4"}, {"text": "n4"},
            {"text": "n9"}, {"text": "milk"}
        ]});
        let number_of = |_list: usize, text: &str| text.strip_prefix('n')?.parse().ok();
        let checks = check_lists(&refs, &[snapshot], number_of);
        let expected = StoreChecks {
            lost: 1,
            duplicated: 1,
            unacked_applied: 1,
            foreign: 2,
            acked_seq_reused: 1,
        };
        assert_eq!(checks, expected);
    }
}
