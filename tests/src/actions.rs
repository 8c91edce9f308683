//! Random offline work of a field officer on their device, over the core's write API:
//! visits, assistance steps (some failed), retractions, phone and address edits.
//!
//! Only households and residents of the device's own villages are touched (pushing outside
//! scope is the security tests' business). Errors a real user could hit are ignored; every
//! fact recorded is remembered in [`Device::facts`] so that the tests can check none is lost.

use crate::harness::{Device, World};
use doorstep_core::{
    AssistStep, FailureReason, HouseholdEdit, Location, NewAssist, NewVisit, ResidentEdit,
    VisitOutcome,
};
use rand::seq::SliceRandom;
use rand::Rng;
use uuid::Uuid;

/// Do `n` random things on `device`, advancing its clock a little between them.
pub fn random_work(device: &mut Device, world: &World, rng: &mut impl Rng, n: usize) {
    let households = world.households_in(&device.villages);
    let residents = world.residents_in(&device.villages);
    for _ in 0..n {
        device.clock.advance(rng.gen_range(1..5_000));
        match rng.gen_range(0..10) {
            0..=2 => {
                visit(device, *households.choose(rng).unwrap(), rng);
            }
            3..=5 => {
                assist(device, *residents.choose(rng).unwrap(), rng);
            }
            6 => retract_something(device, rng),
            7 | 8 => phone(device, *residents.choose(rng).unwrap(), rng),
            _ => address(device, *households.choose(rng).unwrap(), rng),
        }
    }
}

/// Record a visit; returns its id if it was recorded.
pub fn visit(device: &mut Device, household: Uuid, rng: &mut impl Rng) -> Option<Uuid> {
    let outcome = *VisitOutcome::ALL.choose(rng).unwrap();
    let now = device.store.now_ms();
    let r = device.store.record_visit(NewVisit {
        household_id: household,
        officer_id: device.officer,
        at_ms: None,
        outcome,
        revisit_at_ms: (outcome == VisitOutcome::ComeBack).then_some(now + 86_400_000),
        note: rng
            .gen_bool(0.3)
            .then(|| "Hẹn quay lại buổi chiều".to_owned()),
        location: Some(Location {
            lat_e6: 11_560_000 + rng.gen_range(0..10_000),
            lon_e6: 108_980_000 + rng.gen_range(0..10_000),
        }),
    });
    let id = r.ok()?;
    device.facts.insert(id);
    Some(id)
}

/// Record an assistance step (a third of them failed); returns its id if recorded.
pub fn assist(device: &mut Device, resident: Uuid, rng: &mut impl Rng) -> Option<Uuid> {
    let step = *AssistStep::ALL.choose(rng).unwrap();
    let failure = rng
        .gen_bool(0.33)
        .then(|| *FailureReason::ALL.choose(rng).unwrap());
    let r = device.store.record_assist(NewAssist {
        resident_id: resident,
        officer_id: device.officer,
        at_ms: None,
        step,
        failure,
        receiving_point: Some("Công an phường Đô Vinh".into()),
        note: None,
    });
    let id = r.ok()?;
    device.facts.insert(id);
    Some(id)
}

/// Retract a random fact credited to the device's officer (recorded on this phone or on
/// another of the officer's): a field officer may retract only their own (the server refuses
/// the others as `forbidden`).
pub fn retract_something(device: &mut Device, rng: &mut impl Rng) {
    let ids: Vec<String> = device
        .store
        .connection()
        .prepare(
            "SELECT id FROM visits WHERE officer_id = ?1
             UNION ALL SELECT id FROM assists WHERE officer_id = ?1 ORDER BY 1",
        )
        .unwrap()
        .query_map([device.officer.to_string()], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    if let Some(id) = ids.choose(rng) {
        let id = Uuid::parse_str(id).unwrap();
        if device.store.retract(id, Some("nhập nhầm")).is_ok() {
            device.retracted.insert(id);
        }
    }
}

/// Set or clear a resident's phone.
pub fn phone(device: &mut Device, resident: Uuid, rng: &mut impl Rng) {
    let p = (!rng.gen_bool(0.2)).then(|| format!("09{:08}", rng.gen_range(0..100_000_000u32)));
    let _ = device.store.edit_resident(
        resident,
        ResidentEdit {
            phone: Some(p),
            note: None,
        },
    );
}

/// Change a household's address.
pub fn address(device: &mut Device, household: Uuid, rng: &mut impl Rng) {
    let _ = device.store.edit_household(
        household,
        HouseholdEdit {
            address: Some(Some(format!(
                "Số {}, đường Thống Nhất",
                rng.gen_range(1..300)
            ))),
            note: None,
        },
    );
}
