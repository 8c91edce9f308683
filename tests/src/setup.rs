//! Preparing a server database before the server starts, through the server library's
//! `Backend` (the same calls the `doorstep` console commands make).

use crate::harness::{OfficerSpec, World};
use doorstep_core::{Op, Role};
use doorstep_server::backend::{Backend, CLI_ACTOR};

/// Import the units, add and assign the officers, import the seed operations (campaign,
/// households, residents) and issue [`crate::harness::CODES_PER_OFFICER`] enrolment codes per
/// officer. Fills `world.officers` and `world.officer_villages`; returns the codes.
pub fn prepare(
    backend: &Backend,
    units_csv: &str,
    officers: &[OfficerSpec],
    seed: &[Op],
    world: &mut World,
) -> Vec<Vec<String>> {
    let now = crate::harness::wall_ms();
    let (_admin, admin_token) = backend
        .bootstrap_admin("Quản trị thử nghiệm", now)
        .expect("bootstrap admin")
        .expect("a fresh database has no admin");
    world.admin_token = admin_token;
    let (rows, rejected) = backend
        .import_units(CLI_ACTOR, units_csv.as_bytes(), now)
        .expect("import units");
    assert_eq!(rejected, 0, "units rejected");
    assert!(rows >= 70, "units imported: {rows}");
    let imported = backend
        .import_ops(CLI_ACTOR, seed, now)
        .expect("import the campaign, households and residents");
    assert_eq!(imported as usize, seed.len());
    let mut codes = Vec::new();
    for o in officers {
        let id = backend
            .add_officer(CLI_ACTOR, &o.name, Role::Field, &o.commune, now)
            .expect("add officer");
        for v in &o.villages {
            backend
                .assign_village(CLI_ACTOR, id, v, now)
                .expect("assign village");
        }
        world.officers.push(id);
        world.officer_villages.push(o.villages.clone());
        codes.push(
            (0..crate::harness::CODES_PER_OFFICER)
                .map(|_| {
                    backend
                        .issue_enrol_code(CLI_ACTOR, id, 60, now)
                        .expect("enrol code")
                        .code
                })
                .collect(),
        );
    }
    codes
}
