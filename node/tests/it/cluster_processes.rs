//! A real cluster: three `listwire serve --store postgres` processes on loopback with real UDP
//! gossip and TCP between them, a load through all three, one SIGKILLed mid-load and later
//! restarted. Checked from the database: every list's stored history is contiguous, every
//! acknowledged op is in it exactly once at its acknowledged seq, and subscribers (on nodes
//! that stayed up) converge to it with contiguous frames. No sleeps to wait for conditions.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use listwire::client::{Client, ServerFrame};
use listwire::domain::{decode_batch, decode_snapshot, evolve, Limits, ListState};
use listwire_storage::postgres::PostgresStore;
use listwire_storage::testsuite::postgres::{drop_schema, fresh_schema, test_config, url_or_skip};
use listwire_storage::EventStore;
use uuid::Uuid;

use crate::postgres::postgres_flags;
use crate::support::cluster::free_udp_port;
use crate::support::*;

const NODES: usize = 3;
const LISTS: usize = 4;
const OPS_PER_WRITER: usize = 30;
const CLUSTER_SECRET: &str = "cluster-processes-test-secret";

/// A node process, SIGKILLed when dropped.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Spec {
    pub(crate) index: usize,
    pub(crate) dir: std::path::PathBuf,
    pub(crate) gossip_port: u16,
    pub(crate) seed_port: u16,
    pub(crate) database: String,
    pub(crate) schema: String,
}

pub(crate) fn spawn(spec: &Spec) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_listwire"))
        .arg("serve")
        .args(test_flags(&spec.dir))
        .args(postgres_flags(&spec.database, &spec.schema))
        .args(["--log", "error", "--snapshot-every", "1000000"])
        .args([
            "--ops-per-second-per-user",
            "100000",
            "--ops-burst-per-user",
            "100000",
        ])
        .args(["--cluster-secret", CLUSTER_SECRET])
        .args(["--node-id", &format!("n{}", spec.index)])
        .args([
            "--gossip-listen",
            &format!("127.0.0.1:{}", spec.gossip_port),
        ])
        .args(["--internode-listen", "127.0.0.1:0"])
        .args(["--seed", &format!("127.0.0.1:{}", spec.seed_port)])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn listwire");
    let url = listening_url(&mut child);
    Node { child, url }
}

/// Sends an op until acknowledged, with its op id fixed, trying the nodes in turn from
/// `first` (a dead node's connection errors move it on).
async fn until_acked(
    urls: &[String],
    token: &str,
    first: usize,
    list: Uuid,
    op_id: Uuid,
    text: &str,
) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut node = first;
    loop {
        let client = Client::new(&urls[node % urls.len()]).with_token(token);
        match client.op(list, op_id, add(text)).await {
            Ok(seq) => return seq,
            Err(error) => {
                let code = error.code().map(str::to_owned);
                assert!(
                    code.as_deref()
                        .is_none_or(|c| ["moved", "busy", "unavailable"].contains(&c)),
                    "only retryable refusals, got {error}"
                );
                if code.is_none() {
                    node += 1;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "op {op_id} never acked"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The stored state of `list` (latest snapshot plus its contiguous tail).
async fn stored_state(store: &PostgresStore, list: Uuid) -> ListState {
    let mut state = match store.latest_snapshot(list).await.unwrap() {
        Some(snapshot) => decode_snapshot(&snapshot.body).unwrap(),
        None => ListState::new(list),
    };
    for batch in store
        .read_batches(list, state.seq(), usize::MAX)
        .await
        .unwrap()
    {
        for event in decode_batch(&batch.body).unwrap() {
            if event.seq > state.seq() {
                assert_eq!(
                    event.seq,
                    state.seq() + 1,
                    "history of {list} is contiguous"
                );
                evolve(&mut state, &event, &Limits::default());
            }
        }
    }
    assert_eq!(
        store.head(list).await.unwrap(),
        state.seq(),
        "head matches history"
    );
    state
}

/// Follows `list` until `head`, asserting contiguous frames; returns the last seq seen.
async fn follow_to(live: &mut listwire::client::Live, mut seen: u64, head: u64) -> u64 {
    while seen < head {
        match live
            .next_within(Duration::from_secs(30))
            .await
            .expect("frames keep coming")
        {
            ServerFrame::Delta { from, to, .. } => {
                assert_eq!(from, seen + 1, "no gap, no duplicate");
                seen = to;
            }
            ServerFrame::Snapshot { seq, .. } => seen = seq,
            ServerFrame::Error { code, .. } => panic!("subscription ended: {code}"),
            _ => {}
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_process_cluster_survives_a_sigkill_and_a_restart() {
    let Some(database) = url_or_skip("listwire it cluster_processes") else {
        return;
    };
    let schema = fresh_schema("lw_cluster_");
    let dirs: Vec<tempfile::TempDir> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..NODES).map(|_| free_udp_port()).collect();
    let specs: Vec<Spec> = (0..NODES)
        .map(|index| Spec {
            index,
            dir: dirs[index].path().to_owned(),
            gossip_port: ports[index],
            seed_port: ports[(index + 1) % NODES],
            database: database.clone(),
            schema: schema.clone(),
        })
        .collect();
    let mut nodes: Vec<Option<Node>> = specs.iter().map(|spec| Some(spawn(spec))).collect();
    let urls: Vec<String> = nodes
        .iter()
        .flatten()
        .map(|node| node.url.clone())
        .collect();

    let anonymous = Client::new(&urls[0]);
    let session = anonymous
        .register("carla", "correct horse battery")
        .await
        .unwrap();
    let token = session.token.clone();
    let alice = anonymous.with_token(&token);
    let mut lists = Vec::new();
    for index in 0..LISTS {
        let created = loop {
            match alice
                .create_list(serde_json::json!({"title": format!("l{index}")}))
                .await
            {
                Ok(list) => break list,
                // The cluster may still be forming (nodes joining): retry.
                Err(error) => assert!(error
                    .code()
                    .is_none_or(|c| c == "unavailable" || c == "moved")),
            }
        };
        lists.push(created);
    }
    // Subscribers on node 0, which stays up.
    let mut lives = Vec::new();
    for list in &lists {
        let mut live = Client::new(&urls[0])
            .with_token(&token)
            .connect()
            .await
            .unwrap();
        let (seq, _) = subscribe_snapshot(&mut live, *list).await;
        lives.push((live, seq));
    }

    let mut acked = Vec::new();
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for phase in 0..2 {
        let mut writers = Vec::new();
        for (list_index, list) in lists.iter().enumerate() {
            for writer in 0..NODES {
                let (urls, token, list) = (urls.clone(), token.clone(), *list);
                let acks = acks.clone();
                writers.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    for k in 0..OPS_PER_WRITER {
                        let op_id = Uuid::new_v4();
                        let text = format!("p{phase}-l{list_index}-w{writer}-{k}");
                        let seq = until_acked(&urls, &token, writer, list, op_id, &text).await;
                        acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        mine.push((list, op_id, seq));
                    }
                    mine
                }));
            }
        }
        if phase == 0 {
            // SIGKILL node 2 mid-load, once a fifth of the phase's ops are acked.
            let fifth = LISTS * NODES * OPS_PER_WRITER / 5;
            eventually(Duration::from_secs(60), || async {
                acks.load(std::sync::atomic::Ordering::SeqCst) >= fifth
            })
            .await;
            drop(nodes[2].take());
        }
        for writer in writers {
            acked.extend(writer.await.unwrap());
        }
        if phase == 0 {
            nodes[2] = Some(spawn(&specs[2])); // restart: same id, higher generation.
        }
    }

    let store = PostgresStore::connect(test_config(&database, &schema))
        .await
        .unwrap();
    for (index, list) in lists.iter().enumerate() {
        let state = stored_state(&store, *list).await;
        for (acked_list, op_id, seq) in &acked {
            if acked_list == list {
                assert_eq!(
                    state.op_seq(*op_id),
                    Some(*seq),
                    "acked op {op_id} stored once at its seq"
                );
            }
        }
        let expected_events = 1 + (2 * NODES * OPS_PER_WRITER) as u64;
        assert_eq!(
            state.seq(),
            expected_events,
            "every op of {list} stored exactly once"
        );
        let (live, seen) = &mut lives[index];
        *seen = follow_to(live, *seen, state.seq()).await;
    }
    drop(nodes);
    drop_schema(&database, &schema).await.unwrap();
}
