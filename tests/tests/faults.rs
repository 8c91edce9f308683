//! Broken links and a killed server: after each fault, a clean sync converges, nothing is lost
//! and nothing is counted twice.

use doorstep_core::sync::SyncProgress;
use doorstep_core::{NewVisit, VisitOutcome};
use doorstep_tests::harness::{Device, OfficerSpec, Server, COMMUNE_A};
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::{actions, scope};
use rand::SeedableRng;
use std::time::Duration;

fn officers() -> Vec<OfficerSpec> {
    vec![OfficerSpec {
        name: "Trần Văn Bình".into(),
        commune: COMMUNE_A.into(),
        villages: vec!["22738-01".into(), "22738-02".into()],
    }]
}

/// Two phones of one officer, synced once; the first then works offline (enough for several
/// push batches) and the second too.
fn setup(seed: u64) -> (Server, Device, Device, Proxy) {
    let mut server = Server::start(&officers(), 4, 3);
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(0, "b", 0);
    a.sync(&server.url()).unwrap();
    b.sync(&server.url()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    actions::random_work(&mut a, &server.world, &mut rng, 150);
    actions::random_work(&mut b, &server.world, &mut rng, 40);
    b.sync(&server.url()).unwrap();
    let proxy = Proxy::start(server.addr);
    (server, a, b, proxy)
}

/// A faulted sync of `a` through the proxy (one attempt per request: the fault is seen),
/// then clean syncs of both, then the end-state checks. Returns the faulted sync's result
/// and the first clean sync's report.
fn run(
    fault: Fault,
    path: Option<&str>,
    tweak: impl FnOnce(&mut doorstep_core::sync::SyncConfig),
) -> (
    doorstep_core::Result<doorstep_core::sync::SyncReport>,
    doorstep_core::sync::SyncReport,
) {
    let (server, mut a, mut b, proxy) = setup(7);
    proxy.only_paths(path);
    proxy.set(fault);
    let faulted = a.sync_with(&proxy.url(), tweak);
    assert!(proxy.faulted() > 0, "the fault was never applied");
    proxy.clear();
    let clean = a.sync(&server.url()).unwrap();
    b.sync(&server.url()).unwrap();
    a.sync(&server.url()).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
    (faulted, clean)
}

fn once(c: &mut doorstep_core::sync::SyncConfig) {
    c.max_attempts = 1;
}

#[test]
fn dropped_mid_request() {
    let (faulted, _) = run(Fault::DropRequestAfter(300), Some("/v1/sync/push"), once);
    assert!(faulted.is_err());
}

#[test]
fn dropped_mid_response_the_applied_batch_is_not_sent_again() {
    // The server applied the batch; the answer never arrived. The clean sync's first pull
    // says what the server holds of this replica (`held`), so the batch is not sent again.
    let (faulted, clean) = run(Fault::DropResponseAfter(40), Some("/v1/sync/push"), once);
    assert!(faulted.is_err());
    assert_eq!(
        clean.push_duplicates, 0,
        "the applied batch was sent again: {clean:?}"
    );
}

#[test]
fn truncated_pull_bodies() {
    let (faulted, _) = run(Fault::TruncateResponseBody, Some("/v1/sync/pull"), once);
    assert!(faulted.is_err());
}

#[test]
fn truncated_push_bodies() {
    let (faulted, clean) = run(Fault::TruncateResponseBody, Some("/v1/sync/push"), once);
    assert!(faulted.is_err());
    // Applied, answer cut: not sent again (see above); everything converged all the same.
    assert_eq!(clean.push_duplicates, 0, "{clean:?}");
}

#[test]
fn http_500s() {
    let (faulted, _) = run(Fault::Http500, None, |c| c.max_attempts = 3);
    match faulted {
        Err(doorstep_core::Error::Network { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected the client to give up after retries: {other:?}"),
    }
}

#[test]
fn delays_shorter_than_the_timeout() {
    let (faulted, _) = run(Fault::Delay(Duration::from_millis(300)), None, |c| {
        c.timeout = Duration::from_secs(5)
    });
    let r = faulted.expect("slow but inside the timeout");
    assert!(r.pushed > 0 && r.retries == 0, "{r:?}");
}

#[test]
fn a_delay_longer_than_the_timeout_then_late_delivery() {
    // The first push waits 3 s at the proxy; the client gives up after 1 s and retries; the
    // proxy still delivers the first request late, after the retry.
    let (server, mut a, mut b, proxy) = setup(8);
    proxy.only_paths(Some("/v1/sync/push"));
    proxy.queue([Fault::Delay(Duration::from_secs(3))]);
    let r = a
        .sync_with(&proxy.url(), |c| {
            c.timeout = Duration::from_secs(1);
            c.max_attempts = 4;
        })
        .expect("the retry gets through");
    assert!(r.retries >= 1, "{r:?}");
    std::thread::sleep(Duration::from_millis(2500)); // the late delivery lands
    assert!(proxy.forwarded() >= r.requests as u64);
    a.sync(&server.url()).unwrap();
    b.sync(&server.url()).unwrap();
    a.sync(&server.url()).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
}

#[test]
fn every_request_delivered_twice() {
    let (faulted, _) = run(Fault::Duplicate, None, |_| {});
    let r = faulted.expect("duplicates are harmless");
    // The server saw each push twice and answered the second with duplicates.
    assert!(r.push_duplicates > 0, "{r:?}");
    assert_eq!(r.pushed, 0, "the first delivery applied everything: {r:?}");
}

#[test]
fn random_faults_on_every_route() {
    let (server, mut a, mut b, proxy) = setup(9);
    proxy.random(
        99,
        vec![
            (3, Fault::Pass),
            (1, Fault::DropRequestAfter(150)),
            (1, Fault::DropResponseAfter(100)),
            (1, Fault::TruncateResponseBody),
            (1, Fault::Http500),
            (1, Fault::Duplicate),
        ],
    );
    for _ in 0..6 {
        let _ = a.sync_with(&proxy.url(), |c| c.max_attempts = 2);
        let _ = b.sync_with(&proxy.url(), |c| c.max_attempts = 2);
    }
    assert!(proxy.faulted() > 3);
    proxy.clear();
    for _ in 0..2 {
        a.sync(&server.url()).unwrap();
        b.sync(&server.url()).unwrap();
    }
    scope::assert_converged(&server, &[&a, &b]);
}

/// The server process is SIGKILLed in the middle of a 5,000-operation push, restarted on the
/// same database and port; the sync, retrying, completes; nothing is lost or doubled.
#[test]
fn server_killed_mid_push() {
    let mut server = Server::start(&officers(), 4, 3);
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(0, "b", 0);
    let url = server.url();
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    let households = server.world.households_in(&a.villages);
    for i in 0..5000 {
        a.clock.advance(10);
        let id = a
            .store
            .record_visit(NewVisit {
                household_id: households[i % households.len()],
                officer_id: a.officer,
                at_ms: None,
                outcome: VisitOutcome::NobodyHome,
                revisit_at_ms: None,
                note: None,
                location: None,
            })
            .unwrap();
        a.facts.insert(id);
    }
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let killer = std::thread::spawn(move || {
        // Kill once a fifth of the batch has been acknowledged.
        while let Ok(sent) = rx.recv_timeout(Duration::from_secs(60)) {
            if sent >= 1000 {
                server.kill();
                std::thread::sleep(Duration::from_millis(300));
                server.spawn();
                return server;
            }
        }
        panic!("the push never got going");
    });
    let config = {
        let mut c = a.config(&url);
        c.push_batch = 100;
        c.max_attempts = 40;
        c.initial_backoff = Duration::from_millis(50);
        c.max_backoff = Duration::from_millis(500);
        c
    };
    let report = doorstep_core::sync::sync(&mut a.store, &config, &mut |p| {
        if let SyncProgress::Pushed { ops, .. } = p {
            let _ = tx.send(ops);
        }
    });
    drop(tx);
    let server = killer.join().expect("killer thread");
    let report = report.expect("the sync survives the restart");
    assert!(
        report.retries > 0,
        "the kill should have cost retries: {report:?}"
    );
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    a.sync(&url).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
}

#[test]
fn a_lost_enrolment_answer_is_retried_by_the_client() {
    // The server enrolled the phone and committed; the answer never arrived. The client's
    // retry with the same code gets the device back (one device, a working token); another
    // phone with that code is told it is used.
    let mut server = Server::start(&officers(), 1, 1);
    let proxy = Proxy::start(server.addr);
    proxy.only_paths(Some("/v1/enrol"));
    proxy.queue([Fault::DropResponseAfter(0)]);
    let code = server.take_code(0);
    let mut d = Device::new("a", doorstep_tests::harness::wall_ms() as u64);
    let e = doorstep_core::sync::enrol(&mut d.store, &proxy.url(), &code, "a")
        .expect("the retry enrols");
    assert_eq!(proxy.faulted(), 1, "the first answer was lost");
    d.officer = e.officer_id;
    d.token = e.token;
    d.device_id = e.device_id;
    d.villages = server.world.officer_villages[0].clone();
    d.sync(&server.url()).expect("the retry's token works");
    let conn = server.reader();
    let devices: i64 = conn
        .query_row(
            "SELECT count(*) FROM devices WHERE replica = ?1",
            [d.replica().as_bytes().as_slice()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(devices, 1);
    let retries: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'enrol_retry' AND target = ?1",
            [d.device_id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(retries, 1);
    let mut other = Device::new("b", doorstep_tests::harness::wall_ms() as u64);
    match doorstep_core::sync::enrol(&mut other.store, &server.url(), &code, "b") {
        Err(doorstep_core::Error::EnrolRefused(r)) => {
            assert_eq!(r, doorstep_core::wire::EnrolRefusal::Used)
        }
        got => panic!("another phone with a used code: {got:?}"),
    }
}

/// A day's sync is two requests: a pull, then the last push carrying the final pull
/// (`/v1/sync/push-pull`); with nothing to send, one. A server that does not know that route
/// (`404`, an older server) gets the push alone and the pull after, and converges the same.
#[test]
fn the_last_push_carries_the_final_pull_and_an_older_server_is_still_served() {
    let (server, mut a, mut b, proxy) = setup(11);
    // One batch, one page.
    let big = |c: &mut doorstep_core::sync::SyncConfig| {
        c.push_batch = 1000;
        c.pull_page = 1000;
    };
    let r = a.sync_with(&proxy.url(), big).unwrap();
    assert!(r.pushed > 0 && r.pulled > 0, "{r:?}");
    assert_eq!((r.requests, r.retries), (2, 0), "{r:?}");
    // Nothing to send: the first pull reads the feed to its end.
    let r = b.sync_with(&proxy.url(), big).unwrap();
    assert!(r.pushed == 0 && r.pulled > 0, "{r:?}");
    assert_eq!(r.requests, 1, "{r:?}");
    scope::assert_converged(&server, &[&a, &b]);
    // An older server: push-pull answered 404, then the push alone and the pull.
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    actions::random_work(&mut a, &server.world, &mut rng, 30);
    actions::random_work(&mut b, &server.world, &mut rng, 30);
    b.sync(&server.url()).unwrap();
    proxy.only_paths(Some("/v1/sync/push-pull"));
    proxy.set(Fault::Http404);
    let r = a.sync_with(&proxy.url(), big).unwrap();
    assert!(r.pushed > 0 && r.pulled > 0, "{r:?}");
    assert_eq!(r.requests, 4, "pull, push-pull (404), push, pull: {r:?}");
    assert_eq!(proxy.faulted(), 1);
    proxy.clear();
    b.sync(&server.url()).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
}
