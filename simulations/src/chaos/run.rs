//! One chaos run, start to verdict: the cluster, the load and the faults, then the checkers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use listwire_gateway::{Principal, Tokens};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::check::{self, Findings};
use super::clients::{Nodes, OpRecord};
use super::faults::{self, FaultKind, Injector, Window};
use super::load::{self, Lists, LoadSpec};
use super::nodes::{self, ClusterConfig, Node};
use super::partition::Filter;
use super::reads;
use super::report::Report;
use super::store::Database;
use super::subscriber::{self, SubscriberLog};
use super::{Error, Params};
use crate::target::random_secret;

/// Faults stop this long before the load ends, so the last retries meet a healed cluster.
const FAULT_TAIL: Duration = Duration::from_secs(8);
/// How long a cluster may take to have every node serving (at start, and after the faults).
const SERVING_TIMEOUT: Duration = Duration::from_secs(60);
/// Items on the poll.
const POLL_ITEMS: usize = 5;

/// The run's shared pieces.
struct Cluster {
    config: Arc<ClusterConfig>,
    nodes: Arc<Mutex<Vec<Node>>>,
    urls: Vec<String>,
    ws_urls: Vec<String>,
    tokens: Tokens,
}

impl Cluster {
    fn token(&self, user: u128) -> String {
        let principal = Principal {
            user_id: Uuid::from_u128(user),
            username: format!("chaos{user}"),
        };
        self.tokens.mint(&principal).0
    }
}

/// Runs the cluster, the load and the faults of `params`, then every checker.
pub async fn run(params: &Params) -> Result<Report, Error> {
    if params.nodes < 3 {
        return Err(Error::Setup("chaos needs at least 3 nodes".into()));
    }
    let (filter, partitions) = probe_filter(params);
    let mut kinds = vec![FaultKind::Kill, FaultKind::Pause];
    if filter.is_some() {
        kinds.push(FaultKind::Partition);
    }
    let schedule = faults::schedule(
        params.seed,
        params.duration,
        FAULT_TAIL,
        params.nodes,
        &kinds,
    );
    eprintln!(
        "chaos: seed {} ({} faults planned)",
        params.seed,
        schedule.len()
    );
    for fault in &schedule {
        eprintln!("chaos:   {fault:?}");
    }
    let dir = tempfile::tempdir().map_err(Error::io("run directory"))?;
    let cluster = start_cluster(params, dir.path().to_owned()).await?;
    let database = Database::connect(&params.postgres_url, &cluster.config.schema).await?;
    let outcome = exercise(params, &cluster, &database, (filter, schedule.clone())).await;
    stop_cluster(&cluster).await;
    let dropped = database.drop_schema().await;
    let mut report = outcome?;
    dropped?;
    report.partitions = partitions;
    report.schedule = schedule;
    if !report.clean() {
        report.logs = Some(dir.keep());
    }
    Ok(report)
}

/// Packet filtering if it works here; otherwise why not.
fn probe_filter(params: &Params) -> (Option<Filter>, Result<(), String>) {
    if !params.partitions {
        return (None, Err("disabled (--no-partitions)".into()));
    }
    match Filter::probe() {
        Ok(filter) => (Some(filter), Ok(())),
        Err(why) => {
            eprintln!("chaos: running WITHOUT partitions: {why}");
            (None, Err(why))
        }
    }
}

async fn start_cluster(params: &Params, dir: std::path::PathBuf) -> Result<Cluster, Error> {
    let jwt_secret = random_secret();
    let config = Arc::new(ClusterConfig {
        binary: params.listwire_bin.clone(),
        postgres_url: params.postgres_url.clone(),
        schema: format!("chaos_{}", Uuid::new_v4().simple()),
        jwt_secret: jwt_secret.clone(),
        cluster_secret: random_secret(),
        mutant: params.mutant.clone(),
        spawner: nodes::Spawner::new()?,
        dir,
    });
    let ips = nodes::node_ips(params.address_base, params.nodes)?;
    let planned = nodes::plan_nodes(&ips)?;
    let urls: Vec<String> = planned.iter().map(Node::http_url).collect();
    let ws_urls: Vec<String> = planned.iter().map(Node::ws_url).collect();
    let planned = Arc::new(Mutex::new(planned));
    for index in 0..params.nodes {
        if let Err(error) = nodes::start(&config, &planned, index).await {
            nodes::stop_all(&mut nodes::lock(&planned));
            return Err(error);
        }
    }
    let cluster = Cluster {
        config,
        nodes: planned,
        urls,
        ws_urls,
        tokens: Tokens::new(jwt_secret.as_bytes(), Duration::from_secs(24 * 3600)),
    };
    if let Err(error) = nodes::wait_serving(&cluster.urls, SERVING_TIMEOUT).await {
        stop_cluster(&cluster).await;
        return Err(error);
    }
    eprintln!("chaos: {} nodes serving on {ips:?}", params.nodes);
    Ok(cluster)
}

async fn stop_cluster(cluster: &Cluster) {
    let nodes = cluster.nodes.clone();
    let _ = tokio::task::spawn_blocking(move || {
        nodes::stop_all(&mut nodes::lock(&nodes));
    })
    .await;
}

/// Sets up the lists, runs load and faults, waits for the subscribers, and checks.
async fn exercise(
    params: &Params,
    cluster: &Cluster,
    database: &Database,
    (filter, schedule): (Option<Filter>, Vec<faults::Fault>),
) -> Result<Report, Error> {
    install_audit(database).await?;
    let http = Nodes::new(cluster.urls.clone());
    let owner = cluster.token(1);
    let lists = create_lists(params, &http, &owner).await?;
    let (heads_tx, heads_rx) = watch::channel(None);
    let followers = start_subscribers(cluster, &lists, heads_rx);
    let (sampler_stop, sampler) = sample_memory(cluster.nodes.clone());
    let spec = LoadSpec {
        writers: params.writers,
        ops_per_writer_max: params.ops_per_writer_max,
        think: Duration::from_millis(20),
        voters: params.voters,
        votes_per_voter: params.votes_per_user_max + 1,
        duration: params.duration,
        seed: params.seed,
    };
    let started = Instant::now();
    let load = load::start(&spec, &http, &lists, &owner, |voter| {
        cluster.token(1_000 + voter as u128)
    });
    let windows = Arc::new(Mutex::new(Vec::new()));
    let injector = Injector {
        config: cluster.config.clone(),
        nodes: cluster.nodes.clone(),
        filter,
        windows: windows.clone(),
    };
    let injected = tokio::spawn(injector.run(schedule)).await;
    drop(injected.map_err(|error| Error::Setup(format!("the injector panicked: {error}")))??);
    let ops = join_all(load).await;
    let duration = started.elapsed();
    let mut findings = Findings::default();
    if let Err(error) = nodes::wait_serving(&cluster.urls, SERVING_TIMEOUT).await {
        findings.add("cluster recovers", format!("after the faults: {error}"));
    }
    let heads = database.heads(&lists.ids).await?;
    heads_tx.send_replace(Some(heads.clone()));
    let mut logs = Vec::new();
    for follower in followers {
        if let Ok(log) = follower.await {
            logs.push(log);
        }
    }
    reads::every_node_reads_the_head(&mut findings, &http, &owner, &lists.ids, &heads).await;
    let _ = sampler_stop.send(true);
    let rss_max = sampler.await.unwrap_or_default();
    check::memory(&mut findings, &rss_max, params.rss_max_bytes);
    let windows = windows.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut report = Report::new(params, duration, rss_max);
    judge(&mut findings, database, &lists, (&ops, &logs, &windows)).await?;
    report.count_ops(&ops);
    report.count_faults(&windows);
    report.count_subscribers(&logs);
    report.ops_checked = ops.len();
    report.violations = findings.violations;
    Ok(report)
}

/// Waits until the nodes have created their tables, then adds the batch audit.
async fn install_audit(database: &Database) -> Result<(), Error> {
    let deadline = Instant::now() + SERVING_TIMEOUT;
    while !database.has_batches_table().await? {
        if Instant::now() >= deadline {
            return Err(Error::Setup("the nodes never created their tables".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    database.install_audit().await
}

/// The edited lists and the poll (last), all public, owned by `owner`; the poll's items.
async fn create_lists(params: &Params, http: &Nodes, owner: &str) -> Result<Lists, Error> {
    let mut ids = Vec::new();
    for index in 0..params.lists {
        let body = json!({"title": format!("chaos {index}"), "visibility": "public"});
        ids.push(created(http.create_list(owner, &body).await)?);
    }
    let poll = json!({"max_votes_per_user": params.votes_per_user_max, "allow_change": false, "open": true});
    let body = json!({"title": "chaos poll", "visibility": "public", "poll": poll});
    let poll_id = created(http.create_list(owner, &body).await)?;
    ids.push(poll_id);
    let mut poll_items = Vec::new();
    for number in 0..POLL_ITEMS {
        let item = Uuid::new_v4();
        let op = json!({"kind": "add_item", "text": format!("option {number}"), "after": null, "item": item});
        let (record, _) = http.op(owner, (ids.len() - 1, poll_id), op, number).await;
        if record.acked().is_none() {
            return Err(Error::Setup(format!(
                "adding a poll item: {:?}",
                record.outcome()
            )));
        }
        poll_items.push(item);
    }
    Ok(Lists {
        ids,
        poll_items,
        vote_limit: params.votes_per_user_max,
    })
}

fn created(list: Option<Uuid>) -> Result<Uuid, Error> {
    list.ok_or_else(|| Error::Setup("a list could not be created".into()))
}

/// One subscriber per list per node.
fn start_subscribers(
    cluster: &Cluster,
    lists: &Lists,
    heads_rx: watch::Receiver<Option<Vec<u64>>>,
) -> Vec<JoinHandle<SubscriberLog>> {
    let mut tasks = Vec::new();
    for node in 0..cluster.ws_urls.len() {
        for (index, list) in lists.ids.iter().enumerate() {
            let token = cluster.token(100 + (node * lists.ids.len() + index) as u128);
            let follow = subscriber::follow(
                cluster.ws_urls.clone(),
                token,
                (node, (index, *list)),
                heads_rx.clone(),
            );
            tasks.push(tokio::spawn(follow));
        }
    }
    tasks
}

/// Samples every node's resident memory twice a second until told to stop; the highest each.
fn sample_memory(nodes: Arc<Mutex<Vec<Node>>>) -> (watch::Sender<bool>, JoinHandle<Vec<u64>>) {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut highest: Vec<u64> = Vec::new();
        while !*stop_rx.borrow() {
            // Never waits for the lock: the injector holds it while a node restarts.
            if let Ok(nodes) = nodes.try_lock() {
                highest.resize(nodes.len(), 0);
                for node in nodes.iter() {
                    let rss = node.resident_bytes().unwrap_or(0);
                    highest[node.index] = highest[node.index].max(rss);
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), stop_rx.changed()).await;
        }
        highest
    });
    (stop_tx, task)
}

async fn join_all<T>(tasks: Vec<JoinHandle<Vec<T>>>) -> Vec<T>
where
    T: Send + 'static,
{
    let mut all = Vec::new();
    for task in tasks {
        if let Ok(items) = task.await {
            all.extend(items);
        }
    }
    all
}

/// Reads the database and runs the checkers of the stored histories.
async fn judge(
    findings: &mut Findings,
    database: &Database,
    lists: &Lists,
    (ops, logs, windows): (&[OpRecord], &[SubscriberLog], &[Window]),
) -> Result<(), Error> {
    let stored = database.read_all().await?;
    let mut histories = Vec::new();
    for list in &lists.ids {
        let list_stored = stored.get(list).cloned().unwrap_or_default();
        histories.push(check::history(findings, *list, &list_stored));
    }
    check::acked_ops(findings, ops, &histories);
    check::subscribers(findings, logs, &histories);
    check::answers(findings, ops, windows);
    let (poll_index, poll) = lists.poll();
    if let Some(events) = &histories[poll_index] {
        let tallies: Vec<_> = logs
            .iter()
            .filter(|log| log.list == poll_index)
            .flat_map(|log| log.tallies.iter().cloned())
            .collect();
        let limit = lists.vote_limit;
        check::votes(findings, poll, events, limit, &tallies);
    }
    Ok(())
}
