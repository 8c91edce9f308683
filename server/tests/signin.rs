//! Sign-in that resists guessing, over real HTTP on both backends: wrong passwords slow the
//! account down (the right password is refused while it waits, without being checked), every
//! failure is in the audit log (the name tried, never the password), a success clears the count,
//! and many accounts tried from one address slow that address down. A user with a second factor
//! (TOTP) needs a valid code beside the password: a wrong, missing or replayed code is refused,
//! counted and audited; `--require-totp` refuses district and province users without one.

use doorstep_core::UnitLevel;
use doorstep_server::throttle::{BASE_DELAY_MS, FREE_ACCOUNT_FAILURES, FREE_ADDRESS_FAILURES};
use doorstep_server::totp;
use reqwest::blocking::Client;
use std::time::Duration;

mod common;
use common::http::{now_ms, server, server_with, Server};
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
    sign_in_with_code(srv, name, password, "")
}

/// The same, with a TOTP code in the form's `code` field.
fn sign_in_with_code(srv: &Server, name: &str, password: &str, code: &str) -> (u16, String) {
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/signin", srv.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name={name}&password={password}&code={code}"))
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

/// The code of `secret` for the step `delta` steps from now.
fn code(secret: &str, delta: i64) -> String {
    totp::code_at(secret, totp::step_of(now_ms()) + delta).unwrap()
}

/// Another 6-digit code than `c`.
fn wrong(c: &str) -> String {
    format!("{:06}", (c.parse::<u32>().unwrap() + 500_000) % 1_000_000)
}

/// The details of the `sign_in_failed` audit rows, oldest first.
fn failures(srv: &Server) -> Vec<String> {
    let mut rows: Vec<String> = srv
        .db
        .audit(1000)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "sign_in_failed")
        .map(|a| a.detail)
        .collect();
    rows.reverse();
    rows
}

fn a_second_factor_needs_a_fresh_valid_code_case() {
    assert_eq!(
        FREE_ACCOUNT_FAILURES, 3,
        "the failures below are counted for 3"
    );
    let srv = server();
    user(&srv, "chief");
    let (id, secret) = srv.backend.enable_totp("test", "chief", now_ms()).unwrap();
    let refused = (303, "/signin?failed=1".to_owned());
    // The right password alone, or with a wrong code, is refused as a wrong password is.
    assert_eq!(sign_in(&srv, "chief", "right-password-1"), refused);
    let good = code(&secret, 0);
    assert_eq!(
        sign_in_with_code(&srv, "chief", "right-password-1", &wrong(&good)),
        refused
    );
    let f = failures(&srv);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f.iter().all(|d| d.ends_with("reason=totp")), "{f:?}");
    // The right password and code sign in (the failures were the free ones).
    let (status, location) = sign_in_with_code(&srv, "chief", "right-password-1", &good);
    assert_eq!((status, location.as_str()), (303, "/dash"));
    // The same code again is refused (replayed), and audited.
    assert_eq!(
        sign_in_with_code(&srv, "chief", "right-password-1", &good),
        refused
    );
    assert!(failures(&srv).last().unwrap().ends_with("reason=totp"));
    // A wrong password with a good code is a wrong password (the code not looked at).
    let next = code(&secret, 1);
    assert_eq!(sign_in_with_code(&srv, "chief", "guess", &next), refused);
    assert!(!failures(&srv).last().unwrap().contains("reason="));
    // Wrong codes are counted like wrong passwords: the account waits, a good code unchecked.
    assert_eq!(
        sign_in_with_code(&srv, "chief", "right-password-1", &wrong(&next)),
        refused
    );
    let (_, location) = sign_in_with_code(&srv, "chief", "right-password-1", &next);
    assert!(location.starts_with("/signin?failed=1&wait="), "{location}");
    std::thread::sleep(Duration::from_millis(BASE_DELAY_MS as u64 + 200));
    // A code of the next step (the phone's clock a little ahead) is accepted once.
    let next = code(&secret, 1);
    let (_, location) = sign_in_with_code(&srv, "chief", "right-password-1", &next);
    assert_eq!(location, "/dash");
    // Neither the password nor any code is in the audit log; enabling is.
    let audit = srv.db.audit(1000).unwrap();
    assert!(audit.iter().all(|a| !a.detail.contains("right-password")
        && !a.detail.contains(&good)
        && !a.detail.contains(&next)
        && !a.detail.contains(&secret)));
    assert!(audit
        .iter()
        .any(|a| a.action == "totp_enable" && a.target == id.to_string()));
    // Disabled: the password alone signs in again.
    assert!(srv.backend.disable_totp("test", "chief", now_ms()).unwrap());
    assert!(!srv.backend.disable_totp("test", "chief", now_ms()).unwrap());
    assert_eq!(srv.backend.user_totp(id).unwrap(), None);
    let (_, location) = sign_in(&srv, "chief", "right-password-1");
    assert_eq!(location, "/dash");
    let audit = srv.db.audit(1000).unwrap();
    let disables: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "totp_disable")
        .collect();
    assert_eq!(disables.len(), 2);
    // Only users who sign in have a second factor.
    assert!(srv.backend.enable_totp("test", "nobody", now_ms()).is_err());
}

fn require_totp_refuses_district_and_province_users_without_it_case() {
    let srv = server_with(doorstep_server::http::DEFAULT_MAX_BODY_BYTES, |s| {
        s.require_totp = true;
    });
    user(&srv, "chief");
    srv.db
        .with_store(|s| {
            put_units(
                s,
                &[
                    ("585", Some("58"), UnitLevel::District),
                    ("58501", Some("585"), UnitLevel::Commune),
                ],
            )
        })
        .unwrap();
    let hash = doorstep_server::auth::hash_password("right-password-1").unwrap();
    srv.backend
        .add_command_user("test", "lead", "commune_lead", "58501", &hash, 0)
        .unwrap();
    // A province user without a second factor is refused with the page that says why…
    let (_, location) = sign_in(&srv, "chief", "right-password-1");
    assert_eq!(location, "/signin?failed=totp_required");
    assert!(failures(&srv)
        .last()
        .unwrap()
        .ends_with("reason=totp_required"));
    let page = srv
        .http
        .get(format!("{}/signin?failed=totp_required&lang=en", srv.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("doorstep user totp enable --name"), "{page}");
    // …a wrong password still gets the plain refusal…
    assert_eq!(
        sign_in(&srv, "chief", "guess").1,
        "/signin?failed=1".to_owned()
    );
    // …a commune lead is not concerned…
    assert_eq!(sign_in(&srv, "lead", "right-password-1").1, "/dash");
    // …and with a second factor the province user signs in.
    let (_, secret) = srv.backend.enable_totp("test", "chief", now_ms()).unwrap();
    let (_, location) = sign_in_with_code(&srv, "chief", "right-password-1", &code(&secret, 0));
    assert_eq!(location, "/dash");
}

#[test]
fn a_second_factor_needs_a_fresh_valid_code() {
    on_both_backends(a_second_factor_needs_a_fresh_valid_code_case);
}

#[test]
fn require_totp_refuses_district_and_province_users_without_it() {
    on_both_backends(require_totp_refuses_district_and_province_users_without_it_case);
}
