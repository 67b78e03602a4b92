//! The node's operator side: the gateway's [`Admin`] seam, answered with this node's view of
//! the cluster ([`report`]) and a graceful stop.
//!
//! A stop asked by an admin call is the same stop as SIGTERM: the request only raises the
//! node's [`StopSignal`], which the serving loop (`server::Prepared::run`) waits on beside the
//! process's own shutdown signal, and answers at once. The handler never waits for the stop,
//! which waits for in-flight requests (this one included) to finish: no deadlock.

pub mod report;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use listwire_gateway::{Admin, EdgeError};
use tokio::sync::watch;
use uuid::Uuid;

use crate::cluster::ClusterNode;
use crate::host::Host;
use report::{BusiestReport, ClusterReport, SingleNode};

/// A one-way "please stop" for one node. Cheap to clone; clones share the signal.
#[derive(Clone, Debug)]
pub struct StopSignal {
    requested_tx: Arc<watch::Sender<bool>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal {
            requested_tx: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl StopSignal {
    /// Asks the node to stop (idempotent).
    pub fn request(&self) {
        self.requested_tx.send_replace(true);
    }

    /// Whether a stop was asked.
    pub fn is_requested(&self) -> bool {
        *self.requested_tx.borrow()
    }

    /// Resolves once a stop is asked.
    pub async fn requested(&self) {
        let mut requested_rx = self.requested_tx.subscribe();
        // The sender lives in `self`, so the watch cannot close while this waits.
        let _ = requested_rx.wait_for(|requested| *requested).await;
    }
}

/// Who this node is when it runs alone (a cluster node reads it from its membership).
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its id: `--node-id`, else its client address.
    pub node_id: String,
    /// Its start time in ms.
    pub generation: u64,
    /// Where its clients connect.
    pub client_addr: String,
}

/// The node's implementation of the gateway's [`Admin`] seam.
pub struct NodeAdmin {
    host: Host,
    cluster: Option<Arc<ClusterNode>>,
    stop: StopSignal,
    identity: Identity,
    peer_timeout: Duration,
}

impl NodeAdmin {
    /// The admin side of a node hosting on `host`, in `cluster` if it runs in one; each other
    /// node's figures are awaited at most `peer_timeout`.
    pub fn new(
        host: Host,
        cluster: Option<Arc<ClusterNode>>,
        stop: StopSignal,
        identity: Identity,
        peer_timeout: Duration,
    ) -> NodeAdmin {
        NodeAdmin {
            host,
            cluster,
            stop,
            identity,
            peer_timeout,
        }
    }

    /// This node's view of the cluster; with `list`, also that list's owner.
    pub async fn report(&self, list: Option<Uuid>) -> ClusterReport {
        match &self.cluster {
            Some(cluster) => cluster.report(list, self.peer_timeout).await,
            None => {
                let single = SingleNode {
                    node_id: &self.identity.node_id,
                    generation: self.identity.generation,
                    client_addr: &self.identity.client_addr,
                    active_lists: self.host.active_lists() as u64,
                };
                single.report(list.map(|list| (list, self.host.is_active(list))))
            }
        }
    }
}

#[async_trait]
impl Admin for NodeAdmin {
    async fn cluster(&self, list: Option<Uuid>) -> Result<Bytes, EdgeError> {
        let report = self.report(list).await;
        serde_json::to_vec(&report)
            .map(Bytes::from)
            .map_err(|error| {
                tracing::error!(%error, "encoding the admin view failed");
                EdgeError::internal()
            })
    }

    async fn lists(&self, limit: usize) -> Result<Bytes, EdgeError> {
        let report = BusiestReport {
            node: self.identity.node_id.clone(),
            lists: self.host.busiest(limit),
        };
        serde_json::to_vec(&report)
            .map(Bytes::from)
            .map_err(|error| {
                tracing::error!(%error, "encoding the busiest lists failed");
                EdgeError::internal()
            })
    }

    async fn stop(&self) -> Result<(), EdgeError> {
        if !self.stop.is_requested() {
            tracing::info!(node = %self.identity.node_id, "stop requested by an admin call");
        }
        self.stop.request();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: a requested stop wakes a waiter that started before it and one that starts after.
    #[tokio::test]
    async fn a_stop_request_wakes_every_waiter() {
        let stop = StopSignal::default();
        let early = tokio::spawn({
            let stop = stop.clone();
            async move { stop.requested().await }
        });
        assert!(!stop.is_requested());
        stop.request();
        stop.request();
        tokio::time::timeout(Duration::from_secs(5), early)
            .await
            .expect("the early waiter wakes")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), stop.requested())
            .await
            .expect("a late waiter returns at once");
        assert!(stop.is_requested());
    }
}
