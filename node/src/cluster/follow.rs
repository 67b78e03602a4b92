//! List follows: a gateway node subscribes once per list at the list's owner and fans the
//! owner's frames out to its own connections.
//!
//! One task per followed list owns everything about it, so events are handled in one order:
//! its local followers (connection, user, last seq queued to it), the node subscription at the
//! owner (local or remote) and `forwarded`, the last seq it received. A new follower is caught
//! up by the owner (which also authorizes the user) before it gets live frames; frames it
//! already has are skipped, and a delta that does not start right after a follower's last seq
//! ends that follower's subscription (it resubscribes with `since`) rather than giving it
//! events twice. When the owner ends the subscription (handoff, crash, restart), the task
//! resubscribes at the owner of the moment with `since = forwarded`, so followers see no gap
//! and no duplicate and never reconnect. When the view names another owner first, the task
//! keeps the old subscription for [`HANDOFF_GRACE`]: the old owner is flushing what it
//! accepted, and those frames come only from it. A frame that changed who may read the list,
//! and every resubscribe (a revocation may have happened in between), make the task re-check
//! its users with the owner before it forwards anything more. The task ends when its last
//! follower leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use listwire_cluster::NodeId;
use listwire_gateway::{EdgeError, ErrorCode, FrameSink, Principal};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::owners::{backoff, Owners, Source};
use super::state::Route;
use crate::list::frames;
use crate::list::node_sink::NodeItem;

/// Commands queued per followed list.
const COMMANDS_MAX: usize = 1024;
/// How often a follow drops followers whose connection closed while the list was quiet.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How long a follow keeps its node subscription at a list's old owner after the view names
/// a new one: a handing-off owner flushes what it accepted and then ends the subscription
/// (`moved`); this bounds the wait when it never does (it missed the view change).
pub const HANDOFF_GRACE: Duration = Duration::from_secs(2);

enum Command {
    Attach {
        user: Uuid,
        since: Option<u64>,
        sink: FrameSink,
        reply: oneshot::Sender<Result<(), EdgeError>>,
    },
    Detach {
        connection_id: u64,
    },
}

/// Every list this node follows for its connections.
pub struct Follows {
    owners: Arc<Owners>,
    lists: Mutex<HashMap<Uuid, flume::Sender<Command>>>,
    /// How long a follower may wait to be attached, and a follow to find its owner again.
    timeout: Duration,
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
    /// every later frame. Answers within the follow timeout.
    pub async fn subscribe(
        self: &Arc<Self>,
        principal: &Principal,
        list: Uuid,
        since: Option<u64>,
        sink: FrameSink,
    ) -> Result<(), EdgeError> {
        let deadline = Instant::now() + self.timeout;
        for _attempt in 0..3 {
            let (reply, answer) = oneshot::channel();
            let attach = Command::Attach {
                user: principal.user_id,
                since,
                sink: sink.clone(),
                reply,
            };
            let commands = match self.enqueue(list, attach, deadline).await {
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
            return match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => {
                    // The follow ended before it read the command; start another.
                    self.forget(list, &commands);
                    continue;
                }
                Err(_) => Err(EdgeError::unavailable("list did not answer in time; retry")),
            };
        }
        Err(EdgeError::unavailable("list follow is restarting; retry"))
    }

    /// Detaches connection `connection_id` from `list`. Idempotent; gives up after the follow
    /// timeout (the follow's sweep drops the connection once it closes).
    pub async fn unsubscribe(&self, list: Uuid, connection_id: u64) {
        let commands = self.lock().get(&list).cloned();
        if let Some(commands) = commands {
            let detach = commands.send_async(Command::Detach { connection_id });
            if tokio::time::timeout(self.timeout, detach).await.is_err() {
                tracing::warn!(%list, connection_id, "list follow did not take an unsubscribe in time");
            }
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
                Some(commands) => commands.clone(),
                None => {
                    let (tx, rx) = flume::bounded(COMMANDS_MAX);
                    if tx.try_send(command).is_err() {
                        // A fresh queue has room; this only fails if flume's contract changed.
                        return Err(Enqueue::Ended(tx));
                    }
                    lists.insert(list, tx.clone());
                    metrics::gauge!(super::metrics::FOLLOWED_LISTS).set(lists.len() as f64);
                    let follow = Follow::new(list, self.clone());
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

    fn forget(&self, list: Uuid, commands: &flume::Sender<Command>) {
        let mut lists = self.lock();
        if lists
            .get(&list)
            .is_some_and(|current| current.same_channel(commands))
        {
            lists.remove(&list);
            metrics::gauge!(super::metrics::FOLLOWED_LISTS).set(lists.len() as f64);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, flume::Sender<Command>>> {
        self.lists
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Why a command could not be queued.
enum Enqueue {
    /// The follow ended; its queue is returned so it can be forgotten.
    Ended(flume::Sender<Command>),
    /// The queue stayed full until the deadline.
    TimedOut,
}

struct Follower {
    sink: FrameSink,
    user: Uuid,
    queued_to: u64,
}

struct Upstream {
    source: Source,
    /// The owner it comes from; `None` for this node.
    owner: Option<NodeId>,
    /// Set when the view names another owner: the subscription is dropped then, unless the
    /// old owner ends it first.
    superseded_at: Option<Instant>,
}

struct Follow {
    list: Uuid,
    follows: Arc<Follows>,
    followers: HashMap<u64, Follower>,
    forwarded: Option<u64>,
    upstream: Option<Upstream>,
    epochs: watch::Receiver<u64>,
}

impl Follow {
    fn new(list: Uuid, follows: Arc<Follows>) -> Self {
        Follow {
            list,
            epochs: follows.owners.state.epochs(),
            follows,
            followers: HashMap::new(),
            forwarded: None,
            upstream: None,
        }
    }

    async fn run(mut self, commands: flume::Receiver<Command>, registered: flume::Sender<Command>) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            if self.followers.is_empty() && commands.is_empty() && self.retire(&registered) {
                return;
            }
            if self.upstream.is_none() && !self.followers.is_empty() && !self.reconnect().await {
                continue;
            }
            let grace_ends = self
                .upstream
                .as_ref()
                .and_then(|upstream| upstream.superseded_at)
                .map(|at| at + HANDOFF_GRACE);
            tokio::select! {
                command = commands.recv_async() => match command {
                    Ok(command) => self.command(command).await,
                    Err(_) => return,
                },
                item = next_item(&mut self.upstream), if self.upstream.is_some() => {
                    self.item(item).await;
                }
                changed = self.epochs.changed() => {
                    if changed.is_ok() {
                        self.recheck_owner();
                    }
                }
                () = sleep_until(grace_ends) => {
                    tracing::debug!(list = %self.list, "the list's old owner kept its subscription past the grace; moving on");
                    self.upstream = None;
                }
                _ = sweep.tick() => self.followers.retain(|_, follower| !follower.sink.is_closed()),
            }
        }
    }

    /// Leaves the follows map if no command is waiting; true if this task may end.
    /// Commands that slip in after this (sent by a subscriber that got the sender just
    /// before) are dropped with the task; their callers see the reply dropped and retry.
    fn retire(&mut self, registered: &flume::Sender<Command>) -> bool {
        if !registered.is_empty() {
            return false;
        }
        self.follows.forget(self.list, registered);
        true
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Attach {
                user,
                since,
                sink,
                reply,
            } => {
                if reply.is_closed() {
                    // The caller gave up before this was read; the client is not subscribed.
                    return;
                }
                let connection_id = sink.connection_id();
                let answer = self.attach(user, since, sink, &|| reply.is_closed()).await;
                if let Err(Ok(())) = reply.send(answer) {
                    // The caller gave up meanwhile and told the client it is not subscribed.
                    self.followers.remove(&connection_id);
                }
            }
            Command::Detach { connection_id } => {
                self.followers.remove(&connection_id);
            }
        }
    }

    /// Catches `sink` up and attaches it, unless `caller_gone` says the caller stopped
    /// waiting (it told the client the subscription failed) by the time frames would flow.
    async fn attach(
        &mut self,
        user: Uuid,
        since: Option<u64>,
        sink: FrameSink,
        caller_gone: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<(), EdgeError> {
        if self.upstream.is_none() {
            self.connect().await?;
        }
        let connection_id = sink.connection_id();
        // A re-subscribe of the same connection continues past what it already has.
        let since = match (since, self.followers.get(&connection_id)) {
            (Some(since), Some(known)) => Some(since.max(known.queued_to)),
            (since, _) => since,
        };
        let catch_up = self.follows.owners.catch_up(self.list, user, since).await?;
        if self
            .forwarded
            .is_some_and(|forwarded| catch_up.seq < forwarded)
        {
            // The catch-up came from an owner behind what this follow already forwarded (the
            // owner changed in between): the follower would miss frames. Let it retry.
            return Err(EdgeError::unavailable("list changed owner; resubscribe"));
        }
        if caller_gone() {
            return Err(EdgeError::unavailable("the subscribe timed out"));
        }
        for (_seq, frame) in catch_up.frames {
            if sink.push(frame).is_err() {
                return Err(EdgeError::unavailable("connection closed"));
            }
        }
        let follower = Follower {
            sink,
            user,
            queued_to: catch_up.seq,
        };
        self.followers.insert(connection_id, follower);
        Ok(())
    }

    /// Subscribes at the owner of the moment, continuing after `forwarded`.
    async fn connect(&mut self) -> Result<(), EdgeError> {
        let (mut source, owner) = self.follows.owners.open(self.list, self.forwarded).await?;
        // The owner answers at once (it subscribes, or refuses); a silent one is given up on
        // quickly, so the follow re-routes.
        let wait = super::forward::CONNECT_TIMEOUT * 2;
        let first = tokio::time::timeout(wait, source.next()).await;
        match first {
            Ok(Some(NodeItem::Started { seq })) => {
                self.forwarded.get_or_insert(seq);
                self.upstream = Some(Upstream {
                    source,
                    owner,
                    superseded_at: None,
                });
                Ok(())
            }
            Ok(Some(NodeItem::End { code, message })) => Err(EdgeError::new(code, message)),
            Ok(Some(NodeItem::Frame { .. })) => Err(EdgeError::unavailable(
                "node subscription did not start properly; retry",
            )),
            Ok(None) | Err(_) => Err(EdgeError::unavailable(
                "the list's node did not answer the subscription; retry",
            )),
        }
    }

    /// Resubscribes with backoff until it works; after the follow timeout (or a definite
    /// error) it ends every follower so clients resubscribe. Returns whether it connected.
    async fn reconnect(&mut self) -> bool {
        let give_up_at = Instant::now() + self.follows.timeout;
        let mut attempt = 0;
        // A new view may name a new owner: an attempt at the old one (say, a node that just
        // died, whose connection takes up to a second to give up) is dropped at once for it.
        let mut epochs = self.epochs.clone();
        loop {
            let connected = tokio::select! {
                connected = self.connect() => Some(connected),
                _ = epochs.changed() => None,
            };
            let Some(connected) = connected else {
                continue;
            };
            let error = match connected {
                Ok(()) => {
                    metrics::counter!(super::metrics::FOLLOW_RESUBSCRIBES_TOTAL).increment(1);
                    // Who may read may have changed while no owner streamed to this follow;
                    // the catch-up frames do not say so.
                    self.reauthorize().await;
                    return !self.followers.is_empty();
                }
                Err(error) => error,
            };
            let wait = backoff(attempt, self.list.as_u128() as u64);
            attempt += 1;
            if !error.code.is_retryable() || Instant::now() + wait >= give_up_at {
                tracing::warn!(list = %self.list, %error, "list follow lost its owner; ending its subscriptions");
                self.end_all(
                    ErrorCode::Unavailable,
                    "list unavailable; resubscribe with since",
                );
                return false;
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = epochs.changed() => {}
            }
        }
    }

    async fn item(&mut self, item: Option<NodeItem>) {
        match item {
            Some(NodeItem::Frame {
                from,
                seq,
                snapshot,
                access_changed,
                frame,
            }) => {
                if !snapshot && self.forwarded.is_some_and(|forwarded| seq <= forwarded) {
                    return;
                }
                self.forwarded = Some(self.forwarded.map_or(seq, |forwarded| forwarded.max(seq)));
                let list = self.list;
                self.followers.retain(|_, follower| {
                    if follower.queued_to >= seq {
                        return true;
                    }
                    if from.is_some_and(|from| from != follower.queued_to + 1) {
                        // A delta straddling what this follower has (it was caught up to a seq
                        // inside it): it would see events twice. Let it resubscribe.
                        let frame = frames::list_error(
                            list,
                            ErrorCode::Unavailable.as_str(),
                            "list changed owner; resubscribe with since",
                        );
                        let _ = follower.sink.end_subscription(list, frame);
                        return false;
                    }
                    follower.queued_to = seq;
                    follower.sink.push(frame.clone()).is_ok()
                });
                if access_changed {
                    self.reauthorize().await;
                }
            }
            Some(NodeItem::Started { .. }) => {}
            Some(NodeItem::End { .. }) | None => {
                // Resubscribed by the run loop, at whoever owns the list now.
                self.upstream = None;
            }
        }
    }

    /// Ends the followers whose users may no longer read the list.
    async fn reauthorize(&mut self) {
        let mut users: Vec<Uuid> = self.followers.values().map(|f| f.user).collect();
        users.sort();
        users.dedup();
        for attempt in 0..3 {
            match self
                .follows
                .owners
                .authorize(self.list, users.clone())
                .await
            {
                Ok(allowed) => {
                    let list = self.list;
                    self.followers.retain(|_, follower| {
                        if allowed.contains(&follower.user) {
                            return true;
                        }
                        let frame = frames::list_error(
                            list,
                            "forbidden",
                            "access to this list was revoked",
                        );
                        let _ = follower.sink.end_subscription(list, frame);
                        false
                    });
                    return;
                }
                Err(error) => {
                    tracing::debug!(list = %self.list, %error, "re-checking access failed");
                    tokio::time::sleep(backoff(attempt, 0)).await;
                }
            }
        }
        // Access changed and cannot be checked: stop rather than keep serving the unchecked.
        self.end_all(
            ErrorCode::Unavailable,
            "could not re-check access; resubscribe",
        );
    }

    /// Marks the subscription superseded when the view names another owner (it is dropped
    /// after [`HANDOFF_GRACE`] unless the old owner ends it first), and clears the mark when
    /// the view names its owner again.
    fn recheck_owner(&mut self) {
        let route = self.follows.owners.state.route(self.list);
        let Some(upstream) = &mut self.upstream else {
            return;
        };
        let moved = match route {
            Route::Local => upstream.owner.is_some(),
            Route::Remote { node, .. } => upstream.owner.as_ref() != Some(&node),
            // Nobody to move to: keep the current one until it ends.
            Route::Nowhere(_) => false,
        };
        if !moved {
            upstream.superseded_at = None;
        } else if upstream.superseded_at.is_none() {
            upstream.superseded_at = Some(Instant::now());
        }
    }

    fn end_all(&mut self, code: ErrorCode, message: &str) {
        for (_, follower) in self.followers.drain() {
            let frame = frames::list_error(self.list, code.as_str(), message);
            let _ = follower.sink.end_subscription(self.list, frame);
        }
        self.upstream = None;
    }
}

/// Resolves at `at`; never if there is none.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_item(upstream: &mut Option<Upstream>) -> Option<NodeItem> {
    match upstream {
        Some(upstream) => upstream.source.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
