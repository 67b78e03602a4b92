//! Script-driven unit tests of the list domain: every op kind, role, limit and poll rule.

use super::script::{alias, check, user, LIST_ID};
use super::{parse_op, Limits, RejectCode, Role, Visibility};

/// A private list with a poll (2 votes each, changeable), bob editor, carol voter, dave viewer, two items.
const SETUP: &str = r#"
    alice create {"title":"groceries","poll":{"max_votes_per_user":2,"allow_change":true,"open":true}}
    alice {"kind":"share","user":"bob","role":"editor"}
    alice {"kind":"share","user":"carol","role":"voter"}
    alice {"kind":"share","user":"dave","role":"viewer"}
    alice {"kind":"add_item","text":"milk","item":"@milk"}
    alice {"kind":"add_item","text":"eggs","item":"@eggs","after":"@milk"}
"#;

const SETUP_OK: &str =
    "ok 1 create\nok 2 share\nok 3 share\nok 4 share\nok 5 add_item @milk\nok 6 add_item @eggs";

/// Runs SETUP then `script`, expecting SETUP to succeed and `expected` after it.
pub(super) fn check_after_setup(limits: &Limits, script: &str, expected: &str) -> super::ListState {
    check(
        limits,
        &format!("{SETUP}\n{script}"),
        &format!("{SETUP_OK}\n{expected}"),
    )
}

#[test]
fn create_validates_title_and_poll() {
    // Goal: create accepts 200-character titles and rejects blank, 201-character and poll-less-than-one input.
    let title_200 = "é".repeat(200);
    let title_201 = "é".repeat(201);
    let script = format!(
        r#"
        alice {{"kind":"rename","title":"too early"}}
        alice create {{"title":""}}
        alice create {{"title":"   "}}
        alice create {{"title":"{title_201}"}}
        alice create {{"title":"x","poll":{{"max_votes_per_user":0,"allow_change":true,"open":true}}}}
        alice create {{"title":"x","poll":{{"max_votes_per_user":1001,"allow_change":true,"open":true}}}}
        alice create {{"visibility":"public"}}
        alice create {{"title":"x","visibility":"secret"}}
        alice create {{"title":"{title_200}"}}
        bob create {{"title":"again"}}
        "#
    );
    let state = check(
        &Limits::default(),
        &script,
        r#"
        not_found: no such list
        invalid: field `title` is empty
        invalid: field `title` is empty
        invalid: field `title` is longer than 200 characters
        invalid: field `max_votes_per_user` must be between 1 and 1000
        invalid: field `max_votes_per_user` must be between 1 and 1000
        invalid: missing field `title`
        invalid: unknown variant `secret`, expected `private` or `public`
        ok 1 create
        conflict: list exists
        "#,
    );
    assert_eq!(state.title(), title_200);
    assert_eq!(state.visibility(), Visibility::Private);
    assert_eq!(state.owner(), Some(alias("alice")));
    assert!(state.poll().is_none());
}

#[test]
fn rename_is_owner_only_and_validated() {
    // Goal: only the owner renames, with the title rules, and non-members of a private list are forbidden.
    let state = check_after_setup(
        &Limits {
            title_chars_max: 9,
            ..Limits::default()
        },
        r#"
        alice {"kind":"rename","title":"shops"}
        alice {"kind":"rename","title":"all shops"}
        alice {"kind":"rename","title":"all shops!"}
        bob {"kind":"rename","title":"bobs"}
        eve {"kind":"rename","title":"eves"}
        "#,
        r#"
        ok 7 rename
        ok 8 rename
        invalid: field `title` is longer than 9 characters
        forbidden: role editor may not rename the list
        forbidden: not a member of this list
        "#,
    );
    assert_eq!(state.title(), "all shops");
}

#[test]
fn add_item_places_items_and_checks_rights() {
    // Goal: add_item puts items at the top or after another, derives ids from op ids, and enforces roles.
    let state = check_after_setup(
        &Limits::default(),
        r#"
        bob {"kind":"add_item","text":"bread","item":"@bread"}
        bob {"kind":"add_item","text":"jam","after":"@milk","item":"@jam","extra":"ignored"}
        carol {"kind":"add_item","text":"x"}
        dave {"kind":"add_item","text":"x"}
        eve {"kind":"add_item","text":"x"}
        bob {"kind":"add_item","text":"x","after":"@ghost"}
        bob {"kind":"add_item","text":"x","item":"@milk"}
        bob {"kind":"add_item","text":"x","item":"00000000-0000-0000-0000-000000000000"}
        bob {"kind":"add_item","text":" "}
        "#,
        r#"
        ok 7 add_item @bread
        ok 8 add_item @jam
        forbidden: role voter may not edit items
        forbidden: role viewer may not edit items
        forbidden: not a member of this list
        not_found: no such item @ghost
        conflict: item @milk exists
        invalid: field `item` must not be the nil uuid
        invalid: field `text` is empty
        "#,
    );
    let order: Vec<_> = display_order(&state);
    assert_eq!(
        order,
        vec![alias("bread"), alias("milk"), alias("jam"), alias("eggs")]
    );
}

#[test]
fn add_item_without_id_derives_it_from_the_op_id() {
    // Goal: the same op id always yields the same new item id, and it differs from the op id.
    let script = r#"
        alice create {"title":"t"}
        alice op=first {"kind":"add_item","text":"a"}
    "#;
    let first = super::script::run(&Limits::default(), script);
    let second = super::script::run(&Limits::default(), script);
    assert_eq!(first.events, second.events);
    let item = display_order(&first.state)[0];
    assert_ne!(item, alias("first"));
    assert_eq!(item.get_version_num(), 8);
}

#[test]
fn item_text_limit_is_in_bytes() {
    // Goal: 4096 bytes of text are accepted, 4097 are too large, for add and edit alike.
    let ok = "a".repeat(4096);
    let over = "a".repeat(4097);
    check_after_setup(
        &Limits::default(),
        &format!(
            r#"
            bob {{"kind":"add_item","text":"{ok}","item":"@big"}}
            bob {{"kind":"add_item","text":"{over}"}}
            bob {{"kind":"edit_item","item":"@milk","text":"{ok}"}}
            bob {{"kind":"edit_item","item":"@milk","text":"{over}"}}
            bob {{"kind":"edit_item","item":"@milk","text":""}}
            "#
        ),
        r#"
        ok 7 add_item @big
        too_large: field `text` is longer than 4096 bytes
        ok 8 edit_item
        too_large: field `text` is longer than 4096 bytes
        invalid: field `text` is empty
        "#,
    );
}

#[test]
fn items_max_is_a_conflict() {
    // Goal: with items_max 3, the third item fits and the fourth is refused until one is removed.
    check_after_setup(
        &Limits {
            items_max: 3,
            ..Limits::default()
        },
        r#"
        bob {"kind":"add_item","text":"c","item":"@c"}
        bob {"kind":"add_item","text":"d","item":"@d"}
        bob {"kind":"remove_item","item":"@c"}
        bob {"kind":"add_item","text":"d","item":"@d"}
        "#,
        r#"
        ok 7 add_item @c
        conflict: list is full (3 items)
        ok 8 remove_item
        ok 9 add_item @d
        "#,
    );
}

#[test]
fn edit_done_move_remove_and_media() {
    // Goal: each item op works for editors, finds missing items, and validates its input.
    let state = check_after_setup(
        &Limits {
            url_bytes_max: 30,
            ..Limits::default()
        },
        r#"
        bob {"kind":"edit_item","item":"@milk","text":"oat milk"}
        bob {"kind":"edit_item","item":"@ghost","text":"x"}
        bob {"kind":"set_done","item":"@eggs","done":true}
        bob {"kind":"set_done","item":"@ghost","done":true}
        bob {"kind":"move_item","item":"@milk","after":"@eggs"}
        bob {"kind":"move_item","item":"@milk","after":"@milk"}
        bob {"kind":"move_item","item":"@milk","after":"@ghost"}
        bob {"kind":"move_item","item":"@ghost"}
        bob {"kind":"attach_media","item":"@eggs","url":"https://x.io/e.png","media_type":"image"}
        bob {"kind":"attach_media","item":"@eggs","url":"ftp://x.io/e.png","media_type":"image"}
        bob {"kind":"attach_media","item":"@eggs","url":"https://","media_type":"file"}
        bob {"kind":"attach_media","item":"@eggs","url":"https://x.io/a b","media_type":"file"}
        bob {"kind":"attach_media","item":"@eggs","url":"https://x.io/aaaaaaaaaaaaaaaaaa","media_type":"video"}
        bob {"kind":"attach_media","item":"@eggs","url":"https://x.io","media_type":"gif"}
        bob {"kind":"attach_media","item":"@ghost","url":"HTTP://x.io","media_type":"file"}
        carol {"kind":"set_done","item":"@eggs","done":false}
        bob {"kind":"remove_item","item":"@milk"}
        bob {"kind":"remove_item","item":"@milk"}
        "#,
        r#"
        ok 7 edit_item
        not_found: no such item @ghost
        ok 8 set_done
        not_found: no such item @ghost
        ok 9 move_item
        invalid: field `after` must not be the moved item
        not_found: no such item @ghost
        not_found: no such item @ghost
        ok 10 attach_media
        invalid: field `url` must be an http:// or https:// url
        invalid: field `url` must be an http:// or https:// url
        invalid: field `url` must be an http:// or https:// url
        too_large: field `url` is longer than 30 bytes
        invalid: unknown variant `gif`, expected one of `image`, `video`, `file`
        not_found: no such item @ghost
        forbidden: role voter may not edit items
        ok 11 remove_item
        not_found: no such item @milk
        "#,
    );
    assert_eq!(display_order(&state), vec![alias("eggs")]);
    let snapshot: serde_json::Value =
        serde_json::from_slice(&state.snapshot_json()).expect("snapshot is json");
    let eggs = &snapshot["items"][0];
    assert_eq!(eggs["done"], true);
    assert_eq!(
        eggs["media"],
        serde_json::json!({"url":"https://x.io/e.png","media_type":"image"})
    );
    assert_eq!(eggs["updated_at_ms"], 1_000_000 + 14 * 10);
}

#[test]
fn move_to_top_and_after() {
    // Goal: moving with no `after` puts the item first, and `after` places it right behind that item.
    let state = check_after_setup(
        &Limits::default(),
        r#"
        alice {"kind":"add_item","text":"tea","item":"@tea","after":"@eggs"}
        alice {"kind":"move_item","item":"@tea"}
        alice {"kind":"move_item","item":"@milk","after":"@eggs"}
        alice {"kind":"move_item","item":"@eggs","after":null}
        "#,
        "ok 7 add_item @tea\nok 8 move_item\nok 9 move_item\nok 10 move_item",
    );
    assert_eq!(
        display_order(&state),
        vec![alias("eggs"), alias("tea"), alias("milk")]
    );
}

#[test]
fn share_and_unshare_rules() {
    // Goal: only the owner shares; owner role, the owner and unknown users are refused; roles change in place.
    let state = check_after_setup(
        &Limits::default(),
        r#"
        alice {"kind":"share","user":"eve","role":"owner"}
        alice {"kind":"share","user":"alice","role":"editor"}
        alice {"kind":"share","user":"nobody","role":"editor"}
        bob {"kind":"share","user":"eve","role":"editor"}
        alice {"kind":"share","user":"carol","role":"editor"}
        alice {"kind":"unshare","user":"eve"}
        alice {"kind":"unshare","user":"alice"}
        bob {"kind":"unshare","user":"dave"}
        alice {"kind":"unshare","user":"dave"}
        dave {"kind":"vote","item":"@milk"}
        "#,
        r#"
        invalid: field `role` must not be owner
        invalid: the owner's role cannot change
        not_found: no such user
        forbidden: role editor may not share the list
        ok 7 share
        not_found: no such member
        invalid: the owner cannot be unshared
        forbidden: role editor may not unshare the list
        ok 8 unshare
        forbidden: not a member of this list
        "#,
    );
    assert_eq!(state.role_of(alias("carol")), Some(Role::Editor));
    assert_eq!(state.role_of(alias("dave")), None);
    assert!(!state.can_view(alias("dave")));
    let members: Vec<_> = state
        .members()
        .map(|(user, name, role)| (user, name.to_owned(), role))
        .collect();
    assert_eq!(
        members[0],
        (alias("alice"), "alice".to_owned(), Role::Owner)
    );
    assert_eq!(members.len(), 3);
    assert_eq!(state.member_count(), 3);
}

#[test]
fn members_max_is_a_conflict_but_role_changes_still_work() {
    // Goal: with members_max 2 (owner included), a second share fails while changing a member's role works.
    check(
        &Limits {
            members_max: 2,
            ..Limits::default()
        },
        r#"
        alice create {"title":"t"}
        alice {"kind":"share","user":"bob","role":"viewer"}
        alice {"kind":"share","user":"carol","role":"viewer"}
        alice {"kind":"share","user":"bob","role":"editor"}
        alice {"kind":"unshare","user":"bob"}
        alice {"kind":"share","user":"carol","role":"viewer"}
        "#,
        r#"
        ok 1 create
        ok 2 share
        conflict: list has the most members allowed (2)
        ok 3 share
        ok 4 unshare
        ok 5 share
        "#,
    );
}

#[test]
fn parse_errors_are_invalid_and_named() {
    // Goal: bad op input is answered with `invalid` and a message naming the problem, never a panic.
    check_after_setup(
        &Limits::default(),
        r#"
        bob {"kind":"paint","item":"@milk"}
        bob {"kind":"add_item"}
        bob {"kind":"edit_item","item":"not-a-uuid","text":"x"}
        bob {"kind":"set_done","item":"@milk","done":"yes"}
        bob {"item":"@milk"}
        bob {"kind":7}
        bob {"kind":"vote",
        "#,
        r#"
        invalid: unknown op kind "paint"
        invalid: missing field `text`
        invalid: UUID parsing failed: invalid character: found `n` at 0
        invalid: invalid type: string "yes", expected a boolean
        invalid: missing field `kind`
        invalid: field `kind` must be a string
        invalid: malformed json: EOF while parsing a value at line 1 column 15
        "#,
    );
}

#[test]
fn parse_op_never_panics_on_odd_input() {
    // Goal: non-objects, deep nesting and long kinds are rejected as invalid without panicking.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!(
        "{{\"kind\":\"vote\",\"x\":{}1{}}}",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    let long_kind = format!("{{\"kind\":\"{}\"}}", "k".repeat(10_000));
    for input in [
        "",
        "null",
        "[]",
        "\"vote\"",
        "42",
        "{",
        "\u{0}",
        &deep,
        &deep_object,
        &long_kind,
    ] {
        let rejection = parse_op(input).expect_err("odd input is rejected");
        assert_eq!(rejection.code, RejectCode::Invalid, "{input:.40}");
        assert!(
            rejection.message.len() < 200,
            "message stays short: {}",
            rejection.message
        );
    }
    let parsed =
        parse_op(r#"{"kind":"move_item","item":"00000000-0000-0000-0000-000000000001","x":[1]}"#);
    assert!(matches!(
        parsed,
        Ok(super::Op::MoveItem { after: None, .. })
    ));
}

#[test]
fn retried_op_ids_are_refused_and_remembered() {
    // Goal: an op id is applied once; op_seq answers with its seq while the window keeps it.
    let state = check_after_setup(
        &Limits::default(),
        r#"
        bob op=retry {"kind":"add_item","text":"x","item":"@x"}
        bob op=retry {"kind":"add_item","text":"x","item":"@x"}
        "#,
        r#"
        ok 7 add_item @x
        conflict: op @retry already applied at seq 7
        "#,
    );
    assert_eq!(state.op_seq(alias("retry")), Some(7));
    assert_eq!(state.op_seq(alias("never")), None);
}

#[test]
fn op_id_window_prunes_by_count_and_age() {
    // Goal: the window keeps at least op_ids_kept_min ids, drops older-than-age ones beyond that, and never exceeds the cap.
    let limits = Limits {
        op_ids_kept_min: 2,
        op_ids_kept_ms_min: 100,
        op_ids_kept_max: 4,
        ..Limits::default()
    };
    let state = check(
        &limits,
        r#"
        alice t=0 op=o1 create {"title":"t"}
        alice t=0 op=o2 {"kind":"rename","title":"a"}
        alice t=0 op=o3 {"kind":"rename","title":"b"}
        alice t=0 op=o4 {"kind":"rename","title":"c"}
        alice t=0 op=o5 {"kind":"rename","title":"d"}
        alice t=150 op=o6 {"kind":"rename","title":"e"}
        "#,
        "ok 1 create\nok 2 rename\nok 3 rename\nok 4 rename\nok 5 rename\nok 6 rename",
    );
    // After o5 the cap of 4 dropped o1; at t=150 everything older than 100 ms beyond the minimum of 2 went.
    let kept: Vec<_> = ["o1", "o2", "o3", "o4", "o5", "o6"]
        .iter()
        .map(|name| state.op_seq(alias(name)))
        .collect();
    assert_eq!(kept, vec![None, None, None, None, Some(5), Some(6)]);
}

#[test]
fn snapshot_json_has_the_protocol_shape() {
    // Goal: the client snapshot matches PROTOCOL.md exactly, with the owner among the members.
    let state = check(
        &Limits::default(),
        r#"
        alice t=7 create {"title":"g","visibility":"public","poll":{"max_votes_per_user":1,"allow_change":false,"open":true}}
        alice t=8 {"kind":"share","user":"bob","role":"voter"}
        alice t=9 {"kind":"add_item","text":"milk","item":"@milk"}
        bob t=10 {"kind":"vote","item":"@milk"}
        "#,
        "ok 1 create\nok 2 share\nok 3 add_item @milk\nok 4 vote votes=1",
    );
    let expected = serde_json::json!({
        "list": LIST_ID, "seq": 4, "title": "g", "owner": alias("alice"), "visibility": "public",
        "members": [
            {"user": alias("alice"), "username": "alice", "role": "owner"},
            {"user": alias("bob"), "username": "bob", "role": "voter"},
        ],
        "poll": {"max_votes_per_user": 1, "allow_change": false, "open": true},
        "items": [{"id": alias("milk"), "text": "milk", "done": false, "media": null, "votes": 1,
                   "created_by": alias("alice"), "updated_at_ms": 9}],
    });
    let actual: serde_json::Value =
        serde_json::from_slice(&state.snapshot_json()).expect("snapshot is json");
    assert_eq!(actual, expected);
    assert_eq!(state.item_count(), 1);
    assert!(state.can_view(alias("eve")));
    assert_eq!(user("nobody"), None);
}

fn display_order(state: &super::ListState) -> Vec<uuid::Uuid> {
    let snapshot: serde_json::Value =
        serde_json::from_slice(&state.snapshot_json()).expect("snapshot is json");
    let items = snapshot["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|item| item["id"].as_str().and_then(|id| id.parse().ok()))
        .collect()
}
