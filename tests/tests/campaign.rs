//! The 81-day campaign, scaled down (2 districts, 4 communes, 400 residents, 8 devices): every
//! number the server's database, the dashboard's report API and its CSV reports give must equal the
//! simulator's ground truth (`docs/simulation.md`).

use doorstep_sim::campaign::{self, ReportDays, SimConfig};
use doorstep_tests::harness::server_bin;

#[test]
fn a_scaled_down_campaign_matches_the_ground_truth() {
    let mut cfg = SimConfig::small(20230627, (server_bin(), vec!["serve".to_owned()]));
    cfg.world.villages_per_officer = 1; // two officers per commune, one village shared
    cfg.report_days = ReportDays::Every(8);
    let outcome = campaign::run(&cfg, &mut |line| eprintln!("{line}")).expect("the campaign ran");
    eprintln!("{outcome:?}");
    assert!(
        outcome.mismatches.is_empty(),
        "{} mismatches, the first ones:\n{}",
        outcome.mismatches.len(),
        outcome.mismatches[..outcome.mismatches.len().min(40)].join("\n")
    );
    // The campaign exercised what it claims to.
    assert_eq!(outcome.days, 81);
    assert!(outcome.devices >= 8, "{} devices", outcome.devices);
    assert!(outcome.facts > 2000, "{} facts", outcome.facts);
    assert!(
        outcome.retractions > 20,
        "{} retractions",
        outcome.retractions
    );
    assert!(outcome.duplicate_activations > 0, "no duplicate activation");
    assert!(
        outcome.faults_injected > 50,
        "{} faults",
        outcome.faults_injected
    );
    assert!(outcome.syncs_failed > 0, "no sync ever failed");
    assert!(outcome.activated_during_campaign > 100);
    assert!(outcome.compared_db > 10_000, "{}", outcome.compared_db);
    assert_eq!(outcome.compared_api, outcome.compared_db);
    assert!(outcome.compared_csv > 1000, "{}", outcome.compared_csv);
}
