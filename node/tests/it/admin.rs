//! The admin API of real nodes: the cluster view (`GET /v1/admin/cluster`) of a cluster in one
//! process, a list's owner, the lists each node hosts, and a graceful stop by admin call
//! (`POST /v1/admin/stop`), in a cluster and on a single node.

use std::time::Duration;

use listwire::client::Client;
use listwire::cluster::PROTOCOL_VERSION;
use uuid::Uuid;

use crate::support::cluster::TestCluster;
use crate::support::*;

fn node_name(index: usize) -> String {
    format!("node-{index}")
}

/// Every node's view lists the three members as live serving hosts with their real
/// addresses, names the asking node, sees a majority, and counts per node exactly the lists
/// hosted there; `?list=` names the owner placement chose, where the list is active.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_view_shows_every_member_and_where_lists_live() {
    let cluster = TestCluster::start(3, &[]).await;
    let alice = user(cluster.node(0), "alice").await;
    let mut lists = Vec::new();
    for index in 0..12 {
        lists.push(list(&alice, &format!("list {index}")).await);
    }
    for asking in 0..3 {
        let report = cluster.admin(asking).admin_cluster(None).await.unwrap();
        assert_eq!(report.node, node_name(asking));
        assert!(report.clustered && report.has_majority);
        assert_eq!(
            report.serving_hosts,
            (0..3).map(node_name).collect::<Vec<_>>()
        );
        assert!(report.list.is_none());
        assert_eq!(report.members.len(), 3);
        for (index, member) in report.members.iter().enumerate() {
            let node = cluster.node(index);
            let internode = node.cluster.as_ref().unwrap().internode_addr();
            assert_eq!(member.node_id, node_name(index));
            assert_eq!((member.state.as_str(), member.live), ("serving", true));
            assert_eq!(member.roles, ["host", "gateway"]);
            assert_eq!(member.client_addr, node.addr.to_string());
            assert_eq!(member.internode_addr.as_deref(), Some(internode));
            assert_eq!(member.protocol_version, PROTOCOL_VERSION);
            assert!(member.generation > 0);
            assert_eq!(member.active_lists, Some(node.host.active_lists() as u64));
        }
        let total: u64 = report.members.iter().filter_map(|m| m.active_lists).sum();
        assert_eq!(total, lists.len() as u64, "each list is active on one node");
    }
    for list in &lists {
        for asking in 0..3 {
            let owner = cluster.owner_of(asking, *list);
            let report = cluster
                .admin(asking)
                .admin_cluster(Some(*list))
                .await
                .unwrap();
            let owned = report.list.expect("the list's owner");
            assert_eq!(owned.id, *list);
            assert_eq!(owned.owner, Some(node_name(owner)));
            let owner_addr = cluster.node(owner).addr.to_string();
            assert_eq!(owned.owner_client_addr, Some(owner_addr));
            assert_eq!(owned.active, Some(true));
        }
    }
    let unknown = Uuid::new_v4();
    let report = cluster.admin(1).admin_cluster(Some(unknown)).await.unwrap();
    assert_eq!(
        report.list.unwrap().active,
        Some(false),
        "not loaded anywhere"
    );
}

/// `POST /v1/admin/stop` on a list's owner is a graceful stop: the node drains and ends by
/// itself, a client writing through another node sees no failed op meanwhile, the list ends up
/// on a remaining node (per `?list=`, active there) with every acked op, and the view of the
/// others no longer counts the stopped node as a serving host.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_stop_drains_the_node_and_its_lists_move() {
    let mut cluster = TestCluster::start(3, &[]).await;
    let alice_0 = user(cluster.node(0), "alice").await;
    let list = list(&alice_0, "moving").await;
    let owner = cluster.owner_of(0, list);
    let writer = (owner + 1) % 3;
    let session = alice_0.token().unwrap().to_owned();
    let alice_w = Client::new(&cluster.node(writer).http_url()).with_token(&session);
    let mut last = 0;
    for index in 0..5 {
        last = alice_w
            .op(list, Uuid::new_v4(), add(&format!("before {index}")))
            .await
            .unwrap();
    }

    cluster
        .admin(owner)
        .admin_stop()
        .await
        .expect("the stop begins");
    for index in 0..20 {
        last = alice_w
            .op(list, Uuid::new_v4(), add(&format!("during {index}")))
            .await
            .expect("no op fails while the owner drains");
    }
    tokio::time::timeout(Duration::from_secs(30), cluster.node(owner).stopped())
        .await
        .expect("the node stops by itself after the admin call");
    cluster.stop(owner).await;

    let report = cluster
        .admin(writer)
        .admin_cluster(Some(list))
        .await
        .unwrap();
    let moved_to = report.list.unwrap().owner.expect("a new owner");
    assert_ne!(moved_to, node_name(owner), "the list moved");
    assert!(!report.serving_hosts.contains(&node_name(owner)));
    assert_eq!(report.serving_hosts.len(), 2);
    let state = alice_w.get_list(list).await.unwrap();
    assert_eq!(state["seq"], last, "every acked op is there");
    assert_eq!(state["items"].as_array().unwrap().len(), 25);
    let report = cluster
        .admin(writer)
        .admin_cluster(Some(list))
        .await
        .unwrap();
    assert_eq!(
        report.list.unwrap().active,
        Some(true),
        "served from its new owner"
    );
}

/// A single node answers with itself as the only member and the owner of every list, and an
/// admin stop ends it like SIGTERM (flushed and closed), after the call was answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_reports_itself_and_stops_on_an_admin_call() {
    let dir = tempfile::tempdir().unwrap();
    let token = "single-node-admin-token";
    let node = start_node(dir.path(), &["--admin-token", token]).await;
    let alice = user(&node, "alice").await;
    let list = list(&alice, "alone").await;
    let admin = Client::new(&node.http_url()).with_token(token);
    let report = admin.admin_cluster(Some(list)).await.unwrap();
    assert!(!report.clustered && report.has_majority);
    assert_eq!(report.node, node.addr.to_string());
    assert_eq!(report.members.len(), 1);
    assert_eq!(report.members[0].active_lists, Some(1));
    assert_eq!(report.members[0].internode_addr, None);
    assert_eq!(report.list.unwrap().owner, Some(node.addr.to_string()));
    let refused = Client::new(&node.http_url())
        .with_token(alice.token().unwrap())
        .admin_cluster(None)
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some("unauthorized"),
        "a session is no admin token"
    );

    admin.admin_stop().await.expect("the stop begins");
    tokio::time::timeout(Duration::from_secs(30), node.stopped())
        .await
        .expect("the node stops by itself");
    node.stop().await.expect("it stopped cleanly");
    let reopened = start_node(dir.path(), &[]).await;
    let alice = user_in(&reopened, "alice").await;
    assert_eq!(alice.get_list(list).await.unwrap()["title"], "alone");
    reopened.stop().await.unwrap();
}

/// Signs `name` in (registered before) on `node`.
async fn user_in(node: &listwire::server::RunningNode, name: &str) -> Client {
    let anonymous = Client::new(&node.http_url());
    let session = anonymous
        .login(name, "correct horse battery")
        .await
        .expect("login");
    anonymous.with_token(&session.token)
}

/// `listwire serve`, the real binary, stops on `POST /v1/admin/stop` as on SIGTERM and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_cleanly_after_an_admin_stop() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let token = "serve-binary-admin-token";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_listwire"))
        .arg("serve")
        .args(test_flags(dir.path()))
        .args(["--admin-token", token, "--log", "warn"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn listwire serve");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("the node prints where it listens")
        .unwrap()
        .expect("a listening line");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("the line names the url");
    Client::new(url)
        .with_token(token)
        .admin_stop()
        .await
        .expect("the stop begins");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the process exits after the admin stop")
        .unwrap();
    assert!(status.success(), "exit status {status}");
}
