//! A device's revocation racing the delivery of its work by another carrier (#14): the server
//! takes a revoked device's operations — by its own last push, relayed by another phone, or in
//! a bundle — only if they were stamped and signed strictly before `revoked_at`; anything later
//! (the same millisecond included) is refused `revoked` and nothing of it is stored. Handed over
//! before the revocation and delivered after it: taken once, and the author's next contact
//! wipes it without doubling anything. A relay and the revocation sent at the same moment:
//! whichever lands first, what the server holds of the author is exactly what was stamped
//! before `revoked_at`, and the carrier's report says so; the same for the author's own sync
//! racing its revocation. On SQLite and, with
//! `DOORSTEP_TEST_BACKEND=postgres`, on PostgreSQL.

use doorstep_core::exchange::exchange_in_memory;
use doorstep_core::sync::SyncReport;
use doorstep_core::{Hlc, Op};
use doorstep_tests::harness::{wall_ms, Device, OfficerSpec, Server, World, COMMUNE_A};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use uuid::Uuid;

const VILLAGE: &str = "22738-01";

/// `n` officers, all working the same village.
fn officers(n: usize) -> Vec<OfficerSpec> {
    (0..n)
        .map(|i| OfficerSpec {
            name: format!("Cán bộ {i}"),
            commune: COMMUNE_A.into(),
            villages: vec![VILLAGE.into()],
        })
        .collect()
}

fn sync(d: &mut Device, url: &str) -> SyncReport {
    d.sync(url)
        .unwrap_or_else(|e| panic!("{}: sync failed: {e}", d.name))
}

/// Set the device's corrected clock (what it stamps and signs with) to `at_ms`.
fn set_time(d: &Device, at_ms: i64) {
    d.clock.set((at_ms - d.store.clock_offset_ms()) as u64);
}

/// Record `n` visits with the device's corrected clock at `at_ms`, and sign them: the run's
/// operations are stamped, and the run signed, in that millisecond. Returns the visits' ids.
fn visits_at(d: &mut Device, world: &World, rng: &mut StdRng, at_ms: i64, n: usize) -> Vec<Uuid> {
    set_time(d, at_ms);
    let households = &world.households[VILLAGE];
    let ids = (0..n)
        .map(|i| actions::visit(d, households[i % households.len()], rng).expect("a visit"))
        .collect();
    d.store.sign_pending().unwrap();
    ids
}

/// What the server holds of the device: its `revoked_at`, and its operations (counter →
/// stamp, physical ms). Read straight from the database (on PostgreSQL, from the feed: a
/// snapshot of the whole server per check would make the race test slow).
fn on_server(server: &Server, d: &Device) -> (Option<i64>, BTreeMap<u64, i64>) {
    let id = d.device_id.to_string();
    let replica = d.replica();
    let Some(url) = &server.database else {
        let conn = server.reader();
        let revoked = conn
            .query_row("SELECT revoked_at FROM devices WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap();
        let mut stmt = conn
            .prepare("SELECT counter, hlc FROM oplog WHERE replica = ?1")
            .unwrap();
        let ops = stmt
            .query_map([replica.as_bytes().as_slice()], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)?))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .map(|(c, h)| (c, Hlc::from_sql(h).physical_ms() as i64))
            .collect();
        return (revoked, ops);
    };
    let mut pg = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let revoked = pg
        .query_one("SELECT revoked_at FROM devices WHERE id = $1", &[&id])
        .unwrap()
        .get(0);
    let ops = pg
        .query(
            "SELECT op FROM feed WHERE replica = $1",
            &[&replica.as_bytes().as_slice()],
        )
        .unwrap()
        .iter()
        .map(|r| Op::decode(r.get::<_, &[u8]>(0)).unwrap())
        .map(|op| (op.counter, op.hlc.physical_ms() as i64))
        .collect();
    (revoked, ops)
}

/// The device's `revoked_at` on the server.
fn revoked_at(server: &Server, d: &Device) -> i64 {
    on_server(server, d).0.expect("the device is revoked")
}

/// The device's operations the server holds: counter → stamp (physical ms).
fn held(server: &Server, d: &Device) -> BTreeMap<u64, i64> {
    on_server(server, d).1
}

/// The device's own operations in its store: counter → stamp (physical ms).
fn made(d: &Device) -> BTreeMap<u64, i64> {
    let mut stmt = d
        .store
        .connection()
        .prepare("SELECT counter, hlc FROM oplog WHERE replica = ?1")
        .unwrap();
    let rows = stmt
        .query_map([d.replica().as_bytes().as_slice()], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .map(|(c, h)| (c, Hlc::from_sql(h).physical_ms() as i64))
        .collect();
    rows
}

/// The visits on the server, by id (one snapshot of the server's tables).
fn server_visits(server: &Server) -> BTreeSet<Uuid> {
    let conn = server.reader();
    let mut stmt = conn.prepare("SELECT id FROM visits").unwrap();
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| Uuid::parse_str(&r.unwrap()).unwrap())
        .collect();
    ids
}

/// The counters of `d`'s operations refused in `rejected`, each checked to be refused
/// `revoked`.
fn refused_revoked(rejected: &[doorstep_core::wire::Rejected], d: &Device) -> BTreeSet<u64> {
    rejected
        .iter()
        .filter(|x| x.replica == d.replica())
        .map(|x| {
            assert_eq!(x.reason, "revoked", "{x:?}");
            x.counter
        })
        .collect()
}

#[test]
fn work_handed_over_before_the_revocation_is_delivered_once_then_the_author_wipes() {
    let mut server = Server::start(&officers(2), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    sync(&mut a, &url);
    sync(&mut b, &url);
    let mut rng = StdRng::seed_from_u64(1401);
    // A works offline, and hands its work to B.
    let facts = visits_at(&mut a, &server.world, &mut rng, wall_ms() - 10_000, 4);
    let (ra, rb) = exchange_in_memory(&mut a.store, &mut b.store).unwrap();
    assert!(ra.runs_sent > 0, "{ra:?}");
    assert!(
        ra.refused.is_empty() && rb.refused.is_empty(),
        "{ra:?} {rb:?}"
    );
    // A is revoked (lost, say) before B reaches coverage.
    std::thread::sleep(Duration::from_millis(20));
    server.revoke(a.device_id);
    let revoked = revoked_at(&server, &a);
    let visits = server_visits(&server).len();
    let r = sync(&mut b, &url);
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let mine = made(&a);
    assert_eq!(r.relayed as usize, mine.len(), "{r:?}");
    let on_server = held(&server, &a);
    assert_eq!(on_server, mine, "the server holds all of a's work");
    assert!(on_server.values().all(|&t| t < revoked), "{on_server:?}");
    // Each of A's visits once (the server's visits are by id: one more each).
    let now = server_visits(&server);
    assert!(facts.iter().all(|f| now.contains(f)), "a's work is missing");
    assert_eq!(now.len(), visits + facts.len());
    // A's next contact: its last push (from where it last knew the server was: the server
    // answers that it holds it all already), then the wipe.
    let wiped = sync(&mut a, &url);
    assert!(wiped.wiped, "{wiped:?}");
    assert_eq!((wiped.pushed, wiped.relayed), (0, 0), "{wiped:?}");
    assert!(wiped.rejected.is_empty(), "{:?}", wiped.rejected);
    assert_eq!(held(&server, &a), mine);
    assert_eq!(server_visits(&server).len(), visits + facts.len());
    // B again: nothing relayed twice, nothing refused; the server's count is unchanged.
    let again = sync(&mut b, &url);
    assert_eq!((again.relayed, again.pushed), (0, 0), "{again:?}");
    assert!(again.rejected.is_empty(), "{:?}", again.rejected);
    assert_eq!(held(&server, &a), mine);
    assert_eq!(server_visits(&server).len(), visits + facts.len());
    for f in &facts {
        assert!(scope::holds_fact(b.store.connection(), f), "b lost a's {f}");
    }
}

#[test]
fn runs_signed_after_the_revocation_are_refused_whoever_carries_them() {
    let mut server = Server::start(&officers(2), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    sync(&mut a, &url);
    sync(&mut b, &url);
    let mut rng = StdRng::seed_from_u64(1402);
    let before = visits_at(&mut a, &server.world, &mut rng, wall_ms() - 10_000, 3);
    let signed_before = made(&a);
    std::thread::sleep(Duration::from_millis(20));
    server.revoke(a.device_id);
    let revoked = revoked_at(&server, &a);
    // A does not know, and its clock is set where it likes: a run in the revocation's very
    // millisecond, and runs after it.
    let edge = visits_at(&mut a, &server.world, &mut rng, revoked, 1);
    let mut after = visits_at(&mut a, &server.world, &mut rng, revoked + 5_000, 3);
    // And a run "signed before" by a clock turned back, its operation stamped after: the
    // operations' stamps count too, as they do on A's own last push.
    set_time(&a, revoked + 6_000);
    let household = server.world.households[VILLAGE][0];
    after.push(actions::visit(&mut a, household, &mut rng).expect("a visit"));
    set_time(&a, revoked - 1_000);
    a.store.sign_pending().unwrap();
    let late: BTreeSet<u64> = made(&a)
        .keys()
        .filter(|c| !signed_before.contains_key(c))
        .copied()
        .collect();
    assert_eq!(late.len(), 5);
    // B works too, and carries all of A's runs.
    let own = visits_at(&mut b, &server.world, &mut rng, wall_ms() - 1_000, 2);
    let (ra, rb) = exchange_in_memory(&mut a.store, &mut b.store).unwrap();
    assert!(
        ra.refused.is_empty() && rb.refused.is_empty(),
        "{ra:?} {rb:?}"
    );
    for f in before.iter().chain(&edge).chain(&after) {
        assert!(scope::holds_fact(b.store.connection(), f), "b lacks {f}");
    }
    let visits = server_visits(&server).len();
    let r = sync(&mut b, &url);
    // B's own work in the same sync goes through.
    assert_eq!(r.pushed, 2, "{r:?}");
    let now = server_visits(&server);
    assert!(own.iter().all(|f| now.contains(f)), "b's work is missing");
    assert!(
        r.rejected.iter().all(|x| x.replica == a.replica()),
        "{:?}",
        r.rejected
    );
    // A's: what was signed before is taken, the rest refused `revoked`, none of it stored.
    assert_eq!(refused_revoked(&r.rejected, &a), late, "{r:?}");
    assert_eq!(r.relayed as usize, signed_before.len(), "{r:?}");
    let on_server = held(&server, &a);
    assert_eq!(on_server, signed_before);
    assert!(on_server.values().all(|&t| t < revoked), "{on_server:?}");
    assert!(
        before.iter().all(|f| now.contains(f)),
        "a's work is missing"
    );
    assert!(
        !edge.iter().chain(&after).any(|f| now.contains(f)),
        "a's late work stored"
    );
    assert_eq!(now.len(), visits + 5);
    // A's own last push is held to the same rule: the late work is refused again, the wipe.
    let last = sync(&mut a, &url);
    assert!(last.wiped, "{last:?}");
    assert_eq!(refused_revoked(&last.rejected, &a), late, "{last:?}");
    assert_eq!(held(&server, &a), signed_before);
    assert_eq!(server_visits(&server).len(), visits + 5);
}

#[test]
fn a_bundle_opened_after_the_revocation_delivers_only_what_was_signed_before() {
    let mut server = Server::start(&officers(1), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    sync(&mut a, &url);
    let mut rng = StdRng::seed_from_u64(1404);
    let server_key = a.store.server_key().unwrap().unwrap();
    let before = visits_at(&mut a, &server.world, &mut rng, wall_ms() - 10_000, 3);
    let signed_before = made(&a);
    let early = a.store.export_bundle(&server_key, "usb", None).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    server.revoke(a.device_id);
    let revoked = revoked_at(&server, &a);
    let edge = visits_at(&mut a, &server.world, &mut rng, revoked, 1);
    let after = visits_at(&mut a, &server.world, &mut rng, revoked + 5_000, 2);
    let late: BTreeSet<u64> = made(&a)
        .keys()
        .filter(|c| !signed_before.contains_key(c))
        .copied()
        .collect();
    // The whole day's work, exported after the revocation, opened at the command centre.
    let all = a.store.export_bundle(&server_key, "usb", None).unwrap();
    let r = server.import_bundle(&all).unwrap();
    assert_eq!(r.sender, a.device_id);
    assert_eq!(r.applied, signed_before.len(), "{r:?}");
    assert_eq!(refused_revoked(&r.rejected, &a), late, "{r:?}");
    let on_server = held(&server, &a);
    assert_eq!(on_server, signed_before);
    assert!(on_server.values().all(|&t| t < revoked), "{on_server:?}");
    let now = server_visits(&server);
    assert!(
        before.iter().all(|f| now.contains(f)),
        "a's work is missing"
    );
    assert!(
        !edge.iter().chain(&after).any(|f| now.contains(f)),
        "a's late work stored"
    );
    // The bundle made before the revocation, opened after: nothing new, nothing refused; the
    // late one again: refused again, nothing stored.
    let r = server.import_bundle(&early).unwrap();
    assert_eq!((r.applied, r.rejected.len()), (0, 0), "{r:?}");
    assert_eq!(r.duplicates, signed_before.len(), "{r:?}");
    let r = server.import_bundle(&all).unwrap();
    assert_eq!(r.applied, 0, "{r:?}");
    assert_eq!(refused_revoked(&r.rejected, &a), late, "{r:?}");
    assert_eq!(held(&server, &a), signed_before);
}

/// B's relay and the admin's revocation of A, sent at the same moment, many times over
/// (a fresh A each round). Whichever lands first: A's operations the server holds are exactly
/// those stamped before `revoked_at`, the others were refused `revoked`, and B's report
/// counts what the server took.
#[test]
fn a_relay_racing_the_revocation_leaves_the_server_consistent() {
    const ROUNDS: usize = 20;
    let mut server = Server::start(&officers(ROUNDS + 1), 2, 1);
    let url = server.url();
    let mut b = server.enrol_device(ROUNDS, "b", 0);
    sync(&mut b, &url);
    let b_key = b.store.certificate().unwrap().unwrap().public_key;
    let mut rng = StdRng::seed_from_u64(1403);
    // Rounds where the relay took everything (it went first), and where some was refused.
    let (mut all_taken, mut some_refused) = (0, 0);
    let mut lead = 600;
    for round in 0..ROUNDS {
        let mut a = server.enrol_device(round, &format!("a{round}"), 0);
        sync(&mut a, &url);
        // Runs well before the race, and runs stamped around the moment it starts (far enough
        // ahead that the hand-over is done by then), the last by a clock a little ahead.
        let prepared = wall_ms();
        let start = prepared + lead;
        visits_at(&mut a, &server.world, &mut rng, start - 10_000, 2);
        for k in [-20, 0, 5, 15, 40, 100, 600] {
            visits_at(&mut a, &server.world, &mut rng, start + k, 1);
        }
        let mine = made(&a);
        // A hands its runs to B one way (a bundle sealed for B: an exchange would also give
        // A the earlier rounds' runs B carries, more every round).
        let bundle = a.store.export_bundle(&b_key, "bluetooth", None).unwrap();
        let rb = b.store.import_bundle(&bundle).unwrap();
        assert!(
            rb.refused.is_empty() && rb.ops_new as usize == mine.len(),
            "{rb:?}"
        );
        let now = wall_ms();
        lead = (now - prepared + 60).clamp(100, 1_000);
        let wait = start - now;
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
        // Vary which goes first: the revocation leaves 0 to 320 ms after the sync starts —
        // before the relay (the sync's third request, after a pull and a push), between its
        // runs (each checked and applied in its own transaction), or after it.
        const DELAYS_MS: [u64; 10] = [0, 2, 5, 10, 20, 40, 80, 160, 240, 320];
        let delay = Duration::from_millis(DELAYS_MS[round % DELAYS_MS.len()]);
        let barrier = std::sync::Barrier::new(2);
        let r = std::thread::scope(|s| {
            let relay = s.spawn(|| {
                barrier.wait();
                sync(&mut b, &url)
            });
            let revoke = s.spawn(|| {
                barrier.wait();
                std::thread::sleep(delay);
                server.revoke(a.device_id);
            });
            revoke.join().unwrap();
            relay.join().unwrap()
        });
        let revoked = revoked_at(&server, &a);
        let on_server = held(&server, &a);
        let refused = refused_revoked(&r.rejected, &a);
        assert!(
            r.rejected.iter().all(|x| x.replica == a.replica()),
            "round {round}: {:?}",
            r.rejected
        );
        // Everything stored was stamped before the revocation, everything stamped before it
        // was stored, and the rest was refused and not stored.
        for (counter, stamp) in &mine {
            if *stamp < revoked {
                assert_eq!(
                    on_server.get(counter),
                    Some(stamp),
                    "round {round}: op {counter} stamped {} ms before revoked_at not stored",
                    revoked - stamp
                );
            } else {
                assert!(
                    !on_server.contains_key(counter),
                    "round {round}: op {counter} stamped {} ms at or after revoked_at stored",
                    stamp - revoked
                );
                assert!(refused.contains(counter), "round {round}: {counter} {r:?}");
            }
        }
        assert_eq!(on_server.len() + refused.len(), mine.len(), "round {round}");
        assert_eq!(r.relayed as usize, on_server.len(), "round {round}: {r:?}");
        if refused.is_empty() {
            all_taken += 1;
        } else {
            some_refused += 1;
        }
    }
    eprintln!("rounds where the relay took all: {all_taken}, some refused: {some_refused}");
}

/// A's own sync and its revocation sent at the same moment, many times over (a fresh A each
/// round), then A's next contact (its wipe): A's operations the server holds are exactly those
/// stamped before `revoked_at`, the others were refused `revoked`, and A's reports count what
/// the server took. (A push that loses the race is refused whole, `401`, and sent again with
/// the wipe.)
#[test]
fn a_phones_own_push_racing_its_revocation_leaves_the_server_consistent() {
    const ROUNDS: usize = 10;
    let mut server = Server::start(&officers(ROUNDS), 2, 1);
    let url = server.url();
    let mut rng = StdRng::seed_from_u64(1405);
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        let mut a = server.enrol_device(round, &format!("a{round}"), 0);
        sync(&mut a, &url);
        let start = wall_ms() + 150;
        visits_at(&mut a, &server.world, &mut rng, start - 10_000, 2);
        for k in [-20, 0, 5, 15, 40, 100, 600] {
            visits_at(&mut a, &server.world, &mut rng, start + k, 1);
        }
        let mine = made(&a);
        let wait = start - wall_ms();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
        const DELAYS_MS: [u64; 10] = [0, 2, 5, 10, 20, 40, 80, 160, 240, 320];
        let delay = Duration::from_millis(DELAYS_MS[round % DELAYS_MS.len()]);
        let barrier = std::sync::Barrier::new(2);
        let device = a.device_id;
        let raced = std::thread::scope(|s| {
            let push = s.spawn(|| {
                barrier.wait();
                a.sync(&url)
            });
            let revoke = s.spawn(|| {
                barrier.wait();
                std::thread::sleep(delay);
                server.revoke(device);
            });
            revoke.join().unwrap();
            push.join().unwrap()
        });
        // A sync that meets the revocation after its first request ends `401` (its report is
        // lost: what it pushed is checked on the server only); the next one wipes.
        let mut reports = Vec::new();
        let complete = match raced {
            Ok(r) => {
                reports.push(r);
                true
            }
            Err(doorstep_core::Error::Http { status: 401, .. }) => false,
            Err(e) => panic!("round {round}: {e}"),
        };
        if !reports.iter().any(|r| r.wiped) {
            let last = sync(&mut a, &url);
            assert!(last.wiped, "round {round}: {last:?}");
            reports.push(last);
        }
        let revoked = revoked_at(&server, &a);
        let on_server = held(&server, &a);
        let refused: BTreeSet<u64> = reports
            .iter()
            .flat_map(|r| refused_revoked(&r.rejected, &a))
            .collect();
        for (counter, stamp) in &mine {
            if *stamp < revoked {
                assert_eq!(
                    on_server.get(counter),
                    Some(stamp),
                    "round {round}: {counter}"
                );
            } else {
                assert!(!on_server.contains_key(counter), "round {round}: {counter}");
                assert!(
                    refused.contains(counter) || !complete,
                    "round {round}: {counter} {reports:?}"
                );
            }
        }
        if complete {
            assert_eq!(on_server.len() + refused.len(), mine.len(), "round {round}");
            let pushed: u64 = reports.iter().map(|r| r.pushed).sum();
            assert_eq!(
                pushed as usize,
                on_server.len(),
                "round {round}: {reports:?}"
            );
        } else {
            interrupted += 1;
        }
    }
    eprintln!("own syncs interrupted by the revocation: {interrupted} of {ROUNDS}");
}
