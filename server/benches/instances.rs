//! Several PostgreSQL instances pushing at once: how the feed lock (ADR 0006) shares the
//! writes out. For 1, 2 and 4 instances on one database (each a `PgBackend` with its own
//! connection pool and view, in this process), 8 devices push batches of 200 visits
//! concurrently, each through instance `device % instances`, for a fixed number of batches.
//! Prints operations per second for all of them together, each push's p50/p95 latency, and
//! the share of push time spent waiting for the feed lock (`doorstep_feed_lock_wait_seconds_total`).
//!
//! PostgreSQL only: the cluster named by `DOORSTEP_BENCH_DATABASE_URL` (`scripts/bench.sh
//! instances` starts one with `fsync` on). Writes Markdown to stdout. `--quick`: fewer
//! batches, a smoke test.

use doorstep_core::{
    Hlc, HouseholdInput, Op, OpBody, Options, ReplicaId, Role, Store, UnitInput, UnitLevel,
    VersionVector, Visit, VisitOutcome,
};
use doorstep_server::backend::{DeviceAuth, Enrolment, CLI_ACTOR};
use doorstep_server::pg::{feed_lock_stats, testing, ViewOptions};
use doorstep_server::PgBackend;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

const DEVICES: usize = 8;
const BATCH: usize = 200;

fn now_ms() -> i64 {
    doorstep_server::now_ms()
}

fn seed() -> (Vec<Op>, Vec<String>, Vec<Uuid>) {
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    for (code, parent, level) in [
        ("58", None, UnitLevel::Province),
        ("586", Some("58"), UnitLevel::District),
        ("22813", Some("586"), UnitLevel::Commune),
    ] {
        s.put_unit(UnitInput {
            code: code.into(),
            parent_code: parent.map(Into::into),
            level,
            kind: "xã".into(),
            name: format!("Đơn vị {code}"),
        })
        .unwrap();
    }
    let mut villages = Vec::new();
    let mut households = Vec::new();
    for v in 1..=20 {
        let code = format!("22813-{v:02}");
        s.put_unit(UnitInput {
            code: code.clone(),
            parent_code: Some("22813".into()),
            level: UnitLevel::Village,
            kind: "thôn".into(),
            name: format!("Thôn {v}"),
        })
        .unwrap();
        for h in 0..50 {
            let id = Uuid::now_v7();
            s.put_household(HouseholdInput {
                id,
                code: format!("H{v}-{h}"),
                village_code: code.clone(),
                address: None,
                head_id: None,
            })
            .unwrap();
            households.push(id);
        }
        villages.push(code);
    }
    (
        s.all_ops_since(&VersionVector::default()).unwrap(),
        villages,
        households,
    )
}

fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let batches_per_device = if quick { 5 } else { 40 };
    let Ok(base) = std::env::var("DOORSTEP_BENCH_DATABASE_URL") else {
        eprintln!("instances: DOORSTEP_BENCH_DATABASE_URL is not set (scripts/bench.sh instances starts a cluster)");
        std::process::exit(1);
    };
    let (ops, villages, households) = seed();
    let households = Arc::new(households);
    let mut rows = Vec::new();
    for instances in [1usize, 2, 4] {
        let url = testing::fresh_database(&base).expect("create the bench database");
        let dir = tempfile::tempdir().unwrap();
        let backends: Vec<Arc<PgBackend>> = (0..instances)
            .map(|i| {
                Arc::new(
                    PgBackend::open(
                        &url,
                        ViewOptions {
                            path: Some(dir.path().join(format!("view-{i}.db"))),
                            ..Default::default()
                        },
                    )
                    .unwrap(),
                )
            })
            .collect();
        let first = &backends[0];
        first.import_ops(CLI_ACTOR, &ops, now_ms()).unwrap();
        let officer = first
            .add_officer(CLI_ACTOR, "Cán bộ", Role::CommuneLead, "22813", now_ms())
            .unwrap();
        for v in &villages {
            first
                .assign_village(CLI_ACTOR, officer, v, now_ms())
                .unwrap();
        }
        let devices: Vec<DeviceAuth> = (0..DEVICES)
            .map(|i| {
                let code = first
                    .issue_enrol_code(CLI_ACTOR, officer, 60, now_ms())
                    .unwrap()
                    .code;
                let e = first
                    .enrol(
                        Enrolment {
                            code,
                            device_name: format!("máy {i}"),
                            replica: Uuid::new_v4(),
                            device_time_ms: now_ms(),
                            public_key: None,
                        },
                        now_ms(),
                    )
                    .unwrap();
                first.authenticate_device(&e.token).unwrap().unwrap()
            })
            .collect();
        // Every instance's view caught up before the clock starts.
        for b in &backends {
            b.gauges().unwrap();
            b.with_view(|_| ()).unwrap();
        }
        let (taken0, wait0) = feed_lock_stats();
        let started = Instant::now();
        let threads: Vec<_> = devices
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let b = backends[i % instances].clone();
                let households = households.clone();
                std::thread::spawn(move || {
                    let mut lat = Vec::new();
                    let mut counter = 0u64;
                    for _ in 0..batches_per_device {
                        let now = now_ms() as u64;
                        let batch: Vec<Op> = (0..BATCH)
                            .map(|k| {
                                counter += 1;
                                Op {
                                    replica: ReplicaId(d.replica),
                                    counter,
                                    hlc: Hlc::new(now, k as u16),
                                    body: OpBody::Visit(Visit {
                                        id: Uuid::now_v7(),
                                        household_id: households
                                            [(counter as usize * 13 + i) % households.len()],
                                        officer_id: d.officer_id,
                                        at_ms: now as i64,
                                        outcome: VisitOutcome::Met,
                                        revisit_at_ms: None,
                                        note: None,
                                        location: None,
                                    }),
                                }
                            })
                            .collect();
                        let t = Instant::now();
                        let r = b.push(&d, batch, now_ms(), now_ms()).unwrap();
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        assert_eq!(r.applied as usize, BATCH);
                    }
                    lat
                })
            })
            .collect();
        let mut lat: Vec<f64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let wall = started.elapsed().as_secs_f64();
        let (taken1, wait1) = feed_lock_stats();
        let push_time: f64 = lat.iter().sum::<f64>() / 1000.0;
        let waited = (wait1 - wait0) as f64 / 1e9;
        let total_ops = DEVICES * batches_per_device * BATCH;
        let row = (
            instances,
            total_ops as f64 / wall,
            percentile(&mut lat, 0.5),
            percentile(&mut lat, 0.95),
            waited / push_time,
            taken1 - taken0,
        );
        eprintln!(
            "{instances} instance(s): {:.0} ops/s, push p50 {:.0} ms p95 {:.0} ms, {:.0} % of push time waiting for the feed lock ({} acquisitions)",
            row.1,
            row.2,
            row.3,
            row.4 * 100.0,
            row.5
        );
        rows.push(row);
    }
    println!("## Several PostgreSQL instances pushing at once\n");
    println!(
        "Generated by `server/benches/instances.rs`{} (`scripts/bench.sh instances`). {DEVICES} \
         devices push {batches_per_device} batches of {BATCH} visits each, all at once, device \
         *i* through instance *i* mod *n*; every instance is a `PgBackend` with its own \
         connection pool and view in one process, on one PostgreSQL 15 database (`fsync` on, \
         same disk, loopback). *Lock wait*: the share of the pushes' time spent waiting for \
         the feed lock (ADR 0006). All instances share this machine's 2 cores, so the figures \
         show how the lock serialises pushes, not what more machines would add.\n",
        if quick {
            " with `--quick` (not for the record)"
        } else {
            ""
        }
    );
    println!("| instances | ops/s (all devices) | push p50 ms | push p95 ms | lock wait | lock acquisitions |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (n, ops, p50, p95, wait, taken) in rows {
        println!(
            "| {n} | {ops:.0} | {p50:.0} | {p95:.0} | {:.0} % | {taken} |",
            wait * 100.0
        );
    }
    println!();
}
