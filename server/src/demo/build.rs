//! Writing a plan down: its reference data into a core store ([`load_reference`]), and the whole
//! demo data set into an SQLite file ([`build`]), reused by the next start ([`ensure`]; a meta
//! row marks a demo database).

use super::activity::{activity_ops, ActivitySummary};
use super::plan::{plan, Plan};
use super::{DemoConfig, DemoError, DEMO_MARKER_KEY};
use crate::backend::CLI_ACTOR;
use crate::sqlite::SqliteBackend;
use chrono::NaiveDate;
use doorstep_core::{
    AssignTarget, CampaignInput, OfficerInput, Options, QuotaInput, QuotaMetric, QuotaPeriod,
    QuotaSubject, Store,
};
use std::path::{Path, PathBuf};
use std::time::Instant;
use uuid::Uuid;

/// The roster header (every column of `docs/roster-format.md`, in order).
pub fn roster_header() -> String {
    doorstep_core::roster::ROSTER_COLUMNS.join(",")
}

/// What loading did.
#[derive(Debug, Clone, Default)]
pub struct LoadSummary {
    /// Units written (official and villages).
    pub units: usize,
    /// Households.
    pub households: usize,
    /// Residents.
    pub residents: usize,
    /// Officers.
    pub officers: usize,
    /// Quotas.
    pub quotas: usize,
}

/// Write the plan's reference data into `store`: units, campaign, rosters (one import per
/// commune), officers, assignments, quotas (campaign quotas for districts, communes and field
/// officers; day quotas for communes and field officers on every campaign day).
pub fn load_reference(
    store: &mut Store,
    plan: &Plan,
    progress: &mut dyn FnMut(&str),
) -> Result<LoadSummary, DemoError> {
    let mut summary = LoadSummary {
        units: load_units_and_campaign(store, plan)?,
        ..LoadSummary::default()
    };
    load_rosters(store, plan, &mut summary, progress)?;
    let c = &plan.config;
    let days: Vec<NaiveDate> = c.start.iter_days().take_while(|d| *d <= c.end).collect();
    let mut quotas = Quotas {
        store,
        campaign: plan.campaign,
        days: &days,
        written: 0,
    };
    for o in &plan.officers {
        quotas.store.put_officer(OfficerInput {
            id: o.id,
            name: o.name.clone(),
            role: o.role,
            unit_code: o.unit.clone(),
        })?;
        summary.officers += 1;
        for v in &o.villages {
            quotas
                .store
                .assign(o.id, AssignTarget::Village(v.clone()))?;
        }
        let subject = || QuotaSubject::Officer(o.id);
        quotas.campaign_and_days(subject, o.campaign_quota, o.day_quota)?;
    }
    for cm in &plan.communes {
        let subject = || QuotaSubject::Unit(cm.unit.code.clone());
        quotas.campaign_and_days(subject, Some(cm.campaign_quota), Some(cm.day_quota))?;
    }
    for (d, q) in &plan.district_quotas {
        quotas.campaign_and_days(|| QuotaSubject::Unit(d.clone()), Some(*q), None)?;
    }
    summary.quotas = quotas.written;
    progress(&format!(
        "officers {}, quotas {}",
        summary.officers, summary.quotas
    ));
    Ok(summary)
}

/// The units (official and the plan's villages) and the campaign; returns the units written.
fn load_units_and_campaign(store: &mut Store, plan: &Plan) -> Result<usize, DemoError> {
    let units = store.import_units_csv(plan.units_csv().as_bytes())?;
    if let Some(r) = units.rejected.first() {
        return Err(DemoError::Config(format!(
            "units rejected at line {}: {}",
            r.line, r.reason
        )));
    }
    let c = &plan.config;
    store.put_campaign(CampaignInput {
        id: plan.campaign,
        name: "Chiến dịch 80 ngày đêm cao điểm cấp tài khoản định danh điện tử".into(),
        start_date: c.start,
        end_date: c.end,
        target: c.target,
        unit_code: "58".into(),
    })?;
    Ok(units.rows)
}

/// One roster import per commune; every row must be accepted.
fn load_rosters(
    store: &mut Store,
    plan: &Plan,
    summary: &mut LoadSummary,
    progress: &mut dyn FnMut(&str),
) -> Result<(), DemoError> {
    let header = roster_header();
    let total = plan.communes.len();
    for (i, cm) in plan.communes.iter().enumerate() {
        let mut csv = header.clone();
        csv.push('\n');
        for v in &cm.villages {
            csv.push_str(&v.roster);
            summary.households += v.households.len();
        }
        let report = store.import_roster(plan.campaign, csv.as_bytes(), &mut |_| {})?;
        if let Some(first) = report.rejected.first() {
            return Err(DemoError::Rejected {
                commune: cm.unit.code.clone(),
                rejected: report.rejected.len(),
                first: first.reason.clone(),
            });
        }
        summary.residents += report.accepted;
        progress(&format!(
            "roster {}/{total}: commune {} ({} accounts)",
            i + 1,
            cm.unit.code,
            report.accepted
        ));
    }
    Ok(())
}

/// Writes the plan's level-2 activation quotas, counting them.
struct Quotas<'a> {
    store: &'a mut Store,
    campaign: Uuid,
    /// The campaign's days.
    days: &'a [NaiveDate],
    written: usize,
}

impl Quotas<'_> {
    /// A campaign quota and a quota on every campaign day, each if given.
    fn campaign_and_days(
        &mut self,
        subject: impl Fn() -> QuotaSubject,
        campaign: Option<i64>,
        day: Option<i64>,
    ) -> Result<(), DemoError> {
        if let Some(q) = campaign {
            self.set(subject(), QuotaPeriod::Campaign, q)?;
        }
        if let Some(q) = day {
            for d in self.days {
                self.set(subject(), QuotaPeriod::Day(*d), q)?;
            }
        }
        Ok(())
    }

    fn set(
        &mut self,
        subject: QuotaSubject,
        period: QuotaPeriod,
        target: i64,
    ) -> Result<(), DemoError> {
        self.store.set_quota(QuotaInput {
            campaign_id: self.campaign,
            subject,
            period,
            metric: QuotaMetric::Level2Activated,
            target,
        })?;
        self.written += 1;
        Ok(())
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone)]
pub enum Ensured {
    /// The database was already a demo database: reused as it is.
    Reused(String),
    /// The demo was built.
    Built(BuildSummary),
}

/// What [`build`] made, and how long it took.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    /// Reference data.
    pub load: LoadSummary,
    /// Field activity.
    pub activity: ActivitySummary,
    /// Milliseconds: planning, loading, activity, whole build.
    pub plan_ms: u128,
    /// Loading the reference data.
    pub load_ms: u128,
    /// Generating and merging the activity.
    pub activity_ms: u128,
    /// The whole build.
    pub total_ms: u128,
}

/// The marker of a demo database, if `db` is one (`Ok(None)` if it does not exist or is not).
pub fn demo_marker(db: &Path) -> Result<Option<String>, DemoError> {
    if !db.exists() {
        return Ok(None);
    }
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [DEMO_MARKER_KEY],
            |r| r.get::<_, String>(0),
        )
        .optional()?)
}

fn is_empty_db(db: &Path) -> Result<bool, DemoError> {
    if !db.exists() {
        return Ok(true);
    }
    let len = std::fs::metadata(db)
        .map_err(io(format!("reading {}", db.display())))?
        .len();
    Ok(len == 0)
}

/// Use `db` as the demo database: reuse it if it is one, build it if it does not exist (or is
/// empty), refuse if it holds other data.
pub fn ensure(
    db: &Path,
    config: &DemoConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Ensured, DemoError> {
    if let Some(marker) = demo_marker(db)? {
        return Ok(Ensured::Reused(marker));
    }
    if !is_empty_db(db)? {
        return Err(DemoError::NotDemo(db.to_path_buf()));
    }
    build(db, config, progress).map(Ensured::Built)
}

/// One phone per synthetic replica, enrolled for its officer with that replica (so its work is
/// acknowledged as the phone's own): the dashboard's device lists have something to show.
fn enrol_devices(
    backend: &SqliteBackend,
    replicas: &[(Uuid, doorstep_core::ReplicaId)],
    now_ms: i64,
) -> Result<(), DemoError> {
    for (i, (officer, replica)) in replicas.iter().enumerate() {
        let code = backend
            .issue_enrol_code(CLI_ACTOR, *officer, 60, now_ms)?
            .code;
        backend.enrol(
            crate::model::Enrolment {
                public_key: None,
                code,
                device_name: format!("Máy {:03}", i + 1),
                replica: replica.0,
                device_time_ms: now_ms,
            },
            now_ms,
        )?;
    }
    Ok(())
}

/// Every seventh demo phone is stale: its last sync [`STALE_DAYS`] days before the demo's start.
pub const STALE_EVERY: usize = 7;
/// How long ago a stale demo phone last synced, in days (the dashboard's limit is two).
pub const STALE_DAYS: i64 = 4;

/// Spread the demo phones' last syncs before `now_ms` — most within the last twelve hours,
/// every [`STALE_EVERY`]th [`STALE_DAYS`] days ago, past the dashboard's stale limit — so the
/// device lists show both whenever the demo is opened. Run at each start of the demo (the data
/// set is reused for days). Returns (phones, stale ones).
pub fn refresh_devices(db: &Path, now_ms: i64) -> Result<(usize, usize), DemoError> {
    let conn = rusqlite::Connection::open(db)?;
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM devices WHERE revoked_at IS NULL ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let hour = 3_600_000;
    let mut stale = 0;
    for (i, id) in ids.iter().enumerate() {
        let ago = if i % STALE_EVERY == STALE_EVERY - 1 {
            stale += 1;
            STALE_DAYS * 24 * hour
        } else {
            (i as i64 % 12 + 1) * hour
        };
        conn.execute(
            "UPDATE devices SET last_seen_ms = ?1 WHERE id = ?2",
            rusqlite::params![now_ms - ago, id],
        )?;
    }
    Ok((ids.len(), stale))
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> DemoError {
    move |source| DemoError::Io { context, source }
}

/// Build the demo into `db` (which must not exist, or be empty): in a temporary file beside
/// it, renamed into place at the end, so an interrupted build leaves no half demo behind.
pub fn build(
    db: &Path,
    config: &DemoConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildSummary, DemoError> {
    let started = Instant::now();
    let mut summary = BuildSummary::default();
    let tmp = db.with_extension("demo-building");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", tmp.display()));
        if p.exists() {
            std::fs::remove_file(&p).map_err(io(format!("removing {}", p.display())))?;
        }
    }
    let plan = plan(config)?;
    summary.plan_ms = started.elapsed().as_millis();
    progress(&format!(
        "planned {} communes, {} villages, {} accounts in {} ms",
        plan.communes.len(),
        plan.communes
            .iter()
            .map(|c| c.villages.len())
            .sum::<usize>(),
        config.accounts,
        summary.plan_ms
    ));
    let t = Instant::now();
    {
        let mut store = Store::open(&tmp, Options::default())?;
        // A demo is rebuilt, not recovered: no fsync per commit while building.
        store
            .connection()
            .pragma_update(None, "synchronous", "OFF")?;
        summary.load = load_reference(&mut store, &plan, progress)?;
    }
    summary.load_ms = t.elapsed().as_millis();
    progress(&format!("reference data loaded in {} ms", summary.load_ms));
    let t = Instant::now();
    summary.activity = file_activity(&tmp, &plan, progress)?;
    summary.activity_ms = t.elapsed().as_millis();
    std::fs::rename(&tmp, db).map_err(io(format!("renaming into {}", db.display())))?;
    summary.total_ms = started.elapsed().as_millis();
    progress(&format!("demo built in {} ms", summary.total_ms));
    Ok(summary)
}

/// Merge the plan's field activity into the database at `db` through the server's own import
/// path (so it reaches devices and the dashboard like synced work), then mark it a demo
/// database and checkpoint it.
fn file_activity(
    db: &Path,
    plan: &Plan,
    progress: &mut dyn FnMut(&str),
) -> Result<ActivitySummary, DemoError> {
    // Opening the server backend files the reference data in its feed.
    let backend = SqliteBackend::open(db)?;
    let (ops, activity) = activity_ops(plan);
    let now = crate::now_ms();
    let total = ops.len();
    for (i, batch) in ops.chunks(50_000).enumerate() {
        let applied = backend.import_ops(CLI_ACTOR, batch, now)?;
        // A fresh database holds none of them: each one not applied was refused by the
        // server's checks, a bug in the generator.
        if applied as usize != batch.len() {
            return Err(DemoError::Config(format!(
                "the server refused {} generated operations (see the audit log)",
                batch.len() - applied as usize
            )));
        }
        progress(&format!(
            "field activity: {}/{total} operations",
            (i * 50_000 + batch.len()).min(total)
        ));
    }
    enrol_devices(&backend, &activity.replicas, now)?;
    progress(&format!("{} phones enrolled", activity.replicas.len()));
    let c = &plan.config;
    let marker = format!(
        "ninh-thuan-2023 seed={} accounts={} activity_days={}",
        c.seed, c.accounts, c.activity_days
    );
    backend.with_store(|s| {
        s.connection().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [DEMO_MARKER_KEY, marker.as_str()],
        )
    })??;
    backend.with_store(|s| {
        s.connection()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    })??;
    Ok(activity)
}
