//! The internode messages of listwire, carried as opaque payloads by `listwire-cluster`.
//!
//! Requests and responses are postcard-encoded after a version byte ([`WIRE_VERSION`]); new
//! variants go at the end of each enum, and a peer that sends a version this build does not
//! read gets a clear refusal. Node subscription items are hand-encoded (see `items`) so a
//! frame's bytes reach the gateway node without a copy.
//!
//! The principal an op carries is trusted because internode connections are authenticated
//! with the cluster secret; nothing here is ever accepted from a client.

use bytes::Bytes;
use listwire_gateway::{EdgeError, ErrorCode, Principal};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The version of these messages this build writes and reads.
pub const WIRE_VERSION: u8 = 1;

/// A user as the gateway authenticated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePrincipal {
    /// The user id.
    pub user_id: Uuid,
    /// The username.
    pub username: String,
}

impl From<&Principal> for WirePrincipal {
    fn from(principal: &Principal) -> Self {
        WirePrincipal {
            user_id: principal.user_id,
            username: principal.username.clone(),
        }
    }
}

impl From<WirePrincipal> for Principal {
    fn from(wire: WirePrincipal) -> Self {
        Principal {
            user_id: wire.user_id,
            username: wire.username,
        }
    }
}

/// What an op asks of its list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireOpBody {
    /// A client op: its raw JSON object.
    Apply(String),
    /// The creation of the list: the raw JSON body of `POST /v1/lists`.
    Create(String),
}

/// One op forwarded to its list's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOp {
    /// Who sends it.
    pub principal: WirePrincipal,
    /// The list.
    pub list: Uuid,
    /// The op id (chosen by the gateway for a create without one, so retries are safe).
    pub op_id: Uuid,
    /// The op.
    pub body: WireOpBody,
}

/// An error as clients would see it, plus who the answering node believes owns the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The protocol error code (`moved`, `forbidden`, ...).
    pub code: String,
    /// The message.
    pub message: String,
    /// For `rate_limited`.
    pub retry_after_ms: Option<u64>,
}

impl From<&EdgeError> for WireError {
    fn from(error: &EdgeError) -> Self {
        WireError {
            code: error.code.as_str().to_owned(),
            message: error.message.clone(),
            retry_after_ms: error.retry_after_ms,
        }
    }
}

impl From<WireError> for EdgeError {
    fn from(wire: WireError) -> Self {
        let code = ErrorCode::parse(&wire.code).unwrap_or(ErrorCode::Internal);
        EdgeError {
            code,
            message: wire.message,
            retry_after_ms: wire.retry_after_ms,
        }
    }
}

/// The catch-up of one user, as the owner computed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCatchUp {
    /// Frames in order, each with the seq it reaches.
    pub frames: Vec<(u64, Vec<u8>)>,
    /// Whether the frames are one snapshot.
    pub snapshot: bool,
    /// The owner's durable seq they reach.
    pub seq: u64,
}

/// What one node reports of itself to the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    /// Lists with an actor on the node.
    pub active_lists: u64,
}

/// A request to another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Ops for lists the receiver owns, batched because they arrived together.
    Ops(Vec<WireOp>),
    /// The list snapshot JSON for `principal`.
    Snapshot {
        /// The reader.
        principal: WirePrincipal,
        /// The list.
        list: Uuid,
    },
    /// The frames that bring `user` from `since` to the owner's durable state.
    CatchUp {
        /// The user to authorize and catch up.
        user: Uuid,
        /// The list.
        list: Uuid,
        /// What the user has.
        since: Option<u64>,
    },
    /// The node's own figures, for the admin view.
    Stats,
    /// Whether `list` has an actor on the node now, for the admin view.
    Active {
        /// The list.
        list: Uuid,
    },
    /// Answer once every op the receiver accepted for `list` is durable (or failed): the
    /// sender is about to load the list.
    Settle {
        /// The list.
        list: Uuid,
    },
}

/// The answer to a [`Request`], variant for variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// One outcome per op, in order: the seq, or the error.
    Ops(Vec<Result<u64, WireError>>),
    /// The snapshot JSON.
    Snapshot(Result<Vec<u8>, WireError>),
    /// The catch-up.
    CatchUp(Result<WireCatchUp, WireError>),
    /// The node's figures.
    Stats(NodeStats),
    /// Whether the list is active there.
    Active(bool),
    /// The receiver's accepted ops of the list are settled (or it gave up waiting).
    Settled,
}

/// Opens a node subscription: live frames of `list` (after catching up from `since` if given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// The list.
    pub list: Uuid,
    /// The last seq the gateway node forwarded; `None` for live frames only.
    pub since: Option<u64>,
}

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireDecodeError {
    /// The payload was empty or its version unknown.
    #[error("internode message version {0:?} is not one this build reads ({WIRE_VERSION})")]
    Version(Option<u8>),
    /// The payload did not parse.
    #[error("malformed internode message: {0}")]
    Malformed(String),
}

/// Encodes a message with its version byte.
pub fn encode<T: Serialize>(message: &T) -> Bytes {
    let mut out = vec![WIRE_VERSION];
    // Only our own plain types are encoded; postcard cannot fail on them into a Vec.
    if let Ok(encoded) = postcard::to_stdvec(message) {
        out.extend_from_slice(&encoded);
    }
    Bytes::from(out)
}

/// Decodes a message written by [`encode`].
pub fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, WireDecodeError> {
    match payload.split_first() {
        Some((&WIRE_VERSION, body)) => postcard::from_bytes(body)
            .map_err(|error| WireDecodeError::Malformed(error.to_string())),
        Some((&other, _)) => Err(WireDecodeError::Version(Some(other))),
        None => Err(WireDecodeError::Version(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: every message round-trips and the version byte is checked.
    #[test]
    fn messages_round_trip() {
        let op = WireOp {
            principal: WirePrincipal {
                user_id: Uuid::from_u128(1),
                username: "ada".into(),
            },
            list: Uuid::from_u128(2),
            op_id: Uuid::from_u128(3),
            body: WireOpBody::Apply(r#"{"kind":"rename","title":"t"}"#.into()),
        };
        let request = Request::Ops(vec![op]);
        assert_eq!(decode::<Request>(&encode(&request)).unwrap(), request);
        let admin = [
            (
                Request::Stats,
                Response::Stats(NodeStats { active_lists: 3 }),
            ),
            (
                Request::Active {
                    list: Uuid::from_u128(5),
                },
                Response::Active(true),
            ),
            (
                Request::Settle {
                    list: Uuid::from_u128(6),
                },
                Response::Settled,
            ),
        ];
        for (request, response) in admin {
            assert_eq!(decode::<Request>(&encode(&request)).unwrap(), request);
            assert_eq!(decode::<Response>(&encode(&response)).unwrap(), response);
        }
        let response = Response::Ops(vec![
            Ok(4),
            Err(WireError::from(&EdgeError::new(
                ErrorCode::Moved,
                "elsewhere",
            ))),
        ]);
        assert_eq!(decode::<Response>(&encode(&response)).unwrap(), response);
        let mut wrong = encode(&request).to_vec();
        wrong[0] = 9;
        assert!(matches!(
            decode::<Request>(&wrong),
            Err(WireDecodeError::Version(Some(9)))
        ));
        assert!(matches!(
            decode::<Request>(&[]),
            Err(WireDecodeError::Version(None))
        ));
    }
}
