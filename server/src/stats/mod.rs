//! The command centre's statistics: the counting rules of `docs/dashboard-api.md` (the shared
//! notes' "Counting rules") over the core store's materialised tables.
//!
//! A request never scans the store. [`Snapshot::build`] reads the tables once (residents with
//! their account state, successful and failed assistance steps, visits, units, officers,
//! assignments, quotas, campaigns; sessions and outreach when the schema has them) and keeps
//! per-village, per-household and per-officer aggregates with per-day counts, rolled up the unit
//! tree. A report is then a few map look-ups and a sum over at most a campaign's days
//! ([`Snapshot::report`]). [`StatsCache`] keeps the latest snapshot and rebuilds it in the
//! background when the store's fingerprint (the highest counter of every replica) changed,
//! at most every `debounce` (ADR 0005).
//!
//! Everything here takes a plain `&rusqlite::Connection`: any backend that keeps a core store
//! as its materialised view reaches it through [`crate::Backend::read_view`].

use crate::backend::{Backend, DeviceInfo};
use crate::error::{Result, ServerError};
use chrono::{Datelike, NaiveDate};
use doorstep_core::apply::LOCAL_OFFSET_MS;
use doorstep_core::FailureReason;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// A local (UTC+7) day as a number of days since 1970-01-01.
pub type DayNum = i32;

const DAY_MS: i64 = 86_400_000;

/// The local day of a Unix-ms instant.
pub fn day_of_ms(at_ms: i64) -> DayNum {
    (at_ms + LOCAL_OFFSET_MS).div_euclid(DAY_MS) as DayNum
}

/// The day number of a date.
pub fn day_num(d: NaiveDate) -> DayNum {
    d.num_days_from_ce() - 719_163
}

/// The date of a day number.
pub fn day_date(n: DayNum) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(n + 719_163).unwrap_or_default()
}

/// Today in Vietnam.
pub fn today() -> NaiveDate {
    day_date(day_of_ms(crate::now_ms()))
}

/// `HH:MM:SS` (UTC+7) of a Unix-ms instant.
pub fn local_time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms + LOCAL_OFFSET_MS)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// RFC 3339 in UTC+7 of a Unix-ms instant.
pub fn local_rfc3339(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms + LOCAL_OFFSET_MS)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S+07:00").to_string())
        .unwrap_or_default()
}

/// Counts of one day (rule 3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    /// Residents whose earliest activation (level 1 or 2) fell on the day.
    pub activated: u64,
    /// Residents whose earliest level-1 activation fell on the day.
    pub level1_activated: u64,
    /// Residents whose earliest level-2 application fell on the day.
    pub level2_received: u64,
    /// Residents whose earliest level-2 activation fell on the day.
    pub level2_activated: u64,
    /// Residents first guided to the portal on the day.
    pub portal_guided: u64,
    /// Visits made on the day.
    pub visits: u64,
}

impl DayCounts {
    fn add(&mut self, o: &DayCounts) {
        self.activated += o.activated;
        self.level1_activated += o.level1_activated;
        self.level2_received += o.level2_received;
        self.level2_activated += o.level2_activated;
        self.portal_guided += o.portal_guided;
        self.visits += o.visits;
    }

    /// The count of a quota metric (`visits`, `level1_activated`…), if it is one.
    pub fn metric(&self, metric: &str) -> Option<u64> {
        Some(match metric {
            "activated" => self.activated,
            "level1_activated" => self.level1_activated,
            "level2_received" => self.level2_received,
            "level2_activated" => self.level2_activated,
            "portal_guided" => self.portal_guided,
            "visits" => self.visits,
            _ => return None,
        })
    }
}

/// Current account states of a set of residents (rules 1, 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    accounts: u64,
    level1_activated: u64,
    level2_activated: u64,
    level2_received: u64,
    portal: u64,
    roster_activated: u64,
    roster_level1: u64,
    roster_level2: u64,
}

impl State {
    fn add(&mut self, o: &State) {
        self.accounts += o.accounts;
        self.level1_activated += o.level1_activated;
        self.level2_activated += o.level2_activated;
        self.level2_received += o.level2_received;
        self.portal += o.portal;
        self.roster_activated += o.roster_activated;
        self.roster_level1 += o.roster_level1;
        self.roster_level2 += o.roster_level2;
    }
}

/// Residents of one agency (rule 10).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgencyRow {
    /// The agency's name.
    pub agency: String,
    /// Its residents in scope.
    pub accounts: u64,
    /// Of them, level-2 activated.
    pub level2_activated: u64,
    /// Of them, guided to the portal.
    pub portal: u64,
    /// `level2_activated / accounts × 100`.
    pub percent_level2: f64,
}

/// One receiving-point session (rule 11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    /// Its id.
    pub id: String,
    /// The commune.
    pub unit_code: String,
    /// `fixed` or `mobile`.
    pub kind: String,
    /// Where.
    pub place: String,
    /// Local day.
    pub day: String,
    /// Start and end, `HH:MM` local.
    pub starts: String,
    /// End, `HH:MM` local.
    pub ends: String,
    /// Level-2 applications received.
    pub applications: u64,
}

/// Sessions and applications by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    /// Sessions (or events).
    pub count: u64,
    /// Applications received (or people reached).
    pub total: u64,
}

/// Receiving sessions in scope (rule 11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    /// Whether the store has sessions at all (schema v2).
    pub available: bool,
    /// Per kind (`fixed`, `mobile`): sessions and applications, over the campaign up to the day.
    pub by_kind: BTreeMap<String, KindCount>,
    /// Per commune code, per kind.
    pub per_commune: BTreeMap<String, BTreeMap<String, KindCount>>,
    /// The day's sessions.
    pub today: Vec<SessionRow>,
}

/// Outreach in scope (rule 12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outreach {
    /// Whether the store has outreach at all (schema v2).
    pub available: bool,
    /// Per kind (`meeting`, `loudspeaker`, `training`): events and people reached, over the
    /// campaign up to the day.
    pub by_kind: BTreeMap<String, KindCount>,
    /// Per commune code, per kind.
    pub per_commune: BTreeMap<String, BTreeMap<String, KindCount>>,
}

/// A session or outreach fact, kept whole (there are few).
#[derive(Debug, Clone)]
struct Event {
    commune: String,
    kind: String,
    day: DayNum,
    total: u64,
    row: Option<SessionRow>,
}

/// Events per kind, per commune and kind, and the day's sessions.
type EventSums = (
    BTreeMap<String, KindCount>,
    BTreeMap<String, BTreeMap<String, KindCount>>,
    Vec<SessionRow>,
);

/// What one unit, household or officer adds up to.
#[derive(Debug, Clone, Default)]
struct Agg {
    state: State,
    days: BTreeMap<DayNum, DayCounts>,
    blockers: BTreeMap<String, u64>,
    agencies: BTreeMap<String, (u64, u64, u64)>,
}

impl Agg {
    fn add(&mut self, o: &Agg) {
        self.state.add(&o.state);
        for (d, c) in &o.days {
            self.days.entry(*d).or_default().add(c);
        }
        for (k, v) in &o.blockers {
            *self.blockers.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.agencies {
            let e = self.agencies.entry(k.clone()).or_default();
            e.0 += v.0;
            e.1 += v.1;
            e.2 += v.2;
        }
    }

    fn day(&mut self, d: DayNum) -> &mut DayCounts {
        self.days.entry(d).or_default()
    }
}

/// A unit as the dashboard names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRef {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `province`, `district`, `commune`, `village`.
    pub level: String,
}

#[derive(Debug, Clone)]
struct UnitInfo {
    name: String,
    level: String,
    parent: Option<String>,
    children: Vec<String>,
}

/// A campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignInfo {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// First day.
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
    /// Accounts to activate.
    pub target: i64,
    /// The unit it covers.
    pub unit_code: String,
}

/// An officer as the dashboard names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerRef {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Their unit.
    pub unit_code: String,
}

#[derive(Debug, Clone)]
struct OfficerInfo {
    r: OfficerRef,
    /// Their own unit and every village assigned to them.
    home_units: Vec<String>,
    agg: Agg,
}

/// One row of a report: a unit (rules 1-7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Unit code.
    pub code: String,
    /// Unit name.
    pub name: String,
    /// Unit level.
    pub level: String,
    /// Accounts in scope (rule 1).
    pub accounts: u64,
    /// Level-1 activated and not level-2 activated (rule 2).
    pub level1_activated: u64,
    /// Level-2 activated.
    pub level2_activated: u64,
    /// `level1_activated + level2_activated`.
    pub activated: u64,
    /// Level-2 application received (or activated).
    pub level2_received: u64,
    /// Guided to the portal.
    pub portal: u64,
    /// Rule 6.
    pub target: Option<i64>,
    /// `activated × 100 / target`.
    pub percent_of_target: Option<f64>,
    /// Rule 3 on the report's day.
    pub today: DayCounts,
    /// Rule 7: the day's quotas by metric.
    pub quota_today: Option<BTreeMap<String, i64>>,
    /// Activations credited by rule 3 from the campaign's first day to the report's day.
    pub campaign_activated: u64,
}

/// One row of a report: an officer. Counts are what rule 3 credits to the officer, except
/// `accounts`, the residents of the villages and households assigned to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfficerRow {
    /// Officer id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Their unit.
    pub unit_code: String,
    /// Residents in their assigned area.
    pub accounts: u64,
    /// Level-1 activations credited to them, up to the report's day.
    pub level1_activated: u64,
    /// Level-2 activations credited to them, up to the report's day.
    pub level2_activated: u64,
    /// Activations credited to them, up to the report's day.
    pub activated: u64,
    /// Level-2 applications credited to them, up to the report's day.
    pub level2_received: u64,
    /// Portal guidance credited to them, up to the report's day.
    pub portal: u64,
    /// Sum of their campaign quotas on level-1/level-2 activation.
    pub target: Option<i64>,
    /// `activated × 100 / target`.
    pub percent_of_target: Option<f64>,
    /// Rule 3 on the report's day.
    pub today: DayCounts,
    /// Their quotas for the day.
    pub quota_today: Option<BTreeMap<String, i64>>,
    /// Activations credited from the campaign's first day to the report's day.
    pub campaign_activated: u64,
}

/// One point of the trend (rule 4): cumulative counts at the end of `date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The day.
    pub date: NaiveDate,
    /// Activated by the roster plus every activation credited up to the day.
    pub activated: u64,
    /// Level-1 activated by the roster plus level-1 activations credited up to the day.
    pub level1_activated: u64,
    /// Level-2 activated by the roster plus level-2 activations credited up to the day.
    pub level2_activated: u64,
}

/// A device's last sync (rule 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    /// Device id.
    pub id: Uuid,
    /// Its label.
    pub name: String,
    /// Its officer.
    pub officer_id: Uuid,
    /// The officer's name.
    pub officer_name: String,
    /// Last request, Unix ms.
    pub last_sync_ms: Option<i64>,
    /// Last request, RFC 3339 in UTC+7.
    pub last_sync: Option<String>,
    /// Not revoked and no sync within the stale limit.
    pub stale: bool,
    /// Revoked.
    pub revoked: bool,
}

/// `GET /api/v1/report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The unit.
    pub unit: UnitRef,
    /// The day.
    pub date: NaiveDate,
    /// The campaign.
    pub campaign: CampaignInfo,
    /// When the snapshot the numbers come from was taken (RFC 3339, UTC+7).
    pub as_of: String,
    /// The unit's own row.
    pub totals: Row,
    /// Its child units, by code.
    pub children: Vec<Row>,
    /// Officers of the unit (or assigned a village in it), by name.
    pub officers: Vec<OfficerRow>,
    /// From the campaign's first day to the report's day.
    pub trend: Vec<TrendPoint>,
    /// Failed steps by reason (every reason, zeros included).
    pub blockers: BTreeMap<String, u64>,
    /// Devices of the officers listed.
    pub devices: Vec<DeviceRow>,
    /// Residents with an agency, per agency.
    pub agencies: Vec<AgencyRow>,
    /// Receiving sessions.
    pub sessions: Sessions,
    /// Outreach.
    pub outreach: Outreach,
}

/// `GET /api/v1/report/officer/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfficerReport {
    /// The officer.
    pub officer: OfficerRef,
    /// Their unit.
    pub unit: UnitRef,
    /// The day.
    pub date: NaiveDate,
    /// The campaign.
    pub campaign: CampaignInfo,
    /// Snapshot time.
    pub as_of: String,
    /// Their row.
    pub row: OfficerRow,
    /// Their credited activations, cumulative (no roster part).
    pub trend: Vec<TrendPoint>,
    /// Failed steps they recorded, by reason.
    pub blockers: BTreeMap<String, u64>,
    /// Their devices.
    pub devices: Vec<DeviceRow>,
}

/// The store's change fingerprint: the highest counter of every replica it holds, summed,
/// and how many replicas. Index look-ups only.
pub fn fingerprint(conn: &Connection) -> Result<(i64, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum((SELECT coalesce(max(counter), 0) FROM oplog o
                                   WHERE o.replica = r.replica)), 0), count(*)
               FROM (SELECT replica FROM replicas
                     UNION SELECT value FROM meta WHERE key = 'replica_id') r",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// A text column without copying it.
fn txt<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a str> {
    Ok(r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })?)
}

fn has_table(conn: &Connection, table: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if r.get::<_, String>(1)? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, Clone, Copy)]
struct Cred {
    at_ms: i64,
    id: u128,
    officer: u32,
}

impl Cred {
    fn earlier(&self, o: &Cred) -> bool {
        (self.at_ms, self.id) < (o.at_ms, o.id)
    }
}

/// Roster claim bits: what the roster already said.
const R_L1: u8 = 1; // level1 = 2
const R_L2REC: u8 = 2; // level2 >= 1
const R_L2: u8 = 4; // level2 = 2

fn roster_bits(account: Option<&str>) -> u8 {
    match account {
        Some("level1_activated") => R_L1,
        Some("level2_pending") => R_L2REC,
        Some("level2_activated") => R_L2REC | R_L2,
        _ => 0,
    }
}

struct Resident {
    village: u32,
    household: u32,
    roster: u8,
}

/// (campaign, subject kind, subject id) → [(period, metric, target)].
type QuotaMap = HashMap<(String, String, String), Vec<(String, String, i64)>>;

/// Everything a report needs, computed once from the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the build started, Unix ms (what pages call "as of").
    pub built_at_ms: i64,
    /// How long the build took, ms.
    pub build_ms: f64,
    /// The store's [`fingerprint`] when it was read.
    pub fingerprint: (i64, i64),
    units: BTreeMap<String, UnitInfo>,
    aggs: HashMap<String, Agg>,
    officers: BTreeMap<Uuid, OfficerInfo>,
    campaigns: Vec<CampaignInfo>,
    /// (campaign, subject kind, subject id) → [(period, metric, target)].
    quotas: QuotaMap,
    sessions: Option<Vec<Event>>,
    outreach: Option<Vec<Event>>,
    /// Stale limit for devices, ms.
    pub stale_after_ms: i64,
}

/// Default stale limit: 48 hours.
pub const DEFAULT_STALE_MS: i64 = 48 * 3600 * 1000;

impl Snapshot {
    /// Read the store's materialised tables (best inside one read transaction).
    pub fn build(conn: &Connection, now_ms: i64) -> Result<Snapshot> {
        let started = std::time::Instant::now();
        let fingerprint = fingerprint(conn)?;

        // Units and their tree.
        let mut units: BTreeMap<String, UnitInfo> = BTreeMap::new();
        {
            let mut stmt = conn.prepare("SELECT code, name, level, parent_code FROM units")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                units.insert(
                    r.get(0)?,
                    UnitInfo {
                        name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        level: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        parent: r.get(3)?,
                        children: Vec::new(),
                    },
                );
            }
        }
        let links: Vec<(String, String)> = units
            .iter()
            .filter_map(|(c, u)| u.parent.clone().map(|p| (p, c.clone())))
            .collect();
        for (p, c) in links {
            if let Some(u) = units.get_mut(&p) {
                u.children.push(c);
            }
        }

        // Residents in scope, their current state, and per-village / per-household sums.
        let with_agency = has_column(conn, "residents", "agency")?;
        let mut villages: Vec<String> = Vec::new();
        let mut village_ix: HashMap<String, u32> = HashMap::new();
        let mut households: Vec<String> = Vec::new();
        let mut household_ix: HashMap<String, u32> = HashMap::new();
        let mut residents: Vec<Resident> = Vec::new();
        let mut resident_ix: HashMap<u128, u32> = HashMap::new();
        let mut village_aggs: Vec<Agg> = Vec::new();
        let mut household_states: Vec<State> = Vec::new();
        {
            let sql = format!(
                "SELECT r.id, h.id, h.village_code, r.roster_account,
                        coalesce(s.level1, 0), coalesce(s.level2, 0), coalesce(s.portal, 0), {}
                   FROM residents r JOIN households h ON h.id = r.household_id
                   LEFT JOIN account_state s ON s.resident_id = r.id
                  WHERE r.deleted = 0 AND h.deleted = 0",
                if with_agency { "r.agency" } else { "NULL" }
            );
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let Ok(id) = Uuid::parse_str(&id) else {
                    continue;
                };
                let hh: String = r.get(1)?;
                let village: String = r.get::<_, Option<String>>(2)?.unwrap_or_default();
                let v = *village_ix.entry(village.clone()).or_insert_with(|| {
                    villages.push(village);
                    village_aggs.push(Agg::default());
                    (villages.len() - 1) as u32
                });
                let h = *household_ix.entry(hh.clone()).or_insert_with(|| {
                    households.push(hh);
                    household_states.push(State::default());
                    (households.len() - 1) as u32
                });
                let roster = roster_bits(r.get::<_, Option<String>>(3)?.as_deref());
                let (l1, l2, portal): (i64, i64, i64) = (r.get(4)?, r.get(5)?, r.get(6)?);
                let mut s = State {
                    accounts: 1,
                    ..State::default()
                };
                if l2 == 2 {
                    s.level2_activated = 1;
                } else if l1 == 2 {
                    s.level1_activated = 1;
                }
                if l2 >= 1 {
                    s.level2_received = 1;
                }
                if portal != 0 {
                    s.portal = 1;
                }
                if roster & (R_L1 | R_L2) != 0 {
                    s.roster_activated = 1;
                }
                if roster & R_L1 != 0 {
                    s.roster_level1 = 1;
                }
                if roster & R_L2 != 0 {
                    s.roster_level2 = 1;
                }
                let agg = &mut village_aggs[v as usize];
                agg.state.add(&s);
                household_states[h as usize].add(&s);
                if let Some(agency) = r.get::<_, Option<String>>(7)? {
                    let e = agg.agencies.entry(agency).or_default();
                    e.0 += 1;
                    e.1 += s.level2_activated;
                    e.2 += s.portal;
                }
                resident_ix.insert(id.as_u128(), residents.len() as u32);
                residents.push(Resident {
                    village: v,
                    household: h,
                    roster,
                });
            }
        }

        // Officers.
        let mut officers: BTreeMap<Uuid, OfficerInfo> = BTreeMap::new();
        let mut officer_list: Vec<Uuid> = Vec::new();
        let mut officer_ix: HashMap<String, u32> = HashMap::new();
        {
            let mut stmt = conn.prepare(
                "SELECT id, name, role, unit_code FROM officers WHERE deleted = 0 ORDER BY id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let id_text: String = r.get(0)?;
                let Ok(id) = Uuid::parse_str(&id_text) else {
                    continue;
                };
                let unit_code: String = r.get::<_, Option<String>>(3)?.unwrap_or_default();
                officer_ix.insert(id_text, officer_list.len() as u32);
                officer_list.push(id);
                officers.insert(
                    id,
                    OfficerInfo {
                        r: OfficerRef {
                            id,
                            name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                            role: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                            unit_code: unit_code.clone(),
                        },
                        home_units: vec![unit_code],
                        agg: Agg::default(),
                    },
                );
            }
        }
        // Assigned areas: accounts in them.
        {
            let mut stmt = conn.prepare(
                "SELECT officer_id, target_kind, target_id FROM assignments WHERE active = 1",
            )?;
            let mut rows = stmt.query([])?;
            let mut areas: HashMap<Uuid, (HashSet<u32>, HashSet<u32>)> = HashMap::new();
            while let Some(r) = rows.next()? {
                let Ok(o) = Uuid::parse_str(&r.get::<_, String>(0)?) else {
                    continue;
                };
                let kind: Option<String> = r.get(1)?;
                let target: Option<String> = r.get(2)?;
                let (Some(kind), Some(target)) = (kind, target) else {
                    continue;
                };
                let Some(info) = officers.get_mut(&o) else {
                    continue;
                };
                let area = areas.entry(o).or_default();
                if kind == "village" {
                    if !info.home_units.contains(&target) {
                        info.home_units.push(target.clone());
                    }
                    if let Some(v) = village_ix.get(&target) {
                        area.0.insert(*v);
                    }
                } else if let Some(h) = household_ix.get(&target) {
                    area.1.insert(*h);
                }
            }
            // A household's village: from any of its residents.
            let mut household_village: Vec<u32> = vec![u32::MAX; households.len()];
            for r in &residents {
                household_village[r.household as usize] = r.village;
            }
            for (o, (vs, hs)) in areas {
                let info = officers.get_mut(&o).expect("officer exists");
                for v in &vs {
                    info.agg.state.add(&village_aggs[*v as usize].state);
                }
                for h in hs {
                    if !vs.contains(&household_village[h as usize]) {
                        info.agg.state.add(&household_states[h as usize]);
                    }
                }
            }
        }

        // Rule 3: the earliest non-retracted successful step per resident and metric.
        let mut best: Vec<[Option<Cred>; 4]> = vec![[None; 4]; residents.len()];
        {
            let mut stmt = conn.prepare(
                "SELECT resident_id, step, officer_id, at_ms, id FROM assists
                  WHERE retracted = 0 AND failure IS NULL
                    AND step IN ('level1_activated', 'level2_received', 'level2_activated',
                                 'portal_guided')",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let Ok(res) = Uuid::parse_str(txt(r, 0)?) else {
                    continue;
                };
                let Some(&ri) = resident_ix.get(&res.as_u128()) else {
                    continue; // deleted or outside every household: not in scope
                };
                let k = match txt(r, 1)? {
                    "level1_activated" => 0,
                    "level2_received" => 1,
                    "level2_activated" => 2,
                    _ => 3,
                };
                let officer = officer_ix.get(txt(r, 2)?).copied().unwrap_or(u32::MAX);
                let id = Uuid::parse_str(txt(r, 4)?)
                    .map(|u| u.as_u128())
                    .unwrap_or(u128::MAX);
                let c = Cred {
                    at_ms: r.get(3)?,
                    id,
                    officer,
                };
                let slot = &mut best[ri as usize][k];
                if slot.is_none_or(|b| c.earlier(&b)) {
                    *slot = Some(c);
                }
            }
        }
        let mut officer_aggs: Vec<Agg> = vec![Agg::default(); officer_list.len()];
        for (ri, creds) in best.iter().enumerate() {
            let res = &residents[ri];
            let included = [
                res.roster & R_L1 != 0,
                res.roster & R_L2REC != 0,
                res.roster & R_L2 != 0,
                false,
            ];
            let mut credit = |c: &Cred, f: &dyn Fn(&mut DayCounts)| {
                let d = day_of_ms(c.at_ms);
                f(village_aggs[res.village as usize].day(d));
                if let Some(o) = officer_aggs.get_mut(c.officer as usize) {
                    f(o.day(d));
                }
            };
            for (k, c) in creds.iter().enumerate() {
                let Some(c) = c else { continue };
                if included[k] {
                    continue;
                }
                match k {
                    0 => credit(c, &|d| d.level1_activated += 1),
                    1 => credit(c, &|d| d.level2_received += 1),
                    2 => credit(c, &|d| d.level2_activated += 1),
                    _ => credit(c, &|d| d.portal_guided += 1),
                }
            }
            if res.roster & (R_L1 | R_L2) == 0 {
                let first = match (&creds[0], &creds[2]) {
                    (Some(a), Some(b)) => Some(if a.earlier(b) { a } else { b }),
                    (Some(a), None) | (None, Some(a)) => Some(a),
                    (None, None) => None,
                };
                if let Some(c) = first {
                    credit(c, &|d| d.activated += 1);
                }
            }
        }
        drop(best);

        // Rule 5: blockers.
        {
            let mut stmt = conn.prepare(
                "SELECT resident_id, officer_id, failure, count(*) FROM assists
                  WHERE retracted = 0 AND failure IS NOT NULL
                  GROUP BY resident_id, officer_id, failure",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let Ok(res) = Uuid::parse_str(txt(r, 0)?) else {
                    continue;
                };
                let Some(&ri) = resident_ix.get(&res.as_u128()) else {
                    continue;
                };
                let reason: String = r.get(2)?;
                let n: i64 = r.get(3)?;
                let v = residents[ri as usize].village;
                *village_aggs[v as usize]
                    .blockers
                    .entry(reason.clone())
                    .or_default() += n as u64;
                if let Some(&o) = officer_ix.get(txt(r, 1)?) {
                    *officer_aggs[o as usize].blockers.entry(reason).or_default() += n as u64;
                }
            }
        }

        // Visits (rule 3, `visits`).
        {
            let mut stmt = conn.prepare(
                "SELECT h.village_code, v.officer_id, v.day, count(*)
                   FROM visits v JOIN households h ON h.id = v.household_id
                  WHERE v.retracted = 0 AND h.deleted = 0
                  GROUP BY h.village_code, v.officer_id, v.day",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let village: Option<String> = r.get(0)?;
                let Ok(day) = NaiveDate::parse_from_str(txt(r, 2)?, "%Y-%m-%d") else {
                    continue;
                };
                let d = day_num(day);
                let n = r.get::<_, i64>(3)? as u64;
                let village = village.unwrap_or_default();
                let v = *village_ix.entry(village.clone()).or_insert_with(|| {
                    villages.push(village);
                    village_aggs.push(Agg::default());
                    (villages.len() - 1) as u32
                });
                village_aggs[v as usize].day(d).visits += n;
                if let Some(&o) = officer_ix.get(txt(r, 1)?) {
                    officer_aggs[o as usize].day(d).visits += n;
                }
            }
        }
        for (i, a) in officer_aggs.into_iter().enumerate() {
            let info = officers.get_mut(&officer_list[i]).expect("officer exists");
            info.agg.days = a.days;
            info.agg.blockers = a.blockers;
        }

        // Roll villages up the tree.
        let mut aggs: HashMap<String, Agg> = HashMap::new();
        for (v, agg) in villages.iter().zip(village_aggs) {
            let mut code = Some(v.clone());
            let mut depth = 0;
            while let Some(c) = code {
                aggs.entry(c.clone()).or_default().add(&agg);
                code = units.get(&c).and_then(|u| u.parent.clone());
                depth += 1;
                if depth > 8 {
                    break;
                }
            }
        }

        // Campaigns and quotas.
        let mut campaigns = Vec::new();
        {
            let mut stmt = conn.prepare(
                "SELECT id, name, start_date, end_date, target, unit_code FROM campaigns
                  ORDER BY start_date, id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let (Ok(id), Some(Ok(start)), Some(Ok(end))) = (
                    Uuid::parse_str(&r.get::<_, String>(0)?),
                    r.get::<_, Option<String>>(2)?
                        .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d")),
                    r.get::<_, Option<String>>(3)?
                        .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d")),
                ) else {
                    continue;
                };
                campaigns.push(CampaignInfo {
                    id,
                    name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    start,
                    end,
                    target: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                    unit_code: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                });
            }
        }
        let mut quotas: QuotaMap = HashMap::new();
        {
            let mut stmt = conn.prepare(
                "SELECT campaign_id, subject_kind, subject_id, period, metric, target FROM quotas
                  WHERE campaign_id IS NOT NULL AND subject_kind IS NOT NULL
                    AND subject_id IS NOT NULL AND period IS NOT NULL AND metric IS NOT NULL",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                quotas
                    .entry((r.get(0)?, r.get(1)?, r.get(2)?))
                    .or_default()
                    .push((
                        r.get(3)?,
                        r.get(4)?,
                        r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                    ));
            }
        }

        // Sessions and outreach (schema v2), per commune.
        let commune_of = |code: &str| -> String {
            let mut c = code.to_owned();
            for _ in 0..8 {
                match units.get(&c) {
                    Some(u) if u.level == "village" => match &u.parent {
                        Some(p) => c = p.clone(),
                        None => break,
                    },
                    _ => break,
                }
            }
            c
        };
        let sessions = if has_table(conn, "sessions")? {
            let mut out = Vec::new();
            let mut stmt = conn.prepare(
                "SELECT id, unit_code, kind, place, starts_at_ms, ends_at_ms, applications
                   FROM sessions WHERE retracted = 0",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let unit: String = r.get::<_, Option<String>>(1)?.unwrap_or_default();
                let starts: i64 = r.get(4)?;
                let ends: i64 = r.get::<_, Option<i64>>(5)?.unwrap_or(starts);
                let kind: String = r.get(2)?;
                let apps = r.get::<_, Option<i64>>(6)?.unwrap_or(0).max(0) as u64;
                let hm = |ms: i64| {
                    chrono::DateTime::from_timestamp_millis(ms + LOCAL_OFFSET_MS)
                        .map(|t| t.format("%H:%M").to_string())
                        .unwrap_or_default()
                };
                let commune = commune_of(&unit);
                out.push(Event {
                    commune: commune.clone(),
                    kind: kind.clone(),
                    day: day_of_ms(starts),
                    total: apps,
                    row: Some(SessionRow {
                        id: r.get(0)?,
                        unit_code: commune,
                        kind,
                        place: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        day: day_date(day_of_ms(starts)).to_string(),
                        starts: hm(starts),
                        ends: hm(ends),
                        applications: apps,
                    }),
                });
            }
            Some(out)
        } else {
            None
        };
        let outreach = if has_table(conn, "outreach")? {
            let mut out = Vec::new();
            let mut stmt = conn.prepare(
                "SELECT unit_code, kind, at_ms, people FROM outreach WHERE retracted = 0",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let unit: String = r.get::<_, Option<String>>(0)?.unwrap_or_default();
                out.push(Event {
                    commune: commune_of(&unit),
                    kind: r.get(1)?,
                    day: day_of_ms(r.get(2)?),
                    total: r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
                    row: None,
                });
            }
            Some(out)
        } else {
            None
        };

        Ok(Snapshot {
            built_at_ms: now_ms,
            build_ms: started.elapsed().as_secs_f64() * 1e3,
            fingerprint,
            units,
            aggs,
            officers,
            campaigns,
            quotas,
            sessions,
            outreach,
            stale_after_ms: DEFAULT_STALE_MS,
        })
    }

    /// The unit, if known.
    pub fn unit(&self, code: &str) -> Option<UnitRef> {
        self.units.get(code).map(|u| UnitRef {
            code: code.to_owned(),
            name: u.name.clone(),
            level: u.level.clone(),
        })
    }

    /// The unit's parent, if any.
    pub fn parent(&self, code: &str) -> Option<String> {
        self.units.get(code).and_then(|u| u.parent.clone())
    }

    /// The units at the top of the tree (no parent), by code.
    pub fn roots(&self) -> Vec<String> {
        self.units
            .iter()
            .filter(|(_, u)| u.parent.is_none())
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Whether `code` is `ancestor` or lies under it.
    pub fn is_under(&self, code: &str, ancestor: &str) -> bool {
        let mut c = Some(code.to_owned());
        for _ in 0..10 {
            match c {
                Some(x) if x == ancestor => return true,
                Some(x) => c = self.parent(&x),
                None => return false,
            }
        }
        false
    }

    /// The officer, if known.
    pub fn officer(&self, id: Uuid) -> Option<OfficerRef> {
        self.officers.get(&id).map(|o| o.r.clone())
    }

    /// Whether the officer belongs to, or works in, the unit.
    pub fn officer_in(&self, id: Uuid, unit: &str) -> bool {
        self.officers
            .get(&id)
            .is_some_and(|o| o.home_units.iter().any(|h| self.is_under(h, unit)))
    }

    /// Officers in a unit (every officer for `None`), by name.
    pub fn officers_in(&self, unit: Option<&str>) -> Vec<OfficerRef> {
        let mut v: Vec<OfficerRef> = self
            .officers
            .values()
            .filter(|o| unit.is_none_or(|u| self.officer_in(o.r.id, u)))
            .map(|o| o.r.clone())
            .collect();
        v.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        v
    }

    /// Every campaign.
    pub fn campaigns(&self) -> &[CampaignInfo] {
        &self.campaigns
    }

    /// The campaign asked for, or the server's active one: the campaign whose dates contain
    /// `date` (the latest-starting if several), else the latest-starting campaign.
    pub fn campaign(&self, id: Option<Uuid>, date: Option<NaiveDate>) -> Result<CampaignInfo> {
        if let Some(id) = id {
            return self
                .campaigns
                .iter()
                .find(|c| c.id == id)
                .cloned()
                .ok_or(ServerError::NotFound("campaign"));
        }
        let date = date.unwrap_or_else(today);
        self.campaigns
            .iter()
            .rev()
            .find(|c| c.start <= date && date <= c.end)
            .or_else(|| self.campaigns.iter().max_by_key(|c| (c.start, c.id)))
            .cloned()
            .ok_or(ServerError::NotFound("campaign (none defined yet)"))
    }

    /// The report's day when none is given: today, clamped into the campaign.
    pub fn default_date(campaign: &CampaignInfo) -> NaiveDate {
        today().clamp(campaign.start, campaign.end)
    }

    fn quota(
        &self,
        campaign: &CampaignInfo,
        kind: &str,
        subject: &str,
    ) -> &[(String, String, i64)] {
        self.quotas
            .get(&(campaign.id.to_string(), kind.to_owned(), subject.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    fn target(&self, campaign: &CampaignInfo, kind: &str, subject: &str) -> Option<i64> {
        if kind == "unit" && subject == campaign.unit_code {
            return Some(campaign.target);
        }
        let q: Vec<i64> = self
            .quota(campaign, kind, subject)
            .iter()
            .filter(|(p, m, _)| {
                p == "campaign" && (m == "level1_activated" || m == "level2_activated")
            })
            .map(|(_, _, t)| *t)
            .collect();
        (!q.is_empty()).then(|| q.iter().sum())
    }

    fn quota_today(
        &self,
        campaign: &CampaignInfo,
        kind: &str,
        subject: &str,
        date: NaiveDate,
    ) -> Option<BTreeMap<String, i64>> {
        let day = date.to_string();
        let q: BTreeMap<String, i64> = self
            .quota(campaign, kind, subject)
            .iter()
            .filter(|(p, _, _)| *p == day)
            .map(|(_, m, t)| (m.clone(), *t))
            .collect();
        (!q.is_empty()).then_some(q)
    }

    fn percent(activated: u64, target: Option<i64>) -> Option<f64> {
        target
            .filter(|t| *t > 0)
            .map(|t| activated as f64 * 100.0 / t as f64)
    }

    fn campaign_activated(agg: &Agg, campaign: &CampaignInfo, date: NaiveDate) -> u64 {
        let to = day_num(date.min(campaign.end));
        agg.days
            .range(day_num(campaign.start)..=to)
            .map(|(_, c)| c.activated)
            .sum()
    }

    /// The row of a unit.
    pub fn row(&self, code: &str, campaign: &CampaignInfo, date: NaiveDate) -> Result<Row> {
        let u = self.unit(code).ok_or(ServerError::NotFound("unit"))?;
        let empty = Agg::default();
        let agg = self.aggs.get(code).unwrap_or(&empty);
        let s = &agg.state;
        let activated = s.level1_activated + s.level2_activated;
        let target = self.target(campaign, "unit", code);
        Ok(Row {
            code: u.code,
            name: u.name,
            level: u.level,
            accounts: s.accounts,
            level1_activated: s.level1_activated,
            level2_activated: s.level2_activated,
            activated,
            level2_received: s.level2_received,
            portal: s.portal,
            target,
            percent_of_target: Self::percent(activated, target),
            today: agg.days.get(&day_num(date)).copied().unwrap_or_default(),
            quota_today: self.quota_today(campaign, "unit", code, date),
            campaign_activated: Self::campaign_activated(agg, campaign, date),
        })
    }

    /// The row of an officer.
    pub fn officer_row(
        &self,
        id: Uuid,
        campaign: &CampaignInfo,
        date: NaiveDate,
    ) -> Result<OfficerRow> {
        let o = self
            .officers
            .get(&id)
            .ok_or(ServerError::NotFound("officer"))?;
        let mut upto = DayCounts::default();
        for (_, c) in o.agg.days.range(..=day_num(date)) {
            upto.add(c);
        }
        let subject = id.to_string();
        let target = self.target(campaign, "officer", &subject);
        Ok(OfficerRow {
            id,
            name: o.r.name.clone(),
            role: o.r.role.clone(),
            unit_code: o.r.unit_code.clone(),
            accounts: o.agg.state.accounts,
            level1_activated: upto.level1_activated,
            level2_activated: upto.level2_activated,
            activated: upto.activated,
            level2_received: upto.level2_received,
            portal: upto.portal_guided,
            target,
            percent_of_target: Self::percent(upto.activated, target),
            today: o.agg.days.get(&day_num(date)).copied().unwrap_or_default(),
            quota_today: self.quota_today(campaign, "officer", &subject, date),
            campaign_activated: Self::campaign_activated(&o.agg, campaign, date),
        })
    }

    fn trend(
        agg: &Agg,
        base: (u64, u64, u64),
        campaign: &CampaignInfo,
        date: NaiveDate,
    ) -> Vec<TrendPoint> {
        let start = day_num(campaign.start);
        let end = day_num(date.min(campaign.end));
        let (mut a, mut l1, mut l2) = base;
        for (_, c) in agg.days.range(..start) {
            a += c.activated;
            l1 += c.level1_activated;
            l2 += c.level2_activated;
        }
        let mut out = Vec::new();
        for d in start..=end {
            if let Some(c) = agg.days.get(&d) {
                a += c.activated;
                l1 += c.level1_activated;
                l2 += c.level2_activated;
            }
            out.push(TrendPoint {
                date: day_date(d),
                activated: a,
                level1_activated: l1,
                level2_activated: l2,
            });
        }
        out
    }

    fn blockers(agg: &Agg) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = FailureReason::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), 0))
            .collect();
        for (k, v) in &agg.blockers {
            *out.entry(k.clone()).or_default() += v;
        }
        out
    }

    /// Device rows for the given officers, from the backend's device list.
    pub fn device_rows(
        &self,
        devices: &[DeviceInfo],
        officers: &HashSet<Uuid>,
        now_ms: i64,
    ) -> Vec<DeviceRow> {
        let mut out: Vec<DeviceRow> = devices
            .iter()
            .filter(|d| officers.contains(&d.officer_id))
            .map(|d| {
                let revoked = d.revoked_at_ms.is_some();
                DeviceRow {
                    id: d.id,
                    name: d.name.clone(),
                    officer_id: d.officer_id,
                    officer_name: self
                        .officers
                        .get(&d.officer_id)
                        .map(|o| o.r.name.clone())
                        .unwrap_or_default(),
                    last_sync_ms: d.last_seen_ms,
                    last_sync: d.last_seen_ms.map(local_rfc3339),
                    stale: !revoked
                        && d.last_seen_ms
                            .is_none_or(|t| now_ms - t > self.stale_after_ms),
                    revoked,
                }
            })
            .collect();
        out.sort_by(|a, b| (b.stale, &a.officer_name, a.id).cmp(&(a.stale, &b.officer_name, b.id)));
        out
    }

    fn events_in(
        &self,
        events: &[Event],
        unit: &str,
        campaign: &CampaignInfo,
        date: NaiveDate,
    ) -> EventSums {
        let (from, to) = (day_num(campaign.start), day_num(date));
        let mut by_kind: BTreeMap<String, KindCount> = BTreeMap::new();
        let mut per: BTreeMap<String, BTreeMap<String, KindCount>> = BTreeMap::new();
        let mut today = Vec::new();
        for e in events {
            if e.day < from || e.day > to || !self.is_under(&e.commune, unit) {
                continue;
            }
            let k = by_kind.entry(e.kind.clone()).or_default();
            k.count += 1;
            k.total += e.total;
            let k = per
                .entry(e.commune.clone())
                .or_default()
                .entry(e.kind.clone())
                .or_default();
            k.count += 1;
            k.total += e.total;
            if e.day == to {
                if let Some(r) = &e.row {
                    today.push(r.clone());
                }
            }
        }
        today.sort_by(|a, b| (&a.starts, &a.id).cmp(&(&b.starts, &b.id)));
        (by_kind, per, today)
    }

    /// The report of a unit on a day.
    pub fn report(
        &self,
        code: &str,
        campaign: &CampaignInfo,
        date: NaiveDate,
        devices: &[DeviceInfo],
        now_ms: i64,
    ) -> Result<Report> {
        let unit = self.unit(code).ok_or(ServerError::NotFound("unit"))?;
        let totals = self.row(code, campaign, date)?;
        let mut children_codes = self.units[code].children.clone();
        children_codes.sort();
        let children = children_codes
            .iter()
            .map(|c| self.row(c, campaign, date))
            .collect::<Result<Vec<_>>>()?;
        let mut officer_ids: Vec<&OfficerInfo> = self
            .officers
            .values()
            .filter(|o| o.home_units.iter().any(|h| self.is_under(h, code)))
            .collect();
        officer_ids.sort_by(|a, b| (&a.r.name, a.r.id).cmp(&(&b.r.name, b.r.id)));
        let officers = officer_ids
            .iter()
            .map(|o| self.officer_row(o.r.id, campaign, date))
            .collect::<Result<Vec<_>>>()?;
        let empty = Agg::default();
        let agg = self.aggs.get(code).unwrap_or(&empty);
        let s = &agg.state;
        let trend = Self::trend(
            agg,
            (s.roster_activated, s.roster_level1, s.roster_level2),
            campaign,
            date,
        );
        let set: HashSet<Uuid> = officer_ids.iter().map(|o| o.r.id).collect();
        let agencies = agg
            .agencies
            .iter()
            .map(|(k, v)| AgencyRow {
                agency: k.clone(),
                accounts: v.0,
                level2_activated: v.1,
                portal: v.2,
                percent_level2: if v.0 == 0 {
                    0.0
                } else {
                    v.1 as f64 * 100.0 / v.0 as f64
                },
            })
            .collect();
        let sessions = match &self.sessions {
            Some(ev) => {
                let (by_kind, per_commune, today) = self.events_in(ev, code, campaign, date);
                Sessions {
                    available: true,
                    by_kind,
                    per_commune,
                    today,
                }
            }
            None => Sessions::default(),
        };
        let outreach = match &self.outreach {
            Some(ev) => {
                let (by_kind, per_commune, _) = self.events_in(ev, code, campaign, date);
                Outreach {
                    available: true,
                    by_kind,
                    per_commune,
                }
            }
            None => Outreach::default(),
        };
        Ok(Report {
            unit,
            date,
            campaign: campaign.clone(),
            as_of: local_rfc3339(self.built_at_ms),
            totals,
            children,
            officers,
            trend,
            blockers: Self::blockers(agg),
            devices: self.device_rows(devices, &set, now_ms),
            agencies,
            sessions,
            outreach,
        })
    }

    /// The report of an officer on a day.
    pub fn officer_report(
        &self,
        id: Uuid,
        campaign: &CampaignInfo,
        date: NaiveDate,
        devices: &[DeviceInfo],
        now_ms: i64,
    ) -> Result<OfficerReport> {
        let info = self
            .officers
            .get(&id)
            .ok_or(ServerError::NotFound("officer"))?;
        let unit = self.unit(&info.r.unit_code).unwrap_or(UnitRef {
            code: info.r.unit_code.clone(),
            name: String::new(),
            level: String::new(),
        });
        let set: HashSet<Uuid> = [id].into_iter().collect();
        Ok(OfficerReport {
            officer: info.r.clone(),
            unit,
            date,
            campaign: campaign.clone(),
            as_of: local_rfc3339(self.built_at_ms),
            row: self.officer_row(id, campaign, date)?,
            trend: Self::trend(&info.agg, (0, 0, 0), campaign, date),
            blockers: Self::blockers(&info.agg),
            devices: self.device_rows(devices, &set, now_ms),
        })
    }
}

/// Ranking (rule 8): rows by campaign activations, descending (then by name).
pub fn ranking<T>(rows: &[T], key: impl Fn(&T) -> (u64, &str)) -> Vec<&T> {
    let mut v: Vec<&T> = rows.iter().collect();
    v.sort_by(|a, b| {
        let (ka, na) = key(a);
        let (kb, nb) = key(b);
        kb.cmp(&ka).then_with(|| na.cmp(nb))
    });
    v
}

/// Laggards (rule 8): the metrics whose day count is below the day quota.
pub fn lagging(
    today: &DayCounts,
    quota: &Option<BTreeMap<String, i64>>,
) -> Vec<(String, u64, i64)> {
    let Some(q) = quota else { return Vec::new() };
    q.iter()
        .filter_map(|(m, t)| {
            let n = today.metric(m)?;
            ((n as i64) < *t).then(|| (m.clone(), n, *t))
        })
        .collect()
}

/// The latest snapshot, rebuilt when the store changed.
pub struct StatsCache {
    current: RwLock<Option<Arc<Snapshot>>>,
    building: AtomicBool,
    last_check_ms: AtomicI64,
    /// Held while the first snapshot is built, so concurrent first requests build it once.
    first: std::sync::Mutex<()>,
    /// Twice the last build's duration: rebuilds never take more than a third of a core.
    min_gap_ms: AtomicI64,
    /// At most one fingerprint check (and rebuild) per this many ms; 0: check on every
    /// request and rebuild before answering (tests).
    pub debounce_ms: i64,
}

impl std::fmt::Debug for StatsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCache")
            .field("debounce_ms", &self.debounce_ms)
            .finish_non_exhaustive()
    }
}

/// Default debounce: a snapshot is at most this old plus its build time.
pub const DEFAULT_DEBOUNCE_MS: i64 = 3000;

impl StatsCache {
    /// A cache that checks the store at most every `debounce_ms`.
    pub fn new(debounce_ms: i64) -> StatsCache {
        StatsCache {
            current: RwLock::new(None),
            building: AtomicBool::new(false),
            last_check_ms: AtomicI64::new(i64::MIN / 2),
            min_gap_ms: AtomicI64::new(0),
            first: std::sync::Mutex::new(()),
            debounce_ms,
        }
    }

    fn build(backend: &dyn Backend) -> Result<Snapshot> {
        let mut out = None;
        backend.read_view(&mut |conn| {
            out = Some(Snapshot::build(conn, crate::now_ms())?);
            Ok(())
        })?;
        out.ok_or_else(|| ServerError::Internal("read_view did not run".into()))
    }

    fn store(&self, s: Snapshot) -> Arc<Snapshot> {
        self.min_gap_ms
            .store(2 * s.build_ms as i64, Ordering::Relaxed);
        let s = Arc::new(s);
        if let Ok(mut w) = self.current.write() {
            *w = Some(s.clone());
        }
        s
    }

    /// The current snapshot, building it first if there is none; kicks a background
    /// rebuild when the store changed. Blocking: call from a blocking thread.
    pub fn get(self: &Arc<Self>, backend: &Arc<dyn Backend>) -> Result<Arc<Snapshot>> {
        let current = self.current.read().ok().and_then(|c| c.clone());
        let now = crate::now_ms();
        let Some(current) = current else {
            let _first = self.first.lock();
            if let Some(c) = self.current.read().ok().and_then(|c| c.clone()) {
                return Ok(c); // built while we waited
            }
            let s = Self::build(&**backend)?;
            self.last_check_ms.store(now, Ordering::Relaxed);
            return Ok(self.store(s));
        };
        let last = self.last_check_ms.load(Ordering::Relaxed);
        let gap = self
            .debounce_ms
            .max(self.min_gap_ms.load(Ordering::Relaxed));
        if self.debounce_ms > 0 && now - last < gap {
            return Ok(current);
        }
        self.last_check_ms.store(now, Ordering::Relaxed);
        if self.building.load(Ordering::Acquire) {
            // A rebuild holds the read connection: do not queue behind it.
            return Ok(current);
        }
        let mut fp = None;
        backend.read_view(&mut |conn| {
            fp = Some(fingerprint(conn)?);
            Ok(())
        })?;
        if fp == Some(current.fingerprint) {
            return Ok(current);
        }
        if self.debounce_ms == 0 {
            return Ok(self.store(Self::build(&**backend)?));
        }
        if !self.building.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            let backend = backend.clone();
            std::thread::spawn(move || {
                match Self::build(&*backend) {
                    Ok(s) => {
                        tracing::info!(build_ms = s.build_ms, "statistics snapshot rebuilt");
                        me.store(s);
                    }
                    Err(e) => tracing::error!(error = %e, "statistics snapshot failed"),
                }
                me.building.store(false, Ordering::Release);
            });
        }
        Ok(current)
    }
}
