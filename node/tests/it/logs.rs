//! What a user and an operator read from the binary: a node's start shows listwire's own lines
//! only (the libraries are quiet by default); `--log-format json` lines about an op carry its
//! list id and op id; a refused client command prints one line and exits non-zero, even with
//! `RUST_BACKTRACE=1`; and the list reads "1 vote", not "1 votes".

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use listwire::client::Client;
use serde_json::Value;
use uuid::Uuid;

use crate::support::*;

/// A node process; [`Serve::finish`] stops it with SIGTERM and returns what it logged.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(dir: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_listwire"))
            .arg("serve")
            .args(test_flags(dir))
            .args(extra)
            .env_remove("LISTWIRE_LOG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn listwire serve");
        let url = listening_url(&mut child);
        Serve { child, url }
    }

    fn finish(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut logged = String::new();
        let mut stderr = self.child.stderr.take().expect("stderr");
        stderr.read_to_string(&mut logged).expect("read the log");
        self.child.wait().expect("the node exits");
        logged
    }
}

/// Registers, creates a list and adds an item; returns the list and the op id.
async fn one_op(url: &str, name: &str) -> (Uuid, Uuid) {
    let session = Client::new(url)
        .register(name, "correct horse battery")
        .await
        .unwrap();
    let client = Client::new(url).with_token(&session.token);
    let list = list(&client, "logged").await;
    let op_id = Uuid::new_v4();
    client.op(list, op_id, add("milk")).await.expect("the op");
    (list, op_id)
}

/// A default start logs listwire's own lines, and none of the embedded store's recovery chatter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libraries_are_quiet_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let node = Serve::start(dir.path(), &[]);
    one_op(&node.url, "quinn").await;
    let logged = node.finish();
    assert!(
        logged.contains("shutdown complete"),
        "listwire's own lines show:\n{logged}"
    );
    for library in ["fjall", "lsm_tree", "hyper", "chitchat"] {
        assert!(
            !logged.contains(library),
            "{library} is quiet by default:\n{logged}"
        );
    }
}

/// With JSON logs and debug for the gateway, the line about an op is one JSON object naming
/// the op's list id and op id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_about_an_op_name_its_list_and_op() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--log-format",
        "json",
        "--log",
        "warn,listwire_gateway=debug",
    ];
    let node = Serve::start(dir.path(), &flags);
    let (list, op_id) = one_op(&node.url, "jules").await;
    let logged = node.finish();
    let lines: Vec<Value> = logged
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let about_op: Vec<&Value> = lines
        .iter()
        .filter(|line| line["op_id"] == op_id.to_string())
        .collect();
    assert!(!about_op.is_empty(), "a line about the op:\n{logged}");
    for line in about_op {
        assert_eq!(line["list_id"], list.to_string(), "{line}");
        assert_eq!(line["message"], "op acked", "{line}");
        assert!(line["elapsed_ms"].as_f64().is_some(), "{line}");
    }
}

/// An expected refusal (a vote on a list without a poll) is one line on stderr and exit 1,
/// however the user's RUST_BACKTRACE is set; "1 vote" reads right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_prints_one_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let node = Serve::start(dir.path(), &[]);
    let session = dir.path().join("session.json");
    let url = node.url.clone();
    let lw = move |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_listwire"))
            .args(["--server", &url, "--session"])
            .arg(&session)
            .args(args)
            .env("LISTWIRE_PASSWORD", "correct horse battery")
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run listwire")
    };
    let run = tokio::task::spawn_blocking(move || {
        assert!(lw(&["register", "rene"]).status.success());
        let list = String::from_utf8(lw(&["create", "plain"]).stdout).unwrap();
        let list = list.trim().to_owned();
        assert!(lw(&["add", &list, "milk"]).status.success());
        let refused = lw(&["vote", &list, "milk"]);
        let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
        assert_eq!(refused.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
        assert!(
            stderr.starts_with("listwire: error: conflict: list has no poll"),
            "{stderr}"
        );

        let poll = String::from_utf8(lw(&["create", "poll", "--poll-votes", "1"]).stdout).unwrap();
        let poll = poll.trim().to_owned();
        assert!(lw(&["add", &poll, "tea"]).status.success());
        assert!(lw(&["vote", &poll, "tea"]).status.success());
        let shown = String::from_utf8(lw(&["show", &poll]).stdout).unwrap();
        assert!(shown.contains("tea (1 vote)"), "{shown}");
    });
    run.await.unwrap();
    node.finish();
}
