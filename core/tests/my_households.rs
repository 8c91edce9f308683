//! `Store::my_households` sorts its list in Rust since SQLite's sorter cost a quarter of the
//! query (docs/benchmarks.md, section 5). Its order must stay exactly that of the SQL it
//! replaced: this test keeps the former statement, with its `ORDER BY`, and compares the two on
//! a store with every case the order distinguishes, for days before, on and after the visits.

use chrono::NaiveDate;
use doorstep_core::query::HouseholdToday;
use doorstep_core::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rusqlite::params;
use std::sync::Arc;
use uuid::Uuid;

const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// 2023-07-10 09:00 in Vietnam (02:00 UTC).
const NOW: i64 = 1_688_954_400_000;

/// The query as it was before the sort moved to Rust (core/src/query.rs at f09c2b3).
const FORMER_SQL: &str =
    "SELECT h.id, h.code, h.village_code, h.address, h.needing, h.last_at_ms, h.last_outcome,
            CASE WHEN h.last_outcome = 'come_back' THEN h.revisit_at_ms END,
            CASE WHEN h.last_day = ?2 THEN 1
                 WHEN h.last_day > ?2 THEN EXISTS (
                     SELECT 1 FROM visits v WHERE v.household_id = h.id AND v.retracted = 0 AND v.day = ?2)
                 ELSE 0 END AS today
       FROM households h
      WHERE h.deleted = 0 AND h.code IS NOT NULL
        AND (h.village_code IN (SELECT target_id FROM assignments
                                 WHERE officer_id = ?1 AND active = 1 AND target_kind = 'village')
             OR h.id IN (SELECT target_id FROM assignments
                          WHERE officer_id = ?1 AND active = 1 AND target_kind = 'household'))
      ORDER BY coalesce(h.last_outcome = 'come_back' AND h.revisit_at_ms <= ?3, 0) DESC,
               (today = 0 AND h.needing > 0) DESC,
               h.village_code, h.code";

/// The former statement's rows, mapped as `my_households` maps them.
fn former(store: &Store, officer: Uuid, day: &str) -> Vec<HouseholdToday> {
    let start = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    let day_end = time::day_start_ms(start) + DAY_MS - 1;
    let mut stmt = store.connection().prepare(FORMER_SQL).unwrap();
    let rows = stmt
        .query_map(params![officer.to_string(), day, day_end], |r| {
            let last_at: Option<i64> = r.get(5)?;
            let outcome: Option<String> = r.get(6)?;
            Ok(HouseholdToday {
                id: Uuid::parse_str(&r.get::<_, String>(0)?).unwrap(),
                code: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                village_code: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                address: r.get(3)?,
                residents_needing_help: r.get(4)?,
                last_visit: last_at.zip(outcome.and_then(|o| VisitOutcome::parse(&o).ok())),
                revisit_at_ms: r.get(7)?,
                visited_today: r.get(8)?,
            })
        })
        .unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

#[test]
fn my_households_is_ordered_as_the_former_order_by() {
    let clock = Arc::new(ManualClock::new((NOW - 12 * DAY_MS) as u64));
    let mut s = Store::open_in_memory(Options {
        clock: clock.clone(),
        ..Options::default()
    })
    .unwrap();
    let villages = ["22813-01", "22813-02", "22813-03", "22813-10"];
    for (code, parent, level) in [
        ("58", None, UnitLevel::Province),
        ("586", Some("58"), UnitLevel::District),
        ("22813", Some("586"), UnitLevel::Commune),
    ]
    .into_iter()
    .chain(
        villages
            .iter()
            .map(|v| (*v, Some("22813"), UnitLevel::Village)),
    ) {
        s.put_unit(UnitInput {
            code: code.into(),
            parent_code: parent.map(Into::into),
            level,
            kind: "thôn".into(),
            name: format!("Đơn vị {code}"),
        })
        .unwrap();
    }
    s.put_campaign(CampaignInput {
        id: Uuid::now_v7(),
        name: "Cao điểm 80 ngày đêm".into(),
        start_date: d(2023, 6, 27),
        end_date: d(2023, 9, 15),
        target: 264_720,
        unit_code: "58".into(),
    })
    .unwrap();
    let me = Uuid::now_v7();
    s.put_officer(OfficerInput {
        id: me,
        name: "Trần Văn Bình".into(),
        role: Role::Field,
        unit_code: "22813".into(),
    })
    .unwrap();

    // Households whose codes sort every way SQLite's BINARY collation sorts text: digits,
    // upper and lower case, punctuation, prefixes of one another, and codes repeated within a
    // village (ties of the whole order). Multi-byte codes are written below the API further on.
    let codes = [
        "H001", "H002", "H010", "H1", "h001", "H-7", "H.7", "H00", "H_7", "A9", "H001", "H002",
    ];
    let mut rng = StdRng::seed_from_u64(15);
    let mut hh: Vec<(Uuid, &str)> = Vec::new();
    for (i, village) in villages.iter().enumerate() {
        for (j, code) in codes.iter().enumerate() {
            if (i + j) % 5 == 4 {
                continue;
            }
            let h = Uuid::now_v7();
            s.put_household(HouseholdInput {
                id: h,
                code: code.to_string(),
                village_code: village.to_string(),
                address: (j % 3 != 0).then(|| format!("Số {j}")),
                head_id: None,
            })
            .unwrap();
            // Some households have nobody needing help (no residents).
            for k in 0..rng.gen_range(0..3) {
                s.put_resident(ResidentInput {
                    id: Uuid::now_v7(),
                    household_id: h,
                    full_name: format!("Nguyễn Văn {i}{j}{k}"),
                    birth_date: "1990".into(),
                    gender: None,
                    id_number: None,
                    phone: None,
                    relation: None,
                    account: RosterStatus::None,
                    agency: None,
                })
                .unwrap();
            }
            hh.push((h, village));
        }
    }
    // Two villages in the area, one outside it with two households assigned one by one, one
    // village assigned then unassigned; a deleted household in the area.
    s.assign(me, AssignTarget::Village(villages[0].into()))
        .unwrap();
    s.assign(me, AssignTarget::Village(villages[1].into()))
        .unwrap();
    s.assign(me, AssignTarget::Village(villages[3].into()))
        .unwrap();
    s.unassign(me, AssignTarget::Village(villages[3].into()))
        .unwrap();
    let outside: Vec<Uuid> = hh
        .iter()
        .filter(|(_, v)| *v == villages[2])
        .map(|(h, _)| *h)
        .collect();
    s.assign(me, AssignTarget::Household(outside[0])).unwrap();
    s.assign(me, AssignTarget::Household(outside[3])).unwrap();
    // A household assigned directly and also in an assigned village: listed once.
    s.assign(me, AssignTarget::Household(hh[1].0)).unwrap();
    s.delete_household(hh[2].0).unwrap();

    // Twelve days of visits, a third asking to come back (some revisits due, some not yet),
    // some retracted; clock moves forward through the days.
    let outcomes = [
        VisitOutcome::Met,
        VisitOutcome::NobodyHome,
        VisitOutcome::Refused,
        VisitOutcome::ComeBack,
    ];
    for day in 0..12 {
        clock.set((NOW - (11 - day) * DAY_MS) as u64);
        for _ in 0..12 {
            let (h, _) = *hh.choose(&mut rng).unwrap();
            if h == hh[2].0 {
                continue; // deleted
            }
            let at = clock.now_ms() as i64 - rng.gen_range(0..8 * HOUR_MS);
            let outcome = *outcomes.choose(&mut rng).unwrap();
            let come_back = outcome == VisitOutcome::ComeBack;
            let id = s
                .record_visit(NewVisit {
                    household_id: h,
                    officer_id: me,
                    at_ms: Some(at),
                    outcome,
                    revisit_at_ms: come_back.then(|| at + rng.gen_range(HOUR_MS..4 * DAY_MS)),
                    note: None,
                    location: None,
                })
                .unwrap();
            if rng.gen_bool(0.1) {
                s.retract(id, None).unwrap();
            }
        }
    }
    // Written below the API, which refuses them, as a replica of another version might have
    // left them: a household of the area without a village (a NULL village sorts first,
    // before an empty one), one with an empty village code, and codes with Vietnamese letters
    // (compared byte by byte: "Hồ" < "Hộ", "Đ" after every ASCII letter).
    for (sql, id) in [
        (
            "UPDATE households SET village_code = NULL WHERE id = ?1",
            outside[3],
        ),
        (
            "UPDATE households SET village_code = '' WHERE id = ?1",
            outside[0],
        ),
        ("UPDATE households SET code = 'Hộ 7' WHERE id = ?1", hh[3].0),
        ("UPDATE households SET code = 'Hồ 7' WHERE id = ?1", hh[5].0),
        ("UPDATE households SET code = 'ĐH-3' WHERE id = ?1", hh[6].0),
    ] {
        s.connection().execute(sql, [id.to_string()]).unwrap();
    }

    let mut seen = (0, 0, 0, 0);
    for offset in -13..=4 {
        let day = time::local_day(NOW + offset * DAY_MS);
        let got = s.my_households(me, &day).unwrap();
        let want = former(&s, me, &day);
        assert_eq!(
            got, want,
            "my_households({day}) differs from the former SQL"
        );
        let day_end =
            time::day_start_ms(NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap()) + DAY_MS - 1;
        seen.0 += got.iter().filter(|h| h.revisit_due(day_end)).count();
        seen.1 += got.iter().filter(|h| h.visited_today).count();
        seen.2 += got
            .iter()
            .filter(|h| !h.visited_today && h.residents_needing_help > 0)
            .count();
        seen.3 = seen.3.max(got.len());
    }
    // The cases the order distinguishes did occur.
    assert!(seen.0 > 0 && seen.1 > 0 && seen.2 > 0, "{seen:?}");
    // Two villages less the households skipped, the two assigned one by one, less the deleted one.
    assert_eq!(seen.3, 2 * codes.len() - 4 + 2 - 1, "{seen:?}");
}
