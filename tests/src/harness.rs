//! A real Doorstep server for end-to-end tests, and the devices that talk to it.
//!
//! Choices, and why:
//! - **The server runs as a separate process** (`doorstep serve`), always — the SIGKILL test
//!   needs a process to kill, and one code path for every test keeps the harness simple. The
//!   binary is `doorstep-under-test`, a two-line binary of this crate that calls the server
//!   library's command-line entry point, so Cargo builds it for these tests
//!   (`CARGO_BIN_EXE_…`) without a nested `cargo build` (which would deadlock on Cargo's
//!   build-directory lock while tests run).
//! - **Setup happens before the server starts**, in-process, through the server library's
//!   `Backend` (units, officers, assignments, enrolment codes, and the campaign with its
//!   households and residents as operations made by a "commune station" replica,
//!   `Backend::import_ops`). The serving process owns its database afterwards: a second
//!   writer beside it could reuse its replica's counters.
//! - **Two backends.** `DOORSTEP_TEST_BACKEND=postgres` runs every server of these tests on
//!   PostgreSQL (a fresh database in the cluster named by `DOORSTEP_TEST_DATABASE_URL`, which
//!   `scripts/test.sh` starts with `scripts/pg.sh`); otherwise on an SQLite file. Tests about
//!   PostgreSQL itself (several instances, a restart) use [`Server::start_on`].
//! - **Each device is a core `Store`** in its own temporary file with its own `ManualClock`,
//!   started at the real time (the server stamps with its real clock), and syncs with the core's
//!   blocking client through a short-backoff `SyncConfig`.

use chrono::{Duration as Days, Utc};
use doorstep_core::sync::{SyncConfig, SyncReport};
use doorstep_core::{
    CampaignInput, HouseholdInput, ManualClock, Options, ResidentInput, RosterStatus, Store,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use uuid::Uuid;

/// The official Ninh Thuận units (province, districts, communes).
pub const UNITS_CSV: &str = include_str!("../../data/ninh-thuan-2023-units.csv");

/// The two communes the tests work in, and their villages.
pub const COMMUNE_A: &str = "22738"; // Phường Đô Vinh
/// Second commune.
pub const COMMUNE_B: &str = "22741"; // Phường Phước Mỹ
/// Villages (two per commune).
pub const VILLAGES: [(&str, &str, &str); 4] = [
    ("22738-01", COMMUNE_A, "Khu phố 1"),
    ("22738-02", COMMUNE_A, "Khu phố 2"),
    ("22741-01", COMMUNE_B, "Khu phố 1"),
    ("22741-02", COMMUNE_B, "Khu phố 2"),
];

/// The units file the server imports: the official list plus our villages.
pub fn units_csv() -> String {
    let mut s = UNITS_CSV.trim_end().to_owned();
    s.push('\n');
    for (code, parent, name) in VILLAGES {
        s.push_str(&format!("{code},{parent},village,khu phố,{name}\n"));
    }
    s
}

/// Unix ms now.
pub fn wall_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// An officer to create, with the villages assigned to them.
#[derive(Debug, Clone)]
pub struct OfficerSpec {
    /// Name.
    pub name: String,
    /// Commune.
    pub commune: String,
    /// Villages assigned.
    pub villages: Vec<String>,
}

/// Two field officers of commune A (Trần Văn Bình, Lê Thị Hoa), both given `villages`.
pub fn pair(villages: &[&str]) -> Vec<OfficerSpec> {
    ["Trần Văn Bình", "Lê Thị Hoa"]
        .iter()
        .map(|n| OfficerSpec {
            name: (*n).into(),
            commune: COMMUNE_A.into(),
            villages: villages.iter().map(|v| v.to_string()).collect(),
        })
        .collect()
}

/// The reference world on the server: campaign, households, residents, officers.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// The campaign.
    pub campaign: Uuid,
    /// Households by village code.
    pub households: BTreeMap<String, Vec<Uuid>>,
    /// Residents by household.
    pub residents: BTreeMap<Uuid, Vec<Uuid>>,
    /// Officer ids, in the order of the specs.
    pub officers: Vec<Uuid>,
    /// Villages of each officer.
    pub officer_villages: Vec<Vec<String>>,
    /// The admin user's token (`/v1/admin/*`).
    pub admin_token: String,
    /// The operations that made the campaign, households and residents.
    pub seed: Vec<doorstep_core::Op>,
}

impl World {
    /// Households of these villages.
    pub fn households_in(&self, villages: &[String]) -> Vec<Uuid> {
        villages
            .iter()
            .flat_map(|v| self.households.get(v).cloned().unwrap_or_default())
            .collect()
    }

    /// Residents of these villages.
    pub fn residents_in(&self, villages: &[String]) -> Vec<Uuid> {
        self.households_in(villages)
            .iter()
            .flat_map(|h| self.residents.get(h).cloned().unwrap_or_default())
            .collect()
    }
}

const NAMES: [&str; 8] = [
    "Nguyễn Văn An",
    "Trần Thị Bình",
    "Lê Văn Cường",
    "Phạm Thị Dung",
    "Hoàng Văn Em",
    "Võ Thị Phương",
    "Đặng Văn Giang",
    "Bùi Thị Hoa",
];

/// Build the campaign, households and residents in a fresh "commune station" store, and
/// return its operations (without the units, which the server imports from the CSV itself).
pub fn seed_ops(
    households_per_village: usize,
    residents_per_household: usize,
) -> (World, Vec<doorstep_core::Op>) {
    let mut store = Store::open_in_memory(Options::default()).expect("seed store");
    store
        .import_units_csv(units_csv().as_bytes())
        .expect("units into the seed store");
    let today = Utc::now().date_naive();
    let campaign = Uuid::now_v7();
    store
        .put_campaign(CampaignInput {
            id: campaign,
            name: "Chiến dịch 80 ngày đêm (thử nghiệm)".into(),
            start_date: today - Days::days(400),
            end_date: today + Days::days(400),
            target: 1000,
            unit_code: "58".into(),
        })
        .expect("campaign");
    let mut world = World {
        campaign,
        ..World::default()
    };
    let mut n = 0usize;
    for (village, _, _) in VILLAGES {
        for h in 0..households_per_village {
            let hid = Uuid::now_v7();
            store
                .put_household(HouseholdInput {
                    id: hid,
                    code: format!("HK{}-{h:03}", village.replace('-', "")),
                    village_code: village.into(),
                    address: Some(format!("{} Lê Duẩn", 10 + h)),
                    head_id: None,
                })
                .expect("household");
            world
                .households
                .entry(village.into())
                .or_default()
                .push(hid);
            for r in 0..residents_per_household {
                let rid = Uuid::now_v7();
                n += 1;
                store
                    .put_resident(ResidentInput {
                        id: rid,
                        household_id: hid,
                        full_name: format!("{} {n}", NAMES[n % NAMES.len()]),
                        birth_date: format!("{}", 1950 + (n % 50)),
                        gender: Some(if r % 2 == 0 { "nam" } else { "nữ" }.into()),
                        id_number: None,
                        phone: None,
                        relation: None,
                        account: RosterStatus::None,
                        agency: None,
                    })
                    .expect("resident");
                world.residents.entry(hid).or_default().push(rid);
            }
        }
    }
    let ops = store
        .all_ops_since(&doorstep_core::VersionVector::default())
        .expect("seed ops")
        .into_iter()
        .filter(|op| {
            !matches!(
                &op.body,
                doorstep_core::OpBody::Set {
                    entity: doorstep_core::Entity::Unit,
                    ..
                }
            )
        })
        .collect();
    (world, ops)
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .unwrap()
        .port()
}

/// The server binary under test.
pub fn server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("DOORSTEP_BIN") {
        return PathBuf::from(p);
    }
    // `CARGO_BIN_EXE_*` exists only when the test targets themselves are compiled, not this
    // library: find the binary beside them (target/debug/deps/<test> → target/debug/).
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!(
        "doorstep-under-test{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// A PostgreSQL client program (`pg_dump`, `pg_restore`) of the newest installed version, as
/// `scripts/pg.sh` finds the server's.
pub fn pg_tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.into_iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Which database a test server keeps its state in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestDb {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL cluster (its URL; each server gets a fresh database in it).
    Postgres(String),
}

impl TestDb {
    /// What `DOORSTEP_TEST_BACKEND` asks for (`postgres` or, by default, SQLite).
    pub fn from_env() -> TestDb {
        match std::env::var("DOORSTEP_TEST_BACKEND").as_deref() {
            Ok("postgres") => TestDb::Postgres(
                doorstep_server::pg::testing::base_url()
                    .expect("DOORSTEP_TEST_BACKEND=postgres needs DOORSTEP_TEST_DATABASE_URL"),
            ),
            _ => TestDb::Sqlite,
        }
    }

    /// The PostgreSQL cluster if there is one (under CI there must be, see
    /// [`doorstep_server::pg::testing::base_url`]).
    pub fn postgres() -> Option<TestDb> {
        doorstep_server::pg::testing::base_url().map(TestDb::Postgres)
    }
}

/// A running `doorstep serve` process on a temporary database.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its SQLite file (SQLite backend) or its view file (PostgreSQL).
    pub db: PathBuf,
    /// Its PostgreSQL database's URL, on the PostgreSQL backend.
    pub database: Option<String>,
    /// The reference world created before it started.
    pub world: World,
    /// One enrolment code per officer spec, in order (more can be issued before starting).
    pub codes: Vec<Vec<String>>,
    child: Option<Child>,
    /// The network namespace the process runs in (`ip netns exec`), if not this process's.
    netns: Option<String>,
    log: PathBuf,
    _dir: TempDir,
}

/// How many enrolment codes to issue per officer.
pub const CODES_PER_OFFICER: usize = 3;

/// Run `$body` with `$b` the server's backend opened as a console command opens it (SQLite or
/// PostgreSQL, whichever the test server runs on).
macro_rules! on_console {
    ($server:expr, |$b:ident| $body:expr) => {
        match &$server.database {
            None => {
                let $b = doorstep_server::SqliteBackend::open(&$server.db)
                    .expect("open the server database");
                $body
            }
            Some(url) => {
                let $b = doorstep_server::PgBackend::open(url, Default::default())
                    .expect("open the server database");
                $body
            }
        }
    };
}

impl Server {
    /// Create a database with the units, officers (each assigned their villages, with
    /// [`CODES_PER_OFFICER`] enrolment codes), the campaign and its households and residents;
    /// then start serving it on a free loopback port and wait until `/health` answers.
    pub fn start(
        officers: &[OfficerSpec],
        households_per_village: usize,
        residents_per_household: usize,
    ) -> Server {
        Self::start_on(
            TestDb::from_env(),
            officers,
            households_per_village,
            residents_per_household,
        )
    }

    /// [`Server::start`] on the given database.
    pub fn start_on(
        test_db: TestDb,
        officers: &[OfficerSpec],
        households_per_village: usize,
        residents_per_household: usize,
    ) -> Server {
        Self::start_placed(
            test_db,
            officers,
            households_per_village,
            residents_per_household,
            None,
        )
    }

    /// [`Server::start`], the process run in the named network namespace (`ip netns exec NS`)
    /// and listening on `ip` there (scripts/bench-link.sh: a server behind an emulated link).
    /// `/health` is awaited from this process's namespace, so `ip` must be reachable from it.
    pub fn start_in_netns(
        officers: &[OfficerSpec],
        households_per_village: usize,
        residents_per_household: usize,
        netns: &str,
        ip: std::net::IpAddr,
    ) -> Server {
        Self::start_placed(
            TestDb::from_env(),
            officers,
            households_per_village,
            residents_per_household,
            Some((netns.to_owned(), ip)),
        )
    }

    fn start_placed(
        test_db: TestDb,
        officers: &[OfficerSpec],
        households_per_village: usize,
        residents_per_household: usize,
        place: Option<(String, std::net::IpAddr)>,
    ) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut world, ops) = seed_ops(households_per_village, residents_per_household);
        let (db, database, codes) = match test_db {
            TestDb::Sqlite => {
                let db = dir.path().join("server.db");
                let backend = doorstep_server::SqliteBackend::open(&db).expect("open the database");
                let codes =
                    crate::setup::prepare(&backend, &units_csv(), officers, &ops, &mut world);
                (db, None, codes)
            }
            TestDb::Postgres(base) => {
                let url = doorstep_server::pg::testing::fresh_database(&base)
                    .expect("create a test database");
                // The setup's own view is thrown away; the server builds its own.
                let backend = doorstep_server::PgBackend::open(&url, Default::default())
                    .expect("open the PostgreSQL database");
                let codes =
                    crate::setup::prepare(&backend, &units_csv(), officers, &ops, &mut world);
                (dir.path().join("view.db"), Some(url), codes)
            }
        };
        world.seed = ops;
        // A free port here is free in a fresh namespace too.
        let port = free_port();
        let (netns, ip) = match place {
            Some((ns, ip)) => (Some(ns), ip),
            None => (None, std::net::IpAddr::from([127, 0, 0, 1])),
        };
        let mut server = Server {
            addr: SocketAddr::new(ip, port),
            db,
            database,
            world,
            codes,
            child: None,
            netns,
            log: dir.path().join("server.log"),
            _dir: dir,
        };
        server.spawn();
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Start the process (again) on the same database and port, and wait for `/health`.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let mut cmd = match &self.netns {
            // `ip netns exec` execs the program itself: the child is the server (kill works).
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(server_bin());
                c
            }
            None => Command::new(server_bin()),
        };
        cmd.arg("serve").arg("--listen").arg(self.addr.to_string());
        match &self.database {
            Some(url) => cmd.arg("--database").arg(url).arg("--view").arg(&self.db),
            None => cmd.arg("--db").arg(&self.db),
        };
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn the server");
        self.child = Some(child);
        self.wait_healthy(Duration::from_secs(30));
    }

    fn wait_healthy(&mut self, limit: Duration) {
        let started = Instant::now();
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "the server exited during startup ({status}); log:\n{}",
                        self.log_text()
                    );
                }
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                if let Ok(r) = client.get(format!("{}/health", self.url())).send() {
                    if r.status().is_success() {
                        return;
                    }
                }
            }
            if started.elapsed() > limit {
                panic!(
                    "the server did not become healthy; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL the process (no clean shutdown) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// Back the database up to `out` while the server runs: `doorstep backup` on SQLite,
    /// `pg_dump --format=custom` on PostgreSQL (the procedures of `docs/backup.md`).
    pub fn backup(&self, out: &Path) {
        let Some(url) = &self.database else {
            // What `doorstep backup FILE` runs, beside the serving process.
            doorstep_server::backup::sqlite(&self.db, None, out, &mut |_, _| {}).expect("backup");
            return;
        };
        let output = Command::new(pg_tool("pg_dump"))
            .args(["--format=custom", "--file"])
            .arg(out)
            .arg(url)
            .output()
            .expect("run pg_dump");
        assert!(
            output.status.success(),
            "backup failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stop the server, restore the database from `backup` (made by [`Server::backup`]) as
    /// `docs/backup.md` says, and start the server again. On PostgreSQL the process's view
    /// file is kept (it is of the lost history: the server must notice).
    pub fn restore(&mut self, backup: &Path) {
        self.kill();
        match &self.database {
            None => {
                for suffix in ["-wal", "-shm"] {
                    let mut p = self.db.as_os_str().to_owned();
                    p.push(suffix);
                    let _ = std::fs::remove_file(std::path::PathBuf::from(p));
                }
                std::fs::copy(backup, &self.db).expect("put the backup in place");
            }
            Some(url) => {
                let output = Command::new(pg_tool("pg_restore"))
                    .args(["--clean", "--if-exists", "--single-transaction", "--dbname"])
                    .arg(url)
                    .arg(backup)
                    .output()
                    .expect("run pg_restore");
                assert!(
                    output.status.success(),
                    "pg_restore failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        self.spawn();
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A read-only connection to the server's database (WAL: fine beside the server).
    ///
    /// On PostgreSQL: an SQLite snapshot of it, with the same tables and columns the tests
    /// read — a core store caught up from the feed (materialised tables, `oplog`) and copies
    /// of `devices`, `feed`, `quarantine` and `audit`.
    pub fn reader(&self) -> rusqlite::Connection {
        if let Some(url) = &self.database {
            return crate::pgmirror::snapshot(url, self._dir.path());
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("open the server database");
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// Take one unused enrolment code of officer spec `i`.
    pub fn take_code(&mut self, i: usize) -> String {
        self.codes[i].pop().expect("no enrolment code left")
    }

    /// Enrol a new device of officer spec `i` with a clock `skew_ms` off the real time.
    pub fn enrol_device(&mut self, i: usize, name: &str, skew_ms: i64) -> Device {
        let code = self.take_code(i);
        let url = self.url();
        let mut d = Device::new(name, (wall_ms() + skew_ms) as u64);
        let e = doorstep_core::sync::enrol(&mut d.store, &url, &code, name)
            .unwrap_or_else(|e| panic!("enrol {name}: {e}"));
        assert_eq!(e.officer_id, self.world.officers[i]);
        d.officer = e.officer_id;
        d.token = e.token;
        d.device_id = e.device_id;
        d.villages = self.world.officer_villages[i].clone();
        d
    }
}

/// Another `doorstep serve` process on a PostgreSQL-backed server's database, with its own
/// port, view and log. Killed when dropped.
pub struct Instance {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Instance {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Start another instance on this server's PostgreSQL database and wait for `/health`.
    pub fn another_instance(&self) -> Instance {
        let url = self
            .database
            .as_ref()
            .expect("another instance needs the PostgreSQL backend");
        let n = Uuid::new_v4().simple().to_string();
        let log = self._dir.path().join(format!("instance-{n}.log"));
        let view = self._dir.path().join(format!("view-{n}.db"));
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let out = std::fs::File::create(&log).expect("instance log");
        let child = Command::new(server_bin())
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--database")
            .arg(url)
            .arg("--view")
            .arg(&view)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn an instance");
        let mut instance = Instance { addr, child, log };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = instance.child.try_wait() {
                panic!(
                    "an instance exited ({status}); log:\n{}",
                    instance.log_text()
                );
            }
            let healthy = reqwest::blocking::Client::new()
                .get(format!("{}/health", instance.url()))
                .timeout(Duration::from_secs(2))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return instance;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "an instance did not become healthy; log:\n{}",
                instance.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Open a bundle on the server the console's way (`doorstep bundle import FILE`); the
    /// error's text if it is refused.
    pub fn import_bundle(
        &self,
        bytes: &[u8],
    ) -> Result<doorstep_server::backend::BundleImport, String> {
        let now = wall_ms();
        on_console!(self, |b| b.import_bundle("cli", bytes, now)).map_err(|e| e.to_string())
    }

    /// A new commune lead of commune A, added at the console, and an enrolment code for their
    /// device (the station hub enrols with one).
    pub fn commune_lead_code(&self, name: &str) -> (Uuid, String) {
        let now = wall_ms();
        on_console!(self, |b| {
            let id = b
                .add_officer(
                    "cli",
                    name,
                    doorstep_core::Role::CommuneLead,
                    COMMUNE_A,
                    now,
                )
                .expect("add a commune lead");
            let code = b
                .issue_enrol_code("cli", id, 60, now)
                .expect("an enrolment code");
            (id, code.code)
        })
    }

    /// A device's area bundle, made the console's way (`doorstep bundle area --device D`);
    /// the error's text if it is refused.
    pub fn area_bundle(&self, device: Uuid) -> Result<Vec<u8>, String> {
        let now = wall_ms();
        on_console!(self, |b| b.area_bundle("cli", device, now))
            .map(|a| a.bytes)
            .map_err(|e| e.to_string())
    }

    /// Purge the campaign's personal data the console's way (`doorstep campaign purge
    /// --campaign C [--early]`); the error's text if it is refused.
    pub fn purge(&self, early: bool) -> Result<doorstep_core::redact::PurgeReport, String> {
        let now = wall_ms();
        let campaign = self.world.campaign;
        on_console!(self, |b| b.purge_campaign("cli", campaign, early, now))
            .map_err(|e| e.to_string())
    }

    /// One round of `serve`'s maintenance as if the clock read `now_ms`: the campaigns it
    /// purged (their retention run out by then).
    pub fn maintain_at(&self, now_ms: i64) -> Vec<Uuid> {
        let mut done = std::collections::BTreeSet::new();
        on_console!(self, |b| b.maintain(now_ms, &mut done))
            .expect("maintenance")
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// Compact the server's log if that is pending, as `serve`'s maintenance does; how many
    /// operations were rewritten.
    pub fn compact(&self) -> usize {
        let now = wall_ms();
        on_console!(self, |b| b.compact_if_pending("retention", now)).expect("compact the log")
    }

    /// Revoke a device through the admin API.
    pub fn revoke(&self, device: Uuid) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/v1/admin/devices/{device}/revoke", self.url()))
            .bearer_auth(&self.world.admin_token)
            .send()
            .expect("revoke request");
        assert!(r.status().is_success(), "revoke answered {}", r.status());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A device: a core store on a temporary file, its clock, its token and what it recorded.
pub struct Device {
    /// A label.
    pub name: String,
    /// The store.
    pub store: Store,
    /// Its clock (advance it to move time on the device).
    pub clock: Arc<ManualClock>,
    /// The store's file.
    pub path: PathBuf,
    /// The device's officer.
    pub officer: Uuid,
    /// Its token.
    pub token: String,
    /// Its id on the server.
    pub device_id: Uuid,
    /// Its officer's villages.
    pub villages: Vec<String>,
    /// Every visit or assistance id this device recorded.
    pub facts: BTreeSet<Uuid>,
    /// Every fact this device retracted.
    pub retracted: BTreeSet<Uuid>,
    _dir: TempDir,
}

impl Device {
    /// A fresh store whose clock reads `now_ms`.
    pub fn new(name: &str, now_ms: u64) -> Device {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("device.db");
        let clock = Arc::new(ManualClock::new(now_ms));
        let store = Store::open(
            &path,
            Options {
                clock: clock.clone(),
                // Speed: these tests are about sync, not power loss.
                durability: doorstep_core::Durability::Normal,
                ..Options::default()
            },
        )
        .expect("device store");
        Device {
            name: name.into(),
            store,
            clock,
            path,
            officer: Uuid::nil(),
            token: String::new(),
            device_id: Uuid::nil(),
            villages: Vec::new(),
            facts: BTreeSet::new(),
            retracted: BTreeSet::new(),
            _dir: dir,
        }
    }

    /// A sync configuration for tests: short backoffs and timeouts, small batches (so a sync
    /// takes several requests and a fault can land in the middle).
    pub fn config(&self, url: &str) -> SyncConfig {
        let mut c = SyncConfig::new(url, self.token.clone());
        c.push_batch = 50;
        c.pull_page = 100;
        c.max_attempts = 3;
        c.initial_backoff = Duration::from_millis(20);
        c.max_backoff = Duration::from_millis(200);
        c.timeout = Duration::from_secs(5);
        c
    }

    /// Sync with `url` using [`Device::config`] adjusted by `tweak`.
    pub fn sync_with(
        &mut self,
        url: &str,
        tweak: impl FnOnce(&mut SyncConfig),
    ) -> doorstep_core::Result<SyncReport> {
        let mut c = self.config(url);
        tweak(&mut c);
        doorstep_core::sync::sync(&mut self.store, &c, &mut |_| {})
    }

    /// Sync with `url` using [`Device::config`].
    pub fn sync(&mut self, url: &str) -> doorstep_core::Result<SyncReport> {
        self.sync_with(url, |_| {})
    }

    /// The rows of this device's villages.
    pub fn dump(&self) -> String {
        crate::scope::scope_dump(self.store.connection(), &self.villages)
    }

    /// This device's replica id.
    pub fn replica(&self) -> Uuid {
        self.store.replica_id().0
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
