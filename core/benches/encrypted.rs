//! The encrypted store against the unencrypted one, in the same run and with the same settings
//! (issue #13, ADR 0008): one visit as its own durable transaction, 100,000 operations applied
//! as a sync applies them (pages of 1,000), and opening a 20,000-resident store.
//!
//! Run with `cargo bench -p doorstep-core --bench encrypted -- [--quick]`;
//! `scripts/bench-encrypted.sh` runs it and writes the fragment `docs/bench/encrypted-store.md`
//! (and `.rows`, the summary rows) that `scripts/bench.sh` puts into `docs/benchmarks.md`.
//!
//! Output on stdout: Markdown, then `SUMMARY<TAB>what<TAB>goal<TAB>measured<TAB>ratio<TAB>met`
//! lines. Every store is a file in a temporary directory (fsync is real); statistics are
//! medians and percentiles.

#[path = "../tests/common/mod.rs"]
mod common;

use doorstep_core::*;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

const KEY: [u8; 32] = [0x42; 32];

fn key() -> StoreKey {
    StoreKey::new(KEY)
}

fn open(path: &Path, encrypted: bool, options: Options) -> Store {
    if encrypted {
        Store::open_encrypted(path, &key(), options).expect("open encrypted")
    } else {
        Store::open(path, options).expect("open")
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

struct Summary(Vec<String>);

impl Summary {
    fn row(&mut self, what: &str, goal: &str, measured: String, ratio: String, met: bool) {
        self.0.push(format!(
            "SUMMARY\t{what}\t{goal}\t{measured}\t{ratio}\t{}",
            if met { "yes" } else { "**no**" }
        ));
    }
}

/// 1. One visit per durable transaction (synchronous=FULL, the default), alternating between
///    the two stores so that both see the same disk.
fn bench_visit(dir: &Path, quick: bool, sum: &mut Summary) {
    let n = if quick { 60 } else { 400 };
    let clock = common::clock();
    let mut stores: Vec<(Store, common::World)> = [false, true]
        .iter()
        .map(|&enc| {
            let mut s = open(
                &dir.join(format!("visit-{enc}.db")),
                enc,
                common::options(&clock),
            );
            let w = common::populate(&mut s);
            (s, w)
        })
        .collect();
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for i in 0..n + 20 {
        for (k, (store, w)) in stores.iter_mut().enumerate() {
            clock.advance(30_000);
            let v = NewVisit {
                household_id: w.households[i % w.households.len()],
                officer_id: w.officer,
                at_ms: None,
                outcome: VisitOutcome::Met,
                revisit_at_ms: None,
                note: Some(format!("lần thăm {i}")),
                location: None,
            };
            let t = Instant::now();
            store.record_visit(v).expect("visit");
            if i >= 20 {
                times[k].push(t.elapsed()); // the first 20 warm the caches
            }
        }
    }
    for t in &mut times {
        t.sort();
    }
    let (p50, e50) = (pct(&times[0], 0.5), pct(&times[1], 0.5));
    let (p99, e99) = (pct(&times[0], 0.99), pct(&times[1], 0.99));
    println!("## 1. Record one visit, its own durable transaction (synchronous=FULL)\n");
    println!("{n} visits into each store, alternating, after 20 warm-up visits each.\n");
    println!("| store | median | p99 |\n| --- | --- | --- |");
    println!("| unencrypted | {} | {} |", ms(p50), ms(p99));
    println!("| encrypted | {} | {} |", ms(e50), ms(e99));
    println!(
        "| ratio | {:.2}× | {:.2}× |\n",
        ratio(e50, p50),
        ratio(e99, p99)
    );
    let r50 = ratio(e50, p50);
    let r99 = ratio(e99, p99);
    sum.row(
        "Encrypted store: one visit, median, vs unencrypted",
        "≤ 1.3×",
        format!("{} vs {}", ms(e50), ms(p50)),
        format!("{r50:.2}×"),
        r50 <= 1.3,
    );
    sum.row(
        "Encrypted store: one visit, p99, vs unencrypted",
        "≤ 1.3×",
        format!("{} vs {}", ms(e99), ms(p99)),
        format!("{r99:.2}×"),
        r99 <= 1.3,
    );
}

/// Operations made on an in-memory replica: its reference data, then `n` writes (visits and
/// resident phone edits).
fn make_ops(n: usize) -> Vec<Op> {
    let clock = common::clock();
    let mut src = Store::open_in_memory(common::options(&clock)).expect("source");
    let w = common::populate(&mut src);
    for i in 0..n {
        clock.advance(1_000);
        if i % 10 < 7 {
            src.record_visit(NewVisit {
                household_id: w.households[i % w.households.len()],
                officer_id: w.officer,
                at_ms: None,
                outcome: [
                    VisitOutcome::Met,
                    VisitOutcome::NobodyHome,
                    VisitOutcome::Refused,
                ][i % 3],
                revisit_at_ms: None,
                note: (i % 3 == 0).then(|| format!("ghi chú {i}")),
                location: None,
            })
            .expect("visit");
        } else {
            src.edit_resident(
                w.residents[i % w.residents.len()],
                ResidentEdit {
                    phone: Some(Some(format!("0912{:06}", i % 1_000_000))),
                    note: None,
                },
            )
            .expect("edit");
        }
    }
    src.all_ops_since(&VersionVector::default()).expect("ops")
}

/// 2. Apply 100,000 operations in pages of 1,000 (what a sync does), each page one transaction.
fn bench_apply(dir: &Path, quick: bool, sum: &mut Summary) {
    let n = if quick { 10_000 } else { 100_000 };
    let ops = make_ops(n);
    let clock = common::clock();
    let mut took = [Duration::ZERO; 2];
    // Twice each, alternating; the better of the two (the disk's noise is one-sided).
    for round in 0..2 {
        for (k, enc) in [false, true].into_iter().enumerate() {
            let path = dir.join(format!("apply-{enc}-{round}.db"));
            let mut s = open(&path, enc, common::options(&clock));
            let t = Instant::now();
            for page in ops.chunks(1_000) {
                s.apply_ops(page).expect("apply");
            }
            // The log folded into the main file, inside the timing: a run that checkpointed
            // less than another is not cheaper, only deferred.
            assert!(s.checkpoint().expect("checkpoint"));
            let d = t.elapsed();
            took[k] = if round == 0 { d } else { took[k].min(d) };
        }
    }
    let r = ratio(took[1], took[0]);
    println!("## 2. Apply {} operations (pages of 1,000)\n", ops.len());
    println!(
        "Operations of one replica (70 % visits, 30 % phone edits, and its reference data), \
         applied to a new store in pages of 1,000, one transaction each, then the log folded \
         into the main file (`wal_checkpoint(TRUNCATE)`, timed too: a checkpoint deferred is \
         not a checkpoint saved); best of two runs.\n"
    );
    println!("| store | total | per operation |\n| --- | --- | --- |");
    for (label, d) in [("unencrypted", took[0]), ("encrypted", took[1])] {
        println!(
            "| {label} | {:.2} s | {:.1} µs |",
            d.as_secs_f64(),
            d.as_secs_f64() * 1e6 / ops.len() as f64
        );
    }
    println!("| ratio | {r:.2}× | |\n");
    sum.row(
        &format!(
            "Encrypted store: apply {} operations vs unencrypted",
            ops.len()
        ),
        "≤ 1.3×",
        format!(
            "{:.2} s vs {:.2} s",
            took[1].as_secs_f64(),
            took[0].as_secs_f64()
        ),
        format!("{r:.2}×"),
        r <= 1.3,
    );
}

/// 3. Open a store of 20,000 residents (a commune): `Store::open_encrypted` cold from the file
///    (a fresh connection each time; the OS page cache stays warm).
fn bench_open(dir: &Path, quick: bool, sum: &mut Summary) {
    let n = if quick { 2_000 } else { 20_000 };
    let clock = common::clock();
    let normal = Options {
        durability: Durability::Normal,
        ..common::options(&clock)
    };
    for enc in [false, true] {
        let mut s = open(&dir.join(format!("open-{enc}.db")), enc, normal.clone());
        let w = common::populate(&mut s);
        for i in 0..n {
            s.put_resident(ResidentInput {
                id: Uuid::from_u128(0x7000_0000 + i as u128),
                household_id: w.households[i % w.households.len()],
                full_name: format!("Nguyễn Văn Số {i}"),
                birth_date: "1985".into(),
                gender: None,
                id_number: None,
                phone: Some(format!("0913{:06}", i)),
                relation: None,
                account: RosterStatus::None,
                agency: None,
            })
            .expect("resident");
        }
    }
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..15 {
        for (k, enc) in [false, true].into_iter().enumerate() {
            let t = Instant::now();
            let s = open(
                &dir.join(format!("open-{enc}.db")),
                enc,
                common::options(&clock),
            );
            // Something a first screen does: count the residents.
            let _: i64 = s
                .connection()
                .query_row("SELECT count(*) FROM residents", [], |r| r.get(0))
                .expect("count");
            times[k].push(t.elapsed());
        }
    }
    for t in &mut times {
        t.sort();
    }
    let (p, e) = (pct(&times[0], 0.5), pct(&times[1], 0.5));
    let emax = *times[1].last().unwrap();
    println!("## 3. Open a store of {n} residents\n");
    println!(
        "`Store::open_encrypted` (raw 32-byte key: no password derivation) and a first count of \
         the residents; median of 15 opens.\n"
    );
    println!("| store | median | slowest |\n| --- | --- | --- |");
    println!(
        "| unencrypted | {} | {} |",
        ms(p),
        ms(*times[0].last().unwrap())
    );
    println!("| encrypted | {} | {} |\n", ms(e), ms(emax));
    sum.row(
        &format!("Encrypted store: open, {n} residents"),
        "< 300 ms",
        format!("{} (unencrypted {})", ms(e), ms(p)),
        format!("{:.2}×", ratio(e, p)),
        e < Duration::from_millis(300),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // Sections named on the command line (`visit`, `apply`, `open`) run alone; none: all.
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["visit", "apply", "open"].contains(a))
        .collect();
    let run = |section: &str| named.is_empty() || named.contains(&section);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sum = Summary(Vec::new());
    println!(
        "Encrypted (SQLite3 Multiple Ciphers {}, AEGIS-256 with the CPU's AES instructions \
         where it has them, one tag per page; raw key) against unencrypted stores, same settings, \
         same run{}.\n",
        doorstep_sqlite::SQLITE3MC_VERSION,
        if quick {
            " (--quick: smaller sizes, not for the record)"
        } else {
            ""
        }
    );
    if run("visit") {
        bench_visit(dir.path(), quick, &mut sum);
    }
    if run("apply") {
        bench_apply(dir.path(), quick, &mut sum);
    }
    if run("open") {
        bench_open(dir.path(), quick, &mut sum);
    }
    for line in sum.0 {
        println!("{line}");
    }
}
