//! Which lists this node may host: the cluster's placement decides, the host enforces.
//!
//! The host activates a list, and delivers to it, only while [`Ownership::check`] says the
//! list is owned here. When the view changes (a node joins, drains, dies, this node loses its
//! majority or was paused), [`Host::release_unowned`] hands off every active list it no longer
//! owns: the actor flushes what it accepted, snapshots, tells its subscribers the list moved
//! and leaves. Safety never depends on this (storage fences writers); it is what keeps a stale
//! owner from serving reads and what makes handoffs quick.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::oneshot;

use listwire_storage::mutants::{self, Mutant};
use uuid::Uuid;

use super::slot::Slot;
use super::Host;
use crate::list::ListMsg;

/// Who owns a list, as this node's view says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node.
    Here,
    /// Another node (its id, if there is a serving host at all).
    Elsewhere(Option<String>),
    /// This node cannot see a majority of the cluster's known hosts, so it hosts nothing: it
    /// may be on the minority side of a partition.
    NoMajority,
}

/// The cluster's answer to "may this node host this list?".
#[async_trait::async_trait]
pub trait Ownership: Send + Sync + 'static {
    /// The owner of `list` in the current view.
    fn check(&self, list: Uuid) -> Owner;

    /// Called before this node loads `list`: waits (briefly, bounded by the implementation)
    /// until a node that may have held the list until now has made durable every op it
    /// accepted, so the load sees them. A single node has nobody to wait for.
    async fn settle(&self, _list: Uuid) {}
}

/// A node alone: it owns every list.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleNode;

impl Ownership for SingleNode {
    fn check(&self, _list: Uuid) -> Owner {
        Owner::Here
    }
}

impl Host {
    /// Hands off every active (or activating) list this node no longer owns; returns those it
    /// was not already handing off, so each handoff is reported once.
    pub fn release_unowned(&self) -> Vec<Uuid> {
        if mutants::active(Mutant::StaleOwnerServes) {
            return Vec::new();
        }
        let ownership = self.inner.ownership.clone();
        self.handoff_where(|list| ownership.check(list) != Owner::Here)
    }

    /// Hands off every active list, owned or not: after a pause (the rest of the cluster may
    /// have moved them meanwhile) the next request reloads each from storage. Returns those
    /// it was not already handing off.
    pub fn release_all(&self) -> Vec<Uuid> {
        if mutants::active(Mutant::StaleOwnerServes) {
            return Vec::new();
        }
        self.handoff_where(|_| true)
    }

    /// Kills every list actor abruptly (no flush, no snapshot), as a crash of the node would:
    /// for in-process fault injection.
    pub async fn kill_all(&self) {
        for list in self.active_list_ids() {
            self.kill(list).await;
        }
    }

    /// Another node is about to load `list` (see [`Ownership::settle`]): hands the list off
    /// and waits, at most `timeout`, until every op this node accepted for it is durable (or
    /// failed). A list still activating here is waited for and handed off once it exists, so
    /// the ops admitted meanwhile are either flushed before the answer or refused `moved`
    /// (never applied after it); an append left in flight by a stopped actor must resolve too.
    pub async fn settle(&self, list: Uuid, timeout: Duration) {
        if mutants::active(Mutant::StaleOwnerServes) {
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let slot = self.inner.slots_lock().get(&list).cloned();
        if let Some(slot) = slot {
            slot.handoff_requested.store(true, Ordering::Release);
            let mut activation = slot.activation.subscribe();
            let activated = tokio::time::timeout_at(deadline, activation.wait_for(Option::is_some));
            let actor = match activated.await {
                Ok(Ok(outcome)) => match &*outcome {
                    Some(Ok(actor)) => Some(actor.clone()),
                    _ => None,
                },
                _ => None,
            };
            if let Some(actor) = actor {
                let requested = Instant::now();
                let (reply, settled) = oneshot::channel();
                let _ = actor.send_message(ListMsg::Handoff { requested });
                if actor.send_message(ListMsg::Settle { reply }).is_ok() {
                    // A dropped reply means the actor stopped; its append is then in
                    // `draining`, or still held by its slot.
                    let _ = tokio::time::timeout_at(deadline, settled).await;
                }
            }
            if slot.has_append_in_flight() {
                let _ = tokio::time::timeout_at(deadline, slot.appending.acquire()).await;
            }
        }
        let appending = self.inner.draining_lock().get(&list).cloned();
        if let Some(appending) = appending {
            let _ = tokio::time::timeout_at(deadline, appending.acquire()).await;
        }
    }

    /// The lists with an actor on this node now.
    pub fn active_list_ids(&self) -> Vec<Uuid> {
        self.inner.slots_lock().keys().copied().collect()
    }

    /// Whether `list` has an actor (or an activation under way) on this node now.
    pub fn is_active(&self, list: Uuid) -> bool {
        self.inner.slots_lock().contains_key(&list)
    }

    fn handoff_where(&self, release: impl Fn(Uuid) -> bool) -> Vec<Uuid> {
        let slots: Vec<(Uuid, Arc<Slot>)> = {
            let slots = self.inner.slots_lock();
            slots
                .iter()
                .filter(|(list, _)| release(**list))
                .map(|(list, slot)| (*list, slot.clone()))
                .collect()
        };
        let requested = Instant::now();
        let mut released = Vec::with_capacity(slots.len());
        for (list, slot) in slots {
            // Marked before the actor is looked at: an activation that finishes meanwhile sees
            // the mark (see `handoff_if_requested`), so the list is never left behind.
            if slot.handoff_requested.swap(true, Ordering::AcqRel) {
                continue;
            }
            if let Some(actor) = slot.actor() {
                let _ = actor.send_message(ListMsg::Handoff { requested });
            }
            released.push(list);
        }
        released
    }

    /// Called once an activation produced its actor: hands the list off at once if it was
    /// released while loading, or if the view no longer gives it to this node (it may have
    /// changed between the request's ownership check and the slot's creation).
    pub(super) fn handoff_if_requested(&self, list: Uuid, slot: &Slot) {
        let Some(actor) = slot.actor() else { return };
        let unowned = self.inner.ownership.check(list) != Owner::Here
            && !mutants::active(Mutant::StaleOwnerServes);
        if unowned {
            slot.handoff_requested.store(true, Ordering::Release);
        }
        if unowned || slot.handoff_requested.load(Ordering::Acquire) {
            let requested = Instant::now();
            let _ = actor.send_message(ListMsg::Handoff { requested });
        }
    }
}
