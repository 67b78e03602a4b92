//! Frame encoding tests: every kind round-trips, and bad input is refused, never guessed.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

fn greeting() -> Greeting {
    Greeting {
        cluster_id: "listwire".into(),
        node_id: "node-a".into(),
        protocol_version: 3,
        nonce: [7u8; NONCE_BYTES],
    }
}

fn every_kind() -> Vec<Frame> {
    let payload = Bytes::from_static(b"opaque payload");
    vec![
        Frame::Hello(greeting()),
        Frame::Challenge(greeting(), [9u8; TAG_BYTES]),
        Frame::Proof([1u8; TAG_BYTES]),
        Frame::Welcome,
        Frame::Refused { code: 4 },
        Frame::Request {
            id: 1,
            budget_ms: 250,
            payload: payload.clone(),
        },
        Frame::Response {
            id: u64::MAX,
            payload: Bytes::new(),
        },
        Frame::Failure {
            id: 2,
            code: FailureCode::Handler,
            payload: payload.clone(),
        },
        Frame::Failure {
            id: 2,
            code: FailureCode::Busy,
            payload: Bytes::new(),
        },
        Frame::StreamOpen {
            id: 3,
            window: 128,
            payload: payload.clone(),
        },
        Frame::StreamItem {
            id: 3,
            payload: payload.clone(),
        },
        Frame::StreamEnd {
            id: 3,
            code: None,
            payload: Bytes::new(),
        },
        Frame::StreamEnd {
            id: 3,
            code: Some(FailureCode::Abandoned),
            payload,
        },
        Frame::StreamCancel { id: 4 },
        Frame::StreamCredit { id: 4, credit: 64 },
        Frame::Ping { seq: 5 },
        Frame::Pong { seq: 5 },
    ]
}

/// Every frame kind decodes to what was encoded, and starts with the framing version.
#[test]
fn every_kind_round_trips() {
    for frame in every_kind() {
        let bytes = frame.encode();
        assert_eq!(bytes[0], FRAME_VERSION);
        assert_eq!(Frame::decode(bytes).unwrap(), frame);
    }
}

/// A frame with another framing version is refused with the version it carried, before its
/// kind or body is looked at.
#[test]
fn unknown_version_is_refused() {
    let mut bytes = BytesMut::from(&Frame::Ping { seq: 1 }.encode()[..]);
    bytes[0] = FRAME_VERSION + 1;
    assert!(matches!(
        Frame::decode(bytes.freeze()),
        Err(Error::FrameVersion(2))
    ));
    let mut garbage = BytesMut::new();
    garbage.put_u8(0xEE);
    assert!(matches!(
        Frame::decode(garbage.freeze()),
        Err(Error::FrameVersion(0xEE))
    ));
}

/// Unknown kinds, unknown failure codes, truncated fields, trailing bytes and empty frames
/// are protocol errors.
#[test]
fn malformed_frames_are_refused() {
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![FRAME_VERSION],
        vec![FRAME_VERSION, 99],
        vec![FRAME_VERSION, 24, 0, 0, 0],
        {
            let mut ping = Frame::Ping { seq: 1 }.encode().to_vec();
            ping.push(0);
            ping
        },
        {
            let mut failure = Frame::Failure {
                id: 1,
                code: FailureCode::Busy,
                payload: Bytes::new(),
            }
            .encode()
            .to_vec();
            failure[10] = 77;
            failure
        },
        Frame::Proof([0u8; TAG_BYTES]).encode()[..2 + TAG_BYTES / 2].to_vec(),
        Frame::Hello(greeting()).encode()[..10].to_vec(),
    ];
    for case in cases {
        let result = Frame::decode(Bytes::from(case.clone()));
        assert!(
            matches!(result, Err(Error::Protocol(_))),
            "{case:?} gave {result:?}"
        );
    }
}

/// A greeting whose strings are not UTF-8 is refused.
#[test]
fn non_utf8_strings_are_refused() {
    let mut bytes = Frame::Hello(greeting()).encode().to_vec();
    // Layout: version, kind, u16 length, then the cluster id bytes.
    bytes[4] = 0xFF;
    assert!(matches!(
        Frame::decode(Bytes::from(bytes)),
        Err(Error::Protocol(_))
    ));
}

/// Payloads are zero-copy slices of the received buffer.
#[test]
fn payloads_share_the_buffer() {
    let bytes = Frame::StreamItem {
        id: 1,
        payload: Bytes::from_static(b"abc"),
    }
    .encode();
    let start = bytes.as_ptr() as usize;
    let Frame::StreamItem { payload, .. } = Frame::decode(bytes.clone()).unwrap() else {
        panic!("not an item");
    };
    assert_eq!(&payload[..], b"abc");
    assert_eq!(payload.as_ptr() as usize, start + 10);
}

/// The framing's length limit: an oversize frame fails to encode and, on the read side,
/// fails before its body is buffered (this is what keeps pre-authentication input small).
#[test]
fn length_limit_is_enforced_both_ways() {
    use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};
    let mut codec = LengthDelimitedCodec::builder()
        .max_frame_length(4096)
        .new_codec();
    let mut out = BytesMut::new();
    let too_big = Bytes::from(vec![0u8; 4097]);
    assert!(codec.encode(too_big, &mut out).is_err());
    let mut incoming = BytesMut::new();
    incoming.put_u32(1 << 20);
    incoming.put_slice(&[0u8; 16]);
    assert!(codec.decode(&mut incoming).is_err());
    assert!(
        incoming.capacity() < 1 << 20,
        "the oversize body was not reserved"
    );
}
