//! The list invariants, defined once: used by unit tests, property tests, `evolve`'s debug
//! assertions, snapshot decoding and, later, the simulation checkers.

use std::collections::{HashMap, HashSet};

use super::event::{Change, Event};
use super::state::ListState;
use super::types::{ItemId, Limits, Role};

/// Checks every invariant of the list; the error names the first one broken.
pub fn check_invariants(state: &ListState, limits: &Limits) -> Result<(), String> {
    if !state.exists() {
        return check_not_created(state);
    }
    check_order(state)?;
    check_votes(state)?;
    check_members(state)?;
    check_op_window(state, limits)?;
    if state.items.len() > limits.items_max {
        return Err(format!(
            "{} items exceed items_max {}",
            state.items.len(),
            limits.items_max
        ));
    }
    if state.members.len() > limits.members_max {
        return Err(format!(
            "{} members exceed members_max {}",
            state.members.len(),
            limits.members_max
        ));
    }
    if state.title.trim().is_empty() {
        return Err("title is empty".to_owned());
    }
    Ok(())
}

/// Checks what one event touched, in time independent of the list's size (except the window
/// sizes, which are O(1)); `evolve` uses it in debug builds when a full check would be too slow.
pub(crate) fn check_touched(
    state: &ListState,
    event: &Event,
    limits: &Limits,
) -> Result<(), String> {
    if state.order.len() != state.items.len() {
        return Err("display order and item set differ in size".to_owned());
    }
    if state.op_log.len() > limits.op_ids_kept_max || state.op_log.len() != state.op_index.len() {
        return Err("dedupe window too large or out of sync".to_owned());
    }
    if let Change::Vote { .. } | Change::Unvote { .. } = event.change {
        let user_votes = state.votes.get(&event.by).map_or(0, |items| items.len());
        let max = state
            .poll
            .as_ref()
            .map_or(0, |poll| poll.max_votes_per_user as usize);
        if user_votes > max {
            return Err(format!(
                "user {} has {user_votes} votes, more than {max}",
                event.by
            ));
        }
    }
    Ok(())
}

fn check_not_created(state: &ListState) -> Result<(), String> {
    let empty = state.seq == 0
        && state.owner.is_none()
        && state.members.is_empty()
        && state.items.is_empty()
        && state.order.is_empty()
        && state.votes.is_empty()
        && state.poll.is_none()
        && state.op_log.is_empty()
        && state.op_index.is_empty();
    if empty {
        Ok(())
    } else {
        Err("a list that was not created holds data".to_owned())
    }
}

/// The display order has no duplicates and holds exactly the items.
fn check_order(state: &ListState) -> Result<(), String> {
    let mut seen = HashSet::with_capacity(state.order.len());
    for id in &state.order {
        if !seen.insert(*id) {
            return Err(format!("item {id} appears twice in the display order"));
        }
        if !state.items.contains_key(id) {
            return Err(format!("item {id} is ordered but does not exist"));
        }
    }
    if seen.len() != state.items.len() {
        return Err("some items are missing from the display order".to_owned());
    }
    Ok(())
}

/// Vote counts equal the stored votes; nobody exceeds the poll's limit; no votes without a poll.
fn check_votes(state: &ListState) -> Result<(), String> {
    let max = match &state.poll {
        Some(poll) => poll.max_votes_per_user as usize,
        None if state.votes.is_empty() => return check_counts(state, &HashMap::new()),
        None => return Err("votes exist without a poll".to_owned()),
    };
    let mut counts: HashMap<ItemId, u64> = HashMap::new();
    for (user, items) in &state.votes {
        if items.is_empty() {
            return Err(format!("user {user} has an empty vote set"));
        }
        if items.len() > max {
            return Err(format!(
                "user {user} has {} votes, more than {max}",
                items.len()
            ));
        }
        for item in items {
            if !state.items.contains_key(item) {
                return Err(format!("user {user} voted for missing item {item}"));
            }
            *counts.entry(*item).or_default() += 1;
        }
    }
    check_counts(state, &counts)
}

fn check_counts(state: &ListState, counts: &HashMap<ItemId, u64>) -> Result<(), String> {
    for (id, item) in &state.items {
        let stored = counts.get(id).copied().unwrap_or(0);
        if item.votes != stored {
            return Err(format!(
                "item {id} counts {} votes but {stored} are stored",
                item.votes
            ));
        }
    }
    Ok(())
}

/// Exactly one owner, who is a member with role owner.
fn check_members(state: &ListState) -> Result<(), String> {
    let Some(owner) = state.owner else {
        return Err("a created list has no owner".to_owned());
    };
    if state.role_of(owner) != Some(Role::Owner) {
        return Err(format!("owner {owner} is not a member with role owner"));
    }
    let owners = state
        .members
        .values()
        .filter(|member| member.role == Role::Owner)
        .count();
    if owners != 1 {
        return Err(format!("{owners} members have role owner"));
    }
    Ok(())
}

/// The dedupe window is bounded, indexed consistently, and only names applied seqs.
fn check_op_window(state: &ListState, limits: &Limits) -> Result<(), String> {
    if state.op_log.len() > limits.op_ids_kept_max {
        return Err(format!(
            "dedupe window holds {} op ids, over {}",
            state.op_log.len(),
            limits.op_ids_kept_max
        ));
    }
    if state.op_log.len() != state.op_index.len() {
        return Err("dedupe window and its index differ in size".to_owned());
    }
    let mut previous_seq = 0;
    for record in &state.op_log {
        let indexed = state.op_index.get(&record.op_id);
        if indexed.map(|applied| (applied.seq, applied.digest)) != Some((record.seq, record.digest))
        {
            return Err(format!(
                "op {} is not indexed at seq {}",
                record.op_id, record.seq
            ));
        }
        if record.seq <= previous_seq || record.seq > state.seq {
            return Err(format!(
                "op {} has seq {} out of order or past {}",
                record.op_id, record.seq, state.seq
            ));
        }
        previous_seq = record.seq;
    }
    Ok(())
}
