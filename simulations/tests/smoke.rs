//! Short runs of every scenario's correctness checks against a real node on loopback (in
//! process) and the reference server (a real child process): no deliveries lost or repeated,
//! exact tallies, every op answered. No timing is asserted.

use listwire::config::ServeArgs;
use listwire_simulations::scenarios::{fanout, hot_poll, throughput};
use listwire_simulations::target::{Target, BENCH_NODE_FLAGS};

async fn node(dir: &std::path::Path) -> Target {
    let mut flags: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--argon2-memory-kib",
        "64",
        "--argon2-iterations",
        "1",
    ]
    .iter()
    .map(|flag| flag.to_string())
    .collect();
    flags.extend(["--data-dir".to_string(), dir.display().to_string()]);
    flags.extend(BENCH_NODE_FLAGS.iter().map(|flag| flag.to_string()));
    let args = ServeArgs::from_flags(flags).expect("flags");
    Target::in_process(listwire::server::start(args).await.expect("node starts"))
}

/// Fan-out to 20 subscribers: every edit reaches every subscriber exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let target = node(dir.path()).await;
    let params = fanout::Params {
        subscribers: 20,
        rate: 50.0,
        seconds: 1.0,
        ..Default::default()
    };
    let outcome = fanout::run(&target, &params).await.unwrap();
    assert!(outcome.edits >= 40, "{outcome:?}");
    assert_eq!(
        (outcome.lost, outcome.duplicates, outcome.closed_subscribers),
        (0, 0, 0),
        "{outcome:?}"
    );
    assert_eq!(outcome.deliveries, outcome.edits * 20);
    target.shutdown().await.unwrap();
}

/// The same client code against the reference rebroadcast server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_against_the_reference_server() {
    let reference = Target::spawn_reference(std::path::Path::new(env!(
        "CARGO_BIN_EXE_listwire-rebroadcast"
    )))
    .unwrap();
    let params = fanout::Params {
        subscribers: 10,
        rate: 50.0,
        seconds: 1.0,
        ..Default::default()
    };
    let outcome = fanout::run(&reference, &params).await.unwrap();
    assert_eq!((outcome.lost, outcome.duplicates), (0, 0), "{outcome:?}");
    assert_eq!(outcome.deliveries, outcome.edits * 10);
    reference.shutdown().await.unwrap();
}

/// A small hot poll: the stored tally equals the acknowledged distinct voters, item by item,
/// and every watcher converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_poll_tally_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let target = node(dir.path()).await;
    let params = hot_poll::Params {
        voters: 300,
        rate: 600.0,
        items: 4,
        watchers: 5,
        attempts: 5,
        http2: false,
        ..Default::default()
    };
    let outcome = hot_poll::run(&target, &params).await.unwrap();
    assert_eq!(outcome.votes_acked, 300, "{outcome:?}");
    assert!(outcome.tally_exact, "{outcome:?}");
    assert_eq!(outcome.counted, 300);
    assert_eq!(outcome.watchers_converged, 5, "{outcome:?}");
    target.shutdown().await.unwrap();
}

/// A small hot poll over WebSockets: 50 voters follow the tally and vote on 3 items each on
/// that socket; the stored tally equals the acknowledged votes, item by item, and every
/// connection's view reaches the last acked seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_poll_ws_tally_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let target = node(dir.path()).await;
    let params = hot_poll::Params {
        ws: true,
        connections: 50,
        rate: 300.0,
        items: 3,
        watchers: 3,
        ..Default::default()
    };
    let outcome = hot_poll::run(&target, &params).await.unwrap();
    assert_eq!(outcome.votes_acked, 150, "{outcome:?}");
    assert!(outcome.tally_exact, "{outcome:?}");
    assert_eq!(outcome.counted, 150);
    let ws = outcome.ws.as_ref().unwrap();
    assert_eq!(ws.connections_converged, 50, "{outcome:?}");
    assert_eq!(outcome.watchers_converged, 3, "{outcome:?}");
    assert_eq!(outcome.tally_lag.count, 150, "{outcome:?}");
    target.shutdown().await.unwrap();
}

/// A small throughput run: every offered op is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_acks_every_op() {
    let dir = tempfile::tempdir().unwrap();
    let target = node(dir.path()).await;
    let params = throughput::Params {
        lists: 20,
        writers: 4,
        rate: 400.0,
        seconds: 1.0,
        items_per_list: 5,
    };
    let outcome = throughput::run(&target, &params).await.unwrap();
    assert!(outcome.offered >= 300, "{outcome:?}");
    assert_eq!(outcome.acked, outcome.offered, "{outcome:?}");
    assert!(
        outcome.errors.is_empty() && outcome.unanswered == 0,
        "{outcome:?}"
    );
    target.shutdown().await.unwrap();
}
