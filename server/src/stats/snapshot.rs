//! The snapshot: everything a report needs, computed once from the store
//! ([`Snapshot::build`]), and the look-ups pages make in it (units, officers, campaigns).
//! Reports are assembled from it in [`super::report`].

use super::count::{self, Event, OfficerInfo, Officers, Population};
use super::read;
use super::rollup::{self, Agg, Units};
use super::time::{day_date, day_num, today};
use super::types::{CampaignInfo, DayCounts, OfficerRef, UnitRef};
use crate::error::{Result, ServerError};
use chrono::NaiveDate;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// (campaign, subject kind, subject id) → [(period, metric, target)].
pub(super) type QuotaMap = HashMap<(String, String, String), Vec<(String, String, i64)>>;

/// Everything a report needs, computed once from the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the build started, Unix ms (what pages call "as of").
    pub built_at_ms: i64,
    /// How long the build took, ms.
    pub build_ms: f64,
    /// The store's [`super::fingerprint`] when it was read.
    pub fingerprint: (i64, i64),
    pub(super) units: Units,
    /// Every unit's sums, rolled up the tree.
    pub(super) aggs: HashMap<String, Agg>,
    pub(super) officers: BTreeMap<Uuid, OfficerInfo>,
    pub(super) campaigns: Vec<CampaignInfo>,
    /// (campaign, subject kind, subject id) → [(period, metric, target)].
    pub(super) quotas: QuotaMap,
    pub(super) sessions: Option<Vec<Event>>,
    pub(super) outreach: Option<Vec<Event>>,
    /// Stale limit for devices, ms.
    pub stale_after_ms: i64,
}

/// Default stale limit: 48 hours.
pub const DEFAULT_STALE_MS: i64 = 48 * 3600 * 1000;

impl Snapshot {
    /// Read the store's materialised tables (best inside one read transaction).
    pub fn build(conn: &Connection, now_ms: i64) -> Result<Snapshot> {
        let started = std::time::Instant::now();
        let fingerprint = read::fingerprint(conn)?;
        let units = rollup::unit_tree(read::units(conn)?);
        let mut people = Population::read(conn)?;
        let mut officers = Officers::read(conn)?;
        officers.assigned_accounts(read::assignments(conn)?, &people);
        let best = count::earliest_steps(conn, &people, &officers)?;
        count::state_changes(&best, &mut people);
        count::credit_steps(best, &mut people, &mut officers);
        count::count_blockers(conn, &mut people, &mut officers)?;
        count::count_visits(conn, &mut people, &mut officers)?;
        let officers = officers.finish();
        let aggs = rollup::roll_up(&units, people.into_villages());
        let campaigns = read::campaigns(conn)?;
        let quotas = quota_map(read::quotas(conn)?);
        let sessions = if read::has_table(conn, "sessions")? {
            let rows = read::sessions(conn)?.into_iter();
            Some(rows.map(|s| count::session_event(&units, s)).collect())
        } else {
            None
        };
        let outreach = if read::has_table(conn, "outreach")? {
            let rows = read::outreach(conn)?.into_iter();
            Some(rows.map(|o| count::outreach_event(&units, o)).collect())
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
        rollup::is_under(&self.units, code, ancestor)
    }

    /// The officer, if known.
    pub fn officer(&self, id: Uuid) -> Option<OfficerRef> {
        self.officers.get(&id).map(|o| o.r.clone())
    }

    /// Whether the officer belongs to, or works in, the unit.
    pub fn officer_in(&self, id: Uuid, unit: &str) -> bool {
        self.officers
            .get(&id)
            .is_some_and(|o| self.works_in(o, unit))
    }

    /// Whether one of the officer's home units lies under the unit.
    pub(super) fn works_in(&self, o: &OfficerInfo, unit: &str) -> bool {
        o.home_units.iter().any(|h| self.is_under(h, unit))
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

    /// The report's day when none is given: today, clamped into the campaign — except once
    /// the campaign is over, when it is the campaign's last day with any activity in its unit
    /// (a report re-read in September, or the demo, opens on work done, not on an empty last
    /// day; the campaign's end if nothing happened at all).
    pub fn default_date(&self, campaign: &CampaignInfo) -> NaiveDate {
        let today = today();
        if today <= campaign.end {
            return today.clamp(campaign.start, campaign.end);
        }
        self.unit_agg(&campaign.unit_code)
            .days
            .range(day_num(campaign.start)..=day_num(campaign.end))
            .rev()
            .find(|(_, c)| **c != DayCounts::default())
            .map_or(campaign.end, |(d, _)| day_date(*d))
    }
}

/// Quotas by campaign and subject, as rules 6 and 7 look them up.
fn quota_map(rows: Vec<read::Quota>) -> QuotaMap {
    let mut quotas: QuotaMap = HashMap::new();
    for q in rows {
        quotas
            .entry((q.campaign, q.subject_kind, q.subject))
            .or_default()
            .push((q.period, q.metric, q.target));
    }
    quotas
}
