//! The offline lease measured in time that turning the phone's clock does not change
//! (issue #13): a clock turned back is added to the lease's time, a clock turned forward first
//! repays that, a restart or a reboot does not forget it, and a sync starts afresh.

mod common;

use doorstep_core::{Error, ManualClock, Store};
use std::path::Path;
use std::sync::Arc;

const MIN: u64 = 60_000;
const NOW: u64 = common::NOW_MS;
/// The lease the "server" granted: one hour from `NOW`.
const UNTIL: i64 = (NOW + 60 * MIN) as i64;

fn store(path: &Path, clock: &Arc<ManualClock>) -> Store {
    Store::open(path, common::options(clock)).unwrap()
}

/// A populated store on `path` with the one-hour lease.
fn leased(path: &Path, clock: &Arc<ManualClock>) -> (Store, common::World) {
    let mut s = store(path, clock);
    let w = common::populate(&mut s);
    s.set_lease(UNTIL).unwrap();
    (s, w)
}

fn shows_residents(s: &Store, w: &common::World) -> bool {
    match s.my_households(w.officer, "2023-07-10") {
        Ok(_) => true,
        Err(Error::LeaseExpired { until_ms }) => {
            assert_eq!(until_ms, UNTIL);
            false
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn turning_the_clock_back_does_not_stretch_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let (s, w) = leased(&dir.path().join("s.db"), &clock);
    assert!(shows_residents(&s, &w));
    clock.advance(50 * MIN);
    assert!(shows_residents(&s, &w));
    // Somebody turns the clock back 50 minutes, to the start of the lease.
    clock.set(NOW);
    assert!(shows_residents(&s, &w), "50 minutes in: still leased");
    assert_eq!(s.lease_now().unwrap(), (NOW + 50 * MIN) as i64);
    // 20 minutes later the clock says 09:20, an hour and ten minutes after the lease began.
    clock.advance(20 * MIN);
    assert_eq!(s.lease_now().unwrap(), (NOW + 70 * MIN) as i64);
    assert!(!shows_residents(&s, &w), "the lease ended 10 minutes ago");
}

#[test]
fn a_turn_back_while_the_app_was_closed_is_seen_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let clock = common::clock();
    let (s, w) = leased(&path, &clock);
    clock.advance(50 * MIN);
    assert!(shows_residents(&s, &w));
    drop(s);
    clock.set(NOW);
    clock.advance(20 * MIN);
    let s = store(&path, &clock);
    assert!(!shows_residents(&s, &w));
    // And it stays counted after another restart.
    drop(s);
    let s = store(&path, &clock);
    assert_eq!(s.lease_now().unwrap(), (NOW + 70 * MIN) as i64);
}

#[test]
fn across_a_reboot_a_clock_behind_the_last_look_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let clock = common::clock();
    let (s, w) = leased(&path, &clock);
    clock.advance(50 * MIN);
    assert!(shows_residents(&s, &w));
    drop(s);
    clock.reboot();
    clock.set(NOW);
    let s = store(&path, &clock);
    assert!(shows_residents(&s, &w));
    assert_eq!(s.lease_now().unwrap(), (NOW + 50 * MIN) as i64);
    clock.advance(20 * MIN);
    assert!(!shows_residents(&s, &w));
}

#[test]
fn a_clock_turned_forward_repays_an_earlier_turn_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let (s, w) = leased(&dir.path().join("s.db"), &clock);
    assert!(shows_residents(&s, &w));
    // The phone's clock falls back ten days (a dead battery, no network time)...
    clock.set(NOW - 10 * 24 * 60 * MIN);
    clock.advance(5 * MIN);
    assert!(shows_residents(&s, &w));
    assert_eq!(s.lease_now().unwrap(), (NOW + 5 * MIN) as i64);
    // ...and gets the right time back from the network.
    clock.set(NOW + 5 * MIN);
    clock.advance(5 * MIN);
    assert_eq!(s.lease_now().unwrap(), (NOW + 10 * MIN) as i64);
    assert!(shows_residents(&s, &w));
    // Turned forward beyond what was turned back: the lease counts the clock (a sync puts it
    // right).
    clock.set(NOW + 70 * MIN);
    assert!(!shows_residents(&s, &w));
}

#[test]
fn a_sync_starts_the_lease_clock_afresh_from_the_servers_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let (mut s, w) = leased(&dir.path().join("s.db"), &clock);
    clock.advance(50 * MIN);
    assert!(shows_residents(&s, &w));
    clock.set(NOW);
    assert_eq!(s.lease_now().unwrap(), (NOW + 50 * MIN) as i64);
    // A sync measures the phone 50 minutes behind the server: the correction replaces the
    // count of turns back.
    s.set_clock_offset(50 * MIN as i64).unwrap();
    assert_eq!(s.lease_now().unwrap(), (NOW + 50 * MIN) as i64);
    clock.advance(5 * MIN);
    assert_eq!(s.lease_now().unwrap(), (NOW + 55 * MIN) as i64);
    assert!(shows_residents(&s, &w));
}

#[test]
fn time_passing_normally_is_time_passing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let (s, w) = leased(&dir.path().join("s.db"), &clock);
    for _ in 0..59 {
        clock.advance(MIN);
        assert!(shows_residents(&s, &w));
    }
    assert_eq!(s.lease_now().unwrap(), (NOW + 59 * MIN) as i64);
    // A network-time correction of a second back is not a turn back.
    clock.set(NOW + 59 * MIN - 1_000);
    assert_eq!(s.lease_now().unwrap(), (NOW + 59 * MIN - 1_000) as i64);
    clock.advance(2 * MIN);
    assert!(!shows_residents(&s, &w));
}
