//! The simulated campaign: world, server process, devices, days, final checks.

use crate::truth::{Fact, FactKind, Ledger, Numbers, Subject, World};
use crate::{observe, report, Result, SimError};
use chrono::NaiveDate;
use doorstep_core::{
    AssistStep, FailureReason, NewAssist, NewOutreach, NewSession, NewVisit, OutreachKind,
    SessionKind, VisitOutcome,
};
use doorstep_server::backend::CLI_ACTOR;
use doorstep_server::demo::{self, local_ms, DemoConfig, Plan};
use doorstep_server::SqliteBackend;
use doorstep_tests::harness::Device;
use doorstep_tests::proxy::{Fault, Proxy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Which days' reports to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportDays {
    /// Every campaign day.
    All,
    /// Every n-th day, and the last.
    Every(u32),
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Everything random is a function of it (except the server's and devices' replica ids).
    pub seed: u64,
    /// Campaign days to play (from 27/6/2023; at most 81).
    pub days: u32,
    /// The world (the demo generator's configuration; its `activity_days` is ignored).
    pub world: DemoConfig,
    /// Devices per field officer (a second phone of the same officer shares the villages).
    pub devices_per_officer: usize,
    /// Visits per device and working day (inclusive range).
    pub visits_per_day: (u32, u32),
    /// Inject faults in the links (drops, truncation, duplicates, delays, 500s).
    pub faults: bool,
    /// Days whose reports are compared.
    pub report_days: ReportDays,
    /// The server binary and the arguments before `--listen ADDR --db PATH` (e.g. `["serve"]`).
    pub server: (PathBuf, Vec<String>),
    /// Where to keep the server's database and log (a temporary directory if `None`).
    pub work_dir: Option<PathBuf>,
    /// Compare with the dashboard's JSON report API (needs a server that has it).
    pub check_api: bool,
}

impl SimConfig {
    /// The scaled-down campaign of the test: 2 districts, 4 communes, a few hundred residents,
    /// all 81 days.
    pub fn small(seed: u64, server: (PathBuf, Vec<String>)) -> SimConfig {
        SimConfig {
            seed,
            days: 81,
            world: DemoConfig {
                districts: Some(2),
                communes: Some(4),
                accounts: 400,
                level1_activated: 20,
                level2_activated: 55,
                target: 330,
                activity_days: 0,
                residents_per_village: 50,
                villages_per_officer: 2,
                ..DemoConfig::ninh_thuan(seed)
            },
            devices_per_officer: 1,
            visits_per_day: (2, 5),
            faults: true,
            report_days: ReportDays::All,
            server,
            work_dir: None,
            check_api: true,
        }
    }
}

/// How the campaign went, and what the checks found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Days played.
    pub days: u32,
    /// Devices.
    pub devices: usize,
    /// Facts recorded (all kinds).
    pub facts: usize,
    /// Retractions.
    pub retractions: usize,
    /// Duplicate activations recorded by a second team.
    pub duplicate_activations: usize,
    /// Syncs that completed / failed.
    pub syncs_ok: usize,
    /// Syncs that failed (retried later).
    pub syncs_failed: usize,
    /// Requests the proxy faulted.
    pub faults_injected: u64,
    /// Numbers compared (device ledger vs server database).
    pub compared_db: usize,
    /// Numbers compared (ledger vs report API).
    pub compared_api: usize,
    /// Numbers compared (ledger vs CSV report files).
    pub compared_csv: usize,
    /// Every disagreement, precisely.
    pub mismatches: Vec<String>,
    /// Activations during the campaign (province).
    pub activated_during_campaign: i64,
    /// Wall time, ms.
    pub runtime_ms: u128,
}

/// A `doorstep serve` process on a database.
struct ServerProc {
    child: Child,
    addr: SocketAddr,
}

impl ServerProc {
    fn start(bin: &Path, prefix: &[String], db: &Path, log: &Path) -> Result<ServerProc> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|source| SimError::Io {
                context: "finding a free port".into(),
                source,
            })?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_file = std::fs::File::create(log).map_err(|source| SimError::Io {
            context: format!("creating {}", log.display()),
            source,
        })?;
        let err_file = log_file.try_clone().map_err(|source| SimError::Io {
            context: "log".into(),
            source,
        })?;
        let child = Command::new(bin)
            .args(prefix)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--db")
            .arg(db)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|source| SimError::Io {
                context: format!("starting {}", bin.display()),
                source,
            })?;
        let mut s = ServerProc { child, addr };
        let started = Instant::now();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| SimError::ServerProcess(e.to_string()))?;
        loop {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(SimError::ServerProcess(format!(
                    "exited during startup ({status}); see {}",
                    log.display()
                )));
            }
            if TcpStream::connect_timeout(&s.addr, Duration::from_millis(200)).is_ok()
                && http
                    .get(format!("http://{}/health", s.addr))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            {
                return Ok(s);
            }
            if started.elapsed() > Duration::from_secs(60) {
                s.stop();
                return Err(SimError::ServerProcess("not healthy after 60 s".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A simulated team's phone.
struct Team {
    label: String,
    device: Device,
    officer: Uuid,
    commune: String,
    villages: Vec<String>,
    households: Vec<Uuid>,
    cursor: usize,
    offline_until: u32,
    /// (due day, fact id)
    pending_retractions: Vec<(u32, Uuid)>,
}

/// The truth model of the world: units, residents, quotas, from the plan.
pub fn world_of(plan: &Plan) -> World {
    let mut w = World {
        campaign_unit: "58".into(),
        campaign_target: plan.config.target,
        start: plan.config.start,
        end: plan.config.end,
        ..World::default()
    };
    for line in plan.units_csv().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() >= 2 && !f[1].is_empty() {
            w.parent.insert(f[0].to_owned(), f[1].to_owned());
        }
    }
    for c in &plan.communes {
        for v in &c.villages {
            for h in &v.households {
                w.household_village.insert(h.id, v.code.clone());
            }
            for r in &v.residents {
                w.residents.insert(
                    r.id,
                    crate::truth::Resident {
                        household: r.household,
                        roster: r.status,
                        agency: r.agency.map(str::to_owned),
                    },
                );
            }
        }
        w.campaign_quotas
            .insert(c.unit.code.clone(), c.campaign_quota);
    }
    for (d, q) in &plan.district_quotas {
        w.campaign_quotas.insert(d.clone(), *q);
    }
    let days: Vec<String> = plan
        .config
        .start
        .iter_days()
        .take_while(|d| *d <= plan.config.end)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    for o in &plan.officers {
        w.officer_unit.insert(o.id, o.unit.clone());
        if !o.villages.is_empty() {
            w.officer_villages.insert(o.id, o.villages.clone());
        }
        if let Some(q) = o.campaign_quota {
            w.campaign_quotas.insert(o.id.to_string(), q);
        }
        if let Some(q) = o.day_quota {
            for d in &days {
                w.day_quotas
                    .entry((o.id.to_string(), d.clone()))
                    .or_default()
                    .insert("level2_activated".into(), q);
            }
        }
    }
    for c in &plan.communes {
        for d in &days {
            w.day_quotas
                .entry((c.unit.code.clone(), d.clone()))
                .or_default()
                .insert("level2_activated".into(), c.day_quota);
        }
    }
    w
}

const REASONS: [FailureReason; 5] = [
    FailureReason::PhoneNotOwnName,
    FailureReason::OtpNotReceived,
    FailureReason::NoChipIdCard,
    FailureReason::BoundToOtherDevice,
    FailureReason::Other,
];

/// Run the campaign and the checks. `progress` gets one line at a time (counts only).
pub fn run(cfg: &SimConfig, progress: &mut dyn FnMut(&str)) -> Result<Outcome> {
    let started = Instant::now();
    let mut out = Outcome::default();
    let tmp = tempfile::tempdir().map_err(|source| SimError::Io {
        context: "creating a temporary directory".into(),
        source,
    })?;
    let dir = cfg
        .work_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|source| SimError::Io {
        context: format!("creating {}", dir.display()),
        source,
    })?;
    let db = dir.join("campaign.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }

    // The world, with one village per commune shared by two field officers (two teams on the
    // same households).
    let mut world_cfg = cfg.world.clone();
    world_cfg.activity_days = 0;
    let mut plan = demo::plan(&world_cfg)?;
    let mut shared = Vec::new();
    for c in &plan.communes {
        let field: Vec<usize> = plan
            .officers
            .iter()
            .enumerate()
            .filter(|(_, o)| o.unit == c.unit.code && !o.villages.is_empty())
            .map(|(i, _)| i)
            .collect();
        if field.len() >= 2 {
            let v = plan.officers[field[1]].villages[0].clone();
            shared.push((field[0], v));
        }
    }
    for (i, v) in shared {
        plan.officers[i].villages.push(v);
    }
    let world = world_of(&plan);
    {
        let mut store = doorstep_core::Store::open(&db, doorstep_core::Options::default())?;
        store
            .connection()
            .pragma_update(None, "synchronous", "OFF")?;
        demo::load_reference(&mut store, &plan, &mut |_| {})?;
    }
    let backend = SqliteBackend::open(&db)?;
    let now = doorstep_server::now_ms();
    let admin_token = backend
        .bootstrap_admin("Quản trị mô phỏng", now)?
        .map(|(_, t)| t)
        .unwrap_or_default();
    let field: Vec<&demo::OfficerPlan> = plan
        .officers
        .iter()
        .filter(|o| !o.villages.is_empty())
        .collect();
    let mut codes = Vec::new();
    for o in &field {
        for _ in 0..cfg.devices_per_officer.max(1) {
            codes.push((
                o.id,
                backend
                    .issue_enrol_code(CLI_ACTOR, o.id, 24 * 60, now)?
                    .code,
            ));
        }
    }
    drop(backend);
    progress(&format!(
        "world: {} communes, {} residents, {} field officers; server database ready",
        plan.communes.len(),
        world.residents.len(),
        field.len()
    ));

    let server = ServerProc::start(&cfg.server.0, &cfg.server.1, &db, &dir.join("server.log"))?;
    let proxy = Proxy::start(server.addr);
    if cfg.faults {
        proxy.random(
            cfg.seed,
            vec![
                (64, Fault::Pass),
                (5, Fault::DropRequestAfter(120)),
                (5, Fault::DropResponseAfter(150)),
                (5, Fault::TruncateResponseBody),
                (5, Fault::Http500),
                (8, Fault::Delay(Duration::from_millis(150))),
                (8, Fault::Duplicate),
            ],
        );
    }
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x0051_3000);
    // Clocks: right, minutes off, hours behind, days ahead, a year behind.
    let skews: [i64; 6] = [
        0,
        5 * 60_000,
        -3 * 3_600_000,
        2 * 86_400_000,
        -365 * 86_400_000,
        40 * 60_000,
    ];
    let mut teams = Vec::new();
    for (i, (officer, code)) in codes.into_iter().enumerate() {
        let o = field
            .iter()
            .find(|o| o.id == officer)
            .ok_or_else(|| SimError::ServerProcess("officer vanished".into()))?;
        let label = format!("team-{i:03}");
        let skew = skews[i % skews.len()];
        let mut device = Device::new(&label, (doorstep_tests::harness::wall_ms() + skew) as u64);
        let e = doorstep_core::sync::enrol(&mut device.store, &server.url(), &code, &label)?;
        device.officer = e.officer_id;
        device.token = e.token;
        device.device_id = e.device_id;
        device.villages = o.villages.clone();
        // The first sync, at the station: the area and the campaign.
        device.sync_with(&server.url(), |c| c.max_attempts = 5)?;
        let households = o
            .villages
            .iter()
            .filter_map(|v| plan.village(v))
            .flat_map(|v| v.households.iter().map(|h| h.id))
            .collect();
        teams.push(Team {
            label,
            device,
            officer,
            commune: o.unit.clone(),
            villages: o.villages.clone(),
            households,
            cursor: rng.gen_range(0..1000),
            offline_until: 0,
            pending_retractions: Vec::new(),
        });
    }
    out.devices = teams.len();
    progress(&format!("{} devices enrolled and synced once", teams.len()));

    // Household → residents.
    let mut household_residents: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (_, r) in plan.residents() {
        household_residents
            .entry(r.household)
            .or_default()
            .push(r.id);
    }
    // The true progress of each resident (join of the roster and live successful steps), and
    // the last successful step of each kind (for the second team's duplicate).
    let mut state: HashMap<Uuid, (u8, u8, bool)> = world
        .residents
        .iter()
        .map(|(id, r)| (*id, crate::truth::roster_claim(r.roster)))
        .collect();
    let mut last_success: HashMap<Uuid, (AssistStep, Uuid, u32)> = HashMap::new();
    let mut ledger = Ledger::default();
    let days = cfg.days.min(81);
    let start = plan.config.start;
    let proxy_url = proxy.url();
    for day_i in 0..days {
        let day = start + chrono::Duration::days(i64::from(day_i));
        let last_day = day_i + 1 == days;
        for team in teams.iter_mut() {
            work_day(
                cfg,
                team,
                day,
                day_i,
                last_day,
                &household_residents,
                &mut state,
                &mut last_success,
                &mut ledger,
                &mut rng,
                &mut out,
            )?;
            // Evening: sync if in coverage.
            if day_i < team.offline_until {
                continue;
            }
            if rng.gen_bool(0.1) {
                team.offline_until = day_i + rng.gen_range(2..=6);
                continue;
            }
            if rng.gen_bool(0.6) {
                match team.device.sync(&proxy_url) {
                    Ok(_) => out.syncs_ok += 1,
                    Err(_) => out.syncs_failed += 1,
                }
            }
        }
        if day_i % 10 == 0 || last_day {
            progress(&format!(
                "day {}/{days} ({}): {} facts, {} retractions, syncs {} ok / {} failed, {} faults injected",
                day_i + 1,
                day.format("%d/%m/%Y"),
                ledger.facts.len(),
                ledger.retracted.len(),
                out.syncs_ok,
                out.syncs_failed,
                proxy.faulted()
            ));
        }
    }
    out.days = days;
    out.facts = ledger.facts.len();
    out.retractions = ledger.retracted.len();
    out.faults_injected = proxy.faulted();

    // Everyone comes back to the station: clean syncs until all is pushed.
    proxy.clear();
    for team in teams.iter_mut() {
        let mut last = String::new();
        let mut done = false;
        for _ in 0..5 {
            match team.device.sync(&server.url()) {
                Ok(_) => {
                    done = true;
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        if !done {
            return Err(SimError::FinalSync {
                device: team.label.clone(),
                last,
            });
        }
    }
    let synced_at_ms = doorstep_server::now_ms();
    progress(&format!(
        "every device synced ({:.1} s); comparing",
        started.elapsed().as_secs_f64()
    ));

    // 1. The facts themselves.
    let server_ledger = observe::server_ledger(&db)?;
    out.mismatches
        .extend(observe::diff_facts(&ledger, &server_ledger));

    // 2. Every number, from the ledger and from the server's facts.
    let truth = ledger.derive(&world);
    let seen = server_ledger.derive(&world);
    let mut subjects: Vec<Subject> = vec![Subject::Unit("58".into())];
    subjects.extend(plan.districts.iter().map(|d| Subject::Unit(d.code.clone())));
    for c in &plan.communes {
        subjects.push(Subject::Unit(c.unit.code.clone()));
        subjects.extend(c.villages.iter().map(|v| Subject::Unit(v.code.clone())));
    }
    subjects.extend(field.iter().map(|o| Subject::Officer(o.id)));
    let all_days: Vec<NaiveDate> = start.iter_days().take(days as usize).collect();
    let report_days: Vec<String> = all_days
        .iter()
        .enumerate()
        .filter(|(i, _)| match cfg.report_days {
            ReportDays::All => true,
            ReportDays::Every(n) => {
                (*i as u32).is_multiple_of(n.max(1)) || *i + 1 == all_days.len()
            }
        })
        .map(|(_, d)| d.format("%Y-%m-%d").to_string())
        .collect();
    let mut expected: BTreeMap<(Subject, String), Numbers> = BTreeMap::new();
    for s in &subjects {
        for d in &report_days {
            let want = ledger.expected(&world, &truth, s, d);
            let got = server_ledger.expected(&world, &seen, s, d);
            out.compared_db += want.len();
            for (k, v) in &want {
                let g = got.get(k).copied();
                if g != Some(*v) {
                    out.mismatches.push(format!(
                        "{} {d} {k}: ground truth {}, server database {}",
                        describe(s),
                        show(Some(*v)),
                        show(g)
                    ));
                }
            }
            expected.insert((s.clone(), d.clone()), want);
        }
    }
    // 3. Nothing lost or counted twice: officers' credited activations add up to the province's.
    let last = report_days.last().cloned().unwrap_or_default();
    let province = expected
        .get(&(Subject::Unit("58".into()), last.clone()))
        .and_then(|m| m.get("totals.campaign_activated").copied().flatten())
        .unwrap_or(0);
    let by_officers: i64 = field
        .iter()
        .filter_map(|o| {
            expected
                .get(&(Subject::Officer(o.id), last.clone()))
                .and_then(|m| m.get("row.campaign_activated").copied().flatten())
        })
        .sum();
    out.activated_during_campaign = province;
    if province != by_officers {
        out.mismatches.push(format!(
            "activations credited to officers add up to {by_officers}, the province counts {province}"
        ));
    }
    let distinct_activated = truth
        .credited
        .keys()
        .filter(|(_, m)| *m == "activated")
        .count() as i64;
    if distinct_activated != province {
        out.mismatches.push(format!(
            "{distinct_activated} residents activated during the campaign, the province counts {province}"
        ));
    }
    progress(&format!(
        "{} numbers compared with the server database ({:.1} s)",
        out.compared_db,
        started.elapsed().as_secs_f64()
    ));
    // 4. The dashboard's report API.
    if cfg.check_api {
        report::wait_fresh(&server.url(), &admin_token, "58", &last, synced_at_ms)?;
        let (n, mism) = report::compare_api(&server.url(), &admin_token, &expected)?;
        out.compared_api = n;
        out.mismatches.extend(mism);
        let (n, mism) = report::compare_csv(&server.url(), &admin_token, &expected)?;
        out.compared_csv = n;
        out.mismatches.extend(mism);
    }
    out.runtime_ms = started.elapsed().as_millis();
    drop(proxy);
    drop(server);
    Ok(out)
}

/// A number as mismatch lines show it: `absent` (no such key), `null`, or the number.
pub fn show(v: Option<Option<i64>>) -> String {
    match v {
        None => "absent".into(),
        Some(None) => "null".into(),
        Some(Some(n)) => n.to_string(),
    }
}

/// How a subject is named in mismatch lines.
pub fn describe(s: &Subject) -> String {
    match s {
        Subject::Unit(u) => format!("unit {u}"),
        Subject::Officer(o) => format!("officer {o}"),
    }
}

#[allow(clippy::too_many_arguments)]
fn work_day(
    cfg: &SimConfig,
    team: &mut Team,
    day: NaiveDate,
    day_i: u32,
    last_day: bool,
    household_residents: &HashMap<Uuid, Vec<Uuid>>,
    state: &mut HashMap<Uuid, (u8, u8, bool)>,
    last_success: &mut HashMap<Uuid, (AssistStep, Uuid, u32)>,
    ledger: &mut Ledger,
    rng: &mut StdRng,
    out: &mut Outcome,
) -> Result<()> {
    let officer = team.officer;
    // Mistakes noticed: retract them (on the last day, every one still pending).
    let due: Vec<Uuid> = team
        .pending_retractions
        .iter()
        .filter(|(d, _)| *d <= day_i || last_day)
        .map(|(_, id)| *id)
        .collect();
    team.pending_retractions
        .retain(|(d, _)| *d > day_i && !last_day);
    for id in due {
        team.device.store.retract(id, Some("ghi nhầm"))?;
        ledger.retract(id);
    }
    if team.households.is_empty() || rng.gen_bool(0.08) {
        return Ok(()); // a day off, or at the station
    }
    let mut t = local_ms(day, 7) + rng.gen_range(0..3_600_000);
    let mut received_today = 0u32;
    let visits =
        rng.gen_range(cfg.visits_per_day.0..=cfg.visits_per_day.1.max(cfg.visits_per_day.0));
    for _ in 0..visits {
        let h = team.households[team.cursor % team.households.len()];
        team.cursor += 1;
        t += rng.gen_range(300_000..1_200_000);
        team.device.clock.advance(1000);
        let outcome = match rng.gen_range(0..100) {
            0..=64 => VisitOutcome::Met,
            65..=84 => VisitOutcome::NobodyHome,
            85..=92 => VisitOutcome::ComeBack,
            93..=96 => VisitOutcome::Refused,
            _ => VisitOutcome::MovedAway,
        };
        let id = team.device.store.record_visit(NewVisit {
            household_id: h,
            officer_id: officer,
            at_ms: Some(t),
            outcome,
            // Tomorrow, or this evening on the campaign's last day.
            revisit_at_ms: (outcome == VisitOutcome::ComeBack).then_some(if day < cfg.world.end {
                t + 86_400_000
            } else {
                t + 3_600_000
            }),
            note: None,
            location: None,
        })?;
        ledger.record(Fact {
            id,
            officer,
            at_ms: t,
            kind: FactKind::Visit { household: h },
        });
        if rng.gen_bool(0.02) {
            team.pending_retractions
                .push((day_i + rng.gen_range(0..3), id));
        }
        if outcome != VisitOutcome::Met {
            continue;
        }
        for rid in household_residents.get(&h).into_iter().flatten() {
            if rng.gen_bool(0.3) {
                continue;
            }
            // A second team records an activation the first already made.
            if let Some((step, other, when)) = last_success.get(rid).copied() {
                if other != officer && day_i.saturating_sub(when) <= 30 && rng.gen_bool(0.5) {
                    t += 60_000;
                    let id = record_assist(team, rid, step, None, t)?;
                    ledger.record(assist_fact(id, officer, t, *rid, step, None));
                    if matches!(
                        step,
                        AssistStep::Level1Activated | AssistStep::Level2Activated
                    ) {
                        out.duplicate_activations += 1;
                    }
                    continue;
                }
            }
            let Some(s) = state.get_mut(rid) else {
                continue;
            };
            for _ in 0..3 {
                let step = match *s {
                    (_, 2, false) => AssistStep::PortalGuided,
                    (_, 2, true) => break,
                    (_, 1, _) => AssistStep::Level2Activated,
                    (2, 0, _) => AssistStep::Level2Received,
                    (1, 0, _) => AssistStep::Level1Activated,
                    _ => {
                        if rng.gen_bool(0.55) {
                            AssistStep::Level1Guided
                        } else {
                            AssistStep::Level2Received
                        }
                    }
                };
                let fails = matches!(
                    step,
                    AssistStep::Level1Activated
                        | AssistStep::Level2Activated
                        | AssistStep::Level1Guided
                ) && rng.gen_bool(0.15);
                t += rng.gen_range(60_000..240_000);
                let failure = fails.then(|| REASONS[rng.gen_range(0..REASONS.len())]);
                let id = record_assist(team, rid, step, failure, t)?;
                ledger.record(assist_fact(id, officer, t, *rid, step, failure));
                if fails {
                    if rng.gen_bool(0.05) {
                        team.pending_retractions.push((day_i, id));
                    }
                    break;
                }
                if rng.gen_bool(0.03) {
                    // Recorded by mistake (the wrong person, or it did not go through): it
                    // will be retracted, so the true state does not move.
                    team.pending_retractions
                        .push((day_i + rng.gen_range(0..4), id));
                    break;
                }
                last_success.insert(*rid, (step, officer, day_i));
                match step {
                    AssistStep::Level1Guided => s.0 = s.0.max(1),
                    AssistStep::Level1Activated => s.0 = 2,
                    AssistStep::Level2Received => {
                        s.1 = s.1.max(1);
                        received_today += 1;
                        break;
                    }
                    AssistStep::Level2Activated => s.1 = 2,
                    AssistStep::PortalGuided => s.2 = true,
                }
            }
        }
    }
    // A mobile receiving session reported by the team, now and then; outreach too.
    if rng.gen_bool(0.3) {
        let starts = local_ms(day, 7);
        let kind = if rng.gen_bool(0.7) {
            SessionKind::Mobile
        } else {
            SessionKind::Fixed
        };
        let id = team.device.store.record_session(NewSession {
            unit_code: team.commune.clone(),
            officer_id: officer,
            kind,
            place: "Nhà văn hóa thôn".into(),
            starts_at_ms: starts,
            ends_at_ms: starts + 4 * 3_600_000,
            applications: received_today,
            note: None,
        })?;
        ledger.record(Fact {
            id,
            officer,
            at_ms: starts,
            kind: FactKind::Session {
                commune: team.commune.clone(),
                kind: kind.as_str().into(),
                applications: received_today,
            },
        });
        if rng.gen_bool(0.05) {
            team.pending_retractions.push((day_i + 1, id));
        }
    }
    if rng.gen_bool(0.12) {
        let at = local_ms(day, 19);
        let (kind, people) = match rng.gen_range(0..3) {
            0 => (OutreachKind::Meeting, rng.gen_range(20..120)),
            1 => (OutreachKind::Loudspeaker, rng.gen_range(100..600)),
            _ => (OutreachKind::Training, rng.gen_range(5..30)),
        };
        let unit = team.villages[rng.gen_range(0..team.villages.len())].clone();
        let id = team.device.store.record_outreach(NewOutreach {
            unit_code: unit.clone(),
            officer_id: officer,
            kind,
            at_ms: Some(at),
            place: "Nhà văn hóa thôn".into(),
            people_reached: people,
            note: None,
        })?;
        ledger.record(Fact {
            id,
            officer,
            at_ms: at,
            kind: FactKind::Outreach {
                unit,
                kind: kind.as_str().into(),
                people,
            },
        });
    }
    Ok(())
}

fn record_assist(
    team: &mut Team,
    resident: &Uuid,
    step: AssistStep,
    failure: Option<FailureReason>,
    at_ms: i64,
) -> Result<Uuid> {
    team.device.clock.advance(1000);
    Ok(team.device.store.record_assist(NewAssist {
        resident_id: *resident,
        officer_id: team.officer,
        at_ms: Some(at_ms),
        step,
        failure,
        receiving_point: (step == AssistStep::Level2Received && failure.is_none())
            .then(|| "Điểm tiếp nhận lưu động".to_owned()),
        note: None,
    })?)
}

fn assist_fact(
    id: Uuid,
    officer: Uuid,
    at_ms: i64,
    resident: Uuid,
    step: AssistStep,
    failure: Option<FailureReason>,
) -> Fact {
    Fact {
        id,
        officer,
        at_ms,
        kind: FactKind::Assist {
            resident,
            step,
            failure,
        },
    }
}
