//! Several `doorstep serve` processes on one PostgreSQL database behind a round-robin
//! balancer (each request to the next instance), with devices pushing and pulling
//! concurrently, each page and batch through another instance: no operation is ever skipped
//! or delivered twice, and everything converges (docs/adr/0006-postgres-backend.md).
//!
//! The hazard this guards: feed sequence numbers allocated in one order and committed in
//! another would let a pull move its cursor past a row that commits later, and that row
//! would never reach the device.

use doorstep_tests::harness::{Device, OfficerSpec, Server, TestDb, COMMUNE_A, COMMUNE_B};
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::{actions, pgmirror, scope};
use rand::{Rng, SeedableRng};

fn spec(name: &str, commune: &str, villages: &[&str]) -> OfficerSpec {
    OfficerSpec {
        name: name.into(),
        commune: commune.into(),
        villages: villages.iter().map(|v| v.to_string()).collect(),
    }
}

#[test]
fn concurrent_devices_through_three_instances_miss_nothing_and_get_nothing_twice() {
    let Some(db) = TestDb::postgres() else {
        return; // no cluster outside CI (under CI, `postgres()` fails the test instead)
    };
    let officers = [
        spec("Trần Văn Bình", COMMUNE_A, &["22738-01"]),
        spec("Lê Thị Cúc", COMMUNE_A, &["22738-01", "22738-02"]),
        spec("Phạm Văn Dũng", COMMUNE_B, &["22741-01"]),
        spec("Hoàng Thị Lan", COMMUNE_B, &["22741-01", "22741-02"]),
    ];
    // Every instance holds each push open for a random 0-100 ms between writing its feed rows
    // and committing, so commits land out of `seq` order unless the server prevents it
    // (without the feed lock this test fails: rows are skipped).
    std::env::set_var(doorstep_server::pg::COMMIT_JITTER_ENV, "100");
    let mut server = Server::start_on(db, &officers, 4, 2);
    let url = server.database.clone().unwrap();
    let b = server.another_instance();
    let c = server.another_instance();
    // One address for the devices (their cursors are per server URL), three instances.
    let balancer = Proxy::start_balanced(vec![server.addr, b.addr, c.addr]);
    let url_lb = balancer.url();
    let mut devices: Vec<Device> = vec![
        server.enrol_device(0, "a1", 0),
        server.enrol_device(1, "a2", 0),
        server.enrol_device(0, "a1-second-phone", 0),
        server.enrol_device(2, "b1", 0),
        server.enrol_device(3, "b2", 0),
        server.enrol_device(3, "b2-second-phone", 0),
    ];
    let world = server.world.clone();
    // Every device works and syncs at the same time as the others, each round through another
    // instance, so pushes through one instance race pulls through the others.
    let reports: Vec<Vec<doorstep_core::sync::SyncReport>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter_mut()
            .enumerate()
            .map(|(i, d)| {
                let (world, url_lb) = (&world, &url_lb);
                s.spawn(move || {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(600 + i as u64);
                    let mut reports = Vec::new();
                    for round in 0..8 {
                        let n = rng.gen_range(3..15);
                        actions::random_work(d, world, &mut rng, n);
                        let r = d
                            .sync_with(url_lb, |c| {
                                c.push_batch = 7;
                                c.pull_page = 10;
                            })
                            .unwrap_or_else(|e| panic!("{} round {round}: {e}", d.name));
                        reports.push(r);
                    }
                    reports
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Two quiet rounds.
    for _ in 0..2 {
        for d in devices.iter_mut() {
            let r = d.sync(&url_lb).unwrap();
            assert_eq!(r.pull_duplicates, 0, "{}: delivered twice: {r:?}", d.name);
            assert_eq!(r.push_duplicates, 0, "{}: pushed twice: {r:?}", d.name);
        }
    }
    let forwarded = balancer
        .stats
        .forwarded
        .load(std::sync::atomic::Ordering::Relaxed);
    // At least a pull, a push and a pull per device and round, spread over three instances.
    assert!(forwarded >= 6 * 10 * 3, "{forwarded} requests forwarded");
    assert_eq!(balancer.faulted(), 0);
    balancer.set(Fault::Pass);
    let pushed: u64 = reports.iter().flatten().map(|r| r.pushed).sum();
    assert!(pushed > 100, "the devices did push ({pushed} operations)");
    for (d, rs) in devices.iter().zip(&reports) {
        // Delivered twice: a device would see an operation it holds again.
        let dups: u64 = rs.iter().map(|r| r.pull_duplicates).sum();
        assert_eq!(dups, 0, "{}: operations delivered twice", d.name);
        // Skipped: every feed row of the device's villages is in its log.
        let want = pgmirror::feed_dots(&url, &d.villages);
        let held = pgmirror::store_dots(d.store.connection());
        let missing: Vec<_> = want.difference(&held).collect();
        assert!(
            missing.is_empty(),
            "{}: {} feed rows of its villages never delivered, e.g. {:?}",
            d.name,
            missing.len(),
            missing.first()
        );
    }
    let refs: Vec<&Device> = devices.iter().collect();
    scope::assert_converged(&server, &refs);
}
