//! The simulated clients: list setup, writers and poll voters. Every op carries an op id and
//! is retried with the SAME op id, at a node of the client's choosing, on a retryable error
//! (`moved`, `busy`, `unavailable`) or a lost connection, until its deadline.

use std::time::Duration;

use listwire_gateway::{EdgeError, Principal};
use tokio::time::Instant;
use uuid::Uuid;

use super::gateway::{create_once, snapshot_once, submit_once, Lost};
use super::node::Gateways;
use super::records::{OpRecord, Outcome, Records};
use super::rng::SimRng;
use super::trace::Trace;

/// How long a client keeps retrying one op.
pub const OP_DEADLINE: Duration = Duration::from_secs(30);
/// Each voter's vote limit on the poll.
pub const VOTE_LIMIT: u64 = 2;
/// Items on the poll (more than the limit, so voters run into it).
pub const POLL_ITEMS: usize = 3;

/// What every client shares.
#[derive(Clone)]
pub struct Clients {
    /// The nodes.
    pub gateways: Gateways,
    /// Where outcomes go.
    pub records: Records,
    /// The run's trace.
    pub trace: Trace,
    /// When writers and voters stop starting new ops.
    pub load_end: Instant,
}

/// A list the clients use.
#[derive(Debug, Clone)]
pub struct ListSpec {
    /// Its id.
    pub id: Uuid,
    /// Its owner (every writer of the list acts as the owner).
    pub owner: Principal,
    /// Its poll items, if it is the poll.
    pub items: Vec<Uuid>,
}

/// A user named `name` with an id from `rng`.
pub fn principal(rng: &mut SimRng, name: String) -> Principal {
    Principal {
        user_id: rng.uuid(),
        username: name,
    }
}

fn retryable(error: &EdgeError) -> bool {
    error.code.is_retryable()
}

impl Clients {
    fn pick_node(&self, rng: &mut SimRng) -> usize {
        rng.below(self.gateways.len() as u64) as usize
    }

    /// Submits one op until it is answered for good or its deadline passes.
    pub async fn run_op(
        &self,
        rng: &mut SimRng,
        (principal, list): (&Principal, Uuid),
        kind: &'static str,
        op: &str,
    ) -> OpRecord {
        let op_id = rng.uuid();
        let deadline = Instant::now() + OP_DEADLINE;
        let mut record = OpRecord {
            op_id,
            list,
            user: principal.user_id,
            kind,
            attempts: 0,
            acks: Vec::new(),
            outcome: Outcome::GaveUp("none".into()),
        };
        loop {
            record.attempts += 1;
            let node = self.pick_node(rng);
            let duplicate = rng.chance(0.05);
            let answer = if duplicate {
                // A duplicated delivery: the same op at two nodes at once.
                let other = self.pick_node(rng);
                let ids = (principal, list, op_id);
                let (first, second) = tokio::join!(
                    submit_once(&self.gateways, node, ids, op),
                    submit_once(&self.gateways, other, ids, op)
                );
                if let Ok(Ok(seq)) = &second {
                    record.acks.push(*seq);
                }
                first
            } else {
                submit_once(&self.gateways, node, (principal, list, op_id), op).await
            };
            let last = match answer {
                Ok(Ok(seq)) => {
                    record.acks.push(seq);
                    record.outcome = Outcome::Acked(seq);
                    break;
                }
                Ok(Err(error)) if !retryable(&error) => {
                    record.outcome = Outcome::Rejected(error.code.as_str().into());
                    break;
                }
                Ok(Err(error)) => error.code.as_str().to_owned(),
                Err(Lost::Timeout) => {
                    self.trace.record(format!(
                        "op {op_id} got no answer from node {node} (duplicate: {duplicate})"
                    ));
                    record.outcome = Outcome::Stuck;
                    break;
                }
                Err(lost) => lost.as_str().to_owned(),
            };
            let wait = Duration::from_millis(rng.between(50, 400));
            if Instant::now() + wait >= deadline {
                record.outcome = Outcome::GaveUp(last);
                break;
            }
            tokio::time::sleep(wait).await;
        }
        self.trace.record(format!(
            "op {} {kind} on {list}: {:?} after {} attempts",
            record.op_id, record.outcome, record.attempts
        ));
        record
    }

    /// Creates a list (retrying with the same op id) and returns its id.
    pub async fn create(
        &self,
        rng: &mut SimRng,
        owner: &Principal,
        body: serde_json::Value,
    ) -> Uuid {
        let mut body = body;
        body["op_id"] = serde_json::Value::String(rng.uuid().to_string());
        let body = body.to_string();
        loop {
            let node = self.pick_node(rng);
            if let Ok(Ok(list)) = create_once(&self.gateways, node, owner, &body).await {
                self.trace.record(format!("created list {list}"));
                return list;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The ids of a list's items, read at any node that answers.
    pub async fn item_ids(&self, rng: &mut SimRng, owner: &Principal, list: Uuid) -> Vec<Uuid> {
        loop {
            let node = self.pick_node(rng);
            if let Ok(Ok(state)) = snapshot_once(&self.gateways, node, owner, list).await {
                let items = state["items"].as_array().cloned().unwrap_or_default();
                let ids: Vec<Uuid> = items
                    .iter()
                    .filter_map(|item| item["id"].as_str()?.parse().ok())
                    .collect();
                if ids.len() >= POLL_ITEMS {
                    return ids;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates the workload's lists: `count` ordinary ones and one public poll with items.
    pub async fn set_up(&self, rng: &mut SimRng, count: usize) -> (Vec<ListSpec>, ListSpec) {
        let mut lists = Vec::new();
        for index in 0..count {
            let owner = principal(rng, format!("owner{index}"));
            let body = serde_json::json!({"title": format!("list {index}")});
            let id = self.create(rng, &owner, body).await;
            lists.push(ListSpec {
                id,
                owner,
                items: Vec::new(),
            });
        }
        let owner = principal(rng, "pollster".into());
        let body = serde_json::json!({"title": "poll", "visibility": "public",
            "poll": {"max_votes_per_user": VOTE_LIMIT, "allow_change": false, "open": true}});
        let id = self.create(rng, &owner, body).await;
        for item in 0..POLL_ITEMS {
            let op = add_op(&format!("option {item}"));
            self.run_op(rng, (&owner, id), "add", &op).await;
        }
        let items = self.item_ids(rng, &owner, id).await;
        let poll = ListSpec { id, owner, items };
        (lists, poll)
    }

    /// Adds items to random lists until the load ends.
    pub async fn writer(self, mut rng: SimRng, lists: Vec<ListSpec>, index: usize) {
        let mut count = 0;
        while Instant::now() < self.load_end {
            let list = pick_list(&mut rng, &lists);
            let op = add_op(&format!("w{index}-{count}"));
            let record = self
                .run_op(&mut rng, (&list.owner, list.id), "add", &op)
                .await;
            self.records.op(record);
            count += 1;
            tokio::time::sleep(Duration::from_millis(rng.between(20, 300))).await;
        }
    }

    /// Votes for every poll item in a random order (the limit refuses the last).
    pub async fn voter(self, mut rng: SimRng, poll: ListSpec, index: usize) {
        let user = principal(&mut rng, format!("voter{index}"));
        let mut items = poll.items.clone();
        for position in (1..items.len()).rev() {
            items.swap(position, rng.below(position as u64 + 1) as usize);
        }
        for item in items {
            if Instant::now() >= self.load_end {
                return;
            }
            tokio::time::sleep(Duration::from_millis(rng.between(0, 2_000))).await;
            let op = format!(r#"{{"kind":"vote","item":"{item}"}}"#);
            let record = self.run_op(&mut rng, (&user, poll.id), "vote", &op).await;
            self.records.op(record);
        }
    }
}

/// The list a writer edits next: the first list is a quiet one (one write in fifty), so a
/// copy of it left on a node that no longer owns it is rarely refreshed by a write through
/// that node (a stale copy the final reads must catch); the others share the rest.
fn pick_list<'a>(rng: &mut SimRng, lists: &'a [ListSpec]) -> &'a ListSpec {
    if lists.len() == 1 || rng.chance(0.02) {
        return &lists[0];
    }
    &lists[1 + rng.below(lists.len() as u64 - 1) as usize]
}

/// An `add_item` op at the top.
pub fn add_op(text: &str) -> String {
    format!(r#"{{"kind":"add_item","text":"{text}","after":null}}"#)
}
