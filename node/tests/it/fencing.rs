//! Two real `listwire serve --store postgres` processes share one database and serve the same
//! lists at once: with no cluster yet, each believes it owns every list, so only the store's
//! conditional append keeps histories from forking. Clients write to both over WebSocket; one
//! process is SIGKILLed mid-stream.
//!
//! Checked straight from the database: every list's history is one contiguous sequence, every
//! acknowledged op is in it exactly once at its acknowledged seq, every op refused with a
//! retryable code (`moved`, `unavailable`, `busy`) and none refused with anything else, and an
//! op refused `moved` was not stored. Finally every op that was not acknowledged is retried on
//! the survivor with its op id until acknowledged, and each ends up in the history exactly once.
//! No sleeps: progress is awaited with deadlines; op ids and texts are fixed.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use listwire::client::{Client, ClientError, ServerFrame};
use listwire::domain::decode_batch;
use listwire_storage::postgres::PostgresStore;
use listwire_storage::testsuite::postgres::{drop_schema, fresh_schema, test_config, url_or_skip};
use listwire_storage::EventStore;
use uuid::Uuid;

use crate::postgres::postgres_flags;
use crate::support::*;

const LISTS: u128 = 3;
const OPS_PER_WRITER: u128 = 200;
const WINDOW: u128 = 16;
/// Acks (over both nodes) after which node B is killed: well inside the stream.
const KILL_AFTER_ACKS: usize = 300;
const RETRYABLE: [&str; 3] = ["moved", "unavailable", "busy"];

/// A node process, SIGKILLed when dropped (so a failing test leaves nothing behind).
struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_node(dir: std::path::PathBuf, database: String, schema: String) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_listwire"))
        .arg("serve")
        .args(test_flags(&dir))
        .args(postgres_flags(&database, &schema))
        .args(["--snapshot-every", "1000000", "--log", "error"])
        .args([
            "--ops-per-second-per-user",
            "100000",
            "--ops-burst-per-user",
            "100000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn listwire");
    let url = listening_url(&mut child);
    Node { child, url }
}

/// How the server answered one op.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Acked(u64),
    Refused(String),
    /// The connection died first (the node was killed).
    Unknown,
}

/// An op sent: its list, text and answer.
#[derive(Debug, Clone)]
struct Sent {
    list: Uuid,
    text: String,
    answer: Answer,
}

fn op_id(node: u128, list_index: u128, k: u128) -> Uuid {
    Uuid::from_u128((node << 96) | (list_index << 64) | (k + 1))
}

/// Streams `OPS_PER_WRITER` pipelined ops to one list over one connection, reporting each ack
/// on `progress`. Ops unanswered when the connection dies are `Unknown`.
async fn writer(
    client: Client,
    node: u128,
    list_index: u128,
    list: Uuid,
    progress: tokio::sync::mpsc::UnboundedSender<()>,
) -> HashMap<Uuid, Sent> {
    let mut sent: HashMap<Uuid, Sent> = HashMap::new();
    let Ok(mut live) = client.connect().await else {
        return sent;
    };
    let (mut next, mut outstanding) = (0u128, 0u128);
    loop {
        while outstanding < WINDOW && next < OPS_PER_WRITER {
            let id = op_id(node, list_index, next);
            let text = format!("n{node}-l{list_index}-{next}");
            let sent_ok = live.send_op(list, id, &add(&text)).await.is_ok();
            let answer = Answer::Unknown;
            sent.insert(id, Sent { list, text, answer });
            next += 1;
            if !sent_ok {
                return sent;
            }
            outstanding += 1;
        }
        if outstanding == 0 {
            return sent;
        }
        let (id, answer) = match live.next_within(Duration::from_secs(20)).await {
            Ok(ServerFrame::Ack { op_id, seq, .. }) => (op_id, Answer::Acked(seq)),
            Ok(ServerFrame::Error {
                op_id: Some(op_id),
                code,
                ..
            }) => (op_id, Answer::Refused(code)),
            Ok(_) => continue,
            Err(ClientError::Timeout) => panic!("node {node} stopped answering"),
            Err(_) => return sent,
        };
        if let Some(entry) = sent.get_mut(&id) {
            if matches!(answer, Answer::Acked(_)) {
                let _ = progress.send(());
            }
            entry.answer = answer;
            outstanding -= 1;
        }
    }
}

/// The stored history of `list`: seq → op id, checked contiguous from 1 with no op twice.
async fn history(store: &PostgresStore, list: Uuid) -> BTreeMap<u64, Uuid> {
    let mut by_seq = BTreeMap::new();
    for batch in store.read_batches(list, 0, usize::MAX).await.unwrap() {
        for event in decode_batch(&batch.body).unwrap() {
            assert!(by_seq.insert(event.seq, event.op_id).is_none());
        }
    }
    let head = by_seq.keys().last().copied().unwrap_or(0);
    assert_eq!(
        store.head(list).await.unwrap(),
        head,
        "head matches history"
    );
    assert!(
        by_seq.keys().copied().eq(1..=head),
        "history of {list} has a gap"
    );
    let mut ops: Vec<Uuid> = by_seq.values().copied().collect();
    ops.sort_unstable();
    ops.dedup();
    assert_eq!(ops.len(), by_seq.len(), "an op is stored twice in {list}");
    by_seq
}

/// Where each op of `lists` is stored.
async fn stored_ops(
    store: &PostgresStore,
    lists: &[Uuid],
) -> (HashMap<Uuid, u64>, HashMap<Uuid, u64>) {
    let (mut ops, mut heads) = (HashMap::new(), HashMap::new());
    for list in lists {
        let by_seq = history(store, *list).await;
        heads.insert(*list, by_seq.keys().last().copied().unwrap_or(0));
        ops.extend(by_seq.into_iter().map(|(seq, op)| (op, seq)));
    }
    (ops, heads)
}

/// Phase 1, per list: A acks, B (loading the list fresh) acks the next seq, then A, whose actor
/// still holds the old head, must lose the conditional append and answer `moved`.
async fn forced_race(a: &Client, b: &Client, list: Uuid, index: u128) -> Vec<(Uuid, Sent)> {
    let mut sent = Vec::new();
    let first = op_id(9, index, 0);
    let seq_a = a.op(list, first, add(&format!("a-{index}"))).await.unwrap();
    let second = op_id(9, index, 1);
    let seq_b = b
        .op(list, second, add(&format!("b-{index}")))
        .await
        .unwrap();
    assert_eq!(seq_b, seq_a + 1, "B appends after A's durable op");
    let stale = op_id(9, index, 2);
    let refused = a.op(list, stale, add(&format!("stale-{index}"))).await;
    let code = match refused {
        Err(ClientError::Api { code, .. }) => code,
        other => panic!("the stale owner must refuse, got {other:?}"),
    };
    assert_eq!(code, "moved", "a stale owner answers moved");
    for (id, text, answer) in [
        (first, format!("a-{index}"), Answer::Acked(seq_a)),
        (second, format!("b-{index}"), Answer::Acked(seq_b)),
        (stale, format!("stale-{index}"), Answer::Refused(code)),
    ] {
        sent.push((id, Sent { list, text, answer }));
    }
    sent
}

/// Retries `op` on `client` with its op id until acknowledged (bounded).
async fn retry_until_acked(client: &Client, op: Uuid, sent: &Sent) -> u64 {
    for _ in 0..20 {
        match client.op(sent.list, op, add(&sent.text)).await {
            Ok(seq) => return seq,
            Err(ClientError::Api { code, .. }) if RETRYABLE.contains(&code.as_str()) => {}
            Err(other) => panic!("retry of {op} failed: {other:?}"),
        }
    }
    panic!("op {op} was not acknowledged after 20 retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_on_one_database_never_fork_a_list() {
    let Some(database) = url_or_skip("listwire it fencing") else {
        return;
    };
    let schema = fresh_schema("lw_fence_");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Both start at once, so their migrations also race (the advisory lock orders them).
    let start = |dir: &tempfile::TempDir| {
        let (dir, database, schema) = (dir.path().to_owned(), database.clone(), schema.clone());
        tokio::task::spawn_blocking(move || spawn_node(dir, database, schema))
    };
    let (node_a, node_b) = tokio::join!(start(&dir_a), start(&dir_b));
    let (node_a, mut node_b) = (node_a.unwrap(), Some(node_b.unwrap()));
    let anonymous = Client::new(&node_a.url);
    let session = anonymous
        .register("fence", "correct horse battery")
        .await
        .unwrap();
    let a = anonymous.with_token(&session.token);
    let b_url = node_b.as_ref().map(|n| n.url.clone()).unwrap();
    let b = Client::new(&b_url).with_token(&session.token);
    let mut lists = Vec::new();
    for index in 0..LISTS {
        lists.push(list(&a, &format!("fenced {index}")).await);
    }

    let mut sent: HashMap<Uuid, Sent> = HashMap::new();
    for (index, list) in (0..LISTS).zip(&lists) {
        sent.extend(forced_race(&a, &b, *list, index).await);
    }

    // Phase 2: both nodes stream into every list at once; B dies mid-stream.
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut writers = Vec::new();
    for (index, list) in (0..LISTS).zip(&lists) {
        for (node, client) in [(1, &a), (2, &b)] {
            let task = writer(client.clone(), node, index, *list, progress_tx.clone());
            writers.push(tokio::spawn(task));
        }
    }
    drop(progress_tx);
    let enough = async {
        for _ in 0..KILL_AFTER_ACKS {
            progress_rx
                .recv()
                .await
                .expect("writers ack enough ops before finishing");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), enough)
        .await
        .expect("acks arrive");
    drop(node_b.take()); // SIGKILL, mid-stream.
    for writer in writers {
        sent.extend(writer.await.unwrap());
    }

    let store = PostgresStore::connect(test_config(&database, &schema))
        .await
        .unwrap();
    let (stored, heads) = stored_ops(&store, &lists).await;
    let mut moved = 0;
    for (op, entry) in &sent {
        match &entry.answer {
            Answer::Acked(seq) => {
                assert_eq!(stored.get(op), Some(seq), "acked op {op} missing or moved")
            }
            Answer::Refused(code) => {
                assert!(
                    RETRYABLE.contains(&code.as_str()),
                    "op {op} refused with {code}"
                );
                if code == "moved" {
                    moved += 1;
                    assert!(
                        !stored.contains_key(op),
                        "op {op} answered moved but stored"
                    );
                }
            }
            Answer::Unknown => {}
        }
    }
    assert!(moved >= LISTS as usize, "every forced race answered moved");
    let count = |pick: fn(&Answer) -> bool| sent.values().filter(|s| pick(&s.answer)).count();
    eprintln!(
        "fencing: {} ops sent, {} acked, {moved} moved, {} other refusals, {} unanswered at the kill",
        sent.len(),
        count(|a| matches!(a, Answer::Acked(_))),
        count(|a| matches!(a, Answer::Refused(c) if c != "moved")),
        count(|a| matches!(a, Answer::Unknown)),
    );
    for (op, seq) in &stored {
        // The only ops this test did not send are the lists' creations, at seq 1.
        assert!(
            sent.contains_key(op) || *seq == 1,
            "unknown op {op} stored at {seq}"
        );
    }

    // Phase 3: the survivor takes every unacknowledged op; each lands exactly once.
    for (op, entry) in &sent {
        if matches!(entry.answer, Answer::Acked(_)) {
            continue;
        }
        let seq = retry_until_acked(&a, *op, entry).await;
        if entry.answer == Answer::Refused("moved".into()) {
            assert!(
                seq > heads[&entry.list],
                "a moved op is stored by its retry"
            );
        }
    }
    let (stored, heads) = stored_ops(&store, &lists).await;
    for op in sent.keys() {
        assert!(
            stored.contains_key(op),
            "op {op} is stored after its retries"
        );
    }
    for list in &lists {
        let state = a.get_list(*list).await.unwrap();
        assert_eq!(
            state["seq"], heads[list],
            "the survivor serves the stored history"
        );
        let items = state["items"].as_array().unwrap();
        assert_eq!(
            items.len() as u64,
            heads[list] - 1,
            "one item per stored op"
        );
    }
    drop(node_a);
    drop_schema(&database, &schema).await.unwrap();
}
