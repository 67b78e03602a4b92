//! A small Rust client for listwire's HTTP + WebSocket protocol. The CLI, the integration tests
//! and the load generator use it, so it speaks exactly what `docs/PROTOCOL.md` documents.

mod live;

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

pub use live::{Live, ServerFrame};

use crate::admin::report::{BusiestReport, ClusterReport};

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a protocol error.
    #[error("{code}: {message} (http {status})")]
    Api {
        /// HTTP status (0 on WebSocket).
        status: u16,
        /// Protocol error code.
        code: String,
        /// Message.
        message: String,
        /// Retry hint for `rate_limited`.
        retry_after_ms: Option<u64>,
    },
    /// The request did not complete.
    #[error("transport: {0}")]
    Transport(String),
    /// The WebSocket closed.
    #[error("connection closed: {code} {reason}")]
    Closed {
        /// Close code (1006 when the connection dropped without one).
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// No answer in time.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The server said something this client does not understand.
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The protocol error code, if the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A signed-in session.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    /// The user id.
    pub user_id: Uuid,
    /// The bearer token.
    pub token: String,
}

/// One entry of `GET /v1/lists`.
#[derive(Debug, Clone, Deserialize)]
pub struct ListSummary {
    /// The list.
    pub list_id: Uuid,
    /// Its title.
    pub title: String,
    /// The caller's role.
    pub role: String,
}

/// An HTTP client bound to one server and, once signed in, one token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:7070`).
    pub fn new(base_url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base_url.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// The same client using `token`.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The server base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The token in use.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `POST /v1/auth/register`.
    pub async fn register(&self, username: &str, password: &str) -> Result<Session, ClientError> {
        let body = json!({"username": username, "password": password});
        self.call(reqwest::Method::POST, "/v1/auth/register", Some(body))
            .await
    }

    /// `POST /v1/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session, ClientError> {
        let body = json!({"username": username, "password": password});
        self.call(reqwest::Method::POST, "/v1/auth/login", Some(body))
            .await
    }

    /// `GET /v1/lists`.
    pub async fn lists(&self) -> Result<Vec<ListSummary>, ClientError> {
        self.call(reqwest::Method::GET, "/v1/lists", None).await
    }

    /// `POST /v1/lists` with a full body (`title`, `visibility`, `poll`).
    pub async fn create_list(&self, body: Value) -> Result<Uuid, ClientError> {
        #[derive(Deserialize)]
        struct Created {
            list_id: Uuid,
        }
        let created: Created = self
            .call(reqwest::Method::POST, "/v1/lists", Some(body))
            .await?;
        Ok(created.list_id)
    }

    /// `GET /v1/lists/{id}`: the list snapshot.
    pub async fn get_list(&self, list: Uuid) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, &format!("/v1/lists/{list}"), None)
            .await
    }

    /// `POST /v1/lists/{id}/ops`: applies one op, returns its seq once durable.
    pub async fn op(&self, list: Uuid, op_id: Uuid, op: Value) -> Result<u64, ClientError> {
        #[derive(Deserialize)]
        struct Acked {
            seq: u64,
        }
        let body = json!({"op_id": op_id, "op": op});
        let acked: Acked = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/lists/{list}/ops"),
                Some(body),
            )
            .await?;
        Ok(acked.seq)
    }

    /// `GET /v1/admin/cluster[?list=]`: the node's view of the cluster. This client's token
    /// must be the node's admin token (see [`Client::with_token`]), not a session token.
    pub async fn admin_cluster(&self, list: Option<Uuid>) -> Result<ClusterReport, ClientError> {
        let path = match list {
            Some(list) => format!("/v1/admin/cluster?list={list}"),
            None => "/v1/admin/cluster".to_owned(),
        };
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `GET /v1/admin/lists?limit=`: the busiest lists the node hosts. Needs the admin token,
    /// as [`Client::admin_cluster`].
    pub async fn admin_lists(&self, limit: usize) -> Result<BusiestReport, ClientError> {
        let path = format!("/v1/admin/lists?limit={limit}");
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// `POST /v1/admin/stop`: asks the node to stop gracefully (in a cluster it drains first);
    /// returns once the stop has begun. Needs the admin token, as [`Client::admin_cluster`].
    pub async fn admin_stop(&self) -> Result<(), ClientError> {
        #[derive(Deserialize)]
        struct Stopping {
            stopping: bool,
        }
        let answer: Stopping = self
            .call(reqwest::Method::POST, "/v1/admin/stop", None)
            .await?;
        if answer.stopping {
            Ok(())
        } else {
            Err(ClientError::Protocol(
                "the node did not begin to stop".into(),
            ))
        }
    }

    /// Opens a WebSocket (`/v1/ws`) with this client's token.
    pub async fn connect(&self) -> Result<Live, ClientError> {
        let token = self
            .token
            .as_deref()
            .ok_or_else(|| ClientError::Protocol("not signed in".into()))?;
        Live::connect(&self.base, token).await
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| ClientError::Transport(error.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|error| {
            ClientError::Protocol(format!("{error}: {}", String::from_utf8_lossy(&bytes)))
        })
    }
}

fn api_error(status: u16, body: &[u8]) -> ClientError {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    ClientError::Api {
        status,
        code: value["code"].as_str().unwrap_or("unknown").to_owned(),
        message: value["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
        retry_after_ms: value["retry_after_ms"].as_u64(),
    }
}
