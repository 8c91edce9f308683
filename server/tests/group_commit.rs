//! Group commit of pushes on SQLite (issue #15): pushes waiting for the store are applied in
//! one transaction, each in a savepoint of its own, and each gets exactly the answer — and
//! leaves exactly the state — that applying them one after another gives.
//!
//! Two copies of one database (units, roster, officers, enrolled devices): on one the pushes
//! are sent one at a time, on the other they wait for each other. First with the order fixed
//! (the store held while the pushes queue up, so they form groups in a known order; the feed
//! must then be identical row for row), then from 8 threads at once (each device's pushes in
//! order on one thread; the feed is compared without its order). The pushes include refused
//! operations (another officer's village, a clock ahead: quarantined), operations of another
//! replica, duplicates of earlier pushes, an ill-formed batch and a device revoked on the way;
//! the incremental statistics must equal a rebuild afterwards.

use chrono::NaiveDate;
use doorstep_core::wire::PushResponse;
use doorstep_core::*;
use doorstep_server::backend::{Backend, DeviceAuth, Enrolment};
use doorstep_server::stats::StatsCache;
use doorstep_server::SqliteBackend;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

mod common;
use common::put_units;

/// When the test's world begins (the wall clock, read once): devices' clocks start here.
fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    })
}

/// The server's time for every push: half an hour after [`t0`].
fn push_now() -> i64 {
    t0() + 30 * 60_000
}
const MINUTE: u64 = 60_000;
const VILLAGES: [&str; 2] = ["22813-01", "22814-01"];
const HOUSEHOLDS: usize = 4;

/// Reference data and rosters, made by a commune station's store.
struct World {
    ops: Vec<Op>,
    /// One field officer per village of [`VILLAGES`].
    officers: [Uuid; 2],
    /// Households of each village.
    hh: [Vec<Uuid>; 2],
    /// A resident of each village.
    res: [Uuid; 2],
}

fn world() -> World {
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    put_units(
        &mut s,
        &[
            ("58", None, UnitLevel::Province),
            ("586", Some("58"), UnitLevel::District),
            ("22813", Some("586"), UnitLevel::Commune),
            ("22814", Some("586"), UnitLevel::Commune),
            ("22813-01", Some("22813"), UnitLevel::Village),
            ("22814-01", Some("22814"), UnitLevel::Village),
        ],
    );
    s.put_campaign(CampaignInput {
        id: Uuid::now_v7(),
        name: "Cao điểm".into(),
        start_date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap(),
        target: 1000,
        unit_code: "58".into(),
    })
    .unwrap();
    let officers = [Uuid::now_v7(), Uuid::now_v7()];
    let mut hh: [Vec<Uuid>; 2] = Default::default();
    let mut res = [Uuid::nil(); 2];
    for (v, village) in VILLAGES.iter().enumerate() {
        s.put_officer(OfficerInput {
            id: officers[v],
            name: "Cán bộ".into(),
            role: Role::Field,
            unit_code: village[..5].into(),
        })
        .unwrap();
        s.assign(officers[v], AssignTarget::Village((*village).into()))
            .unwrap();
        for i in 0..HOUSEHOLDS {
            let h = Uuid::now_v7();
            s.put_household(HouseholdInput {
                id: h,
                code: format!("H{v}{i:02}"),
                village_code: (*village).into(),
                address: None,
                head_id: None,
            })
            .unwrap();
            res[v] = Uuid::now_v7();
            s.put_resident(ResidentInput {
                id: res[v],
                household_id: h,
                full_name: "Nguyễn Văn A".into(),
                birth_date: "1990".into(),
                gender: None,
                id_number: None,
                phone: None,
                relation: None,
                account: RosterStatus::None,
                agency: None,
            })
            .unwrap();
            hh[v].push(h);
        }
    }
    World {
        ops: s.all_ops_since(&VersionVector::default()).unwrap(),
        officers,
        hh,
        res,
    }
}

/// What a device's thread does, in order.
#[derive(Clone)]
enum Step {
    Push(Vec<Op>),
    /// Revoke the device (the admin's action) at this time.
    Revoke(i64),
}

/// A device: its authentication and its script.
struct Device {
    auth: DeviceAuth,
    steps: Vec<Step>,
}

/// The template database (world imported, `n` devices enrolled, alternating officers) and
/// each device's script. Device 1 is revoked before its last push.
fn prepare(dir: &Path, n: usize) -> (std::path::PathBuf, Vec<Device>) {
    let w = world();
    let t0 = t0();
    let template = dir.join("template.db");
    let b = SqliteBackend::open(&template).unwrap();
    b.import_ops("test", &w.ops, t0).unwrap();
    let mut devices = Vec::new();
    for d in 0..n {
        let v = d % 2;
        let officer = w.officers[v];
        let clock = Arc::new(ManualClock::new(t0 as u64));
        let mut store = Store::open_in_memory(Options {
            clock: clock.clone(),
            ..Options::default()
        })
        .unwrap();
        store.apply_ops(&w.ops).unwrap();
        let code = b.issue_enrol_code("test", officer, 60, t0).unwrap().code;
        let e = b
            .enrol(
                Enrolment {
                    code,
                    device_name: format!("máy {d}"),
                    replica: store.replica_id().0,
                    device_time_ms: t0,
                    public_key: None,
                },
                t0,
            )
            .unwrap();
        let visit = |store: &mut Store, village: usize, i: usize| {
            clock.advance(MINUTE);
            store
                .record_visit(NewVisit {
                    household_id: w.hh[village][i % HOUSEHOLDS],
                    officer_id: officer,
                    at_ms: None,
                    outcome: VisitOutcome::Met,
                    revisit_at_ms: None,
                    note: Some(format!("lần {i}")),
                    location: None,
                })
                .unwrap();
        };
        let mut sent = 0;
        let mut next = |store: &Store| {
            let ops: Vec<Op> = store
                .all_ops_since(&VersionVector::default())
                .unwrap()
                .into_iter()
                .filter(|o| o.replica == store.replica_id() && o.counter > sent)
                .collect();
            sent = ops.iter().map(|o| o.counter).max().unwrap_or(sent);
            ops
        };
        let mut steps = Vec::new();
        // 1: its own village's households, and two of the other village's (out of scope).
        for i in 0..5 {
            visit(&mut store, v, i);
        }
        visit(&mut store, 1 - v, d);
        visit(&mut store, 1 - v, d + 1);
        let first = next(&store);
        steps.push(Step::Push(first.clone()));
        // 2: more visits, sent with an operation of another replica (no segment covers it)
        // and with the first push's last operations again.
        for i in 5..9 {
            visit(&mut store, v, i);
        }
        let mut second = first[first.len() - 2..].to_vec();
        second.extend(next(&store));
        second.push(w.ops[0].clone());
        steps.push(Step::Push(second));
        // 3: the first push again (all duplicates).
        steps.push(Step::Push(first.clone()));
        if d == 1 {
            steps.push(Step::Revoke(clock.now_ms() as i64 + 1));
        }
        // 4: a visit, then two edits made with a clock hours ahead of the server's
        // (quarantined; the last, so that the device's clock does not carry the others ahead).
        visit(&mut store, v, 9);
        clock.set((t0 + 2 * 3_600_000) as u64);
        for i in 0..2 {
            clock.advance(MINUTE);
            store
                .edit_resident(
                    w.res[v],
                    ResidentEdit {
                        phone: Some(Some(format!("09{d:02}{i}12345"))),
                        note: None,
                    },
                )
                .unwrap();
        }
        steps.push(Step::Push(next(&store)));
        // 5 (some devices): an ill-formed batch, refused whole.
        if d % 3 == 2 {
            let mut bad = first.clone();
            bad[0].counter = 0;
            steps.push(Step::Push(bad));
        }
        devices.push(Device {
            auth: DeviceAuth {
                device_id: e.device_id,
                officer_id: e.officer_id,
                replica: store.replica_id().0,
            },
            steps,
        });
    }
    drop(b);
    (template, devices)
}

/// A copy of the template database at `to`, opened.
fn copy(template: &Path, to: &Path) -> Arc<SqliteBackend> {
    let b = SqliteBackend::open(template).unwrap();
    b.with_store(|s| {
        s.connection()
            .execute("VACUUM INTO ?1", [to.to_str().unwrap()])
            .unwrap()
    })
    .unwrap();
    drop(b);
    Arc::new(SqliteBackend::open(to).unwrap())
}

/// One step's answer, as comparable text (an error by its message).
fn run(b: &SqliteBackend, dev: &Device, step: &Step) -> String {
    match step {
        Step::Push(ops) => answer(b.push(&dev.auth, ops.clone(), push_now(), push_now())),
        Step::Revoke(at) => format!(
            "{:?}",
            b.revoke_device("test", dev.auth.device_id, *at).unwrap()
        ),
    }
}

fn answer(r: doorstep_server::Result<PushResponse>) -> String {
    match r {
        Ok(r) => format!("{r:?}"),
        Err(e) => format!("error: {e}"),
    }
}

/// Every table of the database file, each as its rows (sorted); `unordered`: without the
/// feed's and the audit's sequence numbers, for runs whose pushes interleave differently.
fn dump(b: &SqliteBackend, unordered: bool) -> BTreeMap<String, Vec<String>> {
    let server = *b.server_replica().as_bytes();
    b.with_store(|s| {
        let conn = s.connection();
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut out = BTreeMap::new();
        for t in tables {
            // The server's own replica's row moves at every open (its counters are reserved
            // past the clock); the devices' rows are compared.
            let sql = match t.as_str() {
                "replicas" => "SELECT * FROM replicas WHERE replica != ?1".to_owned(),
                _ => format!("SELECT * FROM \"{t}\" WHERE ?1 IS NOT NULL"),
            };
            let mut stmt = conn.prepare(&sql).unwrap();
            let names: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
            let mut rows: Vec<String> = stmt
                .query_map([server.as_slice()], |r| {
                    let mut row = Vec::new();
                    for (i, name) in names.iter().enumerate() {
                        if unordered
                            && (t == "feed" && name == "seq" || t == "audit" && name == "id")
                        {
                            continue;
                        }
                        row.push(format!(
                            "{name}={:?}",
                            r.get::<_, rusqlite::types::Value>(i)?
                        ));
                    }
                    Ok(row.join(" "))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            rows.sort();
            out.insert(t, rows);
        }
        out
    })
    .unwrap()
}

/// The tables of the two copies that differ as soon as they are opened (each open begins a
/// generation and reserves counters): left out of the comparison.
fn differing_at_open(a: &SqliteBackend, b: &SqliteBackend) -> Vec<String> {
    let (a, b) = (dump(a, false), dump(b, false));
    let differ: Vec<String> = a
        .keys()
        .filter(|t| a.get(*t) != b.get(*t))
        .cloned()
        .collect();
    assert!(
        differ.iter().all(|t| t == "server_meta" || t == "meta"),
        "{differ:?}"
    );
    differ
}

fn assert_same_state(
    grouped: &SqliteBackend,
    alone: &SqliteBackend,
    skip: &[String],
    unordered: bool,
) {
    let (mut g, mut a) = (dump(grouped, unordered), dump(alone, unordered));
    for t in skip {
        g.remove(t);
        a.remove(t);
    }
    assert_eq!(g.keys().collect::<Vec<_>>(), a.keys().collect::<Vec<_>>());
    for (t, rows) in &g {
        assert!(rows == &a[t], "table {t} differs");
    }
    assert!(g["feed"].len() > 50 && !g["quarantine"].is_empty());
}

/// The incremental statistics, built before the pushes, equal a rebuild after them.
fn assert_stats_follow(cache: &StatsCache, b: &Arc<SqliteBackend>) {
    let b: Arc<Backend> = b.clone();
    let c = cache.check(&b).unwrap();
    assert!(c.equal, "{:?}", c.difference);
    assert!(!c.rebuilt, "the statistics followed the journal");
}

/// `n` devices' scripts and two copies of their database: one for the pushes one at a time,
/// one for the groups (with the rows that differ at open), and statistics built on the
/// second before any push.
#[allow(clippy::type_complexity)]
fn two_copies(
    n: usize,
) -> (
    tempfile::TempDir,
    Vec<Device>,
    Arc<SqliteBackend>,
    Arc<SqliteBackend>,
    Vec<String>,
    StatsCache,
) {
    let dir = tempfile::tempdir().unwrap();
    let (template, devices) = prepare(dir.path(), n);
    let alone = copy(&template, &dir.path().join("alone.db"));
    let grouped = copy(&template, &dir.path().join("grouped.db"));
    let skip = differing_at_open(&grouped, &alone);
    let cache = StatsCache::new(0);
    let dyn_grouped: Arc<Backend> = grouped.clone();
    cache.refresh(&dyn_grouped).unwrap();
    (dir, devices, alone, grouped, skip, cache)
}

#[test]
fn pushes_held_up_behind_the_store_form_groups_in_arrival_order() {
    let (_dir, devices, alone, grouped, skip, cache) = two_copies(6);

    // The pushes in one order: each device's steps in turn, round after round, so that one
    // device's consecutive pushes and duplicates meet in a group. Revocations are done between
    // groups (they wait for the store), the pushes around them held up in groups.
    let rounds = devices.iter().map(|d| d.steps.len()).max().unwrap();
    let mut order: Vec<(usize, Step)> = Vec::new();
    for r in 0..rounds {
        for (i, d) in devices.iter().enumerate() {
            if let Some(s) = d.steps.get(r) {
                order.push((i, s.clone()));
            }
        }
    }
    let expected: Vec<String> = order
        .iter()
        .map(|(i, s)| run(&alone, &devices[*i], s))
        .collect();
    assert!(
        expected.iter().any(|a| a.contains("device revoked")),
        "{expected:?}"
    );
    assert!(expected.iter().any(|a| a.contains("operation counter 0")));
    assert!(expected.iter().any(|a| a.contains("out_of_scope")));
    assert!(
        expected.iter().any(|a| a.contains("clock_ahead")),
        "{expected:#?}"
    );
    assert!(expected.iter().any(|a| a.contains("foreign_replica")));

    let mut got = vec![String::new(); order.len()];
    let mut k = 0;
    while k < order.len() {
        if let (i, Step::Revoke(_)) = &order[k] {
            got[k] = run(&grouped, &devices[*i], &order[k].1);
            k += 1;
            continue;
        }
        // Hold the store while the pushes up to the next revocation queue up, one after
        // another in this order.
        let end = (k..order.len())
            .find(|j| matches!(order[*j].1, Step::Revoke(_)))
            .unwrap_or(order.len());
        let answers = std::thread::scope(|scope| {
            let handles = grouped
                .hold_store(|| {
                    let mut handles = Vec::new();
                    for (i, step) in &order[k..end] {
                        let before = grouped.pushes_queued();
                        let (b, dev) = (&grouped, &devices[*i]);
                        handles.push(scope.spawn(move || run(b, dev, step)));
                        while grouped.pushes_queued() == before {
                            std::thread::yield_now();
                        }
                    }
                    handles
                })
                .unwrap();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        got[k..end].clone_from_slice(&answers);
        k = end;
    }
    assert_eq!(got, expected);
    let (groups, pushes) = grouped.push_groups();
    assert!(
        groups >= 2 && pushes >= 10,
        "{groups} groups, {pushes} pushes"
    );
    assert_stats_follow(&cache, &grouped);
    assert_same_state(&grouped, &alone, &skip, false);
}

#[test]
fn pushes_from_eight_threads_answer_and_store_as_one_at_a_time() {
    let (_dir, devices, alone, grouped, skip, cache) = two_copies(24);

    let expected: Vec<Vec<String>> = devices
        .iter()
        .map(|d| d.steps.iter().map(|s| run(&alone, d, s)).collect())
        .collect();
    assert!(expected
        .concat()
        .iter()
        .any(|a| a.contains("device revoked")));

    const THREADS: usize = 8;
    let mut got: Vec<Vec<String>> = vec![Vec::new(); devices.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (b, devices) = (&grouped, &devices);
                scope.spawn(move || {
                    // This thread's devices, their steps interleaved.
                    let mine: Vec<usize> = (t..devices.len()).step_by(THREADS).collect();
                    let mut out: Vec<(usize, Vec<String>)> =
                        mine.iter().map(|i| (*i, Vec::new())).collect();
                    let rounds = devices.iter().map(|d| d.steps.len()).max().unwrap();
                    for r in 0..rounds {
                        for (i, answers) in out.iter_mut() {
                            if let Some(s) = devices[*i].steps.get(r) {
                                answers.push(run(b, &devices[*i], s));
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            for (i, answers) in h.join().unwrap() {
                got[i] = answers;
            }
        }
    });
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "device {i}");
    }
    let (groups, pushes) = grouped.push_groups();
    eprintln!("{groups} groups of {pushes} pushes");
    assert!(groups > 0, "pushes from 8 threads formed no group");
    assert_stats_follow(&cache, &grouped);
    assert_same_state(&grouped, &alone, &skip, true);
}

/// A device's token check does not wait for the writer: while the store is held (a group
/// being applied), a request is authenticated on a connection of its own and can join the
/// queue; a revocation committed before is seen at once.
#[test]
fn a_token_check_does_not_wait_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let t0 = t0();
    let b = Arc::new(SqliteBackend::open(dir.path().join("server.db")).unwrap());
    b.import_ops("test", &w.ops, t0).unwrap();
    let code = b
        .issue_enrol_code("test", w.officers[0], 60, t0)
        .unwrap()
        .code;
    let e = b
        .enrol(
            Enrolment {
                code,
                device_name: "máy".into(),
                replica: Uuid::now_v7(),
                device_time_ms: t0,
                public_key: None,
            },
            t0,
        )
        .unwrap();
    let seen = b
        .hold_store(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (b2, token) = (b.clone(), e.token.clone());
            std::thread::spawn(move || tx.send(b2.authenticate_device(&token)).unwrap());
            rx.recv_timeout(std::time::Duration::from_secs(5))
                .expect("the token check waited for the writer")
        })
        .unwrap()
        .unwrap()
        .expect("the token is known");
    assert_eq!(seen.device_id, e.device_id);
    assert!(b.revoke_device("test", e.device_id, t0 + 1).unwrap());
    assert!(b.authenticate_device(&e.token).unwrap().is_none());
}
