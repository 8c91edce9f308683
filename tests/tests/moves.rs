//! Scope that shrinks, one household at a time (#13): a household moved to a village outside a
//! phone's scope, or a resident moved to a household of such a village, is erased from the
//! phone at its next sync with everything about it; a phone holding both villages applies the
//! move; what the phone recorded about it before it heard of the move still reaches the
//! server.

use doorstep_core::{HouseholdInput, ResidentInput, RosterStatus};
use doorstep_tests::harness::{wall_ms, Device, OfficerSpec, Server, COMMUNE_A};
use doorstep_tests::{actions, scope};
use rand::rngs::StdRng;
use rand::SeedableRng;
use uuid::Uuid;

const V1: &str = "22738-01";
const V2: &str = "22738-02";

/// Officer 0 has village 1 only; officer 1 has both.
fn officers() -> Vec<OfficerSpec> {
    vec![
        OfficerSpec {
            name: "Trần Văn Bình".into(),
            commune: COMMUNE_A.into(),
            villages: vec![V1.into()],
        },
        OfficerSpec {
            name: "Lê Thị Hoa".into(),
            commune: COMMUNE_A.into(),
            villages: vec![V1.into(), V2.into()],
        },
    ]
}

/// Move household `h` to village `to`, from a phone holding both villages.
fn move_household(p: &mut Device, h: Uuid, to: &str) {
    let (code, address, head): (String, Option<String>, Option<String>) = p
        .store
        .connection()
        .query_row(
            "SELECT code, address, head_id FROM households WHERE id = ?1",
            [h.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let changed = p
        .store
        .put_household(HouseholdInput {
            id: h,
            code,
            village_code: to.into(),
            address,
            head_id: head.map(|s| Uuid::parse_str(&s).unwrap()),
        })
        .unwrap();
    assert_eq!(changed, 1, "only the village changes");
}

/// Move resident `r` to household `to`, from a phone holding both households' villages.
fn move_resident(p: &mut Device, r: Uuid, to: Uuid) {
    type Row = (String, String, Option<String>, Option<String>);
    let (full_name, birth_date, gender, relation): Row = p
        .store
        .connection()
        .query_row(
            "SELECT full_name, birth_date, gender, relation FROM residents WHERE id = ?1",
            [r.to_string()],
            |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?)),
        )
        .unwrap();
    let changed = p
        .store
        .put_resident(ResidentInput {
            id: r,
            household_id: to,
            full_name,
            birth_date,
            gender,
            id_number: None,
            phone: None,
            relation,
            account: RosterStatus::None,
            agency: None,
        })
        .unwrap();
    assert!(changed >= 1);
}

/// Set a phone's clock `ms` past the real time (the test's phones' clocks stand still): what
/// it stamps next comes after what the other phones stamped so far.
fn later(p: &Device, ms: i64) {
    p.clock
        .set((wall_ms() - p.store.clock_offset_ms() + ms) as u64);
}

fn count(p: &Device, sql: &str, id: Uuid) -> i64 {
    p.store
        .connection()
        .query_row(sql, [id.to_string()], |r| r.get(0))
        .unwrap()
}

/// Rows anywhere in the phone's tables about household `h` (and its residents `rs`).
fn traces_of_household(p: &Device, h: Uuid, rs: &[Uuid]) -> i64 {
    let mut n = count(p, "SELECT count(*) FROM households WHERE id = ?1", h)
        + count(
            p,
            "SELECT count(*) FROM residents WHERE household_id = ?1",
            h,
        )
        + count(p, "SELECT count(*) FROM visits WHERE household_id = ?1", h);
    for r in rs {
        n += traces_of_resident(p, *r);
    }
    n
}

/// Rows anywhere in the phone's tables about resident `r`.
fn traces_of_resident(p: &Device, r: Uuid) -> i64 {
    count(p, "SELECT count(*) FROM residents WHERE id = ?1", r)
        + count(p, "SELECT count(*) FROM assists WHERE resident_id = ?1", r)
        + count(
            p,
            "SELECT count(*) FROM account_state WHERE resident_id = ?1",
            r,
        )
        + count(
            p,
            "SELECT count(*) FROM retractions WHERE fact_id IN
                 (SELECT id FROM assists WHERE resident_id = ?1)",
            r,
        )
}

/// The name a phone holds for resident `r`.
fn name_of(p: &Device, r: Uuid) -> String {
    p.store
        .connection()
        .query_row(
            "SELECT full_name FROM residents WHERE id = ?1",
            [r.to_string()],
            |x| x.get(0),
        )
        .unwrap()
}

/// Whether searching the phone for `name` finds resident `r`.
fn found(p: &Device, name: &str, r: Uuid) -> bool {
    p.store
        .search_residents(name, 50)
        .unwrap()
        .iter()
        .any(|hit| hit.id == r)
}

#[test]
fn a_household_moved_out_of_a_phones_villages_is_erased_from_it() {
    let mut server = Server::start(&officers(), 3, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    let mut c = server.enrol_device(1, "c", 0);
    for p in [&mut a, &mut b, &mut c] {
        p.sync(&url).unwrap();
    }
    let mut rng = StdRng::seed_from_u64(41);
    let h = server.world.households[V1][0];
    let rs = server.world.residents[&h].clone();
    // Another phone's work on the household reaches phone A.
    let b_visit = actions::visit(&mut b, h, &mut rng).unwrap();
    let b_assist = actions::assist(&mut b, rs[0], &mut rng).unwrap();
    b.sync(&url).unwrap();
    a.sync(&url).unwrap();
    assert!(scope::holds_fact(a.store.connection(), &b_visit));
    let name = name_of(&a, rs[1]);
    assert!(found(&a, &name, rs[1]));
    // A visits the household offline; meanwhile B moves it to village 2.
    let a_visit = actions::visit(&mut a, h, &mut rng).unwrap();
    let a_assist = actions::assist(&mut a, rs[1], &mut rng).unwrap();
    later(&b, 1_000);
    move_household(&mut b, h, V2);
    b.sync(&url).unwrap();
    // Work stamped after the move is not A's to send any more.
    later(&a, 5_000);
    let late = actions::visit(&mut a, h, &mut rng).unwrap();
    let r = a.sync(&url).unwrap();
    let reasons: Vec<&str> = r.rejected.iter().map(|x| x.reason.as_str()).collect();
    assert_eq!(reasons, ["out_of_scope"], "{r:?}");
    assert!(!scope::holds_fact(&server.reader(), &late));
    assert_eq!(r.forgotten, 1, "{r:?}");
    assert_eq!(traces_of_household(&a, h, &rs), 0, "{}", a.dump());
    assert!(
        !found(&a, &name, rs[1]),
        "a search still finds a moved resident"
    );
    // Nothing of B's about it stays in A's log (B did nothing else).
    assert_eq!(scope::replica_ops(a.store.connection(), &b.replica()).0, 0);
    assert!(!scope::holds_fact(a.store.connection(), &b_assist));
    // A's own work, recorded before it heard of the move, reached the server.
    let conn = server.reader();
    assert!(scope::holds_fact(&conn, &a_visit), "{:?}", r.rejected);
    assert!(scope::holds_fact(&conn, &a_assist), "{:?}", r.rejected);
    drop(conn);
    let others = server.world.households[V1].len() as i64 - 1;
    let left: i64 = a
        .store
        .connection()
        .query_row(
            "SELECT count(*) FROM households WHERE village_code = ?1",
            [V1],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(left, others, "the other households of village 1 stay");
    // A phone holding both villages just applies the move, and gets A's work.
    let rc = c.sync(&url).unwrap();
    assert_eq!(rc.forgotten, 0, "{rc:?}");
    let village: String = c
        .store
        .connection()
        .query_row(
            "SELECT village_code FROM households WHERE id = ?1",
            [h.to_string()],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(village, V2);
    assert!(found(&c, &name, rs[1]));
    assert!(scope::holds_fact(c.store.connection(), &a_visit));
    // A's next sync is quiet; a phone of village 1 enrolled after the move never sees it.
    let again = a.sync(&url).unwrap();
    assert_eq!((again.forgotten, again.pushed), (0, 0), "{again:?}");
    let mut d = server.enrol_device(0, "d", 0);
    let rd = d.sync(&url).unwrap();
    assert_eq!(rd.forgotten, 1, "{rd:?}");
    assert_eq!(traces_of_household(&d, h, &rs), 0, "{}", d.dump());
}

#[test]
fn a_resident_moved_to_another_villages_household_is_erased_from_a_phone() {
    let mut server = Server::start(&officers(), 3, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    let mut c = server.enrol_device(1, "c", 0);
    for p in [&mut a, &mut b, &mut c] {
        p.sync(&url).unwrap();
    }
    let mut rng = StdRng::seed_from_u64(43);
    let h1 = server.world.households[V1][0];
    let h2 = server.world.households[V2][0];
    let rs = server.world.residents[&h1].clone();
    let moved = rs[0];
    let name = name_of(&a, moved);
    let b_assist = actions::assist(&mut b, moved, &mut rng).unwrap();
    b.sync(&url).unwrap();
    a.sync(&url).unwrap();
    assert!(scope::holds_fact(a.store.connection(), &b_assist));
    // A helps the resident offline; meanwhile B moves them to a household of village 2.
    let a_assist = actions::assist(&mut a, moved, &mut rng).unwrap();
    later(&b, 1_000);
    move_resident(&mut b, moved, h2);
    b.sync(&url).unwrap();
    let r = a.sync(&url).unwrap();
    assert_eq!(r.forgotten, 1, "{r:?}");
    assert_eq!(traces_of_resident(&a, moved), 0, "{}", a.dump());
    assert!(!found(&a, &name, moved));
    assert!(!scope::holds_fact(a.store.connection(), &b_assist));
    // The household they left stays, with its other resident.
    assert_eq!(
        count(&a, "SELECT count(*) FROM households WHERE id = ?1", h1),
        1
    );
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM residents WHERE household_id = ?1",
            h1
        ),
        rs.len() as i64 - 1
    );
    assert!(scope::holds_fact(&server.reader(), &a_assist));
    // A phone holding both villages applies the move.
    let rc = c.sync(&url).unwrap();
    assert_eq!(rc.forgotten, 0, "{rc:?}");
    let household: String = c
        .store
        .connection()
        .query_row(
            "SELECT household_id FROM residents WHERE id = ?1",
            [moved.to_string()],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(household, h2.to_string());
    assert!(scope::holds_fact(c.store.connection(), &a_assist));
    let again = a.sync(&url).unwrap();
    assert_eq!((again.forgotten, again.pushed), (0, 0), "{again:?}");
}

#[test]
fn a_household_moved_out_and_back_between_two_syncs_stays() {
    let mut server = Server::start(&officers(), 3, 1);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    let h = server.world.households[V1][1];
    move_household(&mut b, h, V2);
    b.sync(&url).unwrap();
    move_household(&mut b, h, V1);
    b.sync(&url).unwrap();
    let r = a.sync(&url).unwrap();
    assert_eq!(r.forgotten, 0, "{r:?}");
    let village: String = a
        .store
        .connection()
        .query_row(
            "SELECT village_code FROM households WHERE id = ?1",
            [h.to_string()],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(village, V1);
}

/// Open the server's database beside the serving process (the console's way) and assign an
/// officer a village.
fn assign(server: &Server, officer: Uuid, village: &str) {
    let target = doorstep_core::AssignTarget::Village(village.to_owned());
    let now = wall_ms();
    match &server.database {
        None => {
            let b = doorstep_server::SqliteBackend::open(&server.db).unwrap();
            b.set_assignment("cli", officer, target, true, now).unwrap();
        }
        Some(url) => {
            let b = doorstep_server::PgBackend::open(url, Default::default()).unwrap();
            b.set_assignment("cli", officer, target, true, now).unwrap();
        }
    }
}

#[test]
fn a_village_newly_assigned_comes_without_the_households_that_moved_out_of_it() {
    const ELSEWHERE: &str = "22741-01";
    let officers = vec![
        OfficerSpec {
            name: "Trần Văn Bình".into(),
            commune: COMMUNE_A.into(),
            villages: vec![V2.into()],
        },
        OfficerSpec {
            name: "Lê Thị Hoa".into(),
            commune: COMMUNE_A.into(),
            villages: vec![V1.into(), ELSEWHERE.into()],
        },
    ];
    let mut server = Server::start(&officers, 3, 1);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    let h = server.world.households[V1][2];
    let rs = server.world.residents[&h].clone();
    move_household(&mut b, h, ELSEWHERE);
    b.sync(&url).unwrap();
    // A's cursor passes the move (not A's business yet).
    assert_eq!(a.sync(&url).unwrap().forgotten, 0);
    // Village 1 is given to A after the move: its history comes, but not that household.
    assign(&server, server.world.officers[0], V1);
    let r = a.sync(&url).unwrap();
    let held = |v: &str| -> i64 {
        a.store
            .connection()
            .query_row(
                "SELECT count(*) FROM households WHERE village_code = ?1",
                [v],
                |x| x.get(0),
            )
            .unwrap()
    };
    assert_eq!(
        held(V1),
        server.world.households[V1].len() as i64 - 1,
        "{r:?}"
    );
    assert_eq!(traces_of_household(&a, h, &rs), 0, "{}", a.dump());
}

/// [`officers`] and officer 2, who has village 2 only.
fn officers_with_village_2() -> Vec<OfficerSpec> {
    let mut o = officers();
    o.push(OfficerSpec {
        name: "Phạm Minh Tuấn".into(),
        commune: COMMUNE_A.into(),
        villages: vec![V2.into()],
    });
    o
}

/// Whether phone `p` holds household `h` in `village`, with its code.
fn holds_household_in(p: &Device, h: Uuid, village: &str) -> bool {
    count(
        p,
        &format!(
            "SELECT count(*) FROM households
             WHERE id = ?1 AND village_code = '{village}' AND code IS NOT NULL"
        ),
        h,
    ) == 1
}

fn retracted(p: &Device, fact: Uuid) -> bool {
    count(
        p,
        "SELECT count(*) FROM retractions WHERE fact_id = ?1",
        fact,
    ) == 1
}

#[test]
fn a_household_moved_into_a_phones_villages_comes_with_its_residents_and_history() {
    let mut server = Server::start(&officers_with_village_2(), 3, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    let mut e = server.enrol_device(2, "e", 0);
    for p in [&mut a, &mut b, &mut e] {
        p.sync(&url).unwrap();
    }
    let mut rng = StdRng::seed_from_u64(47);
    let h = server.world.households[V1][0];
    let rs = server.world.residents[&h].clone();
    let other = server.world.households[V1][1];
    let other_rs = server.world.residents[&other].clone();
    assert_eq!(traces_of_household(&e, h, &rs), 0);
    // Village 1's officer works on the household: a visit, two steps, one retracted, and a
    // visit to another household of village 1.
    let visit = actions::visit(&mut a, h, &mut rng).unwrap();
    let assist = actions::assist(&mut a, rs[0], &mut rng).unwrap();
    let mistake = actions::assist(&mut a, rs[1], &mut rng).unwrap();
    a.store.retract(mistake, Some("nhập nhầm")).unwrap();
    let elsewhere = actions::visit(&mut a, other, &mut rng).unwrap();
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    // The household moves to village 2.
    later(&b, 1_000);
    move_household(&mut b, h, V2);
    b.sync(&url).unwrap();
    // Village 2's phone gets it whole: the household, its residents, their history.
    let mut f = server.enrol_device(2, "f", 0);
    for p in [&mut e, &mut f] {
        p.sync(&url).unwrap();
        assert!(holds_household_in(p, h, V2), "{}", p.dump());
        for r in &rs {
            let name = name_of(&b, *r);
            assert_eq!(name_of(p, *r), name);
            assert!(found(p, &name, *r));
        }
        for fact in [visit, assist, mistake] {
            assert!(scope::holds_fact(p.store.connection(), &fact));
        }
        assert!(retracted(p, mistake));
        // Nothing else of village 1.
        assert_eq!(traces_of_household(p, other, &other_rs), 0, "{}", p.dump());
        assert!(!scope::holds_fact(p.store.connection(), &elsewhere));
        // Sent once: the next sync brings nothing.
        let again = p.sync(&url).unwrap();
        assert_eq!((again.pulled, again.pull_duplicates), (0, 0), "{again:?}");
    }
    // Village 2's phone works on it like any of its households.
    let later_visit = actions::visit(&mut e, h, &mut rng).unwrap();
    let r = e.sync(&url).unwrap();
    assert!(r.rejected.is_empty(), "{r:?}");
    assert!(scope::holds_fact(&server.reader(), &later_visit));
}

#[test]
fn a_resident_moved_into_a_phones_villages_comes_with_their_history_alone() {
    let mut server = Server::start(&officers_with_village_2(), 3, 2);
    let url = server.url();
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(1, "b", 0);
    let mut e = server.enrol_device(2, "e", 0);
    for p in [&mut a, &mut b, &mut e] {
        p.sync(&url).unwrap();
    }
    let mut rng = StdRng::seed_from_u64(53);
    let h1 = server.world.households[V1][0];
    let h2 = server.world.households[V2][0];
    let rs = server.world.residents[&h1].clone();
    let moved = rs[0];
    let assist = actions::assist(&mut a, moved, &mut rng).unwrap();
    let stays = actions::assist(&mut a, rs[1], &mut rng).unwrap();
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    later(&b, 1_000);
    move_resident(&mut b, moved, h2);
    b.sync(&url).unwrap();
    e.sync(&url).unwrap();
    let name = name_of(&b, moved);
    assert_eq!(name_of(&e, moved), name);
    assert!(found(&e, &name, moved));
    assert!(scope::holds_fact(e.store.connection(), &assist));
    // The household they left, and its other resident, stay out.
    assert_eq!(
        count(&e, "SELECT count(*) FROM households WHERE id = ?1", h1),
        0
    );
    assert_eq!(traces_of_resident(&e, rs[1]), 0, "{}", e.dump());
    assert!(!scope::holds_fact(e.store.connection(), &stays));
}
