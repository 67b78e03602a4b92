//! PostgreSQL-specific failure handling, against the real server through a TCP proxy that cuts
//! connections at chosen moments: a commit whose answer is lost is resolved by reading it back
//! (applied → `Ok`, not applied → retryable `Unavailable`, unreadable → `Unavailable` saying the
//! outcome is unknown), a lock wait ends at `lock_timeout` as a retryable error, connections the
//! server terminated are replaced, and an unreachable database fails fast.

use std::time::{Duration, Instant};

use bytes::Bytes;
use listwire_storage::postgres::{PostgresConfig, PostgresStore};
use listwire_storage::testsuite::postgres::{
    drop_schema, fresh_schema, raw_client, test_config, upstream_addr, via,
};
use listwire_storage::testsuite::proxy::{Fault, Proxy};
use listwire_storage::{Batch, Error, EventStore};
use uuid::Uuid;

use super::server;

/// The simple-query message `COMMIT` (type `Q`, length 11, the text and its NUL), exactly: the
/// text alone would also match `START TRANSACTION ISOLATION LEVEL READ COMMITTED`.
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

fn batch(first_seq: u64, last_seq: u64, body: &str) -> Batch {
    Batch {
        first_seq,
        last_seq,
        body: Bytes::from(body.to_owned()),
    }
}

/// Short timeouts, so a test that waits for one is quick.
fn quick(url: &str, schema: &str) -> PostgresConfig {
    PostgresConfig {
        statement_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        pool_wait_timeout: Duration::from_millis(500),
        ..test_config(url, schema)
    }
}

/// A store that talks to the server through a fresh proxy, on a fresh schema.
async fn proxied(url: &str, schema: &str) -> (Proxy, PostgresStore) {
    let proxy = Proxy::start(upstream_addr(url).expect("server address"))
        .await
        .expect("start proxy");
    let through = via(url, proxy.addr()).expect("proxied url");
    let store = PostgresStore::connect(quick(&through, schema))
        .await
        .expect("connect through the proxy");
    (proxy, store)
}

/// The proxy forwards `COMMIT`, then drops both sockets: the server commits, the client never
/// hears it. The append must read the outcome back and report success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_commit_answer_that_applied_is_ok() {
    let Some(url) = server() else { return };
    let schema = fresh_schema("lw_fault_");
    let (proxy, store) = proxied(&url, &schema).await;
    let list = Uuid::new_v4();
    store
        .append(list, batch(1, 1, "a"))
        .await
        .expect("append 1");
    proxy.fault_on(COMMIT, Fault::AfterForwarding, false);
    let result = store.append(list, batch(2, 3, "b")).await;
    assert_eq!(proxy.fired(), 1, "the commit went through the fault");
    assert!(
        result.is_ok(),
        "an applied commit is reported applied: {result:?}"
    );
    assert_eq!(store.head(list).await.expect("head"), 3);
    let read = store.read_batches(list, 1, 10).await.expect("read");
    assert_eq!(read, vec![batch(2, 3, "b")]);
    drop_schema(&url, &schema).await.expect("drop schema");
}

/// The proxy drops both sockets instead of forwarding `COMMIT`: the server rolls back. The
/// append must say so with a retryable error, and a retry must then succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_commit_that_did_not_apply_is_retryable() {
    let Some(url) = server() else { return };
    let schema = fresh_schema("lw_fault_");
    let (proxy, store) = proxied(&url, &schema).await;
    let list = Uuid::new_v4();
    proxy.fault_on(COMMIT, Fault::InsteadOfForwarding, false);
    let result = store.append(list, batch(1, 2, "first")).await;
    assert_eq!(proxy.fired(), 1);
    match &result {
        Err(err @ Error::Unavailable(message)) => {
            assert!(err.is_retryable());
            assert!(message.contains("lost during commit"), "{message}");
        }
        other => panic!("a rolled-back commit is Unavailable, got {other:?}"),
    }
    assert_eq!(
        store.head(list).await.expect("head"),
        0,
        "nothing was written"
    );
    store
        .append(list, batch(1, 2, "first"))
        .await
        .expect("the retry applies");
    assert_eq!(store.head(list).await.expect("head"), 2);
    drop_schema(&url, &schema).await.expect("drop schema");
}

/// The commit reaches the server, then the proxy refuses everything: the outcome cannot be read
/// back, so the append must report it unknown (retryable), not guess. Once the proxy is back,
/// the stored head shows the commit applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_commit_outcome_is_unknown() {
    let Some(url) = server() else { return };
    let schema = fresh_schema("lw_fault_");
    let (proxy, store) = proxied(&url, &schema).await;
    let list = Uuid::new_v4();
    store
        .append(list, batch(1, 1, "a"))
        .await
        .expect("append 1");
    proxy.fault_on(COMMIT, Fault::AfterForwarding, true);
    let started = Instant::now();
    let result = store.append(list, batch(2, 2, "b")).await;
    match &result {
        Err(err @ Error::Unavailable(message)) => {
            assert!(err.is_retryable());
            assert!(message.contains("outcome unknown"), "{message}");
        }
        other => panic!("an unreadable outcome is Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "resolution is bounded by its deadline"
    );
    proxy.restore();
    assert_eq!(store.head(list).await.expect("head after restore"), 2);
    drop_schema(&url, &schema).await.expect("drop schema");
}

/// Another session holds the list's head row: the append waits `lock_timeout`, then fails with
/// a retryable error (not a conflict, which would tell the writer it is stale), and succeeds
/// once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_wait_is_retryable_not_a_conflict() {
    let Some(url) = server() else { return };
    let schema = fresh_schema("lw_fault_");
    let store = PostgresStore::connect(quick(&url, &schema))
        .await
        .expect("connect");
    let list = Uuid::new_v4();
    store
        .append(list, batch(1, 1, "a"))
        .await
        .expect("append 1");
    let mut holder = raw_client(&url).await.expect("raw client");
    let tx = holder.transaction().await.expect("begin");
    // Test-only SQL on a validated schema name.
    let lock = format!("SELECT head FROM {schema}.heads WHERE list_id = $1 FOR UPDATE");
    tx.query_one(lock.as_str(), &[&list])
        .await
        .expect("lock the head row");
    let result = store.append(list, batch(2, 2, "b")).await;
    assert!(
        matches!(&result, Err(Error::Unavailable(_))),
        "a lock wait past lock_timeout is Unavailable, got {result:?}"
    );
    tx.rollback().await.expect("release");
    store
        .append(list, batch(2, 2, "b"))
        .await
        .expect("append after release");
    drop_schema(&url, &schema).await.expect("drop schema");
}

/// The server terminates every connection of the store (as on a restart or failover): the
/// next requests, reads and appends alike, get new connections and succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_are_replaced() {
    let Some(url) = server() else { return };
    let schema = fresh_schema("lw_fault_");
    let name = fresh_schema("lw_app_");
    let tagged = format!(
        "{} application_name={name}",
        via(&url, upstream_addr(&url).expect("address")).expect("url")
    );
    let store = PostgresStore::connect(quick(&tagged, &schema))
        .await
        .expect("connect");
    let list = Uuid::new_v4();
    let (a, b, c) = tokio::join!(store.head(list), store.head(list), store.head(list));
    assert!(a.is_ok() && b.is_ok() && c.is_ok(), "warm up the pool");
    let admin = raw_client(&url).await.expect("raw client");
    let terminate = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = $1";
    let killed: i64 = admin
        .query_one(terminate, &[&name])
        .await
        .expect("terminate")
        .get(0);
    assert!(killed >= 1, "the store had connections to terminate");
    store
        .append(list, batch(1, 1, "after"))
        .await
        .expect("append after termination");
    assert_eq!(store.head(list).await.expect("head"), 1);
    drop_schema(&url, &schema).await.expect("drop schema");
}

/// Nothing listens: connecting fails at once with a retryable error that names the database
/// and not the password. Needs no server.
#[tokio::test]
async fn unreachable_database_fails_fast() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("postgres://lw:sup3rsecret@127.0.0.1:{port}/lists");
    let started = Instant::now();
    let result = PostgresStore::connect(PostgresConfig::new(url)).await;
    let elapsed = started.elapsed();
    let err = result.expect_err("connecting to a closed port fails");
    assert!(err.is_retryable(), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("connect"), "{message}");
    assert!(!message.contains("sup3rsecret"), "{message}");
    assert!(elapsed < Duration::from_secs(5), "failed fast: {elapsed:?}");
}
