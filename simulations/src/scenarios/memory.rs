//! `memory`: resident memory of a node the bench started, per idle WebSocket connection and per
//! active list (measured as the growth of the node's RSS divided by the count).

use std::time::Duration;

use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::json;

use super::setup::{create_lists, Http};
use crate::report::progress;
use crate::target::{resident_bytes, Target};
use crate::wire;

/// Parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Idle WebSocket connections to open.
    pub connections: usize,
    /// Lists to create and keep active.
    pub lists: usize,
    /// Items added to each list.
    pub items_per_list: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            connections: 5000,
            lists: 5000,
            items_per_list: 5,
        }
    }
}

/// Results.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Node RSS before anything, in bytes.
    pub baseline_bytes: u64,
    /// RSS growth per idle connection, in bytes.
    pub bytes_per_connection: f64,
    /// RSS growth per active list, in bytes.
    pub bytes_per_list: f64,
}

/// Runs the scenario (needs a node the bench started, for its pid).
pub async fn run(target: &Target, params: &Params) -> anyhow::Result<Outcome> {
    let pid = target
        .pid()
        .context("the memory scenario needs a node started by the bench (no --url)")?;
    let settle = || tokio::time::sleep(Duration::from_secs(2));
    // Warm the allocator and the runtime with one of each first, so baselines are fair.
    create_lists(target, 1, |_| 0, json!({"title": "warm"})).await?;
    let _warm_socket = wire::connect(target, 0).await?;
    settle().await;
    // Lists first: freed socket memory would otherwise be reused by the lists and hide them.
    let before_lists = resident_bytes(pid)?;
    let lists = create_lists(
        target,
        params.lists,
        |index| index as u64 % 64,
        json!({"title": "memory"}),
    )
    .await?;
    let http = Http::new(target);
    let adds = lists
        .iter()
        .enumerate()
        .flat_map(|(index, list)| (0..params.items_per_list).map(move |item| (index, *list, item)));
    stream::iter(adds)
        .for_each_concurrent(64, |(index, list, item)| {
            let http = http.clone();
            let token = target.token(index as u64 % 64);
            async move {
                let op = json!({"kind": "add_item", "text": format!("item {item}"), "after": null});
                let _ = http.op(&token, list, uuid::Uuid::new_v4(), op).await;
            }
        })
        .await;
    settle().await;
    let with_lists = resident_bytes(pid)?;
    let baseline = with_lists;
    let mut sockets = Vec::with_capacity(params.connections);
    for index in 0..params.connections {
        sockets.push(wire::connect(target, 10 + index as u64).await?);
    }
    settle().await;
    let with_connections = resident_bytes(pid)?;
    progress(format_args!(
        "memory: {} idle connections: +{} KiB",
        params.connections,
        with_connections.saturating_sub(baseline) / 1024
    ));
    drop(sockets);
    Ok(Outcome {
        baseline_bytes: before_lists,
        bytes_per_connection: with_connections.saturating_sub(baseline) as f64
            / params.connections.max(1) as f64,
        bytes_per_list: with_lists.saturating_sub(before_lists) as f64 / params.lists.max(1) as f64,
    })
}
