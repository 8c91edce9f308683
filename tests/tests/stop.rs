//! A sync or an enrolment stopped by its caller (`Cancel`) or its deadline: it stops at a safe
//! point, keeps what it applied or had acknowledged (whole pages, whole batches), and the next
//! sync goes on without applying or sending anything twice. A server address of the wrong form
//! is refused at once.

use doorstep_core::sync::{self, SyncConfig, SyncProgress};
use doorstep_core::{Cancel, Error};
use doorstep_tests::harness::{free_port, wall_ms, Device, OfficerSpec, Server, COMMUNE_A};
use doorstep_tests::{actions, scope};
use rand::SeedableRng;
use std::time::{Duration, Instant};

fn officers() -> Vec<OfficerSpec> {
    vec![OfficerSpec {
        name: "Trần Văn Bình".into(),
        commune: COMMUNE_A.into(),
        villages: vec!["22738-01".into(), "22738-02".into()],
    }]
}

fn oplog_rows(d: &Device) -> i64 {
    d.store
        .connection()
        .query_row("SELECT count(*) FROM oplog", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_sync_cancelled_after_its_first_page_keeps_that_page_and_the_next_sync_completes() {
    let mut server = Server::start(&officers(), 8, 4);
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(0, "b", 0);
    let url = server.url();
    let before = oplog_rows(&b);
    // b pulls pages of 100; the caller cancels as the first page is applied.
    let mut config = b.config(&url);
    let cancel = Cancel::new();
    config.cancel = cancel.clone();
    let mut pages = 0;
    let out = sync::sync(&mut b.store, &config, &mut |p| {
        if let SyncProgress::Pulled { .. } = p {
            pages += 1;
            cancel.cancel();
        }
    });
    assert!(matches!(out, Err(Error::Cancelled)), "{out:?}");
    assert_eq!(pages, 1, "no page after the cancellation");
    assert_eq!(
        oplog_rows(&b) - before,
        100,
        "exactly the first page was applied, with its cursor"
    );
    // The next sync takes up from the cursor: nothing pulled twice.
    let report = b.sync(&url).unwrap();
    assert_eq!(report.pull_duplicates, 0, "{report:?}");
    assert!(report.pulled > 0);
    a.sync(&url).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
}

#[test]
fn a_push_cancelled_after_its_first_batch_resends_nothing_acknowledged() {
    let mut server = Server::start(&officers(), 4, 3);
    let mut a = server.enrol_device(0, "a", 0);
    let url = server.url();
    a.sync(&url).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    actions::random_work(&mut a, &server.world, &mut rng, 120);
    let unsent = sync::unsent_ops(&a.store, &url).unwrap();
    assert!(unsent > 100, "enough for three batches of 50: {unsent}");
    let mut config = a.config(&url);
    let cancel = Cancel::new();
    config.cancel = cancel.clone();
    let out = sync::sync(&mut a.store, &config, &mut |p| {
        if let SyncProgress::Pushed { .. } = p {
            cancel.cancel();
        }
    });
    assert!(matches!(out, Err(Error::Cancelled)), "{out:?}");
    assert_eq!(
        sync::unsent_ops(&a.store, &url).unwrap(),
        unsent - 50,
        "one batch of 50 acknowledged and remembered"
    );
    let report = a.sync(&url).unwrap();
    assert_eq!(report.push_duplicates, 0, "{report:?}");
    assert_eq!(report.pushed, unsent - 50);
    assert_eq!(sync::unsent_ops(&a.store, &url).unwrap(), 0);
    let mut b = server.enrol_device(0, "b", 0);
    b.sync(&url).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
}

/// A loopback address where nothing listens.
fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

#[test]
fn the_deadline_ends_the_retries_and_says_so() {
    let mut d = Device::new("a", wall_ms() as u64);
    d.token = "t".into();
    let url = closed_url();
    let started = Instant::now();
    let e = d
        .sync_with(&url, |c| {
            c.max_attempts = 20;
            c.initial_backoff = Duration::from_millis(400);
            c.deadline = Some(Duration::from_millis(1500));
        })
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(&e, Error::Network { .. }), "{e}");
    assert!(e.to_string().contains("deadline"), "{e}");
    // 20 attempts would take minutes; the deadline stops it before a wait that would pass it.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn an_enrolment_on_a_closed_port_fails_within_two_seconds_by_default() {
    let mut d = Device::new("a", wall_ms() as u64);
    let started = Instant::now();
    let e = sync::enrol(&mut d.store, &closed_url(), "ABCD-EFGH", "phone").unwrap_err();
    assert!(
        matches!(&e, Error::Network { attempts: 3, .. }),
        "three attempts: {e}"
    );
    // 0.5 s + 1 s of waits between the three attempts.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_cancel_during_a_wait_between_attempts_ends_it_at_once() {
    let mut d = Device::new("a", wall_ms() as u64);
    let mut config = d.config(&closed_url());
    config.max_attempts = 5;
    config.initial_backoff = Duration::from_secs(20);
    let cancel = config.cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        cancel.cancel();
    });
    let started = Instant::now();
    let e = sync::sync(&mut d.store, &config, &mut |_| {}).unwrap_err();
    t.join().unwrap();
    assert!(matches!(e, Error::Cancelled), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_server_address_of_the_wrong_form_is_refused_before_any_request() {
    let mut d = Device::new("a", wall_ms() as u64);
    for url in [
        "ftp://doorstep.example.vn",
        "doorstep.example.vn",
        "localhost:8080",
        "http://",
        "",
        "https://doorstep.example.vn/?x=1",
    ] {
        let started = Instant::now();
        let e = sync::enrol(&mut d.store, url, "ABCD-EFGH", "phone").unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: "server_url",
                    ..
                }
            ),
            "{url:?}: {e}"
        );
        let e = d.sync(url).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: "server_url",
                    ..
                }
            ),
            "{url:?}: {e}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    let mut c = SyncConfig::new("http://127.0.0.1:1", "t");
    c.deadline = Some(Duration::ZERO);
    assert!(matches!(
        sync::sync(&mut d.store, &c, &mut |_| {}),
        Err(Error::Invalid {
            field: "deadline",
            ..
        })
    ));
}
