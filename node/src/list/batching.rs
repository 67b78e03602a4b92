//! The batches of one list actor: ops applied to `head` waiting to be stored, and the stored
//! body they become.

use tokio::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use listwire_storage::mutants::{self, Mutant};

use super::answers::Answer;
use super::OpKind;
use crate::domain::{create_digest, op_digest, Event};
use crate::host::Admitted;

/// An op waiting for its seq to become durable.
pub(super) struct Waiter {
    pub(super) seq: u64,
    pub(super) reply: Answer,
    pub(super) _admitted: Option<Admitted>,
    pub(super) received: Instant,
}

/// Events applied to `head` and not yet handed to storage, or handed and not yet durable.
/// `events`, `encoded` and `waiters` run in step: one waiter per event.
#[derive(Default)]
pub(super) struct Batching {
    pub(super) events: Vec<Event>,
    pub(super) encoded: Vec<Bytes>,
    pub(super) waiters: Vec<Waiter>,
}

impl Batching {
    /// Takes the longest prefix whose stored body stays within `bytes_max` (always at least one
    /// event: a single event is bounded by the domain limits), leaving the rest.
    pub(super) fn take_front(&mut self, bytes_max: usize) -> Batching {
        // The body is a version byte, brackets and a comma between events.
        let mut bytes = 3;
        let mut count = 0;
        for event in &self.encoded {
            if count > 0 && bytes + event.len() + 1 > bytes_max {
                break;
            }
            bytes += event.len() + 1;
            count += 1;
        }
        if count >= self.events.len() {
            return std::mem::take(self);
        }
        let events = self.events.split_off(count);
        let encoded = self.encoded.split_off(count);
        let waiters = self.waiters.split_off(count);
        Batching {
            events: std::mem::replace(&mut self.events, events),
            encoded: std::mem::replace(&mut self.encoded, encoded),
            waiters: std::mem::replace(&mut self.waiters, waiters),
        }
    }
}

/// Bytes reserved at a time for encoded events: the events of many ops share one allocation
/// (each event's `Bytes` is a slice of it), instead of a `Vec` and a copy per event. Small, as
/// every written list keeps the rest of its chunk (and its resume ring the chunks it uses).
pub(super) const ENCODER_CHUNK_BYTES: usize = 4 * 1024;

/// Encodes events into slices of a shared buffer.
#[derive(Default)]
pub(super) struct EventEncoder {
    buffer: BytesMut,
}

impl EventEncoder {
    /// The event's JSON (the bytes stored and sent in frames).
    pub(super) fn encode(&mut self, event: &Event) -> Result<Bytes, serde_json::Error> {
        // An event is bounded by the domain limits; a larger one grows the buffer as needed.
        if self.buffer.capacity() - self.buffer.len() < ENCODER_CHUNK_BYTES / 16 {
            self.buffer.reserve(ENCODER_CHUNK_BYTES);
        }
        #[cfg(test)]
        if tests::fails_to_encode(event) {
            self.buffer.clear();
            return Err(<serde_json::Error as serde::ser::Error>::custom(
                "test: encode fails",
            ));
        }
        if let Err(error) = serde_json::to_writer((&mut self.buffer).writer(), event) {
            self.buffer.clear();
            return Err(error);
        }
        Ok(self.buffer.split().freeze())
    }
}

/// The digest of (sender, op) of a request, to tell a retry from a reused op id.
pub(super) fn digest_of(kind: &OpKind) -> u64 {
    match kind {
        OpKind::Apply(command) => op_digest(command.by.user_id, &command.op),
        OpKind::Create { by, create, .. } => create_digest(by.user_id, create),
    }
}

/// The stored batch body: the format version, then the JSON array of the events (the same bytes
/// that go into delta frames), matching `domain::encode_batch`.
pub(super) fn encode_batch_body(encoded: &[Bytes]) -> Bytes {
    let payload: usize = encoded.iter().map(|event| event.len() + 1).sum();
    let mut body = BytesMut::with_capacity(payload + 3);
    body.put_u8(crate::domain::FORMAT_V2);
    body.put_u8(b'[');
    for (index, event) in encoded.iter().enumerate() {
        if index > 0 {
            body.put_u8(b',');
        }
        body.put_slice(event);
    }
    body.put_u8(b']');
    body.freeze()
}

/// `reply` itself, unless the `ack-before-durable` mutant is active: then the op is
/// acknowledged at once (before its append) and the durable outcome goes nowhere.
pub(super) fn acked_early_if_mutant(reply: Answer, seq: u64) -> Answer {
    if !mutants::active(Mutant::AckBeforeDurable) {
        return reply;
    }
    reply.send(Ok(seq));
    Answer::Reply(listwire_gateway::Reply::new(|_| {}))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The op id whose event fails to encode (a test's way into the abort path), or nil.
    static FAILING_OP: std::sync::Mutex<uuid::Uuid> = std::sync::Mutex::new(uuid::Uuid::nil());

    /// Makes the event of `op_id` fail to encode, in every list of this test process.
    pub(crate) fn fail_encoding_of(op_id: uuid::Uuid) {
        *FAILING_OP.lock().unwrap_or_else(|p| p.into_inner()) = op_id;
    }

    pub(super) fn fails_to_encode(event: &Event) -> bool {
        let failing = *FAILING_OP.lock().unwrap_or_else(|p| p.into_inner());
        !failing.is_nil() && event.op_id == failing
    }

    /// Goal: a list that wrote one small event keeps at most one small chunk of encoder
    /// buffer, not tens of KiB (every active list has an encoder).
    #[test]
    fn an_encoder_keeps_little_after_a_small_event() {
        let mut encoder = EventEncoder::default();
        let event = create_event("t");
        let encoded = encoder.encode(&event).unwrap();
        assert!(encoder.buffer.capacity() + encoded.len() <= ENCODER_CHUNK_BYTES);
        const { assert!(ENCODER_CHUNK_BYTES <= 4 * 1024) };
    }

    /// The create event of a list titled `title`.
    fn create_event(title: &str) -> Event {
        let mut state = crate::domain::ListState::new(uuid::Uuid::from_u128(7));
        let by = crate::domain::UserRef {
            user_id: uuid::Uuid::from_u128(1),
            username: "owner".into(),
        };
        let body = crate::domain::CreateList {
            title: title.into(),
            visibility: crate::domain::Visibility::Public,
            poll: None,
        };
        let limits = crate::domain::Limits::default();
        crate::domain::create(&mut state, uuid::Uuid::from_u128(2), &by, 1, &body, &limits).unwrap()
    }

    /// Goal: events encoded into the shared buffer are the same bytes as `serde_json::to_vec`,
    /// each its own slice, across the buffer's chunk boundary.
    #[test]
    fn encoder_slices_match_serde_json() {
        let mut encoder = EventEncoder::default();
        let event = create_event(&"t".repeat(100));
        let expected = serde_json::to_vec(&event).unwrap();
        let slices: Vec<Bytes> = (0..(2 * ENCODER_CHUNK_BYTES / expected.len() + 2))
            .map(|_| encoder.encode(&event).unwrap())
            .collect();
        for slice in &slices {
            assert_eq!(&slice[..], &expected[..]);
        }
    }

    /// The batch body built from per-event JSON must decode with the domain codec.
    #[test]
    fn batch_body_matches_domain_codec() {
        let events: Vec<Event> = Vec::new();
        let body = encode_batch_body(&[]);
        assert_eq!(crate::domain::decode_batch(&body).unwrap(), events);
        assert_eq!(&body[..], &crate::domain::encode_batch(&events)[..]);
    }
}
