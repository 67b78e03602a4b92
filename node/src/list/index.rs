//! Keeps the user → lists index ("my lists") in step with durable membership changes.
//!
//! The list actor is the authority on membership; the index is derived from it and updated
//! after the events are durable, one sync task at a time per list, coalescing changes (a burst
//! of shares or renames does not become a burst of tasks). Each write states a user's entry as
//! of one durable seq (`Membership::version`), and the store ignores writes older than what it
//! holds, so a late write from a task that outlived its actor (the list moved, the node paused)
//! can never undo a newer one. Snapshots wait for the index, so after a crash only the changes
//! after the latest snapshot can be missing; activation notes those while it replays them.

use std::collections::BTreeSet;
use std::sync::Arc;

use listwire_storage::Membership;
use ractor::ActorRef;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::ListMsg;
use crate::domain::{Change, ListState, Role};
use crate::host::ListContext;

const CONCURRENT_WRITES: usize = 64;

/// What a sync task reports back: the users whose entries it could not write.
#[derive(Debug, Default)]
pub struct IndexOutcome {
    failed: Vec<Uuid>,
}

/// Pending index work of one list.
#[derive(Debug, Default)]
pub struct IndexSync {
    /// The running sync task, aborted when the actor stops.
    task: Option<JoinHandle<()>>,
    /// Users whose entries must be written from the durable state.
    pending: BTreeSet<Uuid>,
    resync_all: bool,
}

/// One entry to write: the user's role as of `version`, or `None` for "not a member".
struct Entry {
    user: Uuid,
    role: Option<Role>,
}

impl IndexSync {
    /// Records the index consequence of a durable change.
    pub fn note(&mut self, change: &Change) {
        match change {
            Change::Create { owner, .. } => {
                self.pending.insert(*owner);
            }
            Change::Share { user, .. } | Change::Unshare { user, .. } => {
                self.pending.insert(*user);
            }
            // Every member's entry carries the title.
            Change::Rename { .. } => self.resync_all = true,
            _ => {}
        }
    }

    /// Whether any work is queued or running.
    pub fn is_busy(&self) -> bool {
        self.is_running() || !self.pending.is_empty() || self.resync_all
    }

    /// Whether a sync task is running.
    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// Starts a sync task if none is running and there is work. Every entry is written as of
    /// `durable.seq()`, from `durable` itself: the role a user has there, or none.
    pub fn start(
        &mut self,
        context: &Arc<ListContext>,
        durable: &ListState,
        myself: &ActorRef<ListMsg>,
    ) {
        if self.is_running() || (self.pending.is_empty() && !self.resync_all) {
            return;
        }
        let mut users = std::mem::take(&mut self.pending);
        if std::mem::take(&mut self.resync_all) {
            users.extend(durable.members().map(|(user, _username, _role)| user));
        }
        let work: Vec<Entry> = users
            .into_iter()
            .map(|user| Entry {
                user,
                role: durable.role_of(user),
            })
            .collect();
        let accounts = context.accounts.clone();
        let list = durable.list_id();
        let title = durable.title().to_owned();
        let version = durable.seq();
        let myself = myself.clone();
        self.task = Some(tokio::spawn(async move {
            let outcome = write_entries(accounts, list, title, version, work).await;
            let _ = myself.send_message(ListMsg::IndexSynced(outcome));
        }));
    }

    /// Handles a finished task: failed entries are queued again (rewritten from the then
    /// durable state).
    pub fn finished(&mut self, outcome: IndexOutcome) {
        self.task = None;
        self.pending.extend(outcome.failed);
    }

    /// Stops a running task (the actor is stopping). Writes already sent may still land; their
    /// versions keep them from undoing anything newer.
    pub fn cancel(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn write_entries(
    accounts: Arc<dyn listwire_storage::AccountStore>,
    list: Uuid,
    title: String,
    version: u64,
    work: Vec<Entry>,
) -> IndexOutcome {
    let mut outcome = IndexOutcome::default();
    for chunk in work.chunks(CONCURRENT_WRITES) {
        let writes = chunk.iter().map(|entry| {
            let accounts = accounts.clone();
            let title = title.clone();
            async move {
                let result = match entry.role {
                    Some(role) => {
                        let membership = Membership {
                            list_id: list,
                            role: role.as_str().to_owned(),
                            title,
                            version,
                        };
                        accounts.put_membership(entry.user, membership).await
                    }
                    None => accounts.remove_membership(entry.user, list, version).await,
                };
                (entry.user, result)
            }
        });
        for (user, result) in futures_util::future::join_all(writes).await {
            if let Err(error) = result {
                tracing::warn!(list_id = %list, %error, "membership index update failed; will retry");
                outcome.failed.push(user);
            }
        }
    }
    outcome
}
