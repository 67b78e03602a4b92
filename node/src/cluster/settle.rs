//! The cluster's [`Ownership`]: placement decides which lists this node hosts, and before it
//! loads one it asks the node most likely to have held the list until now to settle it.
//!
//! Handoff is by flush: the old owner makes durable what it accepted, then drops the list,
//! while the new owner loads it from storage on first use. Without a handshake the new owner
//! could load while the old owner's last append was still in flight, and serve a copy without
//! an op the old owner then acknowledged (until the new owner's first write is fenced). So the
//! new owner first sends `Settle` to the likeliest previous holders, side by side (see
//! [`super::state::Picture::likely_holders`]); each hands the list off (if it has it) and
//! answers once every op it accepted for the list is durable or failed. The wait is bounded: a
//! holder that is dead or unreachable cannot be waited for, and the conditional append (writes)
//! and the head rechecks after loading (reads) cover that case. A holder that just failed to
//! answer is not waited for again for [`SKIP_AFTER_FAILURE`] (it is still sent `Settle`, in the
//! background), so one unresponsive node costs the settle timeout once, not on every
//! activation of its lists (each waiting with an activation permit held).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use listwire_cluster::NodeId;
use tokio::time::Instant;
use uuid::Uuid;

use super::forward::Forwarder;
use super::state::ClusterState;
use super::wire::{Request, Response};
use crate::host::{Owner, Ownership};

/// How long a node waits for the previous holder of a list before loading it anyway.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a holder that failed a settle request is not asked again.
pub const SKIP_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// The most settle requests sent in the background at once (to holders not waited for); past
/// it a request is not sent — only an early handoff is lost, which the fencing covers.
const BACKGROUND_SETTLES_MAX: usize = 32;

/// Placement plus the settle handshake.
pub struct ClusterOwnership {
    state: Arc<ClusterState>,
    forwarder: Arc<Forwarder>,
    failures: Arc<Mutex<Failures>>,
    background: Arc<tokio::sync::Semaphore>,
}

impl ClusterOwnership {
    /// Ownership by `state`, asking other nodes through `forwarder`.
    pub fn new(state: Arc<ClusterState>, forwarder: Arc<Forwarder>) -> Arc<Self> {
        Arc::new(Self {
            state,
            forwarder,
            failures: Arc::new(Mutex::new(Failures::default())),
            background: Arc::new(tokio::sync::Semaphore::new(BACKGROUND_SETTLES_MAX)),
        })
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        lock(&self.failures)
    }

    /// Sends `Settle` to a holder that was skipped, without waiting: it still hands the list
    /// off and flushes if it can, and its answer clears its failure.
    fn settle_in_background(&self, list: Uuid, (node, addr): (NodeId, String)) {
        let Ok(permit) = self.background.clone().try_acquire_owned() else {
            return;
        };
        let forwarder = self.forwarder.clone();
        let failures = self.failures.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let answer = forwarder
                .request_within(&node, &addr, &Request::Settle { list }, SETTLE_TIMEOUT)
                .await;
            lock(&failures).record(
                &node,
                matches!(answer, Ok(Response::Settled)),
                Instant::now(),
            );
        });
    }
}

fn lock(failures: &Mutex<Failures>) -> std::sync::MutexGuard<'_, Failures> {
    failures
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// When each holder last failed to settle a list.
#[derive(Debug, Default)]
struct Failures {
    at: HashMap<NodeId, Instant>,
}

impl Failures {
    /// Whether `node` is worth asking at `now`.
    fn worth_asking(&self, node: &NodeId, now: Instant) -> bool {
        self.at
            .get(node)
            .is_none_or(|failed| now.saturating_duration_since(*failed) >= SKIP_AFTER_FAILURE)
    }

    fn record(&mut self, node: &NodeId, ok: bool, now: Instant) {
        if ok {
            self.at.remove(node);
        } else {
            self.at.insert(node.clone(), now);
        }
        // Entries past the skip window say nothing any more (and ids of gone nodes go too).
        self.at
            .retain(|_, failed| now.saturating_duration_since(*failed) < SKIP_AFTER_FAILURE);
    }
}

#[async_trait]
impl Ownership for ClusterOwnership {
    fn check(&self, list: Uuid) -> Owner {
        self.state.check(list)
    }

    async fn settle(&self, list: Uuid) {
        let mut holders = self
            .state
            .picture()
            .likely_holders(self.state.self_id(), list);
        let started = Instant::now();
        let (asked, skipped): (Vec<_>, Vec<_>) = holders
            .into_iter()
            .partition(|(node, _)| self.failures().worth_asking(node, started));
        holders = asked;
        if !skipped.is_empty() {
            metrics::counter!(super::metrics::SETTLE_SKIPPED_TOTAL).increment(skipped.len() as u64);
        }
        for holder in skipped {
            self.settle_in_background(list, holder);
        }
        if holders.is_empty() {
            return;
        }
        let request = Request::Settle { list };
        let asks = holders.iter().map(|(node, addr)| {
            self.forwarder
                .request_within(node, addr, &request, SETTLE_TIMEOUT)
        });
        let answers = futures_util::future::join_all(asks).await;
        metrics::histogram!(super::metrics::SETTLE_SECONDS).record(started.elapsed().as_secs_f64());
        let now = Instant::now();
        for ((node, _), answer) in holders.iter().zip(answers) {
            self.failures()
                .record(node, matches!(answer, Ok(Response::Settled)), now);
            match answer {
                Ok(Response::Settled) => {}
                Ok(_) => {
                    tracing::warn!(list_id = %list, node = %node, "unexpected answer to a settle request")
                }
                Err(error) => {
                    metrics::counter!(super::metrics::SETTLE_FAILURES_TOTAL).increment(1);
                    tracing::debug!(list_id = %list, node = %node, %error, "a likely holder of the list did not settle it; loading anyway");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use listwire_cluster::membership::View;
    use listwire_cluster::transport::{Client, ClusterSecret, TcpConnector, TransportConfig};

    use super::*;

    /// Goal (review): settles sent in the background to a holder that does not answer are
    /// bounded: past [`BACKGROUND_SETTLES_MAX`] in flight, no more are started.
    #[tokio::test]
    async fn background_settles_are_bounded() {
        // A holder that accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let me = NodeId::new("a").unwrap();
        let state = Arc::new(ClusterState::new(me.clone(), View::new(me.clone(), [])));
        let transport =
            TransportConfig::new("unit", me, ClusterSecret::new(vec![7u8; 32]).unwrap(), 1);
        let client = Client::new(transport, Arc::new(TcpConnector)).unwrap();
        let ownership =
            ClusterOwnership::new(state, Forwarder::new(client, Duration::from_secs(5)));
        let holder = NodeId::new("b").unwrap();
        for n in 0..(BACKGROUND_SETTLES_MAX as u128 + 10) {
            ownership.settle_in_background(Uuid::from_u128(n), (holder.clone(), addr.clone()));
        }
        assert_eq!(ownership.background.available_permits(), 0);
        drop(silent);
    }

    /// Goal (third review, finding b): a holder that failed to settle is skipped for a while
    /// (one dead or frozen holder costs the timeout once, not on every activation), then asked
    /// again; a success clears it at once.
    #[test]
    fn a_holder_that_failed_is_skipped_for_a_while() {
        let node = NodeId::new("b").unwrap();
        let other = NodeId::new("c").unwrap();
        let start = Instant::now();
        let mut failures = Failures::default();
        assert!(failures.worth_asking(&node, start));
        failures.record(&node, false, start);
        assert!(!failures.worth_asking(&node, start + Duration::from_secs(1)));
        assert!(
            failures.worth_asking(&other, start),
            "only the node that failed"
        );
        assert!(failures.worth_asking(&node, start + SKIP_AFTER_FAILURE));
        failures.record(&node, false, start);
        failures.record(&node, true, start);
        assert!(failures.worth_asking(&node, start), "a success clears it");
        failures.record(&node, false, start);
        failures.record(&other, true, start + SKIP_AFTER_FAILURE);
        assert!(
            failures.at.is_empty(),
            "entries past the window are dropped"
        );
    }
}
