//! The cluster router's retries, over a one-node cluster picture.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use listwire_gateway::{ErrorCode, Router};
use listwire_storage::memory::MemoryStore;
use tokio::sync::oneshot;

use super::super::follow::Follows;
use super::super::test_support::{owners_over, principal, raw, HeldLoads};
use super::*;
use crate::host::{Host, HostConfig};
use crate::router::LocalRouter;

/// Goal: when every attempt of an op fails in a way that may have applied it (a failed
/// append: the store may have written the batch before it failed), the client hears that the
/// outcome is unknown and to retry with the same op id, not just "unavailable". (Outside
/// review, F12.)
#[tokio::test]
async fn retries_that_may_have_applied_report_an_unknown_outcome() {
    let inner = Arc::new(MemoryStore::new());
    let store = HeldLoads::new(inner.clone());
    let local = LocalRouter::new(Host::new(store.clone(), inner, HostConfig::default()));
    let alice = principal(1, "alice");
    let list = local
        .create_list(&alice, raw(r#"{"title":"failing disk"}"#))
        .await
        .unwrap();
    store.fail_appends.store(true, Ordering::SeqCst);
    let owners = owners_over(local);
    let follows = Follows::new(owners.clone(), Duration::from_secs(1));
    let router = ClusterRouter::new(owners, follows, Duration::from_millis(400));
    let (tx, rx) = oneshot::channel();
    let reply = Reply::new(move |outcome| {
        let _ = tx.send(outcome);
    });
    let op = raw(r#"{"kind":"add_item","text":"lost?","after":null}"#);
    router.submit(&alice, list, Uuid::new_v4(), op, reply).await;
    let error = rx.await.unwrap().unwrap_err();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert!(
        error.message.contains("outcome is unknown") && error.message.contains("same op_id"),
        "{}",
        error.message
    );
}

/// Goal: the unknown-outcome note is added once, however many retries pass the error on.
#[test]
fn the_unknown_outcome_is_noted_once() {
    let failed = EdgeError::new(ErrorCode::Unavailable, "storage unavailable; retry");
    let marked = outcome_unknown(failed);
    assert!(marked.message.contains("outcome is unknown"));
    let already = outcome_unknown(marked.clone());
    assert_eq!(already.message, marked.message, "marked once");
}

/// Goal: `/readyz` turns away new clients from a draining (or departed) node while the cluster
/// still has a majority, so a load balancer sends them to the nodes that stay; a serving node
/// of the same cluster is ready.
#[test]
fn a_draining_node_takes_no_new_clients() {
    use listwire_cluster::membership::{Member, Roles, View};
    use listwire_cluster::NodeId;

    use super::super::state::ClusterState;

    let host = |name: &str, state: NodeState| {
        Member::new(NodeId::new(name).unwrap(), 1)
            .with_roles(Roles::ALL)
            .with_state(state)
            .with_liveness(true)
    };
    let picture = |me: NodeState| {
        let members = [
            host("a", me),
            host("b", NodeState::Serving),
            host("c", NodeState::Serving),
        ];
        ClusterState::new(
            NodeId::new("a").unwrap(),
            View::new(NodeId::new("a").unwrap(), members),
        )
        .picture()
    };
    assert!(takes_new_clients(&picture(NodeState::Serving)));
    assert!(!takes_new_clients(&picture(NodeState::Draining)));
    assert!(!takes_new_clients(&picture(NodeState::Left)));
}
