//! Server → client frames built by the list owner. Each is encoded once; the same `Bytes` are
//! queued to every subscriber.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// `{"type":"delta","list":..,"from":..,"to":..,"events":[..]}` from pre-encoded event JSON.
pub fn delta(list: Uuid, from: u64, to: u64, events: &[Bytes]) -> Bytes {
    let payload: usize = events.iter().map(|event| event.len() + 1).sum();
    let mut out = BytesMut::with_capacity(payload + 96);
    out.put_slice(br#"{"type":"delta","list":""#);
    put_uuid(&mut out, list);
    out.put_slice(br#"","from":"#);
    put_u64(&mut out, from);
    out.put_slice(br#","to":"#);
    put_u64(&mut out, to);
    out.put_slice(br#","events":["#);
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            out.put_u8(b',');
        }
        out.put_slice(event);
    }
    out.put_slice(b"]}");
    out.freeze()
}

/// `{"type":"snapshot","list":..,"seq":..,"state":{..}}`.
pub fn snapshot(list: Uuid, seq: u64, state_json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(state_json.len() + 96);
    out.put_slice(br#"{"type":"snapshot","list":""#);
    put_uuid(&mut out, list);
    out.put_slice(br#"","seq":"#);
    put_u64(&mut out, seq);
    out.put_slice(br#","state":"#);
    out.put_slice(state_json);
    out.put_u8(b'}');
    out.freeze()
}

/// `{"type":"tally","list":..,"seq":..,"counts":{..}}`.
pub fn tally(list: Uuid, seq: u64, counts_json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(counts_json.len() + 96);
    out.put_slice(br#"{"type":"tally","list":""#);
    put_uuid(&mut out, list);
    out.put_slice(br#"","seq":"#);
    put_u64(&mut out, seq);
    out.put_slice(br#","counts":"#);
    out.put_slice(counts_json);
    out.put_u8(b'}');
    out.freeze()
}

/// An `error` frame about a list (no op id), e.g. when access is revoked.
pub fn list_error(list: Uuid, code: &str, message: &str) -> Bytes {
    /// Fields in the protocol's order: `type` first, as in every server frame.
    #[derive(serde::Serialize)]
    struct ListError<'a> {
        r#type: &'static str,
        list: Uuid,
        code: &'a str,
        message: &'a str,
    }
    let frame = ListError {
        r#type: "error",
        list,
        code,
        message,
    };
    // Plain strings and a UUID always serialize.
    Bytes::from(serde_json::to_vec(&frame).unwrap_or_default())
}

fn put_uuid(out: &mut BytesMut, id: Uuid) {
    let mut buffer = Uuid::encode_buffer();
    out.put_slice(id.hyphenated().encode_lower(&mut buffer).as_bytes());
}

fn put_u64(out: &mut BytesMut, value: u64) {
    out.put_slice(value.to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: a list error frame starts with its type, like every server frame (clients that
    /// read the type without parsing the whole frame rely on it).
    #[test]
    fn list_error_starts_with_its_type() {
        let list = Uuid::from_u128(7);
        let frame = list_error(list, "moved", "say \"hi\"");
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with(r#"{"type":"error","list":""#), "{text}");
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed["code"], "moved");
        assert_eq!(parsed["message"], "say \"hi\"");
    }

    /// Frames built by hand must be valid JSON with the protocol's fields.
    #[test]
    fn frames_are_valid_json() {
        let list = Uuid::from_u128(7);
        let events = [
            Bytes::from_static(br#"{"seq":3}"#),
            Bytes::from_static(br#"{"seq":4}"#),
        ];
        let value: serde_json::Value = serde_json::from_slice(&delta(list, 3, 4, &events)).unwrap();
        assert_eq!(value["type"], "delta");
        assert_eq!(value["list"], list.to_string());
        assert_eq!(value["from"], 3);
        assert_eq!(value["to"], 4);
        assert_eq!(value["events"][1]["seq"], 4);
        let value: serde_json::Value =
            serde_json::from_slice(&snapshot(list, 9, br#"{"a":1}"#)).unwrap();
        assert_eq!(value["state"]["a"], 1);
        assert_eq!(value["seq"], 9);
        let value: serde_json::Value =
            serde_json::from_slice(&tally(list, 5, br#"{"x":2}"#)).unwrap();
        assert_eq!(value["counts"]["x"], 2);
        let value: serde_json::Value =
            serde_json::from_slice(&list_error(list, "forbidden", "revoked")).unwrap();
        assert_eq!(value["code"], "forbidden");
    }
}
