//! The cluster's [`Ownership`]: placement decides which lists this node hosts, and before it
//! loads one it asks the node most likely to have held the list until now to settle it.
//!
//! Handoff is by flush: the old owner makes durable what it accepted, then drops the list,
//! while the new owner loads it from storage on first use. Without a handshake the new owner
//! could load while the old owner's last append was still in flight, and serve a copy without
//! an op the old owner then acknowledged (until the new owner's first write is fenced). So the
//! new owner first sends `Settle` to the likeliest previous holders, side by side (see
//! [`super::state::Picture::likely_holders`]); each hands the list off (if it has it) and
//! answers once every op it accepted for the list is durable or failed. The wait is bounded: a holder that is dead or unreachable
//! cannot be waited for, and the conditional append (writes) and the head rechecks after
//! loading (reads) cover that case.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::forward::Forwarder;
use super::state::ClusterState;
use super::wire::{Request, Response};
use crate::host::{Owner, Ownership};

/// How long a node waits for the previous holder of a list before loading it anyway.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Placement plus the settle handshake.
pub struct ClusterOwnership {
    state: Arc<ClusterState>,
    forwarder: Arc<Forwarder>,
}

impl ClusterOwnership {
    /// Ownership by `state`, asking other nodes through `forwarder`.
    pub fn new(state: Arc<ClusterState>, forwarder: Arc<Forwarder>) -> Arc<Self> {
        Arc::new(Self { state, forwarder })
    }
}

#[async_trait]
impl Ownership for ClusterOwnership {
    fn check(&self, list: Uuid) -> Owner {
        self.state.check(list)
    }

    async fn settle(&self, list: Uuid) {
        let holders = self
            .state
            .picture()
            .likely_holders(self.state.self_id(), list);
        if holders.is_empty() {
            return;
        }
        let started = tokio::time::Instant::now();
        let request = Request::Settle { list };
        let asks = holders.iter().map(|(node, addr)| {
            self.forwarder
                .request_within(node, addr, &request, SETTLE_TIMEOUT)
        });
        let answers = futures_util::future::join_all(asks).await;
        metrics::histogram!(super::metrics::SETTLE_SECONDS).record(started.elapsed().as_secs_f64());
        for ((node, _), answer) in holders.iter().zip(answers) {
            match answer {
                Ok(Response::Settled) => {}
                Ok(_) => {
                    tracing::warn!(%list, node = %node, "unexpected answer to a settle request")
                }
                Err(error) => {
                    metrics::counter!(super::metrics::SETTLE_FAILURES_TOTAL).increment(1);
                    tracing::debug!(%list, node = %node, %error, "a likely holder of the list did not settle it; loading anyway");
                }
            }
        }
    }
}
