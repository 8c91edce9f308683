//! How long a new PostgreSQL instance takes to serve at province scale (#15; `scripts/bench-pg-start.sh`).
//!
//! A fresh database (`DOORSTEP_BENCH_DATABASE_URL`, e.g. `scripts/pg.sh url`) is filed with
//! every operation of the dashboard benchmark's province store (Ninh Thuận's 319,284
//! residents and the whole campaign, `target/bench-dashboard`, built by `cargo bench -p
//! doorstep-server --bench dashboard`) through `import_ops`. Then, in the same run: a new
//! instance that rebuilds its view from the whole feed (the baseline: what every new instance
//! did before), the publication of a snapshot of the view (`doorstep view publish`), and new
//! instances seeded from it (`PgBackend::open` returns once the view is caught up, which is
//! when `serve` starts answering). Prints a Markdown fragment (docs/bench/pg-start.md).

use doorstep_core::Op;
use doorstep_server::backend::CLI_ACTOR;
use doorstep_server::pg::{testing, ViewOptions};
use doorstep_server::PgBackend;
use std::path::{Path, PathBuf};
use std::time::Instant;

const CHUNK: usize = 20_000;

fn open(url: &str, view: &Path, no_snapshot: bool) -> PgBackend {
    PgBackend::open(
        url,
        ViewOptions {
            path: Some(view.to_path_buf()),
            no_snapshot,
            ..Default::default()
        },
    )
    .unwrap()
}

fn main() {
    let Ok(base) = std::env::var("DOORSTEP_BENCH_DATABASE_URL") else {
        eprintln!("set DOORSTEP_BENCH_DATABASE_URL (scripts/pg.sh start; scripts/pg.sh url)");
        std::process::exit(2);
    };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let mut stores: Vec<PathBuf> = std::fs::read_dir(target.join("bench-dashboard"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "db"))
                .collect()
        })
        .unwrap_or_default();
    stores.sort();
    let Some(store) = stores.pop() else {
        eprintln!(
            "no province store: run `cargo bench -p doorstep-server --bench dashboard` first"
        );
        std::process::exit(2);
    };
    let dir = tempfile::Builder::new()
        .prefix("doorstep-bench-pg-start-")
        .tempdir()
        .unwrap();
    let url = testing::fresh_database(&base).expect("create the bench database");
    let a = open(&url, &dir.path().join("a.db"), true);

    // File the province.
    let t = Instant::now();
    let mut filed = 0u64;
    {
        let conn = rusqlite::Connection::open_with_flags(
            &store,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut st = conn
            .prepare("SELECT replica, counter, hlc, body FROM oplog ORDER BY replica, counter")
            .unwrap();
        let mut rows = st.query([]).unwrap();
        let mut chunk: Vec<Op> = Vec::with_capacity(CHUNK);
        let mut flush = |chunk: &mut Vec<Op>| {
            a.import_ops(CLI_ACTOR, chunk, doorstep_server::now_ms())
                .unwrap();
            filed += chunk.len() as u64;
            chunk.clear();
            if filed % 400_000 < CHUNK as u64 {
                eprintln!(
                    "filed {filed} operations ({:.0} s)",
                    t.elapsed().as_secs_f64()
                );
            }
        };
        while let Some(r) = rows.next().unwrap() {
            let replica: Vec<u8> = r.get(0).unwrap();
            let body: Vec<u8> = r.get(3).unwrap();
            chunk
                .push(Op::from_log(&replica, r.get(1).unwrap(), r.get(2).unwrap(), &body).unwrap());
            if chunk.len() == CHUNK {
                flush(&mut chunk);
            }
        }
        if !chunk.is_empty() {
            flush(&mut chunk);
        }
    }
    let load_s = t.elapsed().as_secs_f64();
    eprintln!("filed {filed} operations in {load_s:.0} s");

    // Baseline: a new instance that replays the whole feed.
    let t = Instant::now();
    let rebuilt = open(&url, &dir.path().join("rebuilt.db"), true);
    let rebuild_s = t.elapsed().as_secs_f64();
    let feed_rows = rebuilt.gauges().unwrap().feed_rows;
    drop(rebuilt);
    eprintln!("rebuilt from the feed in {rebuild_s:.1} s");

    // The snapshot.
    let t = Instant::now();
    let line = a.publish_view(true).unwrap();
    let publish_s = t.elapsed().as_secs_f64();
    eprintln!("{line}");
    drop(a);

    // New instances seeded from it.
    let mut seeded: Vec<f64> = Vec::new();
    for i in 0..3 {
        let view = dir.path().join(format!("seeded-{i}.db"));
        let t = Instant::now();
        let b = open(&url, &view, false);
        seeded.push(t.elapsed().as_secs_f64());
        assert!(b.seeded_at().is_some(), "not seeded from the snapshot");
        drop(b);
        for s in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{s}", view.display()));
        }
        eprintln!("seeded start {i}: {:.1} s", seeded[i]);
    }
    let mut sorted = seeded.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];

    println!("## A new PostgreSQL instance at province scale (issue #15)\n");
    println!(
        "Generated by `server/benches/pg_start.rs` (`scripts/bench-pg-start.sh`): a fresh \
         PostgreSQL 15 database (`fsync` on, loopback, same disk) filed with the dashboard \
         benchmark's province store through `import_ops` ({filed} operations in {load_s:.0} s; \
         {feed_rows} feed rows). A new instance is `PgBackend::open` with no view of its own, \
         timed until it returns with its view caught up (then `serve` answers). Baseline, same \
         run: a new instance that replays the whole feed, as every new instance did before \
         view snapshots.\n"
    );
    println!("| how a new instance gets its view | seconds | ratio to the replay |");
    println!("| --- | ---: | ---: |");
    println!("| replays the whole feed (baseline) | {rebuild_s:.1} | 1 |");
    println!(
        "| from the database's snapshot, median of {} ({}) | {median:.1} | {:.2}× |",
        seeded.len(),
        seeded
            .iter()
            .map(|s| format!("{s:.1}"))
            .collect::<Vec<_>>()
            .join(" / "),
        median / rebuild_s
    );
    println!(
        "\nPublishing the snapshot (`doorstep view publish`, while the instance keeps \
         serving): {publish_s:.1} s; {line}."
    );
    // The summary row of docs/benchmarks.md (scripts/bench-pg-start.sh moves it to the .rows).
    println!(
        "ROW| A new PostgreSQL instance serving, Ninh Thuận's {filed} operations | < 10 s | {median:.1} s from the view's snapshot (median of {}) | {:.2}× the feed's replay ({rebuild_s:.1} s) | {} |",
        seeded.len(),
        median / rebuild_s,
        if median < 10.0 { "yes" } else { "**no**" }
    );
}
