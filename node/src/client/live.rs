//! The live WebSocket half of the client.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use super::ClientError;

/// A frame from the server (`docs/PROTOCOL.md`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The whole list state.
    Snapshot {
        /// The list.
        list: Uuid,
        /// The seq the state is at.
        seq: u64,
        /// The state.
        state: Value,
    },
    /// Events `from..=to`.
    Delta {
        /// The list.
        list: Uuid,
        /// First seq.
        from: u64,
        /// Last seq.
        to: u64,
        /// The events.
        events: Vec<Value>,
    },
    /// Poll counts as of `seq`.
    Tally {
        /// The list.
        list: Uuid,
        /// The seq the counts stand for.
        seq: u64,
        /// Item id → votes.
        counts: Value,
    },
    /// An op is durable.
    Ack {
        /// The op.
        op_id: Uuid,
        /// The list.
        list: Uuid,
        /// Its seq.
        seq: u64,
    },
    /// Something was refused.
    Error {
        /// The op, when known.
        #[serde(default)]
        op_id: Option<Uuid>,
        /// The list, when known.
        #[serde(default)]
        list: Option<Uuid>,
        /// Protocol error code.
        code: String,
        /// Message.
        #[serde(default)]
        message: String,
        /// Retry hint.
        #[serde(default)]
        retry_after_ms: Option<u64>,
    },
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One WebSocket connection.
pub struct Live {
    socket: Socket,
    buffered: VecDeque<ServerFrame>,
}

const DEFAULT_WAIT: Duration = Duration::from_secs(10);

impl Live {
    pub(super) async fn connect(base: &str, token: &str) -> Result<Self, ClientError> {
        let url = format!("{}/v1/ws", base.replacen("http", "ws", 1));
        let mut request = url
            .into_client_request()
            .map_err(|error| ClientError::Transport(error.to_string()))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|error| ClientError::Protocol(error.to_string()))?;
        request.headers_mut().insert("authorization", bearer);
        let (socket, _response) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|error| ClientError::Transport(error.to_string()))?;
        Ok(Self {
            socket,
            buffered: VecDeque::new(),
        })
    }

    /// Sends a text frame as is (tests use it for malformed input).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        let text: String = text.into();
        self.socket
            .send(Message::text(text))
            .await
            .map_err(|error| ClientError::Transport(error.to_string()))
    }

    /// Sends a raw WebSocket message.
    pub async fn send_message(&mut self, message: Message) -> Result<(), ClientError> {
        self.socket
            .send(message)
            .await
            .map_err(|error| ClientError::Transport(error.to_string()))
    }

    /// `subscribe` (the catch-up frames follow on [`Live::next`]).
    pub async fn subscribe(&mut self, list: Uuid, since: Option<u64>) -> Result<(), ClientError> {
        self.send_text(json!({"type": "subscribe", "list": list, "since": since}).to_string())
            .await
    }

    /// `unsubscribe`.
    pub async fn unsubscribe(&mut self, list: Uuid) -> Result<(), ClientError> {
        self.send_text(json!({"type": "unsubscribe", "list": list}).to_string())
            .await
    }

    /// Sends an op without waiting for its ack.
    pub async fn send_op(
        &mut self,
        list: Uuid,
        op_id: Uuid,
        op: &Value,
    ) -> Result<(), ClientError> {
        self.send_text(json!({"type": "op", "list": list, "op_id": op_id, "op": op}).to_string())
            .await
    }

    /// Sends an op and waits for its ack (other frames stay queued for [`Live::next`]).
    pub async fn op(&mut self, list: Uuid, op_id: Uuid, op: &Value) -> Result<u64, ClientError> {
        self.send_op(list, op_id, op).await?;
        let mut skipped = VecDeque::new();
        let outcome = loop {
            match self.read(DEFAULT_WAIT).await {
                Ok(ServerFrame::Ack {
                    op_id: acked, seq, ..
                }) if acked == op_id => break Ok(seq),
                Ok(ServerFrame::Error {
                    op_id: Some(failed),
                    code,
                    message,
                    retry_after_ms,
                    ..
                }) if failed == op_id => {
                    break Err(ClientError::Api {
                        status: 0,
                        code,
                        message,
                        retry_after_ms,
                    })
                }
                Ok(other) => skipped.push_back(other),
                Err(error) => break Err(error),
            }
        };
        skipped.append(&mut self.buffered);
        self.buffered = skipped;
        outcome
    }

    /// The next frame, waiting at most 10 s.
    pub async fn next(&mut self) -> Result<ServerFrame, ClientError> {
        self.next_within(DEFAULT_WAIT).await
    }

    /// The next frame, waiting at most `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Result<ServerFrame, ClientError> {
        if let Some(frame) = self.buffered.pop_front() {
            return Ok(frame);
        }
        self.read(wait).await
    }

    async fn read(&mut self, wait: Duration) -> Result<ServerFrame, ClientError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .map_err(|_| ClientError::Timeout)?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).map_err(|error| {
                        ClientError::Protocol(format!("{error}: {}", text.as_str()))
                    });
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|frame| (u16::from(frame.code), frame.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(ClientError::Closed { code, reason });
                }
                Some(Ok(_control_or_binary)) => continue,
                Some(Err(error)) => return Err(ClientError::Transport(error.to_string())),
                None => {
                    return Err(ClientError::Closed {
                        code: 1006,
                        reason: "connection dropped".into(),
                    })
                }
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
