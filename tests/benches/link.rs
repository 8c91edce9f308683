//! Issue #14's 2G measure: a day's sync (a phone pushes its day, about 190 operations, and pulls
//! another phone's day in its village, about as many) over an emulated 40 kbit/s link with
//! 300 ± 100 ms one-way delay and 10 % packet loss; goal under 8 s. Baselines in the same run:
//! the same link with its rate only (no delay, no loss) and plain loopback.
//!
//! The link is packet-level: two network namespaces joined by TUN devices and
//! `scripts/lossy-link.py` between them (TCP sees the loss and retransmits). Only
//! `scripts/bench-link.sh` can set that up (root, namespaces): it runs this bench inside the
//! phone's namespace with `DOORSTEP_LINK_*` set; without them the bench says so and does
//! nothing. Every round is fresh: a real `doorstep serve` process in the server's namespace
//! (SQLite, the relay bench's world: 60 households of 3 residents in each village, two
//! officers on one village), both phones enrolled and synced over an unimpaired link, the other
//! phone's day pushed, this phone's day recorded; then the link is switched to the mode and the
//! phone syncs with the phone's default `SyncConfig` (500 operations a request, 6 attempts,
//! 0.5 s backoff doubling, 30 s per request). The same work seed in every mode of a round; the
//! link's random seed is the round's.
//!
//! Writes `docs/bench/link.md` and `docs/bench/link.rows` (not with `--quick`).
//!
//! `scripts/bench-link.sh [--quick] [--rounds N]` (15 rounds by default)

use doorstep_core::sync::{SyncConfig, SyncReport};
use doorstep_tests::actions;
use doorstep_tests::harness::{Device, OfficerSpec, Server};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Field actions of a day (as in the relay bench: about one operation each).
const DAY_ACTIONS: usize = 190;
/// The goal of issue #14.
const GOAL_S: f64 = 8.0;
/// The link: bit/s per direction, one-way delay and its jitter (ms), packet loss.
const RATE: u32 = 40_000;
const DELAY_MS: u32 = 300;
const JITTER_MS: u32 = 100;
const LOSS: f64 = 0.10;

fn team() -> Vec<OfficerSpec> {
    doorstep_tests::harness::pair(&["22738-01"])
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Loopback,
    RateOnly,
    Lossy,
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::Loopback => "loopback (no link)".into(),
            Mode::RateOnly => format!("link, {} kbit/s only", RATE / 1000),
            Mode::Lossy => format!(
                "link, {} kbit/s, {DELAY_MS} ± {JITTER_MS} ms, {:.0} % loss",
                RATE / 1000,
                LOSS * 100.0
            ),
        }
    }

    /// The forwarder's arguments for this mode (`None`: no forwarder, loopback).
    fn link_args(self) -> Option<Vec<String>> {
        let (rate, delay, jitter, loss) = match self {
            Mode::Loopback => return None,
            Mode::RateOnly => (RATE, 0, 0, 0.0),
            Mode::Lossy => (RATE, DELAY_MS, JITTER_MS, LOSS),
        };
        Some(link_args(rate, delay, jitter, loss))
    }
}

fn link_args(rate: u32, delay: u32, jitter: u32, loss: f64) -> Vec<String> {
    vec![
        "--rate".into(),
        rate.to_string(),
        "--delay".into(),
        delay.to_string(),
        "--jitter".into(),
        jitter.to_string(),
        "--loss".into(),
        loss.to_string(),
    ]
}

/// Where the link is: from `scripts/bench-link.sh`.
struct Env {
    server_netns: String,
    server_ip: IpAddr,
    /// The forwarder's command line up to its mode arguments.
    forwarder: Vec<String>,
    scratch: PathBuf,
}

impl Env {
    fn from_env() -> Option<Env> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Env {
            server_netns: get("DOORSTEP_LINK_SERVER_NETNS")?,
            server_ip: get("DOORSTEP_LINK_SERVER_IP")?
                .parse()
                .expect("DOORSTEP_LINK_SERVER_IP"),
            forwarder: get("DOORSTEP_LINK_FORWARDER")?
                .split_whitespace()
                .map(String::from)
                .collect(),
            scratch: PathBuf::from(get("DOORSTEP_LINK_SCRATCH")?),
        })
    }
}

/// Packet counters of one direction, from the forwarder.
#[derive(Default, Clone, Copy)]
struct Dir {
    packets: u64,
    bytes: u64,
    lost: u64,
}

/// A running forwarder (`scripts/lossy-link.py`); stopped with SIGTERM for its counters.
struct Forwarder {
    child: Child,
    stats: PathBuf,
}

impl Forwarder {
    fn start(env: &Env, args: &[String], seed: u64, stats: &Path) -> Forwarder {
        let _ = std::fs::remove_file(stats);
        let mut child = Command::new(&env.forwarder[0])
            .args(&env.forwarder[1..])
            .args(args)
            .arg("--seed")
            .arg(seed.to_string())
            .arg("--stats")
            .arg(stats)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the forwarder");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the forwarder's first line");
        assert_eq!(line.trim(), "ready", "the forwarder did not start");
        Forwarder {
            child,
            stats: stats.to_owned(),
        }
    }

    /// SIGTERM (it writes its counters), wait, read them: (phone → server, server → phone).
    fn stop(mut self) -> (Dir, Dir) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.stats).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let dir = |k: &str| Dir {
            packets: v[k]["packets"].as_u64().unwrap_or(0),
            bytes: v[k]["bytes"].as_u64().unwrap_or(0),
            lost: v[k]["lost"].as_u64().unwrap_or(0),
        };
        (dir("a_to_b"), dir("b_to_a"))
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The phone's own defaults (`SyncConfig::new`), not the tests' short timeouts.
fn phone_sync(d: &mut Device, url: &str) -> SyncReport {
    d.sync_with(url, |c| {
        let phone = SyncConfig::new(url, c.token.clone());
        *c = phone;
    })
    .unwrap_or_else(|e| panic!("{}: {e}", d.name))
}

struct Sample {
    secs: f64,
    report: SyncReport,
    up: Dir,
    down: Dir,
}

fn round(env: &Env, mode: Mode, i: u64) -> Sample {
    let stats = env.scratch.join("forwarder-stats.json");
    // Setup over an unimpaired link (or loopback).
    let setup = mode
        .link_args()
        .map(|_| Forwarder::start(env, &link_args(0, 0, 0, 0.0), 0, &stats));
    let mut server = match mode {
        Mode::Loopback => Server::start(&team(), 60, 3),
        _ => Server::start_in_netns(&team(), 60, 3, &env.server_netns, env.server_ip),
    };
    let url = server.url();
    let mut p = server.enrol_device(0, "p", 0);
    let mut q = server.enrol_device(1, "q", 0);
    phone_sync(&mut p, &url);
    phone_sync(&mut q, &url);
    let mut rng = StdRng::seed_from_u64(1400 + i);
    // The other phone's day, on the server; then this phone's day, on the phone.
    actions::random_work(&mut q, &server.world, &mut rng, DAY_ACTIONS);
    let qr = phone_sync(&mut q, &url);
    actions::random_work(&mut p, &server.world, &mut rng, DAY_ACTIONS);
    if let Some(f) = setup {
        f.stop();
    }
    let link = mode
        .link_args()
        .map(|a| Forwarder::start(env, &a, 1000 + i, &stats));
    let t = Instant::now();
    let report = phone_sync(&mut p, &url);
    let secs = t.elapsed().as_secs_f64();
    let (up, down) = link.map(|f| f.stop()).unwrap_or_default();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.pushed > 0, "nothing pushed");
    assert!(
        report.pulled >= qr.pushed,
        "pulled {} of the other phone's {}",
        report.pulled,
        qr.pushed
    );
    eprintln!(
        "round {i} {mode:?}: {secs:.2} s, {} requests, {} retries, {} B up, {} B down, \
         pushed {}, pulled {}, packets {}/{} lost {}/{}",
        report.requests,
        report.retries,
        report.bytes_up,
        report.bytes_down,
        report.pushed,
        report.pulled,
        up.packets,
        down.packets,
        up.lost,
        down.lost
    );
    drop(server);
    Sample {
        secs,
        report,
        up,
        down,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn max(xs: impl Iterator<Item = f64>) -> f64 {
    xs.fold(f64::MIN, f64::max)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let Some(env) = Env::from_env() else {
        eprintln!(
            "link bench: needs the emulated link of scripts/bench-link.sh (root, network \
             namespaces); nothing measured"
        );
        return;
    };
    // The lossy link's times spread widely (a lost packet costs a retransmission timeout):
    // 15 rounds by default, `--rounds N` to change it.
    let args: Vec<String> = std::env::args().collect();
    let rounds: u64 = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--rounds N"))
        .unwrap_or(if quick { 2 } else { 15 });
    let modes = [Mode::Loopback, Mode::RateOnly, Mode::Lossy];
    let started = chrono::Utc::now();
    let mut samples: Vec<Vec<Sample>> = modes.iter().map(|_| Vec::new()).collect();
    for i in 0..rounds {
        for (m, mode) in modes.iter().enumerate() {
            samples[m].push(round(&env, *mode, i));
        }
    }
    let md_of = |f: &dyn Fn(&Sample) -> f64, s: &[Sample]| median(s.iter().map(f).collect());
    let mut md = String::new();
    let _ = writeln!(md, "## A day's sync over an emulated 2G link (issue #14)\n");
    let _ = writeln!(
        md,
        "Generated by `scripts/bench-link.sh` ({}) on {} UTC{}: `tests/benches/link.rs`, a real \
         `doorstep serve` process (SQLite) in one network namespace, the phone (the core's sync \
         client with its default `SyncConfig`) in another, joined by TUN devices and \
         `scripts/lossy-link.py`: per direction a {} kbit/s FIFO, then {DELAY_MS} ± {JITTER_MS} ms \
         one way (uniform, order kept), {:.0} % independent packet loss (seeded; TCP \
         retransmits), MTU 1500. {rounds} rounds; in each, a fresh server and two phones of one \
         village: the other phone's day ({DAY_ACTIONS} field actions) is on the server, this \
         phone syncs its own day ({DAY_ACTIONS} field actions) — the three modes on the same \
         work.\n",
        if quick { "--quick" } else { "full" },
        started.format("%Y-%m-%d %H:%M"),
        if quick {
            " — a smoke run, not for the record"
        } else {
            ""
        },
        RATE / 1000,
        LOSS * 100.0,
    );
    let _ = writeln!(
        md,
        "| path | wall median | wall max | requests | retries (max) | operations up / down | \
         body bytes up / down | packets up / down | packets lost up / down |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (m, mode) in modes.iter().enumerate() {
        let s = &samples[m];
        let _ = writeln!(
            md,
            "| {} | {:.2} s | {:.2} s | {:.0} | {:.0} ({:.0}) | {:.0} / {:.0} | {:.0} / {:.0} | {} | {} |",
            mode.label(),
            md_of(&|x| x.secs, s),
            max(s.iter().map(|x| x.secs)),
            md_of(&|x| x.report.requests as f64, s),
            md_of(&|x| x.report.retries as f64, s),
            max(s.iter().map(|x| x.report.retries as f64)),
            md_of(&|x| x.report.pushed as f64, s),
            md_of(&|x| x.report.pulled as f64, s),
            md_of(&|x| x.report.bytes_up as f64, s),
            md_of(&|x| x.report.bytes_down as f64, s),
            if *mode == Mode::Loopback {
                "—".to_string()
            } else {
                format!(
                    "{:.0} / {:.0}",
                    md_of(&|x| x.up.packets as f64, s),
                    md_of(&|x| x.down.packets as f64, s)
                )
            },
            if *mode == Mode::Loopback {
                "—".to_string()
            } else {
                format!(
                    "{:.0} / {:.0}",
                    md_of(&|x| x.up.lost as f64, s),
                    md_of(&|x| x.down.lost as f64, s)
                )
            },
        );
    }
    let lossy = &samples[2];
    let rate = &samples[1];
    let _ = writeln!(
        md,
        "\nThe lossy link's rounds (seed = 1000 + round):\n\n\
         | round | wall | requests | retries | IP bytes offered up / down | packets up / down | lost up / down |\n\
         | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (i, s) in lossy.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {i} | {:.2} s | {} | {} | {} / {} | {} / {} | {} / {} |",
            s.secs,
            s.report.requests,
            s.report.retries,
            s.up.bytes,
            s.down.bytes,
            s.up.packets,
            s.down.packets,
            s.up.lost,
            s.down.lost
        );
    }
    // Where the time goes: the rate-only link is the bytes' share (IP bytes on the wire at the
    // rate, plus the server's work); requests × the mean round trip is what latency alone costs
    // (one more for the TCP handshake); the rest of the lossy time is loss recovery.
    let lossy_med = md_of(&|x| x.secs, lossy);
    let rate_med = md_of(&|x| x.secs, rate);
    let wire_up = md_of(&|x| x.up.bytes as f64 * 8.0 / RATE as f64, rate);
    let wire_down = md_of(&|x| x.down.bytes as f64 * 8.0 / RATE as f64, rate);
    let reqs = md_of(&|x| x.report.requests as f64, lossy);
    let rtt = 2.0 * DELAY_MS as f64 / 1000.0;
    let latency = (reqs + 1.0) * rtt;
    let rest = lossy_med - rate_med - latency;
    let _ = writeln!(
        md,
        "\nWhere the time goes (medians): the rate-only link takes {rate_med:.2} s — the IP \
         packets at {} kbit/s keep the uplink busy {wire_up:.2} s and the downlink \
         {wire_down:.2} s (each direction's own packets: bodies, HTTP and TCP/IP headers, \
         handshakes, the other direction's acknowledgements; the two directions partly \
         overlap); {reqs:.0} requests plus the TCP handshake \
         at a mean round trip of {rtt:.1} s add about {latency:.1} s of latency; the remaining \
         {rest:.1} s of the lossy link's {lossy_med:.2} s is loss recovery (retransmission \
         timeouts and the smaller congestion window after a loss) and delay spread. A sync's \
         `retries` are whole requests the client tried again (a timeout or a broken \
         connection), not TCP retransmissions. Operations and ids are made afresh each round \
         (new UUIDs), so the modes' byte counts differ slightly though their work is the same.",
        RATE / 1000,
    );
    // What lost packets cost: the lossy rounds grouped by their lost packets (both
    // directions), against the floor without a loss (the rate-only time plus the round trips).
    let under = lossy.iter().filter(|x| x.secs < GOAL_S).count();
    let lost = |x: &Sample| x.up.lost + x.down.lost;
    let mut groups = Vec::new();
    for (lo, hi) in [(0, 1), (2, 3), (4, 5), (6, u64::MAX)] {
        let g: Vec<f64> = lossy
            .iter()
            .filter(|x| (lo..=hi).contains(&lost(x)))
            .map(|x| x.secs)
            .collect();
        if g.is_empty() {
            continue;
        }
        let what = if hi == u64::MAX {
            format!("{lo} or more lost")
        } else {
            format!("{lo}–{hi} lost")
        };
        groups.push(format!(
            "{what}: {} round{}, median {:.2} s",
            g.len(),
            if g.len() == 1 { "" } else { "s" },
            median(g)
        ));
    }
    let _ = writeln!(
        md,
        "\nWithout a loss the lossy link would take about {:.1} s by the estimate above (the \
         rate-only time plus the round trips; some round trips overlap the bytes, so a little \
         less). Its rounds by packets lost in the sync (both directions): {}. {under} of {} \
         rounds took under {GOAL_S:.0} s.",
        rate_med + latency,
        groups.join("; "),
        lossy.len(),
    );
    let yes = |ok: bool| if ok { "yes" } else { "**no**" };
    let lossy_max = max(lossy.iter().map(|x| x.secs));
    let mut rows = String::new();
    let _ = writeln!(
        rows,
        "| A day's sync ({:.0} ops up, {:.0} down) over an emulated 40 kbit/s link, 300 ± 100 ms, 10 % loss | < {GOAL_S:.0} s | {lossy_med:.2} s median, max {lossy_max:.2} s ({under} of {} rounds under {GOAL_S:.0} s), {reqs:.0} requests (rate only {rate_med:.2} s; loopback {:.0} ms) | {:.2}× | {} |",
        md_of(&|x| x.report.pushed as f64, lossy),
        md_of(&|x| x.report.pulled as f64, lossy),
        lossy.len(),
        md_of(&|x| x.secs, &samples[0]) * 1000.0,
        lossy_med / GOAL_S,
        yes(lossy_med < GOAL_S)
    );
    print!("{md}\n{rows}");
    if !quick {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("link.md"), md).unwrap();
        std::fs::write(root.join("link.rows"), rows).unwrap();
    }
}
