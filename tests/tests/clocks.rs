//! Phones whose clocks are a year off enrol (the enrolment measures the offset), work, and
//! converge with a correct phone; an edit made after seeing another's edit wins.

use doorstep_core::{HouseholdEdit, ResidentEdit};
use doorstep_tests::harness::{wall_ms, OfficerSpec, Server, COMMUNE_A};
use doorstep_tests::{actions, scope};
use rand::SeedableRng;

const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;

fn phone_of(d: &doorstep_tests::harness::Device, resident: uuid::Uuid) -> Option<String> {
    d.store
        .connection()
        .query_row(
            "SELECT phone FROM residents WHERE id = ?1",
            [resident.to_string()],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn year_off_clocks_enrol_work_and_respect_causality() {
    let officers = [OfficerSpec {
        name: "Trần Văn Bình".into(),
        commune: COMMUNE_A.into(),
        villages: vec!["22738-01".into()],
    }];
    let mut server = Server::start(&officers, 3, 2);
    let url = server.url();
    let mut ahead = server.enrol_device(0, "ahead", YEAR_MS);
    let mut behind = server.enrol_device(0, "behind", -YEAR_MS);
    let mut right = server.enrol_device(0, "right", 0);
    // The enrolment measured each offset (server − device), to within a few seconds.
    for (d, expected) in [(&ahead, -YEAR_MS), (&behind, YEAR_MS), (&right, 0)] {
        let off = d.store.clock_offset_ms();
        assert!(
            (off - expected).abs() < 10_000,
            "{}: offset {off}, expected about {expected}",
            d.name
        );
        // Corrected time is the real time.
        assert!((d.store.now_ms() - wall_ms()).abs() < 10_000, "{}", d.name);
    }
    for d in [&mut ahead, &mut behind, &mut right] {
        d.sync(&url).unwrap();
    }
    // Everyone works (visits are stamped "now": with the correction, inside the campaign).
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for d in [&mut ahead, &mut behind, &mut right] {
        actions::random_work(d, &server.world, &mut rng, 30);
        assert!(!d.facts.is_empty(), "{}: nothing recorded", d.name);
    }
    let household = server.world.households["22738-01"][0];
    let resident = server.world.residents[&household][0];
    // Concurrent address edits from all three.
    for (i, d) in [&mut ahead, &mut behind, &mut right]
        .into_iter()
        .enumerate()
    {
        d.store
            .edit_household(
                household,
                HouseholdEdit {
                    address: Some(Some(format!("{} Trần Phú", i + 1))),
                    note: None,
                },
            )
            .unwrap();
    }
    for d in [&mut ahead, &mut behind, &mut right] {
        let r = d.sync(&url).unwrap();
        assert!(r.rejected.is_empty(), "{}: {:?}", d.name, r.rejected);
    }
    // A causal chain: right → ahead → behind, each editing after seeing the previous edit.
    right
        .store
        .edit_resident(
            resident,
            ResidentEdit {
                phone: Some(Some("0912000001".into())),
                note: None,
            },
        )
        .unwrap();
    right.sync(&url).unwrap();
    ahead.sync(&url).unwrap();
    assert_eq!(phone_of(&ahead, resident).as_deref(), Some("0912000001"));
    ahead
        .store
        .edit_resident(
            resident,
            ResidentEdit {
                phone: Some(Some("0912000002".into())),
                note: None,
            },
        )
        .unwrap();
    ahead.sync(&url).unwrap();
    behind.sync(&url).unwrap();
    assert_eq!(phone_of(&behind, resident).as_deref(), Some("0912000002"));
    behind
        .store
        .edit_resident(
            resident,
            ResidentEdit {
                phone: Some(Some("0912000003".into())),
                note: None,
            },
        )
        .unwrap();
    for _ in 0..2 {
        for d in [&mut behind, &mut ahead, &mut right] {
            let r = d.sync(&url).unwrap();
            assert!(r.rejected.is_empty(), "{}: {:?}", d.name, r.rejected);
        }
    }
    for d in [&ahead, &behind, &right] {
        assert_eq!(
            phone_of(d, resident).as_deref(),
            Some("0912000003"),
            "{}: the last edit in causal order wins",
            d.name
        );
    }
    scope::assert_converged(&server, &[&ahead, &behind, &right]);
    // The server recorded each device's offset.
    let offsets: Vec<(String, i64)> = server
        .reader()
        .prepare("SELECT name, clock_offset_ms FROM devices ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let find = |n: &str| offsets.iter().find(|(name, _)| name == n).unwrap().1;
    assert!((find("ahead") + YEAR_MS).abs() < 10 * 60_000, "{offsets:?}");
    assert!(
        (find("behind") - YEAR_MS).abs() < 10 * 60_000,
        "{offsets:?}"
    );
}

/// A phone whose clock jumps a year ahead after enrolment stamps its edits a year ahead:
/// the server refuses those last-writer-wins edits (`clock_ahead`) and keeps them in
/// quarantine, and still takes the phone's visits — whose stamps move no other replica's
/// clock, so another phone's honest edit after receiving them is accepted.
#[test]
fn a_clock_that_jumps_after_enrolment_is_quarantined() {
    let officers = [OfficerSpec {
        name: "Trần Văn Bình".into(),
        commune: COMMUNE_A.into(),
        villages: vec!["22738-01".into()],
    }];
    let mut server = Server::start(&officers, 2, 2);
    let url = server.url();
    let mut d = server.enrol_device(0, "jumpy", 0);
    let mut other = server.enrol_device(0, "other", 0);
    d.sync(&url).unwrap();
    other.sync(&url).unwrap();
    let household = server.world.households["22738-01"][0];
    let resident = server.world.residents[&household][0];
    // Within the campaign but stamped a day ahead of the server.
    d.clock.advance(24 * 3600 * 1000);
    d.store
        .edit_resident(
            resident,
            ResidentEdit {
                phone: Some(Some("0987654321".into())),
                note: None,
            },
        )
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let visit = actions::visit(&mut d, household, &mut rng).expect("visit");
    let r = d.sync(&url).unwrap();
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert_eq!(r.rejected[0].reason, "clock_ahead");
    let conn = server.reader();
    assert!(scope::holds_fact(&conn, &visit), "facts are applied");
    let phone: Option<String> = conn
        .query_row(
            "SELECT phone FROM residents WHERE id = ?1",
            [resident.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(phone, None, "the far-future edit is not applied");
    let quarantined: i64 = conn
        .query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))
        .unwrap();
    assert_eq!(quarantined, 1);
    other.sync(&url).unwrap();
    assert_eq!(phone_of(&other, resident), None, "nor forwarded");
    // The other phone received the visit stamped a day ahead; its own next edit is still
    // stamped by its clock, so the server takes it (one bad clock does not spread).
    assert!(scope::holds_fact(other.store.connection(), &visit));
    other
        .store
        .edit_resident(
            resident,
            ResidentEdit {
                phone: Some(Some("0912345678".into())),
                note: None,
            },
        )
        .unwrap();
    let r = other.sync(&url).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(phone_of(&other, resident).as_deref(), Some("0912345678"));
    let phone: Option<String> = server
        .reader()
        .query_row(
            "SELECT phone FROM residents WHERE id = ?1",
            [resident.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(phone.as_deref(), Some("0912345678"));
}
