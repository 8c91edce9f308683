//! File bundles (#14): work carried on a USB stick, an SD card or a chat attachment — from a
//! phone to the server (opened with `doorstep bundle import`) and from a phone to another
//! phone — sealed for its recipient, signed by its sender; opening one twice, or a bent one,
//! stores nothing more. On SQLite and, with `DOORSTEP_TEST_BACKEND=postgres`, on PostgreSQL.

use doorstep_tests::harness::{OfficerSpec, Server};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn team() -> Vec<OfficerSpec> {
    doorstep_tests::harness::pair(&["22738-01"])
}

#[test]
fn a_bundle_carries_a_phones_work_to_the_server_once() {
    let mut server = Server::start(&team(), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    a.sync(&url).unwrap();
    let mut rng = StdRng::seed_from_u64(21);
    actions::random_work(&mut a, &server.world, &mut rng, 25);
    // No link: the day's work leaves on a USB stick, sealed for the server.
    let server_key = a.store.server_key().unwrap().unwrap();
    let bundle = a.store.export_bundle(&server_key, "usb", None).unwrap();
    let r = server.import_bundle(&bundle).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.applied as u64, a.store.own_counter());
    assert_eq!(
        scope::replica_ops(&server.reader(), &a.replica()).0,
        a.store.own_counter() as i64
    );
    // Twice: nothing more.
    let again = server.import_bundle(&bundle).unwrap();
    assert_eq!(again.applied, 0);
    // Bent, or not a bundle: refused, nothing stored, the error names the bundle only.
    let mut bent = bundle.clone();
    let mid = bent.len() / 2;
    bent[mid] ^= 0x40;
    let e = server.import_bundle(&bent).unwrap_err();
    assert!(e.contains("bundle"), "{e}");
    assert!(server.import_bundle(b"PK\x03\x04 a zip file").is_err());
    // The phone's next sync has nothing to push (the server says it holds it all).
    let s = a.sync(&url).unwrap();
    assert_eq!((s.pushed, s.push_duplicates), (0, 0), "{s:?}");
    // The audit log says a bundle was imported, with counts only.
    let audit: String = server
        .reader()
        .query_row(
            "SELECT detail FROM audit WHERE action = 'bundle_import' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(audit.starts_with("runs="), "{audit}");
}

#[test]
fn a_bundle_carries_work_to_another_phone_which_delivers_it() {
    let mut server = Server::start(&team(), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    let mut rng = StdRng::seed_from_u64(22);
    actions::random_work(&mut a, &server.world, &mut rng, 20);
    // Sealed for b (its key from its certificate, shown as a QR code, say).
    let b_key = b.store.certificate().unwrap().unwrap().public_key;
    let bundle = a.store.export_bundle(&b_key, "sd card", None).unwrap();
    // Not for the server: it cannot open it.
    assert!(server.import_bundle(&bundle).is_err());
    let r = b.store.import_bundle(&bundle).unwrap();
    assert!(r.refused.is_empty() && r.ops_new > 0, "{r:?}");
    for f in &a.facts {
        assert!(
            scope::holds_fact(b.store.connection(), f),
            "b lacks a's {f}"
        );
    }
    // Again: nothing new.
    assert_eq!(b.store.import_bundle(&bundle).unwrap().ops_new, 0);
    let s = b.sync(&url).unwrap();
    assert!(s.relayed > 0 && s.rejected.is_empty(), "{s:?}");
    a.sync(&url).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
}

/// The command centre's upload page (`/admin/bundles`): a bundle brought on a USB stick is
/// sent as it is; the answer counts what was new; the same bundle again, or an older one
/// after a newer, adds nothing; a bent file or an empty body is a 400 naming the bundle.
#[test]
fn the_admin_upload_page_opens_bundles_once_in_any_order() {
    let mut server = Server::start(&team(), 4, 2);
    let url = server.url();
    let token = server.world.admin_token.clone();
    let http = reqwest::blocking::Client::new();
    let upload = |bytes: Vec<u8>| {
        let r = http
            .post(format!("{url}/admin/bundles"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = serde_json::from_str(&r.text().unwrap()).unwrap();
        (status, body)
    };
    let page = http
        .get(format!("{url}/admin/bundles?lang=en"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().unwrap().contains("Bundle import"));
    // Without a sign-in: refused, nothing opened.
    let anon = http
        .post(format!("{url}/admin/bundles"))
        .body(vec![1u8, 2, 3])
        .send()
        .unwrap();
    assert!(anon.status().is_client_error() || anon.status().is_redirection());

    let mut a = server.enrol_device(0, "a", 0);
    a.sync(&url).unwrap();
    let mut rng = StdRng::seed_from_u64(23);
    actions::random_work(&mut a, &server.world, &mut rng, 10);
    let server_key = a.store.server_key().unwrap().unwrap();
    let first = a.store.export_bundle(&server_key, "usb", None).unwrap();
    let at_first = a.store.own_counter();
    actions::random_work(&mut a, &server.world, &mut rng, 10);
    let second = a.store.export_bundle(&server_key, "usb", None).unwrap();
    assert!(a.store.own_counter() > at_first);

    // The newer bundle first: everything in it is new.
    let (status, body) = upload(second.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sender"], a.device_id.to_string());
    assert_eq!(body["applied"].as_u64(), Some(a.store.own_counter()));
    assert_eq!(body["rejected"], serde_json::json!([]));
    // The older one after it, and the newer one again: nothing new, nothing refused.
    for again in [first, second.clone()] {
        let (status, body) = upload(again);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["applied"], 0, "{body}");
        assert!(body["duplicates"].as_u64().unwrap() > 0, "{body}");
        assert_eq!(body["rejected"], serde_json::json!([]));
    }
    assert_eq!(
        scope::replica_ops(&server.reader(), &a.replica()).0,
        a.store.own_counter() as i64
    );
    // A bent file, and no file: 400, the message names the bundle.
    let mut bent = second;
    let mid = bent.len() / 2;
    bent[mid] ^= 0x01;
    for bad in [bent, Vec::new()] {
        let (status, body) = upload(bad);
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("bundle"),
            "{body}"
        );
    }
    // Audited under the admin who uploaded, with counts only (one row per opened bundle).
    let rows: Vec<(String, String)> = {
        let conn = server.reader();
        let mut stmt = conn
            .prepare("SELECT actor, detail FROM audit WHERE action = 'bundle_import' ORDER BY id")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows
    };
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows
        .iter()
        .all(|(actor, d)| actor != "cli" && d.starts_with("runs=")));
    // The phone's next sync has nothing left to push.
    let s = a.sync(&url).unwrap();
    assert_eq!((s.pushed, s.push_duplicates), (0, 0), "{s:?}");
}

/// A new officer's phone takes its whole area from a file the station made (`doorstep bundle
/// area`) instead of pulling it over the link; its next sync brings only what came after. The
/// same file again changes nothing; a file made for another phone, or bent, is refused whole.
#[test]
fn a_new_phone_takes_its_whole_area_from_a_file_and_syncs_on_from_there() {
    let mut server = Server::start(&team(), 4, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    a.sync(&url).unwrap();
    let mut rng = StdRng::seed_from_u64(29);
    actions::random_work(&mut a, &server.world, &mut rng, 25);
    a.sync(&url).unwrap();
    // The new phone: enrolled, never synced; its area leaves the station on an SD card.
    let mut n = server.enrol_device(1, "n", 0);
    let file = server.area_bundle(n.device_id).unwrap();
    let r = doorstep_core::sync::import_area_bundle(&mut n.store, &file, &url).unwrap();
    assert!(r.applied > 0 && r.duplicates == 0 && r.pages >= 1, "{r:?}");
    scope::assert_converged(&server, &[&a, &n]);
    let again = doorstep_core::sync::import_area_bundle(&mut n.store, &file, &url).unwrap();
    assert_eq!(again.applied, 0, "{again:?}");
    // Later work reaches it by sync, and only that.
    actions::random_work(&mut a, &server.world, &mut rng, 5);
    a.sync(&url).unwrap();
    let s = n.sync(&url).unwrap();
    assert!(s.pulled > 0 && s.pull_duplicates == 0, "{s:?}");
    assert!(s.pulled < r.applied, "the whole area again: {s:?}");
    scope::assert_converged(&server, &[&a, &n]);
    // A file made for another phone, a bent one: refused, naming the bundle only.
    let other = server.area_bundle(a.device_id).unwrap();
    let e = doorstep_core::sync::import_area_bundle(&mut n.store, &other, &url)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bundle"), "{e}");
    let mut bent = file.clone();
    let mid = bent.len() / 2;
    bent[mid] ^= 0x08;
    assert!(doorstep_core::sync::import_area_bundle(&mut n.store, &bent, &url).is_err());
    // A revoked device gets none; the console's bundles are audited, counts only.
    server.revoke(a.device_id);
    assert!(server.area_bundle(a.device_id).is_err());
    let audits: Vec<String> = server
        .reader()
        .prepare("SELECT detail FROM audit WHERE action = 'area_bundle' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(audits.len(), 2, "{audits:?}");
    assert!(audits.iter().all(|d| d.starts_with("pages=")), "{audits:?}");
}
