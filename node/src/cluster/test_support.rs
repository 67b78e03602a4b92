//! Helpers for the cluster layer's unit tests: a one-node cluster picture over a local host,
//! and an event store whose loads can be held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use listwire_cluster::membership::{Member, NodeState, Roles, View};
use listwire_cluster::transport::{Client, ClusterSecret, TcpConnector, TransportConfig};
use listwire_cluster::NodeId;
use listwire_gateway::{OpOutcome, Principal, Reply, Router};
use listwire_storage::memory::MemoryStore;
use listwire_storage::{Batch, Error, EventStore, Snapshot};
use serde_json::value::RawValue;
use tokio::sync::{oneshot, Semaphore};
use uuid::Uuid;

use super::forward::Forwarder;
use super::owners::Owners;
use super::state::ClusterState;
use crate::router::LocalRouter;

/// The memory store with activations (snapshot reads) that can be held, and appends that
/// can be made to fail.
pub struct HeldLoads {
    pub inner: Arc<MemoryStore>,
    pub hold: AtomicBool,
    pub gate: Semaphore,
    pub fail_appends: AtomicBool,
}

impl HeldLoads {
    pub fn new(inner: Arc<MemoryStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            hold: AtomicBool::new(false),
            gate: Semaphore::new(0),
            fail_appends: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl EventStore for HeldLoads {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        if self.fail_appends.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("the disk is gone".into()));
        }
        self.inner.append(list, batch).await
    }
    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        self.inner.head(list).await
    }
    async fn read_batches(&self, list: Uuid, after: u64, max: usize) -> Result<Vec<Batch>, Error> {
        self.inner.read_batches(list, after, max).await
    }
    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        self.inner.write_snapshot(list, snapshot).await
    }
    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        if self.hold.load(Ordering::SeqCst) {
            self.gate.acquire().await.unwrap().forget();
        }
        self.inner.latest_snapshot(list).await
    }
    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        self.inner.prune(list, up_to_seq).await
    }
    async fn close(&self) -> Result<(), Error> {
        Ok(())
    }
}

pub fn principal(n: u128, name: &str) -> Principal {
    Principal {
        user_id: Uuid::from_u128(n),
        username: name.into(),
    }
}

pub fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

pub async fn submit(router: &LocalRouter, who: &Principal, list: Uuid, op: &str) -> OpOutcome {
    let (tx, rx) = oneshot::channel();
    let reply = Reply::new(move |outcome| {
        let _ = tx.send(outcome);
    });
    router
        .submit(who, list, Uuid::new_v4(), raw(op), reply)
        .await;
    rx.await.unwrap()
}

/// Owners over `local`, in a one-node view where this node serves and owns every list.
pub fn owners_over(local: LocalRouter) -> Arc<Owners> {
    let id = NodeId::new("node-a").unwrap();
    let me = Member::new(id.clone(), 1)
        .with_roles(Roles::HOST)
        .with_state(NodeState::Serving);
    let state = Arc::new(ClusterState::new(id.clone(), View::new(id.clone(), [me])));
    let transport = TransportConfig::new("unit", id, ClusterSecret::new(vec![7u8; 32]).unwrap(), 1);
    let client = Client::new(transport, Arc::new(TcpConnector)).unwrap();
    Arc::new(Owners {
        local,
        forwarder: Forwarder::new(client, Duration::from_secs(5)),
        state,
        node_queue_items: 64,
    })
}
