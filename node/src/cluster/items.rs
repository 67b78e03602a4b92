//! The encoding of node subscription items: hand-written so a frame's bytes reach the gateway
//! node without a copy.
//!
//! `[tag u8][seq u64 BE][flags u8]`, then `[from u64 BE]` if `FLAG_FROM`, then
//! `[length u32 BE][postcard Access]` if `FLAG_ACCESS`, then the rest: the frame's bytes, or
//! for an end its versioned `WireError`.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use listwire_gateway::EdgeError;

use super::wire::{decode, encode, WireDecodeError, WireError};
use crate::list::node_sink::{Access, NodeItem};

const ITEM_STARTED: u8 = 1;
const ITEM_FRAME: u8 = 2;
const ITEM_END: u8 = 3;
const FLAG_SNAPSHOT: u8 = 1;
const FLAG_ACCESS: u8 = 2;
const FLAG_FROM: u8 = 4;
/// Largest access section accepted: far above a list's member limit.
const ACCESS_BYTES_MAX: usize = 4 << 20;

/// Encodes a node subscription item.
pub fn encode_item(item: &NodeItem) -> Bytes {
    match item {
        NodeItem::Started { seq, access } => {
            let mut out = header(ITEM_STARTED, *seq, FLAG_ACCESS, 64);
            put_access(&mut out, access);
            out.freeze()
        }
        NodeItem::Frame {
            from,
            seq,
            snapshot,
            access,
            frame,
        } => {
            let mut flags = 0;
            if *snapshot {
                flags |= FLAG_SNAPSHOT;
            }
            if access.is_some() {
                flags |= FLAG_ACCESS;
            }
            if from.is_some() {
                flags |= FLAG_FROM;
            }
            let mut out = header(ITEM_FRAME, *seq, flags, 8 + frame.len());
            if let Some(from) = from {
                out.put_u64(*from);
            }
            if let Some(access) = access {
                put_access(&mut out, access);
            }
            out.put_slice(frame);
            out.freeze()
        }
        NodeItem::End { code, message } => {
            let mut out = header(ITEM_END, 0, 0, message.len() + 16);
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

fn header(tag: u8, seq: u64, flags: u8, extra: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(10 + extra);
    out.put_u8(tag);
    out.put_u64(seq);
    out.put_u8(flags);
    out
}

fn put_access(out: &mut BytesMut, access: &Access) {
    // Our own plain type: postcard cannot fail on it into a Vec.
    let encoded = postcard::to_stdvec(access).unwrap_or_default();
    out.put_u32(encoded.len() as u32);
    out.put_slice(&encoded);
}

/// Decodes a node subscription item; a frame's bytes are shared with `payload`, not copied.
pub fn decode_item(mut payload: Bytes) -> Result<NodeItem, WireDecodeError> {
    if payload.len() < 10 {
        return Err(malformed("short node subscription item"));
    }
    let tag = payload.get_u8();
    let seq = payload.get_u64();
    let flags = payload.get_u8();
    let from = if flags & FLAG_FROM != 0 {
        Some(take_u64(&mut payload)?)
    } else {
        None
    };
    let access = if flags & FLAG_ACCESS != 0 {
        Some(Arc::new(take_access(&mut payload)?))
    } else {
        None
    };
    match tag {
        ITEM_STARTED => Ok(NodeItem::Started {
            seq,
            access: access.ok_or_else(|| malformed("a start without access"))?,
        }),
        ITEM_FRAME => Ok(NodeItem::Frame {
            from,
            seq,
            snapshot: flags & FLAG_SNAPSHOT != 0,
            access,
            frame: payload,
        }),
        ITEM_END => {
            let error: WireError = decode(&payload)?;
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

fn malformed(what: &str) -> WireDecodeError {
    WireDecodeError::Malformed(what.to_owned())
}

fn take_u64(payload: &mut Bytes) -> Result<u64, WireDecodeError> {
    if payload.len() < 8 {
        return Err(malformed("a from flag without its 8 bytes"));
    }
    Ok(payload.get_u64())
}

fn take_access(payload: &mut Bytes) -> Result<Access, WireDecodeError> {
    if payload.len() < 4 {
        return Err(malformed("an access flag without its length"));
    }
    let length = payload.get_u32() as usize;
    if length > ACCESS_BYTES_MAX || payload.len() < length {
        return Err(malformed("an access section longer than the item"));
    }
    let section = payload.split_to(length);
    postcard::from_bytes(&section).map_err(|error| WireDecodeError::Malformed(error.to_string()))
}

#[cfg(test)]
mod tests {
    use listwire_gateway::ErrorCode;
    use uuid::Uuid;

    use super::*;

    fn access(public: bool, members: &[u128]) -> Arc<Access> {
        Arc::new(Access {
            public,
            members: members.iter().map(|n| Uuid::from_u128(*n)).collect(),
        })
    }

    /// Goal: every item round-trips, with and without `from` and access, frame bytes are not
    /// copied on decode, and truncated items are refused, never misread.
    #[test]
    fn items_round_trip_and_truncations_are_refused() {
        let frame = Bytes::from_static(br#"{"type":"delta"}"#);
        let items = [
            NodeItem::Started {
                seq: 7,
                access: access(false, &[1, 2]),
            },
            NodeItem::Frame {
                from: Some(8),
                seq: 9,
                snapshot: false,
                access: Some(access(true, &[])),
                frame: frame.clone(),
            },
            NodeItem::Frame {
                from: None,
                seq: 9,
                snapshot: false,
                access: None,
                frame: frame.clone(),
            },
            NodeItem::End {
                code: ErrorCode::Moved,
                message: "moved".into(),
            },
        ];
        for item in items {
            let encoded = encode_item(&item);
            for cut in 0..encoded.len().min(40) {
                if let Ok(decoded) = decode_item(encoded.slice(..cut)) {
                    // Only a frame's own bytes may be cut short (that is its payload).
                    assert!(
                        matches!(decoded, NodeItem::Frame { .. }),
                        "{item:?} at {cut}"
                    );
                }
            }
            assert_eq!(decode_item(encoded).unwrap(), item);
        }
        let encoded = encode_item(&NodeItem::Frame {
            from: None,
            seq: 1,
            snapshot: true,
            access: None,
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
        let short_from = Bytes::from_static(b"\x02\0\0\0\0\0\0\0\x09\x04\0\0");
        assert!(
            decode_item(short_from).is_err(),
            "a from flag without its 8 bytes"
        );
        let huge = Bytes::from_static(b"\x01\0\0\0\0\0\0\0\x09\x02\xff\xff\xff\xff");
        assert!(decode_item(huge).is_err(), "an access length past the item");
    }

    /// Goal: access says who may read: members always, anyone when public.
    #[test]
    fn access_allows_members_or_everyone() {
        let private = access(false, &[1, 5, 9]);
        assert!(private.allows(Uuid::from_u128(5)));
        assert!(!private.allows(Uuid::from_u128(4)));
        assert!(access(true, &[1]).allows(Uuid::from_u128(4)));
    }
}
