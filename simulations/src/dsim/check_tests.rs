//! Every checker can fail: each is fed a record of the failure it exists to catch.

use bytes::Bytes;
use listwire::domain::encode_batch;

use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn event(seq: u64, op: u128, by: u128, change: Change) -> Event {
    Event {
        seq,
        op_id: id(op),
        by: id(by),
        at_ms: 1_000 + seq,
        op_digest: 0,
        window_ms: None,
        change,
    }
}

fn vote(seq: u64, by: u128, item: u128, votes: u64) -> Event {
    event(
        seq,
        1_000 + seq as u128,
        by,
        Change::Vote {
            item: id(item),
            votes,
        },
    )
}

fn op(op_id: u128, acks: Vec<u64>, outcome: Outcome) -> OpRecord {
    OpRecord {
        op_id: id(op_id),
        list: id(1),
        user: id(2),
        kind: "add",
        attempts: 1,
        acks,
        outcome,
    }
}

fn histories(events: Vec<Event>) -> BTreeMap<Uuid, Vec<Event>> {
    BTreeMap::from([(id(1), events)])
}

fn batch(events: &[Event]) -> listwire_storage::Batch {
    listwire_storage::Batch {
        first_seq: events[0].seq,
        last_seq: events[events.len() - 1].seq,
        body: Bytes::from(encode_batch(events)),
    }
}

/// Goal: two batches covering one seq (a fork) and a batch whose event sits at another seq
/// are reported; a contiguous history is not.
#[test]
fn the_history_checker_fails_on_a_fork() {
    let a = vote(1, 7, 9, 1);
    let b = vote(2, 7, 9, 2);
    let mut failures = Vec::new();
    history(id(1), &[batch(&[a.clone(), b.clone()])], &mut failures);
    assert!(failures.is_empty(), "{failures:?}");
    history(
        id(1),
        &[batch(&[a.clone(), b]), batch(&[vote(2, 8, 9, 2)])],
        &mut failures,
    );
    assert!(failures[0].starts_with("fork/gap"), "{failures:?}");
    let mut misplaced = batch(&[a]);
    misplaced.first_seq = 1;
    misplaced.body = Bytes::from(encode_batch(&[vote(5, 7, 9, 1)]));
    let mut failures = Vec::new();
    history(id(1), &[misplaced], &mut failures);
    assert!(failures[0].starts_with("fork in"), "{failures:?}");
}

/// Goal: a lost acked op, an op stored twice, an op acked at one seq and stored at another, and
/// a refused op that was stored are each reported.
#[test]
fn the_exactly_once_checker_fails_on_lost_duplicated_and_refused_ops() {
    let stored = histories(vec![
        event(
            2,
            20,
            2,
            Change::Vote {
                item: id(9),
                votes: 1,
            },
        ),
        event(
            3,
            20,
            2,
            Change::Vote {
                item: id(9),
                votes: 2,
            },
        ),
        event(
            4,
            30,
            2,
            Change::Vote {
                item: id(8),
                votes: 1,
            },
        ),
        event(
            5,
            40,
            2,
            Change::Vote {
                item: id(7),
                votes: 1,
            },
        ),
    ]);
    let ops = [
        op(10, vec![6], Outcome::Acked(6)),
        op(20, vec![2], Outcome::Acked(2)),
        op(30, vec![9], Outcome::Acked(9)),
        op(40, Vec::new(), Outcome::Rejected("conflict".into())),
    ];
    let mut failures = Vec::new();
    assert_eq!(acked_exactly_once(&ops, &stored, &mut failures), 3);
    let starts: Vec<&str> = failures
        .iter()
        .map(|f| f.split(' ').next().unwrap())
        .collect();
    assert_eq!(starts, ["lost", "duplicated", "op", "op"], "{failures:?}");
}

/// Goal: a user over the poll's limit and a vote count that does not follow from the votes
/// before it are reported, and so is a final tally that differs from the stored counts.
#[test]
fn the_vote_checker_fails_on_the_limit_and_on_tallies() {
    let over: Vec<Event> = (0..=VOTE_LIMIT)
        .map(|n| vote(2 + n, 5, 100 + u128::from(n), 1))
        .collect();
    let mut failures = Vec::new();
    assert_eq!(
        votes_within_limits(&histories(over), &[], &mut failures),
        VOTE_LIMIT + 1
    );
    assert!(failures[0].contains("limit"), "{failures:?}");

    let wrong_count = histories(vec![vote(2, 5, 100, 1), vote(3, 6, 100, 3)]);
    let mut failures = Vec::new();
    votes_within_limits(&wrong_count, &[], &mut failures);
    assert!(failures[0].starts_with("tally of"), "{failures:?}");

    let sub = SubRecord {
        list: id(1),
        connected_at_end: true,
        tally: Some((2, BTreeMap::from([(id(100), 2)]))),
        ..SubRecord::default()
    };
    let mut failures = Vec::new();
    votes_within_limits(&histories(vec![vote(2, 5, 100, 1)]), &[sub], &mut failures);
    assert!(failures[0].contains("tally"), "{failures:?}");
}

/// Goal: a subscriber's contiguity violations, an event it saw that the store does not hold
/// at that seq, and a subscriber left behind the head are reported.
#[test]
fn the_subscriber_checker_fails_on_gaps_wrong_events_and_lag() {
    let stored = vec![vote(2, 5, 100, 1), vote(3, 5, 101, 1)];
    let sub = SubRecord {
        list: id(1),
        last: 2,
        events: BTreeMap::from([(2, id(999))]),
        violations: vec!["delta 4..=4 after seq 2 (gap)".into()],
        connected_at_end: true,
        ..SubRecord::default()
    };
    let mut failures = Vec::new();
    subscriber_converged(&sub, Some(&stored), &mut failures);
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(failures[2].contains("ended at seq 2"), "{failures:?}");
}

/// Goal: an op whose client got no answer is reported as a stuck client.
#[test]
fn the_waiting_checker_fails_on_a_stuck_client() {
    let mut failures = Vec::new();
    no_client_waited_forever(&[op(10, Vec::new(), Outcome::Stuck)], &mut failures);
    assert!(failures[0].starts_with("client stuck"), "{failures:?}");
    let mut failures = Vec::new();
    no_client_waited_forever(
        &[op(11, Vec::new(), Outcome::GaveUp("busy".into()))],
        &mut failures,
    );
    assert!(
        failures.is_empty(),
        "a retryable error at the deadline is an answer"
    );
}

/// Goal: a node reading a list behind its stored head once quiet, or not at all, is reported.
#[test]
fn the_final_read_checker_fails_on_a_stale_or_silent_node() {
    let stored = histories(vec![vote(2, 5, 100, 1), vote(3, 5, 101, 1)]);
    let read = |node, seq| FinalRead {
        list: id(1),
        node,
        seq,
    };
    let mut failures = Vec::new();
    every_node_reads_the_head(
        &[read(0, Some(3)), read(1, Some(2)), read(2, None)],
        &stored,
        &mut failures,
    );
    assert_eq!(failures.len(), 2, "{failures:?}");
}

/// Goal: more actors or followed lists on a node than lists exist is a bound broken.
#[test]
fn the_bounds_checker_fails_when_a_gauge_passes_the_lists() {
    let mut bounds = Bounds::default();
    bounds.record(0, (5, 5), 5);
    assert!(bounds.violations.is_empty());
    bounds.record(1, (6, 0), 5);
    bounds.record(2, (0, 7), 5);
    assert_eq!(bounds.violations.len(), 2, "{:?}", bounds.violations);
    assert_eq!((bounds.active_lists, bounds.followed), (6, 7));
}
