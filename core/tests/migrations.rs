//! Schema migrations, in the manner of application-services' `MigratedDatabaseFile`.
//!
//! `tests/schemas/vN.sql` is the complete schema of version N, frozen when N was the newest
//! (v1 is the V1 migration itself; for a later version, the output of `schema::dump_schema` on
//! a fresh store is a valid frozen file). `tests/schemas/vN.data.sql` holds rows written through
//! the Store API by the code of version N (generate one with
//! `DOORSTEP_FREEZE_DATA=1 cargo test -p doorstep-core --test migrations freeze_data_of_current_version`).
//!
//! Adding a migration therefore needs only the new frozen `vN.sql`: every test below loops over
//! the frozen files, and `frozen_schemas_cover_every_version` fails until it is there.

mod common;

use common::{World, NOW_MS};
use doorstep_core::schema::{dump_schema, VERSION};
use doorstep_core::{
    AssignTarget, AssistStep, Clock, Error, FailureReason, HouseholdEdit, Location, ManualClock,
    NewAssist, NewOutreach, NewSession, NewVisit, Op, OpBody, Options, OutreachKind, QuotaInput,
    QuotaMetric, QuotaPeriod, QuotaSubject, ReplicaId, ResidentEdit, SessionKind, Store,
    VersionVector, VisitOutcome,
};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

const HOUR_MS: u64 = 3_600_000;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas")
}

/// The frozen files named `v<N><suffix>`, sorted by N.
fn frozen(suffix: &str) -> Vec<(i64, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(schemas_dir()).expect("tests/schemas") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix('v')
            .and_then(|r| r.strip_suffix(suffix))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        out.push((n, path));
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A database file at frozen version `version`: its schema, then `data`, then the version.
struct FrozenDb {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl FrozenDb {
    fn new(version: i64, data: Option<&str>) -> FrozenDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("v{version}.db"));
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&read(&schemas_dir().join(format!("v{version}.sql"))))
            .unwrap_or_else(|e| panic!("frozen schema v{version}: {e}"));
        if let Some(data) = data {
            conn.execute_batch(data)
                .unwrap_or_else(|e| panic!("frozen data v{version}: {e}"));
        }
        conn.pragma_update(None, "user_version", version).unwrap();
        FrozenDb { _dir: dir, path }
    }
}

fn options_at(ms: u64) -> (Options, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(ms));
    (common::options(&clock), clock)
}

fn fresh_schema() -> String {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("fresh.db"), Options::default()).unwrap();
    dump_schema(store.connection()).unwrap()
}

#[test]
fn frozen_schemas_cover_every_version() {
    let versions: Vec<i64> = frozen(".sql")
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| *n > 0)
        .collect();
    assert_eq!(
        versions,
        (1..=VERSION).collect::<Vec<_>>(),
        "freeze the schema of every version in tests/schemas/vN.sql (N = 1..={VERSION})"
    );
}

#[test]
fn every_frozen_schema_migrates_to_the_fresh_schema() {
    let fresh = fresh_schema();
    let files = frozen(".sql");
    assert!(!files.is_empty());
    for (version, _) in files {
        let db = FrozenDb::new(version, None);
        let store = Store::open(&db.path, Options::default())
            .unwrap_or_else(|e| panic!("opening frozen v{version}: {e}"));
        assert_eq!(
            dump_schema(store.connection()).unwrap(),
            fresh,
            "v{version} migrated differs from a fresh store"
        );
    }
}

/// A schema edited without a new migration (and frozen file) is caught here.
#[test]
fn fresh_schema_equals_newest_frozen_schema() {
    let newest = frozen(".sql").last().expect("a frozen schema").0;
    assert_eq!(newest, VERSION, "the newest frozen schema is v{VERSION}");
    let db = FrozenDb::new(newest, None);
    let raw = Connection::open(&db.path).unwrap();
    assert_eq!(dump_schema(&raw).unwrap(), fresh_schema());
}

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

fn visit(household: Uuid, officer: Uuid, outcome: VisitOutcome) -> NewVisit {
    NewVisit {
        household_id: household,
        officer_id: officer,
        at_ms: None,
        outcome,
        revisit_at_ms: None,
        note: None,
        location: None,
    }
}

fn assist(resident: Uuid, officer: Uuid, step: AssistStep) -> NewAssist {
    NewAssist {
        resident_id: resident,
        officer_id: officer,
        at_ms: None,
        step,
        failure: None,
        receiving_point: None,
        note: None,
    }
}

/// A little of everything, through the Store API: the fixture, facts, retractions, edits,
/// a tombstone, an assignment, a quota, and operations of a second replica applied with a
/// cursor, one of them withheld so the version vector has a gap. Returns the withheld op.
fn build_history(store: &mut Store, clock: &ManualClock) -> Op {
    let w = common::populate(store);
    let (b_options, b_clock) = options_at(NOW_MS + 5 * 60_000);
    let mut b = Store::open_in_memory(b_options).unwrap();
    b.apply_ops(&store.all_ops_since(&VersionVector::default()).unwrap())
        .unwrap();
    b.record_visit(visit(w.households[0], w.officer, VisitOutcome::Met))
        .unwrap();
    b_clock.advance(60_000);
    b.record_assist(assist(
        w.residents[0],
        w.officer,
        AssistStep::Level1Activated,
    ))
    .unwrap();
    b.edit_resident(
        w.residents[1],
        ResidentEdit {
            phone: Some(Some("0912 345 678".into())),
            note: None,
        },
    )
    .unwrap();
    b.record_assist(NewAssist {
        receiving_point: Some("Công an phường Đô Vinh".into()),
        ..assist(w.residents[2], w.officer, AssistStep::Level2Received)
    })
    .unwrap();
    b.record_visit(visit(w.households[1], w.officer, VisitOutcome::NobodyHome))
        .unwrap();
    let mut b_ops = b.all_ops_since(&store.version_vector().unwrap()).unwrap();
    assert_eq!(b_ops.len(), 5);
    assert!(b_ops.iter().all(|o| o.replica == b.replica_id()));
    let withheld = b_ops.remove(2);
    store
        .apply_ops_with_cursor(&b_ops, "server", "page-7")
        .unwrap();

    clock.advance(10 * 60_000);
    let met = store
        .record_visit(NewVisit {
            note: Some("Đã hướng dẫn cài ứng dụng VNeID".into()),
            location: Some(Location {
                lat_e6: 11_567_000,
                lon_e6: 108_988_000,
            }),
            ..visit(w.households[2], w.officer, VisitOutcome::Met)
        })
        .unwrap();
    clock.advance(60_000);
    let now = clock.now_ms() as i64;
    store
        .record_visit(NewVisit {
            revisit_at_ms: Some(now + 24 * HOUR_MS as i64),
            ..visit(w.households[0], w.officer, VisitOutcome::ComeBack)
        })
        .unwrap();
    store
        .record_assist(assist(w.residents[3], w.officer, AssistStep::Level1Guided))
        .unwrap();
    store
        .record_assist(NewAssist {
            failure: Some(FailureReason::OtpNotReceived),
            note: Some("Nhà mạng chưa gửi OTP".into()),
            ..assist(w.residents[4], w.officer, AssistStep::Level1Activated)
        })
        .unwrap();
    let wrong = store
        .record_assist(assist(
            w.residents[3],
            w.officer,
            AssistStep::Level2Activated,
        ))
        .unwrap();
    clock.advance(60_000);
    store.retract(met, Some("nhầm hộ")).unwrap();
    store.retract(wrong, None).unwrap();
    store
        .edit_household(
            w.households[1],
            HouseholdEdit {
                address: None,
                note: Some(Some("Có chó dữ".into())),
            },
        )
        .unwrap();
    store.delete_resident(w.residents[5]).unwrap();
    store
        .assign(w.officer, AssignTarget::Village(w.village.clone()))
        .unwrap();
    store
        .set_quota(QuotaInput {
            campaign_id: w.campaign,
            subject: QuotaSubject::Officer(w.officer),
            period: QuotaPeriod::Campaign,
            metric: QuotaMetric::Visits,
            target: 400,
        })
        .unwrap();
    // Schema v2: a receiving session, outreach events (one retracted).
    let now = clock.now_ms() as i64;
    store
        .record_session(NewSession {
            unit_code: w.commune.clone(),
            officer_id: w.officer,
            kind: SessionKind::Mobile,
            place: "Nhà văn hoá thôn 1".into(),
            starts_at_ms: now,
            ends_at_ms: now + 60_000,
            applications: 37,
            note: None,
        })
        .unwrap();
    store
        .record_outreach(NewOutreach {
            unit_code: w.village.clone(),
            officer_id: w.officer,
            kind: OutreachKind::Meeting,
            at_ms: None,
            place: "Nhà văn hoá thôn 1".into(),
            people_reached: 85,
            note: Some("Họp dân".into()),
        })
        .unwrap();
    let broadcast = store
        .record_outreach(NewOutreach {
            unit_code: w.commune.clone(),
            officer_id: w.officer,
            kind: OutreachKind::Loudspeaker,
            at_ms: None,
            place: "Loa phường".into(),
            people_reached: 2000,
            note: None,
        })
        .unwrap();
    store.retract(broadcast, Some("ghi trùng")).unwrap();
    withheld
}

fn cell(out: &mut String, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => out.push_str("NULL"),
        ValueRef::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        ValueRef::Real(r) => {
            let _ = write!(out, "{r:?}");
        }
        ValueRef::Text(t) => {
            let _ = write!(out, "'{}'", String::from_utf8_lossy(t).replace('\'', "''"));
        }
        ValueRef::Blob(b) => {
            out.push_str("X'");
            for byte in b {
                let _ = write!(out, "{byte:02X}");
            }
            out.push('\'');
        }
    }
}

/// Rows of `sql`, one line each, values as SQL literals.
fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let mut line = String::new();
        for i in 0..n {
            if i > 0 {
                line.push_str(", ");
            }
            cell(&mut line, row.get_ref(i).unwrap());
        }
        out.push(line);
    }
    out
}

/// What a store held, read with plain SQL so it works on a file the current code has not yet
/// opened (the column names are those of v1; branch on the version if a migration renames them).
#[derive(Debug)]
struct Snapshot {
    replica: ReplicaId,
    last_hlc: u64,
    ops: Vec<Op>,
    vv: VersionVector,
    cursors: Vec<String>,
    /// What an app reads: facts, people, derived account state, tombstones.
    facts: Vec<String>,
}

fn uuid(b: Vec<u8>) -> Uuid {
    Uuid::from_slice(&b).expect("16-byte uuid")
}

const FACT_QUERIES: &[&str] = &[
    "SELECT id, household_id, officer_id, at_ms, day, outcome, revisit_at_ms, note, lat_e6, lon_e6, retracted FROM visits ORDER BY id",
    "SELECT id, resident_id, officer_id, at_ms, day, step, failure, receiving_point, note, retracted FROM assists ORDER BY id",
    "SELECT fact_id, reason FROM retractions ORDER BY fact_id",
    "SELECT id, household_id, full_name, birth_date, gender, phone, roster_account, deleted FROM residents ORDER BY id",
    "SELECT id, code, village_code, address, note, deleted FROM households ORDER BY id",
    "SELECT resident_id, level1, level2, portal, need FROM account_state ORDER BY resident_id",
    "SELECT code, parent_code, level, kind, name FROM units ORDER BY code",
    "SELECT id, name, start_date, end_date, target, unit_code FROM campaigns ORDER BY id",
    "SELECT id, officer_id, target_kind, target_id, active FROM assignments ORDER BY id",
    "SELECT id, campaign_id, subject_kind, subject_id, period, metric, target FROM quotas ORDER BY id",
    // Schema v2: on an older file these name what is not there yet, and read as no rows (as
    // the migrated file's empty tables and NULL agencies do).
    "SELECT id, unit_code, officer_id, kind, place, starts_at_ms, ends_at_ms, day, applications, note, retracted FROM sessions ORDER BY id",
    "SELECT id, unit_code, officer_id, kind, at_ms, day, place, people, note, retracted FROM outreach ORDER BY id",
    "SELECT id, agency FROM residents WHERE agency IS NOT NULL ORDER BY id",
];

/// Rows of `sql`, or none if it names a table or column the file's schema does not have yet.
fn rows_if_present(conn: &Connection, sql: &str) -> Vec<String> {
    match conn.prepare(sql) {
        Err(e) if e.to_string().contains("no such") => Vec::new(),
        _ => rows(conn, sql),
    }
}

fn facts(conn: &Connection) -> Vec<String> {
    FACT_QUERIES
        .iter()
        .flat_map(|q| {
            let mut r = rows_if_present(conn, q);
            r.insert(0, format!("-- {q}"));
            r
        })
        .collect()
}

fn snapshot(path: &Path) -> Snapshot {
    let conn = Connection::open(path).unwrap();
    let replica = ReplicaId(uuid(
        conn.query_row("SELECT value FROM meta WHERE key = 'replica_id'", [], |r| {
            r.get(0)
        })
        .unwrap(),
    ));
    // The latest stamp: saved in `meta` by syncs, and the last local operation's own.
    let last_hlc: i64 = conn
        .query_row(
            "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'last_hlc'), 0),
                        coalesce((SELECT max(hlc) FROM oplog WHERE replica = ?1), 0))",
            [replica.0.as_bytes().as_slice()],
            |r| r.get(0),
        )
        .unwrap();
    let mut ops = Vec::new();
    let mut stmt = conn
        .prepare("SELECT replica, counter, hlc, body FROM oplog ORDER BY replica, counter")
        .unwrap();
    let mut q = stmt.query([]).unwrap();
    while let Some(row) = q.next().unwrap() {
        let body: Vec<u8> = row.get(3).unwrap();
        ops.push(Op {
            replica: ReplicaId(uuid(row.get(0).unwrap())),
            counter: row.get::<_, i64>(1).unwrap() as u64,
            hlc: doorstep_core::Hlc::from_sql(row.get(2).unwrap()),
            body: postcard::from_bytes::<OpBody>(&body).expect("op body"),
        });
    }
    drop(q);
    drop(stmt);
    let mut vv = VersionVector::default();
    let mut stmt = conn
        .prepare("SELECT replica, contiguous FROM replicas")
        .unwrap();
    let mut q = stmt.query([]).unwrap();
    while let Some(row) = q.next().unwrap() {
        vv.0.insert(
            ReplicaId(uuid(row.get(0).unwrap())),
            row.get::<_, i64>(1).unwrap() as u64,
        );
    }
    drop(q);
    drop(stmt);
    // This replica's own entry is its last counter in the log (its operations have no gaps).
    let own: i64 = conn
        .query_row(
            "SELECT coalesce(max(counter), 0) FROM oplog WHERE replica = ?1",
            [replica.0.as_bytes().as_slice()],
            |r| r.get(0),
        )
        .unwrap();
    if own > 0 {
        let e = vv.0.entry(replica).or_insert(0);
        *e = (*e).max(own as u64);
    }
    Snapshot {
        replica,
        last_hlc: last_hlc as u64,
        ops,
        vv,
        cursors: rows(&conn, "SELECT peer, cursor FROM sync_cursors ORDER BY peer"),
        facts: facts(&conn),
    }
}

fn sorted(mut ops: Vec<Op>) -> Vec<Op> {
    ops.sort_by_key(|o| (o.replica, o.counter));
    ops
}

/// Whether the materialised tables are exactly what replaying the log gives: a fresh replica
/// that applies every operation of `store` must dump the same.
fn assert_materialised_matches_log(store: &Store) {
    let mut replay = Store::open_in_memory(Options::default()).unwrap();
    replay
        .apply_ops(&store.all_ops_since(&VersionVector::default()).unwrap())
        .unwrap();
    assert_eq!(
        replay.canonical_dump().unwrap(),
        store.canonical_dump().unwrap(),
        "materialised tables differ from a replay of the operation log"
    );
}

/// Open the file with the current code and check that nothing was lost or reset.
fn check_reopen(path: &Path, before: &Snapshot, withheld: &Op) {
    // The clock is an hour behind what the store has seen: only a persisted HLC keeps order.
    let (options, _clock) = options_at(NOW_MS - HOUR_MS);
    assert!(before.last_hlc >> 16 >= NOW_MS, "history stamped after NOW");
    let mut store = Store::open(path, options).expect("open old store");
    let w = World::ids();

    assert_eq!(store.replica_id(), before.replica, "replica id changed");
    let ops = sorted(store.all_ops_since(&VersionVector::default()).unwrap());
    assert_eq!(ops, sorted(before.ops.clone()), "operation log changed");
    assert_eq!(store.version_vector().unwrap(), before.vv);
    assert_eq!(
        rows(
            store.connection(),
            "SELECT peer, cursor FROM sync_cursors ORDER BY peer"
        ),
        before.cursors
    );
    assert_eq!(store.cursor("server").unwrap().as_deref(), Some("page-7"));
    assert_eq!(
        facts(store.connection()),
        before.facts,
        "rows changed on reopen"
    );
    assert_materialised_matches_log(&store);

    // Writes still work; the counter continues after the last dot, never reusing one.
    let own_max = before
        .ops
        .iter()
        .filter(|o| o.replica == before.replica)
        .map(|o| o.counter)
        .max()
        .unwrap();
    assert_eq!(before.vv.get(&before.replica), own_max);
    let id = store
        .record_visit(visit(w.households[1], w.officer, VisitOutcome::Refused))
        .expect("write after reopen");
    let after = sorted(store.all_ops_since(&VersionVector::default()).unwrap());
    assert_eq!(after.len(), before.ops.len() + 1);
    let new = after
        .iter()
        .find(|o| matches!(&o.body, OpBody::Visit(v) if v.id == id))
        .expect("the new visit's op");
    assert_eq!(new.replica, before.replica);
    assert_eq!(new.counter, own_max + 1, "op counter did not continue");
    assert!(
        new.hlc.0 > before.last_hlc,
        "new stamp {:?} not after the persisted {}",
        new.hlc,
        before.last_hlc
    );
    assert_eq!(
        store.version_vector().unwrap().get(&before.replica),
        own_max + 1
    );

    // The gap left by the withheld op closes when it arrives.
    let gap_owner = withheld.replica;
    let held_max = before
        .ops
        .iter()
        .filter(|o| o.replica == gap_owner)
        .map(|o| o.counter)
        .max()
        .unwrap();
    assert_eq!(before.vv.get(&gap_owner), withheld.counter - 1);
    let report = store
        .apply_ops(std::slice::from_ref(withheld))
        .expect("apply withheld op");
    assert_eq!(report.applied, 1);
    assert_eq!(store.version_vector().unwrap().get(&gap_owner), held_max);
    assert_materialised_matches_log(&store);
}

/// Data written at the current version survives closing and reopening.
#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = common::clock();
    let (withheld, dump) = {
        let mut store = Store::open(&path, common::options(&clock)).unwrap();
        let withheld = build_history(&mut store, &clock);
        (withheld, store.canonical_dump().unwrap())
    };
    let before = snapshot(&path);
    assert!(
        before.ops.len() >= 30,
        "history too small: {}",
        before.ops.len()
    );
    {
        let (options, _clock) = options_at(NOW_MS);
        let store = Store::open(&path, options).unwrap();
        assert_eq!(store.canonical_dump().unwrap(), dump);
    }
    check_reopen(&path, &before, &withheld);
}

/// Data written by the code of every frozen version survives migration to this one.
#[test]
fn frozen_data_survives_migration() {
    let files = frozen(".data.sql");
    assert!(
        !files.is_empty(),
        "no frozen data (tests/schemas/vN.data.sql)"
    );
    for (version, path) in files {
        let data = read(&path);
        let hex = data
            .lines()
            .find_map(|l| l.strip_prefix("-- withheld_op: "))
            .expect("withheld_op line");
        let withheld = Op::decode(&from_hex(hex)).expect("withheld op");
        let db = FrozenDb::new(version, Some(&data));
        let before = snapshot(&db.path);
        check_reopen(&db.path, &before, &withheld);
    }
}

fn from_hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The current version has frozen data. With `DOORSTEP_FREEZE_DATA=1` it writes
/// `tests/schemas/v<VERSION>.data.sql` when freezing a new version (never rewriting one).
#[test]
fn freeze_data_of_current_version() {
    let target = schemas_dir().join(format!("v{VERSION}.data.sql"));
    if std::env::var_os("DOORSTEP_FREEZE_DATA").is_none() {
        assert!(
            target.exists(),
            "{} is missing: run this test with DOORSTEP_FREEZE_DATA=1 to freeze it",
            target.display()
        );
        return;
    }
    if target.exists() {
        eprintln!(
            "{} exists; frozen files are never rewritten",
            target.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let clock = common::clock();
    let withheld = {
        let mut store = Store::open(&path, common::options(&clock)).unwrap();
        build_history(&mut store, &clock)
    };
    let conn = Connection::open(&path).unwrap();
    let mut out = format!(
        "-- Frozen data of schema version {VERSION}, written through the Store API by\n\
         -- tests/migrations.rs (build_history). Never edit a frozen file.\n\
         -- withheld_op: {}\n",
        withheld
            .encode()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let tables = rows(
        &conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    for table in tables {
        let table = table.trim_matches('\'');
        // Generated columns (hidden 2 or 3 in table_xinfo) cannot be inserted.
        let cols: Vec<String> = {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT name FROM pragma_table_xinfo('{table}') WHERE hidden = 0 ORDER BY cid"
                ))
                .unwrap();
            let names = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
            names.map(Result::unwrap).collect()
        };
        // One-column tables (redactions) order by that column alone.
        let order = if cols.len() > 1 { "1, 2" } else { "1" };
        let cols = cols.join(", ");
        for row in rows(
            &conn,
            &format!("SELECT {cols} FROM {table} ORDER BY {order}"),
        ) {
            let _ = writeln!(out, "INSERT INTO {table} ({cols}) VALUES ({row});");
        }
    }
    std::fs::write(&target, out).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Refusal of newer stores, persistence of identity
// ---------------------------------------------------------------------------------------------

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Whether the file still holds `bytes` (reported as the first differing offset, not a dump).
fn assert_same_bytes(path: &Path, bytes: &[u8]) {
    let now = std::fs::read(path).unwrap();
    if let Some(at) = (0..now.len().max(bytes.len())).find(|&i| now.get(i) != bytes.get(i)) {
        panic!(
            "refused file was modified: {} bytes -> {} bytes, first difference at offset {at}",
            bytes.len(),
            now.len()
        );
    }
}

fn assert_too_new<T: std::fmt::Debug>(r: doorstep_core::Result<T>) {
    match r {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!(found, VERSION + 1);
            assert_eq!(supported, VERSION);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

/// A store written by a newer Doorstep is refused, by the writer and the reader, and left as
/// it was: nothing migrated, no replica id added, not a byte changed.
#[test]
fn newer_store_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    {
        let (store, _, _) = common::populated_store(Some(&path));
        drop(store);
    }
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", VERSION + 1)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();

    assert_too_new(Store::open(&path, Options::default()));
    assert_same_bytes(&path, &bytes);
    assert_too_new(Store::open_reader(&path));
    assert_same_bytes(&path, &bytes);
    assert_eq!(user_version(&path), VERSION + 1);
}

/// The same for a newer store that does not use a write-ahead log (say a newer Doorstep chose
/// another journal mode): refusing it must not convert it to WAL (header bytes 18-19).
#[test]
fn newer_store_in_rollback_journal_mode_is_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    {
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        conn.execute_batch("CREATE TABLE from_the_future (x INTEGER) STRICT;")
            .unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_too_new(Store::open(&path, Options::default()));
    assert_too_new(Store::open_reader(&path));
    assert_eq!(user_version(&path), VERSION + 1);
    assert_same_bytes(&path, &bytes);
}

/// The replica id, the HLC and the op counter live in the file, not in memory.
#[test]
fn identity_clock_and_counter_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let (replica, last, n) = {
        let (mut store, w, clock) = common::populated_store(Some(&path));
        for h in &w.households {
            clock.advance(1_000);
            store
                .record_visit(visit(*h, w.officer, VisitOutcome::Met))
                .unwrap();
        }
        let ops = store.all_ops_since(&VersionVector::default()).unwrap();
        let last = ops.iter().map(|o| o.hlc).max().unwrap();
        (store.replica_id(), last, ops.len() as u64)
    };
    for round in 1..=3u64 {
        // Each reopen's clock is further behind: a phone whose clock was reset.
        let (options, _clock) = options_at(NOW_MS - round * HOUR_MS);
        let mut store = Store::open(&path, options).unwrap();
        assert_eq!(store.replica_id(), replica);
        let w = World::ids();
        store
            .record_visit(visit(w.households[0], w.officer, VisitOutcome::NobodyHome))
            .unwrap();
        let ops = store.all_ops_since(&VersionVector::default()).unwrap();
        assert!(ops.iter().all(|o| o.replica == replica));
        let counters: Vec<u64> = ops.iter().map(|o| o.counter).collect();
        assert_eq!(counters, (1..=n + round).collect::<Vec<_>>(), "dots reused");
        let newest = ops.last().unwrap();
        assert!(
            newest.hlc > last,
            "stamp went back after reopen: {:?} <= {last:?}",
            newest.hlc
        );
        let stamps: Vec<_> = ops.iter().map(|o| o.hlc).collect();
        assert!(
            stamps.windows(2).all(|p| p[0] < p[1]),
            "stamps not increasing"
        );
        assert_eq!(store.version_vector().unwrap().get(&replica), n + round);
    }
}
