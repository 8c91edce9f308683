//! A pull page that names households and residents moved out of the phone's scope
//! (`docs/sync-protocol.md`, "Scope that shrinks"): the store erases them with everything
//! about them, in the page's transaction; its own operations stay in the log until pushed.

mod common;

use common::{clock, options, populated_store};
use doorstep_core::lease::Dropped;
use doorstep_core::*;
use std::collections::BTreeSet;
use uuid::Uuid;

/// The households and residents (and facts) an operation is about, by id.
fn about(op: &Op) -> Vec<Uuid> {
    match &op.body {
        OpBody::Set {
            key: Key::Uuid(id), ..
        } => vec![*id],
        OpBody::Visit(v) => vec![v.household_id, v.id],
        OpBody::Assist(a) => vec![a.resident_id, a.id],
        OpBody::Retract { fact_id, .. } => vec![*fact_id],
        _ => Vec::new(),
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn households_and_residents_moved_out_are_erased_but_own_operations_stay() {
    let (mut station, w, _) = populated_store(None);
    let c = clock();
    let mut phone = Store::open_in_memory(options(&c)).unwrap();
    phone
        .apply_ops(&station.all_ops_since(&VersionVector::default()).unwrap())
        .unwrap();
    // Residents 0 and 3 live in household 0; resident 1 in household 1.
    let (h0, h1) = (w.households[0], w.households[1]);
    let visit = |s: &mut Store, h: Uuid| {
        s.record_visit(NewVisit {
            household_id: h,
            officer_id: w.officer,
            at_ms: None,
            outcome: VisitOutcome::NobodyHome,
            revisit_at_ms: None,
            note: None,
            location: None,
        })
        .unwrap()
    };
    let theirs = visit(&mut station, h0);
    let theirs_kept = visit(&mut station, h1);
    let own_before = phone.own_ops_after(0, 100).unwrap().len();
    phone
        .apply_ops(&station.own_ops_after(0, 10_000).unwrap())
        .unwrap();
    let mine = visit(&mut phone, h0);
    let mine_kept = visit(&mut phone, h1);
    assert_eq!(phone.own_ops_after(0, 100).unwrap().len(), own_before + 2);
    let (_, forgotten) = phone
        .apply_pull_page(
            &[],
            "server",
            "c1",
            &Dropped {
                villages: &[],
                households: &[h0],
                residents: &[w.residents[1]],
            },
        )
        .unwrap();
    assert_eq!(forgotten, 2, "one household, one resident on their own");
    let gone: BTreeSet<Uuid> = [h0, w.residents[0], w.residents[3], w.residents[1]]
        .into_iter()
        .chain([theirs, mine])
        .collect();
    for id in &gone {
        let id = id.to_string();
        for table in ["households", "residents", "visits", "assists"] {
            let n: i64 = phone
                .connection()
                .query_row(
                    &format!("SELECT count(*) FROM {table} WHERE id = ?1"),
                    [&id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 0, "{table} still holds a row erased");
        }
    }
    assert_eq!(
        count(
            &phone,
            "SELECT count(*) FROM account_state WHERE resident_id IN (SELECT value FROM
                 json_each('[\"00000000-0000-0000-0000-000000005001\",
                            \"00000000-0000-0000-0000-000000005002\",
                            \"00000000-0000-0000-0000-000000005004\"]'))"
        ),
        0
    );
    let hits = phone.search_residents("Nguyễn Văn An", 10).unwrap();
    assert!(hits.iter().all(|h| h.id != w.residents[0]), "{hits:?}");
    // Other replicas' operations about them are gone; the phone's own stay until pushed.
    let own = phone.replica_id();
    let mut own_left = 0;
    for op in phone.all_ops_since(&VersionVector::default()).unwrap() {
        let hit = about(&op).iter().any(|id| gone.contains(id));
        if op.replica == own {
            own_left += 1;
        } else {
            assert!(
                !hit,
                "another replica's operation about what was erased: {op:?}"
            );
        }
    }
    assert_eq!(own_left, own_before + 2);
    // What did not move stays: household 1 with its other resident, both visits to it.
    assert_eq!(
        count(&phone, "SELECT count(*) FROM households"),
        w.households.len() as i64 - 1
    );
    assert_eq!(
        count(&phone, "SELECT count(*) FROM residents"),
        w.residents.len() as i64 - 3
    );
    // The household a resident left counts who still needs help without them.
    let needing: i64 = phone
        .connection()
        .query_row(
            "SELECT needing FROM households WHERE id = ?1",
            [h1.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(needing, 1);
    for kept in [theirs_kept, mine_kept] {
        let n: i64 = phone
            .connection()
            .query_row(
                "SELECT count(*) FROM visits WHERE id = ?1",
                [kept.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    // The cursor was stored with it.
    assert_eq!(phone.cursor("server").unwrap().as_deref(), Some("c1"));
}
