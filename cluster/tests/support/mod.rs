//! Helpers shared by the integration tests: ids, configs, a scriptable handler, and polling
//! with a deadline (tests never sleep to wait for a condition).

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use listwire_cluster::transport::{
    ClusterSecret, Handler, PeerInfo, PushError, StreamSender, TransportConfig,
};
use listwire_cluster::NodeId;
use tokio::time::Instant;

pub const SECRET: &[u8] = b"test secret: 0123456789abcdef0123456789";

pub fn id(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

/// Transport settings for `node` with the test secret and a fixed jitter seed.
pub fn transport_config(node: &str) -> TransportConfig {
    let secret = ClusterSecret::new(SECRET.to_vec()).unwrap();
    let mut config = TransportConfig::new("test-cluster", id(node), secret, 1);
    config.jitter_seed = Some(7);
    config
}

/// Polls `condition` every 10 ms until it holds; panics naming `what` after `timeout`.
/// Returns how long it took.
pub async fn eventually(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// Like [`eventually`] with an async condition.
pub async fn eventually_async<F, Fut>(what: &str, timeout: Duration, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// A handler scripted by its payloads:
/// - request `echo:X` → `X`; `sleep:MS` → waits MS ms, then `slept`; `fail` → error `nope`;
///   `who` → the caller's node id.
/// - stream `items:N` → N items `0..N` with backpressure, then a clean end;
///   `burst:N` → `try_push` up to N items, and on the first `Full` ends with `full after K`;
///   `hold` → keeps the stream open until the client cancels (counted in `cancelled`).
#[derive(Default)]
pub struct ScriptedHandler {
    /// Requests handled.
    pub handled: AtomicUsize,
    /// `hold` streams started.
    pub holding: AtomicUsize,
    /// `hold` streams cancelled by their client.
    pub cancelled: AtomicUsize,
    /// `burst` streams ended because `try_push` was `Full`.
    pub ended_full: AtomicUsize,
}

#[async_trait]
impl Handler for ScriptedHandler {
    async fn request(&self, peer: &PeerInfo, payload: Bytes) -> Result<Bytes, Bytes> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        let text = String::from_utf8_lossy(&payload).to_string();
        if let Some(rest) = text.strip_prefix("echo:") {
            return Ok(Bytes::from(rest.to_string()));
        }
        if let Some(ms) = text.strip_prefix("sleep:") {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            return Ok(Bytes::from_static(b"slept"));
        }
        match text.as_str() {
            "fail" => Err(Bytes::from_static(b"nope")),
            "who" => Ok(Bytes::from(peer.node_id().to_string())),
            _ => Err(Bytes::from_static(b"unknown command")),
        }
    }

    async fn stream(&self, _peer: &PeerInfo, payload: Bytes, stream: StreamSender) {
        let text = String::from_utf8_lossy(&payload).to_string();
        if let Some(count) = text.strip_prefix("items:") {
            for n in 0..count.parse::<u32>().unwrap() {
                if stream
                    .push(Bytes::from(n.to_be_bytes().to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            stream.end(None).await;
        } else if let Some(count) = text.strip_prefix("burst:") {
            for n in 0..count.parse::<u32>().unwrap() {
                match stream.try_push(Bytes::from(n.to_be_bytes().to_vec())) {
                    Ok(()) => {}
                    Err(PushError::Full(_)) => {
                        let reason = format!("full after {n}");
                        stream.end(Some(Bytes::from(reason))).await;
                        self.ended_full.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    Err(_) => return,
                }
            }
            stream.end(None).await;
        } else if text == "hold" {
            self.holding.fetch_add(1, Ordering::SeqCst);
            stream.closed().await;
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

pub fn scripted() -> Arc<ScriptedHandler> {
    Arc::new(ScriptedHandler::default())
}

use listwire_cluster::membership::{MembershipConfig, Roles, View};

/// Membership settings for host `name` gossiping on `gossip_addr`, defaults otherwise.
pub fn membership_config(
    name: &str,
    generation: u64,
    gossip_addr: std::net::SocketAddr,
    seeds: &[std::net::SocketAddr],
) -> MembershipConfig {
    let mut config = MembershipConfig::new("test-cluster", id(name), generation, gossip_addr);
    config.roles = Roles::HOST;
    config.internode_addr = format!("{name}:7000");
    config.client_addr = format!("{name}:8080");
    config.protocol_version = 1;
    config.seeds = seeds.iter().map(|seed| seed.to_string()).collect();
    config
}

/// A UDP address on 127.0.0.1 with a port the OS just handed out (bound, then released).
pub fn free_udp_addr() -> std::net::SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap()
}

/// The names of the live members of `view`.
pub fn live_names(view: &View) -> Vec<String> {
    view.live_members()
        .map(|member| member.node_id().to_string())
        .collect()
}
