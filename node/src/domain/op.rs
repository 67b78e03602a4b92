//! Client ops and the create body, and their parsers: the only place client JSON enters the domain.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::types::{
    ItemId, MediaType, PollSettings, RejectCode, Rejection, Role, UserRef, Visibility,
};

/// A client op, exactly as PROTOCOL.md's op table: `{"kind":"add_item",...}`; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// Change the list title (owner).
    Rename {
        /// The new title.
        title: String,
    },
    /// Add an item (owner, editor).
    AddItem {
        /// The item text.
        text: String,
        /// Insert after this item; null or missing means at the top.
        #[serde(default)]
        after: Option<ItemId>,
        /// A client-chosen id for the new item; derived from the op id when missing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<ItemId>,
    },
    /// Replace an item's text (owner, editor).
    EditItem {
        /// The item.
        item: ItemId,
        /// The new text.
        text: String,
    },
    /// Mark an item done or not done (owner, editor).
    SetDone {
        /// The item.
        item: ItemId,
        /// The new state.
        done: bool,
    },
    /// Move an item (owner, editor).
    MoveItem {
        /// The item.
        item: ItemId,
        /// Place it after this item; null or missing means at the top.
        #[serde(default)]
        after: Option<ItemId>,
    },
    /// Remove an item and its votes (owner, editor).
    RemoveItem {
        /// The item.
        item: ItemId,
    },
    /// Attach a media reference to an item, replacing any earlier one (owner, editor).
    AttachMedia {
        /// The item.
        item: ItemId,
        /// An `http://` or `https://` url.
        url: String,
        /// What the url points at.
        media_type: MediaType,
    },
    /// Give a user a role, or change a member's role (owner).
    Share {
        /// The username.
        user: String,
        /// `editor`, `voter` or `viewer`.
        role: Role,
    },
    /// Remove a member (owner); their votes stay.
    Unshare {
        /// The member's username.
        user: String,
    },
    /// Create or change the poll (owner).
    SetPoll {
        /// How many items one user may vote for.
        max_votes_per_user: u32,
        /// Whether votes may be taken back.
        allow_change: bool,
        /// Whether the poll takes votes.
        open: bool,
        /// Optional closing time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_at_ms: Option<u64>,
    },
    /// Make the list private or public (owner); an addition to protocol version 1.
    SetVisibility {
        /// The new visibility.
        visibility: Visibility,
    },
    /// Vote for an item.
    Vote {
        /// The item.
        item: ItemId,
    },
    /// Take a vote back, when the poll allows change.
    Unvote {
        /// The item.
        item: ItemId,
    },
}

/// Every `kind` that `parse_op` accepts, so an unknown kind gets its own message.
const OP_KINDS: &[&str] = &[
    "rename",
    "add_item",
    "edit_item",
    "set_done",
    "move_item",
    "remove_item",
    "attach_media",
    "share",
    "unshare",
    "set_poll",
    "set_visibility",
    "vote",
    "unvote",
];

/// Longest piece of client input quoted back in a message, so error frames stay small.
const QUOTED_CHARS_MAX: usize = 64;

/// Parses an op object; every failure is `invalid` with a message naming the problem. Never panics.
pub fn parse_op(raw_json: &str) -> Result<Op, Rejection> {
    if let Some(op) = parse_vote(raw_json) {
        return Ok(op);
    }
    parse_any_op(raw_json)
}

/// The general parser of every op kind, through a `serde_json::Value`.
fn parse_any_op(raw_json: &str) -> Result<Op, Rejection> {
    let value = parse_object(raw_json, "op")?;
    let kind = match value.get("kind") {
        None => return Err(invalid("missing field `kind`")),
        Some(serde_json::Value::String(kind)) => kind,
        Some(_) => return Err(invalid("field `kind` must be a string")),
    };
    if !OP_KINDS.contains(&kind.as_str()) {
        let quoted: String = kind.chars().take(QUOTED_CHARS_MAX).collect();
        return Err(invalid(format!("unknown op kind {quoted:?}")));
    }
    serde_json::from_value(value).map_err(|error| invalid(error.to_string()))
}

/// A well-formed `vote` or `unvote` object, read without building a `serde_json::Value` (the
/// hot path of a poll: issue 13); `None` for anything else, which the general parser then
/// reads, so every error message and every other op is exactly as before. Accepts only what
/// the general parser accepts with the same result: a JSON object (a struct would also take an
/// array) with exactly the fields `kind` (`vote` or `unvote`) and `item` (a uuid). Any other
/// field falls through: skipping it checks less than the general parser's `Value` does (a lone
/// surrogate escape, a number out of range), and a duplicate field, which the general parser
/// resolves, falls through too.
fn parse_vote(raw_json: &str) -> Option<Op> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct VoteShape<'a> {
        #[serde(borrow)]
        kind: std::borrow::Cow<'a, str>,
        item: ItemId,
    }
    if !raw_json.trim_start().starts_with('{') {
        return None;
    }
    let shape: VoteShape<'_> = serde_json::from_str(raw_json).ok()?;
    match &*shape.kind {
        "vote" => Some(Op::Vote { item: shape.item }),
        "unvote" => Some(Op::Unvote { item: shape.item }),
        _ => None,
    }
}

/// The body of `POST /v1/lists`. Parsing checks shape only; `create` checks the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateList {
    /// The title.
    pub title: String,
    /// Private unless given.
    #[serde(default = "default_visibility")]
    pub visibility: Visibility,
    /// The initial poll, if any.
    #[serde(default)]
    pub poll: Option<PollSettings>,
}

fn default_visibility() -> Visibility {
    Visibility::Private
}

/// Parses the create body; every failure is `invalid` with a message naming the problem. Never panics.
pub fn parse_create(raw_json: &str) -> Result<CreateList, Rejection> {
    let value = parse_object(raw_json, "body")?;
    serde_json::from_value(value).map_err(|error| invalid(error.to_string()))
}

/// One op to decide, with everything the node knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client-chosen op id (dedupe key).
    pub op_id: Uuid,
    /// The signed-in user sending the op.
    pub by: UserRef,
    /// The node's time when it accepted the op; the domain never reads a clock.
    pub at_ms: u64,
    /// Real time since the list's previous event, as its owner measured it (monotonic):
    /// bounds how far the op-id window's clock may advance, whatever `at_ms` did. `None` for
    /// the first event of an owner (it cannot know); then the window's clock stays put.
    pub elapsed_ms: Option<u64>,
    /// The op.
    pub op: Op,
    /// For `share`: the user the node resolved from the username; `None` means there is no such user.
    pub target: Option<UserRef>,
}

fn parse_object(raw_json: &str, what: &str) -> Result<serde_json::Value, Rejection> {
    // serde_json limits nesting depth itself, so deep input is an error, not a stack overflow.
    let value: serde_json::Value = serde_json::from_str(raw_json)
        .map_err(|error| invalid(format!("malformed json: {error}")))?;
    if !value.is_object() {
        return Err(invalid(format!("{what} must be a json object")));
    }
    Ok(value)
}

fn invalid(message: impl Into<String>) -> Rejection {
    Rejection::new(RejectCode::Invalid, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the vote fast path answers exactly what the general parser answers, for
    /// well-formed votes and for every near miss (which must fall through to it).
    #[test]
    fn the_vote_fast_path_agrees_with_the_general_parser() {
        let item = "00000000-0000-0000-0000-00000000000a";
        let inputs = [
            format!(r#"{{"kind":"vote","item":"{item}"}}"#),
            format!(r#"  {{ "item" : "{item}", "kind" : "unvote" }} "#),
            format!(r#"{{"kind":"vote","item":"{item}","extra":[1,{{"a":null}}]}}"#),
            format!(r#"{{"kind":"vot\u0065","item":"{item}"}}"#),
            format!(r#"{{"kind":"vote","kind":"vote","item":"{item}"}}"#),
            format!(r#"{{"kind":"vote","item":"{item}","item":"{item}"}}"#),
            format!(r#"{{"kind":"add_item","text":"x","item":"{item}"}}"#),
            format!(r#"["vote","{item}"]"#),
            format!(r#"{{"kind":"vote","item":"{item}"}} x"#),
            format!(r#"{{"kind":"Vote","item":"{item}"}}"#),
            r#"{"kind":"vote","item":null}"#.to_owned(),
            r#"{"kind":"vote"}"#.to_owned(),
            r#"{"kind":"vote","item":"not-a-uuid"}"#.to_owned(),
            r#"{"kind":"vote","item":7}"#.to_owned(),
            r#"{"kind":7,"item":"x"}"#.to_owned(),
            r#"{"kind":"vote","#.to_owned(),
            String::new(),
            // What skipping a field checks less than building a `Value` does.
            format!(r#"{{"kind":"vote","item":"{item}","note":"\ud800"}}"#),
            format!(r#"{{"kind":"vote","item":"{item}","note":"\udc00"}}"#),
            format!(r#"{{"kind":"vote","item":"{item}","n":1e400}}"#),
            format!(
                r#"{{"kind":"vote","item":"{item}","n":{}}}"#,
                "9".repeat(400)
            ),
        ];
        for input in &inputs {
            assert_eq!(parse_op(input), parse_any_op(input), "input {input:?}");
        }
        assert!(
            parse_vote(&inputs[0]).is_some(),
            "a plain vote takes the fast path"
        );
        assert!(parse_vote(&inputs[1]).is_some(), "so does a plain unvote");
    }
}
