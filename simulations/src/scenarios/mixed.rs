//! `mixed`: the three workloads at once on one node — many lists written, a fan-out list with
//! subscribers, and a hot poll — each reported as it would be alone.

use serde::Serialize;

use super::{fanout, hot_poll, throughput};
use crate::target::Target;

/// Parameters: one set per workload.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// The background writes.
    pub throughput: throughput::Params,
    /// The fan-out list.
    pub fanout: fanout::Params,
    /// The poll.
    pub hot_poll: hot_poll::Params,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            throughput: throughput::Params {
                lists: 500,
                writers: 8,
                rate: 10_000.0,
                seconds: 10.0,
                items_per_list: 50,
            },
            fanout: fanout::Params {
                subscribers: 300,
                rate: 50.0,
                seconds: 10.0,
                ..Default::default()
            },
            hot_poll: hot_poll::Params {
                voters: 50_000,
                rate: 5_000.0,
                items: 10,
                watchers: 50,
                attempts: 5,
                http2: false,
                layout: Default::default(),
                ..Default::default()
            },
        }
    }
}

/// Results of each workload.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Background writes.
    pub throughput: throughput::Outcome,
    /// Fan-out.
    pub fanout: fanout::Outcome,
    /// Poll.
    pub hot_poll: hot_poll::Outcome,
}

/// Runs the three concurrently.
pub async fn run(target: &Target, params: &Params) -> anyhow::Result<Outcome> {
    let (throughput, fanout, hot_poll) = tokio::join!(
        throughput::run(target, &params.throughput),
        fanout::run(target, &params.fanout),
        hot_poll::run(target, &params.hot_poll)
    );
    Ok(Outcome {
        throughput: throughput?,
        fanout: fanout?,
        hot_poll: hot_poll?,
    })
}
