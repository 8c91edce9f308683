//! The station hub (#14): five phones of a commune exchange their work with the hub over TCP
//! while the hub is cut off from the province server for three days; every phone sees the
//! others' work of its villages through the hub; when the link comes back the hub delivers
//! everything once, and the phones' own syncs then push nothing twice. On SQLite and, with
//! `DOORSTEP_TEST_BACKEND=postgres`, on PostgreSQL.

use doorstep_tests::harness::{Device, Server};
use doorstep_tests::hub::TestHub;
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeSet;

/// The facts (visits, assistance steps) a store holds.
fn facts(d: &Device) -> BTreeSet<String> {
    d.store
        .connection()
        .prepare("SELECT id FROM visits UNION SELECT id FROM assists")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_hub_cut_off_for_three_days_carries_five_phones_work_once() {
    let mut server = Server::start(&doorstep_tests::harness::pair(&["22738-01"]), 4, 2);
    let url = server.url();
    // The hub reaches the province server through a link the test can cut. (Its commune lead
    // is added first: a phone gives the hub only what its store says the hub's officer may
    // see, so the phones sync once after the lead exists.)
    let link = Proxy::start(server.addr);
    let hub = TestHub::start(&server, &link.url(), 1);
    let mut phones: Vec<Device> = (0..5)
        .map(|i| server.enrol_device(usize::from(i >= 3), &format!("p{i}"), 0))
        .collect();
    for p in &mut phones {
        p.sync(&url).unwrap();
    }
    let before: Vec<i64> = phones
        .iter()
        .map(|p| scope::replica_ops(&server.reader(), &p.replica()).0)
        .collect();

    // Three days without the province server.
    link.set(Fault::DropRequestAfter(0));
    let mut rng = StdRng::seed_from_u64(77);
    for day in 0..3 {
        // (The phones' clocks stand still: the server takes no work stamped in its future,
        // so a "day" here is a round of work, not 24 hours on the clocks.)
        for p in &mut phones {
            actions::random_work(p, &server.world, &mut rng, 8);
        }
        // Twice round: the first phones to come get the later ones' work the second time.
        for _ in 0..2 {
            for p in &mut phones {
                hub.exchange(p);
            }
        }
        let all: BTreeSet<String> = phones.iter().flat_map(facts).collect();
        for p in &phones {
            assert_eq!(
                facts(p),
                all,
                "day {day}: {} lacks work of the others",
                p.name
            );
        }
        assert!(hub.hub.sync_upstream().is_err(), "the link is cut");
    }
    for (p, n) in phones.iter().zip(&before) {
        assert_eq!(scope::replica_ops(&server.reader(), &p.replica()).0, *n);
    }

    // A slow link (every request held 1.5 s) holds up the hub's sync, not the phones; that
    // sync gets through, slowly.
    link.set(Fault::Delay(std::time::Duration::from_millis(1500)));
    let slow = std::thread::scope(|sc| {
        let syncing = sc.spawn(|| hub.hub.sync_upstream());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let t = std::time::Instant::now();
        hub.exchange(&mut phones[0]);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "a phone waited {:?} for the hub's sync",
            t.elapsed()
        );
        syncing.join().unwrap().unwrap()
    });
    assert!(slow.rejected.is_empty(), "{:?}", slow.rejected);
    // The link is back: the hub delivers the rest, and everything is on the server once.
    link.clear();
    let r = hub.hub.sync_upstream().unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let made: u64 = phones
        .iter()
        .zip(&before)
        .map(|(p, n)| p.store.own_counter() - *n as u64)
        .sum();
    assert_eq!(slow.relayed + r.relayed, made, "{slow:?} {r:?}");
    for p in &phones {
        assert_eq!(
            scope::replica_ops(&server.reader(), &p.replica()).0,
            p.store.own_counter() as i64
        );
    }
    // Each phone's own sync the next day: nothing pushed twice, everything in place.
    for p in &mut phones {
        let s = p.sync(&url).unwrap();
        assert_eq!((s.pushed, s.push_duplicates), (0, 0), "{}: {s:?}", p.name);
        assert!(s.rejected.is_empty(), "{}: {s:?}", p.name);
    }
    let refs: Vec<&Device> = phones.iter().collect();
    scope::assert_converged(&server, &refs);
}
