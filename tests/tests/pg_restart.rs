//! PostgreSQL restarted under load: while devices sync, the cluster is stopped (`pg_ctl stop
//! -m fast`, which also cuts every open connection) and started again a few seconds later.
//! Meanwhile the server answers `503` with `Retry-After`; the devices' clients retry with
//! backoff; afterwards nothing is lost and nothing is stored or delivered twice.
//!
//! The test runs its own throwaway cluster (`scripts/pg.sh` with a private state file), so
//! stopping it disturbs no other test.

use doorstep_tests::harness::{Device, OfficerSpec, Server, TestDb, COMMUNE_A, COMMUNE_B};
use doorstep_tests::{actions, pgmirror, scope};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A private cluster, stopped and removed when dropped.
struct Cluster {
    state: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh")
    }

    fn run(&self, cmd: &str) -> String {
        let out = Command::new("bash")
            .arg(Self::script())
            .arg(cmd)
            .env("DOORSTEP_PG_STATE", &self.state)
            .output()
            .expect("run scripts/pg.sh");
        assert!(
            out.status.success(),
            "scripts/pg.sh {cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn start() -> (Cluster, String) {
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster {
            state: dir.path().join("pg.env"),
            _dir: dir,
        };
        let url = c.run("start");
        let url = url.lines().last().unwrap_or_default().to_owned();
        (c, url)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .env("DOORSTEP_PG_STATE", &self.state)
            .output();
    }
}

fn spec(name: &str, commune: &str, villages: &[&str]) -> OfficerSpec {
    OfficerSpec {
        name: name.into(),
        commune: commune.into(),
        villages: villages.iter().map(|v| v.to_string()).collect(),
    }
}

fn requests_with_status(metrics: &str, status: u16) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("doorstep_http_requests_total")
                && l.contains(&format!("status=\"{status}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn postgres_restarted_mid_load_loses_and_duplicates_nothing() {
    // Only where the test cluster's tools are (always under CI: `postgres()` fails otherwise).
    if TestDb::postgres().is_none() {
        return;
    }
    let (cluster, base) = Cluster::start();
    let officers = [
        spec("Trần Văn Bình", COMMUNE_A, &["22738-01"]),
        spec("Phạm Văn Dũng", COMMUNE_B, &["22741-01"]),
    ];
    let mut server = Server::start_on(TestDb::Postgres(base), &officers, 4, 2);
    let url = server.url();
    let db_url = server.database.clone().unwrap();
    let mut devices: Vec<Device> = vec![
        server.enrol_device(0, "a1", 0),
        server.enrol_device(0, "a2", 0),
        server.enrol_device(1, "b1", 0),
        server.enrol_device(1, "b2", 0),
    ];
    let world = server.world.clone();
    let stop = AtomicBool::new(false);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (ok, failed) = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter_mut()
            .enumerate()
            .map(|(i, d)| {
                let (world, url, stop) = (&world, &url, &stop);
                s.spawn(move || {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(900 + i as u64);
                    let (mut ok, mut failed) = (0u32, 0u32);
                    while !stop.load(Ordering::Relaxed) {
                        let n = rng.gen_range(2..8);
                        actions::random_work(d, world, &mut rng, n);
                        let r = d.sync_with(url, |c| {
                            c.push_batch = 5;
                            c.pull_page = 20;
                            c.max_attempts = 6;
                            c.initial_backoff = Duration::from_millis(200);
                            c.max_backoff = Duration::from_secs(2);
                        });
                        match r {
                            Ok(_) => ok += 1,
                            // Retries exhausted while the database was down: the next round
                            // resumes (that is the client's contract).
                            Err(_) => failed += 1,
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        // Load for a while, then take PostgreSQL away for ~4 s.
        std::thread::sleep(Duration::from_millis(1500));
        cluster.run("down");
        let down_at = Instant::now();
        // While it is down, the server says so: 503 with Retry-After.
        let health = http.get(format!("{url}/health")).send().unwrap();
        assert_eq!(health.status().as_u16(), 503);
        assert!(health.headers().get("retry-after").is_some());
        let body: serde_json::Value = serde_json::from_slice(&health.bytes().unwrap()).unwrap();
        assert_eq!(body["error"], "unavailable", "{body}");
        std::thread::sleep(Duration::from_secs(4).saturating_sub(down_at.elapsed()));
        cluster.run("up");
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        let mut ok = 0;
        let mut failed = 0;
        for h in handles {
            let (o, f) = h.join().unwrap();
            ok += o;
            failed += f;
        }
        (ok, failed)
    });
    eprintln!("{ok} syncs completed, {failed} gave up during the outage");
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let unavailable = requests_with_status(&metrics, 503);
    assert!(
        unavailable > 0,
        "the outage was seen by syncing devices as 503s"
    );
    assert_eq!(
        requests_with_status(&metrics, 500),
        0,
        "a lost database is 503, never 500"
    );
    // Quiet rounds: everything gets through, nothing twice.
    for _ in 0..2 {
        for d in devices.iter_mut() {
            let r = d.sync(&url).unwrap();
            assert_eq!(r.pull_duplicates, 0, "{}: delivered twice: {r:?}", d.name);
        }
    }
    for d in &devices {
        let want = pgmirror::feed_dots(&db_url, &d.villages);
        let held = pgmirror::store_dots(d.store.connection());
        assert!(
            want.is_subset(&held),
            "{}: {} feed rows never delivered",
            d.name,
            want.difference(&held).count()
        );
    }
    let refs: Vec<&Device> = devices.iter().collect();
    scope::assert_converged(&server, &refs);
    server.kill();
}
