//! Folding events into the state. Events were decided against the state they are folded into, so a
//! mismatch is a programming or storage error and panics (the list actor stops; the node does not).

use listwire_storage::mutants::{self, Mutant};

use super::event::{Change, Event};
use super::invariants::{check_invariants, check_touched};
use super::state::{AppliedOp, Item, ListState, Member, OpRecord};
use super::types::{ItemId, Limits, Media, PollSettings, Role};

/// Above this many items plus voters, debug builds check only what an event touched, not every
/// invariant, so debug runs of hot polls and full lists stay linear overall.
const FULL_CHECK_SIZE_MAX: usize = 2_000;

/// Folds an event in: `event.seq` must be `state.seq() + 1` and the change must have been decided
/// against this state. Also remembers `event.op_id` in the dedupe window and prunes the window.
pub fn evolve(state: &mut ListState, event: &Event, limits: &Limits) {
    assert_eq!(
        event.seq,
        state.seq + 1,
        "event seq must follow the state's seq"
    );
    assert!(
        !state.op_index.contains_key(&event.op_id),
        "op id {} is already in the dedupe window",
        event.op_id
    );
    assert_eq!(
        matches!(event.change, Change::Create { .. }),
        !state.exists(),
        "create comes first and only once"
    );
    fold(state, event);
    state.seq = event.seq;
    remember_op(state, event, limits);
    // The vote-limit mutant turns the self-check off too, as a release build has it, so that
    // the simulations' checkers, not this assertion, are what must catch it.
    if cfg!(debug_assertions) && !mutants::active(Mutant::IgnoreVoteLimit) {
        if state.items.len() + state.votes.len() <= FULL_CHECK_SIZE_MAX {
            debug_assert_eq!(check_invariants(state, limits), Ok(()));
        } else {
            debug_assert_eq!(check_touched(state, event, limits), Ok(()));
        }
    }
}

fn fold(state: &mut ListState, event: &Event) {
    match &event.change {
        Change::AddItem { .. }
        | Change::EditItem { .. }
        | Change::SetDone { .. }
        | Change::MoveItem { .. }
        | Change::RemoveItem { .. }
        | Change::AttachMedia { .. } => fold_item(state, event),
        Change::Vote { item, votes } => fold_vote(state, event, *item, *votes),
        Change::Unvote { item, votes } => fold_unvote(state, event, *item, *votes),
        _ => fold_list(state, &event.change),
    }
}

/// Folds changes to the list itself: create, title, members, poll settings, visibility.
fn fold_list(state: &mut ListState, change: &Change) {
    match change {
        Change::Create {
            title,
            owner,
            owner_name,
            visibility,
            poll,
        } => {
            state.title = title.clone();
            state.owner = Some(*owner);
            state.members.insert(
                *owner,
                Member {
                    username: owner_name.clone(),
                    role: Role::Owner,
                },
            );
            state.visibility = *visibility;
            state.poll = poll.clone();
        }
        Change::Rename { title } => state.title = title.clone(),
        Change::Share {
            user,
            username,
            role,
        } => {
            state.members.insert(
                *user,
                Member {
                    username: username.clone(),
                    role: *role,
                },
            );
        }
        Change::Unshare { user, .. } => {
            let removed = state.members.remove(user);
            assert!(
                removed.is_some_and(|member| member.role != Role::Owner),
                "unshared a non-member or the owner"
            );
        }
        Change::SetPoll {
            max_votes_per_user,
            allow_change,
            open,
            close_at_ms,
        } => {
            state.poll = Some(PollSettings {
                max_votes_per_user: *max_votes_per_user,
                allow_change: *allow_change,
                open: *open,
                close_at_ms: *close_at_ms,
            });
        }
        Change::SetVisibility { visibility } => state.visibility = *visibility,
        _ => unreachable!("fold_list is called with list changes only"),
    }
}

/// Folds changes to one item's content or position.
fn fold_item(state: &mut ListState, event: &Event) {
    let at_ms = event.at_ms;
    match &event.change {
        Change::AddItem { item, text, after } => {
            let index = after.map_or(0, |after_id| position(state, after_id) + 1);
            state.order.insert(index, *item);
            let new_item = Item {
                text: text.clone(),
                done: false,
                media: None,
                votes: 0,
                created_by: event.by,
                updated_at_ms: at_ms,
            };
            let previous = state.items.insert(*item, new_item);
            assert!(previous.is_none(), "added item {item} exists");
        }
        Change::EditItem { item, text } => item_mut(state, *item, at_ms).text = text.clone(),
        Change::SetDone { item, done } => item_mut(state, *item, at_ms).done = *done,
        Change::MoveItem { item, after } => {
            let from = position(state, *item);
            state.order.remove(from);
            let to = after.map_or(0, |after_id| position(state, after_id) + 1);
            state.order.insert(to, *item);
            item_mut(state, *item, at_ms);
        }
        Change::RemoveItem { item } => remove_item(state, *item),
        Change::AttachMedia {
            item,
            url,
            media_type,
        } => {
            item_mut(state, *item, at_ms).media = Some(Media {
                url: url.clone(),
                media_type: *media_type,
            });
        }
        _ => unreachable!("fold_item is called with item changes only"),
    }
}

fn fold_vote(state: &mut ListState, event: &Event, item: ItemId, votes: u64) {
    let inserted = state.votes.entry(event.by).or_default().insert(item);
    assert!(inserted, "vote for an item already voted for");
    let counted = &mut state.items.get_mut(&item).expect("voted item exists").votes;
    *counted += 1;
    assert_eq!(*counted, votes, "vote count after the vote");
}

fn fold_unvote(state: &mut ListState, event: &Event, item: ItemId, votes: u64) {
    let user_votes = state
        .votes
        .get_mut(&event.by)
        .expect("unvoting user has votes");
    assert!(user_votes.remove(&item), "unvote of an item not voted for");
    if user_votes.is_empty() {
        state.votes.remove(&event.by);
    }
    let counted = &mut state
        .items
        .get_mut(&item)
        .expect("unvoted item exists")
        .votes;
    *counted -= 1;
    assert_eq!(*counted, votes, "vote count after the unvote");
}

/// Removes an item and every vote for it, so counts keep matching the stored votes. This scans all
/// voters: removals are rare next to votes, and a reverse index would double the vote memory.
fn remove_item(state: &mut ListState, item: ItemId) {
    let index = position(state, item);
    state.order.remove(index);
    state.items.remove(&item);
    state.votes.retain(|_, items| {
        items.remove(&item);
        !items.is_empty()
    });
}

fn position(state: &ListState, item: ItemId) -> usize {
    state
        .order
        .iter()
        .position(|id| *id == item)
        .expect("decided item is in the display order")
}

fn item_mut(state: &mut ListState, item: ItemId, at_ms: u64) -> &mut Item {
    let found = state.items.get_mut(&item).expect("decided item exists");
    found.updated_at_ms = at_ms;
    found
}

/// Remembers the op id (unless the `no-op-id-check` mutant forgets it) and prunes the window, oldest first, as a pure function of the window and
/// the event: while it is over `op_ids_kept_max`, or over `op_ids_kept_min` with the oldest
/// entry more than `op_ids_kept_ms_min` older than this event by the window's clock.
fn remember_op(state: &mut ListState, event: &Event, limits: &Limits) {
    if mutants::active(Mutant::NoOpIdCheck) {
        return;
    }
    let window_ms = event
        .window_ms
        .unwrap_or_else(|| match state.op_log.back() {
            Some(previous) => previous.window_ms + event.at_ms.saturating_sub(previous.at_ms),
            None => event.at_ms,
        });
    state.op_log.push_back(OpRecord {
        op_id: event.op_id,
        seq: event.seq,
        at_ms: event.at_ms,
        window_ms,
        digest: event.op_digest,
    });
    let applied = AppliedOp {
        seq: event.seq,
        digest: event.op_digest,
    };
    state.op_index.insert(event.op_id, applied);
    while let Some(oldest) = state.op_log.front().copied() {
        let len = state.op_log.len();
        let over_max = len > limits.op_ids_kept_max;
        let expired = len > limits.op_ids_kept_min
            && window_ms.saturating_sub(oldest.window_ms) > limits.op_ids_kept_ms_min;
        if !over_max && !expired {
            break;
        }
        state.op_log.pop_front();
        state.op_index.remove(&oldest.op_id);
    }
}
