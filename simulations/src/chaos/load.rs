//! The mixed load: writers editing several lists and voters on one hot poll, bounded in count
//! and in time, through every node.
//!
//! Writers add items (with client-chosen item ids, so they can edit them later), edit their
//! texts and tick them done, on lists picked at random. Voters each try one more vote than the
//! poll allows, on distinct items, at random moments; the vote past the limit must be refused
//! (`conflict`) unless an earlier vote's outcome stayed unknown.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::clients::{Nodes, OpRecord};
use super::faults::Rng;

/// What the load does.
#[derive(Debug, Clone)]
pub(crate) struct LoadSpec {
    pub(crate) writers: usize,
    pub(crate) ops_per_writer_max: usize,
    /// Pause between a writer's ops.
    pub(crate) think: Duration,
    pub(crate) voters: usize,
    /// Votes each voter tries (the poll allows one fewer).
    pub(crate) votes_per_voter: usize,
    /// How long new ops start.
    pub(crate) duration: Duration,
    pub(crate) seed: u64,
}

/// The lists of the run: editable lists, then the poll (last), with the poll's items.
#[derive(Debug, Clone)]
pub(crate) struct Lists {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) poll_items: Vec<Uuid>,
    /// The poll's `max_votes_per_user`.
    pub(crate) vote_limit: usize,
}

impl Lists {
    pub(crate) fn poll(&self) -> (usize, Uuid) {
        let index = self.ids.len() - 1;
        (index, self.ids[index])
    }

    fn edited(&self) -> &[Uuid] {
        &self.ids[..self.ids.len() - 1]
    }
}

/// Starts every writer and voter; each task returns its op records.
pub(crate) fn start(
    spec: &LoadSpec,
    nodes: &Nodes,
    lists: &Lists,
    owner_token: &str,
    voter_token: impl Fn(usize) -> String,
) -> Vec<JoinHandle<Vec<OpRecord>>> {
    let stop_at = Instant::now() + spec.duration;
    let mut tasks = Vec::new();
    for writer in 0..spec.writers {
        let run = write(
            spec.clone(),
            nodes.clone(),
            lists.clone(),
            owner_token.to_owned(),
            (writer, stop_at),
        );
        tasks.push(tokio::spawn(run));
    }
    for voter in 0..spec.voters {
        let run = vote(
            spec.clone(),
            nodes.clone(),
            lists.clone(),
            voter_token(voter),
            (voter, stop_at),
        );
        tasks.push(tokio::spawn(run));
    }
    tasks
}

/// One writer's ops, until `stop_at` or its op budget.
async fn write(
    spec: LoadSpec,
    nodes: Nodes,
    lists: Lists,
    token: String,
    (writer, stop_at): (usize, Instant),
) -> Vec<OpRecord> {
    let mut rng = Rng::new(spec.seed ^ (0x5752_0000 + writer as u64));
    let mut node = writer % nodes.count();
    let mut records = Vec::new();
    let mut mine: Vec<(usize, Uuid)> = Vec::new();
    for number in 0..spec.ops_per_writer_max {
        if Instant::now() >= stop_at {
            break;
        }
        let list_index = rng.below(lists.edited().len() as u64) as usize;
        let list = (list_index, lists.ids[list_index]);
        let op = next_op(&mut rng, &mut mine, list_index, (writer, number));
        let (record, now_at) = nodes.op(&token, list, op, node).await;
        node = now_at;
        records.push(record);
        tokio::time::sleep(spec.think).await;
    }
    records
}

/// How many of its items a writer keeps on one list: far below the node's 10,000 items per
/// list for any number of writers a run uses, so a long run never meets `list is full`.
const ITEMS_KEPT_PER_LIST: usize = 300;

/// Adds an item (60%) or edits one of this writer's items on the list; once the writer keeps
/// [`ITEMS_KEPT_PER_LIST`] items there, it removes one instead of adding.
fn next_op(
    rng: &mut Rng,
    mine: &mut Vec<(usize, Uuid)>,
    list_index: usize,
    (writer, number): (usize, usize),
) -> Value {
    let on_list: Vec<Uuid> = mine
        .iter()
        .filter(|(list, _)| *list == list_index)
        .map(|(_, item)| *item)
        .collect();
    let roll = rng.below(10);
    if on_list.len() >= ITEMS_KEPT_PER_LIST && roll < 6 {
        let item = on_list[rng.below(on_list.len() as u64) as usize];
        mine.retain(|(list, kept)| !(*list == list_index && *kept == item));
        return json!({"kind": "remove_item", "item": item});
    }
    if on_list.is_empty() || roll < 6 {
        let item = Uuid::from_u64_pair(rng.next_u64(), rng.next_u64());
        mine.push((list_index, item));
        return json!({"kind": "add_item", "text": format!("w{writer}-{number}"),
                      "after": null, "item": item});
    }
    let item = on_list[rng.below(on_list.len() as u64) as usize];
    if roll < 8 {
        json!({"kind": "edit_item", "item": item, "text": format!("w{writer}-{number}-edited")})
    } else {
        json!({"kind": "set_done", "item": item, "done": roll == 8})
    }
}

/// One voter: `votes_per_voter` votes on distinct items, each after a random wait.
async fn vote(
    spec: LoadSpec,
    nodes: Nodes,
    lists: Lists,
    token: String,
    (voter, stop_at): (usize, Instant),
) -> Vec<OpRecord> {
    let mut rng = Rng::new(spec.seed ^ (0x564F_0000_0000 + voter as u64));
    let mut items = lists.poll_items.clone();
    let mut node = voter % nodes.count();
    let mut records = Vec::new();
    let slice_ms = spec.duration.as_millis() as u64 / spec.votes_per_voter.max(1) as u64;
    for _ in 0..spec.votes_per_voter.min(items.len()) {
        tokio::time::sleep(Duration::from_millis(rng.below(slice_ms.max(1)))).await;
        if Instant::now() >= stop_at {
            break;
        }
        let item = items.swap_remove(rng.below(items.len() as u64) as usize);
        let op = json!({"kind": "vote", "item": item});
        let (record, now_at) = nodes.op(&token, lists.poll(), op, node).await;
        node = now_at;
        records.push(record);
    }
    records
}
