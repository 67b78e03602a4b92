//! Decisions for item ops: add, edit, done, move, remove, attach media.

use uuid::Uuid;

use super::decide::require_editor;
use super::event::Change;
use super::op::Command;
use super::state::ListState;
use super::types::{ItemId, Limits, MediaType, RejectCode, Rejection, UserId};

/// Mixed into op ids to derive item ids, so an item id never equals the op id that created it.
const ITEM_ID_SALT: u128 = 0x6c69_7374_7769_7265_2d69_7465_6d2d_6964;

pub(crate) fn add_item(
    state: &ListState,
    cmd: &Command,
    text: &str,
    after: Option<ItemId>,
    item: Option<ItemId>,
    limits: &Limits,
) -> Result<Change, Rejection> {
    require_editor(state, cmd.by.user_id)?;
    validate_text(text, limits)?;
    if item == Some(Uuid::nil()) {
        return Err(Rejection::new(
            RejectCode::Invalid,
            "field `item` must not be the nil uuid",
        ));
    }
    if state.item_count() >= limits.items_max {
        return Err(Rejection::new(
            RejectCode::Conflict,
            format!("list is full ({} items)", limits.items_max),
        ));
    }
    if let Some(after_id) = after {
        require_item(state, after_id)?;
    }
    let new_id = item.unwrap_or_else(|| derive_item_id(cmd.op_id));
    if state.items.contains_key(&new_id) {
        return Err(Rejection::new(
            RejectCode::Conflict,
            format!("item {new_id} exists"),
        ));
    }
    Ok(Change::AddItem {
        item: new_id,
        text: text.to_owned(),
        after,
    })
}

pub(crate) fn edit_item(
    state: &ListState,
    user: UserId,
    item: ItemId,
    text: &str,
    limits: &Limits,
) -> Result<Change, Rejection> {
    require_editor(state, user)?;
    validate_text(text, limits)?;
    require_item(state, item)?;
    Ok(Change::EditItem {
        item,
        text: text.to_owned(),
    })
}

pub(crate) fn set_done(
    state: &ListState,
    user: UserId,
    item: ItemId,
    done: bool,
) -> Result<Change, Rejection> {
    require_editor(state, user)?;
    require_item(state, item)?;
    Ok(Change::SetDone { item, done })
}

pub(crate) fn move_item(
    state: &ListState,
    user: UserId,
    item: ItemId,
    after: Option<ItemId>,
) -> Result<Change, Rejection> {
    require_editor(state, user)?;
    if after == Some(item) {
        return Err(Rejection::new(
            RejectCode::Invalid,
            "field `after` must not be the moved item",
        ));
    }
    require_item(state, item)?;
    if let Some(after_id) = after {
        require_item(state, after_id)?;
    }
    Ok(Change::MoveItem { item, after })
}

pub(crate) fn remove_item(
    state: &ListState,
    user: UserId,
    item: ItemId,
) -> Result<Change, Rejection> {
    require_editor(state, user)?;
    require_item(state, item)?;
    Ok(Change::RemoveItem { item })
}

pub(crate) fn attach_media(
    state: &ListState,
    user: UserId,
    item: ItemId,
    url: &str,
    media_type: MediaType,
    limits: &Limits,
) -> Result<Change, Rejection> {
    require_editor(state, user)?;
    validate_url(url, limits)?;
    require_item(state, item)?;
    Ok(Change::AttachMedia {
        item,
        url: url.to_owned(),
        media_type,
    })
}

/// Fails with `not_found` unless the item exists.
pub(crate) fn require_item(state: &ListState, item: ItemId) -> Result<(), Rejection> {
    if state.items.contains_key(&item) {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectCode::NotFound,
            format!("no such item {item}"),
        ))
    }
}

/// Item text is non-blank and at most `item_text_bytes_max` bytes.
fn validate_text(text: &str, limits: &Limits) -> Result<(), Rejection> {
    if text.len() > limits.item_text_bytes_max {
        return Err(Rejection::new(
            RejectCode::TooLarge,
            format!(
                "field `text` is longer than {} bytes",
                limits.item_text_bytes_max
            ),
        ));
    }
    if text.trim().is_empty() {
        return Err(Rejection::new(RejectCode::Invalid, "field `text` is empty"));
    }
    Ok(())
}

/// A media url is an `http://` or `https://` url of at most `url_bytes_max` bytes, without
/// whitespace or control characters (clients render it as a link).
fn validate_url(url: &str, limits: &Limits) -> Result<(), Rejection> {
    if url.len() > limits.url_bytes_max {
        return Err(Rejection::new(
            RejectCode::TooLarge,
            format!("field `url` is longer than {} bytes", limits.url_bytes_max),
        ));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        url.get(8..)
    } else if lower.starts_with("http://") {
        url.get(7..)
    } else {
        None
    };
    let well_formed = rest.is_some_and(|rest| {
        !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if !well_formed {
        return Err(Rejection::new(
            RejectCode::Invalid,
            "field `url` must be an http:// or https:// url",
        ));
    }
    Ok(())
}

/// The id of an item added without a client-chosen id: a pure function of the op id, so replaying
/// or re-deciding the op yields the same id. The 128 bits are scrambled by a bijective mix (odd
/// multiplications and xor-shifts), then marked as a version 8 (custom) RFC 9562 uuid.
pub(crate) fn derive_item_id(op_id: Uuid) -> ItemId {
    let mut bits = op_id.as_u128() ^ ITEM_ID_SALT;
    bits = bits.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    bits ^= bits >> 67;
    bits = bits.wrapping_mul(0xbf58_476d_1ce4_e5b9_94d0_49bb_1331_11eb);
    bits ^= bits >> 59;
    let mut bytes = bits.to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}
