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

    /// Time since this device started, counting sleep, which the user cannot set, with an id
    /// of the boot; `None` where the platform gives none. The offline lease uses it to tell
    /// time passing from a clock turned back or forward (`crate::lease`).
    fn since_boot(&self) -> Option<BootTime> {
        None
    }
}

/// Milliseconds since a boot of the device, and which boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTime {
    /// An id that changes at every boot (Linux and Android: the kernel's `boot_id`).
    pub boot: String,
    /// Milliseconds since that boot, sleep included.
    pub ms: u64,
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

    /// Linux and Android: `CLOCK_BOOTTIME` (what Android's `elapsedRealtime` reads) and the
    /// kernel's boot id. Other platforms (iOS): none yet.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn since_boot(&self) -> Option<BootTime> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let boot = boot.trim();
        if boot.is_empty() {
            return None;
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on Linux ≥ 2.6.39.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
            return None;
        }
        let ms = u64::try_from(ts.tv_sec).ok()?.checked_mul(1000)?
            + u64::try_from(ts.tv_nsec).ok()? / 1_000_000;
        Some(BootTime {
            boot: boot.to_owned(),
            ms,
        })
    }
}

/// A clock fixed at a value and moved by hand, for tests and simulations. It has a boot clock
/// too: [`ManualClock::advance`] is time passing (both move), [`ManualClock::set`] is somebody
/// setting the clock (the boot clock stays), [`ManualClock::reboot`] starts a new boot.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: std::sync::atomic::AtomicU64,
    boot: std::sync::Mutex<(u64, u64)>,
}

impl ManualClock {
    /// A clock at `ms`, one second after the first boot.
    pub fn new(ms: u64) -> Self {
        ManualClock {
            now: std::sync::atomic::AtomicU64::new(ms),
            boot: std::sync::Mutex::new((1, 1000)),
        }
    }
    /// Set the time (the boot clock does not move).
    pub fn set(&self, ms: u64) {
        self.now.store(ms, std::sync::atomic::Ordering::SeqCst)
    }
    /// Let `ms` pass.
    pub fn advance(&self, ms: u64) {
        let mut boot = self.boot.lock().unwrap_or_else(|e| e.into_inner());
        boot.1 += ms;
        self.now.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
    /// Restart the device: a new boot id, its boot clock at one second.
    pub fn reboot(&self) {
        let mut boot = self.boot.lock().unwrap_or_else(|e| e.into_inner());
        *boot = (boot.0 + 1, 1000);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn since_boot(&self) -> Option<BootTime> {
        let boot = self.boot.lock().unwrap_or_else(|e| e.into_inner());
        Some(BootTime {
            boot: format!("manual-{}", boot.0),
            ms: boot.1,
        })
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
    /// The system's boot clock exists here (Linux), keeps its boot id and does not go back.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_system_boot_clock_moves_forward_within_a_boot() {
        let a = SystemClock.since_boot().expect("a boot clock on Linux");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = SystemClock.since_boot().expect("a boot clock on Linux");
        assert_eq!(a.boot, b.boot);
        assert!(b.ms >= a.ms + 10, "{a:?} then {b:?}");
    }

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
