//! The reference server for fan-out: the minimal WebSocket server on listwire's own stack
//! (axum 0.8 ws over tokio-tungstenite) that only rebroadcasts every text frame to every other
//! connection, through the same kind of bounded per-connection queue (slow consumers are
//! dropped). No auth, no parsing, no storage: an upper bound for what the stack can fan out,
//! measured in the same run as listwire so the two figures are comparable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

/// Frames queued per connection before it is dropped as a slow consumer (as the gateway).
pub const QUEUE_FRAMES: usize = 4096;

#[derive(Default)]
struct Room {
    next_id: AtomicU64,
    members: Mutex<HashMap<u64, flume::Sender<Utf8Bytes>>>,
}

impl Room {
    fn broadcast(&self, from: u64, frame: &Utf8Bytes) {
        let mut members = self
            .members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        members.retain(|id, queue| *id == from || queue.try_send(frame.clone()).is_ok());
    }
}

/// Serves the rebroadcast room on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let room = Arc::new(Room::default());
    let app = axum::Router::new()
        .route("/v1/ws", get(upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(room);
    axum::serve(listener, app).await
}

async fn upgrade(
    State(room): State<Arc<Room>>,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    upgrade.on_upgrade(move |socket| connection(room, socket))
}

async fn connection(room: Arc<Room>, socket: WebSocket) {
    let id = room.next_id.fetch_add(1, Ordering::Relaxed);
    let (queue_tx, queue_rx) = flume::bounded::<Utf8Bytes>(QUEUE_FRAMES);
    room.members
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(id, queue_tx);
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Ok(first) = queue_rx.recv_async().await {
            if sink.feed(Message::Text(first)).await.is_err() {
                return;
            }
            for frame in queue_rx.drain().take(256) {
                if sink.feed(Message::Text(frame)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Text(text) = message {
            room.broadcast(id, &text);
        }
    }
    room.members
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .remove(&id);
    writer.abort();
}
