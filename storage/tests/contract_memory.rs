//! The backend contract suite, run against the in-memory store.

use std::sync::Arc;

use listwire_storage::memory::MemoryStore;
use listwire_storage::testsuite;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_event_store_contract() {
    testsuite::event_store_contract(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_racing_writers_contract() {
    testsuite::racing_writers_contract(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_reads_racing_prunes_contract() {
    testsuite::reads_racing_prunes_contract(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_account_store_contract() {
    testsuite::account_store_contract(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_close_contract() {
    testsuite::close_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_contract_through_trait_objects() {
    // Other crates hold the store as `dyn EventStore`; the suite must accept that too.
    let store: Arc<dyn listwire_storage::EventStore> = Arc::new(MemoryStore::new());
    testsuite::event_store_contract(&*store).await;
    testsuite::racing_writers_contract(store).await;
}
