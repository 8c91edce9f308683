//! Sign-in that resists guessing: failed passwords slow down the account and the address that
//! tried them, and unauthenticated requests cannot make the server hash without bound.
//!
//! - Per account (the name as typed, case-folded) and per client address, failures are counted.
//!   The first [`FREE_ACCOUNT_FAILURES`] (per address: [`FREE_ADDRESS_FAILURES`], a commune
//!   station's phones may share one) cost nothing; each further one doubles the wait before the
//!   next attempt is even looked at, from [`BASE_DELAY_MS`] up to [`MAX_DELAY_MS`]. An attempt
//!   during the wait is refused without hashing, whatever the password. A success clears the
//!   account's and the address's count; a day without failures forgets them.
//! - Password hashing (argon2, deliberately slow) runs at most [`CONCURRENT_HASHES`] at a time;
//!   a sign-in that cannot get a turn within [`HASH_QUEUE_MS`] is answered 503, so a handful of
//!   guessers cannot starve the server.
//!
//! The counts live in memory (a restart forgets them; several PostgreSQL instances each count
//! their own), bounded to [`MAX_TRACKED`] keys. Failed sign-ins are written to the audit log by
//! the handler.

use crate::limits::MAX_USER_NAME;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Failures of one account before the first wait.
pub const FREE_ACCOUNT_FAILURES: u32 = 3;
/// Failures from one address before the first wait.
pub const FREE_ADDRESS_FAILURES: u32 = 10;
/// The first wait; each further failure doubles it.
pub const BASE_DELAY_MS: i64 = 1_000;
/// The longest wait.
pub const MAX_DELAY_MS: i64 = 15 * 60_000;
/// Failures older than this (with none since) are forgotten.
pub const FORGET_MS: i64 = 24 * 3600 * 1000;
/// Password verifications running at once.
pub const CONCURRENT_HASHES: usize = 2;
/// How long a sign-in waits for its turn to hash before a 503.
pub const HASH_QUEUE_MS: u64 = 2_000;
/// Keys tracked at most (accounts and addresses); the oldest are dropped beyond it.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

/// The sign-in guard of one server process.
#[derive(Debug)]
pub struct SigninGuard {
    failures: Mutex<HashMap<Key, Failures>>,
    hashing: Semaphore,
}

impl Default for SigninGuard {
    fn default() -> Self {
        SigninGuard {
            failures: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(CONCURRENT_HASHES),
        }
    }
}

/// The wait after `count` failures when the first `free` cost nothing.
fn delay_ms(count: u32, free: u32) -> i64 {
    if count < free {
        return 0;
    }
    let doublings = (count - free).min(20);
    (BASE_DELAY_MS << doublings).min(MAX_DELAY_MS)
}

fn keys(account: &str, addr: Option<IpAddr>) -> impl Iterator<Item = (Key, u32)> {
    // A name longer than any user's cannot sign in anyway: its first characters are the key,
    // so a guesser's megabyte of name costs the map no more than a real one.
    let account: String = account.trim().chars().take(MAX_USER_NAME).collect();
    std::iter::once((Key::Account(account.to_lowercase()), FREE_ACCOUNT_FAILURES))
        .chain(addr.map(|a| (Key::Address(a), FREE_ADDRESS_FAILURES)))
}

impl SigninGuard {
    /// How long (ms) the account and the address must still wait before an attempt is looked
    /// at; 0: go ahead.
    pub fn wait_ms(&self, account: &str, addr: Option<IpAddr>, now_ms: i64) -> i64 {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys(account, addr)
            .filter_map(|(k, free)| {
                let f = map.get(&k)?;
                Some(f.last_ms + delay_ms(f.count, free) - now_ms)
            })
            .max()
            .unwrap_or(0)
            .max(0)
    }

    /// Count a failed attempt against the account and the address.
    pub fn failed(&self, account: &str, addr: Option<IpAddr>, now_ms: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, f| now_ms - f.last_ms < FORGET_MS);
            if map.len() >= MAX_TRACKED {
                // Still full: drop the oldest half rather than grow without bound.
                let mut ages: Vec<i64> = map.values().map(|f| f.last_ms).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                map.retain(|_, f| f.last_ms > cut);
            }
        }
        for (k, _) in keys(account, addr) {
            let f = map.entry(k).or_insert(Failures {
                count: 0,
                last_ms: now_ms,
            });
            if now_ms - f.last_ms >= FORGET_MS {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last_ms = now_ms;
        }
    }

    /// A successful sign-in clears the account's and the address's failures.
    pub fn succeeded(&self, account: &str, addr: Option<IpAddr>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for (k, _) in keys(account, addr) {
            map.remove(&k);
        }
    }

    /// A turn to verify a password, or `None` if none came within [`HASH_QUEUE_MS`].
    pub async fn hashing_turn(&self) -> Option<SemaphorePermit<'_>> {
        tokio::time::timeout(Duration::from_millis(HASH_QUEUE_MS), self.hashing.acquire())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_and_a_success_clears_them() {
        let g = SigninGuard::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let t = 1_000_000;
        for i in 0..FREE_ACCOUNT_FAILURES {
            assert_eq!(g.wait_ms("Chief", Some(ip), t + i as i64), 0);
            g.failed("Chief", Some(ip), t + i as i64);
        }
        let last = t + FREE_ACCOUNT_FAILURES as i64 - 1;
        assert_eq!(
            g.wait_ms("chief ", None, last),
            BASE_DELAY_MS,
            "case and spaces fold"
        );
        g.failed("chief", Some(ip), last);
        assert_eq!(g.wait_ms("chief", None, last), 2 * BASE_DELAY_MS);
        assert_eq!(g.wait_ms("chief", None, last + 2 * BASE_DELAY_MS), 0);
        // Another account from the same address is not slowed yet…
        assert_eq!(g.wait_ms("other", Some(ip), last), 0);
        g.succeeded("chief", Some(ip));
        assert_eq!(g.wait_ms("chief", Some(ip), last), 0);
        // …until the address itself has failed too often.
        for i in 0..FREE_ADDRESS_FAILURES {
            g.failed(&format!("user{i}"), Some(ip), last);
        }
        assert_eq!(g.wait_ms("fresh", Some(ip), last), BASE_DELAY_MS);
        assert_eq!(g.wait_ms("fresh", None, last), 0);
        // The wait is capped, and a day later everything is forgotten.
        for _ in 0..40 {
            g.failed("chief", None, last);
        }
        assert_eq!(g.wait_ms("chief", None, last), MAX_DELAY_MS);
        g.failed("chief", None, last + FORGET_MS);
        assert_eq!(g.wait_ms("chief", None, last + FORGET_MS), 0);
    }

    #[tokio::test]
    async fn hashing_is_bounded() {
        let g = SigninGuard::default();
        let a = g.hashing_turn().await;
        let b = g.hashing_turn().await;
        assert!(a.is_some() && b.is_some());
        assert!(
            g.hashing_turn().await.is_none(),
            "a third waits, then gives up"
        );
        drop(a);
        assert!(g.hashing_turn().await.is_some());
    }

    #[test]
    fn a_long_name_is_keyed_by_its_first_characters() {
        let g = SigninGuard::default();
        let long = "x".repeat(1 << 20);
        for _ in 0..FREE_ACCOUNT_FAILURES {
            g.failed(&long, None, 0);
        }
        let map = g.failures.lock().unwrap();
        assert!(map.keys().all(|k| match k {
            Key::Account(a) => a.len() <= MAX_USER_NAME,
            Key::Address(_) => true,
        }));
        drop(map);
        assert!(g.wait_ms(&"X".repeat(MAX_USER_NAME + 5), None, 0) > 0);
    }

    #[test]
    fn the_map_stays_bounded() {
        let g = SigninGuard::default();
        for i in 0..(MAX_TRACKED + 10) {
            g.failed(&format!("u{i}"), None, i as i64);
        }
        let n = g.failures.lock().unwrap().len();
        assert!(n <= MAX_TRACKED, "{n}");
    }
}
