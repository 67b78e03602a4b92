//! The task of one followed list (see `follow` for what it promises).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use listwire_cluster::NodeId;
use listwire_gateway::{EdgeError, ErrorCode, FrameSink};
use listwire_storage::mutants::{self, Mutant};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::follow::{lock, Attach, Command, Detached, Follows, HANDOFF_GRACE};
use super::owners::{backoff, Source};
use super::state::Route;
use crate::list::frames;
use crate::list::node_sink::{Access, NodeItem};

/// How often a follow drops followers whose connection closed while the list was quiet.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

pub(super) struct Follower {
    pub sink: FrameSink,
    pub user: Uuid,
    pub queued_to: u64,
}

pub(super) struct Upstream {
    pub source: Source,
    /// The owner it comes from; `None` for this node.
    pub owner: Option<NodeId>,
    /// Set when the view names another owner: the subscription is dropped then, unless the
    /// old owner ends it first.
    pub superseded_at: Option<Instant>,
}

pub(super) struct Follow {
    pub list: Uuid,
    pub follows: Arc<Follows>,
    pub followers: HashMap<u64, Follower>,
    pub forwarded: Option<u64>,
    pub upstream: Option<Upstream>,
    pub epochs: watch::Receiver<u64>,
    detached: Detached,
}

impl Follow {
    pub fn new(list: Uuid, follows: Arc<Follows>, detached: Detached) -> Self {
        Follow {
            list,
            epochs: follows.owners.state.epochs(),
            follows,
            followers: HashMap::new(),
            forwarded: None,
            upstream: None,
            detached,
        }
    }

    pub async fn run(
        mut self,
        commands: flume::Receiver<Command>,
        registered: flume::Sender<Command>,
    ) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            self.drop_detached();
            if self.followers.is_empty() && self.follows.retire(self.list, &registered) {
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
                    Ok(Command::Attach(attach)) => {
                        self.drop_detached();
                        self.command(attach).await;
                    }
                    Ok(Command::Wake) => {}
                    Err(_) => return,
                },
                item = next_item(&mut self.upstream), if self.upstream.is_some() => {
                    self.item(item);
                }
                changed = self.epochs.changed() => {
                    if changed.is_ok() {
                        self.recheck_owner();
                    }
                }
                () = sleep_until(grace_ends) => {
                    tracing::debug!(list_id = %self.list, "the list's old owner kept its subscription past the grace; moving on");
                    self.upstream = None;
                }
                _ = sweep.tick() => self.followers.retain(|_, follower| !follower.sink.is_closed()),
            }
        }
    }

    /// Drops the followers whose connections unsubscribed.
    fn drop_detached(&mut self) {
        let detached: Vec<u64> = lock(&self.detached).drain().collect();
        for connection_id in detached {
            self.followers.remove(&connection_id);
        }
    }

    async fn command(&mut self, attach: Attach) {
        let Attach {
            user,
            since,
            sink,
            reply,
            claim,
        } = attach;
        if claim.load(Ordering::Acquire) {
            // The caller gave up before this was read; the client is not subscribed.
            return;
        }
        let claimed = || !claim.swap(true, Ordering::AcqRel);
        let answer = self.attach(user, since, sink, &claimed).await;
        let _ = reply.send(answer);
    }

    /// Catches `sink` up and attaches it, if `claim` (called once the catch-up is in hand)
    /// says the caller still waits: once claimed, the caller waits for this answer, so the
    /// client never gets frames for a subscribe it was told failed.
    pub async fn attach(
        &mut self,
        user: Uuid,
        since: Option<u64>,
        sink: FrameSink,
        claim: &(dyn Fn() -> bool + Send + Sync),
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
        if !claim() {
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
        let forgetful = mutants::active(Mutant::ResubscribeWithoutSince);
        let since = self.forwarded.filter(|_| !forgetful);
        let (mut source, owner) = self.follows.owners.open(self.list, since).await?;
        // The owner answers at once (it subscribes, or refuses); a silent one is given up on
        // quickly, so the follow re-routes.
        let wait = super::forward::CONNECT_TIMEOUT * 2;
        let first = tokio::time::timeout(wait, source.next()).await;
        match first {
            Ok(Some(NodeItem::Started { seq, access })) => {
                if forgetful {
                    self.forwarded = Some(seq);
                }
                self.forwarded.get_or_insert(seq);
                self.upstream = Some(Upstream {
                    source,
                    owner,
                    superseded_at: None,
                });
                // Who may read may have changed while no owner streamed to this follow.
                self.apply_access(&access);
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
    pub async fn reconnect(&mut self) -> bool {
        let give_up_at = Instant::now() + self.follows.timeout;
        let mut attempt = 0;
        // A new view may name a new owner: an attempt at the old one (say, a node that just
        // died, whose connection takes up to a second to give up) is dropped at once for it.
        let mut epochs = self.epochs.clone();
        loop {
            let connected = tokio::select! {
                connected = tokio::time::timeout_at(give_up_at, self.connect()) => Some(connected),
                _ = epochs.changed() => None,
            };
            let error = match connected {
                Some(Ok(Ok(()))) => {
                    metrics::counter!(super::metrics::FOLLOW_RESUBSCRIBES_TOTAL).increment(1);
                    return !self.followers.is_empty();
                }
                Some(Ok(Err(error))) => error,
                Some(Err(_elapsed)) => EdgeError::unavailable("the list's owner did not answer"),
                None if Instant::now() < give_up_at => continue,
                None => EdgeError::unavailable("the list's owner keeps changing"),
            };
            let wait = backoff(attempt, self.list.as_u128() as u64);
            attempt += 1;
            if !error.code.is_retryable() || Instant::now() + wait >= give_up_at {
                tracing::warn!(list_id = %self.list, %error, "list follow lost its owner; ending its subscriptions");
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

    pub fn item(&mut self, item: Option<NodeItem>) {
        match item {
            Some(NodeItem::Frame {
                from,
                seq,
                snapshot,
                access,
                frame,
            }) => {
                if !snapshot && self.forwarded.is_some_and(|forwarded| seq <= forwarded) {
                    return;
                }
                self.forwarded = Some(self.forwarded.map_or(seq, |forwarded| forwarded.max(seq)));
                let list = self.list;
                let received = std::time::Instant::now();
                self.followers.retain(|_, follower| {
                    if follower.queued_to >= seq {
                        return true;
                    }
                    let straddles = from.is_some_and(|from| from != follower.queued_to + 1);
                    if straddles && !mutants::active(Mutant::ResubscribeWithoutSince) {
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
                    follower.sink.push_at(frame.clone(), received).is_ok()
                });
                if let Some(access) = access {
                    // As the owner does for its own connections: the frame, then the end.
                    self.apply_access(&access);
                }
            }
            Some(NodeItem::Started { .. }) => {}
            Some(NodeItem::End { .. }) | None => {
                // Resubscribed by the run loop, at whoever owns the list now.
                self.upstream = None;
            }
        }
    }

    /// Ends the followers whose users `access` does not allow.
    fn apply_access(&mut self, access: &Access) {
        let list = self.list;
        self.followers.retain(|_, follower| {
            if access.allows(follower.user) {
                return true;
            }
            let frame = frames::list_error(list, "forbidden", "access to this list was revoked");
            let _ = follower.sink.end_subscription(list, frame);
            false
        });
    }

    /// Marks the subscription superseded when the view names another owner (it is dropped
    /// after [`HANDOFF_GRACE`] unless the old owner ends it first), and clears the mark when
    /// the view names its owner again.
    fn recheck_owner(&mut self) {
        let route = self.follows.owners.route(self.list);
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

pub(super) async fn next_item(upstream: &mut Option<Upstream>) -> Option<NodeItem> {
    match upstream {
        Some(upstream) => upstream.source.next().await,
        None => std::future::pending().await,
    }
}
