//! The field worker's day against one store: recording, every validation rule (rejected,
//! nothing changed, no personal data in the message), and the queries.

use chrono::NaiveDate;
use doorstep_core::*;
use std::sync::Arc;
use uuid::Uuid;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// 2023-07-03 09:00 in Vietnam (02:00 UTC).
const NOW: i64 = 1_688_349_600_000;
const CCCD: &str = "058090001234"; // Ninh Thuận, male, born 1990.

struct Fx {
    s: Store,
    clock: Arc<ManualClock>,
    campaign: Uuid,
    me: Uuid,
    other: Uuid,
    hh: Vec<Uuid>,
    res: Vec<Uuid>,
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn fixture() -> Fx {
    let clock = Arc::new(ManualClock::new(NOW as u64));
    let mut s = Store::open_in_memory(Options {
        clock: clock.clone(),
        ..Options::default()
    })
    .unwrap();
    for (code, parent, level) in [
        ("58", None, UnitLevel::Province),
        ("586", Some("58"), UnitLevel::District),
        ("22813", Some("586"), UnitLevel::Commune),
        ("22813-01", Some("22813"), UnitLevel::Village),
        ("22813-02", Some("22813"), UnitLevel::Village),
    ] {
        s.put_unit(UnitInput {
            code: code.into(),
            parent_code: parent.map(Into::into),
            level,
            kind: "thôn".into(),
            name: format!("Đơn vị {code}"),
        })
        .unwrap();
    }
    let campaign = Uuid::now_v7();
    s.put_campaign(CampaignInput {
        id: campaign,
        name: "Cao điểm 80 ngày đêm".into(),
        start_date: d(2023, 6, 27),
        end_date: d(2023, 9, 15),
        target: 264_720,
        unit_code: "58".into(),
    })
    .unwrap();
    let me = Uuid::now_v7();
    let other = Uuid::now_v7();
    for (id, name) in [(me, "Trần Văn Bình"), (other, "Lê Thị Hoa")] {
        s.put_officer(OfficerInput {
            id,
            name: name.into(),
            role: Role::Field,
            unit_code: "22813".into(),
        })
        .unwrap();
    }
    s.assign(me, AssignTarget::Village("22813-01".into()))
        .unwrap();
    s.assign(other, AssignTarget::Village("22813-02".into()))
        .unwrap();
    let names = [
        (
            "22813-01",
            "Nguyễn Văn A",
            "1990",
            Some(CCCD),
            Some("0912345678"),
        ),
        ("22813-01", "Đặng Thị Đào", "1985-04-02", None, None),
        ("22813-01", "Dang Thi Dao", "1970", None, None),
        ("22813-01", "Nguyễn Văn An", "2001", None, None),
        ("22813-02", "Phạm Văn Đông", "1960", None, None),
    ];
    let mut hh = Vec::new();
    let mut res = Vec::new();
    for (i, (village, name, birth, id_number, phone)) in names.into_iter().enumerate() {
        let h = Uuid::now_v7();
        s.put_household(HouseholdInput {
            id: h,
            code: format!("H{i:03}"),
            village_code: village.into(),
            address: Some(format!("Số {i}")),
            head_id: None,
        })
        .unwrap();
        let r = Uuid::now_v7();
        s.put_resident(ResidentInput {
            id: r,
            household_id: h,
            full_name: name.into(),
            birth_date: birth.into(),
            gender: Some(
                if name.contains("Thị") {
                    "nữ"
                } else {
                    "nam"
                }
                .into(),
            ),
            id_number: id_number.map(Into::into),
            phone: phone.map(Into::into),
            relation: Some("chủ hộ".into()),
            account: RosterStatus::None,
            agency: None,
        })
        .unwrap();
        hh.push(h);
        res.push(r);
    }
    Fx {
        s,
        clock,
        campaign,
        me,
        other,
        hh,
        res,
    }
}

fn visit(fx: &Fx, h: usize, outcome: VisitOutcome) -> NewVisit {
    NewVisit {
        household_id: fx.hh[h],
        officer_id: fx.me,
        at_ms: None,
        outcome,
        revisit_at_ms: None,
        note: None,
        location: None,
    }
}

fn assist(fx: &Fx, r: usize, step: AssistStep, failure: Option<FailureReason>) -> NewAssist {
    NewAssist {
        resident_id: fx.res[r],
        officer_id: fx.me,
        at_ms: None,
        step,
        failure,
        receiving_point: None,
        note: None,
    }
}

fn resident(fx: &Fx, id_number: Option<&str>, phone: Option<&str>, birth: &str) -> ResidentInput {
    ResidentInput {
        id: Uuid::now_v7(),
        household_id: fx.hh[0],
        full_name: "Hoàng Văn Mới".into(),
        birth_date: birth.into(),
        gender: Some("nam".into()),
        id_number: id_number.map(Into::into),
        phone: phone.map(Into::into),
        relation: None,
        account: RosterStatus::None,
        agency: None,
    }
}

/// Run `f`, expect `Invalid { field }` or `NotFound { field }`, and check that the store did
/// not change and that the message holds none of `secrets`.
fn rejected<T: std::fmt::Debug>(
    fx: &mut Fx,
    field: &str,
    secrets: &[&str],
    f: impl FnOnce(&mut Fx) -> Result<T>,
) {
    let before = fx.s.canonical_dump().unwrap();
    let err = f(fx).expect_err("expected a rejection");
    let got = match &err {
        Error::Invalid { field, .. } | Error::NotFound { field, .. } => *field,
        other => panic!("unexpected error kind: {other:?}"),
    };
    assert_eq!(got, field, "{err}");
    let msg = err.to_string();
    for s in secrets {
        assert!(!msg.contains(s), "message leaks input: {msg}");
    }
    assert_eq!(
        fx.s.canonical_dump().unwrap(),
        before,
        "a rejected call changed the store"
    );
}

#[test]
fn id_number_rules() {
    let mut fx = fixture();
    rejected(&mut fx, "id_number", &["05809000123"], |fx| {
        let r = resident(fx, Some("05809000123"), None, "1990");
        fx.s.put_resident(r)
    });
    rejected(&mut fx, "id_number", &["000090001234"], |fx| {
        let r = resident(fx, Some("000090001234"), None, "1990");
        fx.s.put_resident(r)
    });
    // Born 1990 but the number says 1991.
    rejected(&mut fx, "id_number", &["058091001234"], |fx| {
        let r = resident(fx, Some("058091001234"), None, "1990");
        fx.s.put_resident(r)
    });
    // Century/gender digit 1 = female born in the 1900s, but the resident is male.
    rejected(&mut fx, "id_number", &["058190001234"], |fx| {
        let r = resident(fx, Some("058190001234"), None, "1990");
        fx.s.put_resident(r)
    });
    // Another resident already holds this citizen ID.
    rejected(&mut fx, "id_number", &[CCCD], |fx| {
        let r = resident(fx, Some(CCCD), None, "1990");
        fx.s.put_resident(r)
    });
    // Old 9-digit numbers are accepted and may repeat.
    for _ in 0..2 {
        let r = resident(&fx, Some("264123456"), None, "1990");
        fx.s.put_resident(r).unwrap();
    }
}

#[test]
fn phone_rules() {
    let mut fx = fixture();
    rejected(&mut fx, "phone", &["091234567"], |fx| {
        let r = resident(fx, None, Some("091234567"), "1990");
        fx.s.put_resident(r)
    });
    rejected(&mut fx, "phone", &["0211234567"], |fx| {
        fx.s.edit_resident(
            fx.res[0],
            ResidentEdit {
                phone: Some(Some("0211234567".into())),
                note: None,
            },
        )
    });
    assert_eq!(
        fx.s.edit_resident(
            fx.res[0],
            ResidentEdit {
                phone: Some(Some("+84 98 765 4321".into())),
                note: None
            }
        )
        .unwrap(),
        1
    );
}

#[test]
fn birth_date_and_name_rules() {
    let mut fx = fixture();
    rejected(&mut fx, "birth_date", &[], |fx| {
        let r = resident(fx, None, None, "1990-02-30");
        fx.s.put_resident(r)
    });
    rejected(&mut fx, "full_name", &[], |fx| {
        let mut r = resident(fx, None, None, "1990");
        r.full_name = "   ".into();
        fx.s.put_resident(r)
    });
}

#[test]
fn dates_within_the_campaign() {
    let mut fx = fixture();
    rejected(&mut fx, "at", &[], |fx| {
        let mut v = visit(fx, 0, VisitOutcome::Met);
        v.at_ms = Some(NOW - 30 * DAY_MS); // 3 June, before the campaign.
        fx.s.record_visit(v)
    });
    // A phone whose clock is a year ahead cannot record "now".
    fx.clock.advance(365 * DAY_MS as u64);
    rejected(&mut fx, "at", &[], |fx| {
        let a = assist(fx, 0, AssistStep::Level1Guided, None);
        fx.s.record_assist(a)
    });
    fx.clock.set(NOW as u64);
    rejected(&mut fx, "revisit_at", &[], |fx| {
        let mut v = visit(fx, 0, VisitOutcome::ComeBack);
        v.revisit_at_ms = Some(NOW + 120 * DAY_MS);
        fx.s.record_visit(v)
    });
    rejected(&mut fx, "revisit_at", &[], |fx| {
        let v = visit(fx, 0, VisitOutcome::ComeBack);
        fx.s.record_visit(v)
    });
    rejected(&mut fx, "revisit_at", &[], |fx| {
        let mut v = visit(fx, 0, VisitOutcome::Met);
        v.revisit_at_ms = Some(NOW + DAY_MS);
        fx.s.record_visit(v)
    });
    rejected(&mut fx, "period", &[], |fx| {
        fx.s.set_quota(QuotaInput {
            campaign_id: fx.campaign,
            subject: QuotaSubject::Officer(fx.me),
            period: QuotaPeriod::Day(d(2023, 10, 1)),
            metric: QuotaMetric::Visits,
            target: 10,
        })
    });
}

#[test]
fn ids_must_exist() {
    let mut fx = fixture();
    rejected(&mut fx, "household_id", &[], |fx| {
        let mut v = visit(fx, 0, VisitOutcome::Met);
        v.household_id = Uuid::now_v7();
        fx.s.record_visit(v)
    });
    rejected(&mut fx, "officer_id", &[], |fx| {
        let mut v = visit(fx, 0, VisitOutcome::Met);
        v.officer_id = Uuid::now_v7();
        fx.s.record_visit(v)
    });
    rejected(&mut fx, "resident_id", &[], |fx| {
        let mut a = assist(fx, 0, AssistStep::Level1Guided, None);
        a.resident_id = Uuid::now_v7();
        fx.s.record_assist(a)
    });
    rejected(&mut fx, "fact_id", &[], |fx| {
        fx.s.retract(Uuid::now_v7(), None)
    });
    rejected(&mut fx, "village_code", &[], |fx| {
        fx.s.put_household(HouseholdInput {
            id: Uuid::now_v7(),
            code: "H999".into(),
            village_code: "22813-99".into(),
            address: None,
            head_id: None,
        })
    });
    rejected(&mut fx, "campaign_id", &[], |fx| {
        fx.s.set_quota(QuotaInput {
            campaign_id: Uuid::now_v7(),
            subject: QuotaSubject::Officer(fx.me),
            period: QuotaPeriod::Campaign,
            metric: QuotaMetric::Visits,
            target: 10,
        })
    });
    // A deleted household is gone for new visits.
    fx.s.delete_household(fx.hh[1]).unwrap();
    rejected(&mut fx, "household_id", &[], |fx| {
        let v = visit(fx, 1, VisitOutcome::Met);
        fx.s.record_visit(v)
    });
}

#[test]
fn other_input_rules() {
    let mut fx = fixture();
    rejected(&mut fx, "receiving_point", &[], |fx| {
        let a = assist(fx, 0, AssistStep::Level2Received, None);
        fx.s.record_assist(a)
    });
    rejected(&mut fx, "note", &[], |fx| {
        let mut v = visit(fx, 0, VisitOutcome::Met);
        v.note = Some("x".repeat(MAX_NOTE_CHARS + 1));
        fx.s.record_visit(v)
    });
    rejected(&mut fx, "location", &[], |fx| {
        let mut v = visit(fx, 0, VisitOutcome::Met);
        v.location = Some(Location {
            lat_e6: 91_000_000,
            lon_e6: 0,
        });
        fx.s.record_visit(v)
    });
    rejected(&mut fx, "end_date", &[], |fx| {
        fx.s.put_campaign(CampaignInput {
            id: Uuid::now_v7(),
            name: "x".into(),
            start_date: d(2023, 9, 1),
            end_date: d(2023, 8, 1),
            target: 1,
            unit_code: "58".into(),
        })
    });
    rejected(&mut fx, "code", &[], |fx| {
        fx.s.put_unit(UnitInput {
            code: "58 01".into(),
            parent_code: Some("58".into()),
            level: UnitLevel::District,
            kind: "huyện".into(),
            name: "x".into(),
        })
    });
}

#[test]
fn putting_the_same_data_twice_makes_no_operation() {
    let mut fx = fixture();
    let vv = fx.s.version_vector().unwrap();
    let r: ResidentInput = ResidentInput {
        id: fx.res[1],
        household_id: fx.hh[1],
        full_name: "Đặng Thị Đào".into(),
        birth_date: "02/04/1985".into(),
        gender: Some("Nữ".into()),
        id_number: None,
        phone: None,
        relation: Some("chủ hộ".into()),
        account: RosterStatus::None,
        agency: None,
    };
    assert_eq!(fx.s.put_resident(r).unwrap(), 0);
    assert_eq!(fx.s.version_vector().unwrap(), vv);
}

#[test]
fn a_day_in_the_field() {
    let mut fx = fixture();
    let today = fx.s.today();
    assert_eq!(today, "2023-07-03");
    let (me, campaign) = (fx.me, fx.campaign);
    fx.s.set_quota(QuotaInput {
        campaign_id: campaign,
        subject: QuotaSubject::Officer(me),
        period: QuotaPeriod::Day(d(2023, 7, 3)),
        metric: QuotaMetric::Level2Received,
        target: 5,
    })
    .unwrap();
    fx.s.set_quota(QuotaInput {
        campaign_id: campaign,
        subject: QuotaSubject::Officer(me),
        period: QuotaPeriod::Campaign,
        metric: QuotaMetric::Level2Activated,
        target: 200,
    })
    .unwrap();

    // Four households in my village, one in the other officer's.
    let list = fx.s.my_households(me, &today).unwrap();
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|h| h.village_code == "22813-01"));
    assert!(list
        .iter()
        .all(|h| !h.visited_today && h.residents_needing_help == 1));

    // Household 0: met; resident 0 gets level 2 received and activated.
    fx.s.record_visit(visit(&fx, 0, VisitOutcome::Met)).unwrap();
    let mut a = assist(&fx, 0, AssistStep::Level2Received, None);
    a.receiving_point = Some("Điểm tiếp nhận lưu động xã Phương Hải".into());
    fx.s.record_assist(a).unwrap();
    let activated =
        fx.s.record_assist(assist(&fx, 0, AssistStep::Level2Activated, None))
            .unwrap();
    // Household 1: come back tomorrow. Household 2: nobody home; resident 2 blocked by OTP.
    let mut v = visit(&fx, 1, VisitOutcome::ComeBack);
    v.revisit_at_ms = Some(NOW + DAY_MS);
    fx.s.record_visit(v).unwrap();
    fx.s.record_visit(visit(&fx, 2, VisitOutcome::NobodyHome))
        .unwrap();
    fx.s.record_assist(assist(
        &fx,
        2,
        AssistStep::Level1Activated,
        Some(FailureReason::OtpNotReceived),
    ))
    .unwrap();
    // A mistaken visit, retracted.
    let wrong =
        fx.s.record_visit(visit(&fx, 3, VisitOutcome::Refused))
            .unwrap();
    fx.s.retract(wrong, Some("nhầm hộ")).unwrap();

    let list = fx.s.my_households(me, &today).unwrap();
    let by_id = |id: Uuid| list.iter().find(|h| h.id == id).unwrap();
    assert!(by_id(fx.hh[0]).visited_today);
    // Households not yet visited today, with residents needing help, come first.
    assert_eq!(list[0].id, fx.hh[3]);
    assert!(list[1..].iter().all(|h| h.visited_today));
    assert_eq!(by_id(fx.hh[0]).residents_needing_help, 1); // still needs portal guidance
    assert!(
        !by_id(fx.hh[3]).visited_today,
        "retracted visit still counted"
    );
    assert_eq!(by_id(fx.hh[1]).revisit_at_ms, Some(NOW + DAY_MS));
    assert!(fx.s.revisits_due(me, &today).unwrap().is_empty());
    let tomorrow = "2023-07-04";
    let due = fx.s.revisits_due(me, tomorrow).unwrap();
    assert_eq!(due.iter().map(|h| h.id).collect::<Vec<_>>(), vec![fx.hh[1]]);
    // Due revisits come first in tomorrow's list.
    assert_eq!(fx.s.my_households(me, tomorrow).unwrap()[0].id, fx.hh[1]);

    let needs = fx.s.residents_needing_help(me).unwrap();
    let need_of = |r: Uuid| needs.iter().find(|n| n.id == r).map(|n| n.need);
    assert_eq!(need_of(fx.res[0]), Some(Need::PortalGuidance));
    assert_eq!(need_of(fx.res[2]), Some(Need::NoAccount));
    assert_eq!(
        needs
            .iter()
            .find(|n| n.id == fx.res[2])
            .unwrap()
            .last_failure,
        Some(FailureReason::OtpNotReceived)
    );
    assert_eq!(
        need_of(fx.res[4]),
        None,
        "another officer's resident listed"
    );

    let p = fx.s.progress(me, campaign, &today).unwrap();
    assert_eq!(p.day.visits, 3);
    assert_eq!(p.day.level2_received, 1);
    assert_eq!(p.day.level2_activated, 1);
    assert_eq!(p.day_quota.level2_received, 5);
    assert_eq!(p.campaign_quota.level2_activated, 200);
    assert_eq!(p.campaign.level2_activated, 1);
    assert_eq!(fx.s.progress(me, campaign, tomorrow).unwrap().day.visits, 0);

    let blockers = fx.s.blockers(Some(me)).unwrap();
    let otp = blockers
        .iter()
        .find(|b| b.reason == FailureReason::OtpNotReceived)
        .unwrap();
    assert_eq!((otp.residents, otp.attempts), (1, 1));
    assert_eq!(
        fx.s.blockers(Some(fx.other))
            .unwrap()
            .iter()
            .map(|b| b.attempts)
            .sum::<i64>(),
        0
    );

    // Retracting the activation takes it back out of the account state and the counts.
    fx.s.retract(activated, None).unwrap();
    let needs = fx.s.residents_needing_help(me).unwrap();
    assert_eq!(
        needs.iter().find(|n| n.id == fx.res[0]).unwrap().need,
        Need::Level2ToActivate
    );
    assert_eq!(
        fx.s.progress(me, campaign, &today)
            .unwrap()
            .day
            .level2_activated,
        0
    );
}

#[test]
fn search_folds_diacritics_and_ranks_exact_first() {
    let fx = fixture();
    let names = |q: &str| -> Vec<String> {
        fx.s.search_residents(q, 10)
            .unwrap()
            .into_iter()
            .map(|h| h.full_name)
            .collect()
    };
    assert_eq!(names("nguyen van a"), vec!["Nguyễn Văn A", "Nguyễn Văn An"]);
    assert_eq!(names("dang thi dao"), vec!["Dang Thi Dao", "Đặng Thị Đào"]);
    // With its diacritics, the exact spelling ranks first.
    assert_eq!(names("Đặng Thị Đào"), vec!["Đặng Thị Đào", "Dang Thi Dao"]);
    assert_eq!(names("ĐÔNG"), vec!["Phạm Văn Đông"]);
    assert_eq!(names(CCCD), vec!["Nguyễn Văn A"]);
    assert_eq!(names("+84 912 345 678"), vec!["Nguyễn Văn A"]);
    assert!(names("%").is_empty());
    assert!(matches!(
        fx.s.search_residents("  ", 10),
        Err(Error::Invalid { field: "query", .. })
    ));
}

/// Erasure (the person's right to deletion): every personal field of the resident blanked and
/// the resident deleted, as operations another replica receives; the household's other
/// residents and the resident's facts stay; an unknown id is `NotFound`.
#[test]
fn an_erased_resident_is_blanked_everywhere() {
    let mut fx = fixture();
    let r = resident(
        &fx,
        Some("058090004321"),
        Some("0912 345 678"),
        "1990-05-17",
    );
    let id = r.id;
    fx.s.put_resident(r).unwrap();
    fx.s.record_assist(NewAssist {
        resident_id: id,
        ..assist(&fx, 0, AssistStep::Level1Guided, None)
    })
    .unwrap();
    let mut phone = Store::open_in_memory(Options::default()).unwrap();
    phone
        .apply_ops(&fx.s.all_ops_since(&Default::default()).unwrap())
        .unwrap();
    let known = phone.version_vector().unwrap();

    assert!(fx.s.erase_resident(id).unwrap() > 0);
    assert_eq!(
        fx.s.erase_resident(id).unwrap(),
        0,
        "nothing left to change"
    );
    assert!(matches!(
        fx.s.erase_resident(Uuid::now_v7()),
        Err(Error::NotFound { .. })
    ));
    phone
        .apply_ops(&fx.s.all_ops_since(&known).unwrap())
        .unwrap();
    for store in [&fx.s, &phone] {
        let row: (Option<String>, Option<String>, Option<String>, Option<String>, i64) = store
            .connection()
            .query_row(
                "SELECT full_name, birth_date, id_number, phone, deleted FROM residents WHERE id = ?1",
                [id.to_string()],
                |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, (None, None, None, None, 1));
        let others: i64 = store
            .connection()
            .query_row(
                "SELECT count(*) FROM residents WHERE deleted = 0 AND full_name IS NOT NULL",
                [],
                |x| x.get(0),
            )
            .unwrap();
        assert!(others > 0, "the other residents stay");
        let steps: i64 = store
            .connection()
            .query_row(
                "SELECT count(*) FROM assists WHERE resident_id = ?1",
                [id.to_string()],
                |x| x.get(0),
            )
            .unwrap();
        assert_eq!(steps, 1, "the facts stay");
        assert!(store
            .search_residents("Hoàng Văn Mới", 10)
            .unwrap()
            .iter()
            .all(|h| h.id != id));
    }
}
