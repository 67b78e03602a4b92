//! A short real-process chaos run: three `listwire serve --store postgres` processes on their
//! own loopback addresses over the server named by `LISTWIRE_POSTGRES_URL` (`./ops/test.sh`
//! starts a throwaway one), a mixed load for 60 s, and a fixed seed's faults (kills and
//! restarts, pauses longer than failure detection, partitions when packet filtering works
//! here). Asserts the checkers' verdict is clean, and that the run did what it claims: faults
//! of each kind were injected and the ops and subscribers it checked exist. The load is kept
//! small (a debug build, two cores shared with the rest of the suite).

mod common;

use std::time::Duration;

use listwire_simulations::chaos::{run, FaultKind, Params};

/// A seed whose schedule holds at least two faults of each kind in 60 s.
const SEED: u64 = 7;

/// Kills, pauses and partitions under load break no invariant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_seed_chaos_run_is_clean() {
    let Some(url) = common::postgres_url_or_skip("chaos test") else {
        return;
    };
    let binary = common::listwire_binary();
    let mut params = Params::new(SEED, Duration::from_secs(60), binary, url);
    // Addresses of its own, so a chaos soak running beside the suite is not partitioned by it.
    params.address_base = std::net::Ipv4Addr::new(127, 0, 1, 11);
    params.writers = 3;
    params.voters = 60;
    let report = run(&params).await.expect("the chaos run completes");
    println!("{report}");
    assert!(report.clean(), "{report}");
    for kind in [FaultKind::Kill, FaultKind::Pause] {
        assert!(
            report.faults.get(&kind).copied().unwrap_or(0) >= 2,
            "{report}"
        );
    }
    if report.partitions.is_ok() {
        assert!(
            report
                .faults
                .get(&FaultKind::Partition)
                .copied()
                .unwrap_or(0)
                >= 1,
            "{report}"
        );
    }
    assert!(
        report.writes.1 > 100 && report.writes.1 == report.writes.0,
        "{report}"
    );
    assert!(report.votes.1 > 0 && report.votes.2 > 0, "{report}");
    assert_eq!(report.ops_checked, report.writes.0 + report.votes.0);
    assert_eq!(report.subscribers.0, 15, "{report}");
}
