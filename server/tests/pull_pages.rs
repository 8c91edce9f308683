//! The pull algorithm's pages (server/src/cursor.rs `pull_page` over each backend's feed),
//! on SQLite and on PostgreSQL: a device fed from many areas interleaved with other
//! communes' rows, reference data and its own operations, pulled in small pages, gets exactly
//! what the whole feed holds for it, once each, and the same with any page size.

mod common;

use common::{on_both_backends, open_db};
use doorstep_core::{
    Hlc, HouseholdInput, Op, OpBody, Options, ReplicaId, Role, Store, UnitInput, UnitLevel,
    VersionVector, Visit, VisitOutcome,
};
use doorstep_server::backend::{Backend, DeviceAuth, Enrolment, CLI_ACTOR};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

fn now_ms() -> i64 {
    doorstep_server::now_ms()
}

fn device(b: &Backend, officer: Uuid) -> DeviceAuth {
    let code = b
        .issue_enrol_code(CLI_ACTOR, officer, 60, now_ms())
        .unwrap()
        .code;
    let e = b
        .enrol(
            Enrolment {
                code,
                device_name: "máy".into(),
                replica: Uuid::new_v4(),
                device_time_ms: now_ms(),
                public_key: None,
            },
            now_ms(),
        )
        .unwrap();
    b.authenticate_device(&e.token).unwrap().unwrap()
}

/// Everything `d` gets pulling with pages of `limit`, in order, checking the pages' flags.
fn pull_all(b: &Backend, d: &DeviceAuth, limit: u32) -> Vec<(ReplicaId, u64)> {
    let mut cursor: Option<String> = None;
    let mut got = Vec::new();
    for _ in 0..10_000 {
        let page = b
            .pull(d, cursor.as_deref(), limit, now_ms(), now_ms())
            .unwrap();
        assert!(page.ops.len() <= limit as usize);
        if page.has_more {
            assert_eq!(page.ops.len(), limit as usize, "a short page said has_more");
        }
        got.extend(page.ops.iter().map(|o| (o.replica, o.counter)));
        cursor = Some(page.cursor);
        if !page.has_more {
            return got;
        }
    }
    panic!("pulling never ended");
}

fn pages_case() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let b = db.dyn_backend();
    let mut rng = StdRng::seed_from_u64(7);
    // Two communes of six villages, a household in each village.
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    let mut units = vec![
        ("58".to_string(), None, UnitLevel::Province),
        ("586".into(), Some("58".to_string()), UnitLevel::District),
    ];
    for c in ["22813", "22814"] {
        units.push((c.into(), Some("586".into()), UnitLevel::Commune));
        for v in 1..=6 {
            units.push((format!("{c}-{v:02}"), Some(c.into()), UnitLevel::Village));
        }
    }
    let mut households: HashMap<String, Uuid> = HashMap::new();
    for (code, parent, level) in &units {
        s.put_unit(UnitInput {
            code: code.clone(),
            parent_code: parent.clone(),
            level: *level,
            kind: "thôn".into(),
            name: format!("Đơn vị {code}"),
        })
        .unwrap();
        if *level == UnitLevel::Village {
            let id = Uuid::now_v7();
            s.put_household(HouseholdInput {
                id,
                code: format!("H-{code}"),
                village_code: code.clone(),
                address: None,
                head_id: None,
            })
            .unwrap();
            households.insert(code.clone(), id);
        }
    }
    b.import_ops(
        CLI_ACTOR,
        &s.all_ops_since(&VersionVector::default()).unwrap(),
        now_ms(),
    )
    .unwrap();
    let mine = b
        .add_officer(CLI_ACTOR, "Trưởng", Role::CommuneLead, "22813", now_ms())
        .unwrap();
    let theirs = b
        .add_officer(CLI_ACTOR, "Khác", Role::CommuneLead, "22814", now_ms())
        .unwrap();
    for v in 1..=6 {
        b.assign_village(CLI_ACTOR, mine, &format!("22813-{v:02}"), now_ms())
            .unwrap();
        b.assign_village(CLI_ACTOR, theirs, &format!("22814-{v:02}"), now_ms())
            .unwrap();
    }
    let puller = device(b.as_ref(), mine);
    let colleague = device(b.as_ref(), mine);
    let other = device(b.as_ref(), theirs);
    // Interleaved pushes: my colleague's, the other commune's and the puller's own, in
    // batches of random sizes to random villages.
    let mut counters: HashMap<Uuid, u64> = HashMap::new();
    let mut expected: BTreeSet<(ReplicaId, u64)> = BTreeSet::new();
    let mut foreign: BTreeSet<(ReplicaId, u64)> = BTreeSet::new();
    for round in 0..40 {
        let (d, officer, commune) = match round % 3 {
            0 => (&colleague, mine, "22813"),
            1 => (&other, theirs, "22814"),
            _ => (&puller, mine, "22813"),
        };
        let n = rng.gen_range(1..25);
        let ops: Vec<Op> = (0..n)
            .map(|_| {
                let c = counters.entry(d.replica).or_default();
                *c += 1;
                let village = format!("{commune}-{:02}", rng.gen_range(1..=6));
                Op {
                    replica: ReplicaId(d.replica),
                    counter: *c,
                    hlc: Hlc::new(now_ms() as u64, 0),
                    body: OpBody::Visit(Visit {
                        id: Uuid::now_v7(),
                        household_id: households[&village],
                        officer_id: officer,
                        at_ms: now_ms(),
                        outcome: VisitOutcome::Met,
                        revisit_at_ms: None,
                        note: None,
                        location: None,
                    }),
                }
            })
            .collect();
        for op in &ops {
            let dot = (op.replica, op.counter);
            match round % 3 {
                0 => expected.insert(dot),
                1 => foreign.insert(dot),
                _ => false,
            };
        }
        let r = b.push(d, ops, now_ms(), now_ms()).unwrap();
        assert_eq!(r.applied as usize, n);
    }
    let whole = pull_all(b.as_ref(), &puller, 1000);
    let whole_set: BTreeSet<_> = whole.iter().cloned().collect();
    assert_eq!(whole.len(), whole_set.len(), "an operation sent twice");
    assert!(
        expected.is_subset(&whole_set),
        "a colleague's visit missing"
    );
    assert!(
        whole_set.is_disjoint(&foreign),
        "another commune's visit sent"
    );
    assert!(
        !whole_set.iter().any(|(r, _)| r.0 == puller.replica),
        "the device's own operations sent back"
    );
    // Any page size gives the same operations in the same order (pulling again from the
    // start: the server keeps nothing per device for pulls).
    for limit in [1, 2, 7, 13, 50] {
        let got = pull_all(b.as_ref(), &puller, limit);
        let first_difference = got.iter().zip(&whole).position(|(a, b)| a != b);
        assert!(
            got.len() == whole.len() && first_difference.is_none(),
            "pages of {limit}: {} operations instead of {}, first difference at {first_difference:?}",
            got.len(),
            whole.len()
        );
    }
    // A colleague's new device gets the puller's visits too.
    let fresh: BTreeSet<_> = pull_all(b.as_ref(), &device(b.as_ref(), mine), 7)
        .into_iter()
        .collect();
    assert!(whole_set.is_subset(&fresh));
    assert!(fresh.iter().any(|(r, _)| r.0 == puller.replica));
    // Up to date: a further pull is empty, and new rows come after.
    let fresh = device(b.as_ref(), mine);
    let mut cursor = None;
    loop {
        let p = b
            .pull(&fresh, cursor.as_deref(), 9, now_ms(), now_ms())
            .unwrap();
        cursor = Some(p.cursor);
        if !p.has_more {
            break;
        }
    }
    let p = b
        .pull(&fresh, cursor.as_deref(), 9, now_ms(), now_ms())
        .unwrap();
    assert!(p.ops.is_empty() && !p.has_more);
}

#[test]
fn small_pages_over_many_areas_send_everything_once() {
    on_both_backends(pages_case);
}
