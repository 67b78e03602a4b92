//! The read side of a list actor: subscriptions (catch-up then live frames), catch-ups for a
//! gateway node's users, and snapshot reads. All see only the durable state.

use bytes::Bytes;
use listwire_gateway::{EdgeError, ErrorCode};
use listwire_storage::mutants::{self, Mutant};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::actor_state::ListActorState;
use super::fanout::CatchUp;
use super::node_sink::SubscriberSink;
use super::{frames, ListMsg, SubscribeRequest};
use crate::domain::ListState;
use crate::metrics as m;

impl ListActorState {
    pub(super) async fn on_subscribe(&mut self, request: SubscribeRequest) {
        let SubscribeRequest {
            sink,
            since,
            reply,
            admitted,
        } = request;
        if reply.is_closed() {
            // The caller timed out and told the client it is not subscribed; keep it so.
            return;
        }
        let key = sink.key();
        let answer = self.subscribe(sink, since).await;
        let subscribed = answer.is_ok();
        if reply.send(answer).is_err() && subscribed {
            // The caller gave up meanwhile and told the client it is not subscribed: undo it,
            // or frames would flow to a connection that does not expect them.
            self.fanout.remove(key);
        }
        drop(admitted);
    }

    async fn subscribe(
        &mut self,
        sink: SubscriberSink,
        since: Option<u64>,
    ) -> Result<(), EdgeError> {
        match sink.user() {
            Some(user) => self.authorize_read(user)?,
            None => self.require_exists()?,
        }
        self.check_not_behind(since).await?;
        let list = self.list;
        let durable = &self.durable;
        let cache = &mut self.snapshot_cache;
        let queued = self.fanout.subscribe(sink, since, durable, || {
            frames::snapshot(list, durable.seq(), &cached_state(cache, durable))
        });
        if queued {
            Ok(())
        } else {
            Err(EdgeError::unavailable("connection closed"))
        }
    }

    /// The frames that bring `user` from `since` to the durable state, and the seq they reach.
    pub(super) async fn catch_up_for(
        &mut self,
        user: Uuid,
        since: Option<u64>,
    ) -> Result<(CatchUp, u64), EdgeError> {
        self.authorize_read(user)?;
        self.check_not_behind(since).await?;
        let list = self.list;
        let durable = &self.durable;
        let cache = &mut self.snapshot_cache;
        let catch_up = self.fanout.catch_up(since, durable, || {
            frames::snapshot(list, durable.seq(), &cached_state(cache, durable))
        });
        Ok((catch_up, durable.seq()))
    }

    /// A follower that already has events past this actor's durable state saw a newer owner
    /// of the list: if the store holds more than this actor, it is a stale owner and stops
    /// (answering `moved`, so the follower retries and the next activation loads afresh).
    /// Otherwise the `since` is simply wrong and the follower gets a snapshot.
    async fn check_not_behind(&mut self, since: Option<u64>) -> Result<(), EdgeError> {
        let Some(since) = since else { return Ok(()) };
        if since <= self.durable.seq() {
            return Ok(());
        }
        let head = self.context.events.head(self.list).await.map_err(|error| {
            tracing::warn!(list_id = %self.list, %error, "head check failed");
            EdgeError::unavailable("storage unavailable; retry")
        })?;
        if head <= self.durable.seq() {
            return Ok(());
        }
        m::stale_reads().increment(1);
        tracing::warn!(list_id = %self.list, since, head, durable = self.durable.seq(), "a follower is ahead of this owner; reloading");
        let moved = EdgeError::new(
            ErrorCode::Moved,
            "this node's copy of the list is behind; retry",
        );
        self.abort(moved.clone());
        Err(moved)
    }

    /// Starts the timer of this copy's head rechecks (`HostConfig::head_rechecks`), if any.
    pub(super) fn schedule_head_rechecks(&self) -> Option<JoinHandle<()>> {
        let delays = self.context.config.head_rechecks.clone();
        if delays.is_empty() || mutants::active(Mutant::StaleOwnerServes) {
            return None;
        }
        let myself = self.myself.clone();
        Some(tokio::spawn(async move {
            let loaded = tokio::time::Instant::now();
            for delay in delays {
                tokio::time::sleep_until(loaded + delay).await;
                if myself.send_message(ListMsg::RecheckHead).is_err() {
                    return;
                }
            }
        }))
    }

    /// Reads the store's head in the background (the actor keeps serving meanwhile).
    pub(super) fn recheck_head(&mut self) {
        if self.head_rechecks.is_none() || self.stopping.is_some() {
            return;
        }
        let store = self.context.events.clone();
        let list = self.list;
        let myself = self.myself.clone();
        let timeout = self.context.config.request_timeout;
        tokio::spawn(async move {
            let head = match tokio::time::timeout(timeout, store.head(list)).await {
                Ok(head) => head,
                Err(_) => return,
            };
            let _ = myself.send_message(ListMsg::HeadChecked(head));
        });
    }

    /// A copy that has written nothing yet, while the store holds more than it, missed an op
    /// the list's previous owner made durable after this copy loaded: it stops, so the next
    /// request loads the list afresh and its followers resubscribe with `since`.
    pub(super) fn head_checked(&mut self, result: Result<u64, listwire_storage::Error>) {
        if self.head_rechecks.is_none() || self.stopping.is_some() || self.has_unflushed() {
            // It wrote meanwhile (which proves it current), or its write in flight settles it.
            return;
        }
        let head = match result {
            Ok(head) => head,
            Err(error) => {
                tracing::debug!(list_id = %self.list, %error, "head recheck failed");
                return;
            }
        };
        if head <= self.durable.seq() {
            return;
        }
        m::stale_reads().increment(1);
        tracing::warn!(list_id = %self.list, head, durable = self.durable.seq(), "the store is ahead of this copy (the previous owner flushed after it loaded); reloading");
        self.abort(EdgeError::new(
            ErrorCode::Moved,
            "this node's copy of the list was behind; retry",
        ));
    }

    pub(super) fn read_snapshot(&mut self, user: Uuid) -> Result<Bytes, EdgeError> {
        self.authorize_read(user)?;
        Ok(cached_state(&mut self.snapshot_cache, &self.durable))
    }

    fn require_exists(&self) -> Result<(), EdgeError> {
        if self.durable.exists() {
            Ok(())
        } else {
            Err(EdgeError::new(ErrorCode::NotFound, "no such list"))
        }
    }

    pub(super) fn authorize_read(&self, user: Uuid) -> Result<(), EdgeError> {
        self.require_exists()?;
        if !self.durable.can_view(user) {
            return Err(EdgeError::new(
                ErrorCode::Forbidden,
                "not a member of this list",
            ));
        }
        Ok(())
    }
}
fn cached_state(cache: &mut Option<(u64, Bytes)>, durable: &ListState) -> Bytes {
    match cache {
        Some((seq, json)) if *seq == durable.seq() => json.clone(),
        _ => {
            let json = Bytes::from(durable.snapshot_json());
            *cache = Some((durable.seq(), json.clone()));
            json
        }
    }
}
