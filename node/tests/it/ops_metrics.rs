//! What an operator's Prometheus reads: a real three-process cluster (on PostgreSQL) takes
//! edits and votes over HTTP and WebSocket through every node; then every node's `/metrics`
//! passes Prometheus's own parser and linter (`promtool check metrics`), shows the series the
//! dashboard and the alerts read (`ops/check-ops.sh --list-metrics`), and those series moved.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use listwire::client::{Client, ServerFrame};
use listwire_storage::testsuite::postgres::{drop_schema, fresh_schema, url_or_skip};
use serde_json::json;
use uuid::Uuid;

use crate::cluster_processes::{spawn, Node, Spec};
use crate::support::cluster::free_udp_port;
use crate::support::*;

pub(crate) const NODES: usize = 3;

/// Series only the embedded store has; this cluster runs on PostgreSQL.
const EMBEDDED_ONLY: [&str; 2] = [
    "listwire_storage_group_commit_requests",
    "listwire_storage_group_commit_seconds",
];

/// Series that real traffic must move, summed over the cluster: (metric, label filter).
const MOVED: [(&str, &str); 11] = [
    ("listwire_gateway_op_seconds_count", "kind=\"edit\""),
    ("listwire_gateway_op_seconds_count", "kind=\"vote\""),
    ("listwire_ops_applied_total", ""),
    ("listwire_votes_applied_total", ""),
    ("listwire_ack_latency_seconds_count", ""),
    ("listwire_storage_request_seconds_count", "op=\"append\""),
    ("listwire_gateway_delivery_seconds_count", ""),
    ("listwire_gateway_frames_sent_total", ""),
    ("listwire_gateway_connections_accepted_total", ""),
    ("listwire_forwarded_ops_total", ""),
    ("listwire_activations_total", ""),
];

/// One scrape: every sample line as (series with labels, value), and the base metric names.
struct Scrape {
    text: String,
    samples: Vec<(String, f64)>,
}

impl Scrape {
    async fn of(url: &str) -> Scrape {
        let text = reqwest::get(format!("{url}/metrics"))
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .expect("the body");
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| line.rsplit_once(' '))
            .map(|(series, value)| (series.to_owned(), value.parse().unwrap_or(f64::NAN)))
            .collect();
        Scrape { text, samples }
    }

    /// The sum of the samples of `metric` whose labels contain `labels`.
    fn sum(&self, metric: &str, labels: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| {
                let (name, rest) = series.split_once('{').unwrap_or((series, ""));
                name == metric && rest.contains(labels)
            })
            .map(|(_, value)| value)
            .sum()
    }

    fn names(&self) -> BTreeSet<String> {
        self.samples
            .iter()
            .map(|(series, _)| base_name(series.split('{').next().unwrap_or(series)))
            .collect()
    }
}

/// `name` without a histogram's `_bucket`, `_sum` or `_count`.
fn base_name(name: &str) -> String {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
        .to_owned()
}

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A program of Debian's `prometheus` package (`promtool`, `prometheus`), which `ops/test.sh`
/// installs; the environment variable `var` may name another.
pub(crate) fn prometheus_tool(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(name), PathBuf::from);
    let found = Command::new(&path).arg("--version").output();
    assert!(
        found.is_ok_and(|output| output.status.success()),
        "{name} is missing: `ops/ensure-package.sh prometheus promtool` installs it (ops/test.sh does)"
    );
    path
}

/// `promtool check metrics`: Prometheus's own text-format parser and its naming linter.
fn check_with_promtool(promtool: &Path, node: usize, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "node {node}'s /metrics fails promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every histogram is a Prometheus histogram (no summary quantiles, which cannot be summed
/// over nodes) with the configured buckets: `*_seconds` from 0.1 ms to 10 s, counts to 65,536.
fn check_buckets(node: usize, scrape: &Scrape) {
    assert!(
        !scrape.text.contains("quantile=\""),
        "node {node} renders a summary instead of a histogram"
    );
    let mut histograms = BTreeMap::<String, BTreeSet<String>>::new();
    for (series, _) in &scrape.samples {
        let Some((name, labels)) = series.split_once("_bucket{") else {
            continue;
        };
        if let Some(le) = labels
            .split("le=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            histograms
                .entry(name.to_owned())
                .or_default()
                .insert(le.to_owned());
        }
    }
    assert!(
        histograms.len() >= 15,
        "node {node} has histograms: {histograms:?}"
    );
    for (name, bounds) in &histograms {
        let wanted: &[&str] = if name.ends_with("_seconds") {
            &["0.0001", "0.001", "0.1", "10", "+Inf"]
        } else {
            &["1", "4096", "65536", "+Inf"]
        };
        for bound in wanted {
            assert!(
                bounds.contains(*bound),
                "node {node}: {name} lacks le={bound}: {bounds:?}"
            );
        }
    }
}

/// The metric names the dashboard and the alert rules read.
fn names_ops_reads() -> BTreeSet<String> {
    let root = repo_root();
    let output = Command::new("bash")
        .arg(root.join("ops/check-ops.sh"))
        .arg("--list-metrics")
        .current_dir(&root)
        .output()
        .expect("run ops/check-ops.sh --list-metrics");
    assert!(
        output.status.success(),
        "ops/check-ops.sh --list-metrics failed"
    );
    let names: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| base_name(line.trim()))
        .filter(|line| !line.is_empty() && !EMBEDDED_ONLY.contains(&line.as_str()))
        .collect();
    assert!(
        names.len() >= 10,
        "the dashboard and alerts read metrics: {names:?}"
    );
    names
}

pub(crate) fn start(database: &str, schema: &str, dirs: &[tempfile::TempDir]) -> Vec<Node> {
    let ports: Vec<u16> = (0..NODES).map(|_| free_udp_port()).collect();
    (0..NODES)
        .map(|index| {
            spawn(&Spec {
                index,
                dir: dirs[index].path().to_owned(),
                gossip_port: ports[index],
                seed_port: ports[(index + 1) % NODES],
                database: database.to_owned(),
                schema: schema.to_owned(),
            })
        })
        .collect()
}

/// Until every node's view has all three serving (so ops are forwarded, not refused).
pub(crate) async fn until_serving(urls: &[String]) {
    eventually(Duration::from_secs(60), || async {
        let mut all = true;
        for url in urls {
            let scrape = Scrape::of(url).await;
            all &= scrape.sum("listwire_cluster_members", "state=\"serving\"") == NODES as f64;
        }
        all
    })
    .await;
}

/// Edits over HTTP through every node, and edits and votes over a WebSocket on node 1 that
/// also follows the list; returns once the follower saw its last vote's tally or delta.
pub(crate) async fn traffic(urls: &[String], token: &str) {
    let owner = Client::new(&urls[0]).with_token(token);
    let list = poll_list(&owner, false, 1, true).await;
    for (index, url) in urls.iter().enumerate() {
        let client = Client::new(url).with_token(token);
        for k in 0..5 {
            let op = add(&format!("n{index}-{k}"));
            client
                .op(list, Uuid::new_v4(), op)
                .await
                .expect("an edit through every node");
        }
    }
    let item = item_id(&owner, list, "n0-0").await;
    let mut live = Client::new(&urls[1])
        .with_token(token)
        .connect()
        .await
        .unwrap();
    subscribe_snapshot(&mut live, list).await;
    live.op(list, Uuid::new_v4(), &add("over the socket"))
        .await
        .expect("a websocket edit");
    let seq = live
        .op(list, Uuid::new_v4(), &json!({"kind": "vote", "item": item}))
        .await
        .expect("a websocket vote");
    expect_frame(&mut live, |frame| match frame {
        ServerFrame::Tally { seq: at, .. } if *at >= seq => Some(()),
        ServerFrame::Delta { to, .. } if *to >= seq => Some(()),
        _ => None,
    })
    .await;
}

/// A running cluster's `/metrics`, after real traffic: valid Prometheus text on every node,
/// every series the ops files read present, and the traffic counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_nodes_metrics_parse_and_count_real_traffic() {
    let Some(database) = url_or_skip("listwire it ops_metrics") else {
        return;
    };
    let promtool = prometheus_tool("PROMTOOL", "promtool");
    let schema = fresh_schema("lw_metrics_");
    let dirs: Vec<tempfile::TempDir> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = start(&database, &schema, &dirs);
    let urls: Vec<String> = nodes.iter().map(|node| node.url.clone()).collect();
    until_serving(&urls).await;
    let mut before = Vec::new();
    for url in &urls {
        before.push(Scrape::of(url).await);
    }

    let session = Client::new(&urls[0])
        .register("olive", "correct horse battery")
        .await
        .unwrap();
    traffic(&urls, &session.token).await;

    let mut after = Vec::new();
    for url in &urls {
        after.push(Scrape::of(url).await);
    }
    for (node, scrape) in after.iter().enumerate() {
        check_with_promtool(&promtool, node, &scrape.text);
        check_buckets(node, scrape);
        assert_eq!(
            scrape.sum("listwire_build_info", ""),
            1.0,
            "node {node} says its build"
        );
    }
    let wanted = names_ops_reads();
    for (node, scrape) in after.iter().enumerate() {
        let names = scrape.names();
        let missing: Vec<&String> = wanted.difference(&names).collect();
        assert!(
            missing.is_empty(),
            "node {node} lacks series the ops files read: {missing:?}"
        );
    }
    let mut moved = BTreeMap::new();
    for (metric, labels) in MOVED {
        let total = |scrapes: &[Scrape]| scrapes.iter().map(|s| s.sum(metric, labels)).sum::<f64>();
        moved.insert(
            format!("{metric}{{{labels}}}"),
            (total(&before), total(&after)),
        );
    }
    let still: Vec<_> = moved.iter().filter(|(_, (b, a))| a <= b).collect();
    assert!(
        still.is_empty(),
        "series the traffic did not move: {still:?}"
    );
    drop(nodes);
    drop_schema(&database, &schema).await.unwrap();
}
