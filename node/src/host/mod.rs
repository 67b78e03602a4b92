//! The host: which list actors are active on this node, activation on first use, admission
//! control, and the passivation handshake.
//!
//! `slot` holds what the host keeps per active list.
//!
//! Each active list has a [`Slot`]: an in-flight counter (admission control, since ractor
//! mailboxes are unbounded) and the actor, spawned once. The counter is incremented under the
//! host lock before a message is sent, and an actor may only leave the map (passivate) when the
//! counter is zero, checked under the same lock; so no message is ever sent to an actor that
//! has decided to stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use listwire_gateway::{EdgeError, ErrorCode};
use listwire_storage::mutants::{self, Mutant};
use listwire_storage::{AccountStore, EventStore};
use ractor::{ActorRef, MessagingErr};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::clock::{Clock, MonotonicClock};
use crate::domain::Limits;
use crate::list::ListMsg;

mod activation;
mod ownership;
mod slot;
use crate::metrics as m;
pub use ownership::{Owner, Ownership, SingleNode};
pub use slot::{Admitted, AppendGuard, ListLoad, Slot};

/// Settings of the host and its list actors.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Domain limits.
    pub limits: Limits,
    /// Snapshot every this many events.
    pub snapshot_every: u64,
    /// Idle time after which a list without subscribers passivates.
    pub passivate_after: Duration,
    /// Minimum interval between vote frames of a hot poll.
    pub tally_interval: Duration,
    /// Admitted-but-unanswered messages per list before `busy`.
    pub list_inflight_max: usize,
    /// Active actors per node before `busy`.
    pub lists_active_max: usize,
    /// Concurrent activations per node.
    pub activations_concurrent_max: usize,
    /// Recent events kept per list for `since` resume.
    pub resume_events_max: usize,
    /// Most bytes of events in one stored batch; later pending events form the next batch.
    /// Keeps every append far below what a backend accepts in one write (ScyllaDB refuses
    /// mutations over half a commitlog segment).
    pub batch_bytes_max: usize,
    /// Longest a list activation (waiting for a predecessor's append, then loading) may take.
    pub activation_timeout: Duration,
    /// Longest the router waits for a list actor to answer a read, subscription or create.
    pub request_timeout: Duration,
    /// The clock list actors stamp events with (see `clock`).
    pub clock: Arc<dyn Clock>,
    /// When (after loading) a list actor compares its copy with the store's head, until its
    /// first write: in a cluster, the list's previous owner may still have been flushing an
    /// accepted op when this node loaded it. Empty on a single node.
    pub head_rechecks: Vec<Duration>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            snapshot_every: 1000,
            passivate_after: Duration::from_secs(300),
            tally_interval: Duration::from_millis(100),
            list_inflight_max: 8192,
            lists_active_max: 100_000,
            activations_concurrent_max: 64,
            resume_events_max: 4096,
            batch_bytes_max: 1 << 20,
            activation_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            clock: Arc::new(MonotonicClock::new()),
            head_rechecks: Vec::new(),
        }
    }
}

/// What a list actor needs from its surroundings.
pub struct ListContext {
    /// Event batches and snapshots.
    pub events: Arc<dyn EventStore>,
    /// Accounts and the user → lists index.
    pub accounts: Arc<dyn AccountStore>,
    /// Settings.
    pub config: HostConfig,
    /// Metric handles of the op path.
    pub metrics: m::ListMetrics,
    host: Weak<HostInner>,
}

impl ListContext {
    /// Releases `slot` for `list` if nothing is in flight; true if the actor may now stop.
    pub fn try_release(&self, list: Uuid, slot: &Arc<Slot>) -> bool {
        match self.host.upgrade() {
            Some(host) => host.try_release(list, slot),
            None => true,
        }
    }

    /// Forgets `slot` unconditionally (the actor is stopping after an error).
    pub fn forget(&self, list: Uuid, slot: &Arc<Slot>) {
        if let Some(host) = self.host.upgrade() {
            host.forget(list, slot);
        }
    }
}

/// Why no actor could be had from a slot.
enum ActorUnavailable {
    /// The slot went away under the request; admit again to get a fresh one.
    Retired,
    /// Activation failed.
    Failed(EdgeError),
}

struct HostInner {
    slots: Mutex<HashMap<Uuid, Arc<Slot>>>,
    /// Appends still in flight of list actors that stopped; taken by the list's next slot.
    /// Locked only while `slots` is held (lock order: `slots`, then `draining`).
    draining: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    context: Arc<ListContext>,
    activations: Semaphore,
    shutting_down: AtomicBool,
    ownership: Arc<dyn Ownership>,
}

/// Cheap-to-clone handle to the host.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

/// Whether a message may activate an inactive list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Activate the list if it is not active.
    Activate,
    /// Deliver only to an active list; otherwise drop the message.
    IfActive,
}

impl Host {
    /// A host over the given stores that owns every list (a single node).
    pub fn new(
        events: Arc<dyn EventStore>,
        accounts: Arc<dyn AccountStore>,
        config: HostConfig,
    ) -> Self {
        Self::with_ownership(events, accounts, config, Arc::new(SingleNode))
    }

    /// A host over the given stores that hosts only the lists `ownership` gives it.
    pub fn with_ownership(
        events: Arc<dyn EventStore>,
        accounts: Arc<dyn AccountStore>,
        config: HostConfig,
        ownership: Arc<dyn Ownership>,
    ) -> Self {
        let activations = Semaphore::new(config.activations_concurrent_max);
        let inner = Arc::new_cyclic(|weak| HostInner {
            slots: Mutex::new(HashMap::new()),
            draining: Mutex::new(HashMap::new()),
            context: Arc::new(ListContext {
                events,
                accounts,
                config,
                metrics: m::ListMetrics::new(),
                host: weak.clone(),
            }),
            activations,
            shutting_down: AtomicBool::new(false),
            ownership,
        });
        Self { inner }
    }

    /// The shared context (stores and settings).
    pub fn context(&self) -> &Arc<ListContext> {
        &self.inner.context
    }

    /// The `limit` busiest active lists on this node: the highest average rate of admitted
    /// messages since each was activated first, so a list that turned hot a minute ago ranks
    /// above a long-lived one with a larger lifetime count. The slots lock, which every
    /// admission takes, is held only to copy the slots' handles out.
    pub fn busiest(&self, limit: usize) -> Vec<ListLoad> {
        let slots: Vec<(Uuid, Arc<Slot>)> = {
            let slots = self.inner.slots_lock();
            slots
                .iter()
                .map(|(list, slot)| (*list, Arc::clone(slot)))
                .collect()
        };
        let mut loads: Vec<ListLoad> = slots
            .iter()
            .map(|(list, slot)| ListLoad::of(*list, slot))
            .collect();
        let rate = |load: &ListLoad| load.admitted as f64 / load.active_secs.max(1) as f64;
        loads.sort_unstable_by(|a, b| rate(b).total_cmp(&rate(a)).then(a.list.cmp(&b.list)));
        loads.truncate(limit);
        loads
    }

    /// Number of active lists.
    pub fn active_lists(&self) -> usize {
        self.inner.slots_lock().len()
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Sends `message` to the actor of `list`, activating it if needed and allowed. On refusal the
    /// message is handed back with the error, so the caller can answer its reply.
    pub async fn dispatch(
        &self,
        list: Uuid,
        mut message: ListMsg,
        activation: Activation,
    ) -> Result<(), (EdgeError, ListMsg)> {
        for _attempt in 0..3 {
            if self.is_shutting_down() {
                return Err((EdgeError::unavailable("node is shutting down"), message));
            }
            if !message.is_control() {
                if let Err(refusal) = self.owned_here(list) {
                    return Err((refusal, message));
                }
            }
            let wanted = message.admission_count();
            let admission = self
                .inner
                .admit(list, activation, message.is_control(), wanted);
            let (slot, admitted) = match admission {
                Ok(Some(admission)) => admission,
                Ok(None) => return Ok(()),
                Err(error) => return Err((error, message)),
            };
            if admitted.count() < wanted {
                // A batch larger than the room left: the ops beyond it are refused, as each
                // would have been alone.
                message.refuse_beyond(admitted.count(), overloaded());
            }
            message.set_admitted(admitted);
            let actor = match self.actor_of(list, &slot).await {
                Ok(actor) => actor,
                Err(ActorUnavailable::Retired) => continue,
                Err(ActorUnavailable::Failed(error)) => return Err((error, message)),
            };
            match actor.send_message(message) {
                Ok(()) => return Ok(()),
                Err(MessagingErr::SendErr(returned)) => {
                    // The actor died (a broken invariant or a storage failure stopped it).
                    self.inner.forget(list, &slot);
                    message = returned;
                }
                // Any other send error consumed the message; its reply answers `unavailable`
                // when dropped, so the client retries.
                Err(_) => return Ok(()),
            }
        }
        Err((EdgeError::unavailable("list is restarting; retry"), message))
    }

    /// `Ok` if this node owns `list`; otherwise the refusal the caller retries elsewhere.
    fn owned_here(&self, list: Uuid) -> Result<(), EdgeError> {
        if mutants::active(Mutant::StaleOwnerServes) && self.is_active(list) {
            return Ok(());
        }
        match self.inner.ownership.check(list) {
            Owner::Here => Ok(()),
            Owner::Elsewhere(owner) => {
                m::not_owner_refusals().increment(1);
                let owner = owner.unwrap_or_else(|| "no serving node".to_owned());
                Err(EdgeError::new(
                    ErrorCode::Moved,
                    format!("list is owned by {owner}; retry"),
                ))
            }
            Owner::NoMajority => Err(EdgeError::unavailable(
                "this node cannot see a majority of the cluster; retry",
            )),
        }
    }

    /// Kills the actor of `list` abruptly, as a crash of that actor would (no flush, no final
    /// snapshot, `post_stop` does not run), and waits until it is gone. Fault injection for
    /// tests and the simulation; returns whether the list had a running actor.
    pub async fn kill(&self, list: Uuid) -> bool {
        let actor = {
            let slots = self.inner.slots_lock();
            slots.get(&list).and_then(|slot| slot.actor())
        };
        let Some(actor) = actor else {
            return false;
        };
        let _ = actor.kill_and_wait(Some(Duration::from_secs(5))).await;
        true
    }

    /// Flushes and stops every list actor (each writes a snapshot), waiting at most `timeout`.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let actors: Vec<ActorRef<ListMsg>> = {
            let slots = self.inner.slots_lock();
            slots.values().filter_map(|slot| slot.actor()).collect()
        };
        let mut waits = Vec::with_capacity(actors.len());
        for actor in actors {
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            if actor
                .send_message(ListMsg::Shutdown { done: done_tx })
                .is_ok()
            {
                waits.push(done_rx);
            }
        }
        let all = futures_util::future::join_all(waits);
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("some lists did not finish flushing before the shutdown timeout");
        }
    }
}

/// The refusal of an op beyond a list's in-flight limit.
fn overloaded() -> EdgeError {
    EdgeError::new(ErrorCode::Busy, "list is overloaded; retry")
}

impl HostInner {
    fn slots_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Slot>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits one message for `list`, holding `wanted` places (one per op of a batch, one for
    /// any other message): as many as the in-flight limit leaves room for, at least one, or
    /// `busy`. A control message (see [`ListMsg::is_control`]) is never refused for load; it
    /// is still counted, so the list cannot passivate under it.
    fn admit(
        &self,
        list: Uuid,
        activation: Activation,
        control: bool,
        wanted: usize,
    ) -> Result<Option<(Arc<Slot>, Admitted)>, EdgeError> {
        debug_assert!(wanted > 0, "a message holds at least one place");
        let config = &self.context.config;
        let mut slots = self.slots_lock();
        let slot = match slots.get(&list) {
            Some(slot) => slot.clone(),
            None if activation == Activation::IfActive => return Ok(None),
            None => {
                if slots.len() >= config.lists_active_max {
                    m::admission_rejections().increment(1);
                    return Err(EdgeError::new(
                        ErrorCode::Busy,
                        "too many active lists on this node; retry",
                    ));
                }
                // Kept in `draining` until the new actor has waited for it, so a retired slot
                // cannot lose it.
                let predecessor = self.draining_lock().get(&list).cloned();
                let slot = Arc::new(Slot::new(predecessor));
                slots.insert(list, slot.clone());
                m::active_lists().set(slots.len() as f64);
                slot
            }
        };
        let count = if control {
            wanted
        } else {
            let inflight = slot.inflight.load(Ordering::Acquire);
            let room = config.list_inflight_max.saturating_sub(inflight);
            let count = wanted.min(room);
            let refused = wanted - count;
            if refused > 0 {
                m::admission_rejections().increment(refused as u64);
                slot.refused.fetch_add(refused as u64, Ordering::Relaxed);
            }
            if count == 0 {
                return Err(overloaded());
            }
            slot.admitted.fetch_add(count as u64, Ordering::Relaxed);
            count
        };
        slot.inflight.fetch_add(count, Ordering::AcqRel);
        let admitted = Admitted {
            slot: slot.clone(),
            count,
        };
        Ok(Some((slot, admitted)))
    }

    fn try_release(&self, list: Uuid, slot: &Arc<Slot>) -> bool {
        let mut slots = self.slots_lock();
        let is_current = slots
            .get(&list)
            .is_some_and(|current| Arc::ptr_eq(current, slot));
        if !is_current {
            return true;
        }
        if slot.inflight.load(Ordering::Acquire) > 0 {
            return false;
        }
        slots.remove(&list);
        m::active_lists().set(slots.len() as f64);
        m::passivations().increment(1);
        true
    }

    fn forget(&self, list: Uuid, slot: &Arc<Slot>) {
        let mut slots = self.slots_lock();
        if slots
            .get(&list)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            slots.remove(&list);
            m::active_lists().set(slots.len() as f64);
            if slot.has_append_in_flight() {
                let mut draining = self.draining_lock();
                // Entries whose append has resolved are no longer needed.
                draining.retain(|_, appending| appending.available_permits() == 0);
                draining.insert(list, slot.appending.clone());
            }
        }
    }

    fn draining_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Semaphore>>> {
        self.draining
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks a slot whose activation failed and removes it, under the lock, so every waiter on
    /// it re-admits into a fresh slot instead of starting a second actor.
    fn retire(&self, list: Uuid, slot: &Arc<Slot>) {
        let mut slots = self.slots_lock();
        if slots
            .get(&list)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            slots.remove(&list);
            m::active_lists().set(slots.len() as f64);
        }
    }
}
