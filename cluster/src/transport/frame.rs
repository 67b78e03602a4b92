//! The wire format of one internode frame, parsed and built without sockets.
//!
//! Every frame travels inside a length-delimited envelope (a 4-byte big-endian length, from
//! tokio-util's `LengthDelimitedCodec`) and starts with two bytes: the framing version
//! ([`FRAME_VERSION`]) and the frame kind. Integers are big-endian; strings carry a u16 length
//! prefix; payloads run to the end of the frame. Decoding is strict: unknown versions or kinds,
//! short fields and trailing bytes are errors, never guesses.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Error;

/// The framing version this build writes and the only one it reads.
pub const FRAME_VERSION: u8 = 1;

/// Bytes a frame adds around its payload at most (version, kind, id, a u32 and a code).
pub const FRAME_OVERHEAD_BYTES_MAX: usize = 16;

/// Bytes of a handshake nonce (256 bits).
pub const NONCE_BYTES: usize = 32;

/// Bytes of an HMAC-SHA256 tag.
pub const TAG_BYTES: usize = 32;

/// Why the peer's handler did not produce a response or a clean stream end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureCode {
    /// The handler answered with an error payload.
    Handler = 1,
    /// The peer is at its per-connection limit of requests or streams.
    Busy = 2,
    /// The response or item would not fit in a frame.
    TooLarge = 3,
    /// The server-side stream handle was dropped without being ended.
    Abandoned = 4,
}

impl FailureCode {
    fn parse(byte: u8) -> Result<FailureCode, Error> {
        match byte {
            1 => Ok(FailureCode::Handler),
            2 => Ok(FailureCode::Busy),
            3 => Ok(FailureCode::TooLarge),
            4 => Ok(FailureCode::Abandoned),
            other => Err(Error::Protocol(format!("unknown failure code {other}"))),
        }
    }
}

/// The opening of a handshake, shared by the client's hello and the server's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Greeting {
    pub(crate) cluster_id: String,
    pub(crate) node_id: String,
    pub(crate) protocol_version: u32,
    pub(crate) nonce: [u8; NONCE_BYTES],
}

/// One frame, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Client → server: who the client is and its nonce.
    Hello(Greeting),
    /// Server → client: who the server is, its nonce, and its proof over both nonces.
    Challenge(Greeting, [u8; TAG_BYTES]),
    /// Client → server: the client's proof over both nonces.
    Proof([u8; TAG_BYTES]),
    /// Server → client: the client's proof was accepted.
    Welcome,
    /// Server → client, just before closing: the handshake was refused, and why (a
    /// [`RefusalCode`]), so the operator of the refused node sees the cause in its own logs.
    Refused { code: u8 },
    /// A request with the caller's remaining time budget in milliseconds.
    Request {
        id: u64,
        budget_ms: u32,
        payload: Bytes,
    },
    /// The handler's successful response.
    Response { id: u64, payload: Bytes },
    /// The request failed on the peer.
    Failure {
        id: u64,
        code: FailureCode,
        payload: Bytes,
    },
    /// Opens a server-pushed stream; the client grants `window` items of credit.
    StreamOpen {
        id: u64,
        window: u32,
        payload: Bytes,
    },
    /// One pushed item.
    StreamItem { id: u64, payload: Bytes },
    /// The end of a stream: clean when `code` is `None`.
    StreamEnd {
        id: u64,
        code: Option<FailureCode>,
        payload: Bytes,
    },
    /// The client gives up a stream.
    StreamCancel { id: u64 },
    /// The client consumed `credit` more items: the server may push that many more.
    StreamCredit { id: u64, credit: u32 },
    /// A heartbeat probe; the peer answers with a pong of the same sequence number.
    Ping { seq: u64 },
    /// The answer to a ping.
    Pong { seq: u64 },
}

mod kind {
    pub const HELLO: u8 = 1;
    pub const CHALLENGE: u8 = 2;
    pub const PROOF: u8 = 3;
    pub const WELCOME: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const REQUEST: u8 = 16;
    pub const RESPONSE: u8 = 17;
    pub const FAILURE: u8 = 18;
    pub const STREAM_OPEN: u8 = 19;
    pub const STREAM_ITEM: u8 = 20;
    pub const STREAM_END: u8 = 21;
    pub const STREAM_CANCEL: u8 = 22;
    pub const STREAM_CREDIT: u8 = 23;
    pub const PING: u8 = 24;
    pub const PONG: u8 = 25;
}

impl Frame {
    /// The frame's bytes, without the length prefix.
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(FRAME_OVERHEAD_BYTES_MAX + self.payload_len());
        out.put_u8(FRAME_VERSION);
        match self {
            Frame::Hello(greeting) => {
                out.put_u8(kind::HELLO);
                put_greeting(&mut out, greeting);
            }
            Frame::Challenge(greeting, tag) => {
                out.put_u8(kind::CHALLENGE);
                put_greeting(&mut out, greeting);
                out.put_slice(tag);
            }
            Frame::Proof(tag) => {
                out.put_u8(kind::PROOF);
                out.put_slice(tag);
            }
            Frame::Welcome => out.put_u8(kind::WELCOME),
            Frame::Refused { code } => {
                out.put_u8(kind::REFUSED);
                out.put_u8(*code);
            }
            Frame::Request {
                id,
                budget_ms,
                payload,
            } => {
                put_head(&mut out, kind::REQUEST, *id);
                out.put_u32(*budget_ms);
                out.put_slice(payload);
            }
            Frame::Response { id, payload } => {
                put_head(&mut out, kind::RESPONSE, *id);
                out.put_slice(payload);
            }
            Frame::Failure { id, code, payload } => {
                put_head(&mut out, kind::FAILURE, *id);
                out.put_u8(*code as u8);
                out.put_slice(payload);
            }
            Frame::StreamOpen {
                id,
                window,
                payload,
            } => {
                put_head(&mut out, kind::STREAM_OPEN, *id);
                out.put_u32(*window);
                out.put_slice(payload);
            }
            Frame::StreamItem { id, payload } => {
                put_head(&mut out, kind::STREAM_ITEM, *id);
                out.put_slice(payload);
            }
            Frame::StreamEnd { id, code, payload } => {
                put_head(&mut out, kind::STREAM_END, *id);
                out.put_u8(code.map_or(0, |code| code as u8));
                out.put_slice(payload);
            }
            Frame::StreamCancel { id } => put_head(&mut out, kind::STREAM_CANCEL, *id),
            Frame::StreamCredit { id, credit } => {
                put_head(&mut out, kind::STREAM_CREDIT, *id);
                out.put_u32(*credit);
            }
            Frame::Ping { seq } => put_head(&mut out, kind::PING, *seq),
            Frame::Pong { seq } => put_head(&mut out, kind::PONG, *seq),
        }
        out.freeze()
    }

    /// The kind's name, for logs and errors (never the payload, which may be large).
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Challenge(..) => "challenge",
            Frame::Proof(_) => "proof",
            Frame::Welcome => "welcome",
            Frame::Refused { .. } => "refused",
            Frame::Request { .. } => "request",
            Frame::Response { .. } => "response",
            Frame::Failure { .. } => "failure",
            Frame::StreamOpen { .. } => "stream open",
            Frame::StreamItem { .. } => "stream item",
            Frame::StreamEnd { .. } => "stream end",
            Frame::StreamCancel { .. } => "stream cancel",
            Frame::StreamCredit { .. } => "stream credit",
            Frame::Ping { .. } => "ping",
            Frame::Pong { .. } => "pong",
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Frame::Request { payload, .. }
            | Frame::Response { payload, .. }
            | Frame::Failure { payload, .. }
            | Frame::StreamOpen { payload, .. }
            | Frame::StreamItem { payload, .. }
            | Frame::StreamEnd { payload, .. } => payload.len(),
            Frame::Hello(_) | Frame::Challenge(..) => 2 * crate::NODE_ID_BYTES_MAX + 128,
            _ => 0,
        }
    }

    /// Parses one frame (without its length prefix). Payloads share `bytes`' buffer.
    pub(crate) fn decode(mut bytes: Bytes) -> Result<Frame, Error> {
        let version = take_u8(&mut bytes)?;
        if version != FRAME_VERSION {
            return Err(Error::FrameVersion(version));
        }
        let frame = match take_u8(&mut bytes)? {
            kind::HELLO => Frame::Hello(take_greeting(&mut bytes)?),
            kind::CHALLENGE => {
                Frame::Challenge(take_greeting(&mut bytes)?, take_array(&mut bytes)?)
            }
            kind::PROOF => Frame::Proof(take_array(&mut bytes)?),
            kind::WELCOME => Frame::Welcome,
            kind::REFUSED => Frame::Refused {
                code: take_u8(&mut bytes)?,
            },
            kind::REQUEST => Frame::Request {
                id: take_u64(&mut bytes)?,
                budget_ms: take_u32(&mut bytes)?,
                payload: take_rest(&mut bytes),
            },
            kind::RESPONSE => Frame::Response {
                id: take_u64(&mut bytes)?,
                payload: take_rest(&mut bytes),
            },
            kind::FAILURE => Frame::Failure {
                id: take_u64(&mut bytes)?,
                code: FailureCode::parse(take_u8(&mut bytes)?)?,
                payload: take_rest(&mut bytes),
            },
            kind::STREAM_OPEN => Frame::StreamOpen {
                id: take_u64(&mut bytes)?,
                window: take_u32(&mut bytes)?,
                payload: take_rest(&mut bytes),
            },
            kind::STREAM_ITEM => Frame::StreamItem {
                id: take_u64(&mut bytes)?,
                payload: take_rest(&mut bytes),
            },
            kind::STREAM_END => {
                let id = take_u64(&mut bytes)?;
                let code = match take_u8(&mut bytes)? {
                    0 => None,
                    byte => Some(FailureCode::parse(byte)?),
                };
                let payload = take_rest(&mut bytes);
                Frame::StreamEnd { id, code, payload }
            }
            kind::STREAM_CANCEL => Frame::StreamCancel {
                id: take_u64(&mut bytes)?,
            },
            kind::STREAM_CREDIT => Frame::StreamCredit {
                id: take_u64(&mut bytes)?,
                credit: take_u32(&mut bytes)?,
            },
            kind::PING => Frame::Ping {
                seq: take_u64(&mut bytes)?,
            },
            kind::PONG => Frame::Pong {
                seq: take_u64(&mut bytes)?,
            },
            other => return Err(Error::Protocol(format!("unknown frame kind {other}"))),
        };
        if bytes.has_remaining() {
            return Err(Error::Protocol("trailing bytes after frame".into()));
        }
        Ok(frame)
    }
}

fn put_head(out: &mut BytesMut, kind: u8, id: u64) {
    out.put_u8(kind);
    out.put_u64(id);
}

fn put_greeting(out: &mut BytesMut, greeting: &Greeting) {
    put_str(out, &greeting.cluster_id);
    put_str(out, &greeting.node_id);
    out.put_u32(greeting.protocol_version);
    out.put_slice(&greeting.nonce);
}

/// Strings longer than u16 never reach here: ids and cluster ids are validated short.
fn put_str(out: &mut BytesMut, text: &str) {
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.put_u16(len);
    out.put_slice(text.as_bytes().get(..usize::from(len)).unwrap_or_default());
}

fn short() -> Error {
    Error::Protocol("frame too short".into())
}

fn take_u8(bytes: &mut Bytes) -> Result<u8, Error> {
    bytes.try_get_u8().map_err(|_| short())
}

fn take_u32(bytes: &mut Bytes) -> Result<u32, Error> {
    bytes.try_get_u32().map_err(|_| short())
}

fn take_u64(bytes: &mut Bytes) -> Result<u64, Error> {
    bytes.try_get_u64().map_err(|_| short())
}

fn take_array<const N: usize>(bytes: &mut Bytes) -> Result<[u8; N], Error> {
    let mut array = [0u8; N];
    bytes.try_copy_to_slice(&mut array).map_err(|_| short())?;
    Ok(array)
}

fn take_str(bytes: &mut Bytes) -> Result<String, Error> {
    let len = usize::from(bytes.try_get_u16().map_err(|_| short())?);
    if bytes.remaining() < len {
        return Err(short());
    }
    let raw = bytes.split_to(len);
    String::from_utf8(raw.to_vec()).map_err(|_| Error::Protocol("string is not utf-8".into()))
}

fn take_greeting(bytes: &mut Bytes) -> Result<Greeting, Error> {
    Ok(Greeting {
        cluster_id: take_str(bytes)?,
        node_id: take_str(bytes)?,
        protocol_version: take_u32(bytes)?,
        nonce: take_array(bytes)?,
    })
}

fn take_rest(bytes: &mut Bytes) -> Bytes {
    std::mem::take(bytes)
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
