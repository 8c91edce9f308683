//! Schema v2: receiving-point sessions, outreach events, residents' agencies and rosters that
//! say an account is already activated.

mod common;

use common::{populated_store, NOW_MS};
use doorstep_core::{
    Error, NewOutreach, NewSession, Options, OutreachKind, SessionKind, Store, VersionVector,
};

fn session(unit: &str, officer: uuid::Uuid) -> NewSession {
    NewSession {
        unit_code: unit.into(),
        officer_id: officer,
        kind: SessionKind::Mobile,
        place: "Chợ Phước Dân".into(),
        starts_at_ms: NOW_MS as i64,
        ends_at_ms: NOW_MS as i64 + 4 * 3_600_000,
        applications: 42,
        note: None,
    }
}

fn outreach(unit: &str, officer: uuid::Uuid) -> NewOutreach {
    NewOutreach {
        unit_code: unit.into(),
        officer_id: officer,
        kind: OutreachKind::Training,
        at_ms: None,
        place: "Hội trường UBND xã".into(),
        people_reached: 30,
        note: None,
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn sessions_and_outreach_are_recorded_retracted_and_replicated() {
    let (mut a, w, _clock) = populated_store(None);
    let s = a.record_session(session(&w.commune, w.officer)).unwrap();
    let o = a.record_outreach(outreach(&w.village, w.officer)).unwrap();
    a.record_outreach(NewOutreach {
        kind: OutreachKind::Loudspeaker,
        people_reached: 1500,
        ..outreach(&w.commune, w.officer)
    })
    .unwrap();
    assert_eq!(
        count(
            &a,
            "SELECT applications FROM sessions WHERE kind = 'mobile' AND day = '2023-07-10'"
        ),
        42
    );
    a.retract(o, Some("nhập nhầm")).unwrap();
    a.retract(o, None).unwrap(); // twice is harmless
    assert_eq!(
        count(
            &a,
            "SELECT sum(people) FROM outreach WHERE retracted = 0 AND unit_code = '22738'"
        ),
        1500
    );

    // Another replica receives the operations in reverse order (the retraction first) and
    // ends up with the same tables.
    let mut b = Store::open_in_memory(Options::default()).unwrap();
    let mut ops = a.all_ops_since(&VersionVector::default()).unwrap();
    ops.reverse();
    b.apply_ops(&ops).unwrap();
    b.apply_ops(&ops).unwrap(); // and again: duplicates are no-ops
    assert_eq!(b.canonical_dump().unwrap(), a.canonical_dump().unwrap());
    assert_eq!(
        count(&b, "SELECT retracted FROM outreach WHERE kind = 'training'"),
        1
    );
    assert_eq!(count(&b, "SELECT count(*) FROM sessions"), 1);
    let _ = s;
}

#[test]
fn bad_sessions_and_outreach_are_refused_and_change_nothing() {
    let (mut store, w, _clock) = populated_store(None);
    let before = store.canonical_dump().unwrap();
    let field = |e: Error| match e {
        Error::Invalid { field, .. } | Error::NotFound { field, .. } => field,
        other => panic!("unexpected error {other:?}"),
    };
    // A session belongs to a commune, not a village.
    let e = store
        .record_session(session(&w.village, w.officer))
        .unwrap_err();
    assert_eq!(field(e), "unit_code");
    let e = store
        .record_session(NewSession {
            ends_at_ms: NOW_MS as i64 - 1,
            ..session(&w.commune, w.officer)
        })
        .unwrap_err();
    assert_eq!(field(e), "ends_at");
    let e = store
        .record_session(NewSession {
            applications: 1_000_000,
            ..session(&w.commune, w.officer)
        })
        .unwrap_err();
    assert_eq!(field(e), "applications");
    let e = store
        .record_session(NewSession {
            place: "  ".into(),
            ..session(&w.commune, w.officer)
        })
        .unwrap_err();
    assert_eq!(field(e), "place");
    let e = store
        .record_session(NewSession {
            starts_at_ms: 1_600_000_000_000,
            ends_at_ms: 1_600_000_000_000,
            ..session(&w.commune, w.officer)
        })
        .unwrap_err();
    assert_eq!(field(e), "starts_at");
    let e = store
        .record_outreach(outreach("99999", w.officer))
        .unwrap_err();
    assert_eq!(field(e), "unit_code");
    let e = store
        .record_outreach(outreach(&w.commune, uuid::Uuid::from_u128(7)))
        .unwrap_err();
    assert_eq!(field(e), "officer_id");
    let e = store
        .record_outreach(NewOutreach {
            people_reached: u32::MAX,
            ..outreach(&w.commune, w.officer)
        })
        .unwrap_err();
    assert_eq!(field(e), "people_reached");
    let e = store
        .retract(uuid::Uuid::from_u128(12345), None)
        .unwrap_err();
    assert_eq!(field(e), "fact_id");
    assert_eq!(store.canonical_dump().unwrap(), before);
}

#[test]
fn roster_carries_agency_and_activated_accounts() {
    let (mut store, w, _clock) = populated_store(None);
    let csv = format!(
        "household_code,village_code,full_name,birth_date,relation,account,agency\n\
         HX1,{v},Trần Văn Bình,1975,chủ hộ,level2_activated,Công an tỉnh Ninh Thuận\n\
         HX1,{v},Trần Thị Cúc,1978,vợ,level1_activated,\n\
         HX1,{v},Trần Văn Dũng,2001,con,level2_pending,Sở Y tế\n\
         HX2,{v},Lê Thị Em,1990,chủ hộ,activated,\n",
        v = w.village
    );
    let report = store
        .import_roster(w.campaign, csv.as_bytes(), &mut |_| {})
        .unwrap();
    assert_eq!(report.accepted, 3);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 5);
    assert!(
        report.rejected[0].reason.contains("level2_activated"),
        "{}",
        report.rejected[0].reason
    );
    let states: Vec<(String, i64, i64, String)> = store
        .connection()
        .prepare(
            "SELECT coalesce(r.agency, '-'), a.level1, a.level2, a.need
             FROM residents r JOIN account_state a ON a.resident_id = r.id
             WHERE r.household_id IN (SELECT id FROM households WHERE code = 'HX1')
             ORDER BY r.birth_date",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        states,
        vec![
            (
                "Công an tỉnh Ninh Thuận".to_owned(),
                0,
                2,
                "portal_guidance".to_owned()
            ),
            ("-".to_owned(), 2, 0, "level2_to_take".to_owned()),
            ("Sở Y tế".to_owned(), 0, 1, "level2_to_activate".to_owned()),
        ]
    );
    // Importing again changes nothing.
    let again = store
        .import_roster(w.campaign, csv.as_bytes(), &mut |_| {})
        .unwrap();
    assert_eq!(again.residents_changed, 0);
}
