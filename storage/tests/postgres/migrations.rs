//! Schema migrations on a real server: a fresh schema records every migration once, restarts
//! change nothing, nodes starting at once migrate exactly once between them (the advisory lock),
//! and a schema migrated by a newer release is refused with a message saying so.

use listwire_storage::postgres::schema::{latest_version, MIGRATIONS};
use listwire_storage::postgres::PostgresStore;
use listwire_storage::testsuite::postgres::{drop_schema, fresh_schema, raw_client, test_config};
use listwire_storage::{Error, EventStore};
use uuid::Uuid;

use super::server;

/// `(version, description)` rows of the schema's migration table.
async fn recorded(url: &str, schema: &str) -> Vec<(i32, String)> {
    let client = raw_client(url).await.expect("raw client");
    // Test-only SQL on a validated schema name.
    let select =
        format!("SELECT version, description FROM {schema}.schema_migrations ORDER BY version");
    client
        .query(select.as_str(), &[])
        .await
        .expect("read schema_migrations")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn expected() -> Vec<(i32, String)> {
    MIGRATIONS
        .iter()
        .map(|m| (m.version, m.description.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_recorded_once_and_idempotent() {
    let Some(url) = server() else { return };
    let schema = fresh_schema("lw_migrate_");
    let (store, first) = PostgresStore::connect_reporting(test_config(&url, &schema))
        .await
        .expect("first start");
    assert_eq!(first.migrated_from, 0, "a fresh schema starts at version 0");
    assert_eq!(first.schema_version, latest_version());
    assert_eq!(recorded(&url, &schema).await, expected());
    let list = Uuid::new_v4();
    store
        .append(
            list,
            listwire_storage::Batch {
                first_seq: 1,
                last_seq: 1,
                body: bytes::Bytes::from_static(b"kept"),
            },
        )
        .await
        .expect("append");
    store.close().await.expect("close");
    let (again, second) = PostgresStore::connect_reporting(test_config(&url, &schema))
        .await
        .expect("restart");
    assert_eq!(
        second.migrated_from,
        latest_version(),
        "nothing left to apply"
    );
    assert_eq!(
        recorded(&url, &schema).await,
        expected(),
        "no migration ran twice"
    );
    assert_eq!(
        again.head(list).await.expect("head"),
        1,
        "a restart keeps the data"
    );
    drop_schema(&url, &schema).await.expect("drop schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_migrate_exactly_once() {
    let Some(url) = server() else { return };
    let schema = fresh_schema("lw_migrate_");
    let starts: Vec<_> = (0..6)
        .map(|_| tokio::spawn(PostgresStore::connect_reporting(test_config(&url, &schema))))
        .collect();
    let mut fresh = 0;
    for start in starts {
        let (_, connected) = start
            .await
            .expect("start task")
            .expect("every concurrent start succeeds");
        assert_eq!(connected.schema_version, latest_version());
        if connected.migrated_from == 0 {
            fresh += 1;
        } else {
            assert_eq!(connected.migrated_from, latest_version());
        }
    }
    assert_eq!(fresh, 1, "exactly one start applied the migrations");
    assert_eq!(recorded(&url, &schema).await, expected());
    drop_schema(&url, &schema).await.expect("drop schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some(url) = server() else { return };
    let schema = fresh_schema("lw_migrate_");
    PostgresStore::connect(test_config(&url, &schema))
        .await
        .expect("first start");
    let client = raw_client(&url).await.expect("raw client");
    let insert = format!(
        "INSERT INTO {schema}.schema_migrations (version, description) VALUES ($1, 'from the future')"
    );
    client
        .execute(insert.as_str(), &[&(latest_version() + 1)])
        .await
        .expect("record a future migration");
    let refused = PostgresStore::connect(test_config(&url, &schema)).await;
    match refused {
        Err(Error::Backend(message)) => {
            assert!(message.contains("newer than this build"), "{message}");
            assert!(message.contains(&schema), "{message}");
        }
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
    drop_schema(&url, &schema).await.expect("drop schema");
}
