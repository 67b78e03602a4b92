//! Every wire shape the gateway reads or writes itself, in one place.
//!
//! Client frames and HTTP bodies are parsed here without sockets; ack and error frames and HTTP
//! answer bodies are encoded here. Snapshot, delta and tally frames are not: the list owner
//! encodes them once and the gateway forwards the bytes untouched. These types are the
//! compatibility promise of `PROTOCOL.md`; nothing else in the crate derives `Serialize`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use crate::error::{EdgeError, ErrorCode};

/// A usable client → server WebSocket frame.
#[derive(Debug)]
pub(crate) enum ClientFrame {
    /// Start (or replace) a subscription; `since` is the last seq the client has.
    Subscribe { list: Uuid, since: Option<u64> },
    /// End a subscription.
    Unsubscribe { list: Uuid },
    /// Submit an op; `op` is the raw op object.
    Op {
        list: Uuid,
        op_id: Uuid,
        op: Box<RawValue>,
    },
}

/// A frame the server cannot use, with whatever ids could be read from it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FrameError {
    pub error: EdgeError,
    pub op_id: Option<Uuid>,
    pub list: Option<Uuid>,
}

/// Every field any client frame may carry, unparsed; unknown fields are ignored.
#[derive(Deserialize)]
struct LooseFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    list: Option<&'a RawValue>,
    #[serde(borrow)]
    op_id: Option<&'a RawValue>,
    #[serde(borrow)]
    since: Option<&'a RawValue>,
    #[serde(borrow)]
    op: Option<&'a RawValue>,
}

/// Parses one client text frame.
pub(crate) fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    if !text.trim_start().starts_with('{') {
        // Anything but an object: say so plainly rather than echo a parser's type names.
        let error = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => EdgeError::invalid("frame must be a json object"),
            Err(error) => json_error(&error),
        };
        return Err(FrameError {
            error,
            op_id: None,
            list: None,
        });
    }
    let loose: LooseFrame<'_> = serde_json::from_str(text).map_err(|error| FrameError {
        error: json_error(&error),
        op_id: None,
        list: None,
    })?;
    // Read the ids first, once, so that any later error can carry them.
    let op_id_opt = loose.op_id.and_then(parse_uuid);
    let list_opt = loose.list.and_then(parse_uuid);
    let fail = |error: EdgeError| FrameError {
        error,
        op_id: op_id_opt,
        list: list_opt,
    };
    let list = || required_uuid(loose.list, list_opt, "list");
    match frame_kind(loose.kind).map_err(fail)? {
        FrameKind::Subscribe => {
            let list = list().map_err(fail)?;
            let since = optional(loose.since, "since").map_err(fail)?;
            Ok(ClientFrame::Subscribe { list, since })
        }
        FrameKind::Unsubscribe => Ok(ClientFrame::Unsubscribe {
            list: list().map_err(fail)?,
        }),
        FrameKind::Op => {
            let list = list().map_err(fail)?;
            let op_id = required_uuid(loose.op_id, op_id_opt, "op_id").map_err(fail)?;
            let op = required_object(loose.op, "op").map_err(fail)?;
            Ok(ClientFrame::Op { list, op_id, op })
        }
    }
}

/// The client frame types.
enum FrameKind {
    Subscribe,
    Unsubscribe,
    Op,
}

/// The frame's `type`: compared as written first (no allocation), parsed only if escaped.
fn frame_kind(raw: Option<&RawValue>) -> Result<FrameKind, EdgeError> {
    let known = |name: &str| match name {
        "subscribe" => Some(FrameKind::Subscribe),
        "unsubscribe" => Some(FrameKind::Unsubscribe),
        "op" => Some(FrameKind::Op),
        _ => None,
    };
    let written = raw
        .and_then(|raw| raw.get().strip_prefix('"'))
        .and_then(|rest| rest.strip_suffix('"'));
    if let Some(kind) = written.and_then(known) {
        return Ok(kind);
    }
    let kind: String = required(raw, "type")?;
    known(&kind).ok_or_else(|| EdgeError::invalid(format!("unknown frame type {kind:?}")))
}

fn parse_uuid(raw: &RawValue) -> Option<Uuid> {
    serde_json::from_str(raw.get()).ok()
}

/// A required uuid field already parsed (or not) into `parsed`.
fn required_uuid(
    raw: Option<&RawValue>,
    parsed: Option<Uuid>,
    field: &str,
) -> Result<Uuid, EdgeError> {
    match (raw, parsed) {
        (_, Some(id)) => Ok(id),
        (None, None) => Err(EdgeError::invalid(format!("{field} is required"))),
        (Some(_), None) => Err(EdgeError::invalid(format!("{field} is ill-typed"))),
    }
}

/// Reads `op_id` and `list` from a frame too large to handle, if they are cheap to find:
/// only when the frame parses as JSON at all (the parse is bounded by the hard maximum).
pub(crate) fn read_ids(text: &str) -> (Option<Uuid>, Option<Uuid>) {
    match serde_json::from_str::<LooseFrame<'_>>(text) {
        Ok(loose) => (
            loose.op_id.and_then(parse_uuid),
            loose.list.and_then(parse_uuid),
        ),
        Err(_) => (None, None),
    }
}

/// A required field of type `T`; a missing or `null` field and a wrong type are `invalid`.
fn required<T: for<'de> Deserialize<'de>>(
    raw: Option<&RawValue>,
    field: &str,
) -> Result<T, EdgeError> {
    match raw {
        None => Err(EdgeError::invalid(format!("{field} is required"))),
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| EdgeError::invalid(format!("{field} is ill-typed"))),
    }
}

/// An optional field of type `T` (missing or `null` is `None`).
fn optional<T: for<'de> Deserialize<'de>>(
    raw: Option<&RawValue>,
    field: &str,
) -> Result<Option<T>, EdgeError> {
    match raw {
        None => Ok(None),
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| EdgeError::invalid(format!("{field} is ill-typed"))),
    }
}

/// A required JSON object, kept raw.
fn required_object(raw: Option<&RawValue>, field: &str) -> Result<Box<RawValue>, EdgeError> {
    match raw {
        Some(raw) if raw.get().starts_with('{') => Ok(raw.to_owned()),
        Some(_) => Err(EdgeError::invalid(format!("{field} must be an object"))),
        None => Err(EdgeError::invalid(format!("{field} is required"))),
    }
}

/// The `invalid` error for a body or frame that is not the JSON we expect.
pub(crate) fn json_error(error: &serde_json::Error) -> EdgeError {
    if error.is_syntax() || error.is_eof() {
        EdgeError::invalid("malformed json")
    } else {
        EdgeError::invalid(format!("bad json: {error}"))
    }
}

#[cfg(test)]
#[derive(Serialize)]
struct AckFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    op_id: Uuid,
    list: Uuid,
    seq: u64,
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    op_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    list: Option<Uuid>,
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

/// `{"type":"ack","op_id","list","seq"}`, written directly (one allocation of the exact size;
/// the bytes equal what serde writes for [`AckFrame`], which a test checks).
pub(crate) fn ack_frame(op_id: Uuid, list: Uuid, seq: u64) -> Bytes {
    const HEAD: &[u8] = br#"{"type":"ack","op_id":""#;
    let mut digits = itoa::Buffer::new();
    let seq = digits.format(seq).as_bytes();
    let mut out = Vec::with_capacity(HEAD.len() + 2 * Hyphenated::LENGTH + 20 + seq.len());
    let mut id = [0u8; Hyphenated::LENGTH];
    out.extend_from_slice(HEAD);
    out.extend_from_slice(op_id.hyphenated().encode_lower(&mut id).as_bytes());
    out.extend_from_slice(br#"","list":""#);
    out.extend_from_slice(list.hyphenated().encode_lower(&mut id).as_bytes());
    out.extend_from_slice(br#"","seq":"#);
    out.extend_from_slice(seq);
    out.push(b'}');
    Bytes::from(out)
}

/// `{"type":"error",["op_id"],["list"],"code","message"[,"retry_after_ms"]}`.
pub(crate) fn error_frame(error: &EdgeError, op_id: Option<Uuid>, list: Option<Uuid>) -> Bytes {
    encode(&ErrorFrame {
        kind: "error",
        op_id,
        list,
        code: error.code,
        message: &error.message,
        retry_after_ms: error.retry_after_ms,
    })
}

/// The HTTP error body `{"code","message"[,"retry_after_ms"]}`.
#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub code: ErrorCode,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `POST /v1/auth/register` and `/v1/auth/login` request body.
#[derive(Deserialize)]
pub(crate) struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The answer to a successful register or login.
#[derive(Serialize)]
pub(crate) struct Session {
    pub user_id: Uuid,
    pub token: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
    pub expires_at_ms: u64,
}

/// `POST /v1/lists/{id}/ops` request body, unparsed so errors can name the field.
#[derive(Deserialize)]
pub(crate) struct LooseOpRequest<'a> {
    #[serde(borrow)]
    pub op_id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub op: Option<&'a RawValue>,
}

impl LooseOpRequest<'_> {
    /// The op id and the raw op object.
    pub fn parse(&self) -> Result<(Uuid, Box<RawValue>), EdgeError> {
        let op_id = required(self.op_id, "op_id")?;
        let op = required_object(self.op, "op")?;
        Ok((op_id, op))
    }
}

/// `{"seq"}`, the answer to an HTTP op.
#[derive(Serialize)]
pub(crate) struct SeqBody {
    pub seq: u64,
}

/// `{"list_id"}`, the answer to `POST /v1/lists`.
#[derive(Serialize)]
pub(crate) struct CreatedList {
    pub list_id: Uuid,
}

/// `{"stopping":true}`, the answer to `POST /v1/admin/stop` (the stop has begun).
#[derive(Serialize)]
pub(crate) struct StoppingBody {
    pub stopping: bool,
}

/// The query of `GET /v1/admin/cluster`; unknown parameters are ignored.
#[derive(Deserialize)]
pub(crate) struct ClusterQuery {
    pub list: Option<String>,
}

/// `GET /v1/admin/lists?limit=N`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListsQuery {
    pub limit: Option<usize>,
}

/// Encodes a wire value; our wire types always serialize.
pub(crate) fn encode<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("wire types serialize infallibly"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "0195a4d2-7c4e-7d2a-9f1a-2b3c4d5e6f70";
    const OP_ID: &str = "0195a4d2-7c4e-7d2a-9f1a-2b3c4d5e6f71";

    fn invalid(text: &str) -> FrameError {
        parse_client_frame(text).expect_err("the frame should be refused")
    }

    // Goal: each client frame kind parses, with unknown fields ignored and `since` optional.
    #[test]
    fn parses_valid_frames() {
        let subscribe = format!(r#"{{"type":"subscribe","list":"{LIST}","since":42,"extra":[1]}}"#);
        assert!(matches!(
            parse_client_frame(&subscribe),
            Ok(ClientFrame::Subscribe {
                since: Some(42),
                ..
            })
        ));
        let snapshot = format!(r#"{{"type":"subscribe","list":"{LIST}","since":null}}"#);
        assert!(matches!(
            parse_client_frame(&snapshot),
            Ok(ClientFrame::Subscribe { since: None, .. })
        ));
        let unsubscribe = format!(r#"{{"type":"unsubscribe","list":"{LIST}"}}"#);
        assert!(matches!(
            parse_client_frame(&unsubscribe),
            Ok(ClientFrame::Unsubscribe { .. })
        ));
        let op = format!(
            r#"{{"type":"op","list":"{LIST}","op_id":"{OP_ID}","op":{{"kind":"rename","title":"x"}}}}"#
        );
        match parse_client_frame(&op) {
            Ok(ClientFrame::Op { op, op_id, .. }) => {
                assert_eq!(op.get(), r#"{"kind":"rename","title":"x"}"#);
                assert_eq!(op_id.to_string(), OP_ID);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    // Goal: unusable frames are `invalid`, carrying the ids that could be read.
    #[test]
    fn refuses_unusable_frames_with_readable_ids() {
        let malformed = invalid("{not json");
        assert_eq!(malformed.error.code, ErrorCode::Invalid);
        assert_eq!((malformed.op_id, malformed.list), (None, None));

        assert_eq!(invalid("[1,2]").error.code, ErrorCode::Invalid);
        assert!(invalid("{}").error.message.contains("type"));

        let unknown = invalid(&format!(
            r#"{{"type":"dance","list":"{LIST}","op_id":"{OP_ID}"}}"#
        ));
        assert!(unknown.error.message.contains("unknown frame type"));
        assert_eq!(unknown.list.map(|id| id.to_string()).as_deref(), Some(LIST));
        assert_eq!(
            unknown.op_id.map(|id| id.to_string()).as_deref(),
            Some(OP_ID)
        );

        let bad_op_id = invalid(&format!(
            r#"{{"type":"op","list":"{LIST}","op_id":"nope","op":{{}}}}"#
        ));
        assert!(bad_op_id.error.message.contains("op_id"));
        assert_eq!((bad_op_id.op_id, bad_op_id.list.is_some()), (None, true));

        let op_not_object = invalid(&format!(
            r#"{{"type":"op","list":"{LIST}","op_id":"{OP_ID}","op":3}}"#
        ));
        assert!(op_not_object.error.message.contains("op must be an object"));

        let since_string = invalid(&format!(
            r#"{{"type":"subscribe","list":"{LIST}","since":"7"}}"#
        ));
        assert!(since_string.error.message.contains("since"));

        assert!(invalid(r#"{"type":"unsubscribe"}"#)
            .error
            .message
            .contains("list is required"));
    }

    // Goal: ack and error frames have the protocol's exact shape.
    #[test]
    fn non_object_frames_are_named_plainly() {
        // Goal: a valid json value that is not an object gets a plain message, not parser type names.
        for text in ["[1]", "42", "\"op\"", "null"] {
            let error = invalid(text).error;
            assert_eq!(error.message, "frame must be a json object", "{text}");
        }
        assert_eq!(invalid("[1,").error.message, "malformed json");
    }

    #[test]
    fn encodes_ack_and_error_frames() {
        let list: Uuid = LIST.parse().unwrap();
        let op_id: Uuid = OP_ID.parse().unwrap();
        for seq in [0, 43, u64::MAX] {
            let reference = encode(&AckFrame {
                kind: "ack",
                op_id,
                list,
                seq,
            });
            assert_eq!(ack_frame(op_id, list, seq), reference, "byte for byte");
        }
        let ack: serde_json::Value = serde_json::from_slice(&ack_frame(op_id, list, 43)).unwrap();
        assert_eq!(
            ack,
            serde_json::json!({"type":"ack","op_id":OP_ID,"list":LIST,"seq":43})
        );

        let limited = error_frame(&EdgeError::rate_limited(250), Some(op_id), Some(list));
        let limited: serde_json::Value = serde_json::from_slice(&limited).unwrap();
        assert_eq!(
            limited,
            serde_json::json!({"type":"error","op_id":OP_ID,"list":LIST,"code":"rate_limited",
                               "message":"rate limit exceeded","retry_after_ms":250})
        );
        let bare: serde_json::Value =
            serde_json::from_slice(&error_frame(&EdgeError::invalid("x"), None, None)).unwrap();
        assert_eq!(
            bare,
            serde_json::json!({"type":"error","code":"invalid","message":"x"})
        );
    }

    // Goal: a too-large frame still yields its ids when it is well-formed JSON.
    #[test]
    fn reads_ids_from_large_frames() {
        let text = format!(
            r#"{{"type":"op","list":"{LIST}","op_id":"{OP_ID}","op":{{"text":"{}"}}}}"#,
            "a".repeat(100)
        );
        let (op_id, list) = read_ids(&text);
        assert!(op_id.is_some() && list.is_some());
        assert_eq!(read_ids("{truncated"), (None, None));
    }
}
