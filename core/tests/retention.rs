//! Retention (`doorstep_core::redact`): a purge erases personal values from the tables and from
//! every operation of the log, keeps everything the reports count, reaches other replicas as
//! operations, and converges whatever order the operations arrive in.

mod common;

use common::{options, populate, World, NOW_MS};
use doorstep_core::{
    AssistStep, HouseholdEdit, Location, ManualClock, NewAssist, NewVisit, Op, ResidentEdit, Store,
    VersionVector, VisitOutcome,
};
use proptest::prelude::*;
use std::sync::Arc;

const DAY_MS: u64 = 86_400_000;
const OLD_PHONE: &str = "0912000001";
const NEW_PHONE: &str = "0912000002";
const LATER_PHONE: &str = "0987000003";
const NOTE: &str = "cửa sau, chó dữ";
const VISIT_NOTE: &str = "hẹn chiều thứ bảy";
const REASON: &str = "nhầm hộ khác";
const HOUSE_NOTE: &str = "nhà có người già nằm liệt";

/// Every byte of the log's operation bodies.
fn log_bytes(s: &Store) -> Vec<u8> {
    let mut stmt = s.connection().prepare("SELECT body FROM oplog").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    rows.flat_map(Result::unwrap).collect()
}

fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// What the reports count: visits, steps and account states, retracted or not.
fn counts(s: &Store) -> String {
    let c = s.connection();
    let q = |sql: &str| -> String {
        let mut stmt = c.prepare(sql).unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        rows.join("\n")
    };
    [
        q("SELECT id || outcome || day || retracted FROM visits ORDER BY id"),
        q("SELECT id || step || day || retracted FROM assists ORDER BY id"),
        q("SELECT resident_id || need FROM account_state ORDER BY resident_id"),
        q("SELECT id || coalesce(full_name, '') || deleted FROM residents ORDER BY id"),
    ]
    .join("\n--\n")
}

/// A server store with a campaign's history (a phone number changed twice, a household note,
/// a visit with a note and a location, a level-2 activation, a retracted step with a reason),
/// and every operation in the order the server made them.
fn history() -> (Store, Arc<ManualClock>, World) {
    let clock = common::clock();
    let mut s = Store::open_in_memory(options(&clock)).unwrap();
    let w = populate(&mut s);
    let edit = |s: &mut Store, phone: &str| {
        s.edit_resident(
            w.residents[0],
            ResidentEdit {
                phone: Some(Some(phone.into())),
                note: Some(Some(NOTE.into())),
            },
        )
        .unwrap();
    };
    edit(&mut s, OLD_PHONE);
    clock.advance(60_000);
    edit(&mut s, NEW_PHONE);
    s.edit_household(
        w.households[0],
        HouseholdEdit {
            address: None,
            note: Some(Some(HOUSE_NOTE.into())),
        },
    )
    .unwrap();
    s.record_visit(NewVisit {
        household_id: w.households[0],
        officer_id: w.officer,
        at_ms: None,
        outcome: VisitOutcome::Met,
        revisit_at_ms: None,
        note: Some(VISIT_NOTE.into()),
        location: Some(Location {
            lat_e6: 11_565_000,
            lon_e6: 108_988_000,
        }),
    })
    .unwrap();
    for step in [
        AssistStep::Level1Guided,
        AssistStep::Level1Activated,
        AssistStep::Level2Received,
        AssistStep::Level2Activated,
    ] {
        s.record_assist(NewAssist {
            resident_id: w.residents[1],
            officer_id: w.officer,
            at_ms: None,
            step,
            failure: None,
            receiving_point: (step == AssistStep::Level2Received).then(|| "CA phường".into()),
            note: Some(VISIT_NOTE.into()),
        })
        .unwrap();
    }
    let wrong = s
        .record_assist(NewAssist {
            resident_id: w.residents[2],
            officer_id: w.officer,
            at_ms: None,
            step: AssistStep::Level1Guided,
            failure: None,
            receiving_point: None,
            note: None,
        })
        .unwrap();
    s.retract(wrong, Some(REASON)).unwrap();
    (s, clock, w)
}

fn all_ops(s: &Store) -> Vec<Op> {
    s.all_ops_since(&VersionVector::default()).unwrap()
}

fn fresh(clock: &Arc<ManualClock>) -> Store {
    Store::open_in_memory(options(clock)).unwrap()
}

#[test]
fn a_purge_erases_personal_values_from_tables_and_log_and_keeps_the_counts() {
    let (mut s, clock, w) = history();
    let before = all_ops(&s);
    // A phone that held everything before the purge.
    let mut phone = fresh(&clock);
    phone.apply_ops(&before).unwrap();
    let bytes = log_bytes(&s);
    for v in [OLD_PHONE, NEW_PHONE, NOTE, HOUSE_NOTE, VISIT_NOTE, REASON] {
        assert!(holds(&bytes, v), "{v} in the log before the purge");
    }
    let counted = counts(&s);

    clock.advance(200 * DAY_MS);
    let report = s
        .purge_personal(&w.province, (NOW_MS + 100 * DAY_MS) as i64)
        .unwrap();
    assert_eq!(report.households, 1);
    assert_eq!(report.residents, 1, "{report:?}");
    assert_eq!(
        report.facts, 6,
        "a visit, four steps, a retracted step: {report:?}"
    );
    assert!(report.rewritten >= 5, "{report:?}");
    assert_eq!(report.withheld, 0);
    let bytes = log_bytes(&s);
    for v in [OLD_PHONE, NEW_PHONE, NOTE, HOUSE_NOTE, VISIT_NOTE, REASON] {
        assert!(!holds(&bytes, v), "{v} still in the server's log");
    }
    assert_eq!(counts(&s), counted, "the counts the reports use changed");
    let c = s.connection();
    let (phone_col, lat): (Option<String>, Option<i64>) = c
        .query_row(
            "SELECT r.phone, (SELECT lat_e6 FROM visits) FROM residents r WHERE r.id = ?1",
            [w.residents[0].to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((phone_col, lat), (None, None));
    // The names and birth dates stay.
    let name: String = c
        .query_row(
            "SELECT full_name FROM residents WHERE id = ?1",
            [w.residents[0].to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "Nguyễn Văn An");

    // The phone receives the purge as operations, and compacts its own log.
    let purge: Vec<Op> = s.all_ops_since(&phone.version_vector().unwrap()).unwrap();
    assert!(!purge.is_empty());
    phone.apply_ops(&purge).unwrap();
    let bytes = log_bytes(&phone);
    for v in [OLD_PHONE, NEW_PHONE, NOTE, HOUSE_NOTE, VISIT_NOTE, REASON] {
        assert!(!holds(&bytes, v), "{v} still in the phone's log");
    }
    assert_eq!(phone.canonical_dump().unwrap(), s.canonical_dump().unwrap());

    // A purge again finds nothing; a value written after the purge's instant is kept.
    clock.advance(DAY_MS);
    s.edit_resident(
        w.residents[0],
        ResidentEdit {
            phone: Some(Some(LATER_PHONE.into())),
            note: None,
        },
    )
    .unwrap();
    let again = s
        .purge_personal(&w.province, (NOW_MS + 100 * DAY_MS) as i64)
        .unwrap();
    assert_eq!((again.households, again.residents, again.facts), (0, 0, 0));
    assert!(holds(&log_bytes(&s), LATER_PHONE));
}

#[test]
fn a_value_superseded_after_a_compaction_goes_at_the_next_one() {
    let (mut s, clock, w) = history();
    clock.advance(200 * DAY_MS);
    s.purge_personal(&w.province, (NOW_MS + 100 * DAY_MS) as i64)
        .unwrap();
    clock.advance(DAY_MS);
    let edit = |s: &mut Store, phone: &str| {
        s.edit_resident(
            w.residents[3],
            ResidentEdit {
                phone: Some(Some(phone.into())),
                note: None,
            },
        )
        .unwrap();
    };
    edit(&mut s, LATER_PHONE);
    clock.advance(1000);
    edit(&mut s, NEW_PHONE);
    assert!(holds(&log_bytes(&s), LATER_PHONE));
    let done = s
        .compact_if_pending()
        .unwrap()
        .expect("a compaction pending");
    assert_eq!(done.rewritten, 1);
    assert!(!holds(&log_bytes(&s), LATER_PHONE));
    assert!(holds(&log_bytes(&s), NEW_PHONE), "the winner stays");
    assert_eq!(s.compact_if_pending().unwrap(), None);
}

#[test]
fn erasing_a_resident_removes_every_value_they_had_from_the_log() {
    let (mut s, _clock, w) = history();
    s.erase_resident(w.residents[0]).unwrap();
    let bytes = log_bytes(&s);
    for v in [OLD_PHONE, NEW_PHONE, NOTE, "Nguyễn Văn An"] {
        assert!(!holds(&bytes, v), "{v} still in the log after the erasure");
    }
}

/// The purge's operations and the history, in any order and any batches, converge to the
/// replica that made them (tables, registers and the compacted log, byte for byte).
fn reference() -> (Vec<Op>, String, Arc<ManualClock>) {
    let (mut s, clock, w) = history();
    clock.advance(200 * DAY_MS);
    s.purge_personal(&w.province, (NOW_MS + 100 * DAY_MS) as i64)
        .unwrap();
    s.compact_log().unwrap();
    (all_ops(&s), s.canonical_dump().unwrap(), clock)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn a_purge_converges_in_any_order(seed in any::<u64>(), cuts in proptest::collection::vec(1usize..8, 1..6)) {
        let (ops, want, clock) = reference();
        let mut order: Vec<Op> = ops.clone();
        // A deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut store = fresh(&clock);
        let mut at = 0;
        for c in cuts.iter().cycle() {
            if at >= order.len() { break; }
            let end = (at + c * 7).min(order.len());
            store.apply_ops(&order[at..end]).unwrap();
            at = end;
        }
        // Duplicates change nothing.
        store.apply_ops(&order[..order.len() / 2]).unwrap();
        store.compact_log().unwrap();
        let got = store.canonical_dump().unwrap();
        prop_assert!(got == want, "diverged");
    }
}
