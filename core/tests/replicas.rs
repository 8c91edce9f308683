//! Replica-set convergence: 3–5 replicas make random changes (including concurrent edits of
//! the same household and resident, retractions and tombstones), exchange random subsets of
//! their operations in random order with duplicates, and — once every operation has reached
//! every replica — hold byte-identical canonical dumps.

use chrono::NaiveDate;
use doorstep_core::*;
use proptest::prelude::*;
use std::sync::Arc;
use uuid::Uuid;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// 2023-07-01 09:00 in Vietnam.
const T0: i64 = 1_688_176_800_000;

struct World {
    stores: Vec<Store>,
    clocks: Vec<Arc<ManualClock>>,
    officers: Vec<Uuid>,
    households: Vec<Uuid>,
    residents: Vec<Uuid>,
    campaign: Uuid,
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// Replica 0 creates the reference data; every replica then receives it.
fn world(n: usize, skews: &[i64]) -> World {
    let mut stores = Vec::new();
    let mut clocks = Vec::new();
    for i in 0..n {
        let clock = Arc::new(ManualClock::new((T0 + skews[i % skews.len()]) as u64));
        clocks.push(clock.clone());
        stores.push(
            Store::open_in_memory(Options {
                clock,
                ..Options::default()
            })
            .unwrap(),
        );
    }
    let s = &mut stores[0];
    for (code, parent, level) in [
        ("58", None, UnitLevel::Province),
        ("588", Some("58"), UnitLevel::District),
        ("22840", Some("588"), UnitLevel::Commune),
        ("22840-01", Some("22840"), UnitLevel::Village),
    ] {
        s.put_unit(UnitInput {
            code: code.into(),
            parent_code: parent.map(Into::into),
            level,
            kind: "x".into(),
            name: format!("Đơn vị {code}"),
        })
        .unwrap();
    }
    let campaign = Uuid::now_v7();
    s.put_campaign(CampaignInput {
        id: campaign,
        name: "80 ngày đêm".into(),
        start_date: d(2023, 6, 27),
        end_date: d(2023, 9, 15),
        target: 100,
        unit_code: "58".into(),
    })
    .unwrap();
    let officers: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for (i, o) in officers.iter().enumerate() {
        s.put_officer(OfficerInput {
            id: *o,
            name: format!("Cán bộ {i}"),
            role: Role::Field,
            unit_code: "22840".into(),
        })
        .unwrap();
        s.assign(*o, AssignTarget::Village("22840-01".into()))
            .unwrap();
    }
    let mut households = Vec::new();
    let mut residents = Vec::new();
    for h in 0..3 {
        let hid = Uuid::now_v7();
        s.put_household(HouseholdInput {
            id: hid,
            code: format!("HH{h}"),
            village_code: "22840-01".into(),
            address: Some(format!("Thôn {h}")),
            head_id: None,
        })
        .unwrap();
        households.push(hid);
        for r in 0..2 {
            let rid = Uuid::now_v7();
            s.put_resident(ResidentInput {
                id: rid,
                household_id: hid,
                full_name: format!("Nguyễn Văn {h}{r}"),
                birth_date: "1990".into(),
                gender: Some("nam".into()),
                id_number: None,
                phone: None,
                relation: None,
                account: RosterStatus::None,
                agency: None,
            })
            .unwrap();
            residents.push(rid);
        }
    }
    let base = stores[0].all_ops_since(&VersionVector::default()).unwrap();
    for s in stores.iter_mut().skip(1) {
        s.apply_ops(&base).unwrap();
    }
    World {
        stores,
        clocks,
        officers,
        households,
        residents,
        campaign,
    }
}

#[derive(Debug, Clone)]
enum Action {
    Visit {
        r: u8,
        h: u8,
        outcome: u8,
        day: u8,
    },
    Assist {
        r: u8,
        res: u8,
        step: u8,
        fail: u8,
        day: u8,
    },
    Phone {
        r: u8,
        res: u8,
        n: u8,
    },
    Address {
        r: u8,
        h: u8,
        n: u8,
    },
    Retract {
        r: u8,
        pick: u8,
    },
    DeleteResident {
        r: u8,
        res: u8,
    },
    Quota {
        r: u8,
        o: u8,
        n: u8,
    },
    Unassign {
        r: u8,
        o: u8,
    },
    /// A receiving session (even `n`) or an outreach event (odd `n`).
    Activity {
        r: u8,
        n: u8,
        day: u8,
    },
    Tick {
        r: u8,
        ms: u16,
    },
    /// Deliver a random subset of replica `from`'s operations to `to`, shuffled, duplicated.
    Deliver {
        from: u8,
        to: u8,
        seed: u64,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, h, outcome, day)| Action::Visit { r, h, outcome, day }),
        4 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, res, step, fail, day)| Action::Assist { r, res, step, fail, day }),
        2 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, res, n)| Action::Phone { r, res, n }),
        2 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, h, n)| Action::Address { r, h, n }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(r, pick)| Action::Retract { r, pick }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(r, res)| Action::DeleteResident { r, res }),
        1 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, o, n)| Action::Quota { r, o, n }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(r, o)| Action::Unassign { r, o }),
        1 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, n, day)| Action::Activity { r, n, day }),
        2 => (any::<u8>(), any::<u16>()).prop_map(|(r, ms)| Action::Tick { r, ms }),
        5 => (any::<u8>(), any::<u8>(), any::<u64>()).prop_map(|(from, to, seed)| Action::Deliver { from, to, seed }),
    ]
}

fn pick<T: Copy>(v: &[T], i: u8) -> T {
    v[i as usize % v.len()]
}

/// Run one action. Errors a real user could hit (the household was deleted here, say) are
/// part of the game and ignored; what matters is the state afterwards.
fn run(w: &mut World, a: &Action) {
    use rand::{seq::SliceRandom, Rng, SeedableRng};
    let n = w.stores.len();
    let ri = |r: u8| r as usize % n;
    match *a {
        Action::Visit { r, h, outcome, day } => {
            let o = pick(VisitOutcome::ALL, outcome);
            let at = T0 + (day % 40) as i64 * DAY_MS;
            let _ = w.stores[ri(r)].record_visit(NewVisit {
                household_id: pick(&w.households, h),
                officer_id: pick(&w.officers, r),
                at_ms: Some(at),
                outcome: o,
                revisit_at_ms: (o == VisitOutcome::ComeBack).then_some(at + DAY_MS),
                note: None,
                location: Some(Location {
                    lat_e6: 11_600_000,
                    lon_e6: 108_900_000,
                }),
            });
        }
        Action::Assist {
            r,
            res,
            step,
            fail,
            day,
        } => {
            let step = pick(AssistStep::ALL, step);
            let failure = (fail % 3 == 0).then(|| pick(FailureReason::ALL, fail / 3));
            let _ = w.stores[ri(r)].record_assist(NewAssist {
                resident_id: pick(&w.residents, res),
                officer_id: pick(&w.officers, r),
                at_ms: Some(T0 + (day % 40) as i64 * DAY_MS),
                step,
                failure,
                receiving_point: Some("Công an xã".into()),
                note: None,
            });
        }
        Action::Phone { r, res, n } => {
            let phone = (n % 4 != 0).then(|| format!("09123456{:02}", n % 100));
            let _ = w.stores[ri(r)].edit_resident(
                pick(&w.residents, res),
                ResidentEdit {
                    phone: Some(phone),
                    note: None,
                },
            );
        }
        Action::Address { r, h, n } => {
            let _ = w.stores[ri(r)].edit_household(
                pick(&w.households, h),
                HouseholdEdit {
                    address: Some(Some(format!("Số {n}, thôn Mỹ Tường"))),
                    note: None,
                },
            );
        }
        Action::Retract { r, pick: p } => {
            let s = &mut w.stores[ri(r)];
            let ids: Vec<String> = s
                .connection()
                .prepare(
                    "SELECT id FROM visits UNION ALL SELECT id FROM assists
                     UNION ALL SELECT id FROM sessions UNION ALL SELECT id FROM outreach ORDER BY 1",
                )
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            if !ids.is_empty() {
                let id = Uuid::parse_str(&ids[p as usize % ids.len()]).unwrap();
                s.retract(id, Some("nhập nhầm")).unwrap();
            }
        }
        Action::DeleteResident { r, res } => {
            let _ = w.stores[ri(r)].delete_resident(pick(&w.residents, res));
        }
        Action::Quota { r, o, n } => {
            let campaign = w.campaign;
            w.stores[ri(r)]
                .set_quota(QuotaInput {
                    campaign_id: campaign,
                    subject: QuotaSubject::Officer(pick(&w.officers, o)),
                    period: QuotaPeriod::Day(d(2023, 7, 1)),
                    metric: QuotaMetric::Visits,
                    target: n as i64,
                })
                .unwrap();
        }
        Action::Unassign { r, o } => {
            let officer = pick(&w.officers, o);
            w.stores[ri(r)]
                .unassign(officer, AssignTarget::Village("22840-01".into()))
                .unwrap();
        }
        Action::Activity { r, n, day } => {
            let at = T0 + (day % 40) as i64 * DAY_MS;
            let officer = pick(&w.officers, r);
            let s = &mut w.stores[ri(r)];
            if n % 2 == 0 {
                s.record_session(NewSession {
                    unit_code: "22840".into(),
                    officer_id: officer,
                    kind: pick(SessionKind::ALL, n / 2),
                    place: "Nhà văn hoá thôn".into(),
                    starts_at_ms: at,
                    ends_at_ms: at + 3_600_000,
                    applications: n as u32,
                    note: None,
                })
                .unwrap();
            } else {
                s.record_outreach(NewOutreach {
                    unit_code: "22840-01".into(),
                    officer_id: officer,
                    kind: pick(OutreachKind::ALL, n / 2),
                    at_ms: Some(at),
                    place: "Loa thôn".into(),
                    people_reached: 10 * n as u32,
                    note: None,
                })
                .unwrap();
            }
        }
        Action::Tick { r, ms } => w.clocks[ri(r)].advance(ms as u64),
        Action::Deliver { from, to, seed } => {
            let (from, to) = (ri(from), ri(to));
            if from == to {
                return;
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let all = w.stores[from]
                .all_ops_since(&VersionVector::default())
                .unwrap();
            let mut chosen: Vec<Op> = all.into_iter().filter(|_| rng.gen_bool(0.5)).collect();
            let dups: Vec<Op> = chosen
                .iter()
                .filter(|_| rng.gen_bool(0.2))
                .cloned()
                .collect();
            chosen.extend(dups);
            chosen.shuffle(&mut rng);
            // Random batch sizes, as pages of a flaky link would be.
            let mut rest = &chosen[..];
            while !rest.is_empty() {
                let k = rng.gen_range(1..=rest.len());
                w.stores[to].apply_ops(&rest[..k]).unwrap();
                rest = &rest[k..];
            }
        }
    }
}

/// Everyone gets everything, through anti-entropy on version vectors.
fn settle(w: &mut World) {
    for _ in 0..2 {
        for i in 0..w.stores.len() {
            for j in 0..w.stores.len() {
                if i != j {
                    let vv = w.stores[j].version_vector().unwrap();
                    let ops = w.stores[i].all_ops_since(&vv).unwrap();
                    w.stores[j].apply_ops(&ops).unwrap();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(
        n in 3usize..=5,
        actions in proptest::collection::vec(action(), 1..60),
    ) {
        // Clocks: one right, one a year ahead, one a year behind, others a few minutes off.
        let year = 365 * DAY_MS;
        let mut w = world(n, &[0, year, -year, 5 * 60_000, -90_000]);
        for a in &actions {
            run(&mut w, a);
        }
        settle(&mut w);
        let reference = w.stores[0].canonical_dump().unwrap();
        for s in &w.stores[1..] {
            let dump = s.canonical_dump().unwrap();
            prop_assert!(dump == reference, "replica dumps differ:\n{}", first_difference(&reference, &dump));
        }
        // Everyone agrees on what every replica holds.
        let vv = w.stores[0].version_vector().unwrap();
        for s in &w.stores[1..] {
            prop_assert_eq!(s.version_vector().unwrap(), vv.clone());
        }
    }
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {i}:\n  {x}\n  {y}");
        }
    }
    format!("lengths {} vs {}", a.lines().count(), b.lines().count())
}

/// The stale-phone rule: a phone that recorded "level 1 guided" long after another recorded
/// "level 2 activated" (by wall clock, HLC or arrival order) cannot pull the state back.
#[test]
fn stale_phone_cannot_pull_level2_back() {
    let mut w = world(2, &[0, -365 * DAY_MS]);
    let res = w.residents[0];
    w.stores[0]
        .record_assist(NewAssist {
            resident_id: res,
            officer_id: w.officers[0],
            at_ms: Some(T0),
            step: AssistStep::Level2Activated,
            failure: None,
            receiving_point: None,
            note: None,
        })
        .unwrap();
    w.stores[1]
        .record_assist(NewAssist {
            resident_id: res,
            officer_id: w.officers[1],
            at_ms: Some(T0 + DAY_MS),
            step: AssistStep::Level1Guided,
            failure: None,
            receiving_point: None,
            note: None,
        })
        .unwrap();
    settle(&mut w);
    for s in &w.stores {
        let (l1, l2, need): (i64, i64, String) = s
            .connection()
            .query_row(
                "SELECT level1, level2, need FROM account_state WHERE resident_id = ?1",
                [res.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((l1, l2, need.as_str()), (1, 2, "portal_guidance"));
    }
}

/// Concurrent edits of one field: the later HLC stamp wins everywhere, whatever the arrival
/// order; a clock a year behind loses to a correct clock's later edit only by HLC order.
#[test]
fn concurrent_phone_edits_resolve_by_stamp() {
    let mut w = world(3, &[0]);
    let res = w.residents[1];
    w.stores[1]
        .edit_resident(
            res,
            ResidentEdit {
                phone: Some(Some("0912000001".into())),
                note: None,
            },
        )
        .unwrap();
    w.clocks[2].advance(10);
    w.stores[2]
        .edit_resident(
            res,
            ResidentEdit {
                phone: Some(Some("0912000002".into())),
                note: None,
            },
        )
        .unwrap();
    // Deliver in opposite orders to replicas 0 and the others.
    let a = w.stores[1]
        .all_ops_since(&VersionVector::default())
        .unwrap();
    let b = w.stores[2]
        .all_ops_since(&VersionVector::default())
        .unwrap();
    w.stores[0].apply_ops(&b).unwrap();
    w.stores[0].apply_ops(&a).unwrap();
    settle(&mut w);
    for s in &w.stores {
        let phone: String = s
            .connection()
            .query_row(
                "SELECT phone FROM residents WHERE id = ?1",
                [res.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(phone, "0912000002");
    }
}

/// Three authors make random changes from the same base, without hearing from each other.
/// Returns the base operations and each author's own operations.
fn authored(actions: &[Action]) -> (Vec<Op>, Vec<Vec<Op>>) {
    let mut w = world(3, &[0, 365 * DAY_MS, -365 * DAY_MS]);
    let base = w.stores[0]
        .all_ops_since(&VersionVector::default())
        .unwrap();
    for a in actions {
        if !matches!(a, Action::Deliver { .. }) {
            run(&mut w, a);
        }
    }
    let sets = w
        .stores
        .iter()
        .map(|s| {
            s.all_ops_since(&VersionVector::default())
                .unwrap()
                .into_iter()
                .filter(|op| op.replica == s.replica_id() && !base.contains(op))
                .collect()
        })
        .collect();
    (base, sets)
}

/// A fresh replica holding the base and then the given deliveries, in order.
fn replica_with(base: &[Op], deliveries: &[&[Op]]) -> Store {
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    s.apply_ops(base).unwrap();
    for d in deliveries {
        s.apply_ops(d).unwrap();
    }
    s
}

fn dump(s: &Store) -> String {
    s.canonical_dump().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// merge(a, b) = merge(b, a): the order two sets of operations arrive in does not matter.
    #[test]
    fn merge_is_commutative(actions in proptest::collection::vec(action(), 1..40)) {
        let (base, ops) = authored(&actions);
        let ab = replica_with(&base, &[&ops[0], &ops[1]]);
        let ba = replica_with(&base, &[&ops[1], &ops[0]]);
        prop_assert_eq!(dump(&ab), dump(&ba));
    }

    /// merge(merge(a, b), c) = merge(a, merge(b, c)): grouping does not matter.
    #[test]
    fn merge_is_associative(actions in proptest::collection::vec(action(), 1..40)) {
        let (base, ops) = authored(&actions);
        let left = replica_with(&base, &[&ops[0], &ops[1], &ops[2]]);
        // b and c merged first on one replica, which then sends its whole log to a holding a.
        let bc = replica_with(&base, &[&ops[1], &ops[2]]);
        let bc_ops = bc.all_ops_since(&VersionVector::default()).unwrap();
        let right = replica_with(&base, &[&ops[0], &bc_ops]);
        prop_assert_eq!(dump(&left), dump(&right));
    }

    /// merge(a, a) = a, and a re-delivered or reversed batch changes nothing.
    #[test]
    fn merge_is_idempotent(actions in proptest::collection::vec(action(), 1..40)) {
        let (base, ops) = authored(&actions);
        let once = replica_with(&base, &[&ops[0], &ops[1]]);
        let mut reversed = ops[1].clone();
        reversed.reverse();
        let twice = replica_with(&base, &[&ops[0], &ops[1], &ops[0], &reversed]);
        prop_assert_eq!(dump(&once), dump(&twice));
    }
}

/// A fact stamped a day ahead (a phone whose clock ran ahead) is applied but moves no clock:
/// the receiver's next edit is stamped by its own clock, so a server that refuses edits
/// stamped ahead of it does not refuse it (issue #12: `clock_ahead` must not spread). A
/// last-writer-wins change from the future is still followed, up to the drift bound.
#[test]
fn a_fact_from_the_future_moves_no_clock() {
    let mut w = world(2, &[0, DAY_MS]);
    w.stores[1]
        .record_visit(NewVisit {
            household_id: w.households[0],
            officer_id: w.officers[0],
            at_ms: Some(T0),
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: None,
            location: None,
        })
        .unwrap();
    let ahead: Vec<Op> = w.stores[1]
        .all_ops_since(&VersionVector::default())
        .unwrap()
        .into_iter()
        .filter(|o| o.replica == w.stores[1].replica_id())
        .collect();
    assert!(ahead
        .iter()
        .all(|o| o.hlc.physical_ms() as i64 >= T0 + DAY_MS));
    let report = w.stores[0].apply_ops(&ahead).unwrap();
    assert_eq!((report.applied, report.far_future), (ahead.len(), 0));
    let edit = |s: &mut Store, phone: &str| {
        s.edit_resident(
            w.residents[0],
            ResidentEdit {
                phone: Some(Some(phone.into())),
                note: None,
            },
        )
        .unwrap();
        s.all_ops_since(&VersionVector::default())
            .unwrap()
            .into_iter()
            .rfind(|o| o.replica == s.replica_id())
            .unwrap()
    };
    let mine = edit(&mut w.stores[0], "0912000001");
    assert!(
        (mine.hlc.physical_ms() as i64) < T0 + 60_000,
        "the edit follows the fact's stamp"
    );
    // The phone a day ahead now edits: that change's stamp is followed, up to the bound.
    let theirs = edit(&mut w.stores[1], "0912000002");
    let report = w.stores[0].apply_ops(&[theirs]).unwrap();
    assert_eq!(report.far_future, 1);
    let next = edit(&mut w.stores[0], "0912000003");
    let followed = next.hlc.physical_ms() as i64 - T0;
    assert!(
        followed > 0 && followed <= 3_600_000 + 1,
        "followed {followed} ms ahead"
    );
}
