//! The pure decision: `decide` validates and authorizes a command against the state and returns the
//! change; `apply` and `create` wrap it with event building and `evolve`.
//!
//! Checks run in a fixed order so the same command always gets the same answer: the list exists,
//! the op id is new, the user may do this, the input is well formed, then the state allows it.

use uuid::Uuid;

use super::decide_items;
use super::decide_members;
use super::decide_poll;
use super::digest::{create_digest, op_digest};
use super::event::{Change, Event};
use super::evolve::evolve;
use super::op::{Command, CreateList, Op};
use super::state::ListState;
use super::types::{
    Limits, PollSettings, RejectCode, Rejection, Role, UserId, UserRef, Visibility,
};

/// Validates and authorizes `cmd` against `state` and returns what it changes. No IO, no clock, no
/// randomness: the same state and command always give the same answer.
pub fn decide(state: &ListState, cmd: &Command, limits: &Limits) -> Result<Change, Rejection> {
    if !state.exists() {
        return Err(Rejection::new(RejectCode::NotFound, "no such list"));
    }
    // The node answers retries from `op_seq` before deciding; this guards the window's uniqueness.
    if let Some(seq) = state.op_seq(cmd.op_id) {
        return Err(Rejection::new(
            RejectCode::Conflict,
            format!("op {} already applied at seq {seq}", cmd.op_id),
        ));
    }
    let user = cmd.by.user_id;
    match &cmd.op {
        Op::Rename { title } => {
            require_owner(state, user, "rename the list")?;
            validate_title(title, limits)?;
            Ok(Change::Rename {
                title: title.clone(),
            })
        }
        Op::AddItem { text, after, item } => {
            decide_items::add_item(state, cmd, text, *after, *item, limits)
        }
        Op::EditItem { item, text } => decide_items::edit_item(state, user, *item, text, limits),
        Op::SetDone { item, done } => decide_items::set_done(state, user, *item, *done),
        Op::MoveItem { item, after } => decide_items::move_item(state, user, *item, *after),
        Op::RemoveItem { item } => decide_items::remove_item(state, user, *item),
        Op::AttachMedia {
            item,
            url,
            media_type,
        } => decide_items::attach_media(state, user, *item, url, *media_type, limits),
        Op::Share { user: _, role } => decide_members::share(state, cmd, *role, limits),
        Op::Unshare { user: username } => decide_members::unshare(state, user, username),
        Op::SetPoll {
            max_votes_per_user,
            allow_change,
            open,
            close_at_ms,
        } => {
            let poll = PollSettings {
                max_votes_per_user: *max_votes_per_user,
                allow_change: *allow_change,
                open: *open,
                close_at_ms: *close_at_ms,
            };
            decide_poll::set_poll(state, user, poll, limits)
        }
        Op::SetVisibility { visibility } => {
            require_owner(state, user, "change the visibility")?;
            Ok(Change::SetVisibility {
                visibility: *visibility,
            })
        }
        Op::Vote { item } => decide_poll::vote(state, user, *item, event_time(state, cmd.at_ms)),
        Op::Unvote { item } => {
            decide_poll::unvote(state, user, *item, event_time(state, cmd.at_ms))
        }
    }
}

/// The time of the next event of `state` for a command stamped `at_ms`: never below the
/// previous event's, so a list's time (which prunes its op-id window) never runs backwards,
/// whatever the clock that stamped the command did.
pub fn event_time(state: &ListState, at_ms: u64) -> u64 {
    at_ms.max(state.clock_ms())
}

/// Slack on the owner's measured elapsed time: it and `at_ms` come from two monotonic readings
/// that round differently.
const ELAPSED_SLACK_MS: u64 = 10;

/// The op-id window's clock for an event at `at_ms`, when it differs from what replay would
/// infer (the previous window clock plus the growth of `at_ms`): it grows by at most the
/// owner's measured `elapsed_ms` (plus slack), and not at all when that is unknown.
fn window_time(state: &ListState, at_ms: u64, elapsed_ms: Option<u64>) -> Option<u64> {
    let previous = state.window_clock_ms()?;
    let at_growth = at_ms.saturating_sub(state.clock_ms());
    let growth = match elapsed_ms {
        Some(elapsed) => at_growth.min(elapsed.saturating_add(ELAPSED_SLACK_MS)),
        None => 0,
    };
    (growth != at_growth).then_some(previous + growth)
}

/// Decides `cmd`, builds its event (`seq = state.seq() + 1`) and folds it in. On `Ok` the state advanced;
/// on `Err` it is unchanged.
pub fn apply(state: &mut ListState, cmd: &Command, limits: &Limits) -> Result<Event, Rejection> {
    let change = decide(state, cmd, limits)?;
    let at_ms = event_time(state, cmd.at_ms);
    let event = Event {
        seq: state.seq() + 1,
        op_id: cmd.op_id,
        by: cmd.by.user_id,
        at_ms,
        op_digest: op_digest(cmd.by.user_id, &cmd.op),
        window_ms: window_time(state, at_ms, cmd.elapsed_ms),
        change,
    };
    evolve(state, &event, limits);
    Ok(event)
}

/// Creates the list: the first event (seq 1). The state must not exist yet.
pub fn create(
    state: &mut ListState,
    op_id: Uuid,
    by: &UserRef,
    at_ms: u64,
    create: &CreateList,
    limits: &Limits,
) -> Result<Event, Rejection> {
    if state.exists() {
        return Err(Rejection::new(RejectCode::Conflict, "list exists"));
    }
    validate_title(&create.title, limits)?;
    if let Some(poll) = &create.poll {
        validate_poll(poll, limits)?;
    }
    let change = Change::Create {
        title: create.title.clone(),
        owner: by.user_id,
        owner_name: by.username.clone(),
        visibility: create.visibility,
        poll: create.poll.clone(),
    };
    let event = Event {
        seq: 1,
        op_id,
        by: by.user_id,
        at_ms,
        op_digest: create_digest(by.user_id, create),
        window_ms: None,
        change,
    };
    evolve(state, &event, limits);
    Ok(event)
}

/// Rejects anyone but the owner.
pub(crate) fn require_owner(
    state: &ListState,
    user: UserId,
    action: &str,
) -> Result<(), Rejection> {
    match state.role_of(user) {
        Some(Role::Owner) => Ok(()),
        Some(role) => Err(forbidden(format!(
            "role {} may not {action}",
            role.as_str()
        ))),
        None => Err(not_a_member(state, action)),
    }
}

/// Rejects anyone who may not change items (only the owner and editors may).
pub(crate) fn require_editor(state: &ListState, user: UserId) -> Result<(), Rejection> {
    match state.role_of(user) {
        Some(role) if role.can_edit_items() => Ok(()),
        Some(role) => Err(forbidden(format!(
            "role {} may not edit items",
            role.as_str()
        ))),
        None => Err(not_a_member(state, "edit items")),
    }
}

/// Rejects anyone who may not vote. On a public list everyone signed in may vote, viewers included,
/// since a non-member could anyway.
pub(crate) fn require_voter(state: &ListState, user: UserId) -> Result<(), Rejection> {
    if state.visibility() == Visibility::Public {
        return Ok(());
    }
    match state.role_of(user) {
        Some(role) if role.can_vote() => Ok(()),
        Some(role) => Err(forbidden(format!("role {} may not vote", role.as_str()))),
        None => Err(not_a_member(state, "vote")),
    }
}

fn not_a_member(state: &ListState, action: &str) -> Rejection {
    match state.visibility() {
        Visibility::Private => forbidden("not a member of this list"),
        Visibility::Public => forbidden(format!("only members may {action}")),
    }
}

fn forbidden(message: impl Into<String>) -> Rejection {
    Rejection::new(RejectCode::Forbidden, message)
}

/// A title is 1..=`title_chars_max` characters and not only whitespace.
pub(crate) fn validate_title(title: &str, limits: &Limits) -> Result<(), Rejection> {
    if title.trim().is_empty() {
        return Err(Rejection::new(
            RejectCode::Invalid,
            "field `title` is empty",
        ));
    }
    if title.chars().count() > limits.title_chars_max {
        return Err(Rejection::new(
            RejectCode::Invalid,
            format!(
                "field `title` is longer than {} characters",
                limits.title_chars_max
            ),
        ));
    }
    Ok(())
}

/// A poll allows 1..=`max_votes_per_user_cap` votes per user.
pub(crate) fn validate_poll(poll: &PollSettings, limits: &Limits) -> Result<(), Rejection> {
    let cap = limits.max_votes_per_user_cap;
    if poll.max_votes_per_user == 0 || poll.max_votes_per_user > cap {
        return Err(Rejection::new(
            RejectCode::Invalid,
            format!("field `max_votes_per_user` must be between 1 and {cap}"),
        ));
    }
    Ok(())
}
