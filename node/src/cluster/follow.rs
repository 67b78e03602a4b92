//! List follows: a gateway node subscribes once per list at the list's owner and fans the
//! owner's frames out to its own connections.
//!
//! One task per followed list (`follow_task`) owns everything about it, so events are handled
//! in one order: its local followers (connection, user, last seq queued to it), the node
//! subscription at the owner (local or remote) and `forwarded`, the last seq it received. A
//! new follower is caught up by the owner (which also authorizes the user) before it gets live
//! frames; frames it already has are skipped, and a delta that does not start right after a
//! follower's last seq ends that follower's subscription (it resubscribes with `since`) rather
//! than giving it events twice. When the owner ends the subscription (handoff, crash,
//! restart), the task resubscribes at the owner of the moment with `since = forwarded`, so
//! followers see no gap and no duplicate and never reconnect. When the view names another
//! owner first, the task keeps the old subscription for [`HANDOFF_GRACE`]: the old owner is
//! flushing what it accepted, and those frames come only from it. Who may read the list comes
//! with the subscription's start and with every frame that changed it, from the very copy
//! that sent the frames: the task ends its followers who lost access right there. The task
//! ends when its last follower leaves.
//!
//! This file is the API the router uses; an unsubscribe is never lost (it is recorded in a set
//! the task drains, not queued behind subscribes), and a subscribe that times out is never
//! attached behind its caller's back (the caller and the task race for one claim).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use listwire_gateway::{EdgeError, ErrorCode, FrameSink, Principal};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::follow_task::Follow;
use super::owners::Owners;

/// Subscribes queued per followed list.
pub(super) const COMMANDS_MAX: usize = 1024;
/// How long a follow keeps its node subscription at a list's old owner after the view names
/// a new one: a handing-off owner flushes what it accepted and then ends the subscription
/// (`moved`); this bounds the wait when it never does (it missed the view change).
pub const HANDOFF_GRACE: Duration = Duration::from_secs(2);

pub(super) enum Command {
    Attach(Attach),
    /// Look at the detached set now.
    Wake,
}

/// A subscribe on its way to the follow.
pub(super) struct Attach {
    pub user: Uuid,
    pub since: Option<u64>,
    pub sink: FrameSink,
    pub reply: oneshot::Sender<Result<(), EdgeError>>,
    /// Taken by whoever comes first: the follow, when it is about to queue frames to the
    /// connection (the caller then waits for its answer), or the caller, when it gives up (the
    /// follow then drops the subscribe).
    pub claim: Arc<AtomicBool>,
}

/// Connections that unsubscribed, waiting for the follow to drop them.
pub(super) type Detached = Arc<Mutex<HashSet<u64>>>;

pub(super) struct Entry {
    commands: flume::Sender<Command>,
    detached: Detached,
}

/// Every list this node follows for its connections.
pub struct Follows {
    pub(super) owners: Arc<Owners>,
    lists: Mutex<HashMap<Uuid, Entry>>,
    /// How long a follower may wait to be attached, and a follow to find its owner again.
    pub(super) timeout: Duration,
}

impl Follows {
    /// Follows over `owners`.
    pub fn new(owners: Arc<Owners>, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            owners,
            lists: Mutex::new(HashMap::new()),
            timeout,
        })
    }

    /// Attaches connection `sink` of `principal` to `list`: catch-up frames from `since`, then
    /// every later frame. Answers within the follow timeout, unless the follow has begun
    /// queuing the catch-up to the connection (then it answers right after).
    pub async fn subscribe(
        self: &Arc<Self>,
        principal: &Principal,
        list: Uuid,
        since: Option<u64>,
        sink: FrameSink,
    ) -> Result<(), EdgeError> {
        let deadline = Instant::now() + self.timeout;
        for _attempt in 0..3 {
            let (reply, mut answer) = oneshot::channel();
            let claim = Arc::new(AtomicBool::new(false));
            let attach = Attach {
                user: principal.user_id,
                since,
                sink: sink.clone(),
                reply,
                claim: claim.clone(),
            };
            let commands = match self.enqueue(list, Command::Attach(attach), deadline).await {
                Ok(commands) => commands,
                Err(Enqueue::Ended(commands)) => {
                    // The follow ended just now; start another.
                    self.forget(list, &commands);
                    continue;
                }
                Err(Enqueue::TimedOut) => {
                    return Err(EdgeError::new(ErrorCode::Busy, "list is busy; retry"))
                }
            };
            return match tokio::time::timeout_at(deadline, &mut answer).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => {
                    // The follow ended before it read the command; start another.
                    self.forget(list, &commands);
                    continue;
                }
                Err(_) if claim.swap(true, Ordering::AcqRel) => {
                    // The follow is queuing the catch-up right now; its answer is immediate.
                    answer.await.unwrap_or_else(|_| {
                        Err(EdgeError::unavailable("list follow is restarting; retry"))
                    })
                }
                Err(_) => Err(EdgeError::unavailable("list did not answer in time; retry")),
            };
        }
        Err(EdgeError::unavailable("list follow is restarting; retry"))
    }

    /// Detaches connection `connection_id` from `list`. Idempotent, and never waits: the
    /// connection is recorded for the follow, which drops it before anything else it does.
    pub async fn unsubscribe(&self, list: Uuid, connection_id: u64) {
        let lists = self.lock();
        if let Some(entry) = lists.get(&list) {
            lock(&entry.detached).insert(connection_id);
            // A full queue means the follow wakes soon anyway.
            let _ = entry.commands.try_send(Command::Wake);
        }
    }

    /// How many lists this node follows.
    pub fn followed(&self) -> usize {
        self.lock().len()
    }

    /// Queues `command` at the follow of `list`, starting the follow (with the command already
    /// queued, so it cannot retire before reading it) if there is none.
    async fn enqueue(
        self: &Arc<Self>,
        list: Uuid,
        command: Command,
        deadline: Instant,
    ) -> Result<flume::Sender<Command>, Enqueue> {
        let existing = {
            let mut lists = self.lock();
            match lists.get(&list) {
                Some(entry) => entry.commands.clone(),
                None => {
                    let (tx, rx) = flume::bounded(COMMANDS_MAX);
                    if tx.try_send(command).is_err() {
                        // A fresh queue has room; this only fails if flume's contract changed.
                        return Err(Enqueue::Ended(tx));
                    }
                    let detached = Detached::default();
                    let entry = Entry {
                        commands: tx.clone(),
                        detached: detached.clone(),
                    };
                    lists.insert(list, entry);
                    metrics::gauge!(super::metrics::FOLLOWED_LISTS).set(lists.len() as f64);
                    let follow = Follow::new(list, self.clone(), detached);
                    tokio::spawn(follow.run(rx, tx.clone()));
                    return Ok(tx);
                }
            }
        };
        match tokio::time::timeout_at(deadline, existing.send_async(command)).await {
            Ok(Ok(())) => Ok(existing),
            Ok(Err(_)) => Err(Enqueue::Ended(existing)),
            Err(_) => Err(Enqueue::TimedOut),
        }
    }

    /// Removes the follow of `list` if `commands` is still its queue.
    pub(super) fn forget(&self, list: Uuid, commands: &flume::Sender<Command>) {
        let mut lists = self.lock();
        if lists
            .get(&list)
            .is_some_and(|current| current.commands.same_channel(commands))
        {
            lists.remove(&list);
            metrics::gauge!(super::metrics::FOLLOWED_LISTS).set(lists.len() as f64);
        }
    }

    /// Removes the follow of `list` if `commands` is its queue and nothing waits in it or in
    /// its detached set; true if it was removed (the follow may end).
    pub(super) fn retire(&self, list: Uuid, commands: &flume::Sender<Command>) -> bool {
        let mut lists = self.lock();
        let Some(entry) = lists.get(&list) else {
            return true;
        };
        if !entry.commands.same_channel(commands) {
            return true;
        }
        if !commands.is_empty() {
            return false;
        }
        lists.remove(&list);
        metrics::gauge!(super::metrics::FOLLOWED_LISTS).set(lists.len() as f64);
        true
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        lock(&self.lists)
    }
}

impl Entry {
    /// Whether its queue is full (for tests).
    #[cfg(test)]
    pub(super) fn is_full(&self) -> bool {
        self.commands.is_full()
    }
}

/// Why a command could not be queued.
enum Enqueue {
    /// The follow ended; its queue is returned so it can be forgotten.
    Ended(flume::Sender<Command>),
    /// The queue stayed full until the deadline.
    TimedOut,
}

/// Locks `mutex`, whose data stays consistent across a panic (single inserts and removes).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
