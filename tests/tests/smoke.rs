//! The harness itself: a server starts, two devices enrol, work, sync and agree.

use doorstep_tests::harness::{OfficerSpec, Server, COMMUNE_A};
use doorstep_tests::{actions, scope};
use rand::SeedableRng;

#[test]
fn two_devices_sync_and_agree() {
    let officers = [OfficerSpec {
        name: "Trần Văn Bình".into(),
        commune: COMMUNE_A.into(),
        villages: vec!["22738-01".into()],
    }];
    let mut server = Server::start(&officers, 3, 2);
    let mut a = server.enrol_device(0, "a", 0);
    let mut b = server.enrol_device(0, "b", 0);
    let url = server.url();
    a.sync(&url).unwrap();
    b.sync(&url).unwrap();
    let households: i64 = a
        .store
        .connection()
        .query_row("SELECT count(*) FROM households", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        households, 3,
        "a device receives its village's households only"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    actions::random_work(&mut a, &server.world, &mut rng, 20);
    actions::random_work(&mut b, &server.world, &mut rng, 20);
    let ra = a.sync(&url).unwrap();
    assert!(ra.pushed > 0);
    b.sync(&url).unwrap();
    a.sync(&url).unwrap();
    scope::assert_converged(&server, &[&a, &b]);
}
