//! Applies the apply benchmark's saved inputs once, for a profiler: no world to build, no
//! timing loop, so `valgrind --tool=callgrind` sees little besides `Store::apply_ops`.
//!
//! ```sh
//! DOORSTEP_BENCH_APPLY_SAVE=/tmp/apply-in cargo bench -p doorstep-core --bench core -- --quick apply
//! cargo bench -p doorstep-core --bench apply_profile --no-run   # prints the binary's path
//! valgrind --tool=callgrind --toggle-collect='doorstep_core::store::Store::apply_ops' \
//!     target/release/deps/apply_profile-HASH /tmp/apply-in 10000 1000
//! ```
//!
//! Arguments: the directory `DOORSTEP_BENCH_APPLY_SAVE` wrote, how many of its operations to
//! apply (default all), the batch size (default 1000). Prints the batches' wall times (under a
//! profiler they mean little; the instruction counts are what to read).

use doorstep_core::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The bench's destination clock: 2023-07-11 09:00 in Vietnam.
const NOW_MS: u64 = 1_688_954_400_000 + 24 * 3600 * 1000;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: apply_profile DIR [N] [BATCH]");
        std::process::exit(2);
    };
    let bytes = std::fs::read(dir.join("ops.bin")).expect("read ops.bin");
    let mut ops = Vec::new();
    let mut rest = bytes.as_slice();
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("len")) as usize;
        ops.push(Op::decode(&rest[4..4 + len]).expect("decode op"));
        rest = &rest[4 + len..];
    }
    let n: usize = args
        .get(1)
        .map_or(ops.len(), |s| s.parse().expect("N"))
        .min(ops.len());
    let batch: usize = args.get(2).map_or(1000, |s| s.parse().expect("BATCH"));
    ops.truncate(n);

    let work = tempfile::tempdir().expect("tempdir");
    let path = work.path().join("dest.db");
    std::fs::copy(dir.join("template.db"), &path).expect("copy template");
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let mut store = Store::open(
        &path,
        Options {
            durability: Durability::Full,
            clock,
            ..Options::default()
        },
    )
    .expect("open");
    // DOORSTEP_BENCH_PRAGMAS, as in benches/core.rs: a what-if (e.g. `wal_autocheckpoint=16000`).
    if let Ok(pragmas) = std::env::var("DOORSTEP_BENCH_PRAGMAS") {
        for pragma in pragmas.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            store
                .connection()
                .execute_batch(&format!("PRAGMA {pragma};"))
                .expect("DOORSTEP_BENCH_PRAGMAS");
        }
    }
    let t = Instant::now();
    let mut applied = 0;
    for chunk in ops.chunks(batch) {
        applied += store.apply_ops(chunk).expect("apply").applied;
    }
    let took = t.elapsed().as_secs_f64();
    assert_eq!(applied, n, "every operation applied");
    // DOORSTEP_PROFILE_KEEP=DIR: copy the database and its write-ahead log as they are (the
    // connection still open, nothing checkpointed on close), to see which pages the batches
    // wrote.
    if let Some(keep) = std::env::var_os("DOORSTEP_PROFILE_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).expect("create DOORSTEP_PROFILE_KEEP");
        for name in ["dest.db", "dest.db-wal"] {
            let from = work.path().join(name);
            if from.exists() {
                std::fs::copy(&from, keep.join(name)).expect("keep");
            }
        }
    }
    println!(
        "applied {n} ops in batches of {batch}: {:.0} ms, {:.0} ops/s",
        took * 1e3,
        n as f64 / took
    );
}
