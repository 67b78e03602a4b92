//! Decisions for membership ops: share and unshare.

use super::decide::require_owner;
use super::event::Change;
use super::op::Command;
use super::state::ListState;
use super::types::{Limits, RejectCode, Rejection, Role, UserId};

pub(crate) fn share(
    state: &ListState,
    cmd: &Command,
    role: Role,
    limits: &Limits,
) -> Result<Change, Rejection> {
    require_owner(state, cmd.by.user_id, "share the list")?;
    if role == Role::Owner {
        return Err(Rejection::new(
            RejectCode::Invalid,
            "field `role` must not be owner",
        ));
    }
    let Some(target) = &cmd.target else {
        return Err(Rejection::new(RejectCode::NotFound, "no such user"));
    };
    if state.owner() == Some(target.user_id) {
        return Err(Rejection::new(
            RejectCode::Invalid,
            "the owner's role cannot change",
        ));
    }
    let is_member = state.role_of(target.user_id).is_some();
    if !is_member && state.member_count() >= limits.members_max {
        return Err(Rejection::new(
            RejectCode::Conflict,
            format!("list has the most members allowed ({})", limits.members_max),
        ));
    }
    Ok(Change::Share {
        user: target.user_id,
        username: target.username.clone(),
        role,
    })
}

/// Removes a member, found by username among the members. Their votes stay: they were cast
/// legitimately, and removing them would change a poll's result after the fact.
pub(crate) fn unshare(
    state: &ListState,
    user: UserId,
    username: &str,
) -> Result<Change, Rejection> {
    require_owner(state, user, "unshare the list")?;
    let found = state
        .members()
        .find(|(_, member_name, _)| *member_name == username);
    match found {
        None => Err(Rejection::new(RejectCode::NotFound, "no such member")),
        Some((_, _, Role::Owner)) => Err(Rejection::new(
            RejectCode::Invalid,
            "the owner cannot be unshared",
        )),
        Some((member, member_name, _)) => Ok(Change::Unshare {
            user: member,
            username: member_name.to_owned(),
        }),
    }
}
