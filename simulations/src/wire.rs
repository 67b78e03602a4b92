//! A lean WebSocket client for load: connect, send pre-built frames, and read only what a
//! scenario needs from server frames (scanning, not full JSON parsing, on the hot paths).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::target::Target;

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Its sending half.
pub type WsSink = SplitSink<Ws, Message>;
/// Its receiving half.
pub type WsStream = SplitStream<Ws>;

/// Opens a WebSocket to `target` as simulated user `user`, on the node that user connects to
/// by default ([`Target::client_node`]: round-robin over a cluster's nodes).
pub async fn connect(target: &Target, user: u64) -> anyhow::Result<Ws> {
    connect_to(target, target.client_node(user), user).await
}

/// Opens a WebSocket to node `node` of `target` as simulated user `user`.
pub async fn connect_to(target: &Target, node: usize, user: u64) -> anyhow::Result<Ws> {
    connect_url(&target.ws_url_of(node), &target.token(user)).await
}

/// Opens a WebSocket to `url` with session `token` (for clients that reconnect on their own).
pub async fn connect_url(url: &str, token: &str) -> anyhow::Result<Ws> {
    let mut request = url.into_client_request()?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))?;
    request.headers_mut().insert("authorization", bearer);
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("websocket connect")?;
    Ok(socket)
}

/// Opens a WebSocket and splits it.
pub async fn connect_split(target: &Target, user: u64) -> anyhow::Result<(WsSink, WsStream)> {
    Ok(connect(target, user).await?.split())
}

/// Opens a WebSocket to node `node` and splits it.
pub async fn connect_split_to(
    target: &Target,
    node: usize,
    user: u64,
) -> anyhow::Result<(WsSink, WsStream)> {
    Ok(connect_to(target, node, user).await?.split())
}

/// An `op` frame.
pub fn op_frame(list: Uuid, op_id: Uuid, op_json: &str) -> Message {
    Message::text(format!(
        r#"{{"type":"op","list":"{list}","op_id":"{op_id}","op":{op_json}}}"#
    ))
}

/// A `subscribe` frame.
pub fn subscribe_frame(list: Uuid, since: Option<u64>) -> Message {
    let since = since
        .map(|seq| seq.to_string())
        .unwrap_or_else(|| "null".into());
    Message::text(format!(
        r#"{{"type":"subscribe","list":"{list}","since":{since}}}"#
    ))
}

/// Wall-clock nanoseconds since the Unix epoch (shared by processes on one machine, so a
/// writer's stamp and a subscriber's receipt are comparable).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or(0)
}

/// The item text a writer sends: carries its send time and sequence number.
pub fn marker_text(sent_nanos: u64, sequence: u64) -> String {
    format!("bench:{sent_nanos}:{sequence}")
}

/// Every `bench:<nanos>:<sequence>` marker in a frame, in order.
pub fn markers(frame: &str) -> impl Iterator<Item = (u64, u64)> + '_ {
    frame.match_indices("bench:").filter_map(move |(at, _)| {
        let rest = frame.get(at + 6..)?;
        let (nanos, rest) = rest.split_once(':')?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        Some((nanos.parse().ok()?, rest.get(..digits)?.parse().ok()?))
    })
}

/// The `type` of a server frame (they all start with `{"type":"`).
pub fn frame_type(frame: &str) -> &str {
    frame
        .strip_prefix(r#"{"type":""#)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

/// The first unsigned integer following `key` (e.g. `"seq":`).
pub fn number_after(frame: &str, key: &str) -> Option<u64> {
    let at = frame.find(key)? + key.len();
    let digits: String = frame
        .get(at..)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The string value following `key` (e.g. `"code":"`), up to the next quote.
pub fn string_after<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let at = frame.find(key)? + key.len();
    frame.get(at..)?.split('"').next()
}

/// The highest seq a subscription frame brings its reader to: a tally's or snapshot's `seq`,
/// a delta's `to`; `None` for other frames.
pub fn covered_seq(frame: &str) -> Option<u64> {
    match frame_type(frame) {
        "tally" | "snapshot" => number_after(frame, r#""seq":"#),
        "delta" => number_after(frame, r#""to":"#),
        _ => None,
    }
}

/// An `ack` or `error` answer to an op.
#[derive(Debug, Deserialize)]
pub struct Answer {
    /// `ack` or `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The op.
    pub op_id: Option<Uuid>,
    /// The seq (acks).
    pub seq: Option<u64>,
    /// The error code (errors).
    pub code: Option<String>,
}

/// Parses an `ack`/`error` frame; `None` for other frames.
pub fn answer(frame: &str) -> Option<Answer> {
    match frame_type(frame) {
        "ack" | "error" => serde_json::from_str(frame).ok(),
        _ => None,
    }
}

/// Reads the next text frame, skipping control frames; `None` when the connection ends.
pub async fn next_text(stream: &mut WsStream) -> Option<anyhow::Result<String>> {
    loop {
        match stream.next().await? {
            Ok(Message::Text(text)) => return Some(Ok(text.as_str().to_owned())),
            Ok(Message::Close(frame)) => return Some(Err(anyhow::anyhow!("closed: {frame:?}"))),
            Ok(_) => continue,
            Err(error) => return Some(Err(error.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scanning helpers find markers, types and numbers in real frame shapes.
    #[test]
    fn scans_frames() {
        let frame = r#"{"type":"delta","list":"x","from":7,"to":8,"events":[{"text":"bench:123:4"},{"text":"bench:125:5"}]}"#;
        assert_eq!(frame_type(frame), "delta");
        assert_eq!(number_after(frame, r#""from":"#), Some(7));
        assert_eq!(markers(frame).collect::<Vec<_>>(), vec![(123, 4), (125, 5)]);
        let ack = r#"{"type":"ack","op_id":"00000000-0000-0000-0000-000000000001","list":"00000000-0000-0000-0000-000000000002","seq":9}"#;
        assert_eq!(
            string_after(ack, r#""op_id":""#),
            Some("00000000-0000-0000-0000-000000000001")
        );
        assert_eq!(covered_seq(frame), Some(8));
        let tally = r#"{"type":"tally","list":"x","seq":12,"counts":{}}"#;
        assert_eq!(covered_seq(tally), Some(12));
        assert_eq!(covered_seq(ack), None);
        let parsed = answer(ack).unwrap();
        assert_eq!((parsed.kind.as_str(), parsed.seq), ("ack", Some(9)));
    }
}
