//! Scale: the SQLite and PostgreSQL backends side by side in one run, as the data grows from
//! one province (Ninh Thuận: 319,284 residents, about 3 million operations) to a national
//! projection of 32 such provinces (10.2 million residents).
//!
//! The data:
//! - province 1 is the dashboard benchmark's province-scale store (`target/bench-dashboard`,
//!   built by `cargo bench --bench dashboard`): the real units, the roster, the whole
//!   81-day campaign's work, about 2.8 million operations, read from its log and filed in each
//!   backend through `import_ops`;
//! - every further province has Ninh Thuận's unit tree under other codes (`s01-58`, …),
//!   8 villages per commune, an officer per commune and a campaign (console writes), a roster
//!   of 319,284 residents in households of 4 as the operations a roster import makes (one per
//!   household, one per resident, from the province station's replica), and the first days
//!   of field work: a visit to every household and a level-2 application and activation for
//!   5 % of the residents; both filed through `import_ops`. So the later provinces are at the
//!   start of their campaign: the national point has 10 million residents but not 32 × 3
//!   million operations.
//!
//! Filing runs on both backends at once (a thread each); measuring runs one backend at a
//! time, with nothing else running in the process.
//!
//! At every size, on each backend (in-process through the `Backend` trait, so the storage is
//! what is measured, not HTTP):
//! - **ingest**: 20 devices of one commune lead push 40 batches of 500 visits round-robin
//!   (scope check, feed, acknowledgement, commit: the whole push path); operations per second;
//! - **tail pull**: an up-to-date device pulls the next 500 operations (15 pulls; p50/p90);
//! - **first page**: a new device's first page of 1,000 operations (5 pulls; median);
//! - **dashboard**: the statistics snapshot built from the store (what a background rebuild
//!   costs, and how stale the pages can be), then the province, commune and JSON pages over
//!   real HTTP from the snapshot (30 requests each after a warm-up; p50/p95);
//! - the database's size on disk.
//!
//! PostgreSQL: the cluster named by `DOORSTEP_BENCH_DATABASE_URL` (`scripts/bench.sh scale`
//! starts one with `fsync` on); without it only SQLite is measured. Writes `docs/bench/scale.md`
//! and the plot `docs/bench/scale.svg` (or the paths given by `--out DIR`). `--quick`: small
//! synthetic provinces, a smoke test, not for the record.

use chrono::NaiveDate;
use doorstep_core::{
    Assist, AssistStep, CampaignInput, Entity, Field, Hlc, Key, Op, OpBody, ReplicaId, Role, Value,
    Visit, VisitOutcome,
};
use doorstep_server::backend::{Backend, DeviceAuth, Enrolment, CLI_ACTOR};
use doorstep_server::pg::{testing, ViewOptions};
use doorstep_server::stats::StatsCache;
use doorstep_server::{PgBackend, SqliteBackend};
use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const DEVICES: usize = 20;
const BATCH: usize = 500;
const WINDOW_BATCHES: usize = 40;
const IMPORT_CHUNK: usize = 20_000;
const VILLAGES_PER_COMMUNE: usize = 8;
const HH_SIZE: usize = 4;

fn progress(msg: &str) {
    eprintln!("[scale {}] {msg}", chrono::Local::now().format("%H:%M:%S"));
}

fn now_ms() -> i64 {
    doorstep_server::now_ms()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

/// Where province 1 comes from: the dashboard benchmark's cached store and its metadata.
struct World {
    db: PathBuf,
    province: String,
    commune: String,
}

fn dashboard_world(target: &Path) -> Option<World> {
    let dir = target.join("bench-dashboard");
    let meta = std::fs::read_to_string(dir.join("province-319284-v2.txt")).ok()?;
    let f: Vec<&str> = meta.split_whitespace().collect();
    let db = dir.join("province-319284-v2.db");
    (f.len() == 6 && db.exists()).then(|| World {
        db,
        province: f[1].into(),
        commune: f[3].into(),
    })
}

/// The operations of a store file, in log order, a chunk at a time.
fn for_each_logged_chunk(db: &Path, mut f: impl FnMut(&[Op])) -> u64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut st = conn
        .prepare("SELECT replica, counter, hlc, body FROM oplog ORDER BY replica, counter")
        .unwrap();
    let mut rows = st.query([]).unwrap();
    let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
    let mut n = 0;
    while let Some(r) = rows.next().unwrap() {
        let replica: Vec<u8> = r.get(0).unwrap();
        let body: Vec<u8> = r.get(3).unwrap();
        chunk.push(Op::from_log(&replica, r.get(1).unwrap(), r.get(2).unwrap(), &body).unwrap());
        if chunk.len() == IMPORT_CHUNK {
            f(&chunk);
            n += chunk.len() as u64;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        f(&chunk);
        n += chunk.len() as u64;
    }
    n
}

/// A synthetic province: Ninh Thuận's unit tree under the prefix `s{k:02}-`, and its roster
/// as the operations a roster import makes (a household's fields, then each resident's),
/// made by the province station's replica.
struct Province {
    k: usize,
    units_csv: String,
    communes: Vec<String>,
    campaign: CampaignInput,
    roster: Vec<Op>,
    /// `(household, village)` and `(resident, village)`, for the first days' work.
    households: Vec<(Uuid, String)>,
    residents: Vec<(Uuid, String)>,
}

fn synthetic_province(k: usize, residents: usize) -> Province {
    let prefix = format!("s{k:02}-");
    let units = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ninh-thuan-2023-units.csv"),
    )
    .unwrap();
    let mut csv = String::from("code,parent_code,level,kind,name\n");
    let mut communes = Vec::new();
    let mut province = String::new();
    for line in units.lines().skip(1) {
        let f: Vec<&str> = line.splitn(5, ',').collect();
        let parent = if f[1].is_empty() {
            String::new()
        } else {
            format!("{prefix}{}", f[1])
        };
        let _ = writeln!(csv, "{prefix}{},{parent},{},{},{}", f[0], f[2], f[3], f[4]);
        match f[2] {
            "commune" => communes.push(format!("{prefix}{}", f[0])),
            "province" => province = format!("{prefix}{}", f[0]),
            _ => {}
        }
    }
    for c in &communes {
        for v in 1..=VILLAGES_PER_COMMUNE {
            let _ = writeln!(csv, "{c}-{v:02},{c},village,thôn,Thôn {v}");
        }
    }
    let villages: Vec<String> = communes
        .iter()
        .flat_map(|c| (1..=VILLAGES_PER_COMMUNE).map(move |v| format!("{c}-{v:02}")))
        .collect();
    let campaign = CampaignInput {
        id: Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("scale-campaign-{k}").as_bytes(),
        ),
        name: format!("Chiến dịch {k}"),
        start_date: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2023, 9, 15).unwrap(),
        target: (residents * 83 / 100) as i64,
        unit_code: province,
    };
    // The roster's operations, as `Store::import_roster` makes them.
    let station = ReplicaId(Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("scale-station-{k}").as_bytes(),
    ));
    let hlc = NaiveDate::from_ymd_opt(2023, 6, 20)
        .unwrap()
        .and_hms_opt(1, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis() as u64;
    let mut roster = Vec::new();
    let mut households = Vec::new();
    let mut people = Vec::new();
    let mut counter = 0u64;
    let mut push = |roster: &mut Vec<Op>, entity: Entity, id: Uuid, fields: Vec<(Field, Value)>| {
        counter += 1;
        roster.push(Op {
            replica: station,
            counter,
            hlc: Hlc::new(hlc, 0),
            body: OpBody::Set {
                entity,
                key: Key::Uuid(id),
                fields,
            },
        });
    };
    for hh in 0..residents.div_ceil(HH_SIZE) {
        let code = format!("{prefix}H{hh:07}");
        let village = villages[hh % villages.len()].clone();
        let hid = doorstep_core::roster::household_id(campaign.id, &code);
        push(
            &mut roster,
            Entity::Household,
            hid,
            vec![
                (Field::Code, Value::Text(code.clone())),
                (Field::Village, Value::Text(village.clone())),
                (Field::Deleted, Value::Int(0)),
            ],
        );
        households.push((hid, village.clone()));
        for i in hh * HH_SIZE..((hh + 1) * HH_SIZE).min(residents) {
            let status = match i % 17 {
                0 => "level1_activated",
                1..=2 => "level2_activated",
                _ => "none",
            };
            let rid = Uuid::new_v5(&campaign.id, format!("resident:{code}:{i}").as_bytes());
            push(
                &mut roster,
                Entity::Resident,
                rid,
                vec![
                    (Field::Household, Value::Text(hid.to_string())),
                    (Field::FullName, Value::Text(format!("Trần Thị {i}"))),
                    (Field::BirthDate, Value::Text((1950 + i % 55).to_string())),
                    (Field::Account, Value::Text(status.into())),
                    (Field::Deleted, Value::Int(0)),
                ],
            );
            people.push((rid, village.clone()));
        }
    }
    Province {
        k,
        units_csv: csv,
        communes,
        campaign,
        roster,
        households,
        residents: people,
    }
}

/// One backend under measurement.
struct Side {
    name: &'static str,
    backend: Arc<Backend>,
    devices: Vec<DeviceAuth>,
    counters: Vec<u64>,
    officer: Uuid,
    households: Vec<Uuid>,
    reader_cursor: Option<String>,
    /// How to measure the database's size on disk.
    size: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Time spent filing the data set (console imports and `import_ops`), and operations filed.
    load: Duration,
    loaded_ops: u64,
}

impl Side {
    fn new(
        name: &'static str,
        backend: Arc<Backend>,
        size: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Side {
        Side {
            name,
            backend,
            devices: Vec::new(),
            counters: Vec::new(),
            officer: Uuid::nil(),
            households: Vec::new(),
            reader_cursor: None,
            size,
            load: Duration::ZERO,
            loaded_ops: 0,
        }
    }

    fn feed_rows(&self) -> u64 {
        self.backend.gauges().unwrap().feed_rows
    }

    /// The bench's commune lead and devices, in `commune` of province 1.
    fn prepare(&mut self, commune: &str) {
        let now = now_ms();
        let b = &self.backend;
        self.officer = b
            .add_officer(CLI_ACTOR, "Cán bộ đo", Role::CommuneLead, commune, now)
            .unwrap();
        for v in 1..=VILLAGES_PER_COMMUNE {
            b.assign_village(CLI_ACTOR, self.officer, &format!("{commune}-{v:02}"), now)
                .unwrap();
        }
        let mut hh = Vec::new();
        b.read_view(&mut |c| {
            let mut st = c.prepare(
                "SELECT id FROM households WHERE village_code >= ?1 AND village_code < ?2
                 ORDER BY id",
            )?;
            let rows = st.query_map([format!("{commune}-"), format!("{commune}.")], |r| {
                r.get::<_, String>(0)
            })?;
            for r in rows {
                hh.push(Uuid::parse_str(&r?).unwrap());
            }
            Ok(())
        })
        .unwrap();
        assert!(!hh.is_empty(), "no household in {commune}");
        self.households = hh;
        for i in 0..DEVICES {
            let code = b
                .issue_enrol_code(CLI_ACTOR, self.officer, 60, now)
                .unwrap()
                .code;
            let e = b
                .enrol(
                    Enrolment {
                        code,
                        device_name: format!("máy {i}"),
                        replica: Uuid::new_v4(),
                        device_time_ms: now,
                        public_key: None,
                    },
                    now,
                )
                .unwrap();
            self.devices
                .push(b.authenticate_device(&e.token).unwrap().unwrap());
        }
        self.counters = vec![0; DEVICES];
    }

    fn visits(&mut self, device: usize, n: usize) -> Vec<Op> {
        let now = now_ms() as u64;
        (0..n)
            .map(|i| {
                self.counters[device] += 1;
                let c = self.counters[device];
                Op {
                    replica: ReplicaId(self.devices[device].replica),
                    counter: c,
                    hlc: Hlc::new(now, i as u16),
                    body: OpBody::Visit(Visit {
                        id: Uuid::now_v7(),
                        household_id: self.households
                            [(c as usize * 7 + device) % self.households.len()],
                        officer_id: self.officer,
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

    fn push(&mut self, device: usize) {
        let ops = self.visits(device, BATCH);
        let d = self.devices[device].clone();
        let r = self.backend.push(&d, ops, now_ms(), now_ms()).unwrap();
        assert_eq!(r.applied as usize, BATCH, "{r:?}");
    }

    fn catch_up_reader(&mut self) {
        let reader = self.devices[DEVICES - 1].clone();
        loop {
            let page = self
                .backend
                .pull(
                    &reader,
                    self.reader_cursor.as_deref(),
                    1000,
                    now_ms(),
                    now_ms(),
                )
                .unwrap();
            self.reader_cursor = Some(page.cursor);
            if !page.has_more {
                break;
            }
        }
    }
}

/// What one backend measured at one size.
#[derive(Clone)]
struct Row {
    backend: &'static str,
    provinces: usize,
    residents: u64,
    feed: u64,
    load_ops_s: f64,
    ingest_ops_s: f64,
    tail_p50: f64,
    tail_p90: f64,
    first_p50: f64,
    snapshot_ms: f64,
    page_p50: f64,
    page_p95: f64,
    worst_page: &'static str,
    bytes: u64,
}

fn measure(
    side: &mut Side,
    provinces: usize,
    province: &str,
    commune: &str,
    campaign: Uuid,
) -> Row {
    let residents: u64 = {
        let mut n = 0;
        side.backend
            .read_view(&mut |c| {
                n = c.query_row("SELECT count(*) FROM residents", [], |r| r.get(0))?;
                Ok(())
            })
            .unwrap();
        n
    };
    let load_ops_s = side.loaded_ops as f64 / side.load.as_secs_f64().max(1e-9);
    side.load = Duration::ZERO;
    side.loaded_ops = 0;
    // Ingest: the push path.
    let t = Instant::now();
    for i in 0..WINDOW_BATCHES {
        side.push(i % (DEVICES - 1));
    }
    let ingest_ops_s = (WINDOW_BATCHES * BATCH) as f64 / t.elapsed().as_secs_f64();
    // Tail pulls.
    side.catch_up_reader();
    let reader = side.devices[DEVICES - 1].clone();
    let mut tail = Vec::new();
    for i in 0..15 {
        side.push(i % (DEVICES - 1));
        let t = Instant::now();
        let page = side
            .backend
            .pull(
                &reader,
                side.reader_cursor.as_deref(),
                1000,
                now_ms(),
                now_ms(),
            )
            .unwrap();
        tail.push(ms(t.elapsed()));
        assert_eq!(page.ops.len(), BATCH);
        side.reader_cursor = Some(page.cursor);
    }
    // A new device's first page.
    let mut first = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let page = side
            .backend
            .pull(&side.devices[0], None, 1000, now_ms(), now_ms())
            .unwrap();
        first.push(ms(t.elapsed()));
        assert_eq!(page.ops.len(), 1000);
    }
    let feed = side.feed_rows();
    // The dashboard: the snapshot, then pages over HTTP.
    let stats = Arc::new(StatsCache::new(doorstep_server::stats::DEFAULT_DEBOUNCE_MS));
    let t = Instant::now();
    stats.get(&side.backend).unwrap();
    let snapshot_ms = ms(t.elapsed());
    let mut state = doorstep_server::state(
        side.backend.clone(),
        doorstep_server::http::DEFAULT_MAX_BODY_BYTES,
    );
    state.demo = true;
    state.stats = stats;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(doorstep_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::blocking::Client::new();
    let date = "2023-08-15";
    let q = |unit: &str| format!("unit={unit}&date={date}&campaign={campaign}");
    let pages: [(&'static str, String); 3] = [
        ("province page", format!("{base}/dash?{}", q(province))),
        ("commune page", format!("{base}/dash?{}", q(commune))),
        (
            "province JSON",
            format!("{base}/api/v1/report?{}", q(province)),
        ),
    ];
    let (mut page_p50, mut page_p95, mut worst_page) = (0.0, 0.0, pages[0].0);
    for (name, url) in &pages {
        let mut xs = Vec::new();
        for i in 0..31 {
            let t = Instant::now();
            let resp = client.get(url).send().unwrap();
            assert!(resp.status().is_success(), "{url}: {}", resp.status());
            resp.bytes().unwrap();
            if i > 0 {
                xs.push(ms(t.elapsed()));
            }
        }
        let p95 = percentile(&mut xs, 0.95);
        if p95 > page_p95 {
            page_p95 = p95;
            page_p50 = percentile(&mut xs, 0.5);
            worst_page = name;
        }
    }
    let _ = stop.send(());
    let _ = rt.block_on(server);
    drop(rt);
    let row = Row {
        backend: side.name,
        provinces,
        residents,
        feed,
        load_ops_s,
        ingest_ops_s,
        tail_p50: percentile(&mut tail, 0.5),
        tail_p90: percentile(&mut tail, 0.9),
        first_p50: percentile(&mut first, 0.5),
        snapshot_ms,
        page_p50,
        page_p95,
        worst_page,
        bytes: (side.size)(),
    };
    progress(&format!(
        "{}: {} residents, feed {}: load {:.0} ops/s, ingest {:.0} ops/s, tail {:.1}/{:.1} ms, \
         first page {:.1} ms, snapshot {:.0} ms, worst page ({}) p95 {:.1} ms, {} MB",
        row.backend,
        row.residents,
        row.feed,
        row.load_ops_s,
        row.ingest_ops_s,
        row.tail_p50,
        row.tail_p90,
        row.first_p50,
        row.snapshot_ms,
        row.worst_page,
        row.page_p95,
        row.bytes / 1_000_000
    ));
    row
}

/// The field work of a synthetic province's first days (a visit to every household, a
/// level-2 application and activation for 5 % of residents), credited to `officers` (this
/// backend's, one per commune), made by the province's tablets' replica.
fn first_days(p: &Province, officers: &[(String, Uuid)]) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(0x5CA1E + p.k as u64);
    let replica = ReplicaId(Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("scale-tablets-{}", p.k).as_bytes(),
    ));
    let by_commune: std::collections::HashMap<&str, Uuid> =
        officers.iter().map(|(c, o)| (c.as_str(), *o)).collect();
    let officer_of =
        |village: &str| -> Uuid { by_commune[&village[..village.rfind('-').unwrap()]] };
    let start = p.campaign.start_date;
    let at = |rng: &mut StdRng| -> i64 {
        (start + chrono::Duration::days(rng.gen_range(0..5)))
            .and_hms_opt(1, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
            + rng.gen_range(0..36_000_000)
    };
    let mut ops = Vec::new();
    let mut counter = 0;
    let mut op = |body: OpBody, at: i64| {
        counter += 1;
        Op {
            replica,
            counter,
            hlc: Hlc::new(at as u64, 0),
            body,
        }
    };
    for (h, v) in &p.households {
        let t = at(&mut rng);
        ops.push(op(
            OpBody::Visit(Visit {
                id: Uuid::from_u128(rng.gen()),
                household_id: *h,
                officer_id: officer_of(v),
                at_ms: t,
                outcome: VisitOutcome::Met,
                revisit_at_ms: None,
                note: None,
                location: None,
            }),
            t,
        ));
    }
    for (r, v) in p.residents.iter().step_by(20) {
        let t = at(&mut rng);
        for (step, dt) in [
            (AssistStep::Level2Received, 0),
            (AssistStep::Level2Activated, 60_000),
        ] {
            ops.push(op(
                OpBody::Assist(Assist {
                    id: Uuid::from_u128(rng.gen()),
                    resident_id: *r,
                    officer_id: officer_of(v),
                    at_ms: t + dt,
                    step,
                    failure: None,
                    receiving_point: (step == AssistStep::Level2Received).then(|| "Xã".into()),
                    note: None,
                }),
                t + dt,
            ));
        }
    }
    ops
}

/// Files synthetic province `p` on one backend: units, campaign and an officer per commune
/// through the console's writes, then the roster's and the first days' operations through
/// `import_ops`.
fn file_province(side: &mut Side, p: &Province) {
    let t = Instant::now();
    let b = side.backend.clone();
    let now = now_ms();
    let before = side.feed_rows();
    b.import_units(CLI_ACTOR, p.units_csv.as_bytes(), now)
        .unwrap();
    b.put_campaign(CLI_ACTOR, p.campaign.clone(), now).unwrap();
    let officers: Vec<(String, Uuid)> = p
        .communes
        .iter()
        .map(|c| {
            let o = b
                .add_officer(CLI_ACTOR, &format!("Cán bộ {c}"), Role::Field, c, now)
                .unwrap();
            (c.clone(), o)
        })
        .collect();
    for chunk in p.roster.chunks(IMPORT_CHUNK) {
        b.import_ops(CLI_ACTOR, chunk, now_ms()).unwrap();
    }
    for chunk in first_days(p, &officers).chunks(IMPORT_CHUNK) {
        b.import_ops(CLI_ACTOR, chunk, now_ms()).unwrap();
    }
    side.load += t.elapsed();
    side.loaded_ops += side.feed_rows() - before;
}

fn fmt_int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn markdown(rows: &[Row], notes: &[String], quick: bool, svg_name: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Scale: SQLite and PostgreSQL from a province to a national projection\n"
    );
    let _ =
        writeln!(
        md,
        "Generated by `server/benches/scale.rs`{} (`scripts/bench.sh scale`). Province 1 is the \
         dashboard benchmark's province-scale store (Ninh Thuận's real units, 319,284 residents, \
         the whole campaign's work); every further province has Ninh Thuận's unit tree under \
         other codes, a 319,284-resident roster filed as the operations a roster import makes, \
         and the first days of field work (a visit per household, level 2 for 5 % of residents), so \
         the national point has 10.2 million residents but fewer operations per resident than a \
         finished campaign. In-process through the `Backend` trait; SQLite `synchronous=FULL`; \
         PostgreSQL 15 with `fsync` and `synchronous_commit` on, on the same disk, over loopback \
         TCP; one writer at a time.\n",
        if quick { " with `--quick` (not for the record)" } else { "" }
    );
    let _ = writeln!(
        md,
        "- *load*: operations per second while the data set was filed (console writes and \
         `import_ops` in chunks of {IMPORT_CHUNK}; both backends filing at once, so each had \
         about one of the machine's two cores);\n\
         - *ingest*: the push path (scope check, feed, acknowledgement, commit), {DEVICES} devices \
         pushing {WINDOW_BATCHES} batches of {BATCH} visits;\n\
         - *tail pull*: an up-to-date device pulls the next {BATCH} operations (15 pulls);\n\
         - *first page*: a new device's first 1,000 operations (5 pulls, median);\n\
         - *snapshot*: building the dashboard's statistics from the store (the background \
         rebuild after writes; pages show data this old at worst);\n\
         - *page*: the slowest of the province page, a commune page and the province JSON over \
         HTTP from the snapshot (30 requests each);\n\
         - *size*: the database on disk (PostgreSQL: `pg_database_size`, without the \
         instance's SQLite view).\n"
    );
    let _ = writeln!(
        md,
        "| backend | provinces | residents | feed operations | load ops/s | ingest ops/s | tail pull p50 / p90 ms | first page ms | snapshot s | page p50 / p95 ms | size MB |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.1} / {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {} |",
            r.backend,
            r.provinces,
            fmt_int(r.residents),
            fmt_int(r.feed),
            r.load_ops_s,
            r.ingest_ops_s,
            r.tail_p50,
            r.tail_p90,
            r.first_p50,
            r.snapshot_ms / 1000.0,
            r.page_p50,
            r.page_p95,
            fmt_int(r.bytes / 1_000_000)
        );
    }
    let _ = writeln!(md);
    for n in notes {
        let _ = writeln!(md, "{n}\n");
    }
    let _ = writeln!(md, "![How each measure grows with the data]({svg_name})\n");
    md
}

/// Four panels against residents (log–log): ingest, pulls, snapshot, pages.
fn plot(rows: &[Row], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1100, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, 2));
    type Metric = (&'static str, fn(&Row) -> f64);
    let specs: [(&str, &str, Vec<Metric>); 4] = [
        (
            "Ingest through the push path",
            "operations/s",
            vec![("ingest", |r: &Row| r.ingest_ops_s)],
        ),
        (
            "Pull latency",
            "ms",
            vec![
                ("tail pull p50", |r: &Row| r.tail_p50),
                ("first page p50", |r: &Row| r.first_p50),
            ],
        ),
        (
            "Dashboard statistics snapshot build",
            "s",
            vec![("snapshot", |r: &Row| r.snapshot_ms / 1000.0)],
        ),
        (
            "Dashboard page from the snapshot (worst page)",
            "ms",
            vec![("p95", |r: &Row| r.page_p95)],
        ),
    ];
    let backends: Vec<&str> = {
        let mut b: Vec<&str> = rows.iter().map(|r| r.backend).collect();
        b.sort();
        b.dedup();
        b
    };
    let xmin = rows.iter().map(|r| r.residents).min().unwrap_or(1) as f64 * 0.8;
    let xmax = rows.iter().map(|r| r.residents).max().unwrap_or(10) as f64 * 1.25;
    for (area, (title, unit, metrics)) in panels.iter().zip(specs.iter()) {
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|r| metrics.iter().map(move |(_, f)| f(r)))
            .filter(|v| *v > 0.0)
            .collect();
        let ymin = values.iter().cloned().fold(f64::INFINITY, f64::min) * 0.5;
        let ymax = values.iter().cloned().fold(0.0, f64::max) * 2.0;
        let mut chart = ChartBuilder::on(area)
            .caption(*title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((xmin..xmax).log_scale(), (ymin.max(1e-3)..ymax).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("residents")
            .y_desc(*unit)
            .light_line_style(RGBColor(238, 238, 238))
            .y_label_formatter(&|y| {
                if *y >= 100.0 {
                    format!("{y:.0}")
                } else if *y >= 1.0 {
                    format!("{y:.1}")
                } else {
                    format!("{y:.2}")
                }
            })
            .x_label_formatter(&|x| {
                if *x >= 1e6 {
                    format!("{:.1}M", x / 1e6)
                } else {
                    format!("{:.0}k", x / 1e3)
                }
            })
            .draw()?;
        for b in &backends {
            for (i, (name, f)) in metrics.iter().enumerate() {
                // SQLite blue, PostgreSQL orange; a second measure in a lighter shade.
                let colour = match (*b == "SQLite", i) {
                    (true, 0) => RGBColor(31, 119, 180),
                    (true, _) => RGBColor(120, 180, 230),
                    (false, 0) => RGBColor(230, 110, 0),
                    (false, _) => RGBColor(250, 180, 100),
                };
                let style = colour.stroke_width(2);
                let pts: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| r.backend == *b)
                    .map(|r| (r.residents as f64, f(r).max(1e-3)))
                    .collect();
                let label = if metrics.len() > 1 {
                    format!("{b} {name}")
                } else {
                    b.to_string()
                };
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, style.filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn main() {
    let mut quick = false;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--quick" => quick = true,
            "--out" => out = args.next().map(PathBuf::from),
            s => {
                eprintln!("unknown argument {s}; usage: scale [--quick] [--out DIR]");
                std::process::exit(2);
            }
        }
    }
    let out = out.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench"));
    std::fs::create_dir_all(&out).unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let started = Instant::now();
    // Cumulative provinces at each measured size, and residents per synthetic province.
    let (steps, synthetic_residents): (&[usize], usize) = if quick {
        (&[1, 2, 3], 4_000)
    } else {
        (&[1, 4, 10, 32], 319_284)
    };
    let world = if quick {
        None
    } else {
        match dashboard_world(&target) {
            Some(w) => Some(w),
            None => {
                eprintln!(
                    "scale: the province-scale store is missing (target/bench-dashboard); run \
                     `cargo bench -p doorstep-server --bench dashboard` (or `scripts/bench.sh \
                     dashboard`) first"
                );
                std::process::exit(1);
            }
        }
    };
    let dir = tempfile::Builder::new()
        .prefix("doorstep-bench-scale-")
        .tempdir_in(&target)
        .unwrap();
    let mut sides = Vec::new();
    {
        let path = dir.path().join("server.db");
        let p2 = path.clone();
        sides.push(Side::new(
            "SQLite",
            Arc::new(SqliteBackend::open(&path).unwrap()),
            Box::new(move || {
                ["", "-wal"]
                    .iter()
                    .filter_map(|s| {
                        std::fs::metadata(format!("{}{s}", p2.display()))
                            .ok()
                            .map(|m| m.len())
                    })
                    .sum()
            }),
        ));
    }
    let mut pg_url = None;
    match std::env::var("DOORSTEP_BENCH_DATABASE_URL") {
        Ok(base) => {
            let url = testing::fresh_database(&base).expect("create the bench database");
            pg_url = Some(url.clone());
            let b = Arc::new(
                PgBackend::open(
                    &url,
                    ViewOptions {
                        path: Some(dir.path().join("view.db")),
                        ..Default::default()
                    },
                )
                .unwrap(),
            );
            let b2 = b.clone();
            sides.push(Side::new(
                "PostgreSQL",
                b,
                Box::new(move || {
                    b2.with_client(|c| {
                        c.query_one("SELECT pg_database_size(current_database())", &[])
                            .map(|r| r.get::<_, i64>(0) as u64)
                            .unwrap_or(0)
                    })
                    .unwrap_or(0)
                }),
            ));
        }
        Err(_) => progress("DOORSTEP_BENCH_DATABASE_URL not set: PostgreSQL not measured"),
    }

    // Province 1, filed on both backends at once (one thread each: the filing is what takes
    // time; the measurements below run one backend at a time).
    let (province, commune, campaign) = match &world {
        Some(w) => {
            std::thread::scope(|s| {
                for side in sides.iter_mut() {
                    let db = w.db.clone();
                    s.spawn(move || {
                        progress(&format!(
                            "{}: filing province 1 from {}",
                            side.name,
                            db.display()
                        ));
                        let t = Instant::now();
                        let b = side.backend.clone();
                        let n = for_each_logged_chunk(&db, |chunk| {
                            b.import_ops(CLI_ACTOR, chunk, now_ms()).unwrap();
                        });
                        side.load += t.elapsed();
                        side.loaded_ops += n;
                        progress(&format!("{}: province 1 filed", side.name));
                    });
                }
            });
            let campaign = std::fs::read_to_string(w.db.with_extension("txt"))
                .unwrap()
                .split_whitespace()
                .next()
                .and_then(|s| Uuid::parse_str(s).ok())
                .unwrap();
            (w.province.clone(), w.commune.clone(), campaign)
        }
        None => {
            let p = synthetic_province(0, synthetic_residents);
            for side in sides.iter_mut() {
                file_province(side, &p);
            }
            (
                p.campaign.unit_code.clone(),
                p.communes[0].clone(),
                p.campaign.id,
            )
        }
    };
    for side in sides.iter_mut() {
        side.prepare(&commune);
    }
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let svg_name = "scale.svg";
    let mut filed = 1;
    for &step in steps {
        while filed < step {
            let p = synthetic_province(filed, synthetic_residents);
            std::thread::scope(|s| {
                for side in sides.iter_mut() {
                    let p = &p;
                    s.spawn(move || file_province(side, p));
                }
            });
            filed += 1;
            progress(&format!(
                "province {filed} filed ({:.0} s since the start)",
                started.elapsed().as_secs_f64()
            ));
        }
        for side in sides.iter_mut() {
            rows.push(measure(side, step, &province, &commune, campaign));
        }
        // A new PostgreSQL instance builds its view from the whole feed before it serves:
        // measured at province scale (larger feeds scale with the rate).
        if step == steps[0] {
            if let Some(url) = &pg_url {
                let t = Instant::now();
                let b = PgBackend::open(
                    url,
                    ViewOptions {
                        path: Some(dir.path().join("rebuilt-view.db")),
                        ..Default::default()
                    },
                )
                .unwrap();
                let took = t.elapsed();
                let n = b.gauges().unwrap().feed_rows;
                drop(b);
                let _ = std::fs::remove_file(dir.path().join("rebuilt-view.db"));
                notes.push(format!(
                    "A new PostgreSQL instance builds its SQLite view from the whole feed before it \
                     serves: {} operations in {:.1} s ({:.0} operations/s) at province scale.",
                    fmt_int(n),
                    took.as_secs_f64(),
                    n as f64 / took.as_secs_f64()
                ));
            }
        }
        let mut text = markdown(&rows, &notes, quick, svg_name);
        let _ = writeln!(text, "Whole run: {:.0} s.", started.elapsed().as_secs_f64());
        std::fs::write(out.join("scale.md"), &text).unwrap();
        if let Err(e) = plot(&rows, &out.join(svg_name)) {
            eprintln!("scale: plot not drawn: {e}");
        }
        progress(&format!("wrote {}", out.join("scale.md").display()));
    }
    print!(
        "{}",
        std::fs::read_to_string(out.join("scale.md")).unwrap_or_default()
    );
}
