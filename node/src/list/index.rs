//! Keeps the user → lists index ("my lists") in step with durable membership changes.
//!
//! The list actor is the authority on membership; the index is derived from it and updated
//! after the events are durable, one sync task at a time per list, coalescing changes (the
//! latest role of a user wins) so a burst of shares or renames does not become a burst of tasks.
//! Snapshots wait for it, so after a crash only the changes after the latest snapshot can be
//! missing; activation replays those (`repair`).

use std::collections::BTreeMap;

use listwire_storage::Membership;
use ractor::ActorRef;
use uuid::Uuid;

use super::ListMsg;
use crate::domain::{Change, ListState, Role};
use crate::host::ListContext;
use std::sync::Arc;

const CONCURRENT_WRITES: usize = 64;

/// What a sync task reports back: the entries it could not write.
#[derive(Debug, Default)]
pub struct IndexOutcome {
    failed: Vec<(Uuid, Option<Role>)>,
}

/// Pending index work of one list.
#[derive(Debug, Default)]
pub struct IndexSync {
    running: bool,
    pending: BTreeMap<Uuid, Option<Role>>,
    resync_all: bool,
}

impl IndexSync {
    /// Records the index consequence of a durable change.
    pub fn note(&mut self, change: &Change) {
        match change {
            Change::Create { owner, .. } => {
                self.pending.insert(*owner, Some(Role::Owner));
            }
            Change::Share { user, role, .. } => {
                self.pending.insert(*user, Some(*role));
            }
            Change::Unshare { user, .. } => {
                self.pending.insert(*user, None);
            }
            // Every member's entry carries the title.
            Change::Rename { .. } => self.resync_all = true,
            _ => {}
        }
    }

    /// Work for a freshly activated list: the membership changes after its latest snapshot,
    /// whose index entries a crash may have left unwritten.
    pub fn repair(changes: &[Change]) -> Self {
        let mut sync = Self::default();
        for change in changes {
            sync.note(change);
        }
        sync
    }

    /// Whether any work is queued or running.
    pub fn is_busy(&self) -> bool {
        self.running || !self.pending.is_empty() || self.resync_all
    }

    /// Whether a sync task is running.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Starts a sync task if none is running and there is work.
    pub fn start(
        &mut self,
        context: &Arc<ListContext>,
        durable: &ListState,
        myself: &ActorRef<ListMsg>,
    ) {
        if self.running || (self.pending.is_empty() && !self.resync_all) {
            return;
        }
        let mut work = std::mem::take(&mut self.pending);
        if std::mem::take(&mut self.resync_all) {
            for (user, _username, role) in durable.members() {
                work.entry(user).or_insert(Some(role));
            }
        }
        self.running = true;
        let accounts = context.accounts.clone();
        let list = durable.list_id();
        let title = durable.title().to_owned();
        let myself = myself.clone();
        tokio::spawn(async move {
            let outcome = write_entries(accounts, list, title, work.into_iter().collect()).await;
            let _ = myself.send_message(ListMsg::IndexSynced(outcome));
        });
    }

    /// Handles a finished task: failed entries are queued again unless superseded.
    pub fn finished(&mut self, outcome: IndexOutcome) {
        self.running = false;
        for (user, role) in outcome.failed {
            self.pending.entry(user).or_insert(role);
        }
    }
}

async fn write_entries(
    accounts: Arc<dyn listwire_storage::AccountStore>,
    list: Uuid,
    title: String,
    work: Vec<(Uuid, Option<Role>)>,
) -> IndexOutcome {
    let mut outcome = IndexOutcome::default();
    for chunk in work.chunks(CONCURRENT_WRITES) {
        let writes = chunk.iter().map(|(user, role)| {
            let accounts = accounts.clone();
            let title = title.clone();
            async move {
                let result = match role {
                    Some(role) => {
                        let membership = Membership {
                            list_id: list,
                            role: role.as_str().to_owned(),
                            title,
                        };
                        accounts.put_membership(*user, membership).await
                    }
                    None => accounts.remove_membership(*user, list).await,
                };
                (*user, *role, result)
            }
        });
        for (user, role, result) in futures_util::future::join_all(writes).await {
            if let Err(error) = result {
                tracing::warn!(list = %list, %error, "membership index update failed; will retry");
                outcome.failed.push((user, role));
            }
        }
    }
    outcome
}
