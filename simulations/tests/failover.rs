//! A short `failover` run on a real cluster: three `listwire serve` processes over the
//! PostgreSQL server named by `LISTWIRE_POSTGRES_URL` (`./ops/test.sh` starts a throwaway one),
//! the owner of a third of the lists SIGKILLed mid-run. Checks the scenario's correctness
//! verdicts — nothing acked lost, nothing applied twice, no seq acked twice, every subscriber
//! contiguous and caught up, every list served again — and that the run measured what it
//! reports. No timing is asserted.
//!
//! The nodes are the workspace's `listwire` binary, which `cargo test --workspace` builds
//! (the node crate's tests need it); `LISTWIRE_BIN` names another.

mod common;

use listwire_simulations::cluster::{spawn_cluster, ClusterSpec};
use listwire_simulations::scenarios::failover;

/// The owner of some lists dies under writers and subscribers: every check passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owner_loses_no_acked_op_and_subscribers_stay_contiguous() {
    let Some(url) = common::postgres_url_or_skip("failover smoke test") else {
        return;
    };
    let binary = common::listwire_binary();
    // Short gossip rounds and op timeouts keep the run (and its bounded waits) to seconds.
    let extra: Vec<String> = [
        "--gossip-interval-ms",
        "100",
        "--op-timeout-ms",
        "3000",
        "--postgres-pool-size",
        "4",
        "--drain-timeout-secs",
        "2",
    ]
    .map(String::from)
    .to_vec();
    let spec = ClusterSpec {
        binary: &binary,
        nodes: 3,
        postgres_url: &url,
        extra: &extra,
    };
    let target = spawn_cluster(&spec).await.expect("the cluster starts");
    let params = failover::Params {
        lists: 6,
        rate_per_list: 20.0,
        writers: 3,
        subscribers_per_list: 2,
        seconds: 3.0,
        kill_after: 1.0,
        victim: None,
    };
    let outcome = failover::run(&target, &params).await;
    target.shutdown().await.expect("the cluster stops");
    let outcome = outcome.expect("the scenario runs");

    assert!(outcome.correct(), "{outcome:#?}");
    assert_eq!(outcome.victim, 2);
    assert_eq!(outcome.lists_failed_over, 2, "lists 2 and 5 were on node 2");
    assert_eq!(outcome.serving_again.count, 2, "{outcome:#?}");
    assert_eq!(
        outcome.store,
        failover::StoreChecks {
            unacked_applied: outcome.store.unacked_applied,
            ..Default::default()
        }
    );
    let ops = &outcome.ops;
    assert!(ops.sent >= 300, "6 lists × 20 ops/s × 3 s: {ops:?}");
    assert_eq!(ops.acked, ops.sent, "every op is acked in the end: {ops:?}");
    assert!(ops.refused.is_empty() && ops.unanswered == 0, "{ops:?}");
    let subscribers = &outcome.subscriber_checks;
    assert_eq!(subscribers.subscribers, 12);
    assert_eq!(subscribers.converged, 12, "{subscribers:?}");
    assert_eq!((subscribers.gaps, subscribers.duplicates), (0, 0));
    // The victim's subscribers (12 / 3) lost their connection and came back elsewhere.
    assert_eq!(subscribers.stayed_connected, 8, "{subscribers:?}");
    assert!(subscribers.reconnects >= 4, "{subscribers:?}");
    assert!(
        outcome.detection_ms.iter().all(Option::is_some),
        "both survivors noticed the kill: {:?}",
        outcome.detection_ms
    );
}
