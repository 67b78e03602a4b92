//! The backend contract suite against a real PostgreSQL, named by `LISTWIRE_POSTGRES_URL`
//! (`./ops/test.sh` starts a throwaway server and sets it, so CI always runs this). Each test
//! uses a fresh schema, so they run in parallel. Without the variable every test prints one line
//! saying it was skipped, and passes. PostgreSQL-specific checks (in-doubt commits through a
//! faulty proxy, lock timeouts, migrations) live in `postgres/`.

use std::future::Future;
use std::sync::Arc;

use listwire_storage::postgres::PostgresStore;
use listwire_storage::testsuite;
use listwire_storage::testsuite::postgres::{drop_schema, fresh_schema, test_config, url_or_skip};

#[path = "postgres/faults.rs"]
mod faults;
#[path = "postgres/migrations.rs"]
mod migrations;

/// The server URL, or `None` (after saying so) when the tests are skipped.
fn server() -> Option<String> {
    url_or_skip("contract_postgres")
}

/// Runs `check` against a store on a fresh schema, then drops the schema.
async fn with_store<F, Fut>(check: F)
where
    F: FnOnce(PostgresStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(url) = server() else {
        return;
    };
    let schema = fresh_schema("lw_contract_");
    let store = PostgresStore::connect(test_config(&url, &schema))
        .await
        .expect("connect to PostgreSQL");
    check(store).await;
    drop_schema(&url, &schema).await.expect("drop test schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_event_store_contract() {
    with_store(|store| async move { testsuite::event_store_contract(&store).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_writers_contract() {
    with_store(|store| testsuite::racing_writers_contract(Arc::new(store))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_reads_racing_prunes_contract() {
    with_store(|store| testsuite::reads_racing_prunes_contract(Arc::new(store))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_account_store_contract() {
    with_store(|store| async move { testsuite::account_store_contract(&store).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_close_contract() {
    with_store(|store| async move { testsuite::close_contract(&store).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_contract_on_one_connection() {
    // A pool of one: every request queues for the same connection, so a connection leaked by
    // an error path (never handed back) would stall the suite at the pool's wait timeout.
    let Some(url) = server() else {
        return;
    };
    let schema = fresh_schema("lw_contract_");
    let config = listwire_storage::postgres::PostgresConfig {
        pool_size: 1,
        ..test_config(&url, &schema)
    };
    let store = PostgresStore::connect(config).await.expect("connect");
    testsuite::event_store_contract(&store).await;
    testsuite::account_store_contract(&store).await;
    testsuite::racing_writers_contract(Arc::new(store)).await;
    drop_schema(&url, &schema).await.expect("drop test schema");
}
