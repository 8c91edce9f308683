//! The offline lease and the signed wipe (#13): past its lease a phone shows no residents until
//! a sync renews it, and keeps recording work; a revoked phone's next sync pushes what the
//! server still takes (work stamped before the revocation), then erases the store on the
//! server's signed order — and an order not signed with its server's key is ignored.

use doorstep_core::Error;
use doorstep_tests::harness::{wall_ms, OfficerSpec, Server, COMMUNE_A};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn one() -> Vec<OfficerSpec> {
    vec![OfficerSpec {
        name: "Trần Văn Bình".into(),
        commune: COMMUNE_A.into(),
        villages: vec!["22738-01".into()],
    }]
}

const DAY_MS: i64 = 24 * 3600 * 1000;

#[test]
fn past_its_lease_a_phone_hides_residents_until_it_syncs() {
    let mut server = Server::start(&one(), 4, 2);
    let url = server.url();
    let mut p = server.enrol_device(0, "p", 0);
    let lease = p.store.lease().unwrap().expect("enrolment grants a lease");
    let expected = wall_ms() + 14 * DAY_MS;
    assert!((lease - expected).abs() < 60_000, "{lease} vs {expected}");
    p.sync(&url).unwrap();
    assert!(!p.store.search_residents("a", 5).unwrap().is_empty());
    // The lease ran out (as if the phone had been offline past it).
    p.store
        .connection()
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'lease_until_ms'",
            [wall_ms() - 1000],
        )
        .unwrap();
    let officer = p.officer;
    let day = p.store.today();
    match p.store.search_residents("a", 5) {
        Err(Error::LeaseExpired { .. }) => {}
        other => panic!("expected LeaseExpired, got {other:?}"),
    }
    assert!(matches!(
        p.store.my_households(officer, &day),
        Err(Error::LeaseExpired { .. })
    ));
    assert!(matches!(
        p.store.residents_needing_help(officer),
        Err(Error::LeaseExpired { .. })
    ));
    // Field work is still recorded, and synced.
    let mut rng = StdRng::seed_from_u64(13);
    let household = server.world.households["22738-01"][0];
    assert!(actions::visit(&mut p, household, &mut rng).is_some());
    let r = p.sync(&url).unwrap();
    assert!(r.pushed >= 1, "{r:?}");
    // The sync renewed the lease: residents show again.
    assert!(p.store.lease().unwrap().unwrap() > wall_ms() + 13 * DAY_MS);
    assert!(!p.store.search_residents("a", 5).unwrap().is_empty());
    scope::assert_converged(&server, &[&p]);
}

#[test]
fn a_revoked_phone_pushes_what_it_may_then_wipes_on_the_servers_signed_order() {
    let mut server = Server::start(&one(), 4, 2);
    let url = server.url();
    let mut p = server.enrol_device(0, "p", 0);
    let mut q = server.enrol_device(0, "q", 0);
    p.sync(&url).unwrap();
    q.sync(&url).unwrap();
    let mut rng = StdRng::seed_from_u64(31);
    // Work synced, then work not synced yet, stamped before the revocation (visits: they do
    // not move the phone's clock ahead as the random work does).
    for h in &server.world.households["22738-01"][..3] {
        assert!(actions::visit(&mut p, *h, &mut rng).is_some());
    }
    p.sync(&url).unwrap();
    p.clock
        .set((wall_ms() - p.store.clock_offset_ms() - 5_000) as u64);
    let household = server.world.households["22738-01"][1];
    let before = actions::visit(&mut p, household, &mut rng).expect("a visit");
    std::thread::sleep(std::time::Duration::from_millis(20));
    server.revoke(p.device_id);
    // Work stamped after the revocation (the phone did not know yet).
    p.clock
        .set((wall_ms() - p.store.clock_offset_ms() + 5_000) as u64);
    let after = actions::visit(&mut p, household, &mut rng).expect("a visit");
    // An order not signed with the key this phone got at enrolment is not obeyed.
    let real_key = p.store.server_key().unwrap().unwrap();
    let forged_key = doorstep_core::sign::new_key().verifying_key().to_bytes();
    p.store.set_enrolment_keys(&forged_key, None).unwrap();
    match p.sync(&url) {
        Err(Error::Http { status: 401, .. }) => {}
        other => panic!("expected a plain 401, got {other:?}"),
    }
    assert!(scope::holds_fact(p.store.connection(), &before));
    // With its real server key the order checks out: the last push, then the wipe.
    p.store.set_enrolment_keys(&real_key, None).unwrap();
    let r = p.sync(&url).unwrap();
    assert!(r.wiped, "{r:?}");
    let reasons: Vec<&str> = r.rejected.iter().map(|x| x.reason.as_str()).collect();
    assert_eq!(reasons, ["revoked"], "{r:?}");
    let conn = server.reader();
    assert!(
        scope::holds_fact(&conn, &before),
        "work before the revocation is kept"
    );
    assert!(
        !scope::holds_fact(&conn, &after),
        "work after it is refused"
    );
    drop(conn);
    // Nothing personal is left on the phone, in the tables or in the file.
    for table in ["residents", "households", "visits", "assists", "oplog"] {
        let n: i64 = p
            .store
            .connection()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table} still holds rows");
    }
    assert!(p.store.wiped_at().unwrap().is_some());
    // The residents' names (the harness names them "<name> <n>") are not in the file's bytes.
    let bytes = std::fs::read(p.path()).unwrap();
    let resident = server
        .world
        .residents
        .values()
        .flatten()
        .next()
        .copied()
        .unwrap();
    let name: String = q
        .store
        .connection()
        .query_row(
            "SELECT full_name FROM residents WHERE id = ?1",
            [resident.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    let hit = bytes.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(!hit, "a resident's name is still in the store's file");
    // The other phone is not touched.
    let r = q.sync(&url).unwrap();
    assert!(!r.wiped);
    assert!(scope::holds_fact(q.store.connection(), &before));
}

/// Open the server's database beside the serving process (the console's way) and end an
/// officer's assignment to a village.
fn unassign(server: &Server, officer: uuid::Uuid, village: &str) {
    let target = doorstep_core::AssignTarget::Village(village.to_owned());
    let now = wall_ms();
    match &server.database {
        None => {
            let b = doorstep_server::SqliteBackend::open(&server.db).unwrap();
            b.set_assignment("cli", officer, target, false, now)
                .unwrap();
        }
        Some(url) => {
            let b = doorstep_server::PgBackend::open(url, Default::default()).unwrap();
            b.set_assignment("cli", officer, target, false, now)
                .unwrap();
        }
    }
}

#[test]
fn a_village_that_leaves_a_phones_scope_is_erased_from_it() {
    let officers = vec![OfficerSpec {
        name: "Trần Văn Bình".into(),
        commune: COMMUNE_A.into(),
        villages: vec!["22738-01".into(), "22738-02".into()],
    }];
    let mut server = Server::start(&officers, 4, 2);
    let url = server.url();
    let mut p = server.enrol_device(0, "p", 0);
    p.sync(&url).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let h2 = server.world.households["22738-02"][0];
    let visit2 = actions::visit(&mut p, h2, &mut rng).unwrap();
    p.sync(&url).unwrap();
    let count = |p: &doorstep_tests::harness::Device, v: &str| -> i64 {
        p.store
            .connection()
            .query_row(
                "SELECT count(*) FROM households WHERE village_code = ?1",
                [v],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(count(&p, "22738-02"), 4);
    unassign(&server, server.world.officers[0], "22738-02");
    let r = p.sync(&url).unwrap();
    assert_eq!(r.forgotten, 4, "{r:?}");
    assert_eq!(count(&p, "22738-02"), 0);
    assert_eq!(count(&p, "22738-01"), 4, "the village still assigned stays");
    // The residents of village 02 and their operations are gone from the phone.
    let residents: i64 = p
        .store
        .connection()
        .query_row(
            "SELECT count(*) FROM residents WHERE household_id = ?1",
            [h2.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(residents, 0);
    assert!(!scope::holds_fact(p.store.connection(), &visit2));
    // The phone's own visit there stays on the server; the phone's next syncs are quiet.
    assert!(scope::holds_fact(&server.reader(), &visit2));
    let again = p.sync(&url).unwrap();
    assert_eq!((again.forgotten, again.pushed), (0, 0), "{again:?}");
}

/// A revocation that lands between a sync's push and its last pull: the pull is answered with
/// the wipe order, and the same sync obeys it — the report says what was pushed and that the
/// store was wiped, instead of ending in a 401 that loses the report.
#[test]
fn a_revocation_between_the_push_and_the_last_pull_wipes_in_the_same_sync() {
    use doorstep_tests::proxy::{Fault, Proxy};
    let mut server = Server::start(&one(), 4, 2);
    let url = server.url();
    let mut p = server.enrol_device(0, "p", 0);
    p.sync(&url).unwrap();
    let mut rng = StdRng::seed_from_u64(32);
    p.clock
        .set((wall_ms() - p.store.clock_offset_ms() - 5_000) as u64);
    let mut visits = Vec::new();
    for h in &server.world.households["22738-01"][..3] {
        visits.push(actions::visit(&mut p, *h, &mut rng).expect("a visit"));
    }
    // The first pull passes; the last one (with the push: `/v1/sync/push-pull`) is held back a
    // second, while the station revokes.
    let proxy = Proxy::start(server.addr);
    proxy.only_paths(Some("pull"));
    proxy.queue([
        Fault::Pass,
        Fault::Delay(std::time::Duration::from_millis(1500)),
    ]);
    let proxied = proxy.url();
    let device = p.device_id;
    let syncing = std::thread::spawn(move || {
        let r = p.sync(&proxied);
        (p, r)
    });
    let started = std::time::Instant::now();
    while proxy.faulted() == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the last pull never came"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.revoke(device);
    let (p, r) = syncing.join().unwrap();
    let r = r.expect("the sync obeys the wipe order instead of failing");
    assert!(r.wiped, "{r:?}");
    assert_eq!(r.pushed, 3, "{r:?}");
    let conn = server.reader();
    for v in &visits {
        assert!(scope::holds_fact(&conn, v), "pushed before the revocation");
    }
    let left: i64 = p
        .store
        .connection()
        .query_row("SELECT count(*) FROM residents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "the store was wiped");
}
