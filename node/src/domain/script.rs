//! The test script runner (STYLE 15): a compact op script in, a transcript of outcomes out.
//!
//! One command per line: `<user> [t=<ms>] [op=<name>] <op json>` or `<user> create <create json>`.
//! In the JSON, `@name` stands for a fixed uuid (users by name, anything else by a hash of the
//! name), and the transcript turns those uuids back into `@name`. Ops go through `parse_op`, so
//! parse errors show up in the transcript like rejections. Users: alice, bob, carol, dave, eve;
//! sharing with any other username resolves to no user. Blank lines and `#` comments are skipped.

use uuid::Uuid;

use super::{
    apply, create, parse_create, parse_op, Change, Command, Event, Limits, ListState, UserRef,
};

/// The list every script runs on.
pub(super) const LIST_ID: Uuid = Uuid::from_u128(0x1157_0000_0000_0000_0000_0000_0000_0001);

const USERS: &[(&str, u128)] = &[
    ("alice", 0xa11ce),
    ("bob", 0xb0b),
    ("carol", 0xca201),
    ("dave", 0xda5e),
    ("eve", 0xe5e),
];

/// What a script run produced.
pub(super) struct Run {
    pub(super) state: ListState,
    pub(super) events: Vec<Event>,
    pub(super) transcript: String,
}

/// Runs the script and asserts its transcript (one outcome per command line) equals `expected`,
/// ignoring indentation and blank lines. Returns the final state for further checks.
pub(super) fn check(limits: &Limits, script: &str, expected: &str) -> ListState {
    let run = run(limits, script);
    assert_eq!(run.transcript, normalize(expected), "transcript differs");
    run.state
}

/// Runs the script: every accepted command also passes `check_invariants`.
pub(super) fn run(limits: &Limits, script: &str) -> Run {
    let mut aliases = Aliases::default();
    for (name, _) in USERS {
        aliases.uuid(name);
    }
    let mut state = ListState::new(LIST_ID);
    let mut events = Vec::new();
    let mut transcript = Vec::new();
    let lines = script
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    for (index, line) in lines.enumerate() {
        let outcome = run_line(&mut state, &mut aliases, limits, index, line);
        let text = match outcome {
            Ok(event) => {
                let text = describe(&event);
                events.push(event);
                assert_eq!(
                    super::check_invariants(&state, limits),
                    Ok(()),
                    "after {line}"
                );
                text
            }
            Err(rejection) => format!("{}: {}", rejection.code.as_str(), rejection.message),
        };
        transcript.push(aliases.restore(&text));
    }
    Run {
        state,
        events,
        transcript: transcript.join("\n"),
    }
}

fn run_line(
    state: &mut ListState,
    aliases: &mut Aliases,
    limits: &Limits,
    index: usize,
    line: &str,
) -> Result<Event, super::Rejection> {
    let json_start = line.find('{').unwrap_or(line.len());
    let (prefix, json) = line.split_at(json_start);
    let json = aliases.substitute(json);
    let mut words = prefix.split_whitespace();
    let by = user(words.next().expect("script line names a user")).expect("script user is known");
    let mut at_ms = 1_000_000 + index as u64 * 10;
    let mut op_id = Uuid::from_u128(0x0b_0000 + index as u128);
    let mut is_create = false;
    for word in words {
        if let Some(time) = word.strip_prefix("t=") {
            at_ms = time.parse().expect("t= takes milliseconds");
        } else if let Some(name) = word.strip_prefix("op=") {
            op_id = aliases.uuid(name);
        } else {
            assert_eq!(word, "create", "unknown script word");
            is_create = true;
        }
    }
    if is_create {
        let create_list = parse_create(&json)?;
        return create(state, op_id, &by, at_ms, &create_list, limits);
    }
    let op = parse_op(&json)?;
    let target = match &op {
        super::Op::Share { user: username, .. } => user(username),
        _ => None,
    };
    apply(
        state,
        &Command {
            op_id,
            by,
            at_ms,
            // Script times are real: the window clock follows them.
            elapsed_ms: Some(u64::MAX),
            op,
            target,
        },
        limits,
    )
}

fn describe(event: &Event) -> String {
    let kind = serde_json::to_value(&event.change)
        .ok()
        .and_then(|value| {
            value
                .get("kind")
                .and_then(|kind| kind.as_str().map(str::to_owned))
        })
        .unwrap_or_default();
    match &event.change {
        Change::Vote { votes, .. } | Change::Unvote { votes, .. } => {
            format!("ok {} {kind} votes={votes}", event.seq)
        }
        Change::AddItem { item, .. } => format!("ok {} {kind} {item}", event.seq),
        _ => format!("ok {} {kind}", event.seq),
    }
}

/// A known script user.
pub(super) fn user(name: &str) -> Option<UserRef> {
    let (_, id) = USERS.iter().find(|(known, _)| *known == name)?;
    Some(UserRef {
        user_id: Uuid::from_u128(*id),
        username: name.to_owned(),
    })
}

/// The uuid a script writes as `@name`.
pub(super) fn alias(name: &str) -> Uuid {
    Aliases::default().uuid(name)
}

#[derive(Default)]
struct Aliases {
    known: Vec<(String, Uuid)>,
}

impl Aliases {
    fn uuid(&mut self, name: &str) -> Uuid {
        let id = match USERS.iter().find(|(known, _)| *known == name) {
            Some((_, id)) => Uuid::from_u128(*id),
            // FNV-1a, widened: any fixed, distinct-enough mapping will do for tests.
            None => Uuid::from_u128(name.bytes().fold(
                0x6c62_272e_07bb_0142_62b8_2175_6295_c58d,
                |hash, byte| {
                    (hash ^ u128::from(byte))
                        .wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
                },
            )),
        };
        if !self.known.iter().any(|(known, _)| known == name) {
            self.known.push((name.to_owned(), id));
        }
        id
    }

    fn substitute(&mut self, json: &str) -> String {
        let mut out = String::with_capacity(json.len());
        let mut rest = json;
        while let Some(at) = rest.find('@') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            out.push_str(&self.uuid(&after[..end]).to_string());
            rest = &after[end..];
        }
        out.push_str(rest);
        out
    }

    fn restore(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, id) in &self.known {
            out = out.replace(&id.to_string(), &format!("@{name}"));
        }
        out
    }
}

fn normalize(expected: &str) -> String {
    let lines: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines.join("\n")
}
