//! Test support: an in-memory router and account store, a server on 127.0.0.1:0, and clients.
#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use listwire_gateway::{
    Account, Accounts, Admin, EdgeError, ErrorCode, FrameSink, Gateway, GatewayConfig, Principal,
    Reply, Router,
};
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// How long any awaited event may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// An echoing router: ops ack with increasing seqs, subscribe queues a snapshot frame (and,
/// when `subscribe_flood` is set, pushes frames until the sink refuses one).
#[derive(Default)]
pub struct FakeRouter {
    pub seq: AtomicU64,
    pub subscribe_flood: AtomicBool,
    pub not_ready: AtomicBool,
    pub lists: Mutex<HashMap<Uuid, String>>,
    pub unsubscribed: Mutex<Vec<(Uuid, u64)>>,
    /// Replies of ops whose JSON mentions "hang": kept unanswered.
    pub held: Mutex<Vec<Reply>>,
}

#[async_trait]
impl Router for FakeRouter {
    async fn submit(
        &self,
        _principal: &Principal,
        _list: Uuid,
        _op_id: Uuid,
        op: Box<RawValue>,
        reply: Reply,
    ) {
        if op.get().contains("hang") {
            self.held.lock().unwrap().push(reply);
            return;
        }
        reply.send(Ok(self.seq.fetch_add(1, Ordering::SeqCst) + 1));
    }

    async fn subscribe(
        &self,
        _principal: &Principal,
        list: Uuid,
        _since: Option<u64>,
        sink: FrameSink,
    ) -> Result<(), EdgeError> {
        let frame = Bytes::from(format!(
            r#"{{"type":"snapshot","list":"{list}","seq":0,"state":{{}}}}"#
        ));
        sink.push(frame.clone())
            .map_err(|_| EdgeError::unavailable("connection closing"))?;
        if self.subscribe_flood.load(Ordering::SeqCst) {
            // The same bytes for every push, as a list owner would fan them out.
            for _ in 0..1_000_000 {
                if sink.push(frame.clone()).is_err() {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn unsubscribe(&self, list: Uuid, connection_id: u64) {
        self.unsubscribed
            .lock()
            .unwrap()
            .push((list, connection_id));
    }

    async fn snapshot(&self, _principal: &Principal, list: Uuid) -> Result<Bytes, EdgeError> {
        let title = self.lists.lock().unwrap().get(&list).cloned();
        let title = title.ok_or_else(|| EdgeError::new(ErrorCode::NotFound, "no such list"))?;
        Ok(Bytes::from(
            serde_json::json!({"list": list, "seq": 0, "title": title, "items": []}).to_string(),
        ))
    }

    async fn create_list(
        &self,
        _principal: &Principal,
        body: Box<RawValue>,
    ) -> Result<Uuid, EdgeError> {
        let body: serde_json::Value = serde_json::from_str(body.get()).unwrap();
        let title = body["title"]
            .as_str()
            .ok_or_else(|| EdgeError::invalid("title is required"))?
            .to_owned();
        let list = Uuid::now_v7();
        self.lists.lock().unwrap().insert(list, title);
        Ok(list)
    }

    async fn lists_of(&self, _principal: &Principal) -> Result<Bytes, EdgeError> {
        let lists: Vec<_> = self
            .lists
            .lock()
            .unwrap()
            .iter()
            .map(|(id, title)| serde_json::json!({"list_id": id, "title": title, "role": "owner"}))
            .collect();
        Ok(Bytes::from(serde_json::to_vec(&lists).unwrap()))
    }

    async fn ready(&self) -> bool {
        !self.not_ready.load(Ordering::SeqCst)
    }
}

/// Accounts in a map.
#[derive(Default)]
pub struct FakeAccounts {
    pub accounts: Mutex<HashMap<String, Account>>,
}

#[async_trait]
impl Accounts for FakeAccounts {
    async fn create(&self, account: Account) -> Result<(), EdgeError> {
        let mut accounts = self.accounts.lock().unwrap();
        if accounts.contains_key(&account.username) {
            return Err(EdgeError::new(ErrorCode::Conflict, "username is taken"));
        }
        accounts.insert(account.username.clone(), account);
        Ok(())
    }

    async fn find(&self, username: &str) -> Result<Option<Account>, EdgeError> {
        Ok(self.accounts.lock().unwrap().get(username).cloned())
    }
}

/// An admin side that answers a fixed JSON body and records what it was asked.
#[derive(Default)]
pub struct FakeAdmin {
    /// The `list` of every `cluster` call, in order.
    pub asked: Mutex<Vec<Option<Uuid>>>,
    /// How many times `stop` was called.
    pub stops: AtomicU64,
}

#[async_trait]
impl Admin for FakeAdmin {
    async fn cluster(&self, list: Option<Uuid>) -> Result<Bytes, EdgeError> {
        self.asked.lock().unwrap().push(list);
        Ok(Bytes::from(
            serde_json::json!({"node": "fake", "list": list}).to_string(),
        ))
    }

    async fn lists(&self, limit: usize) -> Result<Bytes, EdgeError> {
        Ok(Bytes::from(
            serde_json::json!({"node": "fake", "limit": limit, "lists": []}).to_string(),
        ))
    }

    async fn stop(&self) -> Result<(), EdgeError> {
        self.stops.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Small limits and cheap hashing, so tests run fast.
pub fn test_config() -> GatewayConfig {
    GatewayConfig {
        jwt_secret: b"a test secret of at least 32 bytes!!".to_vec(),
        argon2_memory_kib: 8,
        argon2_iterations: 1,
        ws_message_bytes_max: 1024,
        ws_message_bytes_hard_max: 4096,
        http_body_bytes_max: 1024,
        close_linger: Duration::from_millis(200),
        ..GatewayConfig::default()
    }
}

/// A gateway served on a real socket.
pub struct TestServer {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    pub router: Arc<FakeRouter>,
    pub admin: Arc<FakeAdmin>,
    shutdown_tx: Option<oneshot::Sender<()>>,
    serve_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server without an admin side (its admin routes answer 404).
    pub async fn start(config: GatewayConfig) -> TestServer {
        TestServer::start_with(config, false).await
    }

    /// A server whose admin side is a [`FakeAdmin`] (the routes still need a token).
    pub async fn start_with_admin(config: GatewayConfig) -> TestServer {
        TestServer::start_with(config, true).await
    }

    async fn start_with(config: GatewayConfig, with_admin: bool) -> TestServer {
        let router = Arc::new(FakeRouter::default());
        let admin = Arc::new(FakeAdmin::default());
        let admin_side: Option<Arc<dyn Admin>> = if with_admin {
            Some(admin.clone())
        } else {
            None
        };
        let gateway = Gateway::new(
            config,
            router.clone(),
            Arc::new(FakeAccounts::default()),
            admin_side,
            None,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let serve_task = tokio::spawn(listwire_gateway::serve(
            listener,
            gateway.clone(),
            async move {
                let _ = shutdown_rx.await;
            },
        ));
        TestServer {
            addr,
            gateway,
            router,
            admin,
            shutdown_tx: Some(shutdown_tx),
            serve_task: Some(serve_task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A token for a fresh user.
    pub fn token(&self) -> String {
        let principal = Principal {
            user_id: Uuid::now_v7(),
            username: "tester".into(),
        };
        self.gateway.mint_token(&principal).0
    }

    /// Signals shutdown and waits for `serve` to return.
    pub async fn shutdown(&mut self) {
        let _ = self.shutdown_tx.take().unwrap().send(());
        let served = tokio::time::timeout(DEADLINE, self.serve_task.take().unwrap())
            .await
            .unwrap();
        served.unwrap().unwrap();
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket with the token in the `Authorization` header.
pub async fn ws_connect(server: &TestServer, token: &str) -> Ws {
    let mut request = format!("ws://{}/v1/ws", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _response) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws
}

pub async fn send_json(ws: &mut Ws, text: String) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The next text frame, as JSON (pings and pongs are skipped).
pub async fn next_json(ws: &mut Ws) -> serde_json::Value {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a frame before the deadline");
        match message
            .expect("the stream is open")
            .expect("a readable frame")
        {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame and returns its code (text frames are skipped).
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a close before the deadline");
        match message.expect("a close frame before the stream ends") {
            Ok(Message::Close(Some(frame))) => return u16::from(frame.code),
            Ok(Message::Close(None)) => panic!("close without a code"),
            Ok(_) => continue,
            Err(error) => panic!("read failed before the close frame: {error}"),
        }
    }
}

/// A subscribe frame.
pub fn subscribe(list: Uuid) -> String {
    format!(r#"{{"type":"subscribe","list":"{list}","since":null}}"#)
}

/// An op frame.
pub fn op(list: Uuid, op_id: Uuid) -> String {
    format!(
        r#"{{"type":"op","list":"{list}","op_id":"{op_id}","op":{{"kind":"rename","title":"x"}}}}"#
    )
}
