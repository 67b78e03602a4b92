//! The list domain: the pure state machine of one list.
//!
//! A list has a title, an owner, members with roles, a visibility, ordered items, an optional poll
//! and `seq`, the number of its last event. Commands go through `decide` (validate and authorize,
//! returning a `Change` or a `Rejection`), become `Event`s, and are folded in by `evolve`; `apply`
//! does all three. `check_invariants` states what always holds. The codec gives the versioned
//! stored encodings of event batches and state snapshots.
//!
//! Layout: `types` (limits, roles, rejections), `op` (client ops and their parsers), `event`,
//! `state` (the state, its accessors and client JSON views), `decide` with `decide_items`,
//! `decide_members` and `decide_poll`, `evolve`, `invariants`, `codec`.
//!
//! It does not do IO, read a clock, or draw randomness: time comes in with the command, and new
//! item ids derive from op ids. It does not resolve usernames (the node passes the resolved user
//! in `Command::target`), and it does not decide when to send tallies instead of vote events.

mod codec;
mod decide;
mod decide_items;
mod decide_members;
mod decide_poll;
mod digest;
mod event;
mod evolve;
mod invariants;
mod op;
mod state;
mod types;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod script;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_poll;
#[cfg(test)]
mod tests_time;

pub use codec::{
    decode_batch, decode_snapshot, encode_batch, encode_snapshot, CodecError, FORMAT_V2,
};
pub use decide::{apply, create, decide, event_time};
pub use digest::{create_digest, is_retry, op_digest};
pub use event::{Change, Event};
pub use evolve::evolve;
pub use invariants::check_invariants;
pub use op::{parse_create, parse_op, Command, CreateList, Op};
pub use state::{AppliedOp, ListState};
pub use types::{
    ItemId, Limits, ListId, Media, MediaType, PollSettings, RejectCode, Rejection, Role, UserId,
    UserRef, Visibility,
};
