//! [`Cancel`]: a flag a caller sets to stop a long call (a sync, an enrolment, a roster import)
//! at its next safe point.
//!
//! A safe point is between two transactions: a cancelled sync keeps every page it applied and
//! every batch the server acknowledged (each with its cursor, in one transaction), and a
//! cancelled import keeps whole chunks of households — the same state a crash or a dropped link
//! leaves, which the next call completes. A request already on the wire is not interrupted: the
//! call stops when it has been answered (or has timed out), and a wait between attempts is cut
//! short within [`Cancel::SLEEP_SLICE`].

use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cancellation flag shared between the caller and a long call. Cloning shares the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// How often a wait between attempts looks at the flag.
    pub const SLEEP_SLICE: Duration = Duration::from_millis(50);

    /// A flag not yet set.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Ask the call to stop at its next safe point. Idempotent.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// [`Error::Cancelled`] once the flag is set.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleep for `d`, waking early with [`Error::Cancelled`] if the flag is set meanwhile.
    pub fn sleep(&self, d: Duration) -> Result<()> {
        let until = Instant::now() + d;
        loop {
            self.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Self::SLEEP_SLICE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_sleep_ends_early() {
        let c = Cancel::new();
        assert!(c.check().is_ok());
        let other = c.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            other.cancel();
        });
        let started = Instant::now();
        assert!(matches!(
            c.sleep(Duration::from_secs(30)),
            Err(Error::Cancelled)
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        assert!(c.is_cancelled());
        assert!(Cancel::new().sleep(Duration::from_millis(1)).is_ok());
    }
}
