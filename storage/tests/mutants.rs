//! The `skip-conditional-append` mutant really removes the fencing, in the memory store and in
//! PostgreSQL: a stale writer's batch is accepted. Only in builds with the `mutants` feature
//! (`simulations/mutants.sh` runs it); the ordinary suite proves the fencing itself.
#![cfg(feature = "mutants")]

use bytes::Bytes;
use listwire_storage::memory::MemoryStore;
use listwire_storage::mutants::{self, Mutant};
use listwire_storage::postgres::PostgresStore;
use listwire_storage::testsuite::postgres::{drop_schema, fresh_schema, test_config, url_or_skip};
use listwire_storage::{Batch, EventStore};
use uuid::Uuid;

fn batch(first_seq: u64, body: &'static str) -> Batch {
    Batch {
        first_seq,
        last_seq: first_seq,
        body: Bytes::from_static(body.as_bytes()),
    }
}

/// Two writers append at seq 1; a fenced store refuses the second, the mutant takes both.
async fn accepts_a_stale_writer(store: &dyn EventStore) {
    let list = Uuid::new_v4();
    store.append(list, batch(1, "first")).await.unwrap();
    store.append(list, batch(2, "second")).await.unwrap();
    store
        .append(list, batch(1, "stale"))
        .await
        .expect("the mutant accepts a batch whatever the head");
    assert_eq!(store.head(list).await.unwrap(), 1, "the head moved back");
}

/// Goal: with the mutant selected, neither store fences a stale writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_conditional_append_removes_the_fencing() {
    mutants::select(Some(Mutant::SkipConditionalAppend));
    assert!(mutants::active(Mutant::SkipConditionalAppend));
    accepts_a_stale_writer(&MemoryStore::new()).await;
    let Some(url) = url_or_skip("mutants") else {
        return;
    };
    let schema = fresh_schema("lw_mutants_");
    let store = PostgresStore::connect(test_config(&url, &schema))
        .await
        .expect("connect to PostgreSQL");
    accepts_a_stale_writer(&store).await;
    drop_schema(&url, &schema).await.unwrap();
}
