//! The statistics cache: the latest [`Snapshot`], rebuilt in the background when the store's
//! fingerprint changed, at most every `debounce` (ADR 0005).

use super::read::fingerprint;
use super::Snapshot;
use crate::backend::Backend;
use crate::error::{Result, ServerError};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// The latest snapshot, rebuilt when the store changed.
pub struct StatsCache {
    current: RwLock<Option<Arc<Snapshot>>>,
    building: AtomicBool,
    last_check_ms: AtomicI64,
    /// Held while the first snapshot is built, so concurrent first requests build it once.
    first: std::sync::Mutex<()>,
    /// Twice the last build's duration: rebuilds never take more than a third of a core.
    min_gap_ms: AtomicI64,
    /// At most one fingerprint check (and rebuild) per this many ms; 0: check on every
    /// request and rebuild before answering (tests).
    pub debounce_ms: i64,
}

impl std::fmt::Debug for StatsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCache")
            .field("debounce_ms", &self.debounce_ms)
            .finish_non_exhaustive()
    }
}

/// Default debounce: a snapshot is at most this old plus its build time.
pub const DEFAULT_DEBOUNCE_MS: i64 = 3000;

impl StatsCache {
    /// A cache that checks the store at most every `debounce_ms`.
    pub fn new(debounce_ms: i64) -> StatsCache {
        StatsCache {
            current: RwLock::new(None),
            building: AtomicBool::new(false),
            last_check_ms: AtomicI64::new(i64::MIN / 2),
            min_gap_ms: AtomicI64::new(0),
            first: std::sync::Mutex::new(()),
            debounce_ms,
        }
    }

    fn build(backend: &Backend) -> Result<Snapshot> {
        let mut out = None;
        backend.read_view(&mut |conn| {
            out = Some(Snapshot::build(conn, crate::now_ms())?);
            Ok(())
        })?;
        out.ok_or_else(|| ServerError::Internal("read_view did not run".into()))
    }

    fn store(&self, s: Snapshot) -> Arc<Snapshot> {
        self.min_gap_ms
            .store(2 * s.build_ms as i64, Ordering::Relaxed);
        let s = Arc::new(s);
        if let Ok(mut w) = self.current.write() {
            *w = Some(s.clone());
        }
        s
    }

    /// The current snapshot, building it first if there is none; kicks a background
    /// rebuild when the store changed. Blocking: call from a blocking thread.
    pub fn get(self: &Arc<Self>, backend: &Arc<Backend>) -> Result<Arc<Snapshot>> {
        let current = self.current.read().ok().and_then(|c| c.clone());
        let now = crate::now_ms();
        let Some(current) = current else {
            let _first = self.first.lock();
            if let Some(c) = self.current.read().ok().and_then(|c| c.clone()) {
                return Ok(c); // built while we waited
            }
            let s = Self::build(&**backend)?;
            self.last_check_ms.store(now, Ordering::Relaxed);
            return Ok(self.store(s));
        };
        let last = self.last_check_ms.load(Ordering::Relaxed);
        let gap = self
            .debounce_ms
            .max(self.min_gap_ms.load(Ordering::Relaxed));
        if self.debounce_ms > 0 && now - last < gap {
            return Ok(current);
        }
        self.last_check_ms.store(now, Ordering::Relaxed);
        if self.building.load(Ordering::Acquire) {
            // A rebuild holds the read connection: do not queue behind it.
            return Ok(current);
        }
        let mut fp = None;
        backend.read_view(&mut |conn| {
            fp = Some(fingerprint(conn)?);
            Ok(())
        })?;
        if fp == Some(current.fingerprint) {
            return Ok(current);
        }
        if self.debounce_ms == 0 {
            return Ok(self.store(Self::build(&**backend)?));
        }
        if !self.building.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            let backend = backend.clone();
            std::thread::spawn(move || {
                match Self::build(&*backend) {
                    Ok(s) => {
                        tracing::info!(build_ms = s.build_ms, "statistics snapshot rebuilt");
                        me.store(s);
                    }
                    Err(e) => tracing::error!(error = %e, "statistics snapshot failed"),
                }
                me.building.store(false, Ordering::Release);
            });
        }
        Ok(current)
    }
}
