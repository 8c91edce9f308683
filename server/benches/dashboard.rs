//! Benchmark of the command centre at province scale: every dashboard page's p50/p95 over real
//! HTTP, the daily XLSX, the statistics snapshot's build time, and the baseline: computing the
//! statistics from the store on every request (what a per-request `GROUP BY` design does).
//!
//! Run with `cargo bench -p doorstep-server --bench dashboard -- [--quick]`; `scripts/bench.sh`
//! runs it (`dashboard`) and adds its section and summary rows to `docs/benchmarks.md`.
//!
//! The store: Ninh Thuận's official units plus 8 villages per commune, 319,284 residents in
//! households of 4 imported from a generated roster (58,866 already activated, as on
//! 27/6/2023: 13,916 level 1, 44,950 level 2), 4 officers per commune, then the campaign's work
//! recorded with the core's write API: for each of the 260,418 residents not yet activated, one
//! to three failed attempts, a guidance step and a corrected phone number; for 79 % of them a
//! level-2 application and activation (a third also guided to the portal) or a level-1
//! activation, spread over the 81 days, with some earliest activations retracted; 12 visits per
//! household; receiving sessions and outreach: about 3 million operations. Made in memory,
//! written to `target/bench-dashboard/province-<residents>-v<GENERATION>.db` with `VACUUM INTO`,
//! and reused by later runs (bump [`GENERATION`] when the world changes).

use chrono::NaiveDate;
use doorstep_core::*;
use doorstep_server::backend::Backend;
use doorstep_server::stats::{Snapshot, StatsCache};
use doorstep_server::SqliteBackend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[path = "../../core/benches/support/report.rs"]
mod report;
use report::*;

const RESIDENTS: usize = 319_284;
const L1_AT_START: usize = 13_916;
const L2_AT_START: usize = 44_950;
const VILLAGES_PER_COMMUNE: usize = 8;
const OFFICERS_PER_COMMUNE: usize = 4;
const HH_SIZE: usize = 4;
/// Version of the generated world (part of the cache file's name).
const GENERATION: u32 = 2;
/// Visits per household over the campaign.
const VISITS_PER_HOUSEHOLD: usize = 12;

fn noon_ms(d: NaiveDate, minute: i64) -> i64 {
    d.and_hms_opt(2, 0, 0).unwrap().and_utc().timestamp_millis() + minute * 60_000
}

struct World {
    db: PathBuf,
    campaign: Uuid,
    province: String,
    district: String,
    commune: String,
    officer: Uuid,
    ops: u64,
}

fn build(db: &Path, residents: usize) -> World {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(0xDA5B_0A2D);
    let mut s = Store::open_in_memory(Options::default()).unwrap();
    let units = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ninh-thuan-2023-units.csv"),
    )
    .unwrap();
    s.import_units_csv(&units[..]).unwrap();
    let communes: Vec<(String, String)> = {
        let mut st = s
            .connection()
            .prepare("SELECT code, parent_code FROM units WHERE level = 'commune' ORDER BY code")
            .unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        rows
    };
    let province: String = s
        .connection()
        .query_row("SELECT code FROM units WHERE level = 'province'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut villages = Vec::new();
    for (c, _) in &communes {
        for v in 1..=VILLAGES_PER_COMMUNE {
            let code = format!("{c}-{v:02}");
            s.put_unit(UnitInput {
                code: code.clone(),
                parent_code: Some(c.clone()),
                level: UnitLevel::Village,
                kind: "thôn".into(),
                name: format!("Thôn {v}"),
            })
            .unwrap();
            villages.push(code);
        }
    }
    let start = NaiveDate::from_ymd_opt(2023, 6, 27).unwrap();
    let end = NaiveDate::from_ymd_opt(2023, 9, 15).unwrap();
    let campaign = Uuid::now_v7();
    s.put_campaign(CampaignInput {
        id: campaign,
        name: "80 ngày đêm".into(),
        start_date: start,
        end_date: end,
        target: 264_720,
        unit_code: province.clone(),
    })
    .unwrap();
    // Officers: 4 per commune, 2 villages each; quotas per commune and officer.
    let mut officers: Vec<(Uuid, usize)> = Vec::new(); // (id, commune index)
    for (ci, (c, _)) in communes.iter().enumerate() {
        for k in 0..OFFICERS_PER_COMMUNE {
            let id = Uuid::now_v7();
            s.put_officer(OfficerInput {
                id,
                name: format!("Cán bộ {c}-{k}"),
                role: Role::Field,
                unit_code: c.clone(),
            })
            .unwrap();
            for v in [2 * k, 2 * k + 1] {
                s.assign(id, AssignTarget::Village(format!("{c}-{:02}", v + 1)))
                    .unwrap();
            }
            s.set_quota(QuotaInput {
                campaign_id: campaign,
                subject: QuotaSubject::Officer(id),
                period: QuotaPeriod::Campaign,
                metric: QuotaMetric::Level2Activated,
                target: 800,
            })
            .unwrap();
            officers.push((id, ci));
        }
        s.set_quota(QuotaInput {
            campaign_id: campaign,
            subject: QuotaSubject::Unit(c.clone()),
            period: QuotaPeriod::Campaign,
            metric: QuotaMetric::Level2Activated,
            target: 4000,
        })
        .unwrap();
    }
    progress(&format!(
        "reference data: {} communes, {} villages, {} officers",
        communes.len(),
        villages.len(),
        officers.len()
    ));
    // The roster.
    let mut csv = String::from("household_code,village_code,full_name,birth_date,account,agency\n");
    let mut statuses: Vec<&str> = vec!["none"; residents];
    let l1 = L1_AT_START * residents / RESIDENTS;
    let l2 = L2_AT_START * residents / RESIDENTS;
    for st in statuses.iter_mut().take(l1) {
        *st = "level1_activated";
    }
    for st in statuses.iter_mut().skip(l1).take(l2) {
        *st = "level2_activated";
    }
    for i in (0..residents).rev() {
        let j = rng.gen_range(0..=i);
        statuses.swap(i, j);
    }
    for (i, st) in statuses.iter().enumerate() {
        let hh = i / HH_SIZE;
        let village = &villages[hh % villages.len()];
        let agency = if i % 97 == 0 {
            format!("Cơ quan {}", i % 13)
        } else {
            String::new()
        };
        let _ = writeln!(
            csv,
            "H{hh:07},{village},Nguyễn Văn {i},{},{st},{agency}",
            1950 + (i % 55)
        );
    }
    let report = s
        .import_roster(campaign, csv.as_bytes(), &mut |_| {})
        .expect("roster");
    progress(&format!(
        "roster: {} rows, {} rejected, {:.0} s",
        report.rows,
        report.rejected.len(),
        started.elapsed().as_secs_f64()
    ));
    // The campaign's work: residents not yet activated, in a random order, activated over
    // the days (some at level 1, most at level 2), with failures and a few retractions.
    let ids: Vec<(String, String)> = {
        let mut st = s
            .connection()
            .prepare(
                "SELECT r.id, h.village_code FROM residents r JOIN households h ON h.id = r.household_id
                  JOIN account_state a ON a.resident_id = r.id WHERE a.level1 < 2 AND a.level2 < 2",
            )
            .unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        rows
    };
    let village_officer = |v: &str| -> Uuid {
        let (c, n) = v.split_once('-').unwrap();
        let ci = communes.iter().position(|(x, _)| x == c).unwrap();
        let k = (n.parse::<usize>().unwrap() - 1) / 2;
        officers[ci * OFFICERS_PER_COMMUNE + k].0
    };
    let days = (end - start).num_days() as usize + 1;
    let to_activate = ids.len() * 79 / 100;
    let mut facts = 0u64;
    for (i, (rid, village)) in ids.iter().enumerate() {
        let resident = Uuid::parse_str(rid).unwrap();
        let officer = village_officer(village);
        let day = start + chrono::Duration::days(rng.gen_range(0..days) as i64);
        let at = noon_ms(day, rng.gen_range(0..600));
        let mut step =
            |s: &mut Store, step: AssistStep, failure: Option<FailureReason>, at: i64| {
                facts += 1;
                s.record_assist(NewAssist {
                    resident_id: resident,
                    officer_id: officer,
                    at_ms: Some(at),
                    step,
                    failure,
                    receiving_point: (step == AssistStep::Level2Received).then(|| "Xã".into()),
                    note: None,
                })
                .unwrap()
            };
        // Failed attempts first (one or two), a guidance step, a phone number corrected.
        for k in 0..(1 + i % 3) {
            step(
                &mut s,
                AssistStep::Level1Activated,
                Some(FailureReason::ALL[(i + k) % FailureReason::ALL.len()]),
                at - 3_600_000 + k as i64 * 60_000,
            );
        }
        step(&mut s, AssistStep::Level1Guided, None, at - 1_800_000);
        s.edit_resident(
            resident,
            ResidentEdit {
                phone: Some(Some(format!("09{:08}", i % 100_000_000))),
                note: None,
            },
        )
        .unwrap();
        if i >= to_activate {
            continue;
        }
        if i % 4 == 0 {
            let a = step(&mut s, AssistStep::Level1Activated, None, at);
            if i % 200 == 0 {
                s.retract(a, Some("mistake")).unwrap();
                step(&mut s, AssistStep::Level1Activated, None, at + 3_600_000);
            }
        } else {
            step(&mut s, AssistStep::Level2Received, None, at - 600_000);
            step(&mut s, AssistStep::Level2Activated, None, at);
            if i % 3 == 0 {
                step(&mut s, AssistStep::PortalGuided, None, at + 60_000);
            }
        }
        if i % 50_000 == 0 {
            progress(&format!("work: {i}/{} residents", ids.len()));
        }
    }
    // Visits: several per household on random days; sessions and outreach per commune per day.
    let hhs: Vec<(String, String)> = {
        let mut st = s
            .connection()
            .prepare("SELECT id, village_code FROM households")
            .unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        rows
    };
    for (h, v) in hhs
        .iter()
        .flat_map(|x| std::iter::repeat_n(x, VISITS_PER_HOUSEHOLD))
    {
        let day = start + chrono::Duration::days(rng.gen_range(0..days) as i64);
        s.record_visit(NewVisit {
            household_id: Uuid::parse_str(h).unwrap(),
            officer_id: village_officer(v),
            at_ms: Some(noon_ms(day, rng.gen_range(0..600))),
            outcome: VisitOutcome::Met,
            revisit_at_ms: None,
            note: None,
            location: None,
        })
        .unwrap();
        facts += 1;
    }
    for (ci, (c, _)) in communes.iter().enumerate() {
        for d in (0..days).step_by(3) {
            let day = start + chrono::Duration::days(d as i64);
            s.record_session(NewSession {
                unit_code: c.clone(),
                officer_id: officers[ci * OFFICERS_PER_COMMUNE].0,
                kind: if d % 2 == 0 {
                    SessionKind::Mobile
                } else {
                    SessionKind::Fixed
                },
                place: "Nhà văn hoá".into(),
                starts_at_ms: noon_ms(day, -120),
                ends_at_ms: noon_ms(day, 60),
                applications: 40,
                note: None,
            })
            .unwrap();
            s.record_outreach(NewOutreach {
                unit_code: c.clone(),
                officer_id: officers[ci * OFFICERS_PER_COMMUNE + 1].0,
                kind: OutreachKind::Meeting,
                at_ms: Some(noon_ms(day, 0)),
                place: "Hội trường".into(),
                people_reached: 120,
                note: None,
            })
            .unwrap();
            facts += 2;
        }
    }
    let ops: u64 = s
        .connection()
        .query_row("SELECT count(*) FROM oplog", [], |r| r.get(0))
        .unwrap();
    progress(&format!(
        "work: {facts} facts; {ops} operations in all; {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    let _ = std::fs::remove_file(db);
    s.connection()
        .execute("VACUUM INTO ?1", [db.to_string_lossy()])
        .unwrap();
    let (c, d) = communes[0].clone();
    World {
        db: db.to_owned(),
        campaign,
        province,
        district: d,
        commune: c,
        officer: officers[0].0,
        ops,
    }
}

fn world(dir: &Path, quick: bool) -> World {
    let residents = if quick { 20_000 } else { RESIDENTS };
    let db = dir.join(format!("province-{residents}-v{GENERATION}.db"));
    let meta = dir.join(format!("province-{residents}-v{GENERATION}.txt"));
    if let Ok(text) = std::fs::read_to_string(&meta) {
        let f: Vec<&str> = text.split_whitespace().collect();
        if f.len() == 6 && db.exists() {
            progress(&format!("reusing {}", db.display()));
            return World {
                db,
                campaign: Uuid::parse_str(f[0]).unwrap(),
                province: f[1].into(),
                district: f[2].into(),
                commune: f[3].into(),
                officer: Uuid::parse_str(f[4]).unwrap(),
                ops: f[5].parse().unwrap(),
            };
        }
    }
    progress(&format!(
        "building a store of {residents} residents (cached for later runs)"
    ));
    let w = build(&db, residents);
    std::fs::write(
        &meta,
        format!(
            "{} {} {} {} {} {}",
            w.campaign, w.province, w.district, w.commune, w.officer, w.ops
        ),
    )
    .unwrap();
    w
}

fn timed(client: &reqwest::blocking::Client, url: &str) -> (f64, usize) {
    let t = Instant::now();
    let resp = client.get(url).send().unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let n = resp.bytes().unwrap().len();
    (ms(t.elapsed()), n)
}

fn main() {
    let mut quick = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--bench" => {}
            "--quick" => quick = true,
            s => {
                eprintln!("unknown argument {s}; usage: dashboard [--quick]");
                std::process::exit(2);
            }
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let cache = target.join("bench-dashboard");
    std::fs::create_dir_all(&cache).unwrap();
    let started = Instant::now();
    let mut rep = Report::default();
    let env = environment(&cache);
    let w = world(&cache, quick);
    // Work on a copy: the server adds its own tables.
    let tmp = tempfile::Builder::new()
        .prefix("doorstep-bench-dash-")
        .tempdir()
        .unwrap();
    let db = tmp.path().join("server.db");
    std::fs::copy(&w.db, &db).unwrap();
    let backend: Arc<Backend> = Arc::new(SqliteBackend::open(&db).unwrap());
    let residents: i64 = {
        let mut n = 0;
        backend
            .read_view(&mut |c| {
                n = c.query_row("SELECT count(*) FROM residents", [], |r| r.get(0))?;
                Ok(())
            })
            .unwrap();
        n
    };

    // The baseline: the statistics computed from the store for a request.
    let runs = if quick { 3 } else { 5 };
    let mut builds = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        backend
            .read_view(&mut |c| {
                Snapshot::build(c, 0)?;
                Ok(())
            })
            .unwrap();
        builds.push(ms(t.elapsed()));
    }
    let build_median = median(&mut builds.clone());
    progress(&format!("snapshot build: median {build_median:.0} ms"));

    // The server, in demo mode (no sign-in in the measurement).
    let mut state = doorstep_server::state(
        backend.clone(),
        doorstep_server::http::DEFAULT_MAX_BODY_BYTES,
    );
    state.demo = true;
    state.stats = Arc::new(StatsCache::new(doorstep_server::stats::DEFAULT_DEBOUNCE_MS));
    let stats = state.stats.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(doorstep_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let client = reqwest::blocking::Client::new();
    let date = "2023-08-15";
    let q = |unit: &str| format!("unit={unit}&date={date}&campaign={}", w.campaign);
    let pages: Vec<(&str, String)> = vec![
        ("province page", format!("{base}/dash?{}", q(&w.province))),
        ("district page", format!("{base}/dash?{}", q(&w.district))),
        ("commune page", format!("{base}/dash?{}", q(&w.commune))),
        (
            "officer page",
            format!("{base}/dash/officer/{}?date={date}", w.officer),
        ),
        (
            "province JSON",
            format!("{base}/api/v1/report?{}", q(&w.province)),
        ),
    ];
    // Warm up: the first request builds the snapshot.
    let (first, _) = timed(&client, &pages[0].1);
    let n = if quick { 30 } else { 200 };
    let mut md = String::new();
    let _ = writeln!(md, "## Command centre (`doorstep-server`, dashboard)\n");
    let _ = writeln!(
        md,
        "Store: {residents} residents, {} operations (`target/bench-dashboard`, built once and reused). \
         Requests over HTTP on 127.0.0.1 to the real router (demo mode, so no sign-in), \
         {n} sequential requests per page after a warm-up; the first request of a fresh server \
         (snapshot built synchronously) took {first:.0} ms. Baseline: computing the statistics \
         from the store for a request (`Snapshot::build`, what a per-request GROUP BY design \
         pays), median of {runs}: **{build_median:.0} ms**.\n",
        w.ops
    );
    let _ = writeln!(md, "| page | p50 ms | p95 ms | bytes | baseline / p95 |");
    let _ = writeln!(md, "| --- | --- | --- | --- | --- |");
    let mut worst_p95: f64 = 0.0;
    for (name, url) in &pages {
        let mut xs = Vec::new();
        let mut bytes = 0;
        for _ in 0..n {
            let (t, b) = timed(&client, url);
            xs.push(t);
            bytes = b;
        }
        let p50 = pct(&mut xs, 50.0);
        let p95 = pct(&mut xs, 95.0);
        worst_p95 = worst_p95.max(p95);
        let _ = writeln!(
            md,
            "| {name} | {p50:.1} | {p95:.1} | {bytes} | {:.0}× |",
            build_median / p95
        );
        rep.metric(&format!("dash_{}_p95", name.replace(' ', "_")), p95, "ms");
        rep.metric(&format!("dash_{}_p50", name.replace(' ', "_")), p50, "ms");
        progress(&format!(
            "{name}: p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
        ));
    }
    // The daily XLSX of the province.
    let mut xl = Vec::new();
    let mut xbytes = 0;
    for _ in 0..(if quick { 3 } else { 10 }) {
        let (t, b) = timed(
            &client,
            &format!("{base}/reports/daily.xlsx?{}", q(&w.province)),
        );
        xl.push(t);
        xbytes = b;
    }
    let x_med = median(&mut xl.clone());
    let x_max = xl.iter().cloned().fold(0.0, f64::max);
    let _ = writeln!(
        md,
        "\nDaily XLSX of the province: median {x_med:.0} ms, worst {x_max:.0} ms ({xbytes} bytes).\n"
    );
    let (inc_md, inc) = incremental(&backend, &stats, &w, quick, build_median);
    md.push_str(&inc_md);
    for (i, (_, med, p95)) in inc.iter().enumerate() {
        let key = ["100_commune", "100_province", "1000_province"]
            .get(i)
            .unwrap_or(&"other");
        rep.metric(&format!("dash_incremental_{key}_median"), *med, "ms");
        rep.metric(&format!("dash_incremental_{key}_p95"), *p95, "ms");
    }
    rep.metric("dash_xlsx_median", x_med, "ms");
    rep.metric("dash_snapshot_build_median", build_median, "ms");
    rep.metric("dash_first_request", first, "ms");
    rep.section(&md);
    rep.row(
        "Dashboard pages at province scale (worst page p95)",
        "< 100 ms",
        format!("{worst_p95:.1} ms"),
        format!("{:.0}× vs per-request build", build_median / worst_p95),
        yes(worst_p95 < 100.0),
    );
    rep.row(
        "Daily XLSX of the province",
        "< 2 s",
        format!("{x_med:.0} ms (worst {x_max:.0})"),
        "—".into(),
        yes(x_max < 2000.0),
    );
    for (what, med, p95) in &inc {
        rep.row(
            &format!("Statistics after {what} (incremental update, p95)"),
            "≤ 1 s",
            format!("{p95:.1} ms (median {med:.1})"),
            format!("{:.0}× faster than a rebuild", build_median / med),
            yes(*p95 < 1000.0),
        );
    }
    rep.row(
        "Statistics rebuild from the whole store (first build, repair, unit changes)",
        "—",
        format!("{build_median:.0} ms"),
        "—".into(),
        "—",
    );
    drop(rt);
    let _ = Duration::ZERO;

    for (_, md) in &rep.sections {
        println!("{md}");
    }
    println!("Whole run: {:.0} s.\n", started.elapsed().as_secs_f64());
    for (k, v) in &env {
        println!("ENV\t{k}\t{v}");
    }
    for (_, r) in &rep.summary {
        println!("SUMMARY\t{}", r.join("\t"));
    }
    for (name, value, unit) in &rep.metrics {
        println!("METRIC {name} {value:.4} {unit}");
    }
}

/// The incremental statistics (ADR 0009): batches of visits, successful and failed steps and
/// retractions imported through the server's apply path (`import_ops`, the push's
/// `apply_batch`), each followed by the cache's update (`StatsCache::refresh`), timed: a
/// device's push (its commune), and batches spread across the province (many devices' pushes
/// followed by one update: each unit whose sums move is copied once per update, since pages may
/// still hold the previous snapshot). Returns the section's text and (what, median ms, p95 ms).
fn incremental(
    backend: &Arc<Backend>,
    stats: &StatsCache,
    w: &World,
    quick: bool,
    build_median: f64,
) -> (String, Vec<(String, f64, f64)>) {
    use doorstep_server::stats::Refreshed;
    // Residents across the province, and those of one commune (one officer's round).
    let read_people = |sql: &str, arg: &str| {
        let mut people: Vec<(Uuid, Uuid)> = Vec::new();
        backend
            .read_view(&mut |c| {
                let mut st = c.prepare(sql)?;
                let rows = st.query_map([arg], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (r, h) = row?;
                    if let (Ok(r), Ok(h)) = (Uuid::parse_str(&r), Uuid::parse_str(&h)) {
                        people.push((r, h));
                    }
                }
                Ok(())
            })
            .unwrap();
        people
    };
    let province = read_people(
        "SELECT id, household_id FROM residents WHERE deleted = 0 AND id > ?1 ORDER BY id
          LIMIT 20000",
        "",
    );
    let commune = read_people(
        "SELECT r.id, r.household_id FROM residents r JOIN households h ON h.id = r.household_id
           JOIN units u ON u.code = h.village_code
          WHERE r.deleted = 0 AND u.parent_code = ?1",
        &w.commune,
    );
    let replica = ReplicaId(Uuid::now_v7());
    let mut rng = StdRng::seed_from_u64(0x1c4e);
    let mut counter = 0u64;
    let mut facts: Vec<Uuid> = Vec::new();
    let day = NaiveDate::from_ymd_opt(2023, 8, 15).unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    let mut out = Vec::new();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Incremental statistics (ADR 0009): a batch of visits, successful and failed steps and \
         a few retractions, imported through the server's apply path, then the cache brought up \
         to date from what the batch touched (`StatsCache::refresh`, what the next request does \
         before answering). Rebuild from the whole store, same run: {build_median:.0} ms.\n"
    );
    let _ = writeln!(
        md,
        "| batch | updates | median ms | p95 ms | rebuild / median |"
    );
    let _ = writeln!(md, "| --- | --- | --- | --- | --- |");
    for (size, local) in [(100usize, true), (100, false), (1000, false)] {
        let people = if local { &commune } else { &province };
        let rounds = if quick { 5 } else { 15 };
        let mut times = Vec::new();
        for _ in 0..rounds {
            let mut ops = Vec::with_capacity(size);
            for i in 0..size {
                counter += 1;
                let (resident, household) = people[rng.gen_range(0..people.len())];
                let id = Uuid::now_v7();
                let at_ms = noon_ms(day, rng.gen_range(0..480));
                let body = match i % 10 {
                    0..=3 => OpBody::Visit(Visit {
                        id,
                        household_id: household,
                        officer_id: w.officer,
                        at_ms,
                        outcome: VisitOutcome::Met,
                        revisit_at_ms: None,
                        note: None,
                        location: None,
                    }),
                    9 if !facts.is_empty() => OpBody::Retract {
                        fact_id: facts.swap_remove(rng.gen_range(0..facts.len())),
                        reason: None,
                    },
                    k => OpBody::Assist(Assist {
                        id,
                        resident_id: resident,
                        officer_id: w.officer,
                        at_ms,
                        step: [
                            AssistStep::Level1Activated,
                            AssistStep::Level2Activated,
                            AssistStep::PortalGuided,
                        ][k % 3],
                        failure: (k == 8).then_some(FailureReason::OtpNotReceived),
                        receiving_point: None,
                        note: None,
                    }),
                };
                if !matches!(body, OpBody::Retract { .. }) {
                    facts.push(id);
                }
                ops.push(Op {
                    replica,
                    counter,
                    hlc: Hlc::new(now() as u64, 0),
                    body,
                });
            }
            let applied = backend.import_ops("bench", &ops, now()).unwrap();
            assert_eq!(applied as usize, ops.len(), "the batch was applied whole");
            let t = Instant::now();
            let r = stats.refresh(backend).unwrap();
            times.push(ms(t.elapsed()));
            assert!(
                matches!(r, Refreshed::Incremental { .. }),
                "followed incrementally: {r:?}"
            );
        }
        let med = median(&mut times.clone());
        let p95 = pct(&mut times, 95.0);
        let what = if local {
            format!("{size} operations in one commune (one device's push)")
        } else {
            format!("{size} operations across the province")
        };
        progress(&format!(
            "incremental update, {what}: median {med:.1} ms, p95 {p95:.1} ms"
        ));
        let _ = writeln!(
            md,
            "| {what} | {rounds} | {med:.1} | {p95:.1} | {:.0}× |",
            build_median / med
        );
        out.push((what, med, p95));
    }
    md.push('\n');
    (md, out)
}
