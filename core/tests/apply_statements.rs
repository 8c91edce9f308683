//! How `Store::apply_ops` uses SQLite, where it matters for speed (issue #15,
//! `docs/bench/apply.md`): each statement of a batch is prepared once for the batch, not once
//! per operation, and the shortcuts taken for speed leave the same tables as before.

mod common;

use common::*;
use doorstep_core::*;
use rusqlite::ffi;
use std::ffi::CStr;
use uuid::Uuid;

/// Every statement prepared on `store`'s connection: (SQL, times re-prepared, times run).
fn statements(store: &Store) -> Vec<(String, i32, i32)> {
    let mut out = Vec::new();
    // SAFETY: the connection's handle is valid while `store` lives; `sqlite3_next_stmt` walks
    // its prepared statements, none of which is finalised during the walk (nothing else runs).
    unsafe {
        let db = store.connection().handle();
        let mut stmt = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            let sql = CStr::from_ptr(ffi::sqlite3_sql(stmt))
                .to_string_lossy()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let reprepared = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
            let runs = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_RUN, 0);
            out.push((sql, reprepared, runs));
            stmt = ffi::sqlite3_next_stmt(db, stmt);
        }
    }
    out
}

/// A source replica with visits, assistance steps (the last steps of both chains, which
/// recount their households), retractions of visits and of steps, and phone edits, over all
/// three households.
fn source() -> (Store, World) {
    let (mut a, w, clock) = populated_store(None);
    let mut visits = Vec::new();
    let mut assists = Vec::new();
    for round in 0..4 {
        for (i, h) in w.households.iter().enumerate() {
            clock.advance(60_000);
            visits.push(
                a.record_visit(NewVisit {
                    household_id: *h,
                    officer_id: w.officer,
                    at_ms: None,
                    outcome: VisitOutcome::Met,
                    revisit_at_ms: None,
                    note: Some(format!("lần {round}, hộ {i}")),
                    location: None,
                })
                .unwrap(),
            );
        }
        for (i, r) in w.residents.iter().enumerate() {
            clock.advance(60_000);
            let step = if (round + i) % 2 == 0 {
                AssistStep::Level2Activated
            } else {
                AssistStep::PortalGuided
            };
            assists.push(
                a.record_assist(NewAssist {
                    resident_id: *r,
                    officer_id: w.officer,
                    at_ms: None,
                    step,
                    failure: None,
                    receiving_point: None,
                    note: None,
                })
                .unwrap(),
            );
            a.edit_resident(
                *r,
                ResidentEdit {
                    phone: Some(Some(format!("09{round}{i}123456"))),
                    note: None,
                },
            )
            .unwrap();
        }
    }
    for id in visits.iter().step_by(4).chain(assists.iter().step_by(5)) {
        clock.advance(60_000);
        a.retract(*id, Some("ghi nhầm")).unwrap();
    }
    (a, w)
}

/// SQLite re-prepares a statement whose plan it marked as depending on a bound value each
/// time that value's binding is cleared, and rusqlite clears the bindings of every statement
/// it takes back into its cache. Before statements were kept for the whole batch, the recount
/// of a household's residents and the search for its latest visit were re-prepared at every
/// call — several times per batch here.
#[test]
fn each_statement_is_prepared_at_most_once_per_batch() {
    let (a, _) = source();
    let ops = a.all_ops_since(&VersionVector::default()).unwrap();
    let mut b = Store::open_in_memory(options(&clock())).unwrap();
    let batches = ops.chunks(40).count() as i32;
    for chunk in ops.chunks(40) {
        b.apply_ops(chunk).unwrap();
    }
    let stmts = statements(&b);
    let recount = stmts
        .iter()
        .find(|(sql, _, _)| sql.starts_with("INSERT INTO households (id, needing)"))
        .expect("the households' recount ran");
    assert!(
        recount.2 > batches,
        "the recount runs several times per batch: {recount:?}, {batches} batches"
    );
    for (sql, reprepared, runs) in &stmts {
        assert!(
            *reprepared <= batches,
            "re-prepared {reprepared} times in {batches} batches ({runs} runs): {sql}"
        );
    }
}

/// Applying in batches of any size — one operation per batch, a few, all at once, in reverse
/// order — leaves the same tables (the derived counts and latest visits included) as the
/// store that made the operations.
#[test]
fn batches_of_any_size_leave_the_same_tables() {
    let (a, _) = source();
    let ops = a.all_ops_since(&VersionVector::default()).unwrap();
    let want = a.canonical_dump().unwrap();
    let derived = |s: &Store| -> Vec<(String, i64, Option<String>)> {
        s.connection()
            .prepare("SELECT id, needing, last_visit_id FROM households ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let accounts = |s: &Store| -> Vec<(String, i64, i64, i64)> {
        s.connection()
            .prepare("SELECT resident_id, level1, level2, portal FROM account_state ORDER BY 1")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let mut reversed = ops.clone();
    reversed.reverse();
    for (name, ops, batch) in [
        ("one by one", &ops, 1),
        ("by seven", &ops, 7),
        ("at once", &ops, ops.len()),
        ("reversed, by five", &reversed, 5),
    ] {
        let mut b = Store::open_in_memory(options(&clock())).unwrap();
        for chunk in ops.chunks(batch) {
            b.apply_ops(chunk).unwrap();
        }
        assert_eq!(b.canonical_dump().unwrap(), want, "{name}");
        assert_eq!(derived(&b), derived(&a), "{name}");
        assert_eq!(accounts(&b), accounts(&a), "{name}");
    }
}

/// A visit whose retraction arrived first is born retracted and never becomes its household's
/// latest visit; a second operation carrying the same visit id (a faulty replica) changes
/// nothing.
#[test]
fn a_visit_retracted_before_it_arrives_and_a_repeated_visit_id() {
    let (mut a, w, _clock) = populated_store(None);
    let base = a.all_ops_since(&VersionVector::default()).unwrap();
    let visit = a
        .record_visit(NewVisit {
            household_id: w.households[0],
            officer_id: w.officer,
            at_ms: None,
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: None,
            location: None,
        })
        .unwrap();
    a.retract(visit, None).unwrap();
    let known = {
        let mut vv = VersionVector::default();
        vv.0.insert(base[0].replica, base.len() as u64);
        vv
    };
    let new = a.all_ops_since(&known).unwrap();
    assert_eq!(new.len(), 2, "the visit and its retraction");

    let mut b = Store::open_in_memory(options(&clock())).unwrap();
    b.apply_ops(&base).unwrap();
    b.apply_ops(&new[1..]).unwrap(); // the retraction first
    b.apply_ops(&new[..1]).unwrap();
    let (retracted, last): (i64, Option<String>) = b
        .connection()
        .query_row(
            "SELECT v.retracted, h.last_visit_id FROM visits v JOIN households h
              ON h.id = v.household_id WHERE v.id = ?1",
            [visit.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((retracted, last), (1, None));

    // The same visit id under another dot, later and not retracted: not inserted again, so
    // the household's latest visit does not move to it.
    let mut again = new[0].clone();
    again.replica = ReplicaId(Uuid::from_u128(0xBAD));
    again.counter = 1;
    if let OpBody::Visit(v) = &mut again.body {
        v.at_ms += 60_000;
    }
    let report = b.apply_ops(&[again]).unwrap();
    assert_eq!(report.applied, 1, "a new dot");
    let (n, last): (i64, Option<String>) = b
        .connection()
        .query_row(
            "SELECT (SELECT count(*) FROM visits), last_visit_id FROM households WHERE id = ?1",
            [w.households[0].to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, last), (1, None));
}
