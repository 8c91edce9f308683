//! Issue #14's measures: a day's sync after a server restore against a normal day's sync, two
//! phones exchanging a day's work each in memory, and the bytes per operation of a relayed
//! push (signatures included) against a phone's own push. Real `doorstep serve` processes on
//! loopback (the end-to-end harness), each measure repeated; medians and ratios measured in the
//! same run. Writes the fragment `docs/bench/relay.md` and its summary rows
//! `docs/bench/relay.rows` (`scripts/bench-relay.sh`, then `scripts/bench.sh --page-only`).
//!
//! `cargo bench -p doorstep-tests --bench relay [-- --quick]`

use doorstep_core::exchange::exchange_in_memory;
use doorstep_core::sync::SyncReport;
use doorstep_tests::actions;
use doorstep_tests::harness::{Device, OfficerSpec, Server};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Field actions of a day (about one operation each: a phone's day is about 190 operations).
const DAY_ACTIONS: usize = 190;

fn team() -> Vec<OfficerSpec> {
    doorstep_tests::harness::pair(&["22738-01"])
}

/// A sync with the phone's defaults (500 operations a request), not the tests' small batches.
fn sync(d: &mut Device, url: &str) -> SyncReport {
    d.sync_with(url, |c| {
        c.push_batch = 500;
        c.pull_page = 500;
    })
    .unwrap_or_else(|e| panic!("{}: {e}", d.name))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Round {
    normal_ms: f64,
    normal_ops: u64,
    normal_bytes_up: u64,
    restore_ms: f64,
    restore_ops: u64,
    exchange_ms: f64,
    exchange_ops: u64,
    exchange_bytes: u64,
    relay_bytes_up: u64,
    relayed: u64,
}

fn round(seed: u64) -> Round {
    let mut server = Server::start(&team(), 60, 3);
    let url = server.url();
    let mut p = server.enrol_device(0, "p", 0);
    let mut q = server.enrol_device(1, "q", 0);
    sync(&mut p, &url);
    sync(&mut q, &url);
    let mut rng = StdRng::seed_from_u64(seed);
    // Last night's backup.
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    server.backup(&backup);
    // A normal day: the work, then the evening sync.
    actions::random_work(&mut p, &server.world, &mut rng, DAY_ACTIONS);
    let t = Instant::now();
    let normal = sync(&mut p, &url);
    let normal_ms = ms(t.elapsed());
    // The server is restored from last night's backup: the day is lost on it; the phone's
    // next sync sends it again.
    server.restore(&backup);
    let t = Instant::now();
    let restored = sync(&mut p, &url);
    let restore_ms = ms(t.elapsed());
    assert_eq!(
        restored.pushed, normal.pushed,
        "the lost day is pushed again"
    );
    // Two phones without coverage exchange a day's work each, in memory.
    actions::random_work(&mut p, &server.world, &mut rng, DAY_ACTIONS);
    actions::random_work(&mut q, &server.world, &mut rng, DAY_ACTIONS);
    let t = Instant::now();
    let (rp, rq) = exchange_in_memory(&mut p.store, &mut q.store).unwrap();
    let exchange_ms = ms(t.elapsed());
    assert!(rp.refused.is_empty() && rq.refused.is_empty());
    // q reaches coverage and relays p's day (its own pushed first, in the same sync).
    let relay = sync(&mut q, &url);
    assert!(relay.rejected.is_empty(), "{:?}", relay.rejected);
    let own_up = normal.bytes_up as f64 / normal.pushed.max(1) as f64;
    let _ = own_up;
    Round {
        normal_ms,
        normal_ops: normal.pushed,
        normal_bytes_up: normal.bytes_up,
        restore_ms,
        restore_ops: restored.pushed,
        exchange_ms,
        exchange_ops: rp.ops_sent + rq.ops_sent,
        exchange_bytes: rp.bytes_out + rq.bytes_out,
        relay_bytes_up: relay.bytes_up,
        relayed: relay.relayed + relay.pushed,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 2 } else { 7 };
    let started = chrono::Utc::now();
    let rs: Vec<Round> = (0..rounds).map(|i| round(1400 + i as u64)).collect();
    let normal = median(rs.iter().map(|r| r.normal_ms).collect());
    let restore = median(rs.iter().map(|r| r.restore_ms).collect());
    let ratio = median(rs.iter().map(|r| r.restore_ms / r.normal_ms).collect());
    let exchange = median(rs.iter().map(|r| r.exchange_ms).collect());
    let ex_bytes = median(rs.iter().map(|r| r.exchange_bytes as f64).collect());
    let ex_ops = median(rs.iter().map(|r| r.exchange_ops as f64).collect());
    let own_bpo = median(
        rs.iter()
            .map(|r| r.normal_bytes_up as f64 / r.normal_ops.max(1) as f64)
            .collect(),
    );
    let relay_bpo = median(
        rs.iter()
            .map(|r| r.relay_bytes_up as f64 / r.relayed.max(1) as f64)
            .collect(),
    );
    let ops = median(rs.iter().map(|r| r.normal_ops as f64).collect());
    let restore_ops = median(rs.iter().map(|r| r.restore_ops as f64).collect());
    let mut md = String::new();
    let _ = writeln!(md, "## Restores and relays (issue #14)\n");
    let _ =
        writeln!(
        md,
        "Generated by `scripts/bench-relay.sh` ({}) on {} UTC{}: `tests/benches/relay.rs`, real \
         `doorstep serve` processes on loopback (SQLite), {rounds} rounds, medians. A day is \
         {DAY_ACTIONS} field actions of one phone ({ops:.0} operations).\n",
        if quick { "--quick" } else { "full" },
        started.format("%Y-%m-%d %H:%M"),
        if quick { " — a smoke run, not for the record" } else { "" },
    );
    let _ = writeln!(md, "| measure | median |\n| --- | --- |");
    let _ = writeln!(
        md,
        "| a day's evening sync (push {ops:.0} operations, pull) | {normal:.1} ms |"
    );
    let _ = writeln!(
        md,
        "| the same day's sync after the server was restored from the night's backup ({restore_ops:.0} operations pushed again) | {restore:.1} ms ({ratio:.2}× the normal day, median of per-round ratios) |"
    );
    let _ = writeln!(
        md,
        "| two phones exchanging a day's work each, in memory ({ex_ops:.0} operations in all) | {exchange:.1} ms, {ex_bytes:.0} bytes ({:.1} B/op, uncompressed postcard) |",
        ex_bytes / ex_ops.max(1.0)
    );
    let _ = writeln!(
        md,
        "| bytes per operation up, a phone's own push | {own_bpo:.1} B/op |"
    );
    let _ = writeln!(
        md,
        "| bytes per operation up, a sync relaying another phone's day (its own day too; signed runs, segments included) | {relay_bpo:.1} B/op |"
    );
    let _ = writeln!(
        md,
        "\nThe restore costs the lost day's push again: the phone learns what the restored server \
         holds from its first pull (`held`) and sends from there; its cursor is moved back to the \
         backup's end (generations), so it also pulls again what followed. The exchange's bytes are \
         the messages as the app would carry them (postcard, not compressed: a Bluetooth or Wi-Fi \
         link is not the 2G bottleneck). Not measured here: a day's sync over an emulated 40 kbit/s \
         lossy link (`scripts/bench-link.sh`, `docs/bench/link.md`) and the station hub \
         (`scripts/bench-hub.sh`, `docs/bench/hub.md`)."
    );
    let yes = |ok: bool| if ok { "yes" } else { "**no**" };
    let mut rows = String::new();
    let _ = writeln!(
        rows,
        "| A day's sync after a server restore (the lost day re-pushed) vs a normal day's sync | < 2× | {restore:.1} ms vs {normal:.1} ms | {ratio:.2}× | {} |",
        yes(ratio < 2.0)
    );
    let _ = writeln!(
        rows,
        "| Two phones exchanging a day's work each, in memory | < 50 ms | {exchange:.1} ms, {ex_bytes:.0} B | | {} |",
        yes(exchange < 50.0)
    );
    let _ = writeln!(
        rows,
        "| Bytes per operation of a day's push, signatures included (a relayed day) | ≤ 40 B | {relay_bpo:.1} B/op (own push {own_bpo:.1}) | {:.2}× own | {} |",
        relay_bpo / own_bpo.max(0.001),
        yes(relay_bpo <= 40.0)
    );
    print!("{md}\n{rows}");
    if !quick {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("relay.md"), md).unwrap();
        std::fs::write(root.join("relay.rows"), rows).unwrap();
    }
}
