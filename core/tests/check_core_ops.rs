//! Every operation the core itself makes passes `Op::check_values`: the write API and a roster
//! import, driven with generated valid input (in the many forms people type it: NFD names,
//! stray spaces, `DD/MM/YYYY` dates, `+84` phones), then every operation of the log checked.

mod common;

use chrono::NaiveDate;
use doorstep_core::{
    AssignTarget, AssistStep, FailureReason, HouseholdEdit, HouseholdInput, Location, NewAssist,
    NewOutreach, NewSession, NewVisit, OutreachKind, QuotaInput, QuotaMetric, QuotaPeriod,
    QuotaSubject, ResidentEdit, ResidentInput, RosterStatus, SessionKind, Store, VisitOutcome,
};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

const HOUR: i64 = 3_600_000;
const NAMES: [&str; 6] = [
    "Nguyễn Văn An",
    "Trần Thị Bình",
    "Đặng Thị Đào",
    "Lê Văn Cường",
    "Phạm Thị Dung",
    "Hồ Xuân Hương",
];
const PROVINCES: [&str; 4] = ["058", "001", "079", "096"];
const PREFIXES: [&str; 5] = ["091", "032", "086", "070", "055"];

/// A text as someone might type it: NFD or not, with stray spaces or not.
fn typed(base: &'static str) -> impl Strategy<Value = String> {
    (any::<bool>(), any::<bool>()).prop_map(move |(nfd, pad)| {
        let s: String = if nfd {
            base.nfd().collect()
        } else {
            base.to_owned()
        };
        if pad {
            format!("  {}\t", s.replace(' ', "   "))
        } else {
            s
        }
    })
}

#[derive(Debug, Clone)]
struct Person {
    name: String,
    birth: String,
    gender: Option<String>,
    id_number: Option<String>,
    phone: Option<String>,
    relation: Option<String>,
    agency: Option<String>,
    account: RosterStatus,
}

fn person() -> impl Strategy<Value = Person> {
    (
        prop::sample::select(NAMES.to_vec()).prop_flat_map(typed),
        (1930i32..2020, 1u32..=12, 1u32..=28, 0usize..3),
        prop::option::of((any::<bool>(), 0usize..4)),
        prop::option::of((0usize..4, 0u32..1_000_000, any::<bool>(), any::<bool>())),
        prop::option::of((0usize..5, 0u32..10_000_000, 0usize..3)),
        prop::option::of(prop::sample::select(vec!["chủ hộ", "vợ", "con", "cháu"])),
        prop::option::of(typed("Sở Tư pháp tỉnh Ninh Thuận")),
        prop::sample::select(RosterStatus::ALL.to_vec()),
    )
        .prop_map(
            |(name, (y, m, d, form), gender, id, phone, relation, agency, account)| {
                let birth = match form {
                    0 => format!("{y}-{m:02}-{d:02}"),
                    1 => format!("{d}/{m}/{y}"),
                    _ => format!("{y}"),
                };
                let female = gender.is_some_and(|(f, _)| f);
                let gender = gender.map(|(f, i)| {
                    let forms = if f {
                        ["nữ", "NỮ", "female", "f"]
                    } else {
                        ["nam", "Nam", "male", "M"]
                    };
                    forms[i].to_owned()
                });
                let id_number = id.map(|(p, serial, cccd, spaced)| {
                    let n = if cccd {
                        let century = (y - 1900) / 100 * 2 + i32::from(female);
                        format!("{}{century}{:02}{serial:06}", PROVINCES[p], y % 100)
                    } else {
                        format!("{:09}", 100_000_000 + serial)
                    };
                    if spaced {
                        format!(" {} {}", &n[..3], &n[3..])
                    } else {
                        n
                    }
                });
                let phone = phone.map(|(p, rest, form)| {
                    let national = format!("{}{rest:07}", PREFIXES[p]);
                    match form {
                        0 => national,
                        1 => format!("+84 {} {}", &national[1..4], &national[4..]),
                        _ => format!("{}.{}.{}", &national[..4], &national[4..7], &national[7..]),
                    }
                });
                Person {
                    name,
                    birth,
                    gender,
                    id_number,
                    phone,
                    relation: relation.map(str::to_owned),
                    agency,
                    account,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Day {
    /// Days into the campaign (2023-06-27 + n), and the hour.
    day: i64,
    hour: i64,
}

fn day() -> impl Strategy<Value = Day> {
    (0i64..80, 6i64..18).prop_map(|(day, hour)| Day { day, hour })
}

impl Day {
    fn ms(&self) -> i64 {
        let start = NaiveDate::from_ymd_opt(2023, 6, 27).unwrap();
        doorstep_core::time::local_ms(start, 0) + self.day * 24 * HOUR + self.hour * HOUR
    }
}

fn note() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just(String::new()),
        Just("   ".to_owned()),
        typed("Hẹn tối quay lại"),
        "\\PC{1,40}",
    ])
}

/// Quote a CSV cell.
fn cell(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn roster(people: &[Person], village: &str) -> String {
    let mut csv = doorstep_core::roster::ROSTER_COLUMNS.join(",") + "\n";
    for (i, p) in people.iter().enumerate() {
        let opt = |o: &Option<String>| o.as_deref().map(cell).unwrap_or_default();
        let row = [
            cell(&format!("HH{:03}", i / 2)),
            cell(village),
            cell(&format!(" {} Lê  Duẩn ", 10 + i)),
            cell(&p.name),
            cell(&p.birth),
            opt(&p.gender),
            opt(&p.id_number),
            opt(&p.phone),
            opt(&p.relation),
            cell(p.account.as_str()),
            opt(&p.agency),
        ];
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    csv
}

fn check_log(store: &Store) -> Result<(), TestCaseError> {
    let ops = store.all_ops_since(&Default::default()).unwrap();
    prop_assert!(ops.len() > 10);
    for op in &ops {
        op.check_shape().unwrap();
        if let Err(e) = op.check_values() {
            return Err(TestCaseError::fail(format!("{e}: {op:?}")));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_write_api_makes_only_valid_operations(
        people in prop::collection::vec(person(), 1..4),
        edits in prop::collection::vec((any::<bool>(), note(), prop::option::of(0u32..10_000_000)), 1..3),
        days in prop::collection::vec(day(), 4),
        outcome in prop::sample::select(VisitOutcome::ALL.to_vec()),
        step in prop::sample::select(AssistStep::ALL.to_vec()),
        failure in prop::option::of(prop::sample::select(FailureReason::ALL.to_vec())),
        notes in prop::collection::vec(note(), 5),
        lat in -90_000_000i32..=90_000_000,
        lon in -180_000_000i32..=180_000_000,
        counts in (0u32..=5000, 0u32..=1_000_000),
        target in 0i64..=1_000_000,
    ) {
        let (mut store, w, _) = common::populated_store(None);
        let household = w.households[0];
        let mut residents = Vec::new();
        for (i, p) in people.iter().enumerate() {
            let id = Uuid::from_u128(0x9000 + i as u128);
            let put = store.put_resident(ResidentInput {
                id,
                household_id: household,
                full_name: p.name.clone(),
                birth_date: p.birth.clone(),
                gender: p.gender.clone(),
                id_number: p.id_number.clone(),
                phone: p.phone.clone(),
                relation: p.relation.clone(),
                account: p.account,
                agency: p.agency.clone(),
            });
            // Two generated people may share a CCCD; the core refuses the second.
            if put.is_ok() {
                residents.push(id);
            }
        }
        let resident = residents.first().copied().unwrap_or(w.residents[0]);
        for (clear, note, phone) in &edits {
            let phone = phone.map(|rest| format!("+84 91{rest:07}"));
            store.edit_resident(resident, ResidentEdit {
                phone: Some(if *clear { None } else { phone }),
                note: Some(note.clone()),
            }).unwrap();
            store.edit_household(household, HouseholdEdit {
                address: Some(if *clear { None } else { Some(" 12  Lê Lợi ".into()) }),
                note: Some(note.clone()),
            }).unwrap();
        }
        store.put_household(HouseholdInput {
            id: Uuid::from_u128(0x4100),
            code: " HK0100 ".into(),
            village_code: w.village.clone(),
            address: None,
            head_id: Some(resident),
        }).unwrap();
        let at = days[0].ms();
        let revisit = matches!(outcome, VisitOutcome::ComeBack).then(|| days[0].ms() + HOUR);
        let visit = store.record_visit(NewVisit {
            household_id: household,
            officer_id: w.officer,
            at_ms: Some(at),
            outcome,
            revisit_at_ms: revisit,
            note: notes[0].clone(),
            location: Some(Location { lat_e6: lat, lon_e6: lon }),
        }).unwrap();
        let point = (step == AssistStep::Level2Received).then(|| " Công an  phường ".to_owned());
        store.record_assist(NewAssist {
            resident_id: resident,
            officer_id: w.officer,
            at_ms: Some(days[1].ms()),
            step,
            failure,
            receiving_point: point,
            note: notes[1].clone(),
        }).unwrap();
        store.record_session(NewSession {
            unit_code: format!(" {} ", w.commune),
            officer_id: w.officer,
            kind: SessionKind::Mobile,
            place: "Nhà văn hoá".nfd().collect(),
            starts_at_ms: days[2].ms(),
            ends_at_ms: days[2].ms() + HOUR,
            applications: counts.0,
            note: notes[2].clone(),
        }).unwrap();
        store.record_outreach(NewOutreach {
            unit_code: w.village.clone(),
            officer_id: w.officer,
            kind: OutreachKind::Loudspeaker,
            at_ms: Some(days[3].ms()),
            place: " Loa   xã ".into(),
            people_reached: counts.1,
            note: notes[3].clone(),
        }).unwrap();
        store.retract(visit, notes[4].as_deref()).unwrap();
        store.assign(w.officer, AssignTarget::Village(format!(" {} ", w.village))).unwrap();
        store.assign(w.officer, AssignTarget::Household(household)).unwrap();
        store.unassign(w.officer, AssignTarget::Household(household)).unwrap();
        let day = NaiveDate::from_ymd_opt(2023, 6, 27).unwrap() + chrono::Days::new(days[0].day as u64);
        store.set_quota(QuotaInput {
            campaign_id: w.campaign,
            subject: QuotaSubject::Officer(w.officer),
            period: QuotaPeriod::Day(day),
            metric: QuotaMetric::Visits,
            target,
        }).unwrap();
        store.set_quota(QuotaInput {
            campaign_id: w.campaign,
            subject: QuotaSubject::Unit(format!("{} ", w.commune)),
            period: QuotaPeriod::Campaign,
            metric: QuotaMetric::Level2Activated,
            target,
        }).unwrap();
        store.delete_resident(resident).unwrap();
        store.delete_household(w.households[2]).unwrap();

        let csv = roster(&people, &w.village);
        store.import_roster(w.campaign, csv.as_bytes(), &mut |_| {}).unwrap();
        check_log(&store)?;
    }
}

/// The fixture roster and units (with their refused rows) make only valid operations too.
#[test]
fn the_fixture_roster_makes_only_valid_operations() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/roster/");
    let (mut store, w, _) = common::populated_store(None);
    let villages = std::fs::read(format!("{fixtures}villages.csv")).unwrap();
    let units = format!(
        "code,parent_code,level,kind,name\n22741,582,commune,phường, Phường  Kinh Dinh \n{}",
        String::from_utf8(villages)
            .unwrap()
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    );
    store.import_units_csv(units.as_bytes()).unwrap();
    let small = std::fs::read(format!("{fixtures}small.csv")).unwrap();
    let report = store
        .import_roster(w.campaign, &small[..], &mut |_| {})
        .unwrap();
    assert!(report.accepted > 0);
    for op in store.all_ops_since(&Default::default()).unwrap() {
        op.check_values().unwrap_or_else(|e| panic!("{e}: {op:?}"));
    }
}
