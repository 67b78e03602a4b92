//! The operator's files against a real Prometheus: a Prometheus server (Debian's, which
//! `ops/test.sh` installs) scrapes a three-process cluster taking real traffic and evaluates
//! `ops/prometheus/alerts.yml`. Every query of the Grafana dashboard then finds its series,
//! every alert rule evaluates without error, and those whose inputs a healthy cluster fixes
//! (not the latency ones) are neither pending nor firing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use listwire::client::Client;
use listwire_storage::testsuite::postgres::{drop_schema, fresh_schema, url_or_skip};
use serde_json::Value;

use crate::ops_metrics::{prometheus_tool, repo_root, start, traffic, until_serving, NODES};
use crate::support::*;

/// Dashboard panels that may be empty on this cluster: it runs on PostgreSQL, not the
/// embedded store.
const EMPTY_ON_POSTGRES: [&str; 1] = ["Group commit size and latency (embedded)"];

/// The alerts whose inputs this healthy cluster fixes: none may even be pending. The latency
/// alerts are left out: a handful of ops on a debug build sharing two cores with the rest of
/// the suite may well have a p99 over 100 ms; `promtool test rules` covers their logic.
const QUIET_WHEN_HEALTHY: [&str; 6] = [
    "ListwireNodeDown",
    "ListwireErrorRatioHigh",
    "ListwireMemberDead",
    "ListwireNoMajority",
    "ListwireStorageErrors",
    "ListwireStaleOwnerRejectionsRising",
];

/// A Prometheus server, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    data: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus scraping `urls` and waits until it answers. The port is chosen free and
/// released before Prometheus binds it: should another process take it meanwhile, Prometheus
/// exits, and it is started again on another port.
async fn start_prometheus(urls: &[String]) -> Prometheus {
    for _attempt in 0..5 {
        let mut prometheus = spawn_prometheus(urls);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_exited)) = prometheus.child.try_wait() {
                break;
            }
            let ready = reqwest::get(format!("{}/-/ready", prometheus.url)).await;
            if ready.is_ok_and(|answer| answer.status().is_success()) {
                return prometheus;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(prometheus.data.path().join("prometheus.log"));
        eprintln!(
            "prometheus did not come up; its log:\n{}",
            log.unwrap_or_default()
        );
    }
    panic!("prometheus did not start (see its logs above)");
}

/// Spawns Prometheus scraping `urls` every second and evaluating the project's alert rules.
fn spawn_prometheus(urls: &[String]) -> Prometheus {
    let data = tempfile::tempdir().unwrap();
    let targets: Vec<String> = urls
        .iter()
        .map(|url| format!("\"{}\"", url.trim_start_matches("http://")))
        .collect();
    let alerts = repo_root().join("ops/prometheus/alerts.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {:?}\n\
         scrape_configs:\n  - job_name: listwire\n    static_configs:\n      - targets: [{}]\n",
        alerts.display(),
        targets.join(", ")
    );
    let config_path = data.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = Command::new(prometheus_tool("PROMETHEUS", "prometheus"))
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            data.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(data.path().join("prometheus.log")).unwrap())
        .spawn()
        .expect("start prometheus");
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        data,
    }
}

/// `GET /api/v1/…` on Prometheus; `None` until it answers.
async fn api(prometheus: &Prometheus, path: &str, query: &[(&str, &str)]) -> Option<Value> {
    let answer = reqwest::Client::new()
        .get(format!("{}/api/v1/{path}", prometheus.url))
        .query(query)
        .send()
        .await
        .ok()?;
    let body: Value = answer.json().await.ok()?;
    (body["status"] == "success").then(|| body["data"].clone())
}

/// The value of an instant query that yields one sample.
async fn scalar(prometheus: &Prometheus, query: &str) -> Option<f64> {
    let data = api(prometheus, "query", &[("query", query)]).await?;
    data["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Every (panel title, query) of the dashboard, its template variables filled in.
fn dashboard_queries(path: &Path) -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            let expr = expr
                .replace("$instance", ".*")
                .replace("$__rate_interval", "30s");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    assert!(
        queries.len() >= 20,
        "the dashboard has queries: {queries:?}"
    );
    queries
}

/// Until every node was scraped a few times and every rule evaluated at least once.
async fn until_scraped_and_evaluated(prometheus: &Prometheus) {
    eventually(Duration::from_secs(60), || async {
        let up = scalar(prometheus, "sum(up{job=\"listwire\"})").await;
        let scrapes = scalar(prometheus, "min(count_over_time(up{job=\"listwire\"}[1m]))").await;
        let Some(rules) = api(prometheus, "rules", &[]).await else {
            return false;
        };
        let evaluated = rules["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().into_iter().flatten())
            .all(|rule| rule["health"] != "unknown");
        up == Some(NODES as f64) && scrapes.is_some_and(|count| count >= 5.0) && evaluated
    })
    .await;
}

/// A real Prometheus over a real cluster: the dashboard's queries find data, the alert rules
/// evaluate cleanly, and a healthy cluster trips none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_evaluates_the_dashboard_and_alerts_on_a_live_cluster() {
    let Some(database) = url_or_skip("listwire it ops_prometheus") else {
        return;
    };
    let schema = fresh_schema("lw_prom_");
    let dirs: Vec<tempfile::TempDir> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = start(&database, &schema, &dirs);
    let urls: Vec<String> = nodes.iter().map(|node| node.url.clone()).collect();
    until_serving(&urls).await;
    let prometheus = start_prometheus(&urls).await;
    let session = Client::new(&urls[0])
        .register("petra", "correct horse battery")
        .await
        .unwrap();
    traffic(&urls, &session.token).await;
    until_scraped_and_evaluated(&prometheus).await;

    let mut empty = Vec::new();
    for (title, query) in
        dashboard_queries(&repo_root().join("ops/grafana/dashboards/listwire.json"))
    {
        let data = api(&prometheus, "query", &[("query", &query)]).await;
        let data = data.unwrap_or_else(|| panic!("Prometheus refused {title:?}: {query}"));
        let found = data["result"]
            .as_array()
            .is_some_and(|result| !result.is_empty());
        if !found && !EMPTY_ON_POSTGRES.contains(&title.as_str()) {
            empty.push(format!("{title}: {query}"));
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries with no data:\n{}",
        empty.join("\n")
    );

    let rules = api(&prometheus, "rules", &[]).await.expect("the rules");
    let rules: Vec<&Value> = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|group| group["rules"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(rules.len(), 9, "the alert rules are loaded: {rules:?}");
    for rule in rules {
        let name = rule["name"].as_str().unwrap_or_default();
        assert_eq!(rule["health"], "ok", "{name} evaluates: {rule}");
        if QUIET_WHEN_HEALTHY.contains(&name) {
            assert_eq!(
                rule["state"], "inactive",
                "{name} is quiet on a healthy cluster: {rule}"
            );
        }
    }
    drop(prometheus);
    drop(nodes);
    drop_schema(&database, &schema).await.unwrap();
}
