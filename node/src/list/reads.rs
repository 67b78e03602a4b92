//! The read side of a list actor: subscriptions (catch-up then live frames) and snapshot reads.
//! Both see only the durable state.

use bytes::Bytes;
use listwire_gateway::{EdgeError, ErrorCode};
use uuid::Uuid;

use super::actor_state::ListActorState;
use super::{frames, SubscribeRequest};
use crate::domain::ListState;

impl ListActorState {
    pub(super) fn on_subscribe(&mut self, request: SubscribeRequest) {
        let SubscribeRequest {
            user,
            since,
            sink,
            reply,
            admitted,
        } = request;
        if reply.is_closed() {
            // The caller timed out and told the client it is not subscribed; keep it so.
            return;
        }
        let answer = self.authorize_read(user).and_then(|()| {
            let list = self.list;
            let durable = &self.durable;
            let cache = &mut self.snapshot_cache;
            let queued = self.fanout.subscribe(sink, user, since, durable, || {
                frames::snapshot(list, durable.seq(), &cached_state(cache, durable))
            });
            if queued {
                Ok(())
            } else {
                Err(EdgeError::unavailable("connection closed"))
            }
        });
        let _ = reply.send(answer);
        drop(admitted);
    }

    pub(super) fn read_snapshot(&mut self, user: Uuid) -> Result<Bytes, EdgeError> {
        self.authorize_read(user)?;
        Ok(cached_state(&mut self.snapshot_cache, &self.durable))
    }

    pub(super) fn authorize_read(&self, user: Uuid) -> Result<(), EdgeError> {
        if !self.durable.exists() {
            return Err(EdgeError::new(ErrorCode::NotFound, "no such list"));
        }
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
