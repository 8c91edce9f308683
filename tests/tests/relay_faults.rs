//! Work relayed through a faulty link (#14): a phone carries another phone's signed runs, one
//! of them bent on the carrier (a modified phone), and delivers them through the fault proxy —
//! dropped requests and answers, cut bodies, 500s, deliveries twice. Every genuine operation
//! arrives once, nothing of the bent run is stored, and the author's own sync brings it right.
//! On SQLite and, with `DOORSTEP_TEST_BACKEND=postgres`, on PostgreSQL.

use doorstep_core::exchange::exchange_in_memory;
use doorstep_tests::harness::{OfficerSpec, Server};
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Duration;

fn team() -> Vec<OfficerSpec> {
    doorstep_tests::harness::pair(&["22738-01", "22738-02"])
}

/// The stamp the server holds for one operation, if it holds it.
fn server_hlc(server: &Server, replica: &uuid::Uuid, counter: i64) -> Option<i64> {
    use rusqlite::OptionalExtension;
    server
        .reader()
        .query_row(
            "SELECT hlc FROM oplog WHERE replica = ?1 AND counter = ?2",
            rusqlite::params![replica.as_bytes().as_slice(), counter],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
}

#[test]
fn relayed_runs_through_a_faulty_link_arrive_once_and_a_bent_one_never() {
    let mut server = Server::start(&team(), 5, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    let mut rng = StdRng::seed_from_u64(143);
    actions::random_work(&mut a, &server.world, &mut rng, 60);
    actions::random_work(&mut b, &server.world, &mut rng, 20);
    let (ra, rb) = exchange_in_memory(&mut a.store, &mut b.store).unwrap();
    assert!(
        ra.refused.is_empty() && rb.refused.is_empty(),
        "{ra:?} {rb:?}"
    );
    assert!(ra.runs_sent >= 2, "a's two villages: {ra:?}");
    // b is a modified phone: one of a's operations it carries is bent (its stamp moved).
    let bent: (i64, i64) = b
        .store
        .connection()
        .query_row(
            "SELECT counter, hlc FROM oplog WHERE replica = ?1 ORDER BY counter DESC LIMIT 1",
            [a.replica().as_bytes().as_slice()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    b.store
        .connection()
        .execute(
            "UPDATE oplog SET hlc = hlc + 1 WHERE replica = ?1 AND counter = ?2",
            rusqlite::params![a.replica().as_bytes().as_slice(), bent.0],
        )
        .unwrap();

    // b reaches a bad link: it syncs through the fault proxy until a sync completes.
    let proxy = Proxy::start(server.addr);
    proxy.random(
        144,
        vec![
            (5, Fault::Pass),
            (1, Fault::DropRequestAfter(120)),
            (1, Fault::DropResponseAfter(60)),
            (1, Fault::TruncateResponseBody),
            (1, Fault::Http500),
            (1, Fault::Duplicate),
            (1, Fault::Delay(Duration::from_millis(300))),
        ],
    );
    let mut rejected = Vec::new();
    let mut done = None;
    for _ in 0..30 {
        match b.sync_with(&proxy.url(), |c| {
            c.push_batch = 20;
            c.pull_page = 40;
        }) {
            Ok(r) => {
                rejected.extend(r.rejected.clone());
                done = Some(r);
                break;
            }
            Err(_) => continue,
        }
    }
    let done = done.expect("a sync through the faulty link completes within 30 tries");
    assert!(proxy.faulted() > 0, "no fault was applied");
    // Whatever was refused, it is the bent run's, as bad_signature; b's own work all arrived.
    assert!(
        rejected
            .iter()
            .all(|r| r.replica == a.replica() && r.reason == "bad_signature"),
        "{rejected:?} ({done:?})"
    );
    assert_eq!(
        scope::replica_ops(&server.reader(), &b.replica()).0,
        b.store.own_counter() as i64
    );
    // The bent operation was never stored; the other village's run arrived whole.
    assert_eq!(server_hlc(&server, &a.replica(), bent.0), None);
    let held = scope::replica_ops(&server.reader(), &a.replica()).0;
    assert!(held > 0, "a's genuine run was relayed");
    // a reaches coverage (a clean link): what the server lacks of it arrives, once.
    let r = a.sync(&url).unwrap();
    assert!(r.rejected.is_empty(), "{r:?}");
    assert_eq!(server_hlc(&server, &a.replica(), bent.0), Some(bent.1));
    b.sync(&url).unwrap();
    a.sync(&url).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
}
