//! `forwarded`: on a cluster, the ack latency of ops whose client is on another node than the
//! list's owner (the gateway forwards them over the internode transport) beside ops whose
//! client is on the owner itself, measured in one run so both see the same machine.
//!
//! 2 × L lists are all placed on node `owner`. W writer connections on the owner write the
//! first L lists ("local"), W on node `gateway` the other L ("forwarded"), each path offered
//! the same open-loop rate at the same time, with the ops of the `throughput` scenario.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::setup::create_lists_placed;
use super::throughput::{spawn_progress, write, WriterTotals};
use crate::report::{progress, Latency, LatencySummary};
use crate::target::Target;
use crate::wire;

/// Parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Lists per path.
    pub lists: usize,
    /// Writer connections per path.
    pub writers: usize,
    /// Offered ops per second, per path.
    pub rate: f64,
    /// How long ops are offered.
    pub seconds: f64,
    /// The node that owns every list.
    pub owner: usize,
    /// The node the forwarded path's writers connect to.
    pub gateway: usize,
    /// Items added to each list before writes turn into toggles.
    pub items_per_list: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            lists: 100,
            writers: 4,
            rate: 1000.0,
            seconds: 10.0,
            owner: 0,
            gateway: 1,
            items_per_list: 50,
        }
    }
}

/// One path's results.
#[derive(Debug, Clone, Serialize)]
pub struct PathOutcome {
    /// The node its writers connect to.
    pub node: usize,
    /// Ops sent.
    pub offered: u64,
    /// Ops acknowledged.
    pub acked: u64,
    /// Refusals by code.
    pub errors: BTreeMap<String, u64>,
    /// Ops neither acked nor refused when the run ended.
    pub unanswered: u64,
    /// Ack latency from each op's due time.
    pub ack_latency: LatencySummary,
    /// The full distribution (not serialized).
    #[serde(skip)]
    pub latency: Latency,
}

/// Results: the two paths side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Writers on the owner.
    pub local: PathOutcome,
    /// Writers on the gateway, their ops forwarded to the owner.
    pub forwarded: PathOutcome,
}

/// Runs the scenario.
pub async fn run(target: &Target, params: &Params) -> anyhow::Result<Outcome> {
    let nodes = target.node_count();
    anyhow::ensure!(
        params.owner < nodes && params.gateway < nodes && params.owner != params.gateway,
        "forwarded needs two distinct nodes of the target (it has {nodes})"
    );
    let writers = params.writers.max(1);
    let per_path = params.lists.max(1);
    // List `index` of path `path` is owned by that path's writer `index % writers`.
    let lists = create_lists_placed(
        target,
        2 * per_path,
        |_| Some(params.owner),
        |index| ((index / per_path) * writers + index % writers) as u64,
        json!({"title": "forwarded"}),
    )
    .await?;
    progress(format_args!(
        "forwarded: {} lists on node {}; {} writers at {:.0} ops/s on node {} (local) and on node {} (forwarded), {:.0} s",
        lists.len(),
        params.owner,
        writers,
        params.rate,
        params.owner,
        params.gateway,
        params.seconds
    ));
    let acked_counter = Arc::new(AtomicU64::new(0));
    let ticker = spawn_progress(acked_counter.clone());
    let mut paths = Vec::new();
    for (path, node) in [params.owner, params.gateway].into_iter().enumerate() {
        let own = &lists[path * per_path..(path + 1) * per_path];
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let user = (path * writers + writer) as u64;
            let connection = wire::connect_split_to(target, node, user).await?;
            let mine: Vec<Uuid> = own.iter().copied().skip(writer).step_by(writers).collect();
            tasks.push(tokio::spawn(write(
                connection,
                mine,
                params.rate / writers as f64,
                Duration::from_secs_f64(params.seconds),
                params.items_per_list,
                acked_counter.clone(),
            )));
        }
        paths.push((node, tasks));
    }
    let mut outcomes = Vec::new();
    for (node, tasks) in paths {
        let mut totals = Vec::new();
        for task in tasks {
            totals.push(task.await??);
        }
        outcomes.push(path_outcome(node, totals));
    }
    ticker.abort();
    let forwarded = outcomes.pop().expect("two paths");
    let local = outcomes.pop().expect("two paths");
    Ok(Outcome { local, forwarded })
}

fn path_outcome(node: usize, totals: Vec<WriterTotals>) -> PathOutcome {
    let mut outcome = PathOutcome {
        node,
        offered: 0,
        acked: 0,
        errors: BTreeMap::new(),
        unanswered: 0,
        ack_latency: Latency::new().summary(),
        latency: Latency::new(),
    };
    for writer in totals {
        outcome.offered += writer.offered;
        outcome.acked += writer.acked;
        outcome.unanswered += writer.unanswered;
        for (code, count) in writer.errors {
            *outcome.errors.entry(code).or_default() += count;
        }
        outcome.latency.merge(&writer.latency);
    }
    outcome.ack_latency = outcome.latency.summary();
    outcome
}
