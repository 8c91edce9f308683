//! Crash tests: a real child process writes to a store and is killed with SIGKILL at a random
//! point; the parent then opens the store and checks what the durability promise says
//! (`core/src/store.rs`): every write that returned is there, nothing is half-applied, and the
//! store carries on.
//!
//! The child is this test binary run again with `--exact child_process_entry` and
//! `DOORSTEP_CRASH_CHILD=<mode>`; without that variable `child_process_entry` does nothing.
//! The child reports on stdout, one line per event, flushed. `DOORSTEP_CRASH_SEED` fixes the
//! random choices of a run (the kill timing stays up to the scheduler).

mod common;

use common::World;
use doorstep_core::{
    AssistStep, Durability, FailureReason, NewAssist, NewVisit, Op, OpBody, Options, ReplicaId,
    ResidentEdit, Store, VersionVector, VisitOutcome,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OptionalExtension};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

const CHILD_ENV: &str = "DOORSTEP_CRASH_CHILD";
const DB_ENV: &str = "DOORSTEP_CRASH_DB";
const BATCH_ENV: &str = "DOORSTEP_CRASH_BATCH";
const SEED_ENV: &str = "DOORSTEP_CRASH_SEED";

/// The child's writes stop here if nobody kills it (the parent then fails).
const MAX_CHILD_WRITES: usize = 2_000;

fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(s) => s.parse().expect("DOORSTEP_CRASH_SEED is a number"),
        Err(_) => rand::thread_rng().gen(),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
}

/// Not a test of its own: the body of the child process. Passes trivially when run normally.
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = PathBuf::from(std::env::var(DB_ENV).expect("DOORSTEP_CRASH_DB"));
    match mode.as_str() {
        "writes" => child_writes(&db, seed()),
        "batch" => child_batch(
            &db,
            Path::new(&std::env::var(BATCH_ENV).expect("batch path")),
        ),
        other => panic!("unknown {CHILD_ENV} mode {other}"),
    }
}

/// Start the child in `mode` on `db`.
fn spawn(mode: &str, db: &Path, extra: &[(&str, String)]) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, mode)
    .env(DB_ENV, db)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn child");
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// SIGKILL (what `Child::kill` sends on Unix) and reap; the child's stderr, for messages.
/// A child that already ended is just reaped.
fn kill(child: &mut Child) -> String {
    let _ = child.kill();
    child.wait().expect("wait child");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}

/// The line's event, wherever it starts (libtest may print `test … ` before it).
fn event<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| line[i + marker.len()..].trim())
}

fn integrity_ok(path: &Path) {
    let conn = Connection::open(path).expect("open after crash");
    let result: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(result, ["ok"], "integrity_check after the crash");
}

fn options(clock: &std::sync::Arc<doorstep_core::ManualClock>) -> Options {
    Options {
        durability: Durability::Full,
        ..common::options(clock)
    }
}

// ---------------------------------------------------------------------------------------------
// a. Killed in the middle of local writes
// ---------------------------------------------------------------------------------------------

/// Record visits, assists, retractions and phone edits until killed, reporting each write after
/// it returned: `SAVED visit|assist <id>`, `RETRACTED <id>`, `EDITED <resident> <phone>`; and
/// `EDITING <resident> <phone>` before an edit (so the parent knows which value may be in
/// flight).
fn child_writes(db: &Path, seed: u64) {
    let clock = common::clock();
    let mut store = Store::open(db, options(&clock)).expect("child opens store");
    let w = World::ids();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut facts: Vec<Uuid> = Vec::new();
    for i in 0..MAX_CHILD_WRITES {
        clock.advance(rng.gen_range(1_000..60_000));
        let now = store.now_ms();
        match rng.gen_range(0..10) {
            0..=3 => {
                let outcome = VisitOutcome::ALL[rng.gen_range(0..VisitOutcome::ALL.len())];
                let id = store
                    .record_visit(NewVisit {
                        household_id: w.households[rng.gen_range(0..w.households.len())],
                        officer_id: w.officer,
                        at_ms: None,
                        outcome,
                        revisit_at_ms: (outcome == VisitOutcome::ComeBack)
                            .then_some(now + 86_400_000),
                        note: rng.gen_bool(0.3).then(|| format!("lần thăm thứ {i}")),
                        location: None,
                    })
                    .expect("record visit");
                facts.push(id);
                say(&format!("SAVED visit {id}"));
            }
            4..=7 => {
                let step = AssistStep::ALL[rng.gen_range(0..AssistStep::ALL.len())];
                let failure = rng
                    .gen_bool(0.3)
                    .then(|| FailureReason::ALL[rng.gen_range(0..FailureReason::ALL.len())]);
                let id = store
                    .record_assist(NewAssist {
                        resident_id: w.residents[rng.gen_range(0..w.residents.len())],
                        officer_id: w.officer,
                        at_ms: None,
                        step,
                        failure,
                        receiving_point: Some("Công an phường Đô Vinh".into()),
                        note: None,
                    })
                    .expect("record assist");
                facts.push(id);
                say(&format!("SAVED assist {id}"));
            }
            8 if !facts.is_empty() => {
                let id = facts[rng.gen_range(0..facts.len())];
                store.retract(id, Some("nhầm")).expect("retract");
                say(&format!("RETRACTED {id}"));
            }
            _ => {
                let resident = w.residents[rng.gen_range(0..w.residents.len())];
                // Unique per write, so every edit changes the value.
                let phone = format!("09123{:05}", (seed as usize).wrapping_add(i) % 100_000);
                say(&format!("EDITING {resident} {phone}"));
                store
                    .edit_resident(
                        resident,
                        ResidentEdit {
                            phone: Some(Some(phone.clone())),
                            note: None,
                        },
                    )
                    .expect("edit resident");
                say(&format!("EDITED {resident} {phone}"));
            }
        }
    }
    say("FINISHED");
}

/// What the child reported before it was killed.
#[derive(Debug, Default)]
struct Reported {
    visits: Vec<Uuid>,
    assists: Vec<Uuid>,
    retracted: Vec<Uuid>,
    /// Per resident: the phone of the last returned edit.
    phones: BTreeMap<Uuid, String>,
    /// An edit announced but not confirmed: it may or may not have committed.
    in_flight: Option<(Uuid, String)>,
    writes: usize,
}

impl Reported {
    fn take(&mut self, line: &str) {
        let uuid = |s: &str| Uuid::parse_str(s).unwrap_or_else(|e| panic!("{line}: {e}"));
        if let Some(rest) = event(line, "SAVED visit ") {
            self.visits.push(uuid(rest));
        } else if let Some(rest) = event(line, "SAVED assist ") {
            self.assists.push(uuid(rest));
        } else if let Some(rest) = event(line, "RETRACTED ") {
            self.retracted.push(uuid(rest));
        } else if let Some(rest) = event(line, "EDITING ") {
            let (r, p) = rest.split_once(' ').expect("EDITING resident phone");
            self.in_flight = Some((uuid(r), p.to_owned()));
            return;
        } else if let Some(rest) = event(line, "EDITED ") {
            let (r, p) = rest.split_once(' ').expect("EDITED resident phone");
            self.phones.insert(uuid(r), p.to_owned());
            self.in_flight = None;
        } else {
            return;
        }
        self.writes += 1;
    }
}

fn ids(conn: &Connection, sql: &str) -> BTreeSet<Uuid> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|s| Uuid::parse_str(&s.unwrap()).unwrap())
        .collect()
}

fn count(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> i64 {
    conn.query_row(sql, p, |r| r.get(0)).unwrap()
}

/// Every op in the log has its materialised effect, and every fact row has its op.
fn assert_consistent(store: &Store) {
    let conn = store.connection();
    let ops = store.all_ops_since(&VersionVector::default()).unwrap();
    let mut visits = BTreeSet::new();
    let mut assists = BTreeSet::new();
    let mut retracts = BTreeSet::new();
    let mut registers = BTreeSet::new();
    for op in &ops {
        match &op.body {
            OpBody::Visit(v) => assert!(visits.insert(v.id), "visit {} twice", v.id),
            OpBody::Assist(a) => assert!(assists.insert(a.id), "assist {} twice", a.id),
            OpBody::Retract { fact_id, .. } => {
                retracts.insert(*fact_id);
            }
            // The crash workload records none of these.
            OpBody::Session(_) | OpBody::Outreach(_) | OpBody::Redact(_) => {
                panic!("unexpected session, outreach or redaction")
            }
            OpBody::Set {
                entity,
                key,
                fields,
            } => {
                for (f, _) in fields {
                    registers.insert((entity.as_str().to_owned(), key.to_string(), f.as_str()));
                }
            }
        }
    }
    assert_eq!(
        count(conn, "SELECT count(*) FROM visits", []) as usize,
        visits.len(),
        "visit ops vs rows"
    );
    assert_eq!(ids(conn, "SELECT id FROM visits"), visits);
    assert_eq!(
        count(conn, "SELECT count(*) FROM assists", []) as usize,
        assists.len(),
        "assist ops vs rows"
    );
    assert_eq!(ids(conn, "SELECT id FROM assists"), assists);
    assert_eq!(ids(conn, "SELECT fact_id FROM retractions"), retracts);
    let flagged: BTreeSet<Uuid> = ids(
        conn,
        "SELECT id FROM visits WHERE retracted = 1 UNION SELECT id FROM assists WHERE retracted = 1",
    );
    let expected: BTreeSet<Uuid> = retracts
        .iter()
        .filter(|id| visits.contains(id) || assists.contains(id))
        .copied()
        .collect();
    assert_eq!(flagged, expected, "retracted flags vs retract ops");
    let held: BTreeSet<(String, String, &str)> = store
        .registers()
        .unwrap()
        .into_iter()
        .map(|(e, k, f, _)| (e.as_str().to_owned(), k, f.as_str()))
        .collect();
    assert_eq!(held, registers, "registers vs set ops");

    // The strongest form: a replica that replays the log holds exactly these tables.
    let mut replay = Store::open_in_memory(Options::default()).unwrap();
    replay.apply_ops(&ops).unwrap();
    assert_eq!(
        replay.canonical_dump().unwrap(),
        store.canonical_dump().unwrap(),
        "materialised tables differ from a replay of the log"
    );
}

/// The local replica's counters are 1..=max without a gap, and its version vector says max.
fn local_counter(store: &Store) -> u64 {
    let conn = store.connection();
    let me = store.replica_id();
    let r = me.0.as_bytes().as_slice();
    let (n, min, max): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), min(counter), max(counter) FROM oplog WHERE replica = ?1",
            [r],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!((min, max), (1, n), "gap in the local counters");
    assert_eq!(store.version_vector().unwrap().get(&me), max as u64);
    max as u64
}

fn check_after_write_crash(path: &Path, rep: &Reported, round: usize) {
    integrity_ok(path);
    let clock = common::clock();
    clock.advance(3_600_000 * 20 + round as u64);
    let mut store = Store::open(path, options(&clock)).expect("open after crash");
    let conn = store.connection();
    for id in &rep.visits {
        let n = count(
            conn,
            "SELECT count(*) FROM visits WHERE id = ?1",
            [id.to_string()],
        );
        assert_eq!(n, 1, "visit {id} reported saved but lost");
    }
    for id in &rep.assists {
        let n = count(
            conn,
            "SELECT count(*) FROM assists WHERE id = ?1",
            [id.to_string()],
        );
        assert_eq!(n, 1, "assist {id} reported saved but lost");
    }
    for id in &rep.retracted {
        let n = count(
            conn,
            "SELECT (SELECT count(*) FROM visits WHERE id = ?1 AND retracted = 1)
                  + (SELECT count(*) FROM assists WHERE id = ?1 AND retracted = 1)",
            [id.to_string()],
        );
        assert_eq!(n, 1, "retraction of {id} reported saved but lost");
    }
    for (resident, phone) in &rep.phones {
        let held: Option<String> = conn
            .query_row(
                "SELECT phone FROM residents WHERE id = ?1",
                [resident.to_string()],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
            .flatten();
        let ok = held.as_deref() == Some(phone.as_str())
            || rep
                .in_flight
                .as_ref()
                .is_some_and(|(r, p)| r == resident && held.as_deref() == Some(p.as_str()));
        assert!(ok, "phone of {resident}: {held:?}, reported {phone}");
    }
    assert_consistent(&store);
    let max = local_counter(&store);
    let facts = count(
        conn,
        "SELECT (SELECT count(*) FROM visits) + (SELECT count(*) FROM assists)",
        [],
    );
    // Each earlier round added one visit of the parent's own.
    let unreported = facts as usize - rep.visits.len() - rep.assists.len() - round;
    eprintln!("round {round}: {unreported} fact(s) so far committed but never reported");

    // The store keeps working, and the next dot is the next counter.
    let w = World::ids();
    let id = store
        .record_visit(NewVisit {
            household_id: w.households[0],
            officer_id: w.officer,
            at_ms: None,
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: Some(format!("after crash {round}")),
            location: None,
        })
        .expect("write after crash");
    let after = store
        .all_ops_since(&VersionVector::default())
        .unwrap()
        .into_iter()
        .find(|o| matches!(&o.body, OpBody::Visit(v) if v.id == id))
        .expect("op of the new visit");
    assert_eq!(after.replica, store.replica_id());
    assert_eq!(after.counter, max + 1, "counter after the crash");
    assert_eq!(local_counter(&store), max + 1);
}

#[test]
fn sigkill_mid_write_loses_no_returned_write() {
    let seed = seed();
    eprintln!("{SEED_ENV}={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("field.db");
    drop(common::populated_store(Some(&path)));
    let mut total = Reported::default();
    for round in 0..5 {
        let kill_after = rng.gen_range(1..=30);
        let (mut child, out) = spawn("writes", &path, &[(SEED_ENV, rng.gen::<u32>().to_string())]);
        let mut rep = Reported::default();
        let mut lines = out.lines();
        for line in lines.by_ref() {
            let line = line.expect("child stdout");
            assert!(event(&line, "FINISHED").is_none(), "child was never killed");
            rep.take(&line);
            if rep.writes >= kill_after {
                // Land somewhere inside the next write or two.
                std::thread::sleep(Duration::from_micros(rng.gen_range(0..3_000)));
                break;
            }
        }
        let err = kill(&mut child);
        assert!(
            rep.writes >= kill_after,
            "child stopped after {} writes:\n{err}",
            rep.writes
        );
        // The child kept writing until the kill landed: what it reported meanwhile counts too.
        for line in lines {
            rep.take(&line.expect("child stdout"));
        }
        // What earlier rounds saved must still be there too.
        total.visits.append(&mut rep.visits);
        total.assists.append(&mut rep.assists);
        total.retracted.append(&mut rep.retracted);
        total.phones.append(&mut rep.phones);
        total.in_flight = rep.in_flight.take();
        eprintln!(
            "round {round}: kill ordered after {kill_after} writes, {} reported{}",
            rep.writes,
            if total.in_flight.is_some() {
                " (an edit in flight)"
            } else {
                ""
            }
        );
        check_after_write_crash(&path, &total, round);
        // The parent's own write after the crash superseded nothing a child reported, but the
        // in-flight edit is settled now: whatever the store holds is the truth from here on.
        if let Some((r, _)) = total.in_flight.take() {
            let conn = Connection::open(&path).unwrap();
            let phone: Option<String> = conn
                .query_row(
                    "SELECT phone FROM residents WHERE id = ?1",
                    [r.to_string()],
                    |x| x.get(0),
                )
                .unwrap();
            match phone {
                Some(p) => total.phones.insert(r, p),
                None => total.phones.remove(&r),
            };
        }
    }
    assert!(!total.visits.is_empty() || !total.assists.is_empty());
}

// ---------------------------------------------------------------------------------------------
// b. Killed in the middle of applying a big batch of remote operations
// ---------------------------------------------------------------------------------------------

fn write_batch(path: &Path, ops: &[Op]) {
    let mut buf = Vec::new();
    for op in ops {
        let bytes = op.encode();
        buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        buf.extend_from_slice(&bytes);
    }
    std::fs::write(path, buf).unwrap();
}

fn read_batch(path: &Path) -> Vec<Op> {
    let buf = std::fs::read(path).expect("batch file");
    let mut ops = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        at += 4;
        ops.push(Op::decode(&buf[at..at + len]).expect("batch op"));
        at += len;
    }
    ops
}

/// Apply the whole batch in one call, between `START` and `DONE <applied>`.
fn child_batch(db: &Path, batch: &Path) {
    let ops = read_batch(batch);
    let clock = common::clock();
    let mut store = Store::open(db, options(&clock)).expect("child opens store");
    say("START");
    let report = store.apply_ops(&ops).expect("apply batch");
    say(&format!("DONE {}", report.applied));
}

const BATCH_VISITS: usize = 20_000;

/// A remote replica's `BATCH_VISITS` visits, all the target lacks of it.
fn remote_batch(target: &Store) -> (ReplicaId, Vec<Op>) {
    let clock = common::clock();
    clock.advance(7_200_000);
    let mut remote = Store::open_in_memory(options(&clock)).unwrap();
    remote
        .apply_ops(&target.all_ops_since(&VersionVector::default()).unwrap())
        .unwrap();
    let w = World::ids();
    let outcomes = [
        VisitOutcome::Met,
        VisitOutcome::NobodyHome,
        VisitOutcome::Refused,
    ];
    for i in 0..BATCH_VISITS {
        clock.advance(200);
        remote
            .record_visit(NewVisit {
                household_id: w.households[i % w.households.len()],
                officer_id: w.officer,
                at_ms: None,
                outcome: outcomes[i % outcomes.len()],
                revisit_at_ms: None,
                note: (i % 4 == 0).then(|| format!("thăm lần {i}")),
                location: None,
            })
            .unwrap();
    }
    let ops = remote
        .all_ops_since(&target.version_vector().unwrap())
        .unwrap();
    assert_eq!(ops.len(), BATCH_VISITS);
    assert!(ops.iter().all(|o| o.replica == remote.replica_id()));
    (remote.replica_id(), ops)
}

#[test]
fn sigkill_mid_batch_applies_all_or_nothing() {
    let seed = seed();
    eprintln!("{SEED_ENV}={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.db");
    let (remote, batch) = {
        let (target, _, _) = common::populated_store(Some(&pristine));
        remote_batch(&target)
    };
    let wal = dir.path().join("pristine.db-wal");
    assert!(
        !wal.exists(),
        "closing the store should have checkpointed the WAL"
    );
    let batch_path = dir.path().join("batch.bin");
    write_batch(&batch_path, &batch);
    let pristine_visits = count(
        &Connection::open(&pristine).unwrap(),
        "SELECT count(*) FROM visits",
        [],
    );
    eprintln!(
        "batch of {} ops built in {:?}",
        batch.len(),
        started.elapsed()
    );

    // The reference: the same file, the same batch, no crash.
    let reference = dir.path().join("reference.db");
    std::fs::copy(&pristine, &reference).unwrap();
    let (apply_time, expected) = {
        let clock = common::clock();
        let mut store = Store::open(&reference, options(&clock)).unwrap();
        let t = Instant::now();
        let report = store.apply_ops(&batch).unwrap();
        let apply_time = t.elapsed();
        assert_eq!(report.applied, BATCH_VISITS);
        (apply_time, store.canonical_dump().unwrap())
    };
    eprintln!("reference apply took {apply_time:?}");

    let r = remote.0.as_bytes().to_vec();
    let mut before_done = 0;
    let mut none_applied = 0;
    // Attempt 0 kills right after DONE (committed, WAL not yet checkpointed); the others at a
    // random point of the apply, until one landed before DONE.
    for attempt in 0..7 {
        let db = dir.path().join(format!("attempt{attempt}.db"));
        std::fs::copy(&pristine, &db).unwrap();
        let (mut child, mut out) = spawn(
            "batch",
            &db,
            &[(BATCH_ENV, batch_path.display().to_string())],
        );
        let mut line = String::new();
        loop {
            line.clear();
            let n = out.read_line(&mut line).expect("child stdout");
            if n == 0 {
                let err = kill(&mut child);
                panic!("child ended before START:\n{err}");
            }
            if event(&line, "START").is_some() {
                break;
            }
        }
        let delay = if attempt == 0 {
            line.clear();
            out.read_line(&mut line).expect("child stdout");
            assert!(
                event(&line, "DONE").is_some(),
                "expected DONE, got {line:?}"
            );
            Duration::ZERO
        } else {
            let delay = apply_time.mul_f64(rng.gen_range(0.0..0.9));
            std::thread::sleep(delay);
            delay
        };
        kill(&mut child);
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        let done = attempt == 0 || rest.contains("DONE");

        integrity_ok(&db);
        let held = {
            let conn = Connection::open(&db).unwrap();
            let ops = count(&conn, "SELECT count(*) FROM oplog WHERE replica = ?1", [&r]);
            let visits = count(&conn, "SELECT count(*) FROM visits", []) - pristine_visits;
            let contiguous: Option<i64> = conn
                .query_row(
                    "SELECT contiguous FROM replicas WHERE replica = ?1",
                    [&r],
                    |x| x.get(0),
                )
                .optional()
                .unwrap();
            assert!(
                ops == 0 || ops == BATCH_VISITS as i64,
                "attempt {attempt}: half a batch applied ({ops} of {BATCH_VISITS} ops)"
            );
            assert_eq!(visits, ops, "attempt {attempt}: visit rows vs ops");
            assert_eq!(
                contiguous,
                (ops > 0).then_some(ops),
                "attempt {attempt}: replicas row of the remote"
            );
            ops as usize
        };
        if done {
            assert_eq!(held, BATCH_VISITS, "DONE printed but the batch is missing");
        } else {
            before_done += 1;
        }
        if held == 0 {
            none_applied += 1;
        }
        eprintln!("attempt {attempt}: killed {delay:?} after START, done={done}, held {held} ops");

        // Delivering the batch again completes it, to exactly the uncrashed state.
        let clock = common::clock();
        let mut store = Store::open(&db, options(&clock)).unwrap();
        let report = store.apply_ops(&batch).unwrap();
        assert_eq!(report.applied, BATCH_VISITS - held);
        assert_eq!(report.duplicates, held);
        assert!(
            store.canonical_dump().unwrap() == expected,
            "attempt {attempt}: state after re-applying differs from the uncrashed reference"
        );
        drop(store);
        std::fs::remove_file(&db).unwrap();
        if before_done >= 1 && attempt >= 2 {
            break;
        }
    }
    assert!(before_done >= 1, "no kill landed before DONE in 6 attempts");
    eprintln!(
        "{before_done} kills before DONE, {none_applied} left nothing applied; {:?} in all",
        started.elapsed()
    );
}
