//! The read side of a list actor: subscriptions (catch-up then live frames), catch-ups for a
//! gateway node's users, and snapshot reads. All see only the durable state.

use bytes::Bytes;
use listwire_gateway::{EdgeError, ErrorCode};
use uuid::Uuid;

use super::actor_state::ListActorState;
use super::fanout::CatchUp;
use super::node_sink::SubscriberSink;
use super::{frames, SubscribeRequest};
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
            tracing::warn!(list = %self.list, %error, "head check failed");
            EdgeError::unavailable("storage unavailable; retry")
        })?;
        if head <= self.durable.seq() {
            return Ok(());
        }
        m::stale_reads().increment(1);
        tracing::warn!(list = %self.list, since, head, durable = self.durable.seq(), "a follower is ahead of this owner; reloading");
        let moved = EdgeError::new(
            ErrorCode::Moved,
            "this node's copy of the list is behind; retry",
        );
        self.abort(moved.clone());
        Err(moved)
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
