//! Hybrid logical clock.
//!
//! Phone clocks are wrong, sometimes by years. Every operation carries an HLC stamp: the physical
//! milliseconds of the clock that made it, raised to stay ahead of every stamp the replica has
//! seen, plus a logical counter for events within one millisecond. The replica id breaks ties
//! (see [`crate::op::Stamp`]), so the order of stamps is total and the same on every replica.
//!
//! A stamp is packed in a `u64`: 48 bits of Unix milliseconds (good until the year 10889) and
//! 16 bits of logical counter, so SQLite compares stamps as plain integers.
//!
//! A remote stamp far in the future (a phone whose clock is a year ahead) would drag this
//! replica's clock along and make every later local edit lose to it. [`HlcGenerator::observe`]
//! therefore follows remote stamps only up to `now + max_drift`; the sync server measures device
//! offsets and clamps or quarantines such stamps (see `docs/adr/0002-clocks.md`).

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

const LOGICAL_BITS: u32 = 16;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

/// A hybrid-logical-clock stamp.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(
        description = "A hybrid-logical-clock stamp: Unix ms × 65,536 + a logical counter \
        (docs/adr/0002-clocks.md). It exceeds 2^53: read it as a 64-bit or big integer."
    )
)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Hlc(pub u64);

impl Hlc {
    /// Build from parts; the logical part is truncated to 16 bits.
    pub fn new(physical_ms: u64, logical: u16) -> Self {
        Hlc((physical_ms << LOGICAL_BITS) | logical as u64)
    }
    /// Unix milliseconds of the stamp.
    pub fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }
    /// Logical counter within the millisecond.
    pub fn logical(self) -> u16 {
        (self.0 & LOGICAL_MASK) as u16
    }
    /// As stored in SQLite (which has signed 64-bit integers; 48-bit milliseconds fit).
    pub fn to_sql(self) -> i64 {
        self.0 as i64
    }
    /// From the SQLite form.
    pub fn from_sql(v: i64) -> Self {
        Hlc(v as u64)
    }
}

/// The physical clock. Tests and simulations inject their own.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch, as this device believes.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock fixed at a value and moved by hand, for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock(pub std::sync::atomic::AtomicU64);

impl ManualClock {
    /// A clock at `ms`.
    pub fn new(ms: u64) -> Self {
        ManualClock(std::sync::atomic::AtomicU64::new(ms))
    }
    /// Set the time.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst)
    }
    /// Move the time forward.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Makes strictly increasing stamps for one replica.
#[derive(Debug, Clone, Copy)]
pub struct HlcGenerator {
    last: Hlc,
    max_drift_ms: u64,
}

/// How far ahead of the local clock a remote stamp may pull this replica's clock: one hour.
pub const DEFAULT_MAX_DRIFT_MS: u64 = 60 * 60 * 1000;

impl HlcGenerator {
    /// Resume from the last stamp this replica issued or observed.
    pub fn new(last: Hlc, max_drift_ms: u64) -> Self {
        HlcGenerator { last, max_drift_ms }
    }

    /// How far ahead of the local clock a remote stamp may pull this generator.
    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// The newest stamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new stamp for a local event at physical time `now_ms`, greater than every stamp so far.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        let next = if now_ms > self.last.physical_ms() {
            Hlc::new(now_ms, 0)
        } else if self.last.logical() < u16::MAX {
            Hlc(self.last.0 + 1)
        } else {
            // Logical counter exhausted within one millisecond: borrow the next millisecond.
            Hlc::new(self.last.physical_ms() + 1, 0)
        };
        self.last = next;
        next
    }

    /// Take note of a stamp from another replica, so that later local stamps come after it
    /// (causality). Stamps more than `max_drift_ms` ahead of `now_ms` are followed only up to
    /// that bound. Returns whether the remote stamp was beyond the bound.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> bool {
        let bound = Hlc::new(now_ms.saturating_add(self.max_drift_ms), u16::MAX);
        let beyond = remote > bound;
        let effective = remote.min(bound);
        if effective > self.last {
            self.last = effective;
        }
        beyond
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packs_and_unpacks() {
        let h = Hlc::new(1_687_824_000_000, 7);
        assert_eq!(h.physical_ms(), 1_687_824_000_000);
        assert_eq!(h.logical(), 7);
        assert_eq!(Hlc::from_sql(h.to_sql()), h);
    }

    #[test]
    fn far_future_remote_stamp_is_bounded() {
        let mut g = HlcGenerator::new(Hlc::default(), DEFAULT_MAX_DRIFT_MS);
        let now = 1_700_000_000_000;
        let year = 365 * 24 * 3600 * 1000;
        assert!(g.observe(Hlc::new(now + year, 0), now));
        assert!(g.last().physical_ms() <= now + DEFAULT_MAX_DRIFT_MS);
        assert!(!g.observe(Hlc::new(now + 1000, 0), now));
    }

    proptest! {
        /// Whatever the physical clock does (jumps back, stands still) and whatever is observed,
        /// stamps strictly increase and stay after every observed stamp within the bound.
        #[test]
        fn ticks_strictly_increase(steps in proptest::collection::vec((0u64..3_000_000_000_000, any::<bool>(), 0u64..3_000_000_000_000), 1..200)) {
            let mut g = HlcGenerator::new(Hlc::default(), DEFAULT_MAX_DRIFT_MS);
            let mut prev = Hlc::default();
            for (now, remote_first, remote) in steps {
                let mut seen = Hlc::default();
                if remote_first {
                    let r = Hlc::new(remote, 0);
                    if !g.observe(r, now) { seen = r; }
                }
                let t = g.tick(now);
                prop_assert!(t > prev);
                prop_assert!(t > seen);
                prev = t;
            }
        }
    }
}
