//! Sign-in that resists guessing, over real HTTP on both backends: wrong passwords slow the
//! account down (the right password is refused while it waits, without being checked), every
//! failure is in the audit log (the name tried, never the password), a success clears the count,
//! and many accounts tried from one address slow that address down.

use doorstep_core::UnitLevel;
use doorstep_server::throttle::{BASE_DELAY_MS, FREE_ACCOUNT_FAILURES, FREE_ADDRESS_FAILURES};
use reqwest::blocking::Client;
use std::time::Duration;

mod common;
use common::http::{server, Server};
use common::{on_both_backends, put_units};

fn user(srv: &Server, name: &str) {
    srv.db
        .with_store(|s| put_units(s, &[("58", None, UnitLevel::Province)]))
        .unwrap();
    let hash = doorstep_server::auth::hash_password("right-password-1").unwrap();
    srv.backend
        .add_command_user("test", name, "province", "58", &hash, 0)
        .unwrap();
}

/// The answer's status and where it sends the browser.
fn sign_in(srv: &Server, name: &str, password: &str) -> (u16, String) {
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/signin", srv.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name={name}&password={password}"))
        .send()
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), location)
}

fn guessing_slows_the_account_down_and_is_audited_case() {
    let srv = server();
    user(&srv, "chief");
    for _ in 0..FREE_ACCOUNT_FAILURES {
        assert_eq!(
            sign_in(&srv, "chief", "guess"),
            (303, "/signin?failed=1".into())
        );
    }
    // Now the account waits: even the right password is refused, unchecked, with the wait.
    let (status, location) = sign_in(&srv, "Chief", "right-password-1");
    assert_eq!(status, 303);
    assert!(location.starts_with("/signin?failed=1&wait="), "{location}");
    let audit = srv.db.audit(100).unwrap();
    let failures: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "sign_in_failed")
        .collect();
    assert_eq!(failures.len(), FREE_ACCOUNT_FAILURES as usize);
    assert!(failures.iter().all(|a| a.target == "chief"));
    assert!(audit
        .iter()
        .all(|a| !a.detail.contains("guess") && !a.detail.contains("right-password")));
    // After the wait the right password works, and the count starts again.
    std::thread::sleep(Duration::from_millis(BASE_DELAY_MS as u64 + 200));
    let (status, location) = sign_in(&srv, "chief", "right-password-1");
    assert_eq!((status, location.as_str()), (303, "/dash"));
    assert_eq!(
        sign_in(&srv, "chief", "guess"),
        (303, "/signin?failed=1".into())
    );
}

fn many_accounts_from_one_address_slow_the_address_down_case() {
    let srv = server();
    user(&srv, "chief");
    for i in 0..FREE_ADDRESS_FAILURES {
        let (_, location) = sign_in(&srv, &format!("nobody{i}"), "guess");
        assert_eq!(location, "/signin?failed=1");
    }
    let (_, location) = sign_in(&srv, "chief", "right-password-1");
    assert!(location.contains("&wait="), "{location}");
}

#[test]
fn guessing_slows_the_account_down_and_is_audited() {
    on_both_backends(guessing_slows_the_account_down_and_is_audited_case);
}

#[test]
fn many_accounts_from_one_address_slow_the_address_down() {
    on_both_backends(many_accounts_from_one_address_slow_the_address_down_case);
}
