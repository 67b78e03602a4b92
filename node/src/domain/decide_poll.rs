//! Decisions for poll ops: set_poll, vote, unvote.

use super::decide::{require_owner, require_voter, validate_poll};
use super::decide_items::require_item;
use super::event::Change;
use super::state::ListState;
use super::types::{ItemId, Limits, PollSettings, RejectCode, Rejection, UserId};
use listwire_storage::mutants::{self, Mutant};

pub(crate) fn set_poll(
    state: &ListState,
    user: UserId,
    poll: PollSettings,
    limits: &Limits,
) -> Result<Change, Rejection> {
    require_owner(state, user, "change the poll")?;
    validate_poll(&poll, limits)?;
    let most_votes = state
        .votes
        .values()
        .map(|items| items.len())
        .max()
        .unwrap_or(0);
    if most_votes > poll.max_votes_per_user as usize {
        return Err(Rejection::new(
            RejectCode::Conflict,
            format!("field `max_votes_per_user` is below a user's current votes ({most_votes})"),
        ));
    }
    Ok(Change::SetPoll {
        max_votes_per_user: poll.max_votes_per_user,
        allow_change: poll.allow_change,
        open: poll.open,
        close_at_ms: poll.close_at_ms,
    })
}

pub(crate) fn vote(
    state: &ListState,
    user: UserId,
    item: ItemId,
    at_ms: u64,
) -> Result<Change, Rejection> {
    let poll = open_poll(state, user, at_ms)?;
    require_item(state, item)?;
    let user_votes = state.votes.get(&user);
    if user_votes.is_some_and(|items| items.contains(&item)) {
        return Err(Rejection::new(
            RejectCode::Conflict,
            "already voted for this item",
        ));
    }
    let vote_count = user_votes.map_or(0, |items| items.len());
    if vote_count >= poll.max_votes_per_user as usize && !mutants::active(Mutant::IgnoreVoteLimit) {
        return Err(Rejection::new(
            RejectCode::Conflict,
            format!("vote limit reached ({} per user)", poll.max_votes_per_user),
        ));
    }
    let votes = state.items.get(&item).map_or(0, |found| found.votes) + 1;
    Ok(Change::Vote { item, votes })
}

pub(crate) fn unvote(
    state: &ListState,
    user: UserId,
    item: ItemId,
    at_ms: u64,
) -> Result<Change, Rejection> {
    let poll = open_poll(state, user, at_ms)?;
    if !poll.allow_change {
        return Err(Rejection::new(
            RejectCode::Conflict,
            "poll does not allow changing votes",
        ));
    }
    require_item(state, item)?;
    let voted = state
        .votes
        .get(&user)
        .is_some_and(|items| items.contains(&item));
    if !voted {
        return Err(Rejection::new(
            RejectCode::Conflict,
            "not voted for this item",
        ));
    }
    let votes = state
        .items
        .get(&item)
        .map_or(0, |found| found.votes.saturating_sub(1));
    Ok(Change::Unvote { item, votes })
}

/// The poll, when the user may vote and it takes votes at `at_ms`.
fn open_poll(state: &ListState, user: UserId, at_ms: u64) -> Result<&PollSettings, Rejection> {
    require_voter(state, user)?;
    let Some(poll) = state.poll() else {
        return Err(Rejection::new(RejectCode::Conflict, "list has no poll"));
    };
    if !poll.is_open_at(at_ms) {
        return Err(Rejection::new(RejectCode::Conflict, "poll is closed"));
    }
    Ok(poll)
}
