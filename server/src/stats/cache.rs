//! The statistics cache: the latest [`Snapshot`], kept up to date incrementally from the
//! storage's journal of what each batch touched (`docs/adr/0009-incremental-statistics.md`),
//! rebuilt from the whole store only when it must be (the first time, after a change to the
//! unit tree, after writes the journal did not see, or on request: [`StatsCache::rebuild`]).
//! A storage without a journal falls back to ADR 0005's rebuild when the store's fingerprint
//! changed, at most every `debounce`.

use super::incremental::Updated;
use super::ledger::Ledger;
use super::read::fingerprint;
use super::Snapshot;
use crate::backend::Backend;
use crate::error::{Result, ServerError};
use crate::journal::{Journal, Since};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, TryLockError};
use uuid::Uuid;

/// The ledger and how far it followed the journal.
struct Follow {
    ledger: Ledger,
    /// The journal position reached.
    pos: u64,
    /// Operations the store held that the journal had not shown at the last check: if the
    /// ledger has not followed them by the next one, they came another way (rebuild).
    unseen: Vec<(Uuid, u64)>,
}

/// What [`StatsCache::refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refreshed {
    /// Followed the journal: residents and households read again, and how long it took.
    Incremental {
        residents: usize,
        households: usize,
        ms: f64,
    },
    /// Rebuilt from the whole store, in that many ms.
    Rebuilt { ms: f64 },
}

/// What [`StatsCache::check`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsCheck {
    /// Whether the numbers kept incrementally equal a rebuild's.
    pub equal: bool,
    /// The first difference, if any (unit codes, officer ids and sums: no personal data).
    pub difference: Option<String>,
    /// How long bringing the kept numbers up to date took, ms.
    pub update_ms: f64,
    /// How long the rebuild took, ms.
    pub rebuild_ms: f64,
    /// The kept numbers could not follow the journal (a unit change, writes it did not see),
    /// so the rebuild replaced them, as the next request would have.
    pub rebuilt: bool,
}

/// The latest snapshot, kept up to date with the store.
pub struct StatsCache {
    current: RwLock<Option<Arc<Snapshot>>>,
    follow: Mutex<Option<Follow>>,
    /// `Follow::pos`, readable without the lock.
    pos: AtomicU64,
    /// A background rebuild is running.
    rebuilding: AtomicBool,
    last_check_ms: AtomicI64,
    /// Held while the first snapshot is built, so concurrent first requests build it once.
    first: Mutex<()>,
    /// Twice the last full build's duration: fallback rebuilds never take more than a third of
    /// a core.
    min_gap_ms: AtomicI64,
    /// The journal is read on every request that finds it moved; besides, the store is
    /// checked at most every this many ms (on PostgreSQL, a check catches the view up with
    /// other instances' pushes); 0: on every request, everything inline (tests).
    pub debounce_ms: i64,
}

impl std::fmt::Debug for StatsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCache")
            .field("debounce_ms", &self.debounce_ms)
            .finish_non_exhaustive()
    }
}

/// Default interval between checks of the store when the journal shows nothing new.
pub const DEFAULT_DEBOUNCE_MS: i64 = 1000;

/// Run `f` inside one read transaction of the backend's view.
fn in_view<T>(backend: &Backend, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
    let mut once = Some(f);
    let mut out = None;
    backend.read_view(&mut |conn| {
        if let Some(f) = once.take() {
            out = Some(f(conn)?);
        }
        Ok(())
    })?;
    out.ok_or_else(|| ServerError::Internal("read_view did not run".into()))
}

impl StatsCache {
    /// A cache that checks the store at most every `debounce_ms` when its journal is quiet.
    pub fn new(debounce_ms: i64) -> StatsCache {
        StatsCache {
            current: RwLock::new(None),
            follow: Mutex::new(None),
            pos: AtomicU64::new(0),
            rebuilding: AtomicBool::new(false),
            last_check_ms: AtomicI64::new(i64::MIN / 2),
            min_gap_ms: AtomicI64::new(0),
            first: Mutex::new(()),
            debounce_ms,
        }
    }

    /// The whole store read into a new ledger (the journal's position taken first, inside the
    /// read transaction, so that nothing committed after it is missed).
    fn build(backend: &Backend) -> Result<Follow> {
        in_view(backend, |conn| {
            let pos = backend.journal().map_or(0, Journal::skip);
            let ledger = Ledger::build(conn, crate::now_ms())?;
            Ok(Follow {
                ledger,
                pos,
                unseen: Vec::new(),
            })
        })
    }

    fn publish(&self, f: &Follow) -> Arc<Snapshot> {
        let mut s = f.ledger.snap.clone();
        s.built_at_ms = crate::now_ms();
        let s = Arc::new(s);
        self.pos.store(f.pos, Ordering::Release);
        if let Ok(mut w) = self.current.write() {
            *w = Some(s.clone());
        }
        s
    }

    /// Replace the ledger with a full rebuild (`slot` is the locked ledger).
    fn rebuild_into(&self, backend: &Backend, slot: &mut Option<Follow>) -> Result<Arc<Snapshot>> {
        *slot = None;
        let f = Self::build(backend)?;
        self.min_gap_ms
            .store(2 * f.ledger.snap.build_ms as i64, Ordering::Relaxed);
        let s = self.publish(&f);
        *slot = Some(f);
        Ok(s)
    }

    /// Bring the ledger up to date from the journal; `Ok(None)`: it cannot, rebuild.
    fn follow(backend: &Backend, journal: &Journal, f: &mut Follow) -> Result<Option<Refreshed>> {
        let started = std::time::Instant::now();
        in_view(backend, |conn| {
            // Read the journal inside the read transaction, before any read: everything it
            // shows was committed before, so the reads below see it.
            let (since, head) = journal.since(f.pos);
            f.pos = head;
            let Since::Touched { touches, maxima } = since else {
                return Ok(None);
            };
            let Updated::Done {
                residents,
                households,
            } = f.ledger.update(conn, &touches, &maxima)?
            else {
                return Ok(None);
            };
            if !f.ledger.caught_up_with(&f.unseen) {
                tracing::warn!("statistics: the store holds operations the journal never showed");
                return Ok(None);
            }
            f.unseen = f.ledger.unseen(conn)?;
            Ok(Some(Refreshed::Incremental {
                residents,
                households,
                ms: started.elapsed().as_secs_f64() * 1e3,
            }))
        })
    }

    /// Bring the snapshot up to date now (blocking): follow the journal, or rebuild when that
    /// cannot be done. Benchmarks and tests call it; requests go through [`StatsCache::get`].
    pub fn refresh(&self, backend: &Backend) -> Result<Refreshed> {
        let mut slot = self
            .follow
            .lock()
            .map_err(|_| ServerError::Internal("statistics lock poisoned".into()))?;
        self.refresh_locked(backend, &mut slot)
    }

    fn refresh_locked(&self, backend: &Backend, slot: &mut Option<Follow>) -> Result<Refreshed> {
        if let (Some(journal), Some(f)) = (backend.journal(), slot.as_mut()) {
            match Self::follow(backend, journal, f) {
                Ok(Some(r)) => {
                    self.publish(f);
                    return Ok(r);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "statistics update failed; rebuilding"),
            }
        }
        let started = std::time::Instant::now();
        self.rebuild_into(backend, slot)?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(build_ms = ms, "statistics rebuilt from the whole store");
        Ok(Refreshed::Rebuilt { ms })
    }

    /// Repair: rebuild from the whole store now, whatever the journal says.
    pub fn rebuild(&self, backend: &Backend) -> Result<Arc<Snapshot>> {
        let mut slot = self
            .follow
            .lock()
            .map_err(|_| ServerError::Internal("statistics lock poisoned".into()))?;
        self.rebuild_into(backend, &mut slot)
    }

    /// Check: bring the kept numbers up to date, then rebuild from the whole store in the same
    /// read transaction and compare, field by field. The kept numbers stay in use (repair with
    /// [`StatsCache::rebuild`]). Under a steady stream of pushes a difference can be a write
    /// that landed between the two: check again.
    pub fn check(&self, backend: &Backend) -> Result<StatsCheck> {
        let mut slot = self
            .follow
            .lock()
            .map_err(|_| ServerError::Internal("statistics lock poisoned".into()))?;
        if slot.is_none() {
            self.rebuild_into(backend, &mut slot)?;
        }
        let started = std::time::Instant::now();
        let mut out = None;
        if let (Some(journal), Some(f)) = (backend.journal(), slot.as_mut()) {
            out = in_view(backend, |conn| {
                let (since, head) = journal.since(f.pos);
                f.pos = head;
                let updated = match since {
                    Since::Touched { touches, maxima } => {
                        f.ledger.update(conn, &touches, &maxima)?
                    }
                    Since::Lost => Updated::Rebuild,
                };
                let update_ms = started.elapsed().as_secs_f64() * 1e3;
                let fresh = Ledger::build(conn, crate::now_ms())?;
                let rebuild_ms = fresh.snap.build_ms;
                let (difference, rebuilt) = match updated {
                    Updated::Rebuild => {
                        f.ledger = fresh;
                        f.unseen.clear();
                        (None, true)
                    }
                    Updated::Done { .. } => (f.ledger.snap.same_counts(&fresh.snap).err(), false),
                };
                Ok(Some(StatsCheck {
                    equal: difference.is_none(),
                    difference,
                    update_ms,
                    rebuild_ms,
                    rebuilt,
                }))
            })?;
        }
        if let Some(f) = slot.as_ref() {
            self.publish(f);
        }
        out.ok_or_else(|| ServerError::BadRequest("this storage keeps no journal".into()))
    }

    /// The current snapshot, building it first if there is none, brought up to date when the
    /// journal moved (inline: an update reads a handful of rows). Blocking: call from a
    /// blocking thread.
    pub fn get(self: &Arc<Self>, backend: &Arc<Backend>) -> Result<Arc<Snapshot>> {
        let current = self.current.read().ok().and_then(|c| c.clone());
        let now = crate::now_ms();
        let Some(current) = current else {
            let _first = self.first.lock();
            if let Some(c) = self.current.read().ok().and_then(|c| c.clone()) {
                return Ok(c); // built while we waited
            }
            let mut slot = self
                .follow
                .lock()
                .map_err(|_| ServerError::Internal("statistics lock poisoned".into()))?;
            self.last_check_ms.store(now, Ordering::Relaxed);
            return self.rebuild_into(backend, &mut slot);
        };
        let last = self.last_check_ms.load(Ordering::Relaxed);
        let moved = backend
            .journal()
            .is_some_and(|j| j.head() != self.pos.load(Ordering::Acquire));
        let gap = match backend.journal() {
            Some(_) => self.debounce_ms,
            None => self
                .debounce_ms
                .max(self.min_gap_ms.load(Ordering::Relaxed)),
        };
        if self.debounce_ms > 0
            && (self.rebuilding.load(Ordering::Acquire) || !moved && now - last < gap)
        {
            return Ok(current);
        }
        // Another request is updating (or a rebuild runs): answer with what there is.
        let mut slot = match self.follow.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::WouldBlock) if self.debounce_ms > 0 => return Ok(current),
            Err(TryLockError::WouldBlock) => self
                .follow
                .lock()
                .map_err(|_| ServerError::Internal("statistics lock poisoned".into()))?,
            Err(TryLockError::Poisoned(_)) => {
                return Err(ServerError::Internal("statistics lock poisoned".into()))
            }
        };
        self.last_check_ms.store(now, Ordering::Relaxed);
        if let Some(journal) = backend.journal() {
            if let Some(f) = slot.as_mut() {
                match Self::follow(backend, journal, f) {
                    Ok(Some(_)) => return Ok(self.publish(f)),
                    Ok(None) => {}
                    // The ledger may be half updated: rebuilt below.
                    Err(e) => tracing::error!(error = %e, "statistics update failed; rebuilding"),
                }
            }
        } else {
            let fp = in_view(backend, fingerprint)?;
            if fp == current.fingerprint {
                return Ok(current);
            }
        }
        if self.debounce_ms == 0 {
            return self.rebuild_into(backend, &mut slot);
        }
        // Rebuild in the background, holding the ledger's lock; requests meanwhile get the
        // current snapshot.
        drop(slot);
        if self.rebuilding.swap(true, Ordering::AcqRel) {
            return Ok(current);
        }
        let me = self.clone();
        let backend = backend.clone();
        std::thread::spawn(move || {
            if let Ok(mut slot) = me.follow.lock() {
                match me.rebuild_into(&backend, &mut slot) {
                    Ok(s) => tracing::info!(build_ms = s.build_ms, "statistics snapshot rebuilt"),
                    Err(e) => tracing::error!(error = %e, "statistics snapshot failed"),
                }
            }
            me.rebuilding.store(false, Ordering::Release);
        });
        Ok(current)
    }
}
