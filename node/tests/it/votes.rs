use futures_util::future::join_all;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// A user cannot vote twice for one item or past the poll's limit, even with concurrent
/// retries under fresh op ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_count_once_and_respect_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let list = poll_list(&alice, false, 2, false).await;
    let items = [
        add_item(&alice, list, "a").await,
        add_item(&alice, list, "b").await,
        add_item(&alice, list, "c").await,
    ];

    let concurrent = (0..20).map(|_| {
        alice.op(
            list,
            Uuid::new_v4(),
            json!({"kind": "vote", "item": items[0]}),
        )
    });
    let outcomes = join_all(concurrent).await;
    let accepted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(accepted, 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().err())
        .all(|error| error.code() == Some("conflict")));

    alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "vote", "item": items[1]}),
        )
        .await
        .unwrap();
    let third = alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "vote", "item": items[2]}),
        )
        .await
        .unwrap_err();
    assert_eq!(third.code(), Some("conflict"), "past max_votes_per_user");
    let unvote = alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "unvote", "item": items[0]}),
        )
        .await
        .unwrap_err();
    assert_eq!(unvote.code(), Some("conflict"), "allow_change is false");

    let state = alice.get_list(list).await.unwrap();
    let votes: Vec<u64> = state["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["votes"].as_u64().unwrap())
        .collect();
    assert_eq!(votes.iter().sum::<u64>(), 2);
    node.stop().await.unwrap();
}

/// On a public poll, many distinct users voting concurrently — each retrying — yield a tally
/// equal to the number of voters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_poll_counts_each_voter_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let host = user(&node, "host").await;
    let list = poll_list(&host, true, 1, false).await;
    let item = add_item(&host, list, "favourite").await;
    let voters = join_all((0..60).map(|index| {
        let node = &node;
        async move { user(node, &format!("voter{index}")).await }
    }))
    .await;
    let votes = voters.iter().flat_map(|voter| {
        let op_id = Uuid::new_v4();
        (0..3).map(move |_| voter.op(list, op_id, json!({"kind": "vote", "item": item})))
    });
    let outcomes = join_all(votes).await;
    assert!(
        outcomes.iter().all(Result::is_ok),
        "retries with one op id all succeed: {outcomes:?}"
    );
    let state = host.get_list(list).await.unwrap();
    assert_eq!(state["items"][0]["votes"], 60);
    node.stop().await.unwrap();
}

/// Fast votes are coalesced into `tally` frames: after one vote delta, further votes within the
/// tally interval produce no per-vote deltas; the pending tally goes out before the next
/// non-vote delta, covers every vote, and the stream stays contiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_poll_votes_are_coalesced_into_tallies() {
    use listwire::client::ServerFrame;
    let dir = tempfile::tempdir().unwrap();
    // A long interval makes coalescing certain regardless of machine speed.
    let node = start_node(dir.path(), &["--tally-interval-ms", "60000"]).await;
    let host = user(&node, "host").await;
    let list = poll_list(&host, true, 1, false).await;
    let item = add_item(&host, list, "pick me").await;
    let mut watcher = host.connect().await.unwrap();
    let (mut seen, _) = subscribe_snapshot(&mut watcher, list).await;
    let voters = join_all((0..20).map(|index| {
        let node = &node;
        async move { user(node, &format!("fan{index}")).await }
    }))
    .await;
    for voter in &voters {
        voter
            .op(list, Uuid::new_v4(), json!({"kind": "vote", "item": item}))
            .await
            .unwrap();
    }
    let marker = host
        .op(list, Uuid::new_v4(), add("after the votes"))
        .await
        .unwrap();
    let mut tallies = Vec::new();
    let mut vote_deltas = 0;
    while seen < marker {
        match watcher.next().await.unwrap() {
            ServerFrame::Delta {
                from, to, events, ..
            } => {
                assert_eq!(from, seen + 1, "contiguous");
                vote_deltas += events
                    .iter()
                    .filter(|event| event["kind"] == "vote")
                    .count();
                seen = to;
            }
            ServerFrame::Tally { seq, counts, .. } => {
                assert!(seq > seen, "a tally moves forward");
                tallies.push(counts[item.to_string()].as_u64().unwrap());
                seen = seq;
            }
            _ => {}
        }
    }
    assert_eq!(vote_deltas, 1, "only the first vote goes out as a delta");
    assert_eq!(tallies.last(), Some(&20), "the tally covers every vote");
    node.stop().await.unwrap();
}

/// A burst of votes reaches watchers as tallies and small deltas, never as a delta of many
/// vote events (which every subscriber would be sent whole): a vote-only delta has at most 16
/// events, whatever batches the burst formed, and the watcher ends with every vote counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_burst_never_becomes_a_large_delta() {
    use listwire::client::ServerFrame;
    const VOTES: usize = 120;
    let dir = tempfile::tempdir().unwrap();
    // A 1 ms interval: almost every batch comes after it, so its size alone decides.
    let node = start_node(dir.path(), &["--tally-interval-ms", "1"]).await;
    let host = user(&node, "host").await;
    let list = poll_list(&host, true, VOTES as u32, false).await;
    let mut items = Vec::new();
    for index in 0..VOTES {
        let item = Uuid::new_v4();
        let op = json!({"kind": "add_item", "text": format!("option {index}"), "after": null, "item": item});
        host.op(list, Uuid::new_v4(), op).await.unwrap();
        items.push(item);
    }
    let mut watcher = host.connect().await.unwrap();
    let (mut seen, _) = subscribe_snapshot(&mut watcher, list).await;
    let mut voter = host.connect().await.unwrap();
    for item in &items {
        let vote = json!({"kind": "vote", "item": item});
        voter.send_op(list, Uuid::new_v4(), &vote).await.unwrap();
    }
    let last = seen + VOTES as u64;
    let mut counted = 0;
    while seen < last {
        match watcher.next().await.unwrap() {
            ServerFrame::Delta { to, events, .. } => {
                assert!(
                    events.len() <= 16,
                    "a vote delta of {} events",
                    events.len()
                );
                counted += events.len();
                seen = to;
            }
            ServerFrame::Tally { seq, counts, .. } => {
                let total: u64 = counts
                    .as_object()
                    .unwrap()
                    .values()
                    .filter_map(|count| count.as_u64())
                    .sum();
                counted = total as usize;
                seen = seq;
            }
            _ => {}
        }
    }
    assert_eq!(counted, VOTES, "every vote counted");
    node.stop().await.unwrap();
}
