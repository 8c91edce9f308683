//! The sync server end to end over real HTTP on loopback: enrolment, exactly-once push, paged
//! pull, scope, backfill, auth, body limits, codecs, clock quarantine, health and metrics.
//!
//! Each test starts its own server (a temp SQLite file, a random port) and uses core stores
//! as the "devices", so every operation is one the real write API made. Each test runs on
//! both backends: SQLite, then PostgreSQL in a fresh database of the cluster named by
//! `DOORSTEP_TEST_DATABASE_URL` (`scripts/pg.sh`; required under CI).

use chrono::NaiveDate;
use doorstep_core::wire::*;
use doorstep_core::*;
use doorstep_server::backend::Enrolment;
use std::io::Write;
use std::sync::Arc;
use uuid::Uuid;

mod common;
use common::http::{now_ms, server, server_with_limit, Answer, Fmt, Server};
use common::{on_both_backends, put_units, Db};

const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;

/// Reference data and rosters, made by a commune station's store.
struct World {
    ops: Vec<Op>,
    /// Field officer of commune 22813, assigned village 22813-01.
    me: Uuid,
    /// Field officer of commune 22814, assigned village 22814-01.
    other: Uuid,
    /// Households: [0] in 22813-01, [1] in 22813-02, [2] in 22814-01.
    hh: Vec<Uuid>,
    /// One resident per household.
    res: Vec<Uuid>,
}

fn world() -> World {
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    put_units(
        &mut s,
        &[
            ("58", None, UnitLevel::Province),
            ("586", Some("58"), UnitLevel::District),
            ("22813", Some("586"), UnitLevel::Commune),
            ("22814", Some("586"), UnitLevel::Commune),
            ("22813-01", Some("22813"), UnitLevel::Village),
            ("22813-02", Some("22813"), UnitLevel::Village),
            ("22814-01", Some("22814"), UnitLevel::Village),
        ],
    );
    s.put_campaign(CampaignInput {
        id: Uuid::now_v7(),
        name: "Cao điểm".into(),
        start_date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap(),
        target: 1000,
        unit_code: "58".into(),
    })
    .unwrap();
    let me = Uuid::now_v7();
    let other = Uuid::now_v7();
    for (id, unit) in [(me, "22813"), (other, "22814")] {
        s.put_officer(OfficerInput {
            id,
            name: "Cán bộ".into(),
            role: Role::Field,
            unit_code: unit.into(),
        })
        .unwrap();
    }
    s.assign(me, AssignTarget::Village("22813-01".into()))
        .unwrap();
    s.assign(other, AssignTarget::Village("22814-01".into()))
        .unwrap();
    let mut hh = Vec::new();
    let mut res = Vec::new();
    for (i, village) in ["22813-01", "22813-02", "22814-01"].iter().enumerate() {
        let h = Uuid::now_v7();
        s.put_household(HouseholdInput {
            id: h,
            code: format!("H{i:03}"),
            village_code: (*village).into(),
            address: None,
            head_id: None,
        })
        .unwrap();
        let r = Uuid::now_v7();
        s.put_resident(ResidentInput {
            id: r,
            household_id: h,
            full_name: "Nguyễn Văn A".into(),
            birth_date: "1990".into(),
            gender: None,
            id_number: None,
            phone: None,
            relation: None,
            account: RosterStatus::None,
            agency: None,
        })
        .unwrap();
        hh.push(h);
        res.push(r);
    }
    World {
        ops: s.all_ops_since(&VersionVector::default()).unwrap(),
        me,
        other,
        hh,
        res,
    }
}

/// A device store of `officer` that has the world, enrolled on `srv`; with its token.
fn device_of(srv: &Server, w: &World, officer: Uuid) -> (Store, String) {
    let mut dev = Store::open_in_memory(Options::default()).unwrap();
    dev.apply_ops(&w.ops).unwrap();
    let token = srv.enrol(officer, dev.replica_id());
    (dev, token)
}

/// A server holding the world, and a device store of `officer` that has the world too.
fn setup(officer: fn(&World) -> Uuid) -> (Server, World, Store, String) {
    let srv = server();
    let w = world();
    srv.backend.import_ops("test", &w.ops, now_ms()).unwrap();
    let (dev, token) = device_of(&srv, &w, officer(&w));
    (srv, w, dev, token)
}

fn own_ops(dev: &Store) -> Vec<Op> {
    dev.all_ops_since(&VersionVector::default())
        .unwrap()
        .into_iter()
        .filter(|o| o.replica == dev.replica_id())
        .collect()
}

fn visit(dev: &mut Store, officer: Uuid, household: Uuid) -> Uuid {
    dev.record_visit(NewVisit {
        household_id: household,
        officer_id: officer,
        at_ms: None,
        outcome: VisitOutcome::Met,
        revisit_at_ms: None,
        note: None,
        location: None,
    })
    .unwrap()
}

fn has_visit(ops: &[Op], id: Uuid) -> bool {
    ops.iter()
        .any(|o| matches!(&o.body, OpBody::Visit(v) if v.id == id))
}

fn enrol_code_is_one_time_and_expires_case() {
    let srv = server();
    let w = world();
    srv.backend.import_ops("test", &w.ops, now_ms()).unwrap();
    let code = srv.code(w.me);
    // Typed in lower case with a dash: still the code.
    let typed = format!("{}-{}", &code[..5], &code[5..]).to_lowercase();
    let a = srv.enrol_raw(&typed, Uuid::new_v4());
    assert_eq!(a.status, 200);
    let again = srv.enrol_raw(&code, Uuid::new_v4());
    assert_eq!(again.status, 401);
    assert_eq!(again.error().error, "unauthorized");
    assert_eq!(again.error().reason.as_deref(), Some("used"));
    // Issued two days ago for one minute.
    let old = srv
        .backend
        .issue_enrol_code("test", w.me, 1, now_ms() - 2 * 24 * 3600 * 1000)
        .unwrap();
    let expired = srv.enrol_raw(&old.code, Uuid::new_v4());
    assert_eq!(expired.status, 401);
    assert!(expired.error().message.contains("expired"));
    assert_eq!(expired.error().reason.as_deref(), Some("expired"));
    let unknown = srv.enrol_raw("0000000000", Uuid::new_v4());
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.error().reason.as_deref(), Some("unknown"));
    // Other 401s carry no reason.
    assert_eq!(
        srv.get("/v1/admin/devices", Some("not-a-token"))
            .error()
            .reason,
        None
    );
    assert_eq!(srv.count("SELECT count(*) FROM devices"), 1);
    // The code is stored hashed only.
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM enrol_codes WHERE code_hash = '{code}'"
        )),
        0
    );
}

/// The answer to an enrolment is lost (2G drop, server killed after its commit): the same
/// phone retrying the same code gets its device back with a new token; the first token stops
/// working; anyone else, or the phone once it has used its token, is refused `used`.
fn a_lost_enrolment_answer_is_retried_case() {
    let srv = server();
    let w = world();
    srv.backend.import_ops("test", &w.ops, now_ms()).unwrap();
    let code = srv.code(w.me);
    let replica = Uuid::new_v4();
    let lost = srv.enrol_raw(&code, replica);
    assert_eq!(lost.status, 200);
    let lost: EnrolResponse = Fmt::Json.decode(&lost.body);
    // The phone never saw `lost`; it retries, the code typed again in lower case.
    let retry = srv.enrol_raw(&code.to_lowercase(), replica);
    assert_eq!(
        retry.status,
        200,
        "{}",
        String::from_utf8_lossy(&retry.body)
    );
    let retry: EnrolResponse = Fmt::Json.decode(&retry.body);
    assert_eq!(retry.device_id, lost.device_id);
    assert_eq!(retry.officer_id, w.me);
    assert_ne!(retry.token, lost.token);
    assert_eq!(srv.count("SELECT count(*) FROM devices"), 1);
    let audit = srv.db.audit(10).unwrap();
    assert_eq!(audit[0].action, "enrol_retry");
    assert_eq!(audit[0].target, lost.device_id.to_string());
    assert_eq!(audit[0].actor, format!("device:{}", lost.device_id));
    // The old token is refused, the new one works.
    let pull = Fmt::Json.encode(&PullRequest {
        protocol: PROTOCOL_VERSION,
        device_time_ms: now_ms(),
        cursor: None,
        limit: 10,
        own: u64::MAX,
        relaying: Vec::new(),
    });
    let old = srv.raw(
        "/v1/sync/pull",
        Some(&lost.token),
        "application/json",
        None,
        pull,
    );
    assert_eq!(old.status, 401);
    assert_eq!(old.error().reason, None);
    srv.pull_as(&retry.token, Fmt::Json, None, 10);
    // Another phone presenting the used code: refused, nothing made.
    let other = srv.enrol_raw(&code, Uuid::new_v4());
    assert_eq!(other.status, 401);
    assert_eq!(other.error().error, "unauthorized");
    assert_eq!(other.error().reason.as_deref(), Some("used"));
    assert!(other.error().message.contains("already used"));
    // The phone got its token and used it: the code is spent for it too (nobody who learns
    // the code and the replica id later takes the device over).
    let late = srv.enrol_raw(&code, replica);
    assert_eq!(late.status, 401);
    assert_eq!(late.error().reason.as_deref(), Some("used"));
    srv.pull_as(&retry.token, Fmt::Json, None, 10);
    assert_eq!(srv.count("SELECT count(*) FROM devices"), 1);

    // A retry after the code's lifetime: expired. A revoked device's: used.
    let t0 = now_ms() - 10 * 60_000;
    let short = srv.backend.issue_enrol_code("test", w.me, 5, t0).unwrap();
    let enrolment = |replica| Enrolment {
        code: short.code.clone(),
        device_name: "Galaxy A03".into(),
        replica,
        device_time_ms: t0,
        public_key: None,
    };
    let replica = Uuid::new_v4();
    let first = srv.backend.enrol(enrolment(replica), t0 + 60_000).unwrap();
    let again = srv
        .backend
        .enrol(enrolment(replica), t0 + 2 * 60_000)
        .unwrap();
    assert_eq!(again.device_id, first.device_id);
    let too_late = srv.enrol_raw(&short.code, replica);
    assert_eq!(too_late.status, 401);
    assert_eq!(too_late.error().reason.as_deref(), Some("expired"));
    let code = srv.code(w.me);
    let replica = Uuid::new_v4();
    let a = srv.enrol_raw(&code, replica);
    let a: EnrolResponse = Fmt::Json.decode(&a.body);
    assert!(srv
        .backend
        .revoke_device("test", a.device_id, now_ms())
        .unwrap());
    let revoked = srv.enrol_raw(&code, replica);
    assert_eq!(revoked.error().reason.as_deref(), Some("used"));
    assert_eq!(srv.count("SELECT count(*) FROM devices"), 3);
}

/// The core's client says which refusal a code got (`Error::EnrolRefused`), and its own
/// retry after a lost answer enrols.
fn the_client_names_the_refusal_case() {
    let srv = server();
    let w = world();
    srv.backend.import_ops("test", &w.ops, now_ms()).unwrap();
    let code = srv.code(w.me);
    let mut phone = Store::open_in_memory(Options::default()).unwrap();
    let first = sync::enrol(&mut phone, &srv.base, &code, "Galaxy A03").unwrap();
    // Its answer lost: the same phone's client enrols again and gets the device back.
    let again = sync::enrol(&mut phone, &srv.base, &code, "Galaxy A03").unwrap();
    assert_eq!(again.device_id, first.device_id);
    let mut other = Store::open_in_memory(Options::default()).unwrap();
    let refusal =
        |code: &str, store: &mut Store| match sync::enrol(store, &srv.base, code, "Galaxy A03") {
            Err(Error::EnrolRefused(r)) => r,
            got => panic!("a refusal: {got:?}"),
        };
    assert_eq!(refusal(&code, &mut other), EnrolRefusal::Used);
    assert_eq!(refusal("0000000000", &mut other), EnrolRefusal::Unknown);
    let old = srv
        .backend
        .issue_enrol_code("test", w.me, 1, now_ms() - 2 * 24 * 3600 * 1000)
        .unwrap();
    assert_eq!(refusal(&old.code, &mut other), EnrolRefusal::Expired);
    let words = sync::enrol(&mut other, &srv.base, &code, "x").unwrap_err();
    assert_eq!(
        words.to_string(),
        "enrolment refused: enrolment code already used"
    );
}

/// A replica belongs to one device: a push carrying another replica's operation has it
/// refused `foreign_replica` (nothing stored, the rest applied, the real owner's push later
/// applied); enrolment refuses a replica another device holds and the server's own.
fn a_replica_belongs_to_one_device_case() {
    let (srv, w, mut a, token_a) = setup(|w| w.me);
    let (mut b, token_b) = device_of(&srv, &w, w.me);
    let vb = visit(&mut b, w.me, w.hh[0]);
    let b_ops = own_ops(&b);
    // A makes a visit, then sends it under B's replica and the server's, at B's counter,
    // along with a visit of its own.
    let forged_visit = visit(&mut a, w.me, w.hh[0]);
    let own = visit(&mut a, w.me, w.hh[0]);
    let a_ops = own_ops(&a);
    let mut as_b = a_ops[0].clone();
    as_b.replica = b.replica_id();
    as_b.counter = b_ops[0].counter;
    let mut as_server = a_ops[0].clone();
    as_server.replica = ReplicaId(srv.backend.server_replica());
    as_server.counter = 1_000_000;
    let feed_before = srv.count("SELECT count(*) FROM feed");
    let resp = srv.push_as(
        &token_a,
        Fmt::Json,
        vec![as_b.clone(), as_server.clone(), a_ops[1].clone()],
    );
    assert_eq!((resp.applied, resp.duplicates), (1, 0), "{resp:?}");
    let refused: Vec<_> = resp
        .rejected
        .iter()
        .map(|r| (r.replica, r.counter, r.reason.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            (as_b.replica.0, as_b.counter, "foreign_replica"),
            (as_server.replica.0, as_server.counter, "foreign_replica"),
        ]
    );
    assert_eq!(resp.acked_counter, a_ops[1].counter);
    assert_eq!(srv.count("SELECT count(*) FROM feed"), feed_before + 1);
    let held = |id: Uuid| srv.count(&format!("SELECT count(*) FROM visits WHERE id = '{id}'"));
    assert_eq!(held(forged_visit), 0, "never stored");
    assert_eq!(held(own), 1, "the rest of the batch goes on");
    // B's real operations are applied, not taken for duplicates; A never receives them
    // under its own name.
    let rb = srv.push_as(&token_b, Fmt::Postcard, b_ops.clone());
    assert_eq!(
        (rb.applied, rb.duplicates),
        (b_ops.len() as u64, 0),
        "{rb:?}"
    );
    assert!(rb.rejected.is_empty(), "{rb:?}");
    assert_eq!(held(vb), 1);
    let (pulled, _, _) = srv.pull_all(&token_a, None, 1000);
    assert!(has_visit(&pulled, vb));
    assert!(!has_visit(&pulled, forged_visit));

    // Enrolling with B's replica, or the server's: refused, the code left unused.
    let code = srv.code(w.me);
    for replica in [b.replica_id().0, srv.backend.server_replica()] {
        let refused = srv.enrol_raw(&code, replica);
        assert_eq!(
            refused.status,
            403,
            "{}",
            String::from_utf8_lossy(&refused.body)
        );
        assert_eq!(refused.error().error, "forbidden");
        assert!(refused.error().message.contains("replica"));
    }
    assert_eq!(srv.count("SELECT count(*) FROM devices"), 2);
    // Once B is revoked, its replica may enrol again (a phone reset keeps its store).
    let b_device = srv
        .backend
        .list_devices()
        .unwrap()
        .into_iter()
        .find(|d| d.replica == b.replica_id().0)
        .unwrap()
        .id;
    assert!(srv
        .backend
        .revoke_device("test", b_device, now_ms())
        .unwrap());
    assert_eq!(srv.enrol_raw(&code, b.replica_id().0).status, 200);
}

fn a_retried_push_is_all_duplicates_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    let v1 = visit(&mut dev, w.me, w.hh[0]);
    dev.edit_resident(
        w.res[0],
        ResidentEdit {
            phone: Some(Some("0912345678".into())),
            note: None,
        },
    )
    .unwrap();
    let ops = own_ops(&dev);
    let n = ops.len() as u64;
    let first = srv.push_as(&token, Fmt::Postcard, ops.clone());
    assert_eq!((first.applied, first.duplicates), (n, 0));
    assert!(first.rejected.is_empty(), "{:?}", first.rejected);
    assert_eq!(first.acked_counter, ops.last().unwrap().counter);
    let before = srv.dump();
    // The answer was lost: the same batch again, as JSON this time.
    let second = srv.push_as(&token, Fmt::Json, ops);
    assert_eq!((second.applied, second.duplicates), (0, n));
    assert_eq!(second.acked_counter, first.acked_counter);
    assert_eq!(srv.dump(), before);
    assert_eq!(
        srv.count("SELECT count(*) FROM feed"),
        w.ops.len() as i64 + n as i64
    );
    let visits: i64 = srv.count(&format!("SELECT count(*) FROM visits WHERE id = '{v1}'"));
    assert_eq!(visits, 1);
}

fn pull_pages_with_has_more_and_resumes_from_a_cursor_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    let (all, cursor, pages) = srv.pull_all(&token, None, 3);
    assert!(pages > 2);
    // Reference data and 22813-01's roster, nothing of the other villages.
    assert!(all.iter().all(|o| w.ops.contains(o)));
    let resident_ops = |ops: &[Op], r: Uuid| {
        ops.iter().any(|o| {
            matches!(&o.body, OpBody::Set { entity: Entity::Resident, key: Key::Uuid(k), .. } if *k == r)
        })
    };
    assert!(resident_ops(&all, w.res[0]));
    assert!(!resident_ops(&all, w.res[1]));
    assert!(!resident_ops(&all, w.res[2]));
    // Nothing new: an empty last page.
    let idle = srv.pull_as(&token, Fmt::Json, Some(cursor.clone()), 3);
    assert!(idle.ops.is_empty() && !idle.has_more);
    // A device is not sent its own operations back.
    let own = visit(&mut dev, w.me, w.hh[0]);
    srv.push_as(&token, Fmt::Postcard, own_ops(&dev));
    let idle = srv.pull_as(&token, Fmt::Json, Some(cursor.clone()), 3);
    assert!(!has_visit(&idle.ops, own) && !idle.has_more);
    // New work from the officer's second phone arrives; the old cursor resumes exactly after it.
    let (mut second, token2) = device_of(&srv, &w, w.me);
    let v = visit(&mut second, w.me, w.hh[0]);
    srv.push_as(&token2, Fmt::Postcard, own_ops(&second));
    let (more, _, _) = srv.pull_all(&token, Some(cursor.clone()), 3);
    assert_eq!(more.len(), 1);
    assert!(has_visit(&more, v));
    // A page that was fetched but not committed is fetched again from the same cursor.
    let again = srv.pull_as(&token, Fmt::Postcard, Some(cursor), 3);
    assert!(has_visit(&again.ops, v));
    // A fresh device applying every page converges with what the server holds in scope.
    let mut fresh = Store::open_in_memory(Options::default()).unwrap();
    let (everything, _, _) = srv.pull_all(&token, None, 1000);
    fresh.apply_ops(&everything).unwrap();
    assert!(has_visit(&everything, v));
}

fn out_of_scope_pushes_are_refused_and_other_communes_never_pulled_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    // The device's store lets its user record anywhere it knows of; the server does not.
    let inside = visit(&mut dev, w.me, w.hh[0]);
    let outside = visit(&mut dev, w.me, w.hh[2]); // commune 22814
    let ops = own_ops(&dev);
    let resp = srv.push_as(&token, Fmt::Postcard, ops.clone());
    assert_eq!(resp.applied, ops.len() as u64 - 1);
    assert_eq!(resp.rejected.len(), 1);
    assert_eq!(resp.rejected[0].reason, "out_of_scope");
    // Acknowledged anyway, so the device does not resend it.
    assert_eq!(resp.acked_counter, ops.last().unwrap().counter);
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM visits WHERE id = '{outside}'"
        )),
        0
    );
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM visits WHERE id = '{inside}'"
        )),
        1
    );
    // Reference data from a field officer: forbidden.
    dev.put_unit(UnitInput {
        code: "22813-09".into(),
        parent_code: Some("22813".into()),
        level: UnitLevel::Village,
        kind: "thôn".into(),
        name: "Thôn mới".into(),
    })
    .unwrap();
    let last = own_ops(&dev).pop().unwrap();
    let resp = srv.push_as(&token, Fmt::Json, vec![last]);
    assert_eq!(resp.rejected[0].reason, "forbidden");
    // The other commune's officer pushes; our officer never receives it.
    let (mut dev_b, token_b) = device_of(&srv, &w, w.other);
    let vb = visit(&mut dev_b, w.other, w.hh[2]);
    let rb = srv.push_as(&token_b, Fmt::Postcard, own_ops(&dev_b));
    assert_eq!(rb.applied, 1);
    // The officer's other phone gets what the first pushed in scope, nothing of commune B.
    let (_, token2) = device_of(&srv, &w, w.me);
    let (mine, _, _) = srv.pull_all(&token2, None, 1000);
    assert!(has_visit(&mine, inside));
    assert!(!has_visit(&mine, vb));
    assert!(!has_visit(&mine, outside));
    // Reference data is filed by unit: our commune's officers, not the other commune's.
    let officer = |ops: &[Op], o: Uuid| {
        ops.iter().any(|op| {
            matches!(&op.body, OpBody::Set { entity: Entity::Officer, key: Key::Uuid(k), .. } if *k == o)
        })
    };
    assert!(officer(&mine, w.me));
    assert!(!officer(&mine, w.other));
    let (theirs, _, _) = srv.pull_all(&token_b, None, 1000);
    assert!(!has_visit(&theirs, vb), "own operations are not sent back");
    assert!(!has_visit(&theirs, inside));
}

fn sessions_and_outreach_are_filed_by_commune_and_scoped_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    let at = now_ms();
    let session = |unit: &str| NewSession {
        unit_code: unit.into(),
        officer_id: w.me,
        kind: SessionKind::Mobile,
        place: "Chợ".into(),
        starts_at_ms: at,
        ends_at_ms: at,
        applications: 12,
        note: None,
    };
    let own = dev.record_session(session("22813")).unwrap();
    let foreign = dev.record_session(session("22814")).unwrap();
    let meeting = dev
        .record_outreach(NewOutreach {
            unit_code: "22813-01".into(),
            officer_id: w.me,
            kind: OutreachKind::Meeting,
            at_ms: None,
            place: "Nhà văn hoá".into(),
            people_reached: 60,
            note: None,
        })
        .unwrap();
    dev.retract(meeting, Some("ghi nhầm")).unwrap();
    let resp = srv.push_as(&token, Fmt::Postcard, own_ops(&dev));
    assert_eq!(resp.applied, 3);
    assert_eq!(resp.rejected.len(), 1);
    assert_eq!(resp.rejected[0].reason, "out_of_scope");
    assert_eq!(
        srv.count(&format!("SELECT count(*) FROM sessions WHERE id = '{own}'")),
        1
    );
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM sessions WHERE id = '{foreign}'"
        )),
        0
    );
    assert_eq!(
        srv.count("SELECT retracted FROM outreach WHERE kind = 'meeting'"),
        1
    );
    // A second phone of the commune gets the session and the retracted meeting; the other
    // commune's officer gets neither.
    let has = |ops: &[Op], id: Uuid| {
        ops.iter().any(|o| match &o.body {
            OpBody::Session(x) => x.id == id,
            OpBody::Outreach(x) => x.id == id,
            OpBody::Retract { fact_id, .. } => *fact_id == id,
            _ => false,
        })
    };
    let (mut second, token2) = device_of(&srv, &w, w.me);
    let (mine, _, _) = srv.pull_all(&token2, None, 1000);
    assert!(has(&mine, own) && has(&mine, meeting));
    second.apply_ops(&mine).unwrap();
    assert_eq!(
        second
            .connection()
            .query_row("SELECT retracted FROM outreach", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        1
    );
    let (_, token_b) = device_of(&srv, &w, w.other);
    let (theirs, _, _) = srv.pull_all(&token_b, None, 1000);
    assert!(!has(&theirs, own) && !has(&theirs, meeting));
}

fn a_new_assignment_backfills_the_village_history_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    let (mut dev_b, token_b) = device_of(&srv, &w, w.other);
    let vb = visit(&mut dev_b, w.other, w.hh[2]);
    srv.push_as(&token_b, Fmt::Postcard, own_ops(&dev_b));
    let (first, cursor, _) = srv.pull_all(&token, None, 1000);
    assert!(!has_visit(&first, vb));
    // Later feed rows, so that the backfill must reach behind the cursor.
    let v = visit(&mut dev, w.me, w.hh[0]);
    srv.push_as(&token, Fmt::Postcard, own_ops(&dev));
    srv.backend
        .assign_village("test", w.me, "22814-01", now_ms())
        .unwrap();
    let (next, cursor2, pages) = srv.pull_all(&token, Some(cursor), 1);
    assert!(pages > 3, "paged backfill");
    assert!(has_visit(&next, vb), "the new village's older visit");
    assert!(
        !has_visit(&next, v),
        "a device's own operation is not sent back"
    );
    let roster_b = next.iter().any(|o| {
        matches!(&o.body, OpBody::Set { entity: Entity::Household, key: Key::Uuid(k), .. } if *k == w.hh[2])
    });
    assert!(roster_b, "the new village's households");
    // Fed once: nothing more afterwards.
    let idle = srv.pull_as(&token, Fmt::Postcard, Some(cursor2), 100);
    assert!(idle.ops.is_empty() && !idle.has_more);
}

fn revoked_missing_and_wrong_tokens_are_refused_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    let pull = PullRequest {
        protocol: 2,
        device_time_ms: now_ms(),
        cursor: None,
        limit: 10,
        own: u64::MAX,
        relaying: Vec::new(),
    };
    let body = Fmt::Json.encode(&pull);
    let none = srv.raw(
        "/v1/sync/pull",
        None,
        "application/json",
        None,
        body.clone(),
    );
    assert_eq!(none.status, 401);
    assert_eq!(none.error().error, "unauthorized");
    let wrong = srv.raw(
        "/v1/sync/pull",
        Some("not-a-token"),
        "application/json",
        None,
        body,
    );
    assert_eq!(wrong.status, 401);
    // A device token on an admin route: forbidden.
    assert_eq!(srv.get("/v1/admin/devices", Some(&token)).status, 403);
    assert_eq!(srv.get("/v1/admin/devices", None).status, 401);
    let device_id = srv.backend.list_devices().unwrap()[0].id;
    assert!(srv
        .backend
        .revoke_device("test", device_id, now_ms())
        .unwrap());
    visit(&mut dev, w.me, w.hh[0]);
    let before = srv.dump();
    let req = PushRequest {
        protocol: 2,
        device_time_ms: now_ms(),
        ops: own_ops(&dev),
        segments: Vec::new(),
    };
    let a = srv.raw(
        "/v1/sync/push",
        Some(&token),
        POSTCARD_MEDIA_TYPE,
        None,
        Fmt::Postcard.encode(&req),
    );
    // A revoked device's push takes only its work stamped before the revocation (its last
    // push before it wipes): this visit, made after, is refused.
    assert_eq!(a.status, 200);
    let resp: PushResponse = Fmt::Postcard.decode(&a.body);
    assert_eq!(resp.applied, 0, "{resp:?}");
    assert!(!resp.rejected.is_empty());
    assert!(
        resp.rejected.iter().all(|r| r.reason == "revoked"),
        "{resp:?}"
    );
    assert_eq!(srv.dump(), before, "nothing stored");
}

fn malformed_bodies_and_other_protocols_are_400_and_store_nothing_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    visit(&mut dev, w.me, w.hh[0]);
    let ops = own_ops(&dev);
    let before = srv.dump();
    let push = |ct: &str, body: Vec<u8>| srv.raw("/v1/sync/push", Some(&token), ct, None, body);
    let a = push("application/json", b"{\"protocol\": 1, \"ops\": [".to_vec());
    assert_eq!((a.status, a.error().error.as_str()), (400, "bad_request"));
    let a = push(
        "application/json",
        br#"{"protocol": 2, "device_time_ms": "soon", "ops": []}"#.to_vec(),
    );
    assert_eq!((a.status, a.error().error.as_str()), (400, "bad_request"));
    let a = push(POSTCARD_MEDIA_TYPE, vec![2, 0xff, 0xff]);
    assert_eq!((a.status, a.error().error.as_str()), (400, "bad_request"));
    let a = push("text/plain", b"hello".to_vec());
    assert_eq!(a.status, 400);
    // A bad operation shape (a field of another entity) fails the whole request.
    let mut bad = ops.clone();
    bad.push(Op {
        replica: dev.replica_id(),
        counter: 999,
        hlc: Hlc::new(now_ms() as u64, 0),
        body: OpBody::Set {
            entity: Entity::Household,
            key: Key::Uuid(w.hh[0]),
            fields: vec![(Field::Phone, Value::Null)],
        },
    });
    let req = PushRequest {
        protocol: 2,
        device_time_ms: 0,
        ops: bad,
        segments: Vec::new(),
    };
    let a = push(POSTCARD_MEDIA_TYPE, Fmt::Postcard.encode(&req));
    assert_eq!((a.status, a.error().error.as_str()), (400, "bad_request"));
    // Another protocol version (the previous one), in both formats.
    for fmt in [Fmt::Json, Fmt::Postcard] {
        let req = PushRequest {
            protocol: 1,
            device_time_ms: 0,
            ops: ops.clone(),
            segments: Vec::new(),
        };
        let a = push(fmt.media(), fmt.encode(&req));
        assert_eq!(a.status, 400);
        let e = a.error();
        assert_eq!(e.error, "unsupported_protocol");
        assert_eq!(e.supported, vec![2]);
    }
    assert_eq!(srv.dump(), before);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn oversized_bodies_are_413_even_when_compressed_small_case() {
    let srv = server_with_limit(64 * 1024);
    let w = world();
    srv.backend.import_ops("test", &w.ops, now_ms()).unwrap();
    let token = srv.enrol(w.me, ReplicaId::random());
    let big = vec![b' '; 200 * 1024];
    let a = srv.raw(
        "/v1/sync/pull",
        Some(&token),
        "application/json",
        None,
        big.clone(),
    );
    assert_eq!((a.status, a.error().error.as_str()), (413, "too_large"));
    // 200 KiB of spaces gzip to a few hundred bytes: refused after decompression.
    let small = gzip(&big);
    assert!(small.len() < 2048);
    let a = srv.raw(
        "/v1/sync/pull",
        Some(&token),
        "application/json",
        Some("gzip"),
        small,
    );
    assert_eq!((a.status, a.error().error.as_str()), (413, "too_large"));
    // More operations than a push may carry.
    let many: Vec<Op> = (1..=1001)
        .map(|c| Op {
            replica: ReplicaId::random(),
            counter: c,
            hlc: Hlc::new(1, 0),
            body: OpBody::Retract {
                fact_id: Uuid::nil(),
                reason: None,
            },
        })
        .collect();
    let srv2 = server();
    srv2.backend.import_ops("test", &w.ops, now_ms()).unwrap();
    let token2 = srv2.enrol(w.me, ReplicaId::random());
    let req = PushRequest {
        protocol: 2,
        device_time_ms: 0,
        ops: many,
        segments: Vec::new(),
    };
    let a = srv2.raw(
        "/v1/sync/push",
        Some(&token2),
        POSTCARD_MEDIA_TYPE,
        None,
        Fmt::Postcard.encode(&req),
    );
    assert_eq!((a.status, a.error().error.as_str()), (413, "too_large"));
}

fn gzip_and_zstd_bodies_are_accepted_and_answers_compressed_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    visit(&mut dev, w.me, w.hh[0]);
    let req = PushRequest {
        protocol: 2,
        device_time_ms: now_ms(),
        ops: own_ops(&dev),
        segments: Vec::new(),
    };
    let body = Fmt::Postcard.encode(&req);
    let a = srv.raw(
        "/v1/sync/push",
        Some(&token),
        POSTCARD_MEDIA_TYPE,
        Some("zstd"),
        zstd::encode_all(&body[..], 3).unwrap(),
    );
    assert_eq!(a.status, 200);
    let r: PushResponse = Fmt::Postcard.decode(&a.body);
    assert_eq!(r.applied, 1);
    let a = srv.raw(
        "/v1/sync/push",
        Some(&token),
        POSTCARD_MEDIA_TYPE,
        Some("gzip"),
        gzip(&body),
    );
    assert_eq!(a.status, 200);
    let r: PushResponse = Fmt::Postcard.decode(&a.body);
    assert_eq!(r.duplicates, 1);
    // A corrupt gzip body is a bad request.
    let a = srv.raw(
        "/v1/sync/push",
        Some(&token),
        POSTCARD_MEDIA_TYPE,
        Some("gzip"),
        vec![0x1f, 0x8b, 1, 2, 3],
    );
    assert_eq!(a.status, 400);
    // Ask for a zstd answer.
    let pull = PullRequest {
        protocol: 2,
        device_time_ms: now_ms(),
        cursor: None,
        limit: 1000,
        own: u64::MAX,
        relaying: Vec::new(),
    };
    let resp = srv
        .http
        .post(format!("{}/v1/sync/pull", srv.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("accept-encoding", "zstd, gzip")
        .body(Fmt::Json.encode(&pull))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-encoding"], "zstd");
    let plain = zstd::decode_all(&resp.bytes().unwrap()[..]).unwrap();
    let page: PullResponse = Fmt::Json.decode(&plain);
    assert!(!page.ops.is_empty());
}

fn a_year_ahead_set_is_quarantined_but_a_year_ahead_fact_is_applied_case() {
    let (srv, w, _, token) = setup(|w| w.me);
    let clock = Arc::new(ManualClock::new(now_ms() as u64 + YEAR_MS));
    let mut dev = Store::open_in_memory(Options {
        clock: clock.clone(),
        ..Options::default()
    })
    .unwrap();
    dev.apply_ops(&w.ops).unwrap();
    let token2 = srv.enrol(w.me, dev.replica_id());
    drop(token);
    dev.edit_household(
        w.hh[0],
        HouseholdEdit {
            address: Some(Some("Số 9".into())),
            note: None,
        },
    )
    .unwrap();
    let v = visit(&mut dev, w.me, w.hh[0]);
    let ops = own_ops(&dev);
    let resp = srv.push_as(&token2, Fmt::Postcard, ops.clone());
    assert_eq!(resp.applied, 1);
    assert_eq!(resp.rejected.len(), 1);
    assert_eq!(resp.rejected[0].reason, "clock_ahead");
    assert_eq!(resp.rejected[0].counter, ops[0].counter);
    assert_eq!(
        srv.count("SELECT count(*) FROM quarantine WHERE reason = 'clock_ahead'"),
        1
    );
    assert_eq!(
        srv.count(&format!(
            "SELECT count(*) FROM households WHERE id = '{}' AND address = 'Số 9'",
            w.hh[0]
        )),
        0
    );
    assert_eq!(
        srv.count(&format!("SELECT count(*) FROM visits WHERE id = '{v}'")),
        1
    );
    // The device's clock offset is measured (about minus a year).
    let d = srv.backend.list_devices().unwrap();
    assert!(d.iter().all(|d| d.clock_offset_ms.is_some()));
}

fn health_metrics_and_admin_routes_answer_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    let h = srv.get("/health", None);
    assert_eq!((h.status, h.body.as_slice()), (200, b"ok".as_slice()));
    visit(&mut dev, w.me, w.hh[0]);
    srv.push_as(&token, Fmt::Postcard, own_ops(&dev));
    let (admin_id, admin) = srv
        .backend
        .bootstrap_admin("Quản trị", now_ms())
        .unwrap()
        .unwrap();
    assert!(srv
        .backend
        .bootstrap_admin("again", now_ms())
        .unwrap()
        .is_none());
    // Issue a code over HTTP and enrol with it.
    let a = srv.raw(
        "/v1/admin/enrol-codes",
        Some(&admin),
        "application/json",
        None,
        serde_json::to_vec(&serde_json::json!({"officer_id": w.other})).unwrap(),
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let issued: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    let code = issued["code"].as_str().unwrap();
    assert_eq!(srv.enrol_raw(code, Uuid::new_v4()).status, 200);
    let list = srv.get("/v1/admin/devices", Some(&admin));
    assert_eq!(list.status, 200);
    let devices: Vec<serde_json::Value> = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(devices.len(), 2);
    let id = devices[1]["id"].as_str().unwrap();
    let r = srv.raw(
        &format!("/v1/admin/devices/{id}/revoke"),
        Some(&admin),
        "application/json",
        None,
        vec![],
    );
    assert_eq!(r.status, 200);
    let audit = srv.get("/v1/admin/audit?limit=50", Some(&admin));
    assert_eq!(audit.status, 200);
    let text = String::from_utf8(audit.body).unwrap();
    for action in ["bootstrap", "enrol_code", "enrol", "revoke", "ops_import"] {
        assert!(
            text.contains(&format!("\"action\":\"{action}\"")),
            "{action} audited"
        );
    }
    assert!(text.contains(&format!("user:{admin_id}")));
    assert!(
        !text.contains("Quản trị") && !text.contains(code),
        "no names or secrets"
    );
    let m = srv.get("/metrics", None);
    assert_eq!(m.status, 200);
    let m = String::from_utf8(m.body).unwrap();
    assert!(m.contains("doorstep_ops_applied_total 1"), "{m}");
    assert!(m.contains("doorstep_http_requests_total{route=\"/v1/sync/push\",status=\"200\"} 1"));
    assert!(m.contains("doorstep_devices_revoked 1"));
    assert!(m.contains("doorstep_device_clock_offset_ms{device="));
    // The feed lock's counters: PostgreSQL only (SQLite has one writer by construction).
    let on_pg = matches!(srv.db, Db::Pg(_));
    assert_eq!(
        m.contains("doorstep_feed_lock_wait_seconds_total")
            && m.contains("doorstep_feed_lock_acquisitions_total"),
        on_pg,
        "{m}"
    );
}

/// Personal values a hostile or buggy client may put where the wire expects something else.
const PHONE: &str = "0912345678";
const NAME: &str = "Nguyễn Văn An";
const ID_NUMBER: &str = "079201001234";

/// A 400 that names `field` and echoes none of the personal values.
fn assert_names_field_not_value(a: &Answer, field: &str) {
    let e = a.error();
    assert_eq!(
        (a.status, e.error.as_str()),
        (400, "bad_request"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(field),
        "{field} not named: {}",
        e.message
    );
    let text = String::from_utf8_lossy(&a.body);
    for value in [PHONE, NAME, ID_NUMBER, "Nguy", "0912", "0792"] {
        assert!(!text.contains(value), "{value} echoed: {text}");
    }
}

/// A visit operation's layout for postcard, with any type in the outcome's place.
#[derive(serde::Serialize)]
struct LooseOp<T> {
    replica: Uuid,
    counter: u64,
    hlc: u64,
    body: LooseBody<T>,
}

#[derive(serde::Serialize)]
enum LooseBody<T> {
    /// Never sent: it gives `Visit` its wire position, 1.
    #[allow(dead_code)]
    Set(()),
    Visit {
        id: Uuid,
        household_id: Uuid,
        officer_id: Uuid,
        at_ms: i64,
        outcome: T,
    },
}

#[derive(serde::Serialize)]
struct LoosePush<T> {
    protocol: u32,
    device_time_ms: i64,
    ops: Vec<T>,
}

fn error_answers_name_the_field_never_the_value_case() {
    let (srv, w, mut dev, token) = setup(|w| w.me);
    visit(&mut dev, w.me, w.hh[0]);
    let op = serde_json::to_value(&own_ops(&dev)[0]).unwrap();
    let before = srv.dump();
    let push = |ct: &str, body: Vec<u8>| srv.raw("/v1/sync/push", Some(&token), ct, None, body);
    let json_push = |op: serde_json::Value| {
        let body = serde_json::json!({"protocol": 2, "device_time_ms": now_ms(), "ops": [op]});
        push("application/json", serde_json::to_vec(&body).unwrap())
    };
    // JSON: where an enum variant, a number, a UUID, a date (Unix ms) is expected.
    for (field, value) in [
        ("outcome", PHONE),
        ("outcome", NAME),
        ("at_ms", NAME),
        ("household_id", ID_NUMBER),
        ("officer_id", NAME),
        ("revisit_at_ms", PHONE),
    ] {
        let mut bad = op.clone();
        bad["body"]["Visit"][field] = value.into();
        let a = json_push(bad);
        assert_names_field_not_value(&a, &format!("ops[0].body.Visit.{field}"));
    }
    // A Set whose field name, or value kind, is personal data.
    let set = |fields: serde_json::Value| {
        let mut bad = op.clone();
        bad["body"] = serde_json::json!({"Set": {"entity": "Resident",
            "key": {"Uuid": w.res[0]}, "fields": fields}});
        json_push(bad)
    };
    let a = set(serde_json::json!([[PHONE, {"Text": NAME}]]));
    assert_names_field_not_value(&a, "ops[0].body.Set.fields[0]");
    let a = set(serde_json::json!([["FullName", {NAME: ID_NUMBER}]]));
    assert_names_field_not_value(&a, "ops[0].body.Set.fields[0]");
    let a = set(serde_json::json!([["BirthDate", {"Int": NAME}]]));
    assert_names_field_not_value(&a, "ops[0].body.Set.fields[0][1].Int");
    // The operation's own fields, an unknown field named after a person, other bodies.
    let mut bad = op.clone();
    bad["replica"] = ID_NUMBER.into();
    assert_names_field_not_value(&json_push(bad), "ops[0].replica");
    let mut bad = op.clone();
    bad["counter"] = PHONE.into();
    assert_names_field_not_value(&json_push(bad), "ops[0].counter");
    let body = serde_json::json!({"protocol": 2, "device_time_ms": 0, "ops": [], NAME: PHONE});
    let a = push("application/json", serde_json::to_vec(&body).unwrap());
    assert_names_field_not_value(&a, "unknown field");
    let body = serde_json::json!({"protocol": 2, "device_time_ms": 0, "cursor": null, "limit": PHONE, "own": 0, "relaying": []});
    let a = srv.raw(
        "/v1/sync/pull",
        Some(&token),
        "application/json",
        None,
        serde_json::to_vec(&body).unwrap(),
    );
    assert_names_field_not_value(&a, "limit");
    let body = serde_json::json!({"protocol": 2, "code": "x", "device_name": "A03",
        "replica": NAME, "device_time_ms": 0});
    let a = srv.raw(
        "/v1/enrol",
        None,
        "application/json",
        None,
        serde_json::to_vec(&body).unwrap(),
    );
    assert_names_field_not_value(&a, "replica");
    // Postcard: the same values in an enum's and an operation's place. Postcard carries no
    // names: the path is of positions (ops is the request's field 2, body the op's field 3).
    let loose = |outcome: &str| LooseOp {
        replica: dev.replica_id().0,
        counter: 1,
        hlc: 1,
        body: LooseBody::Visit {
            id: Uuid::now_v7(),
            household_id: w.hh[0],
            officer_id: w.me,
            at_ms: 0,
            outcome: outcome.to_owned(),
        },
    };
    for value in [PHONE, NAME, ID_NUMBER] {
        let body = LoosePush {
            protocol: 2,
            device_time_ms: 0,
            ops: vec![loose(value)],
        };
        let a = push(POSTCARD_MEDIA_TYPE, Fmt::Postcard.encode(&body));
        assert_names_field_not_value(&a, "invalid postcard at [2][0][3]");
        let body = LoosePush {
            protocol: 2,
            device_time_ms: 0,
            ops: vec![value],
        };
        let a = push(POSTCARD_MEDIA_TYPE, Fmt::Postcard.encode(&body));
        assert_names_field_not_value(&a, "invalid postcard at [2][0]");
    }
    assert_eq!(srv.dump(), before);
}

// Every test on both backends.

#[test]
fn enrol_code_is_one_time_and_expires() {
    on_both_backends(enrol_code_is_one_time_and_expires_case);
}

#[test]
fn a_lost_enrolment_answer_is_retried() {
    on_both_backends(a_lost_enrolment_answer_is_retried_case);
}

#[test]
fn the_client_names_the_refusal() {
    on_both_backends(the_client_names_the_refusal_case);
}

#[test]
fn a_replica_belongs_to_one_device() {
    on_both_backends(a_replica_belongs_to_one_device_case);
}

#[test]
fn a_retried_push_is_all_duplicates() {
    on_both_backends(a_retried_push_is_all_duplicates_case);
}

#[test]
fn pull_pages_with_has_more_and_resumes_from_a_cursor() {
    on_both_backends(pull_pages_with_has_more_and_resumes_from_a_cursor_case);
}

#[test]
fn out_of_scope_pushes_are_refused_and_other_communes_never_pulled() {
    on_both_backends(out_of_scope_pushes_are_refused_and_other_communes_never_pulled_case);
}

#[test]
fn a_new_assignment_backfills_the_village_history() {
    on_both_backends(a_new_assignment_backfills_the_village_history_case);
}

#[test]
fn revoked_missing_and_wrong_tokens_are_refused() {
    on_both_backends(revoked_missing_and_wrong_tokens_are_refused_case);
}

#[test]
fn malformed_bodies_and_other_protocols_are_400_and_store_nothing() {
    on_both_backends(malformed_bodies_and_other_protocols_are_400_and_store_nothing_case);
}

#[test]
fn oversized_bodies_are_413_even_when_compressed_small() {
    on_both_backends(oversized_bodies_are_413_even_when_compressed_small_case);
}

#[test]
fn gzip_and_zstd_bodies_are_accepted_and_answers_compressed() {
    on_both_backends(gzip_and_zstd_bodies_are_accepted_and_answers_compressed_case);
}

#[test]
fn a_year_ahead_set_is_quarantined_but_a_year_ahead_fact_is_applied() {
    on_both_backends(a_year_ahead_set_is_quarantined_but_a_year_ahead_fact_is_applied_case);
}

#[test]
fn health_metrics_and_admin_routes_answer() {
    on_both_backends(health_metrics_and_admin_routes_answer_case);
}

#[test]
fn sessions_and_outreach_are_filed_by_commune_and_scoped() {
    on_both_backends(sessions_and_outreach_are_filed_by_commune_and_scoped_case);
}

#[test]
fn error_answers_name_the_field_never_the_value() {
    on_both_backends(error_answers_name_the_field_never_the_value_case);
}
