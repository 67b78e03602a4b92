//! `listwire dev-cluster`, run as the real binary: three nodes in one process on free ports,
//! a list that keeps serving when its owner is stopped by an admin call, and a clean exit on
//! SIGTERM.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use listwire::client::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::support::*;

/// How long the process may take to print what a step waits for.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits for the next stdout line containing `needle`, failing after [`LINE_TIMEOUT`].
async fn line_with(lines: &mut mpsc::UnboundedReceiver<String>, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + LINE_TIMEOUT;
    loop {
        let line = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .unwrap_or_else(|_| panic!("dev-cluster never printed {needle:?}"))
            .unwrap_or_else(|| panic!("dev-cluster ended before printing {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// `dev-cluster --nodes 3` with ports 0 prints three nodes and the admin token; a list
/// created through node 0 takes ops through another node while its owner, stopped with
/// `POST /v1/admin/stop`, drains (the process reports it stopped); the list then has a new
/// owner and every op; SIGTERM stops the rest and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_cluster_keeps_serving_a_list_when_its_owner_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_listwire"))
        .args(["dev-cluster", "--nodes", "3", "--data-dir"])
        .arg(dir.path())
        .args([
            "--client-port",
            "0",
            "--gossip-port",
            "0",
            "--internode-port",
            "0",
        ])
        .args([
            "--log",
            "warn",
            "--",
            "--argon2-memory-kib",
            "64",
            "--argon2-iterations",
            "1",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn listwire dev-cluster");
    let stdout = child.stdout.take().unwrap();
    let (line_tx, mut lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut urls = BTreeMap::new();
    for index in 0..3 {
        let line = line_with(&mut lines, &format!("node-{index}  http://")).await;
        let url = line.split_whitespace().nth(1).unwrap().to_owned();
        assert!(!url.ends_with(":0"), "a bound port is printed: {line}");
        urls.insert(index, url);
    }
    let token_line = line_with(&mut lines, "admin token: ").await;
    let token = token_line.split_whitespace().nth(2).unwrap().to_owned();
    line_with(&mut lines, "curl -X POST").await;

    let anonymous = Client::new(&urls[&0]);
    let session = anonymous
        .register("alice", "correct horse battery")
        .await
        .unwrap();
    let alice_0 = anonymous.with_token(&session.token);
    let list = list(&alice_0, "dev cluster").await;
    let admin_0 = Client::new(&urls[&0]).with_token(&token);
    let report = admin_0.admin_cluster(Some(list)).await.unwrap();
    assert_eq!(report.members.len(), 3);
    let owner = report.list.unwrap().owner.expect("an owner");
    let owner_index: usize = owner.strip_prefix("node-").unwrap().parse().unwrap();
    let other = (owner_index + 1) % 3;
    let alice_other = Client::new(&urls[&other]).with_token(&session.token);

    Client::new(&urls[&owner_index])
        .with_token(&token)
        .admin_stop()
        .await
        .expect("the stop begins");
    let mut last = 0;
    for index in 0..10 {
        last = alice_other
            .op(list, Uuid::new_v4(), add(&format!("item {index}")))
            .await
            .expect("the list keeps serving through another node");
    }
    line_with(&mut lines, &format!("{owner} stopped")).await;
    let report = Client::new(&urls[&other])
        .with_token(&token)
        .admin_cluster(Some(list))
        .await
        .unwrap();
    assert_ne!(
        report.list.unwrap().owner,
        Some(owner.clone()),
        "the list moved"
    );
    assert!(!report.serving_hosts.contains(&owner));
    let state = alice_other.get_list(list).await.unwrap();
    assert_eq!(state["seq"], last);
    assert_eq!(state["items"].as_array().unwrap().len(), 10);

    let pid = i32::try_from(child.id().expect("still running")).unwrap();
    // SAFETY: sending a signal to our own child process has no memory-safety implications.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(LINE_TIMEOUT, child.wait())
        .await
        .expect("dev-cluster exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "dev-cluster exits 0: {status}");
    line_with(&mut lines, "every node stopped; the store is closed").await;
}
