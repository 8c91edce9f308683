//! What the core store has applied lately, for the statistics to follow incrementally
//! (`docs/adr/0009-incremental-statistics.md`).
//!
//! A storage backend records here, right after each commit that changed its core store, what
//! the operations touched: a push's or an import's batch (SQLite: the server's apply; on
//! PostgreSQL every instance's view catch-up, which is where every instance's pushes reach the
//! view), and a console write's operations. It records [`Touch`]es, not the operations: which
//! resident, household, fact or reference table a change may have moved, and per replica the
//! highest counter seen (so a reader can tell whether something reached the store without
//! passing here, and rebuild).
//!
//! The statistics read it with [`Journal::since`], giving the position they reached. A write
//! whose operations are not known ([`Journal::record_unknown`]: a tool writing through the
//! store directly), or a reader so far behind that the journal forgot what it needs, gets
//! [`Since::Lost`]: the reader must rebuild from the whole store. The journal is bounded
//! ([`MAX_TOUCHES`]); whatever a reader took is forgotten.

use doorstep_core::{Entity, Key, Op, OpBody};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use uuid::Uuid;

/// What one operation may have changed, as the statistics see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Touch {
    /// The unit tree (reloaded whole).
    Units,
    /// Officers (reloaded whole).
    Officers,
    /// Assignments (reloaded whole).
    Assignments,
    /// Quotas (reloaded whole).
    Quotas,
    /// Campaigns (reloaded whole).
    Campaigns,
    /// Sessions or outreach (reloaded whole).
    Events,
    /// A household's fields (its village, deletion): its residents and visits.
    Household(String),
    /// A resident's fields, or a step of theirs.
    Resident(String),
    /// A visit to this household.
    Visits(String),
    /// A retracted fact, whichever table holds it.
    Retracted(String),
    /// Nothing the statistics count (a redaction erases notes and locations).
    Nothing,
}

impl Touch {
    /// What `op` may change.
    pub fn of(op: &Op) -> Touch {
        match &op.body {
            OpBody::Set { entity, key, .. } => {
                let key = match key {
                    Key::Uuid(u) => u.to_string(),
                    Key::Code(c) => c.clone(),
                };
                match entity {
                    Entity::Unit => Touch::Units,
                    Entity::Household => Touch::Household(key),
                    Entity::Resident => Touch::Resident(key),
                    Entity::Campaign => Touch::Campaigns,
                    Entity::Officer => Touch::Officers,
                    Entity::Assignment => Touch::Assignments,
                    Entity::Quota => Touch::Quotas,
                }
            }
            OpBody::Visit(v) => Touch::Visits(v.household_id.to_string()),
            OpBody::Assist(a) => Touch::Resident(a.resident_id.to_string()),
            OpBody::Retract { fact_id, .. } => Touch::Retracted(fact_id.to_string()),
            OpBody::Session(_) | OpBody::Outreach(_) => Touch::Events,
            OpBody::Redact(_) => Touch::Nothing,
        }
    }
}

/// What a batch touched, taken while its operations are at hand (inside the transaction) and
/// recorded once it committed ([`Journal::record_pending`]).
#[derive(Debug, Default)]
pub struct Pending {
    touches: Vec<Touch>,
    maxima: Vec<(Uuid, u64)>,
}

impl Pending {
    /// What `ops` touch.
    pub fn of<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Pending {
        let mut p = Pending::default();
        for op in ops {
            p.touches.push(Touch::of(op));
            match p.maxima.iter_mut().find(|(r, _)| *r == op.replica.0) {
                Some((_, c)) => *c = (*c).max(op.counter),
                None => p.maxima.push((op.replica.0, op.counter)),
            }
        }
        p
    }
}

/// What a reader gets from [`Journal::since`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// What was touched after the reader's position, and per replica the highest counter of
    /// those operations.
    Touched {
        /// Touches, in the order recorded (repeats included).
        touches: Vec<Touch>,
        /// `(replica, highest counter)` of the operations recorded.
        maxima: Vec<(Uuid, u64)>,
    },
    /// The journal cannot say: rebuild from the store.
    Lost,
}

enum Entry {
    Ops {
        touches: Vec<Touch>,
        maxima: Vec<(Uuid, u64)>,
    },
    Unknown,
}

struct Inner {
    /// The position of `entries[0]`.
    start: u64,
    entries: VecDeque<Entry>,
    held: usize,
}

/// How many touches the journal holds at most before it forgets the oldest.
pub const MAX_TOUCHES: usize = 200_000;

/// The recent changes of a core store (see the module docs).
pub struct Journal {
    inner: Mutex<Inner>,
    /// The position after the last entry.
    head: AtomicU64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

impl Default for Journal {
    fn default() -> Journal {
        Journal {
            inner: Mutex::new(Inner {
                start: 0,
                entries: VecDeque::new(),
                held: 0,
            }),
            head: AtomicU64::new(0),
        }
    }
}

impl Journal {
    /// The position after the last entry: a reader at it has seen everything.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn push(&self, entry: Entry, size: usize) {
        let Ok(mut inner) = self.inner.lock() else {
            return; // a poisoned journal: readers see a gap in positions and rebuild
        };
        inner.entries.push_back(entry);
        inner.held += size;
        while inner.held > MAX_TOUCHES && inner.entries.len() > 1 {
            if let Some(Entry::Ops { touches, .. }) = inner.entries.pop_front() {
                inner.held -= touches.len();
            }
            inner.start += 1;
        }
        self.head
            .store(inner.start + inner.entries.len() as u64, Ordering::Release);
    }

    /// Record operations just committed to the store (a batch; duplicates are harmless).
    pub fn record<'a>(&self, ops: impl IntoIterator<Item = &'a Op>) {
        self.record_pending(Pending::of(ops));
    }

    /// Record what [`Pending::of`] took from a batch inside its transaction, once committed.
    pub fn record_pending(&self, p: Pending) {
        if p.touches.is_empty() {
            return;
        }
        let size = p.touches.len();
        self.push(
            Entry::Ops {
                touches: p.touches,
                maxima: p.maxima,
            },
            size,
        );
    }

    /// Record that the store was written in a way the journal does not know (readers rebuild).
    pub fn record_unknown(&self) {
        self.push(Entry::Unknown, 0);
    }

    /// Forget everything recorded so far and return the head (a reader about to read the whole
    /// store).
    pub fn skip(&self) -> u64 {
        self.since(u64::MAX).1
    }

    /// What was recorded from `pos` on, and the position after it. Entries before the
    /// returned position are forgotten (one reader; a second one would rebuild).
    pub fn since(&self, pos: u64) -> (Since, u64) {
        let Ok(mut inner) = self.inner.lock() else {
            return (Since::Lost, self.head());
        };
        let head = inner.start + inner.entries.len() as u64;
        if pos < inner.start || pos > head {
            inner.entries.clear();
            inner.held = 0;
            inner.start = head;
            return (Since::Lost, head);
        }
        let skip = (pos - inner.start) as usize;
        let mut touches = Vec::new();
        let mut maxima: Vec<(Uuid, u64)> = Vec::new();
        let mut lost = false;
        for e in inner.entries.drain(..).skip(skip) {
            match e {
                Entry::Ops {
                    touches: t,
                    maxima: m,
                } => {
                    touches.extend(t);
                    for (r, c) in m {
                        match maxima.iter_mut().find(|(x, _)| *x == r) {
                            Some((_, x)) => *x = (*x).max(c),
                            None => maxima.push((r, c)),
                        }
                    }
                }
                Entry::Unknown => lost = true,
            }
        }
        inner.held = 0;
        inner.start = head;
        if lost {
            return (Since::Lost, head);
        }
        (Since::Touched { touches, maxima }, head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(counter: u64, body: OpBody) -> Op {
        Op {
            replica: doorstep_core::ReplicaId(Uuid::nil()),
            counter,
            hlc: doorstep_core::Hlc::from_sql(counter as i64),
            body,
        }
    }

    #[test]
    fn a_reader_gets_what_was_recorded_after_its_position_then_a_loss() {
        let j = Journal::default();
        let fact = Uuid::now_v7();
        j.record(&[op(
            1,
            OpBody::Retract {
                fact_id: fact,
                reason: None,
            },
        )]);
        let pos = j.head();
        assert_eq!(pos, 1);
        j.record(&[
            op(
                2,
                OpBody::Retract {
                    fact_id: fact,
                    reason: None,
                },
            ),
            op(
                3,
                OpBody::Retract {
                    fact_id: fact,
                    reason: None,
                },
            ),
        ]);
        let (got, head) = j.since(pos);
        assert_eq!(head, 2);
        assert_eq!(
            got,
            Since::Touched {
                touches: vec![Touch::Retracted(fact.to_string()); 2],
                maxima: vec![(Uuid::nil(), 3)],
            }
        );
        // Nothing new: nothing to do.
        assert_eq!(
            j.since(head).0,
            Since::Touched {
                touches: vec![],
                maxima: vec![]
            }
        );
        // A write the journal does not know, or a position it forgot: rebuild.
        j.record_unknown();
        assert_eq!(j.since(head).0, Since::Lost);
        assert_eq!(j.since(0).0, Since::Lost);
    }
}
