//! `listwire status`, run as the real binary against running nodes: the members table, a
//! list's owner, and the errors an operator can act on (wrong or missing token, no admin API,
//! nothing listening).

use std::process::Output;

use crate::support::cluster::{TestCluster, ADMIN_TOKEN};
use crate::support::*;

/// Runs `listwire status` with `args` and, when given, `LISTWIRE_ADMIN_TOKEN`.
async fn status(args: &[&str], token_env: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_listwire"));
    command
        .arg("status")
        .args(args)
        .env_remove("LISTWIRE_ADMIN_TOKEN");
    if let Some(token) = token_env {
        command.env("LISTWIRE_ADMIN_TOKEN", token);
    }
    command.output().await.expect("run listwire status")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "listwire status failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "listwire status should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The table names every member with its state, liveness and client address and the
/// summary the majority; `--list` prints the owner placement chose; the token may come from
/// the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_prints_the_members_and_a_lists_owner() {
    let cluster = TestCluster::start(2, &[]).await;
    let url = cluster.node(1).http_url();
    let table = stdout(&status(&["--url", &url, "--admin-token", ADMIN_TOKEN], None).await);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "node-1 sees 2 members; majority: yes; serving hosts: node-0, node-1"
    );
    assert!(lines[2].starts_with("NODE"), "{table}");
    for index in 0..2 {
        let addr = cluster.node(index).addr.to_string();
        let row = lines[3..]
            .iter()
            .find(|line| line.starts_with(&format!("node-{index}")))
            .unwrap_or_else(|| panic!("a row for node-{index}: {table}"));
        assert!(row.contains("serving") && row.contains("yes"), "{row}");
        assert!(row.contains(&addr) && row.contains("host,gateway"), "{row}");
    }
    assert!(
        table.contains("node-1 *"),
        "the answering node is marked: {table}"
    );

    let alice = user(cluster.node(0), "alice").await;
    let list = list(&alice, "owned").await;
    let owner = cluster.owner_of(1, list);
    let list_arg = list.to_string();
    let owner_line =
        stdout(&status(&["--url", &url, "--list", &list_arg], Some(ADMIN_TOKEN)).await);
    let expected = format!(
        "list {list}: owner node-{owner} (clients at {}); active there: yes",
        cluster.node(owner).addr
    );
    assert_eq!(owner_line.trim_end(), expected);
}

/// A missing token, a wrong token, a node without the admin API and an address nobody
/// listens on each fail with a message that says which it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_explains_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let with_admin = start_node(dir.path(), &["--admin-token", ADMIN_TOKEN]).await;
    let url = with_admin.http_url();
    let missing = failure(&status(&["--url", &url], None).await);
    assert!(missing.contains("needs its admin token (401)"), "{missing}");
    let wrong = failure(
        &status(
            &["--url", &url, "--admin-token", "not-the-admin-token"],
            None,
        )
        .await,
    );
    assert!(wrong.contains("refused the admin token (401)"), "{wrong}");
    with_admin.stop().await.unwrap();

    let other_dir = tempfile::tempdir().unwrap();
    let without_admin = start_node(other_dir.path(), &[]).await;
    let url = without_admin.http_url();
    let disabled = failure(&status(&["--url", &url, "--admin-token", ADMIN_TOKEN], None).await);
    assert!(disabled.contains("has no admin API (404)"), "{disabled}");
    without_admin.stop().await.unwrap();

    let unreachable = failure(&status(&["--url", &url, "--admin-token", ADMIN_TOKEN], None).await);
    assert!(
        unreachable.contains(&format!("cannot reach {url}")),
        "{unreachable}"
    );
}

/// `GET /v1/admin/lists` ranks a node's lists by what they were asked, and `listwire status
/// --busiest` names the list that is busy now: the way to find a hot list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn busiest_names_the_hot_list() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &["--admin-token", ADMIN_TOKEN]).await;
    let alice = user(&node, "alice").await;
    let quiet = list(&alice, "quiet").await;
    let hot = list(&alice, "hot").await;
    alice
        .op(quiet, uuid::Uuid::new_v4(), add("one"))
        .await
        .unwrap();
    for k in 0..30 {
        alice
            .op(hot, uuid::Uuid::new_v4(), add(&format!("item {k}")))
            .await
            .unwrap();
    }
    let admin = listwire::client::Client::new(&node.http_url()).with_token(ADMIN_TOKEN);
    let report = admin.admin_lists(10).await.unwrap();
    let ranked: Vec<uuid::Uuid> = report.lists.iter().map(|load| load.list).collect();
    assert_eq!(ranked, vec![hot, quiet], "{report:?}");
    assert!(report.lists[0].admitted >= 30, "{report:?}");

    // Ops on the hot list while the command samples (bounded: it samples for one second).
    let writer = {
        let alice = alice.clone();
        tokio::spawn(async move {
            for k in 0..2_000 {
                // A refusal (the per-user rate) only slows the writer down.
                let _ = alice
                    .op(hot, uuid::Uuid::new_v4(), add(&format!("more {k}")))
                    .await;
            }
        })
    };
    let url = node.http_url();
    let table = stdout(&status(&["--url", &url, "--busiest", "2"], Some(ADMIN_TOKEN)).await);
    writer.abort();
    let first = table.lines().nth(3).unwrap_or_default();
    assert!(
        first.starts_with(&hot.to_string()),
        "the hot list first:\n{table}"
    );
    let rate: f64 = first.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rate > 0.0, "{table}");
    node.stop().await.unwrap();
}
