//! What the simulated clients saw, for the checkers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

/// How an op ended for its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged at this seq.
    Acked(u64),
    /// Refused for good (`conflict`, `forbidden`, ...).
    Rejected(String),
    /// Still failing with a retryable error (the code) at the client's deadline.
    GaveUp(String),
    /// An attempt got no answer at all within the node's op timeout plus a margin.
    Stuck,
}

/// One client op and everything its client learned about it.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// The op id (the same for every retry).
    pub op_id: Uuid,
    /// The list.
    pub list: Uuid,
    /// The acting user.
    pub user: Uuid,
    /// `add` or `vote`.
    pub kind: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// Every seq an attempt was acknowledged with (a duplicated submission answers twice).
    pub acks: Vec<u64>,
    /// How it ended.
    pub outcome: Outcome,
}

/// One subscriber's view of a list.
#[derive(Debug, Clone, Default)]
pub struct SubRecord {
    /// Which subscriber.
    pub index: usize,
    /// The list.
    pub list: Uuid,
    /// The last seq its frames covered.
    pub last: u64,
    /// The op id of every event delivered in a delta, by seq.
    pub events: BTreeMap<u64, Uuid>,
    /// The counts of the last tally frame, and its seq.
    pub tally: Option<(u64, BTreeMap<Uuid, u64>)>,
    /// Frames that broke contiguity (a gap, a repeat, a step back).
    pub violations: Vec<String>,
    /// Times its connection was lost (the node crashed or drained) or ended by the owner.
    pub disconnects: u32,
    /// Whether it was connected when the run ended.
    pub connected_at_end: bool,
    /// Frames received.
    pub frames: u64,
}

/// Everything the clients recorded.
#[derive(Clone, Default)]
pub struct Records {
    ops: Arc<Mutex<Vec<OpRecord>>>,
    subs: Arc<Mutex<Vec<SubRecord>>>,
    reads: Arc<Mutex<Vec<FinalRead>>>,
}

/// A read of a list through one node once the run is quiet (faults healed, clients done).
#[derive(Debug, Clone)]
pub struct FinalRead {
    /// The list.
    pub list: Uuid,
    /// The node read through.
    pub node: usize,
    /// The seq it answered with; `None` if it never answered.
    pub seq: Option<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Records {
    /// Adds a finished op.
    pub fn op(&self, record: OpRecord) {
        lock(&self.ops).push(record);
    }

    /// Adds a finished subscriber.
    pub fn sub(&self, record: SubRecord) {
        lock(&self.subs).push(record);
    }

    /// Every op so far.
    pub fn ops(&self) -> Vec<OpRecord> {
        lock(&self.ops).clone()
    }

    /// Adds a final read.
    pub fn read(&self, read: FinalRead) {
        lock(&self.reads).push(read);
    }

    /// Every final read.
    pub fn reads(&self) -> Vec<FinalRead> {
        lock(&self.reads).clone()
    }

    /// Every subscriber so far, by index.
    pub fn subs(&self) -> Vec<SubRecord> {
        let mut subs = lock(&self.subs).clone();
        subs.sort_by_key(|sub| sub.index);
        subs
    }
}
