//! The restore drills (#14): a server restored from an older backup, and a phone restored from
//! an older copy of its store. After the next syncs, everything any replica still holds is
//! back everywhere it belongs, once. Run on SQLite and, with `DOORSTEP_TEST_BACKEND=postgres`,
//! on PostgreSQL (`pg_dump` and `pg_restore`, the server's view file kept across the restore).

use doorstep_core::{Options, Store};
use doorstep_tests::harness::{Device, OfficerSpec, Server, COMMUNE_A};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn one_village() -> Vec<OfficerSpec> {
    vec![OfficerSpec {
        name: "Trần Văn Bình".into(),
        commune: COMMUNE_A.into(),
        villages: vec!["22738-01".into(), "22738-02".into()],
    }]
}

/// Operations the server holds (its core store's log).
fn server_ops(server: &Server) -> i64 {
    server
        .reader()
        .query_row("SELECT count(*) FROM oplog", [], |r| r.get(0))
        .unwrap()
}

fn sync(d: &mut Device, url: &str) -> doorstep_core::sync::SyncReport {
    let r = d
        .sync(url)
        .unwrap_or_else(|e| panic!("{}: sync failed: {e}", d.name));
    assert!(r.rejected.is_empty(), "{}: {:?}", d.name, r.rejected);
    r
}

#[test]
fn a_server_restored_from_an_older_backup_gets_everything_back() {
    let mut server = Server::start(&one_village(), 6, 2);
    let url = server.url();
    let mut p1 = server.enrol_device(0, "phone 1", 0);
    let mut p2 = server.enrol_device(0, "phone 2", 0);
    let mut rng = StdRng::seed_from_u64(14);
    for d in [&mut p1, &mut p2] {
        sync(d, &url);
    }
    // A day's work, synced; the database backed up while serving.
    for d in [&mut p1, &mut p2] {
        actions::random_work(d, &server.world, &mut rng, 40);
        sync(d, &url);
    }
    sync(&mut p1, &url);
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("server-backup");
    server.backup(&backup);
    // More work synced after the backup.
    for d in [&mut p1, &mut p2] {
        actions::random_work(d, &server.world, &mut rng, 40);
        sync(d, &url);
    }
    sync(&mut p1, &url);
    let before = server_ops(&server);
    server.restore(&backup);
    let restored = server_ops(&server);
    assert!(
        restored < before,
        "the restore should have lost work ({restored} of {before} operations left)"
    );
    // Phone 2 works after the restore; then each phone syncs once.
    actions::random_work(&mut p2, &server.world, &mut rng, 20);
    let r2 = sync(&mut p2, &url);
    let r1 = sync(&mut p1, &url);
    assert!(r2.pushed > 0 && r1.pushed > 0, "{r1:?} {r2:?}");
    // Every phone's operations are back on the server after one sync each, and phone 1
    // received phone 2's work made after the restore.
    for d in [&p1, &p2] {
        let own = d.store.own_counter() as i64;
        assert_eq!(
            scope::replica_ops(&server.reader(), &d.replica()),
            (own, own),
            "{}: the server should hold all of its {own} operations once",
            d.name
        );
    }
    for f in &p2.facts {
        assert!(
            scope::holds_fact(p1.store.connection(), f),
            "phone 1 lacks phone 2's fact {f}"
        );
    }
    // Phone 2 receives what phone 1 sent again at its next sync.
    sync(&mut p2, &url);
    scope::assert_converged(&server, &[&p1, &p2]);
    // A further round changes nothing: nothing is pulled or pushed twice.
    for d in [&mut p1, &mut p2] {
        let r = sync(d, &url);
        assert_eq!((r.pushed, r.pulled), (0, 0), "{}: {r:?}", d.name);
    }
}

/// Reopen a device's store from an older copy of its file.
fn restore_phone(d: &mut Device, copy: &std::path::Path) {
    let options = Options {
        clock: d.clock.clone(),
        durability: doorstep_core::Durability::Normal,
        ..Options::default()
    };
    // Close the store before its file is replaced.
    d.store = Store::open_in_memory(options.clone()).unwrap();
    for suffix in ["-wal", "-shm"] {
        let mut p = d.path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
    std::fs::copy(copy, &d.path).unwrap();
    d.store = Store::open(&d.path, options).unwrap();
}

#[test]
fn a_phone_restored_from_an_older_copy_gets_its_work_back_and_reuses_no_counter() {
    let mut server = Server::start(&one_village(), 6, 2);
    let url = server.url();
    let mut p1 = server.enrol_device(0, "phone 1", 0);
    let mut p2 = server.enrol_device(0, "phone 2", 0);
    let mut rng = StdRng::seed_from_u64(41);
    for d in [&mut p1, &mut p2] {
        sync(d, &url);
        actions::random_work(d, &server.world, &mut rng, 30);
        sync(d, &url);
    }
    // A copy of phone 1's store (its file, checkpointed), then more work synced.
    p1.store
        .connection()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("phone-1-copy.db");
    std::fs::copy(&p1.path, &copy).unwrap();
    let old_counter = p1.store.own_counter();
    actions::random_work(&mut p1, &server.world, &mut rng, 30);
    sync(&mut p1, &url);
    let newest = p1.store.own_counter();
    assert!(newest > old_counter);
    // The phone is restored from the copy: it has forgotten its last work.
    restore_phone(&mut p1, &copy);
    assert_eq!(p1.store.own_counter(), old_counter);
    // Its next sync gives it its own work back; its next operation takes a new counter.
    let r = sync(&mut p1, &url);
    assert!(r.pulled >= newest - old_counter, "{r:?}");
    assert_eq!(p1.store.own_counter(), newest);
    actions::random_work(&mut p1, &server.world, &mut rng, 10);
    assert!(p1.store.own_counter() > newest);
    sync(&mut p1, &url);
    sync(&mut p2, &url);
    sync(&mut p1, &url);
    scope::assert_converged(&server, &[&p1, &p2]);
}
