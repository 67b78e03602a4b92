//! Script-driven unit tests of polls: voting rules, poll settings, public lists.

use super::script::{alias, check};
use super::tests::check_after_setup;
use super::Limits;

#[test]
fn unshare_keeps_votes() {
    // Goal: a removed member's votes stay counted, since they were cast legitimately.
    let state = check_after_setup(
        &Limits::default(),
        r#"
        carol {"kind":"vote","item":"@milk"}
        alice {"kind":"unshare","user":"carol"}
        "#,
        "ok 7 vote votes=1\nok 8 unshare",
    );
    assert_eq!(
        state.votes_of(alias("carol")).collect::<Vec<_>>(),
        vec![alias("milk")]
    );
    assert_eq!(
        state.tally_json(),
        format!("{{\"{}\":1,\"{}\":0}}", alias("milk"), alias("eggs")).into_bytes()
    );
}

#[test]
fn voting_rules() {
    // Goal: voters vote once per item up to the limit, viewers and outsiders cannot, and removal drops votes.
    let state = check_after_setup(
        &Limits::default(),
        r#"
        carol {"kind":"vote","item":"@milk"}
        carol {"kind":"vote","item":"@milk"}
        carol {"kind":"vote","item":"@eggs"}
        alice {"kind":"add_item","text":"tea","item":"@tea"}
        carol {"kind":"vote","item":"@tea"}
        bob {"kind":"vote","item":"@milk"}
        alice {"kind":"vote","item":"@milk"}
        dave {"kind":"vote","item":"@milk"}
        eve {"kind":"vote","item":"@milk"}
        bob {"kind":"vote","item":"@ghost"}
        bob {"kind":"unvote","item":"@eggs"}
        bob {"kind":"unvote","item":"@milk"}
        bob {"kind":"remove_item","item":"@milk"}
        carol {"kind":"vote","item":"@tea"}
        "#,
        r#"
        ok 7 vote votes=1
        conflict: already voted for this item
        ok 8 vote votes=1
        ok 9 add_item @tea
        conflict: vote limit reached (2 per user)
        ok 10 vote votes=2
        ok 11 vote votes=3
        forbidden: role viewer may not vote
        forbidden: not a member of this list
        not_found: no such item @ghost
        conflict: not voted for this item
        ok 12 unvote votes=2
        ok 13 remove_item
        ok 14 vote votes=1
        "#,
    );
    assert_eq!(state.votes_of(alias("carol")).count(), 2);
    assert_eq!(state.votes_of(alias("alice")).count(), 0);
}

#[test]
fn poll_settings_rules() {
    // Goal: set_poll is owner-only and validated, can close the poll by flag or time, and cannot undercut votes.
    check(
        &Limits {
            max_votes_per_user_cap: 3,
            ..Limits::default()
        },
        r#"
        alice create {"title":"t"}
        alice {"kind":"add_item","text":"a","item":"@a"}
        alice {"kind":"add_item","text":"b","item":"@b"}
        alice {"kind":"vote","item":"@a"}
        alice {"kind":"set_poll","max_votes_per_user":4,"allow_change":false,"open":true}
        alice {"kind":"set_poll","max_votes_per_user":0,"allow_change":false,"open":true}
        alice {"kind":"set_poll","max_votes_per_user":2,"allow_change":false,"open":true}
        alice {"kind":"vote","item":"@a"}
        alice {"kind":"vote","item":"@b"}
        alice {"kind":"unvote","item":"@b"}
        alice {"kind":"set_poll","max_votes_per_user":1,"allow_change":true,"open":true}
        alice {"kind":"set_poll","max_votes_per_user":2,"allow_change":true,"open":false}
        alice {"kind":"vote","item":"@a"}
        alice {"kind":"unvote","item":"@a"}
        alice t=2000000 {"kind":"set_poll","max_votes_per_user":2,"allow_change":true,"open":true,"close_at_ms":2001000}
        alice t=2000999 {"kind":"unvote","item":"@a"}
        alice t=2001000 {"kind":"vote","item":"@a"}
        alice t=2001000 {"kind":"unvote","item":"@b"}
        alice {"kind":"set_poll","max_votes_per_user":-1,"allow_change":true,"open":true}
        "#,
        r#"
        ok 1 create
        ok 2 add_item @a
        ok 3 add_item @b
        conflict: list has no poll
        invalid: field `max_votes_per_user` must be between 1 and 3
        invalid: field `max_votes_per_user` must be between 1 and 3
        ok 4 set_poll
        ok 5 vote votes=1
        ok 6 vote votes=1
        conflict: poll does not allow changing votes
        conflict: field `max_votes_per_user` is below a user's current votes (2)
        ok 7 set_poll
        conflict: poll is closed
        conflict: poll is closed
        ok 8 set_poll
        ok 9 unvote votes=0
        conflict: poll is closed
        conflict: poll is closed
        invalid: invalid value: integer `-1`, expected u32
        "#,
    );
}

#[test]
fn public_lists_let_anyone_vote_but_only_members_edit() {
    // Goal: on a public list a non-member (and a viewer) may view and vote, but not edit or administer.
    let state = check_after_setup(
        &Limits::default(),
        r#"
        bob {"kind":"set_visibility","visibility":"public"}
        alice {"kind":"set_visibility","visibility":"public"}
        eve {"kind":"vote","item":"@milk"}
        eve {"kind":"vote","item":"@milk"}
        dave {"kind":"vote","item":"@milk"}
        eve {"kind":"unvote","item":"@milk"}
        eve {"kind":"add_item","text":"x"}
        eve {"kind":"rename","title":"x"}
        alice {"kind":"set_visibility","visibility":"private"}
        eve {"kind":"vote","item":"@eggs"}
        "#,
        r#"
        forbidden: role editor may not change the visibility
        ok 7 set_visibility
        ok 8 vote votes=1
        conflict: already voted for this item
        ok 9 vote votes=2
        ok 10 unvote votes=1
        forbidden: only members may edit items
        forbidden: only members may rename the list
        ok 11 set_visibility
        forbidden: not a member of this list
        "#,
    );
    assert!(!state.can_view(alias("eve")));
    assert!(state.can_view(alias("dave")));
}
