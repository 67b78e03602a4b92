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
