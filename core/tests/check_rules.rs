//! `Op::check_values`, rule by rule: each invalid value is refused with `Error::Invalid` naming
//! its field, and the error text never contains the value. Also: the wire examples of
//! `docs/examples/ops.json` pass, and the campaign rule (`in_campaign_days`).

mod common;

use doorstep_core::check::{MAX_INSTANT_MS, MIN_INSTANT_MS};
use doorstep_core::{
    in_campaign_days, Assist, AssistStep, Entity, Error, FailureReason, Field, Hlc, Key, Location,
    Op, OpBody, Outreach, OutreachKind, ReplicaId, Session, SessionKind, Value, Visit,
    VisitOutcome,
};
use uuid::Uuid;

/// 2023-07-10 09:00 in Vietnam.
const AT: i64 = common::NOW_MS as i64;
const HOUR: i64 = 3_600_000;

fn op(body: OpBody) -> Op {
    Op {
        replica: ReplicaId(Uuid::from_u128(1)),
        counter: 1,
        hlc: Hlc::new(AT as u64, 0),
        body,
    }
}

fn set(entity: Entity, fields: Vec<(Field, Value)>) -> Op {
    let key = match entity {
        Entity::Unit => Key::Code("22738".into()),
        _ => Key::Uuid(Uuid::from_u128(0x5001)),
    };
    op(OpBody::Set {
        entity,
        key,
        fields,
    })
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// The op passes the shape check but is refused naming `field`, without echoing `raw`.
#[track_caller]
fn refused(op: &Op, field: &str, raw: &str) {
    op.check_shape().expect("the shape is fine");
    let err = op.check_values().expect_err("should be refused");
    assert!(
        matches!(&err, Error::Invalid { field: f, .. } if *f == field),
        "{err:?} does not name {field}"
    );
    assert_eq!(err.invalid_field(), Some(field));
    let shown = format!("{err} {err:?}");
    let raw = raw.trim();
    if raw.chars().count() >= 3 {
        assert!(!shown.contains(raw), "{shown:?} echoes the value");
    }
}

#[track_caller]
fn passes(op: &Op) {
    op.check_shape().expect("shape");
    if let Err(e) = op.check_values() {
        panic!("{e} for {op:?}");
    }
}

/// Each value refused in `field` of `entity`.
#[track_caller]
fn each_refused(entity: Entity, field: Field, values: &[Value]) {
    for v in values {
        let raw = match v {
            Value::Text(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Null => String::new(),
        };
        refused(&set(entity, vec![(field, v.clone())]), field.as_str(), &raw);
    }
}

#[test]
fn canonical_resident_values_pass() {
    passes(&set(
        Entity::Resident,
        vec![
            (
                Field::Household,
                text("00000000-0000-0000-0000-000000004001"),
            ),
            (Field::FullName, text("Nguyễn Văn An")),
            (Field::BirthDate, text("1975-03-12")),
            (Field::Gender, text("male")),
            (Field::IdNumber, text("058075001234")),
            (Field::Phone, text("0912345678")),
            (Field::Relation, text("chủ hộ")),
            (Field::Account, text("level1_pending")),
            (Field::Note, text("Đi làm xa")),
            (Field::Deleted, Value::Int(0)),
            (Field::Agency, text("Sở Tư pháp")),
        ],
    ));
    passes(&set(
        Entity::Resident,
        vec![(Field::BirthDate, text("1990"))],
    ));
    passes(&set(
        Entity::Resident,
        vec![(Field::IdNumber, text("264123456"))],
    ));
    for f in [
        Field::Gender,
        Field::IdNumber,
        Field::Phone,
        Field::Relation,
        Field::Note,
    ] {
        passes(&set(Entity::Resident, vec![(f, Value::Null)]));
    }
}

#[test]
fn names_too_long_empty_or_not_clean_are_refused() {
    let long = "A".repeat(20_000);
    let refusals = [
        text(&long),
        text(""),
        text("   "),
        text(" Nguyễn Văn An"),
        text("Nguyễn  Văn An"),
        text("Nguye\u{302}\u{303}n Văn An"), // NFD
        text("An\u{7}"),
        Value::Null,
    ];
    each_refused(Entity::Resident, Field::FullName, &refusals);
    each_refused(Entity::Unit, Field::Name, &refusals);
    each_refused(Entity::Campaign, Field::Name, &refusals);
    each_refused(Entity::Officer, Field::Name, &refusals);
    each_refused(
        Entity::Unit,
        Field::Kind,
        &[text(&"x".repeat(41)), Value::Null],
    );
    each_refused(
        Entity::Resident,
        Field::Relation,
        &[text(&"x".repeat(61)), text("")],
    );
    each_refused(Entity::Household, Field::Address, &[text(&long), text("")]);
    each_refused(Entity::Resident, Field::Agency, &[text(&long)]);
}

#[test]
fn notes_too_long_or_not_clean_are_refused() {
    each_refused(
        Entity::Resident,
        Field::Note,
        &[text(&"n".repeat(2001)), text(""), text(" ghi chú ")],
    );
    each_refused(Entity::Household, Field::Note, &[text(&"n".repeat(2001))]);
    passes(&set(
        Entity::Household,
        vec![(Field::Note, text(&"n".repeat(2000)))],
    ));
}

#[test]
fn birth_dates_must_be_canonical_real_and_past() {
    each_refused(
        Entity::Resident,
        Field::BirthDate,
        &[
            text("not-a-date"),
            text("12/03/1975"), // accepted input, but not the stored form
            text("1975-02-30"),
            text("1850"),
            text("2999-01-01"),
            Value::Null,
        ],
    );
}

#[test]
fn id_numbers_must_be_valid_canonical_and_agree_with_the_same_op() {
    each_refused(
        Entity::Resident,
        Field::IdNumber,
        &[
            text("abc"),
            text("58075001234"),
            text("000075001234"),
            text("058 075 001 234"),
        ],
    );
    // 058075001234: born 1975, male. The same op's birth date and gender must agree.
    let with = |birth: &str, gender: &str| {
        set(
            Entity::Resident,
            vec![
                (Field::BirthDate, text(birth)),
                (Field::Gender, text(gender)),
                (Field::IdNumber, text("058075001234")),
            ],
        )
    };
    passes(&with("1975-03-12", "male"));
    refused(&with("1976-03-12", "male"), "id_number", "058075001234");
    refused(&with("1975-03-12", "female"), "id_number", "058075001234");
}

#[test]
fn phones_must_be_the_national_mobile_form() {
    each_refused(
        Entity::Resident,
        Field::Phone,
        &[
            text("abc"),
            text("+84912345678"),
            text("0912 345 678"),
            text("0211234567"),
        ],
    );
}

#[test]
fn coded_fields_must_be_codes() {
    each_refused(
        Entity::Resident,
        Field::Gender,
        &[text("nam"), text("x"), text("Male")],
    );
    each_refused(
        Entity::Resident,
        Field::Account,
        &[text("qwerty"), Value::Null],
    );
    each_refused(Entity::Unit, Field::Level, &[text("country"), Value::Null]);
    each_refused(
        Entity::Officer,
        Field::Role,
        &[text("admin"), text("Province")],
    );
    each_refused(Entity::Quota, Field::Metric, &[text("calls")]);
    each_refused(Entity::Quota, Field::SubjectKind, &[text("household")]);
    each_refused(Entity::Assignment, Field::TargetKind, &[text("commune")]);
    each_refused(
        Entity::Quota,
        Field::Period,
        &[text("week"), text("2023-7-10"), text("2019-12-31")],
    );
}

#[test]
fn codes_and_ids_must_have_their_form() {
    for (entity, field) in [
        (Entity::Unit, Field::Parent),
        (Entity::Household, Field::Village),
        (Entity::Household, Field::Code),
        (Entity::Officer, Field::Unit),
        (Entity::Campaign, Field::Unit),
    ] {
        each_refused(
            entity,
            field,
            &[text("22 738"), text(" 22738"), text(&"9".repeat(33))],
        );
    }
    for (entity, field) in [
        (Entity::Household, Field::Head),
        (Entity::Resident, Field::Household),
        (Entity::Assignment, Field::Officer),
        (Entity::Quota, Field::Campaign),
    ] {
        each_refused(
            entity,
            field,
            &[
                text("not-a-uuid"),
                text("00000000-0000-0000-0000-00000000400A"),
            ],
        );
    }
    let unit_key = op(OpBody::Set {
        entity: Entity::Unit,
        key: Key::Code("22738 ; drop".into()),
        fields: vec![(Field::Name, text("Phường Đô Vinh"))],
    });
    refused(&unit_key, "code", "22738 ; drop");
    // An assignment's and a quota's id follow their kind.
    let officer = "00000000-0000-0000-0000-000000000f00";
    let assignment = |kind: &str, id: &str| {
        set(
            Entity::Assignment,
            vec![(Field::TargetKind, text(kind)), (Field::TargetId, text(id))],
        )
    };
    passes(&assignment("village", "22738-01"));
    passes(&assignment("household", officer));
    refused(&assignment("village", officer), "target_id", officer);
    refused(
        &assignment("household", "22738-01"),
        "target_id",
        "22738-01",
    );
    let quota = |kind: &str, id: &str| {
        set(
            Entity::Quota,
            vec![
                (Field::SubjectKind, text(kind)),
                (Field::SubjectId, text(id)),
            ],
        )
    };
    passes(&quota("unit", "22738"));
    refused(&quota("officer", "22738"), "subject_id", "22738");
}

#[test]
fn a_unit_has_a_parent_unless_it_is_a_province() {
    let unit = |level: &str, parent: Value| {
        set(
            Entity::Unit,
            vec![(Field::Level, text(level)), (Field::Parent, parent)],
        )
    };
    passes(&unit("province", Value::Null));
    passes(&unit("commune", text("582")));
    refused(&unit("province", text("582")), "parent_code", "582");
    refused(&unit("village", Value::Null), "parent_code", "");
}

#[test]
fn campaign_dates_and_targets_are_bounded() {
    each_refused(
        Entity::Campaign,
        Field::Start,
        &[
            text("2023-02-30"),
            text("2023-7-1"),
            text("2017-07-01"),
            text("2100-01-01"),
        ],
    );
    each_refused(
        Entity::Campaign,
        Field::Target,
        &[Value::Int(-1), Value::Int(i64::MAX)],
    );
    each_refused(Entity::Quota, Field::Target, &[Value::Int(-5), Value::Null]);
    let campaign = |start: &str, end: &str| {
        set(
            Entity::Campaign,
            vec![(Field::Start, text(start)), (Field::End, text(end))],
        )
    };
    passes(&campaign("2023-06-27", "2023-09-15"));
    passes(&campaign("2023-06-27", "2023-06-27"));
    refused(
        &campaign("2023-09-15", "2023-06-27"),
        "end_date",
        "2023-06-27",
    );
}

#[test]
fn flags_are_zero_or_one() {
    each_refused(
        Entity::Household,
        Field::Deleted,
        &[Value::Int(2), Value::Int(-1)],
    );
    each_refused(
        Entity::Assignment,
        Field::Active,
        &[Value::Int(7), Value::Null],
    );
}

fn visit() -> Visit {
    Visit {
        id: Uuid::now_v7(),
        household_id: Uuid::from_u128(0x4001),
        officer_id: Uuid::from_u128(0x0F00),
        at_ms: AT,
        outcome: VisitOutcome::Met,
        revisit_at_ms: None,
        note: Some("Gặp chủ hộ".into()),
        location: Some(Location {
            lat_e6: 11_564_123,
            lon_e6: 108_988_456,
        }),
    }
}

#[test]
fn visits_are_checked() {
    passes(&op(OpBody::Visit(visit())));
    let cases: Vec<(Visit, &str, String)> = vec![
        (
            Visit {
                at_ms: 1_500_000_000_000,
                ..visit()
            },
            "visit.at_ms",
            "1500000000000".into(),
        ),
        (
            Visit {
                at_ms: MIN_INSTANT_MS - 1,
                ..visit()
            },
            "visit.at_ms",
            String::new(),
        ),
        (
            Visit {
                at_ms: MAX_INSTANT_MS,
                ..visit()
            },
            "visit.at_ms",
            String::new(),
        ),
        (
            Visit {
                at_ms: i64::MIN,
                ..visit()
            },
            "visit.at_ms",
            String::new(),
        ),
        (
            Visit {
                note: Some("x".repeat(2001)),
                ..visit()
            },
            "visit.note",
            "x".repeat(2001),
        ),
        (
            Visit {
                note: Some(" padded".into()),
                ..visit()
            },
            "visit.note",
            String::new(),
        ),
        (
            Visit {
                outcome: VisitOutcome::ComeBack,
                ..visit()
            },
            "visit.revisit_at_ms",
            String::new(),
        ),
        (
            Visit {
                outcome: VisitOutcome::ComeBack,
                revisit_at_ms: Some(AT - HOUR),
                ..visit()
            },
            "visit.revisit_at_ms",
            String::new(),
        ),
        (
            Visit {
                outcome: VisitOutcome::ComeBack,
                revisit_at_ms: Some(i64::MAX),
                ..visit()
            },
            "visit.revisit_at_ms",
            String::new(),
        ),
        (
            Visit {
                revisit_at_ms: Some(AT + HOUR),
                ..visit()
            },
            "visit.revisit_at_ms",
            String::new(),
        ),
        (
            Visit {
                location: Some(Location {
                    lat_e6: 91_000_000,
                    lon_e6: 0,
                }),
                ..visit()
            },
            "visit.location",
            "91000000".into(),
        ),
        (
            Visit {
                location: Some(Location {
                    lat_e6: 0,
                    lon_e6: i32::MIN,
                }),
                ..visit()
            },
            "visit.location",
            String::new(),
        ),
    ];
    for (v, field, raw) in cases {
        refused(&op(OpBody::Visit(v)), field, &raw);
    }
    passes(&op(OpBody::Visit(Visit {
        outcome: VisitOutcome::ComeBack,
        revisit_at_ms: Some(AT + HOUR),
        ..visit()
    })));
}

fn assist() -> Assist {
    Assist {
        id: Uuid::now_v7(),
        resident_id: Uuid::from_u128(0x5001),
        officer_id: Uuid::from_u128(0x0F00),
        at_ms: AT,
        step: AssistStep::Level2Received,
        failure: None,
        receiving_point: Some("Công an phường Đô Vinh".into()),
        note: None,
    }
}

#[test]
fn assistance_steps_are_checked() {
    passes(&op(OpBody::Assist(assist())));
    passes(&op(OpBody::Assist(Assist {
        receiving_point: None,
        failure: Some(FailureReason::NoChipIdCard),
        ..assist()
    })));
    let long = "p".repeat(301);
    let cases: Vec<(Assist, &str, &str)> = vec![
        (
            Assist {
                at_ms: 1_483_228_800_000,
                ..assist()
            },
            "assist.at_ms",
            "",
        ),
        (
            Assist {
                receiving_point: None,
                ..assist()
            },
            "assist.receiving_point",
            "",
        ),
        (
            Assist {
                receiving_point: Some(long.clone()),
                ..assist()
            },
            "assist.receiving_point",
            &long,
        ),
        (
            Assist {
                receiving_point: Some(String::new()),
                ..assist()
            },
            "assist.receiving_point",
            "",
        ),
        (
            Assist {
                note: Some("n".repeat(2001)),
                ..assist()
            },
            "assist.note",
            "",
        ),
    ];
    for (a, field, raw) in cases {
        refused(&op(OpBody::Assist(a)), field, raw);
    }
}

fn session() -> Session {
    Session {
        id: Uuid::now_v7(),
        unit_code: "22738".into(),
        officer_id: Uuid::from_u128(0x0F00),
        kind: SessionKind::Fixed,
        place: "Nhà văn hoá khu phố 1".into(),
        starts_at_ms: AT,
        ends_at_ms: AT + 4 * HOUR,
        applications: 37,
        note: None,
    }
}

#[test]
fn sessions_are_checked() {
    passes(&op(OpBody::Session(session())));
    let cases: Vec<(Session, &str)> = vec![
        (
            Session {
                unit_code: "22 738".into(),
                ..session()
            },
            "session.unit_code",
        ),
        (
            Session {
                place: String::new(),
                ..session()
            },
            "session.place",
        ),
        (
            Session {
                place: "p".repeat(301),
                ..session()
            },
            "session.place",
        ),
        (
            Session {
                starts_at_ms: 0,
                ends_at_ms: 1,
                ..session()
            },
            "session.starts_at_ms",
        ),
        (
            Session {
                ends_at_ms: AT - 1,
                ..session()
            },
            "session.ends_at_ms",
        ),
        (
            Session {
                ends_at_ms: AT + 24 * HOUR,
                ..session()
            },
            "session.ends_at_ms",
        ),
        (
            Session {
                applications: 5001,
                ..session()
            },
            "session.applications",
        ),
        (
            Session {
                note: Some(" x".into()),
                ..session()
            },
            "session.note",
        ),
    ];
    for (s, field) in cases {
        refused(&op(OpBody::Session(s)), field, "");
    }
}

fn outreach() -> Outreach {
    Outreach {
        id: Uuid::now_v7(),
        unit_code: "22738-01".into(),
        officer_id: Uuid::from_u128(0x0F00),
        kind: OutreachKind::Meeting,
        at_ms: AT,
        place: "Nhà văn hoá".into(),
        people_reached: 120,
        note: None,
    }
}

#[test]
fn outreach_events_and_retractions_are_checked() {
    passes(&op(OpBody::Outreach(outreach())));
    let cases: Vec<(Outreach, &str)> = vec![
        (
            Outreach {
                unit_code: String::new(),
                ..outreach()
            },
            "outreach.unit_code",
        ),
        (
            Outreach {
                at_ms: MAX_INSTANT_MS + 1,
                ..outreach()
            },
            "outreach.at_ms",
        ),
        (
            Outreach {
                people_reached: u32::MAX,
                ..outreach()
            },
            "outreach.people_reached",
        ),
        (
            Outreach {
                place: "a\u{0}b".into(),
                ..outreach()
            },
            "outreach.place",
        ),
        (
            Outreach {
                note: Some("n".repeat(5000)),
                ..outreach()
            },
            "outreach.note",
        ),
    ];
    for (o, field) in cases {
        refused(&op(OpBody::Outreach(o)), field, "");
    }
    let retract = |reason: Option<String>| {
        op(OpBody::Retract {
            fact_id: Uuid::now_v7(),
            reason,
        })
    };
    passes(&retract(None));
    passes(&retract(Some("Ghi nhầm hộ".into())));
    refused(&retract(Some("r".repeat(2001))), "retract.reason", "");
}

#[test]
fn the_wire_examples_pass() {
    let json = include_str!("../../docs/examples/ops.json");
    let ops: Vec<Op> = serde_json::from_str(json).expect("ops.json");
    assert!(ops.len() >= 6);
    for op in &ops {
        passes(op);
    }
}

#[test]
fn the_campaign_rule_is_one_function() {
    let (store, _, _) = common::populated_store(None);
    let conn = store.connection();
    // The campaign runs 2023-06-27..2023-09-15, local days.
    assert!(in_campaign_days(conn, AT).unwrap());
    let first_day =
        doorstep_core::time::local_ms(chrono::NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(), 0);
    assert!(in_campaign_days(conn, first_day).unwrap());
    assert!(!in_campaign_days(conn, first_day - 1).unwrap());
    let visit_2017 = op(OpBody::Visit(Visit {
        at_ms: 1_500_000_000_000,
        ..visit()
    }));
    assert_eq!(
        visit_2017.campaign_instants(),
        vec![("visit.at_ms", 1_500_000_000_000)]
    );
    let err = visit_2017.check_campaign_days(conn).unwrap_err();
    assert_eq!(err.invalid_field(), Some("visit.at_ms"));
    let late_revisit = op(OpBody::Visit(Visit {
        outcome: VisitOutcome::ComeBack,
        revisit_at_ms: Some(AT + 100 * 24 * HOUR),
        ..visit()
    }));
    assert_eq!(
        late_revisit
            .check_campaign_days(conn)
            .unwrap_err()
            .invalid_field(),
        Some("visit.revisit_at_ms")
    );
    op(OpBody::Session(session()))
        .check_campaign_days(conn)
        .unwrap();
    op(OpBody::Outreach(outreach()))
        .check_campaign_days(conn)
        .unwrap();
    // Without any campaign, every day is allowed.
    let empty = doorstep_core::Store::open_in_memory(Default::default()).unwrap();
    assert!(in_campaign_days(empty.connection(), 1_500_000_000_000).unwrap());
}
