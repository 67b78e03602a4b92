//! List time: event times never run backwards, whatever the clock that stamped the commands
//! did, so the op-id window (pruned by list time) and poll closing follow the list's own time.

use super::script::{check, run};
use super::Limits;

#[test]
fn event_time_never_goes_below_the_previous_event() {
    // Goal: a command stamped before the previous event (a wall clock stepped back) gets the
    // previous event's time, so `updated_at_ms` and the op-id window never see time reversed.
    let outcome = run(
        &Limits::default(),
        r#"
        alice t=5000000 create {"title":"t"}
        alice t=5000100 {"kind":"add_item","text":"a","item":"@a"}
        alice t=4000000 {"kind":"edit_item","item":"@a","text":"b"}
        alice t=5000200 {"kind":"set_done","item":"@a","done":true}
        "#,
    );
    let times: Vec<u64> = outcome.events.iter().map(|event| event.at_ms).collect();
    assert_eq!(times, vec![5_000_000, 5_000_100, 5_000_100, 5_000_200]);
    assert_eq!(outcome.state.clock_ms(), 5_000_200);
}

#[test]
fn a_stepped_back_clock_cannot_reopen_a_closed_poll() {
    // Goal: once the list's time has passed `close_at_ms`, a vote stamped earlier (a clock that
    // went back) is refused like any vote after closing.
    check(
        &Limits::default(),
        r#"
        alice t=1000 create {"title":"t","poll":{"max_votes_per_user":2,"allow_change":true,"open":true,"close_at_ms":2000}}
        alice t=1100 {"kind":"add_item","text":"a","item":"@a"}
        alice t=2500 {"kind":"rename","title":"after closing"}
        alice t=1500 {"kind":"vote","item":"@a"}
        "#,
        "ok 1 create\nok 2 add_item @a\nok 3 rename\nconflict: poll is closed",
    );
}

#[test]
fn the_op_window_clock_advances_by_measured_time_only() {
    // Goal: the window's clock follows `at_ms` while the owner's measured time agrees, does
    // not move across an owner change (no measurement) and grows by at most the measured time
    // when `at_ms` jumps; replay from the stored events rebuilds the same window.
    use super::script::{alias, user};
    use super::{apply, evolve, Command, ListState, Op};
    let mut outcome = run(
        &Limits::default(),
        "alice t=1000000 create {\"title\":\"t\"}",
    );
    let rename = |n: u64, at_ms: u64, elapsed_ms: Option<u64>| Command {
        op_id: alias(&format!("r{n}")),
        by: user("alice").unwrap(),
        at_ms,
        elapsed_ms,
        op: Op::Rename {
            title: format!("t{n}"),
        },
        target: None,
    };
    let limits = Limits::default();
    let cases = [
        (1_000_500, Some(600), 1_000_500), // measured more than at_ms grew
        (1_900_000, None, 1_000_500),      // new owner, clock 15 min ahead
        (1_900_100, Some(100), 1_000_600), // normal again
        (2_800_000, Some(50), 1_000_600 + 50 + 10), // a step on a running owner: slack only
    ];
    let mut events = Vec::new();
    for (n, (at_ms, elapsed, window)) in cases.into_iter().enumerate() {
        let event = apply(
            &mut outcome.state,
            &rename(n as u64, at_ms, elapsed),
            &limits,
        )
        .unwrap();
        assert_eq!(outcome.state.window_clock_ms(), Some(window), "case {n}");
        events.push(event);
    }
    let mut replayed = ListState::new(outcome.state.list_id());
    for event in outcome.events.iter().chain(&events) {
        evolve(&mut replayed, event, &limits);
    }
    assert_eq!(replayed, outcome.state);
}
