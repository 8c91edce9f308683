//! Issue #14's hub measure: the station hub relaying a commune's day upstream — 20 phones'
//! days (190 field actions each) taken from the phones over TCP on loopback, then delivered to
//! a real `doorstep serve` process in one sync — against the same 20 days pushed by the phones'
//! own syncs, one after another, in the same round. Medians of 5 rounds. Writes the fragment
//! `docs/bench/hub.md` and its summary row `docs/bench/hub.rows` (`scripts/bench-hub.sh`,
//! then `scripts/bench.sh --page-only`).
//!
//! `cargo bench -p doorstep-tests --bench hub [-- --quick]`

use doorstep_core::Store;
use doorstep_server::hub::{Hub, HubConfig};
use doorstep_tests::actions;
use doorstep_tests::harness::{Device, OfficerSpec, Server, COMMUNE_A};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PHONES: usize = 20;
const DAY_ACTIONS: usize = 190;

/// Ten field officers of commune A, two villages each (two phones each: 20 phones).
fn officers() -> Vec<OfficerSpec> {
    (0..10)
        .map(|i| OfficerSpec {
            name: format!("CSKV Số {i}"),
            commune: COMMUNE_A.into(),
            villages: vec![format!("22738-0{}", 1 + i % 2)],
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn with_hub(d: &mut Device, addr: std::net::SocketAddr) -> u64 {
    let placeholder = Store::open_in_memory(Default::default()).unwrap();
    let store = Mutex::new(std::mem::replace(&mut d.store, placeholder));
    let mut s = TcpStream::connect(addr).unwrap();
    let r = doorstep_core::peer_stream::exchange_over(&store, &mut s).unwrap();
    d.store = store.into_inner().unwrap();
    r.ops_sent
}

struct Round {
    hub_ms: f64,
    hub_ops: u64,
    exchanges_ms: f64,
    direct_ms: f64,
    direct_ops: u64,
}

fn round(seed: u64) -> Round {
    let mut server = Server::start(&officers(), 40, 3);
    let url = server.url();
    let (_, code) = server.commune_lead_code("Trưởng Công an xã");
    let mut phones: Vec<Device> = (0..PHONES)
        .map(|i| server.enrol_device(i / 2, &format!("p{i}"), 0))
        .collect();
    for p in &mut phones {
        p.sync(&url).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = Arc::new(
        Hub::open(&HubConfig {
            upstream: url.clone(),
            store: dir.path().join("hub.db"),
            code: Some(code),
            every: Duration::from_secs(3600),
            trusted_ca_pem: None,
            attempts: 3,
        })
        .unwrap(),
    );
    hub.sync_upstream().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let serving = {
        let (hub, stop) = (hub.clone(), stop.clone());
        std::thread::spawn(move || hub.serve_phones(listener, stop))
    };
    let mut rng = StdRng::seed_from_u64(seed);
    // Day 1 through the hub.
    for p in &mut phones {
        actions::random_work(p, &server.world, &mut rng, DAY_ACTIONS);
    }
    let t = Instant::now();
    for p in &mut phones {
        with_hub(p, addr);
    }
    let exchanges_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let relayed = hub.sync_upstream().unwrap();
    let hub_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(relayed.rejected.is_empty(), "{:?}", relayed.rejected);
    // Day 2 by the phones' own syncs (after a sync that catches each phone up).
    for p in &mut phones {
        p.sync(&url).unwrap();
        actions::random_work(p, &server.world, &mut rng, DAY_ACTIONS);
    }
    let t = Instant::now();
    let mut direct_ops = 0;
    for p in &mut phones {
        direct_ops += p
            .sync_with(&url, |c| {
                c.push_batch = 500;
                c.pull_page = 500;
            })
            .unwrap()
            .pushed;
    }
    let direct_ms = t.elapsed().as_secs_f64() * 1000.0;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    serving.join().unwrap().unwrap();
    Round {
        hub_ms,
        hub_ops: relayed.relayed,
        exchanges_ms,
        direct_ms,
        direct_ops,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 5 };
    let started = chrono::Utc::now();
    let rs: Vec<Round> = (0..rounds).map(|i| round(1500 + i as u64)).collect();
    let hub = median(rs.iter().map(|r| r.hub_ms).collect());
    let ops = median(rs.iter().map(|r| r.hub_ops as f64).collect());
    let ex = median(rs.iter().map(|r| r.exchanges_ms).collect());
    let direct = median(rs.iter().map(|r| r.direct_ms).collect());
    let direct_ops = median(rs.iter().map(|r| r.direct_ops as f64).collect());
    let ratio = median(rs.iter().map(|r| r.hub_ms / r.direct_ms).collect());
    let mut md = String::new();
    let _ = writeln!(md, "## The station hub (issue #14)\n");
    let _ = writeln!(
        md,
        "Generated by `scripts/bench-hub.sh` ({}) on {} UTC{}: `tests/benches/hub.rs`, a real \
         `doorstep serve` process on loopback (SQLite) and a hub (`doorstep_server::hub`) in the \
         bench's process, {PHONES} phones of one commune (two villages), a day of \
         {DAY_ACTIONS} field actions each; {rounds} rounds, medians.\n",
        if quick { "--quick" } else { "full" },
        started.format("%Y-%m-%d %H:%M"),
        if quick {
            " — a smoke run, not for the record"
        } else {
            ""
        },
    );
    let _ = writeln!(md, "| measure | median |\n| --- | --- |");
    let _ = writeln!(
        md,
        "| the {PHONES} phones exchanging with the hub over TCP, one after another | {ex:.0} ms |"
    );
    let _ = writeln!(
        md,
        "| the hub relaying their day upstream in one sync ({ops:.0} operations) | {hub:.0} ms |"
    );
    let _ = writeln!(
        md,
        "| the next day pushed by the {PHONES} phones' own syncs, one after another ({direct_ops:.0} operations), for comparison | {direct:.0} ms |"
    );
    let yes = |ok: bool| if ok { "yes" } else { "**no**" };
    let mut rows = String::new();
    let _ = writeln!(
        rows,
        "| The hub relaying a commune's day upstream ({PHONES} phones, loopback) | < 2 s | {hub:.0} ms ({ops:.0} ops) | {ratio:.2}× the phones' own syncs | {} |",
        yes(hub < 2000.0)
    );
    print!("{md}\n{rows}");
    if !quick {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("hub.md"), md).unwrap();
        std::fs::write(root.join("hub.rows"), rows).unwrap();
    }
}
