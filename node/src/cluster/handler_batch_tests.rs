//! The owner's batch path (issue 13): the ops of one list in one forwarded request reach its
//! actor as one message, admitted together, and each still gets its own outcome, in order.

use std::sync::Arc;

use listwire_gateway::Router;
use listwire_storage::memory::MemoryStore;
use uuid::Uuid;

use super::super::test_support::principal;
use super::super::wire::{WireOp, WireOpBody, WirePrincipal};
use super::*;
use crate::host::{Host, HostConfig, Owner, Ownership};

/// Owns every list but one, which it says `node-b` owns.
struct AllBut(Uuid);

impl Ownership for AllBut {
    fn check(&self, list: Uuid) -> Owner {
        if list == self.0 {
            Owner::Elsewhere(Some("node-b".into()))
        } else {
            Owner::Here
        }
    }
}

const POLL: Uuid = Uuid::from_u128(0x100);
const MOVED: Uuid = Uuid::from_u128(0x200);
const ITEM_A: Uuid = Uuid::from_u128(0xa);
const ITEM_B: Uuid = Uuid::from_u128(0xb);

fn voter(n: u128) -> WirePrincipal {
    WirePrincipal::from(&principal(1000 + n, &format!("voter{n}")))
}

fn op(who: WirePrincipal, list: Uuid, op_id: Uuid, json: &str) -> WireOp {
    WireOp {
        principal: who,
        list,
        op_id,
        body: WireOpBody::Apply(json.into()),
    }
}

fn vote(who: WirePrincipal, op_id: Uuid, item: Uuid) -> WireOp {
    op(
        who,
        POLL,
        op_id,
        &format!(r#"{{"kind":"vote","item":"{item}"}}"#),
    )
}

async fn outcomes(handler: &InternodeHandler, ops: Vec<WireOp>) -> Vec<Result<u64, WireError>> {
    match handler.ops(ops).await {
        Response::Ops(outcomes) => outcomes,
        other => panic!("expected ops, got {other:?}"),
    }
}

fn code(outcome: &Result<u64, WireError>) -> &str {
    match outcome {
        Ok(_) => "ok",
        Err(error) => &error.code,
    }
}

/// A handler over a fresh in-memory node (which owns every list but `MOVED`) with a public
/// one-vote poll of items A and B at seq 3.
async fn node_with_poll(config: HostConfig) -> (Arc<InternodeHandler>, LocalRouter) {
    let store = Arc::new(MemoryStore::new());
    node_with_poll_over(store.clone(), store, config).await
}

async fn node_with_poll_over(
    events: Arc<dyn listwire_storage::EventStore>,
    accounts: Arc<MemoryStore>,
    config: HostConfig,
) -> (Arc<InternodeHandler>, LocalRouter) {
    let host = Host::with_ownership(events, accounts, config, Arc::new(AllBut(MOVED)));
    let local = LocalRouter::new(host);
    let handler = InternodeHandler::new(local.clone(), 64);
    let owner = WirePrincipal::from(&principal(1, "owner"));
    let create = r#"{"title":"poll","visibility":"public","poll":{"max_votes_per_user":1,"allow_change":false,"open":true}}"#;
    let add = |item: Uuid| {
        format!(r#"{{"kind":"add_item","text":"{item}","after":null,"item":"{item}"}}"#)
    };
    let setup = vec![
        WireOp {
            principal: owner.clone(),
            list: POLL,
            op_id: Uuid::new_v4(),
            body: WireOpBody::Create(create.into()),
        },
        op(owner.clone(), POLL, Uuid::new_v4(), &add(ITEM_A)),
        op(owner, POLL, Uuid::new_v4(), &add(ITEM_B)),
    ];
    assert_eq!(outcomes(&handler, setup).await, vec![Ok(1), Ok(2), Ok(3)]);
    (handler, local)
}

/// Waits until nothing of `POLL` is in flight: an op's admission is freed just after its
/// answer is sent, so the next request could otherwise still see the previous one.
async fn drained(local: &LocalRouter) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while local.host().busiest(8).iter().any(|load| load.inflight > 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "admissions were not freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The votes of each item in the durable snapshot.
async fn tallies(local: &LocalRouter) -> (u64, u64) {
    let snapshot = local.snapshot(&principal(1, "owner"), POLL).await.unwrap();
    let snapshot: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    let votes_of = |item: Uuid| {
        snapshot["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|found| found["id"] == item.to_string())
            .map(|found| found["votes"].as_u64().unwrap())
            .unwrap()
    };
    (votes_of(ITEM_A), votes_of(ITEM_B))
}

/// Goal: one forwarded request mixing valid votes, the same op id twice, a vote past the
/// limit, an op for a list owned elsewhere, malformed JSON and a reused op id gets one outcome
/// per op, in order, as each op would have alone; a retry in a later request is answered from
/// the op-id window; the tallies count each accepted vote once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_gets_each_op_its_own_outcome_in_order() {
    let (handler, local) = node_with_poll(HostConfig::default()).await;
    let first_vote = Uuid::new_v4();
    let batch = vec![
        vote(voter(1), first_vote, ITEM_A),
        vote(voter(1), first_vote, ITEM_A),
        vote(voter(2), Uuid::new_v4(), ITEM_A),
        vote(voter(2), Uuid::new_v4(), ITEM_B),
        op(
            voter(3),
            MOVED,
            Uuid::new_v4(),
            r#"{"kind":"vote","item":"00000000-0000-0000-0000-00000000000a"}"#,
        ),
        vote(voter(3), Uuid::new_v4(), ITEM_B),
        op(voter(4), POLL, Uuid::new_v4(), r#"{"kind":"vote","#),
        vote(voter(4), first_vote, ITEM_B),
    ];
    let answered = outcomes(&handler, batch).await;
    let codes: Vec<&str> = answered.iter().map(code).collect();
    assert_eq!(
        codes,
        ["ok", "ok", "ok", "conflict", "moved", "ok", "invalid", "conflict"]
    );
    assert_eq!(
        answered[0],
        Ok(4),
        "the first vote is the list's fourth event"
    );
    assert_eq!(answered[1], Ok(4), "the same op id in one batch is one op");
    assert_eq!(answered[2], Ok(5));
    assert!(answered[3]
        .as_ref()
        .unwrap_err()
        .message
        .contains("vote limit"));
    assert!(answered[4].as_ref().unwrap_err().message.contains("node-b"));
    assert_eq!(answered[5], Ok(6));
    assert_eq!(
        answered[6].as_ref().unwrap_err().message,
        "op must be a json object"
    );
    assert!(answered[7]
        .as_ref()
        .unwrap_err()
        .message
        .contains("already used"));

    let retried = outcomes(&handler, vec![vote(voter(1), first_vote, ITEM_A)]).await;
    assert_eq!(
        retried,
        vec![Ok(4)],
        "a retry in a later batch is answered, not applied"
    );
    assert_eq!(tallies(&local).await, (2, 1));
}

/// Goal: a batch larger than the room its list has in flight is admitted up to the limit; the
/// ops beyond it are refused `busy`, each, and the admitted ones are applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_of_a_batch_beyond_the_inflight_limit_are_busy() {
    let config = HostConfig {
        list_inflight_max: 3,
        ..HostConfig::default()
    };
    let (handler, local) = node_with_poll(config).await;
    drained(&local).await;
    let batch = (1..=5)
        .map(|n| vote(voter(n), Uuid::new_v4(), ITEM_A))
        .collect();
    let answered = outcomes(&handler, batch).await;
    let codes: Vec<&str> = answered.iter().map(code).collect();
    assert_eq!(codes, ["ok", "ok", "ok", "busy", "busy"]);
    assert_eq!(&answered[..3], &[Ok(4), Ok(5), Ok(6)]);
    assert_eq!(tallies(&local).await, (3, 0));
    // The places are freed: a later batch is admitted again.
    drained(&local).await;
    let later = outcomes(&handler, vec![vote(voter(4), Uuid::new_v4(), ITEM_B)]).await;
    assert_eq!(later, vec![Ok(7)]);
}

/// Goal: the same votes sent in two requests at once (a gateway node's retry racing its
/// first attempt) are applied once: both requests get the same seqs, the tallies count once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_with_the_same_op_ids_apply_once() {
    let (handler, local) = node_with_poll(HostConfig::default()).await;
    let votes: Vec<WireOp> = (1..=20)
        .map(|n| {
            vote(
                voter(n),
                Uuid::new_v4(),
                if n % 2 == 0 { ITEM_A } else { ITEM_B },
            )
        })
        .collect();
    let (first, second) =
        tokio::join!(outcomes(&handler, votes.clone()), outcomes(&handler, votes));
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    assert_eq!(first, second);
    assert_eq!(tallies(&local).await, (10, 10));
}

/// A memory store that counts the appends it is asked for.
struct CountingAppends {
    inner: Arc<MemoryStore>,
    appends: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl listwire_storage::EventStore for CountingAppends {
    async fn append(
        &self,
        list: Uuid,
        batch: listwire_storage::Batch,
    ) -> Result<(), listwire_storage::Error> {
        self.appends
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.append(list, batch).await
    }
    async fn head(&self, list: Uuid) -> Result<u64, listwire_storage::Error> {
        self.inner.head(list).await
    }
    async fn read_batches(
        &self,
        list: Uuid,
        after_seq: u64,
        max_batches: usize,
    ) -> Result<Vec<listwire_storage::Batch>, listwire_storage::Error> {
        self.inner.read_batches(list, after_seq, max_batches).await
    }
    async fn write_snapshot(
        &self,
        list: Uuid,
        snapshot: listwire_storage::Snapshot,
    ) -> Result<(), listwire_storage::Error> {
        self.inner.write_snapshot(list, snapshot).await
    }
    async fn latest_snapshot(
        &self,
        list: Uuid,
    ) -> Result<Option<listwire_storage::Snapshot>, listwire_storage::Error> {
        self.inner.latest_snapshot(list).await
    }
    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), listwire_storage::Error> {
        self.inner.prune(list, up_to_seq).await
    }
    async fn close(&self) -> Result<(), listwire_storage::Error> {
        self.inner.close().await
    }
}

/// Goal (review finding): when an op of a batch stops its list (its event cannot be
/// encoded, so `head` holds an event that will never be stored), the rest of the batch is
/// refused and no append starts from that `head`: a stale append would store events computed
/// on a state the store never had. The next request reloads the list and continues from the
/// stored head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_after_an_abort_in_a_batch_are_refused_and_never_stored() {
    let memory = Arc::new(MemoryStore::new());
    let counting = Arc::new(CountingAppends {
        inner: memory.clone(),
        appends: std::sync::atomic::AtomicUsize::new(0),
    });
    let (handler, _local) =
        node_with_poll_over(counting.clone(), memory, HostConfig::default()).await;
    let failing = Uuid::new_v4();
    crate::list::fail_encoding_of(failing);
    let before = counting.appends.load(std::sync::atomic::Ordering::SeqCst);
    let batch = vec![
        vote(voter(1), failing, ITEM_A),
        vote(voter(2), Uuid::new_v4(), ITEM_A),
        vote(voter(3), Uuid::new_v4(), ITEM_B),
    ];
    let answered = outcomes(&handler, batch).await;
    let codes: Vec<&str> = answered.iter().map(code).collect();
    assert_eq!(codes, ["internal", "unavailable", "unavailable"]);
    let later = outcomes(&handler, vec![vote(voter(2), Uuid::new_v4(), ITEM_B)]).await;
    assert_eq!(
        later,
        vec![Ok(4)],
        "the reloaded list continues from the stored head"
    );
    let appends = counting.appends.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(
        appends, 1,
        "only the reloaded list's append reached the store"
    );
}

/// The next frame of a node subscription (skipping its start), within `wait`.
async fn next_frame(
    source: &crate::list::node_sink::NodeSource,
    wait: std::time::Duration,
) -> Option<(bool, u64)> {
    use crate::list::node_sink::NodeItem;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let item = tokio::time::timeout_at(deadline, source.next())
            .await
            .ok()??;
        if let NodeItem::Frame { from, seq, .. } = item {
            return Some((from.is_none(), seq));
        }
    }
}

/// Goal (review finding): a tally timer that fired after its tally went out another way is
/// stale: its `TallyDue` neither publishes the next window's tally early nor takes the handle
/// of the timer armed after it; the current timer's `TallyDue` publishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_tally_timer_publishes_nothing() {
    use crate::host::Activation;
    use crate::list::ListMsg;
    let config = HostConfig {
        // Long enough that only the messages this test sends can publish the tally.
        tally_interval: std::time::Duration::from_secs(600),
        ..HostConfig::default()
    };
    let (handler, local) = node_with_poll(config).await;
    let source = local.subscribe_node(POLL, None, 64).await.unwrap();
    let wait = std::time::Duration::from_secs(5);
    // The first vote after a quiet moment is a delta; the second is coalesced (timer 1).
    assert_eq!(
        outcomes(&handler, vec![vote(voter(1), Uuid::new_v4(), ITEM_A)]).await,
        vec![Ok(4)]
    );
    assert_eq!(next_frame(&source, wait).await, Some((false, 4)), "a delta");
    assert_eq!(
        outcomes(&handler, vec![vote(voter(2), Uuid::new_v4(), ITEM_B)]).await,
        vec![Ok(5)]
    );
    let host = local.host();
    let tally_due = |generation| async move {
        let dispatched = host
            .dispatch(POLL, ListMsg::TallyDue(generation), Activation::IfActive)
            .await;
        assert!(dispatched.is_ok());
    };
    tally_due(0).await;
    // A read after it is answered by the actor after it handled the stale message, and a
    // publish would already be in the subscription's queue: no waiting on time.
    local.snapshot(&principal(1, "owner"), POLL).await.unwrap();
    let at_once = std::time::Duration::from_millis(10);
    assert_eq!(
        next_frame(&source, at_once).await,
        None,
        "a stale timer publishes nothing"
    );
    tally_due(1).await;
    assert_eq!(
        next_frame(&source, wait).await,
        Some((true, 5)),
        "the current one does"
    );
}
