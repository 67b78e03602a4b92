//! The internode messages of listwire, carried as opaque payloads by `listwire-cluster`.
//!
//! Requests and responses are postcard-encoded after a version byte ([`WIRE_VERSION`]); new
//! variants go at the end of each enum, and a peer that sends a version this build does not
//! read gets a clear refusal. Node subscription items are hand-encoded so a frame's bytes
//! reach the gateway node without a copy: `[tag][seq u64 BE][flags][from u64 BE, if the
//! flags say so][frame bytes]`.
//!
//! The principal an op carries is trusted because internode connections are authenticated
//! with the cluster secret; nothing here is ever accepted from a client.

use bytes::{BufMut, Bytes, BytesMut};
use listwire_gateway::{EdgeError, ErrorCode, Principal};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::list::node_sink::NodeItem;

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
    /// Which of `users` may read `list`.
    Authorize {
        /// The list.
        list: Uuid,
        /// The users to check.
        users: Vec<Uuid>,
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
    /// The users who may read.
    Authorize(Result<Vec<Uuid>, WireError>),
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

const ITEM_STARTED: u8 = 1;
const ITEM_FRAME: u8 = 2;
const ITEM_END: u8 = 3;
const FLAG_SNAPSHOT: u8 = 1;
const FLAG_ACCESS_CHANGED: u8 = 2;
const FLAG_FROM: u8 = 4;

/// Encodes a node subscription item.
pub fn encode_item(item: &NodeItem) -> Bytes {
    match item {
        NodeItem::Started { seq } => {
            let mut out = BytesMut::with_capacity(10);
            out.put_u8(ITEM_STARTED);
            out.put_u64(*seq);
            out.put_u8(0);
            out.freeze()
        }
        NodeItem::Frame {
            from,
            seq,
            snapshot,
            access_changed,
            frame,
        } => {
            let mut out = BytesMut::with_capacity(18 + frame.len());
            out.put_u8(ITEM_FRAME);
            out.put_u64(*seq);
            let mut flags = 0;
            if *snapshot {
                flags |= FLAG_SNAPSHOT;
            }
            if *access_changed {
                flags |= FLAG_ACCESS_CHANGED;
            }
            if from.is_some() {
                flags |= FLAG_FROM;
            }
            out.put_u8(flags);
            if let Some(from) = from {
                out.put_u64(*from);
            }
            out.put_slice(frame);
            out.freeze()
        }
        NodeItem::End { code, message } => {
            let mut out = BytesMut::with_capacity(10 + message.len() + 16);
            out.put_u8(ITEM_END);
            out.put_u64(0);
            out.put_u8(0);
            let error = WireError {
                code: code.as_str().to_owned(),
                message: message.clone(),
                retry_after_ms: None,
            };
            out.put_slice(&encode(&error));
            out.freeze()
        }
    }
}

/// Decodes a node subscription item; a frame's bytes are shared with `payload`, not copied.
pub fn decode_item(payload: Bytes) -> Result<NodeItem, WireDecodeError> {
    let malformed = || WireDecodeError::Malformed("short node subscription item".into());
    if payload.len() < 10 {
        return Err(malformed());
    }
    let tag = payload[0];
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&payload[1..9]);
    let seq = u64::from_be_bytes(seq_bytes);
    let flags = payload[9];
    let rest = payload.slice(10..);
    match tag {
        ITEM_STARTED => Ok(NodeItem::Started { seq }),
        ITEM_FRAME if flags & FLAG_FROM != 0 => {
            if rest.len() < 8 {
                return Err(malformed());
            }
            let mut from_bytes = [0u8; 8];
            from_bytes.copy_from_slice(&rest[..8]);
            Ok(NodeItem::Frame {
                from: Some(u64::from_be_bytes(from_bytes)),
                seq,
                snapshot: flags & FLAG_SNAPSHOT != 0,
                access_changed: flags & FLAG_ACCESS_CHANGED != 0,
                frame: rest.slice(8..),
            })
        }
        ITEM_FRAME => Ok(NodeItem::Frame {
            from: None,
            seq,
            snapshot: flags & FLAG_SNAPSHOT != 0,
            access_changed: flags & FLAG_ACCESS_CHANGED != 0,
            frame: rest,
        }),
        ITEM_END => {
            let error: WireError = decode(&rest)?;
            let edge = EdgeError::from(error);
            Ok(NodeItem::End {
                code: edge.code,
                message: edge.message,
            })
        }
        other => Err(WireDecodeError::Malformed(format!(
            "unknown node subscription item {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: every message and item round-trips, the version byte is checked, and frame bytes
    /// are not copied on decode.
    #[test]
    fn messages_and_items_round_trip() {
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
        let frame = Bytes::from_static(br#"{"type":"delta"}"#);
        let items = [
            NodeItem::Started { seq: 7 },
            NodeItem::Frame {
                from: Some(8),
                seq: 9,
                snapshot: false,
                access_changed: true,
                frame: frame.clone(),
            },
            NodeItem::Frame {
                from: None,
                seq: 9,
                snapshot: false,
                access_changed: false,
                frame: frame.clone(),
            },
            NodeItem::End {
                code: ErrorCode::Moved,
                message: "moved".into(),
            },
        ];
        for item in items {
            let encoded = encode_item(&item);
            assert_eq!(decode_item(encoded).unwrap(), item);
        }
        let encoded = encode_item(&NodeItem::Frame {
            from: None,
            seq: 1,
            snapshot: true,
            access_changed: false,
            frame,
        });
        let base = encoded.as_ptr() as usize;
        match decode_item(encoded).unwrap() {
            NodeItem::Frame {
                frame, snapshot, ..
            } => {
                assert!(snapshot);
                assert_eq!(frame.as_ptr() as usize, base + 10, "shared, not copied");
            }
            other => panic!("expected a frame, got {other:?}"),
        }
        assert!(decode_item(Bytes::from_static(b"\x02")).is_err());
        let short_from = Bytes::from_static(b"\x02\0\0\0\0\0\0\0\x09\x04\0\0");
        assert!(
            decode_item(short_from).is_err(),
            "a from flag without its 8 bytes"
        );
    }
}
