//! `Store::apply_checked_group` (the sync server's group commit, issue #15): several batches in
//! one transaction, each in its own savepoint, leave exactly what applying them one at a time
//! with `Store::apply_checked` leaves — the same reports, the same refusals, the same tables —
//! and a batch that fails is rolled back alone.

mod common;

use common::*;
use doorstep_core::store::Verdict;
use doorstep_core::*;
use rusqlite::Connection;

/// A source replica's operations: the populated world, then visits, phone edits and
/// retractions.
fn source_ops() -> Vec<Op> {
    let (mut a, w, clock) = populated_store(None);
    let mut visits = Vec::new();
    for round in 0..3 {
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
    for id in visits.iter().step_by(3) {
        clock.advance(60_000);
        a.retract(*id, Some("ghi nhầm")).unwrap();
    }
    a.all_ops_since(&VersionVector::default()).unwrap()
}

/// A target store with a side table the batches' `finish` writes to.
fn target() -> Store {
    let s = Store::open_in_memory(options(&clock())).unwrap();
    s.connection()
        .execute_batch("CREATE TABLE side (batch INTEGER, applied INTEGER)")
        .unwrap();
    s
}

/// The check: refuse every seventh counter (deterministic, so both ways refuse the same).
fn check(_: &Connection, op: &Op) -> Result<Verdict> {
    Ok(if op.counter % 7 == 3 {
        Verdict::Reject
    } else {
        Verdict::Accept
    })
}

/// Batch `i`'s finish: a row in `side`, then an error for the batches meant to fail.
fn finish(i: usize, failing: &[usize], conn: &Connection, applied: &[&Op]) -> Result<()> {
    conn.execute(
        "INSERT INTO side (batch, applied) VALUES (?1, ?2)",
        [i as i64, applied.len() as i64],
    )?;
    if failing.contains(&i) {
        return Err(Error::Decode(format!("batch {i} fails")));
    }
    Ok(())
}

fn side(s: &Store) -> Vec<(i64, i64)> {
    let mut stmt = s
        .connection()
        .prepare("SELECT batch, applied FROM side ORDER BY rowid")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<(i64, i64)>>>()
        .unwrap();
    rows
}

/// Each result as comparable text.
fn outcome(r: &Result<ApplyReport>) -> String {
    match r {
        Ok(r) => format!("{r:?}"),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn a_group_is_the_batches_one_at_a_time_and_a_failed_batch_rolls_back_alone() {
    let ops = source_ops();
    assert!(ops.len() > 40, "{} operations", ops.len());
    // Chunks, one of them twice (all duplicates the second time), one failing in its finish
    // (its operations come again in a later batch and are applied there), one ill-shaped.
    let chunks: Vec<&[Op]> = ops.chunks(5).collect();
    let mut bad = chunks[1].to_vec();
    bad[0].counter = 0; // no operation has counter 0: the whole batch is refused
    let mut batches: Vec<Vec<Op>> = vec![
        chunks[0].to_vec(),
        chunks[1].to_vec(),
        chunks[1].to_vec(),
        chunks[2].to_vec(),
        bad,
    ];
    batches.extend(chunks[3..].iter().map(|c| c.to_vec()));
    batches.push(chunks[2].to_vec());
    let failing = [3usize, 7];

    // One at a time.
    let mut one = target();
    let mut expected = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let r = one
            .apply_checked(b, check, |c, a| finish(i, &failing, c, a))
            .map(|(r, ())| r);
        expected.push(outcome(&r));
    }

    // As one group.
    let mut group = target();
    let mut checks: Vec<_> = batches.iter().map(|_| check).collect();
    let mut finishes: Vec<_> = (0..batches.len())
        .map(|i| move |c: &Connection, a: &[&Op]| finish(i, &failing, c, a))
        .collect();
    let mut items: Vec<CheckedBatch<'_>> = batches
        .iter()
        .zip(checks.iter_mut())
        .zip(finishes.iter_mut())
        .map(|((ops, check), finish)| CheckedBatch { ops, check, finish })
        .collect();
    let got: Vec<String> = group
        .apply_checked_group(&mut items)
        .unwrap()
        .iter()
        .map(outcome)
        .collect();

    assert_eq!(got, expected);
    assert!(expected[3].starts_with("error:") && expected[4].starts_with("error:"));
    assert!(expected[2].contains("applied: 0"), "{}", expected[2]);
    let last = expected.last().unwrap();
    assert!(
        last.starts_with("ApplyReport { applied: ") && !last.contains("applied: 0,"),
        "{last}"
    );
    assert_eq!(side(&group), side(&one));
    assert!(!side(&one)
        .iter()
        .any(|(b, _)| failing.contains(&(*b as usize))));
    assert_eq!(
        group.canonical_dump().unwrap(),
        one.canonical_dump().unwrap()
    );
    assert_eq!(
        group.version_vector().unwrap(),
        one.version_vector().unwrap()
    );
    // The group committed: a second handle would see it; and the store writes on.
    assert!(group.connection().is_autocommit());
    group.apply_ops(&ops).unwrap();
    one.apply_ops(&ops).unwrap();
    assert_eq!(
        group.canonical_dump().unwrap(),
        one.canonical_dump().unwrap()
    );
}

#[test]
fn an_empty_group_commits_nothing_and_fails_nothing() {
    let mut s = target();
    assert!(s.apply_checked_group(&mut []).unwrap().is_empty());
    assert!(s.connection().is_autocommit());
}
