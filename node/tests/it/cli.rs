//! The `listwire` client commands, run as the real binary against a real node, as in the
//! README tour.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn lw(url: &str, session: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_listwire"))
        .args(["--server", url, "--session"])
        .arg(session)
        .args(args)
        .env("LISTWIRE_PASSWORD", "correct horse battery")
        .output()
        .expect("run listwire");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "listwire {args:?} failed: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// register, create, add, done, share, lists, vote, show and watch work end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_tour() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let url = node.http_url();
    let alice = dir.path().join("alice.json");
    let bob = dir.path().join("bob.json");
    let (url, alice_session, bob_session) = (url.clone(), alice.clone(), bob.clone());
    tokio::task::spawn_blocking(move || tour(&url, &alice_session, &bob_session))
        .await
        .unwrap();
    node.stop().await.unwrap();
}

fn tour(url: &str, alice: &Path, bob: &Path) {
    lw(url, alice, &["register", "alice"]);
    lw(url, bob, &["register", "bob"]);
    let list = lw(url, alice, &["create", "groceries"]).trim().to_owned();
    lw(url, alice, &["add", &list, "milk"]);
    lw(url, alice, &["add", &list, "bread", "--after", "milk"]);
    lw(url, alice, &["done", &list, "milk"]);
    lw(url, alice, &["share", &list, "bob", "--role", "editor"]);
    assert!(lw(url, bob, &["lists"]).contains("groceries"));

    let mut watch = Command::new(env!("CARGO_BIN_EXE_listwire"))
        .args(["--server", url, "--session"])
        .arg(alice)
        .args(["watch", &list])
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    let stdout = watch.stdout.take().unwrap();
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| loop {
        let line = line_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("watch never printed {needle:?}"));
        if line.contains(needle) {
            break line;
        }
    };
    // The snapshot comes first; its last item line tells us the subscription is live.
    wait_for("bread");
    lw(url, bob, &["add", &list, "eggs"]);
    let seen = wait_for("eggs");
    watch.kill().unwrap();
    watch.wait().unwrap();
    assert!(seen.contains("add_item"), "{seen}");

    let poll = lw(
        url,
        alice,
        &["create", "best talk", "--public", "--poll-votes", "1"],
    )
    .trim()
    .to_owned();
    lw(url, alice, &["add", &poll, "Talk A"]);
    lw(url, bob, &["vote", &poll, "Talk A"]);
    let shown = lw(url, alice, &["show", &poll]);
    assert!(shown.contains("Talk A (1 vote)"), "{shown}");
    let shown = lw(url, alice, &["show", &list]);
    assert!(shown.contains("[x] milk"), "{shown}");
}
