use listwire::client::ServerFrame;
use uuid::Uuid;

use crate::support::*;

/// A client that reconnects with `since` receives exactly the deltas it missed, contiguous
/// and without a snapshot; `since: null` gets a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_since_gets_exactly_the_missed_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let list = list(&alice, "resume").await;
    let mut live = alice.connect().await.unwrap();
    let (seen, _) = subscribe_snapshot(&mut live, list).await;
    live.close().await;

    for index in 0..7 {
        alice
            .op(list, Uuid::new_v4(), add(&format!("missed {index}")))
            .await
            .unwrap();
    }
    let mut live = alice.connect().await.unwrap();
    live.subscribe(list, Some(seen)).await.unwrap();
    let mut next = seen + 1;
    let mut texts = Vec::new();
    while next <= seen + 7 {
        match live.next().await.unwrap() {
            ServerFrame::Delta {
                from, to, events, ..
            } => {
                assert_eq!(from, next, "contiguous");
                assert_eq!(events.len() as u64, to - from + 1);
                texts.extend(
                    events
                        .iter()
                        .map(|event| event["text"].as_str().unwrap().to_owned()),
                );
                next = to + 1;
            }
            other => panic!("expected only deltas, got {other:?}"),
        }
    }
    assert_eq!(
        texts,
        (0..7)
            .map(|index| format!("missed {index}"))
            .collect::<Vec<_>>()
    );
    // Up to date: nothing more comes until a new op, which arrives as the next delta.
    alice
        .op(list, Uuid::new_v4(), add("live again"))
        .await
        .unwrap();
    let from = expect_frame(&mut live, |frame| match frame {
        ServerFrame::Delta { from, .. } => Some(*from),
        _ => None,
    })
    .await;
    assert_eq!(from, seen + 8);

    let mut fresh = alice.connect().await.unwrap();
    let (seq, state) = subscribe_snapshot(&mut fresh, list).await;
    assert_eq!(seq, seen + 8);
    assert_eq!(state["items"].as_array().unwrap().len(), 8);
    node.stop().await.unwrap();
}

/// Re-subscribing on the same connection with an older `since` never repeats a seq: frames
/// already queued to the connection count as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_on_the_same_connection_does_not_repeat_events() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let list = list(&alice, "again").await;
    let mut live = alice.connect().await.unwrap();
    let (first, _) = subscribe_snapshot(&mut live, list).await;
    for index in 0..3 {
        alice
            .op(list, Uuid::new_v4(), add(&format!("{index}")))
            .await
            .unwrap();
    }
    live.subscribe(list, Some(first)).await.unwrap();
    alice
        .op(list, Uuid::new_v4(), add("after resubscribe"))
        .await
        .unwrap();
    let mut last = first;
    while last < first + 4 {
        match live.next().await.unwrap() {
            ServerFrame::Delta { from, to, .. } => {
                assert_eq!(from, last + 1, "no repeats and no gaps");
                last = to;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    node.stop().await.unwrap();
}
