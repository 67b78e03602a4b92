//! Activating a list: one activation per slot, in its own task (a request cancelled while it
//! waits cannot abandon it half done). It settles the list's history first (another node's
//! accepted ops, this node's predecessor append), then loads within the activation timeout.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use listwire_gateway::EdgeError;
use ractor::{Actor, ActorRef};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::slot::Slot;
use super::{ActorUnavailable, Host};
use crate::list::{ListActor, ListArgs, ListMsg};
use crate::metrics as m;

impl Host {
    /// The actor of `slot`, starting its activation if this is the first request for it.
    pub(super) async fn actor_of(
        &self,
        list: Uuid,
        slot: &Arc<Slot>,
    ) -> Result<ActorRef<ListMsg>, ActorUnavailable> {
        if !slot.activation_started.swap(true, Ordering::AcqRel) {
            let host = self.clone();
            let slot = slot.clone();
            tokio::spawn(async move {
                let outcome = host.activate(list, &slot).await;
                slot.activation.send_replace(Some(outcome));
                host.handoff_if_requested(list, &slot);
            });
        }
        let mut activation = slot.activation.subscribe();
        let outcome = activation
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ActorUnavailable::Retired)?;
        match &*outcome {
            Some(Ok(actor)) => Ok(actor.clone()),
            Some(Err(error)) => Err(ActorUnavailable::Failed(error.clone())),
            None => Err(ActorUnavailable::Retired),
        }
    }

    /// Activates `list` in `slot`: waits for a predecessor's append and an activation permit
    /// (both within the activation timeout), then spawns the actor, which loads the list.
    /// On failure the slot is retired, so the next request gets a fresh one.
    async fn activate(&self, list: Uuid, slot: &Arc<Slot>) -> Result<ActorRef<ListMsg>, EdgeError> {
        let prepared = async {
            if let Some(previous) = &slot.predecessor {
                // The previous actor died with an append in flight; only once the store has
                // answered it is the list's history settled.
                self.await_predecessor(list, previous).await?;
            }
            let timeout = self.inner.context.config.activation_timeout;
            let permit = match tokio::time::timeout(timeout, self.inner.activations.acquire()).await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(EdgeError::unavailable("node is shutting down")),
                Err(_) => return Err(EdgeError::unavailable("too many lists loading; retry")),
            };
            // Another node may have held the list until now (bounded wait; see `Ownership`).
            // Last before the load, so nothing that node accepts after it answers is missed.
            self.inner.ownership.settle(list).await;
            Ok(permit)
        };
        let _permit = match prepared.await {
            Ok(permit) => permit,
            Err(error) => {
                self.inner.retire(list, slot);
                return Err(error);
            }
        };
        let args = ListArgs {
            list_id: list,
            context: self.inner.context.clone(),
            slot: slot.clone(),
        };
        let started = tokio::time::Instant::now();
        match Actor::spawn(None, ListActor, args).await {
            Ok((actor, _join)) => {
                m::activations().increment(1);
                m::activation_seconds().record(started.elapsed().as_secs_f64());
                Ok(actor)
            }
            Err(error) => {
                tracing::warn!(list_id = %list, %error, "list activation failed");
                self.inner.retire(list, slot);
                Err(EdgeError::unavailable("list could not be loaded; retry"))
            }
        }
    }

    /// Waits (within the activation timeout) for the append a stopped actor of `list` left in
    /// flight. On timeout the caller retires the slot; the append stays recorded for the next
    /// try.
    async fn await_predecessor(
        &self,
        list: Uuid,
        previous: &Arc<Semaphore>,
    ) -> Result<(), EdgeError> {
        let timeout = self.inner.context.config.activation_timeout;
        match tokio::time::timeout(timeout, previous.acquire()).await {
            Ok(Ok(_settled)) => {
                let _slots = self.inner.slots_lock();
                let mut draining = self.inner.draining_lock();
                if draining
                    .get(&list)
                    .is_some_and(|recorded| Arc::ptr_eq(recorded, previous))
                {
                    draining.remove(&list);
                }
                Ok(())
            }
            _ => Err(EdgeError::unavailable(
                "list is still settling an earlier write; retry",
            )),
        }
    }
}
