//! Property tests: random command sequences from five users over a handful of items, with small
//! limits, keep every invariant; rejections change nothing; replay and the codecs reproduce the state.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed};
use uuid::Uuid;

use super::{
    apply, check_invariants, create, decode_batch, decode_snapshot, encode_batch, encode_snapshot,
    evolve, Command, CreateList, Event, Limits, ListState, MediaType, Op, PollSettings, Role,
    UserRef, Visibility,
};

/// alice owns the list; eve is never shared with at first, so she votes only when the list is public.
const USERNAMES: &[&str] = &["alice", "bob", "carol", "dave", "eve", "nobody"];
const ITEM_POOL_SIZE: usize = 6;

/// One random command, as indices and small numbers so proptest can shrink it.
#[derive(Debug, Clone)]
struct Step {
    user: usize,
    kind: u8,
    a: usize,
    b: usize,
    n: u32,
    flag: bool,
    dt_ms: u64,
    reuse_op_id: bool,
}

fn step() -> impl Strategy<Value = Step> {
    // The owner acts often, or most commands would be refused for lack of rights.
    let user = prop_oneof![2 => Just(0usize), 3 => 1..5usize];
    (
        user,
        0..16u8,
        0..ITEM_POOL_SIZE,
        0..=ITEM_POOL_SIZE,
        0..4u32,
        any::<bool>(),
        0..40u64,
        prop::bool::weighted(0.05),
    )
        .prop_map(|(user, kind, a, b, n, flag, dt_ms, reuse_op_id)| Step {
            user,
            kind,
            a,
            b,
            n,
            flag,
            dt_ms,
            reuse_op_id,
        })
}

fn small_limits() -> Limits {
    Limits {
        title_chars_max: 10,
        item_text_bytes_max: 8,
        items_max: 4,
        members_max: 3,
        url_bytes_max: 20,
        max_votes_per_user_cap: 3,
        op_ids_kept_min: 3,
        op_ids_kept_ms_min: 50,
        op_ids_kept_max: 8,
    }
}

fn user_ref(index: usize) -> UserRef {
    UserRef {
        user_id: Uuid::from_u128(0xa000 + index as u128),
        username: USERNAMES[index].to_owned(),
    }
}

fn item_id(index: usize) -> Uuid {
    Uuid::from_u128(0x17e0 + index as u128)
}

/// Item ops name a pool item, or with `a` = 5 the first item shown (so derived ids get targeted too).
fn op_of(step: &Step, state: &ListState, at_ms: u64) -> Op {
    let first_item = state.order.first().copied();
    let item = if step.a == ITEM_POOL_SIZE - 1 {
        first_item.unwrap_or(item_id(step.a))
    } else {
        item_id(step.a)
    };
    let after = (step.b < ITEM_POOL_SIZE).then(|| item_id(step.b));
    let text = "x".repeat(step.n as usize * 3);
    match step.kind {
        0 => Op::Rename {
            title: "t".repeat(step.n as usize * 4),
        },
        1 | 2 => Op::AddItem {
            text: format!("i{text}"),
            after,
            item: (step.flag || step.n > 0).then_some(item_id(step.a)),
        },
        3 => Op::EditItem { item, text },
        4 => Op::SetDone {
            item,
            done: step.flag,
        },
        5 => Op::MoveItem { item, after },
        6 => Op::RemoveItem { item },
        7 => {
            let url = if step.flag {
                "https://m.io/x"
            } else {
                "ftp://m.io/x"
            };
            Op::AttachMedia {
                item,
                url: url.to_owned(),
                media_type: MediaType::Image,
            }
        }
        8 => {
            let role = [Role::Owner, Role::Editor, Role::Voter, Role::Viewer][step.n as usize];
            Op::Share {
                user: USERNAMES[step.a].to_owned(),
                role,
            }
        }
        9 => Op::Unshare {
            user: USERNAMES[step.a].to_owned(),
        },
        10 => Op::SetPoll {
            max_votes_per_user: step.n,
            allow_change: step.n != 1,
            open: step.a != 0,
            close_at_ms: (step.b == 0).then_some(at_ms + 300),
        },
        11 => Op::SetVisibility {
            visibility: if step.flag {
                Visibility::Public
            } else {
                Visibility::Private
            },
        },
        15 => Op::Unvote { item },
        _ => Op::Vote { item },
    }
}

fn command_of(step: &Step, state: &ListState, index: usize, at_ms: u64) -> Command {
    let reused = if step.reuse_op_id { index / 2 } else { index };
    let op = op_of(step, state, at_ms);
    let target = match &op {
        Op::Share { user, .. } => USERNAMES
            .iter()
            .position(|name| name == user)
            .filter(|i| *i < 5)
            .map(user_ref),
        _ => None,
    };
    Command {
        op_id: Uuid::from_u128(0xf000_0000 + reused as u128),
        by: user_ref(step.user),
        at_ms,
        // Sometimes a fresh owner (no measured time), sometimes one that measured little.
        elapsed_ms: match reused % 3 {
            0 => None,
            1 => Some(5),
            _ => Some(u64::MAX),
        },
        op,
        target,
    }
}

/// Runs the steps, asserting the per-step properties; returns the final state and all events.
fn run_steps(steps: &[Step], visibility: Visibility, limits: &Limits) -> (ListState, Vec<Event>) {
    let mut state = ListState::new(Uuid::from_u128(0x1157));
    let poll = PollSettings {
        max_votes_per_user: 2,
        allow_change: true,
        open: true,
        close_at_ms: None,
    };
    let create_list = CreateList {
        title: "poll".to_owned(),
        visibility,
        poll: Some(poll),
    };
    let first = create(
        &mut state,
        Uuid::from_u128(0xc0),
        &user_ref(0),
        0,
        &create_list,
        limits,
    );
    let mut events = vec![first.expect("the fixed create is valid")];
    let mut at_ms = 0;
    for (index, step) in steps.iter().enumerate() {
        at_ms += step.dt_ms;
        let cmd = command_of(step, &state, index, at_ms);
        let before = state.clone();
        match apply(&mut state, &cmd, limits) {
            Ok(event) => {
                assert_eq!(check_invariants(&state, limits), Ok(()), "after {cmd:?}");
                assert_eq!(state.op_seq(cmd.op_id), Some(event.seq));
                events.push(event);
            }
            Err(_) => assert_eq!(
                state, before,
                "a rejected command changed the state: {cmd:?}"
            ),
        }
        if index % 7 == 3 {
            let decoded = decode_snapshot(&encode_snapshot(&state)).expect("snapshot decodes");
            assert_eq!(decoded, state);
        }
    }
    (state, events)
}

proptest! {
    #![proptest_config(Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x11_57_0e_ed),
        ..Config::default()
    })]

    #[test]
    fn random_commands_keep_invariants_and_replay(
        steps in prop::collection::vec(step(), 0..120),
        public in any::<bool>(),
    ) {
        // Goal: any command sequence keeps the invariants, and events, replay and codecs agree on the state.
        let limits = small_limits();
        let visibility = if public { Visibility::Public } else { Visibility::Private };
        let (state, events) = run_steps(&steps, visibility, &limits);
        let mut replayed = ListState::new(state.list_id());
        for event in &events {
            evolve(&mut replayed, event, &limits);
        }
        prop_assert_eq!(&replayed, &state);
        let decoded = decode_batch(&encode_batch(&events)).expect("batch decodes");
        prop_assert_eq!(&decoded, &events);
        let decoded_state = decode_snapshot(&encode_snapshot(&state)).expect("snapshot decodes");
        prop_assert_eq!(&decoded_state, &state);
        prop_assert!(state.op_count_for_test() <= limits.op_ids_kept_max);
    }
}

#[test]
fn generator_reaches_every_change_kind() {
    // Goal: the random commands are not all rejected: across fixed-seed runs every change kind is produced.
    let mut runner = proptest::test_runner::TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(7),
        ..Config::default()
    });
    let strategy = prop::collection::vec(step(), 100);
    let mut kinds = std::collections::BTreeSet::new();
    let mut votes = 0;
    for round in 0..40 {
        let steps = strategy
            .new_tree(&mut runner)
            .expect("strategy generates")
            .current();
        let visibility = if round % 2 == 0 {
            Visibility::Public
        } else {
            Visibility::Private
        };
        let (_, events) = run_steps(&steps, visibility, &small_limits());
        for event in &events {
            let value = serde_json::to_value(&event.change).expect("change serializes");
            kinds.insert(value["kind"].as_str().unwrap_or_default().to_owned());
            votes += usize::from(event.change.is_vote());
        }
    }
    assert_eq!(kinds.len(), 14, "kinds seen: {kinds:?}");
    assert!(votes > 30, "only {votes} vote events");
}
