//! Process-level crash test: the real binary under load is killed with SIGKILL and restarted
//! on the same data directory; every acknowledged op must be there exactly once, in a history
//! without gaps.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use listwire::client::{Client, ServerFrame};
use listwire::domain::{decode_batch, Change};
use listwire_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use listwire_storage::EventStore;
use uuid::Uuid;

use crate::support::*;

const WRITERS: usize = 4;
const OPS_PER_WRITER: usize = 400;
const WINDOW: usize = 32;

fn spawn_node(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_listwire"))
        .arg("serve")
        .args(test_flags(dir))
        .args(["--snapshot-every", "1000000", "--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn listwire");
    let url = listening_url(&mut child);
    (child, url)
}

/// Streams pipelined ops from one connection; returns op id → (seq, text) for every acked op.
/// Stops quietly when the connection dies (the node was killed).
async fn writer(
    client: Client,
    list: Uuid,
    writer: usize,
    acked_before_kill: tokio::sync::mpsc::Sender<()>,
) -> HashMap<Uuid, (u64, String)> {
    let mut acked = HashMap::new();
    let Ok(mut live) = client.connect().await else {
        return acked;
    };
    let mut texts = HashMap::new();
    let mut sent = 0;
    let mut outstanding = 0;
    loop {
        while outstanding < WINDOW && sent < OPS_PER_WRITER {
            let op_id = Uuid::new_v4();
            let text = format!("w{writer}-{sent}");
            if live.send_op(list, op_id, &add(&text)).await.is_err() {
                return acked;
            }
            texts.insert(op_id, text);
            sent += 1;
            outstanding += 1;
        }
        match live.next_within(Duration::from_secs(10)).await {
            Ok(ServerFrame::Ack { op_id, seq, .. }) => {
                outstanding -= 1;
                acked.insert(op_id, (seq, texts[&op_id].clone()));
                let _ = acked_before_kill.try_send(());
            }
            Ok(ServerFrame::Error { code, .. }) => panic!("op refused before the crash: {code}"),
            Ok(_) => {}
            Err(_) => return acked,
        }
        if sent == OPS_PER_WRITER && outstanding == 0 {
            return acked;
        }
    }
}

/// Reads the whole stored history straight from the embedded store (the node is dead).
async fn stored_history(dir: &Path, list: Uuid) -> BTreeMap<u64, (Uuid, String)> {
    let store = EmbeddedStore::open(&dir.join("store"), EmbeddedOptions::default())
        .expect("open store after crash");
    let mut history = BTreeMap::new();
    for batch in store.read_batches(list, 0, usize::MAX).await.unwrap() {
        for event in decode_batch(&batch.body).unwrap() {
            let text = match &event.change {
                Change::AddItem { text, .. } => text.clone(),
                _ => String::new(),
            };
            assert!(
                history.insert(event.seq, (event.op_id, text)).is_none(),
                "seq {} stored twice",
                event.seq
            );
        }
    }
    store.close().await.unwrap();
    history
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_ops_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_node(dir.path());
    let anonymous = Client::new(&url);
    let session = anonymous
        .register("crash", "correct horse battery")
        .await
        .unwrap();
    let client = anonymous.with_token(&session.token);
    let list = client
        .create_list(serde_json::json!({"title": "crash"}))
        .await
        .unwrap();

    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::channel(OPS_PER_WRITER * WRITERS);
    let writers: Vec<_> = (0..WRITERS)
        .map(|index| tokio::spawn(writer(client.clone(), list, index, progress_tx.clone())))
        .collect();
    // Kill mid-stream: after a third of the ops are acknowledged, with more in flight.
    for _ in 0..(OPS_PER_WRITER * WRITERS / 3) {
        progress_rx.recv().await.expect("acks arrive");
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let mut acked = HashMap::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    assert!(acked.len() >= OPS_PER_WRITER * WRITERS / 3);

    let history = stored_history(dir.path(), list).await;
    let head = *history.keys().last().unwrap();
    assert_eq!(
        history.keys().copied().collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>(),
        "history has a gap"
    );
    let stored_ops: HashMap<Uuid, u64> = history
        .iter()
        .map(|(seq, (op_id, _))| (*op_id, *seq))
        .collect();
    assert_eq!(stored_ops.len(), history.len(), "an op was stored twice");
    for (op_id, (seq, text)) in &acked {
        assert_eq!(
            stored_ops.get(op_id),
            Some(seq),
            "acknowledged op {op_id} missing or moved"
        );
        assert_eq!(&history[seq].1, text);
    }

    let (mut child, url) = spawn_node(dir.path());
    let client = Client::new(&url).with_token(&session.token);
    let state = client.get_list(list).await.unwrap();
    assert_eq!(state["seq"], head);
    let items = state["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, head - 1);
    let mut texts: Vec<&str> = items
        .iter()
        .map(|item| item["text"].as_str().unwrap())
        .collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), items.len(), "an item appears twice");
    // Retrying an acknowledged op after the crash answers the original seq.
    let (op_id, (seq, text)) = acked.iter().next().unwrap();
    assert_eq!(client.op(list, *op_id, add(text)).await.unwrap(), *seq);
    child.kill().unwrap();
    child.wait().unwrap();
}
