//! Tokens, scope and malformed requests, end to end: refused requests store nothing.

use doorstep_core::wire::{PushRequest, PROTOCOL_VERSION};
use doorstep_core::{HouseholdEdit, Op};
use doorstep_tests::harness::{wall_ms, Device, OfficerSpec, Server, COMMUNE_A, COMMUNE_B};
use doorstep_tests::{actions, scope};
use rand::SeedableRng;
use reqwest::blocking::Client;

fn officers() -> Vec<OfficerSpec> {
    vec![
        OfficerSpec {
            name: "Trần Văn Bình".into(),
            commune: COMMUNE_A.into(),
            villages: vec!["22738-01".into()],
        },
        OfficerSpec {
            name: "Phạm Văn Dũng".into(),
            commune: COMMUNE_B.into(),
            villages: vec!["22741-01".into()],
        },
    ]
}

/// (operations, feed rows) on the server.
fn stored(server: &Server) -> (i64, i64) {
    server
        .reader()
        .query_row(
            "SELECT (SELECT count(*) FROM oplog), (SELECT count(*) FROM feed)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// A device with one fresh unsynced visit; returns its unsent operations.
fn device_with_work(server: &mut Server, officer: usize, name: &str) -> (Device, Vec<Op>) {
    let mut d = server.enrol_device(officer, name, 0);
    d.sync(&server.url()).unwrap();
    let h = server.world.households_in(&d.villages)[0];
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    actions::visit(&mut d, h, &mut rng).unwrap();
    let ops = d.store.own_ops_after(0, 100).unwrap();
    (d, ops)
}

fn push_json(ops: &[Op], protocol: u32) -> serde_json::Value {
    serde_json::to_value(PushRequest {
        protocol,
        device_time_ms: wall_ms(),
        ops: ops.to_vec(),
        segments: Vec::new(),
    })
    .unwrap()
}

/// POST a JSON body; returns (status, parsed error body if any).
fn post(
    server: &Server,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut r = Client::new()
        .post(format!("{}{path}", server.url()))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn missing_wrong_and_revoked_tokens_are_401_and_store_nothing() {
    let mut server = Server::start(&officers(), 2, 2);
    let (mut d, ops) = device_with_work(&mut server, 0, "a");
    let before = stored(&server);
    let body = serde_json::to_vec(&push_json(&ops, PROTOCOL_VERSION)).unwrap();
    let pull = serde_json::to_vec(&serde_json::json!({
        "protocol": 2, "device_time_ms": wall_ms(), "cursor": null, "limit": 100, "own": 0, "relaying": []
    }))
    .unwrap();
    for token in [None, Some("not-a-token"), Some("")] {
        let (status, err) = post(&server, "/v1/sync/push", token, body.clone());
        assert_eq!(status, 401, "push with token {token:?}");
        assert_eq!(err["error"], "unauthorized");
        let (status, _) = post(&server, "/v1/sync/pull", token, pull.clone());
        assert_eq!(status, 401, "pull with token {token:?}");
    }
    assert_eq!(stored(&server), before);
    // Revoked: the core client's sync pushes the work made before the revocation (its last
    // push), then wipes the store on the server's signed order (docs/sync-protocol.md, "Lease
    // and wipe"). Afterwards a pull is 401 `revoked` with the order, and a push takes nothing
    // new.
    server.revoke(d.device_id);
    let r = d.sync(&server.url()).unwrap();
    assert!(r.wiped && r.pushed == ops.len() as u64, "{r:?}");
    let after = stored(&server);
    let (status, err) = post(&server, "/v1/sync/pull", Some(&d.token), pull);
    assert_eq!(status, 401);
    assert_eq!(err["reason"], "revoked");
    assert!(err["wipe"]["signature"].is_array(), "{err}");
    let (status, _) = post(&server, "/v1/sync/push", Some(&d.token), body);
    assert_eq!(status, 200);
    assert_eq!(stored(&server), after, "nothing new stored");
}

#[test]
fn out_of_scope_pushes_are_rejected_and_pulls_stay_in_scope() {
    let mut server = Server::start(&officers(), 2, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut a2 = server.enrol_device(0, "a2", 0);
    let mut b = server.enrol_device(1, "b", 0);
    for d in [&mut a, &mut a2, &mut b] {
        d.sync(&url).unwrap();
    }
    // Commune B's officer works in their village.
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    actions::random_work(&mut b, &server.world, &mut rng, 30);
    b.sync(&url).unwrap();
    // Device A gets commune B's household by other means (it never could by sync) and
    // works on it: a visit, an assistance step, an address change.
    let b_household = server.world.households["22741-01"][0];
    let b_resident = server.world.residents[&b_household][0];
    // (Every household and resident of the seed, commune B's among them.)
    let b_ops: Vec<Op> = server.world.seed.clone();
    a.store.apply_ops(&b_ops).unwrap();
    let before = stored(&server);
    let v = actions::visit(&mut a, b_household, &mut rng).unwrap();
    let s = actions::assist(&mut a, b_resident, &mut rng).unwrap();
    a.store
        .edit_household(
            b_household,
            HouseholdEdit {
                address: Some(Some("99 Đường Lạ".into())),
                note: None,
            },
        )
        .unwrap();
    // And one legitimate visit in its own village, in the same batch.
    let own = actions::visit(&mut a, server.world.households["22738-01"][0], &mut rng).unwrap();
    let r = a.sync(&url).unwrap();
    assert_eq!(r.rejected.len(), 3, "{r:?}");
    assert!(
        r.rejected.iter().all(|x| x.reason == "out_of_scope"),
        "{r:?}"
    );
    assert_eq!(r.pushed, 1, "the rest of the batch is applied: {r:?}");
    let conn = server.reader();
    assert!(!scope::holds_fact(&conn, &v));
    assert!(!scope::holds_fact(&conn, &s));
    assert!(scope::holds_fact(&conn, &own));
    assert_eq!(stored(&server).0, before.0 + 1);
    let address: Option<String> = conn
        .query_row(
            "SELECT address FROM households WHERE id = ?1",
            [b_household.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(address.as_deref(), Some("99 Đường Lạ"));
    // B never hears of A's intrusion; A's other phone never sees commune B.
    b.sync(&url).unwrap();
    assert!(!scope::holds_fact(b.store.connection(), &v));
    a2.sync(&url).unwrap();
    let c = a2.store.connection();
    let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        q("SELECT count(*) FROM households WHERE village_code LIKE '22741%'"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM residents WHERE household_id NOT IN (SELECT id FROM households)"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM visits WHERE household_id NOT IN (SELECT id FROM households)"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM assists WHERE resident_id NOT IN (SELECT id FROM residents)"),
        0
    );
    assert!(q("SELECT count(*) FROM households") > 0);
    // `a`'s legitimate visit is the one fact on the server neither a2 nor b recorded.
    a2.facts.insert(own);
    scope::assert_converged(&server, &[&a2, &b]);
}

#[test]
fn malformed_requests_are_clear_4xx_and_store_nothing() {
    let mut server = Server::start(&officers(), 2, 2);
    let (d, ops) = device_with_work(&mut server, 0, "a");
    let token = d.token.clone();
    let before = stored(&server);
    let valid = push_json(&ops, PROTOCOL_VERSION);
    let check = |body: Vec<u8>, status: u16, code: &str, what: &str| {
        let (got, err) = post(&server, "/v1/sync/push", Some(&token), body);
        assert_eq!(got, status, "{what}: {err}");
        assert_eq!(err["error"], code, "{what}: {err}");
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert_eq!(stored(&server), before, "{what}: nothing stored");
    };
    check(
        b"{\"protocol\": 1, \"ops\": [".to_vec(),
        400,
        "bad_request",
        "malformed JSON",
    );
    let mut wrong = valid.clone();
    wrong["device_time_ms"] = serde_json::json!("soon");
    check(
        serde_json::to_vec(&wrong).unwrap(),
        400,
        "bad_request",
        "wrong type",
    );
    let mut wrong = valid.clone();
    wrong["ops"][0]["counter"] = serde_json::json!("one");
    check(
        serde_json::to_vec(&wrong).unwrap(),
        400,
        "bad_request",
        "wrong type in an op",
    );
    let mut unknown = valid.clone();
    unknown["protocol"] = serde_json::json!(1);
    let (got, err) = post(
        &server,
        "/v1/sync/push",
        Some(&token),
        serde_json::to_vec(&unknown).unwrap(),
    );
    assert_eq!(got, 400, "{err}");
    assert_eq!(err["error"], "unsupported_protocol");
    assert_eq!(err["supported"], serde_json::json!([2]));
    assert_eq!(stored(&server), before);
    // Over 4 MiB: a valid batch padded with white space.
    let mut big = serde_json::to_vec(&valid).unwrap();
    let tail = big.split_off(big.len() - 1);
    big.extend(std::iter::repeat_n(b' ', 5 * 1024 * 1024));
    big.extend(tail);
    check(big, 413, "too_large", "oversized body");
    // More than 1,000 operations in one push.
    let mut many = valid.clone();
    let op = many["ops"][0].clone();
    many["ops"] = serde_json::Value::Array((0..1001).map(|_| op.clone()).collect());
    check(
        serde_json::to_vec(&many).unwrap(),
        413,
        "too_large",
        "1,001 operations",
    );
    // The same on enrolment and pull.
    let (got, err) = post(&server, "/v1/enrol", None, b"[1,2".to_vec());
    assert_eq!((got, err["error"].as_str()), (400, Some("bad_request")));
    let (got, err) = post(
        &server,
        "/v1/sync/pull",
        Some(&token),
        br#"{"protocol":2,"device_time_ms":0,"cursor":"%%%","limit":10,"own":0,"relaying":[]}"#
            .to_vec(),
    );
    assert_eq!(
        (got, err["error"].as_str()),
        (400, Some("bad_request")),
        "{err}"
    );
    assert_eq!(stored(&server), before);
}
