//! Shared helpers for the node's integration tests: real nodes on loopback ports chosen by the
//! OS, real WebSocket clients, polling with deadlines instead of sleeps.
#![allow(dead_code)]

pub mod cluster;
pub mod gated;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use listwire::client::{Client, Live, ServerFrame};
use listwire::config::ServeArgs;
use listwire::server::{start, RunningNode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Flags for a fast test node on a free port with its data under `dir`.
pub fn test_flags(dir: &Path) -> Vec<String> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--argon2-memory-kib".into(),
        "64".into(),
        "--argon2-iterations".into(),
        "1".into(),
        "--auth-per-second-per-ip".into(),
        "10000".into(),
        "--auth-burst-per-ip".into(),
        "10000".into(),
    ]
}

/// The URL a `listwire serve` child prints on its first stdout line (piped), once it listens.
pub fn listening_url(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    line.split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("the node did not start: {line:?}"))
        .to_owned()
}

/// Starts a node with the test flags plus `extra`.
pub async fn start_node(dir: &Path, extra: &[&str]) -> RunningNode {
    let mut flags = test_flags(dir);
    flags.extend(extra.iter().map(|flag| flag.to_string()));
    let args = ServeArgs::from_flags(flags).expect("valid test flags");
    start(args).await.expect("node starts")
}

/// Registers `name` and returns a signed-in client.
pub async fn user(node: &RunningNode, name: &str) -> Client {
    let anonymous = Client::new(&node.http_url());
    let session = anonymous
        .register(name, "correct horse battery")
        .await
        .expect("register");
    anonymous.with_token(&session.token)
}

/// The user id behind a signed-in client.
pub async fn user_id(client: &Client, node: &RunningNode, name: &str) -> Uuid {
    let _ = client;
    Client::new(&node.http_url())
        .login(name, "correct horse battery")
        .await
        .expect("login")
        .user_id
}

/// Creates a private list and returns its id.
pub async fn list(client: &Client, title: &str) -> Uuid {
    client
        .create_list(json!({"title": title}))
        .await
        .expect("create list")
}

/// Creates a list with a poll.
pub async fn poll_list(client: &Client, public: bool, max_votes: u32, allow_change: bool) -> Uuid {
    let visibility = if public { "public" } else { "private" };
    let body = json!({"title": "poll", "visibility": visibility, "poll": {"max_votes_per_user": max_votes, "allow_change": allow_change, "open": true}});
    client.create_list(body).await.expect("create poll list")
}

/// An `add_item` op at the top.
pub fn add(text: &str) -> Value {
    json!({"kind": "add_item", "text": text, "after": null})
}

/// Adds an item over HTTP and returns its id (read back from the list).
pub async fn add_item(client: &Client, list: Uuid, text: &str) -> Uuid {
    client
        .op(list, Uuid::new_v4(), add(text))
        .await
        .expect("add item");
    item_id(client, list, text).await
}

/// The id of the item with `text`.
pub async fn item_id(client: &Client, list: Uuid, text: &str) -> Uuid {
    let state = client.get_list(list).await.expect("get list");
    let item = state["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["text"] == text)
        .expect("item present");
    item["id"].as_str().expect("id").parse().expect("uuid")
}

/// Waits for the next frame matching `pick`, skipping others, failing after 10 s.
pub async fn expect_frame<T>(
    live: &mut Live,
    mut pick: impl FnMut(&ServerFrame) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = live
            .next_within(left)
            .await
            .expect("a frame before the deadline");
        if let Some(found) = pick(&frame) {
            return found;
        }
    }
}

/// Subscribes and returns the seq of the snapshot that follows.
pub async fn subscribe_snapshot(live: &mut Live, list: Uuid) -> (u64, Value) {
    live.subscribe(list, None).await.expect("subscribe");
    expect_frame(live, |frame| match frame {
        ServerFrame::Snapshot { seq, state, .. } => Some((*seq, state.clone())),
        _ => None,
    })
    .await
}

/// Polls `check` until it returns true, failing after `within`.
pub async fn eventually<F, Fut>(within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
