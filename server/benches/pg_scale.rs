//! Scale: the SQLite and PostgreSQL backends side by side, in-process through the `Backend`
//! trait (no HTTP, so the storage is what is measured), at growing feed sizes.
//!
//! - **ingest**: devices push batches of 500 visits (scope-checked, filed in the feed,
//!   acknowledged: the whole push path), round-robin, until the feed reaches each size;
//!   operations per second over that step.
//! - **tail pull**: a device that is up to date pulls the next 500 operations (what a device
//!   syncing every few minutes does); median and p90 latency of 15 pulls.
//! - **first pull page**: a new device's first page of 1,000 operations (cursor at the start).
//!
//! Both on files in a temporary directory: SQLite with `synchronous=FULL` (as `doorstep
//! serve` opens it), PostgreSQL with its defaults (`fsync` and `synchronous_commit` on) in
//! the cluster named by `DOORSTEP_BENCH_DATABASE_URL` (`scripts/bench.sh postgres` starts
//! one). Prints Markdown on stdout. `--quick`: small sizes, a smoke test.

use doorstep_core::{
    Hlc, HouseholdInput, Op, OpBody, Options, ReplicaId, Role, Store, UnitInput, UnitLevel, Visit,
    VisitOutcome,
};
use doorstep_server::backend::{Backend, DeviceAuth, Enrolment, CLI_ACTOR};
use doorstep_server::pg::{testing, ViewOptions};
use doorstep_server::{PgBackend, SqliteBackend};
use std::time::{Duration, Instant};
use uuid::Uuid;

const VILLAGES: usize = 20;
const HOUSEHOLDS_PER_VILLAGE: usize = 50;
const DEVICES: usize = 20;
const BATCH: usize = 500;

fn now_ms() -> i64 {
    doorstep_server::now_ms()
}

/// Units, an officer's households, made by a station store.
fn seed() -> (Vec<Op>, Vec<String>, Vec<Uuid>) {
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    let units = [
        ("58", None, UnitLevel::Province),
        ("586", Some("58"), UnitLevel::District),
        ("22813", Some("586"), UnitLevel::Commune),
    ];
    for (code, parent, level) in units {
        s.put_unit(UnitInput {
            code: code.into(),
            parent_code: parent.map(Into::into),
            level,
            kind: "xã".into(),
            name: format!("Đơn vị {code}"),
        })
        .unwrap();
    }
    let villages: Vec<String> = (1..=VILLAGES).map(|v| format!("22813-{v:02}")).collect();
    let mut households = Vec::new();
    for v in &villages {
        s.put_unit(UnitInput {
            code: v.clone(),
            parent_code: Some("22813".into()),
            level: UnitLevel::Village,
            kind: "thôn".into(),
            name: format!("Thôn {v}"),
        })
        .unwrap();
        for h in 0..HOUSEHOLDS_PER_VILLAGE {
            let id = Uuid::now_v7();
            s.put_household(HouseholdInput {
                id,
                code: format!("H{v}-{h}"),
                village_code: v.clone(),
                address: None,
                head_id: None,
            })
            .unwrap();
            households.push(id);
        }
    }
    let ops = s
        .all_ops_since(&doorstep_core::VersionVector::default())
        .unwrap();
    (ops, villages, households)
}

struct Bench {
    name: &'static str,
    backend: Box<dyn Backend>,
    devices: Vec<DeviceAuth>,
    counters: Vec<u64>,
    officer: Uuid,
    feed: usize,
}

fn prepare(
    name: &'static str,
    backend: Box<dyn Backend>,
    seed_ops: &[Op],
    villages: &[String],
) -> Bench {
    let now = now_ms();
    backend.import_ops(CLI_ACTOR, seed_ops, now).unwrap();
    let officer = backend
        .add_officer(CLI_ACTOR, "Cán bộ", Role::CommuneLead, "22813", now)
        .unwrap();
    for v in villages {
        backend.assign_village(CLI_ACTOR, officer, v, now).unwrap();
    }
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        let code = backend
            .issue_enrol_code(CLI_ACTOR, officer, 60, now)
            .unwrap()
            .code;
        let e = backend
            .enrol(
                Enrolment {
                    code,
                    device_name: format!("máy {i}"),
                    replica: Uuid::new_v4(),
                    device_time_ms: now,
                },
                now,
            )
            .unwrap();
        devices.push(backend.authenticate_device(&e.token).unwrap().unwrap());
    }
    let feed = backend.gauges().unwrap().feed_rows as usize;
    Bench {
        name,
        backend,
        counters: vec![0; devices.len()],
        devices,
        officer,
        feed,
    }
}

fn visits(b: &mut Bench, device: usize, households: &[Uuid], n: usize) -> Vec<Op> {
    let now = now_ms() as u64;
    (0..n)
        .map(|i| {
            b.counters[device] += 1;
            let c = b.counters[device];
            Op {
                replica: ReplicaId(b.devices[device].replica),
                counter: c,
                hlc: Hlc::new(now, i as u16),
                body: OpBody::Visit(Visit {
                    id: Uuid::now_v7(),
                    household_id: households[(c as usize * 7 + device) % households.len()],
                    officer_id: b.officer,
                    at_ms: now as i64,
                    outcome: VisitOutcome::ALL[c as usize % VisitOutcome::ALL.len()],
                    revisit_at_ms: None,
                    note: None,
                    location: None,
                }),
            }
        })
        .collect()
}

fn percentile(xs: &mut [Duration], p: f64) -> Duration {
    xs.sort();
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Rows: (size, ingest ops/s, tail p50, tail p90, first-page p50).
fn run(
    b: &mut Bench,
    households: &[Uuid],
    sizes: &[usize],
) -> Vec<(usize, f64, Duration, Duration, Duration)> {
    let mut rows = Vec::new();
    let mut next_device = 0;
    // A reader that stays up to date: its cursor after the last pull.
    let reader = b.devices[DEVICES - 1].clone();
    let mut tail_cursor: Option<String> = None;
    loop {
        let page = b
            .backend
            .pull(&reader, tail_cursor.as_deref(), 1000, now_ms(), now_ms())
            .unwrap();
        tail_cursor = Some(page.cursor);
        if !page.has_more {
            break;
        }
    }
    for &size in sizes {
        let started = Instant::now();
        let before = b.feed;
        while b.feed < size {
            let d = next_device % (DEVICES - 1);
            next_device += 1;
            let ops = visits(b, d, households, BATCH);
            let r = b
                .backend
                .push(&b.devices[d].clone(), ops, now_ms(), now_ms())
                .unwrap();
            assert_eq!(r.applied as usize, BATCH, "{r:?}");
            b.feed += BATCH;
        }
        let ingest = (b.feed - before) as f64 / started.elapsed().as_secs_f64();
        // Catch the reader up, then time pulls of the next 500 operations each.
        loop {
            let page = b
                .backend
                .pull(&reader, tail_cursor.as_deref(), 1000, now_ms(), now_ms())
                .unwrap();
            tail_cursor = Some(page.cursor);
            if !page.has_more {
                break;
            }
        }
        let mut tail = Vec::new();
        for _ in 0..15 {
            let d = next_device % (DEVICES - 1);
            next_device += 1;
            let ops = visits(b, d, households, BATCH);
            b.backend
                .push(&b.devices[d].clone(), ops, now_ms(), now_ms())
                .unwrap();
            b.feed += BATCH;
            let t = Instant::now();
            let page = b
                .backend
                .pull(&reader, tail_cursor.as_deref(), 1000, now_ms(), now_ms())
                .unwrap();
            tail.push(t.elapsed());
            assert_eq!(page.ops.len(), BATCH);
            tail_cursor = Some(page.cursor);
        }
        let mut first = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let page = b
                .backend
                .pull(&b.devices[0], None, 1000, now_ms(), now_ms())
                .unwrap();
            first.push(t.elapsed());
            assert_eq!(page.ops.len(), 1000);
        }
        let p50 = percentile(&mut tail, 0.5);
        let p90 = percentile(&mut tail, 0.9);
        let f50 = percentile(&mut first, 0.5);
        eprintln!(
            "{}: feed {} ingest {:.0} ops/s tail {} / {} ms first page {} ms",
            b.name,
            b.feed,
            ingest,
            ms(p50),
            ms(p90),
            ms(f50)
        );
        rows.push((b.feed, ingest, p50, p90, f50));
    }
    rows
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[5_000, 15_000]
    } else {
        &[20_000, 100_000, 250_000]
    };
    let (seed_ops, villages, households) = seed();
    let dir = tempfile::tempdir().unwrap();
    let mut benches = vec![prepare(
        "SQLite",
        Box::new(SqliteBackend::open(dir.path().join("server.db")).unwrap()),
        &seed_ops,
        &villages,
    )];
    let pg_url = std::env::var("DOORSTEP_BENCH_DATABASE_URL").ok();
    let mut db_url = None;
    match &pg_url {
        Some(base) => {
            let url = testing::fresh_database(base).expect("create the bench database");
            db_url = Some(url.clone());
            let b = PgBackend::open(
                &url,
                ViewOptions {
                    path: Some(dir.path().join("view.db")),
                },
            )
            .unwrap();
            benches.push(prepare("PostgreSQL", Box::new(b), &seed_ops, &villages));
        }
        None => eprintln!("DOORSTEP_BENCH_DATABASE_URL not set: PostgreSQL not measured"),
    }
    let mut results = Vec::new();
    for b in benches.iter_mut() {
        results.push((b.name, run(b, &households, sizes)));
    }
    // What a new instance (or a console command) pays before it serves: building its view
    // from the whole feed.
    let rebuild = db_url.map(|url| {
        let t = Instant::now();
        let b = PgBackend::open(
            &url,
            ViewOptions {
                path: Some(dir.path().join("rebuilt-view.db")),
            },
        )
        .unwrap();
        let took = t.elapsed();
        let rows = b.gauges().unwrap().feed_rows;
        (rows, took)
    });
    println!("## PostgreSQL and SQLite backends at scale");
    println!();
    println!(
        "In-process through the `Backend` trait (no HTTP), one instance, {DEVICES} devices of one \
         commune lead ({VILLAGES} villages, {} households) pushing batches of {BATCH} visits \
         round-robin, one writer at a time. *ingest*: operations per second of the whole push \
         path (scope check, feed, acknowledgement, commit) while the feed grows to the size; \
         *tail pull*: an up-to-date device pulls the next {BATCH} operations (15 pulls); *first \
         page*: a new device's first 1,000. SQLite `synchronous=FULL`; PostgreSQL 15 with \
         `fsync` and `synchronous_commit` on, on the same disk, over loopback TCP. \
         Generated by `server/benches/pg_scale.rs`{}.",
        VILLAGES * HOUSEHOLDS_PER_VILLAGE,
        if quick {
            " with `--quick` (not for the record)"
        } else {
            ""
        }
    );
    println!();
    println!("| backend | feed rows after the step | ingest ops/s | tail pull p50 / p90 ms | first page p50 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, rows) in &results {
        for (size, ingest, p50, p90, f50) in rows {
            println!(
                "| {name} | {size} | {ingest:.0} | {} / {} | {} |",
                ms(*p50),
                ms(*p90),
                ms(*f50)
            );
        }
    }
    println!();
    if let Some((rows, took)) = rebuild {
        println!(
            "A new PostgreSQL instance's view, built from the whole feed ({rows} operations) at \
             start-up: {:.1} s ({:.0} operations/s).",
            took.as_secs_f64(),
            rows as f64 / took.as_secs_f64()
        );
        println!();
    }
}
