//! A node on PostgreSQL (`--store postgres`): it refuses to start, quickly and clearly, when the
//! database is unreachable; `/readyz` follows the database through a proxy that is cut and
//! restored; data written through one node is there for the next one on the same schema.
//! Tests that need a server use `LISTWIRE_POSTGRES_URL` and say when they are skipped.

use std::time::{Duration, Instant};

use listwire::client::Client;
use listwire::config::ServeArgs;
use listwire_storage::testsuite::postgres::{
    drop_schema, fresh_schema, upstream_addr, url_or_skip, via,
};
use listwire_storage::testsuite::proxy::Proxy;

use crate::support::*;

/// The same secret on every node, as a cluster needs.
pub const SECRET: &str = "postgres-test-secret-0123456789abcdef";

/// Flags for a node on `url`, schema `schema`, with small pools and short timeouts.
pub fn postgres_flags(url: &str, schema: &str) -> Vec<String> {
    [
        "--store",
        "postgres",
        "--postgres-url",
        url,
        "--postgres-schema",
        schema,
        "--postgres-pool-size",
        "4",
        "--postgres-statement-timeout-ms",
        "1000",
        "--postgres-connect-timeout-ms",
        "1000",
        "--postgres-pool-wait-timeout-ms",
        "1000",
        "--jwt-secret",
        SECRET,
    ]
    .iter()
    .map(|flag| flag.to_string())
    .collect()
}

async fn status(url: String) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn unreachable_database_fails_fast_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://lw:sup3rsecret@127.0.0.1:{port}/lists");
    let mut flags = test_flags(dir.path());
    flags.extend(postgres_flags(&url, "listwire"));
    let args = ServeArgs::from_flags(flags).unwrap();
    let started = Instant::now();
    let error = match listwire::server::start(args).await {
        Ok(_) => panic!("a node must not start without its database"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails fast: {:?}",
        started.elapsed()
    );
    assert!(error.contains("connecting to PostgreSQL"), "{error}");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(!error.contains("sup3rsecret"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database() {
    let Some(url) = url_or_skip("listwire it postgres") else {
        return;
    };
    let schema = fresh_schema("lw_ready_");
    let proxy = Proxy::start(upstream_addr(&url).unwrap()).await.unwrap();
    let through = via(&url, proxy.addr()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&through, &schema);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let node = start_node(dir.path(), &flags).await;
    let readyz = format!("{}/readyz", node.http_url());
    assert_eq!(status(readyz.clone()).await, Some(200));
    proxy.cut();
    eventually(Duration::from_secs(10), || async {
        status(readyz.clone()).await == Some(503)
    })
    .await;
    proxy.restore();
    eventually(Duration::from_secs(10), || async {
        status(readyz.clone()).await == Some(200)
    })
    .await;
    node.stop().await.unwrap();
    drop_schema(&url, &schema).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_outlives_the_node() {
    let Some(url) = url_or_skip("listwire it postgres") else {
        return;
    };
    let schema = fresh_schema("lw_node_");
    let flags = postgres_flags(&url, &schema);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let first_dir = tempfile::tempdir().unwrap();
    let node = start_node(first_dir.path(), &flags).await;
    let alice = user(&node, "alice").await;
    let created = list(&alice, "shared").await;
    add_item(&alice, created, "milk").await;
    node.stop().await.unwrap();

    // Another node, another data directory: everything comes from the database.
    let second_dir = tempfile::tempdir().unwrap();
    let node = start_node(second_dir.path(), &flags).await;
    let session = Client::new(&node.http_url())
        .login("alice", "correct horse battery")
        .await
        .unwrap();
    let alice = Client::new(&node.http_url()).with_token(&session.token);
    let state = alice.get_list(created).await.unwrap();
    assert_eq!(state["seq"], 2);
    assert_eq!(state["items"][0]["text"], "milk");
    // The index ("my lists") lives in the database too.
    eventually(Duration::from_secs(10), || async {
        alice.lists().await.is_ok_and(|mine| mine.len() == 1)
    })
    .await;
    node.stop().await.unwrap();
    drop_schema(&url, &schema).await.unwrap();
}
