//! Group commit of pushes (issue #15): while one push holds the store, the pushes that arrive
//! wait in a queue; whoever finds no group being applied leads the next one, taking what is
//! queued (in arrival order, up to [`MAX_GROUP_PUSHES`] pushes and [`MAX_GROUP_OPS`]
//! operations) and applying it with [`crate::storage::Storage::apply_group`]: one transaction,
//! each push in a savepoint of its own, one commit (one sync of the log) for all. Each waiting
//! request then gets its own outcome, never before that commit returned. A push that finds
//! nobody waiting is applied alone at once, in a transaction of its own: nothing waits for
//! company (no timer).
//!
//! Only a storage that [`crate::storage::Storage::groups_commits`] (SQLite: one writer and one
//! sync per commit) queues pushes; PostgreSQL applies each push in its own transaction under
//! its feed lock, as before. Either way the outcome of each push is what applying the pushes
//! one after another in queue order gives.

use super::batch::{OwnPush, Pushed};
use super::Backend;
use crate::error::{Result, ServerError};
use crate::storage::Storage;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// At most this many pushes in one group.
pub const MAX_GROUP_PUSHES: usize = 32;
/// A group takes no further push once it holds this many operations (it always takes one).
pub const MAX_GROUP_OPS: usize = 8_192;

/// The pushes waiting for the store, and the outcomes not yet taken by their requests.
#[derive(Default)]
pub(crate) struct PushQueue {
    state: Mutex<QueueState>,
    /// Signalled when a group's outcomes are in (and the lead is free).
    done: Condvar,
    /// Groups of two or more pushes applied, and the pushes in them.
    groups: AtomicU64,
    grouped: AtomicU64,
}

impl std::fmt::Debug for PushQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushQueue").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct QueueState {
    next_ticket: u64,
    waiting: VecDeque<(u64, OwnPush)>,
    /// A group is being applied.
    leading: bool,
    outcomes: HashMap<u64, Result<Pushed>>,
}

impl PushQueue {
    /// The state (never lost to a poisoned lock: nothing panics while holding it, and the
    /// state stays whole if something did).
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Hands the lead back when a group is done, with its outcomes, and wakes the waiting
/// requests — also if applying the group unwound, when each of its pushes gets an error.
struct Lead<'q> {
    queue: &'q PushQueue,
    tickets: Vec<u64>,
    outcomes: Vec<Result<Pushed>>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut st = self.queue.lock();
        let mut outcomes = std::mem::take(&mut self.outcomes).into_iter();
        for t in &self.tickets {
            let outcome = outcomes
                .next()
                .unwrap_or_else(|| Err(ServerError::Internal("group commit: no outcome".into())));
            st.outcomes.insert(*t, outcome);
        }
        st.leading = false;
        drop(st);
        self.queue.done.notify_all();
    }
}

/// The group's error, for each of its pushes: a busy or lost database is still answered as
/// unavailable (retry), anything else as internal.
fn for_each(e: &ServerError) -> ServerError {
    match e.status_and_code().0 {
        axum::http::StatusCode::SERVICE_UNAVAILABLE => ServerError::Unavailable(e.to_string()),
        _ => ServerError::Internal(format!("group commit: {e}")),
    }
}

impl<S: Storage + ?Sized> Backend<S> {
    /// Queue a push's own operations and wait for their outcome, leading a group when none is
    /// being applied.
    pub(super) fn push_grouped(&self, push: OwnPush) -> Result<Pushed> {
        let queue = &self.pushes;
        let mut st = queue.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.waiting.push_back((ticket, push));
        loop {
            if let Some(outcome) = st.outcomes.remove(&ticket) {
                return outcome;
            }
            if st.leading {
                st = queue.done.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead: take what is queued (this push among it, unless more than a group is
            // ahead of it: then it waits for the next group).
            st.leading = true;
            let mut ops = 0;
            let mut n = 0;
            for (_, p) in &st.waiting {
                if n == MAX_GROUP_PUSHES || (n > 0 && ops + p.ops.len() > MAX_GROUP_OPS) {
                    break;
                }
                ops += p.ops.len();
                n += 1;
            }
            let group: Vec<(u64, OwnPush)> = st.waiting.drain(..n).collect();
            drop(st);
            let mut lead = Lead {
                queue,
                tickets: group.iter().map(|(t, _)| *t).collect(),
                outcomes: Vec::new(),
            };
            lead.outcomes = match group.as_slice() {
                [(_, alone)] => vec![self.push_own(alone)],
                _ => {
                    let pushes: Vec<&OwnPush> = group.iter().map(|(_, p)| p).collect();
                    match self.push_group(&pushes) {
                        Ok(outcomes) => {
                            queue.groups.fetch_add(1, Ordering::Relaxed);
                            queue
                                .grouped
                                .fetch_add(pushes.len() as u64, Ordering::Relaxed);
                            outcomes
                        }
                        Err(e) => pushes.iter().map(|_| Err(for_each(&e))).collect(),
                    }
                }
            };
            drop(lead);
            st = queue.lock();
        }
    }

    /// `(groups of two or more pushes committed together, pushes in them)` since the start.
    pub fn push_groups(&self) -> (u64, u64) {
        (
            self.pushes.groups.load(Ordering::Relaxed),
            self.pushes.grouped.load(Ordering::Relaxed),
        )
    }

    /// Pushes queued for a group since the start (tests: to know one arrived).
    pub fn pushes_queued(&self) -> u64 {
        self.pushes.lock().next_ticket
    }
}
