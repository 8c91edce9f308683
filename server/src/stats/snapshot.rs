//! The snapshot: everything a report needs, from the store ([`Snapshot::build`], or kept up
//! to date by the ledger, `ledger.rs`), and the look-ups pages make in it (units, officers,
//! campaigns). Reports are assembled from it in [`super::report`].

use super::count::Event;
use super::ledger::{Ledger, OfficerInfo};
use super::read;
use super::rollup::{self, Agg, Units};
use super::time::{day_date, day_num, today};
use super::types::{CampaignInfo, DayCounts, OfficerRef, UnitRef};
use crate::error::{Result, ServerError};
use chrono::NaiveDate;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// (campaign, subject kind, subject id) → [(period, metric, target)].
pub(super) type QuotaMap = HashMap<(String, String, String), Vec<(String, String, i64)>>;

/// Everything a report needs. Cloning it is cheap: its big parts are shared, and the ledger
/// copies only the sums it changes.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the numbers were last brought up to date, Unix ms (what pages call "as of").
    pub built_at_ms: i64,
    /// How long the last full build took, ms.
    pub build_ms: f64,
    /// The store's [`super::fingerprint`] when it was last read whole.
    pub fingerprint: (i64, i64),
    pub(super) units: Arc<Units>,
    /// Every unit's sums, rolled up the tree.
    pub(super) aggs: HashMap<String, Arc<Agg>>,
    pub(super) officers: BTreeMap<Uuid, Arc<OfficerInfo>>,
    pub(super) campaigns: Vec<CampaignInfo>,
    /// (campaign, subject kind, subject id) → [(period, metric, target)].
    pub(super) quotas: Arc<QuotaMap>,
    pub(super) sessions: Option<Arc<Vec<Event>>>,
    pub(super) outreach: Option<Arc<Vec<Event>>>,
    /// Stale limit for devices, ms.
    pub stale_after_ms: i64,
}

/// Default stale limit: 48 hours.
pub const DEFAULT_STALE_MS: i64 = 48 * 3600 * 1000;

impl Snapshot {
    /// Read the store's materialised tables whole (best inside one read transaction).
    pub fn build(conn: &Connection, now_ms: i64) -> Result<Snapshot> {
        Ok(Ledger::build(conn, now_ms)?.snap)
    }

    /// Whether two snapshots hold the same numbers, field by field (when they were taken
    /// aside); the first difference found, named (no personal data: codes, ids and sums).
    /// A unit whose sums are all zero is the same as a unit without sums.
    pub fn same_counts(&self, other: &Snapshot) -> std::result::Result<(), String> {
        if self.units != other.units {
            return Err("units differ".into());
        }
        let empty = Agg::default();
        let codes: std::collections::BTreeSet<&String> =
            self.aggs.keys().chain(other.aggs.keys()).collect();
        for code in codes {
            let a = self.aggs.get(code).map_or(&empty, |a| &**a);
            let b = other.aggs.get(code).map_or(&empty, |a| &**a);
            if a != b {
                return Err(format!("unit {code}: {a:?} != {b:?}"));
            }
        }
        let ids: std::collections::BTreeSet<&Uuid> =
            self.officers.keys().chain(other.officers.keys()).collect();
        for id in ids {
            let (a, b) = (self.officers.get(id), other.officers.get(id));
            if a.map(|a| &**a) != b.map(|b| &**b) {
                return Err(format!("officer {id}: {a:?} != {b:?}"));
            }
        }
        if self.campaigns != other.campaigns {
            return Err("campaigns differ".into());
        }
        if self.quotas != other.quotas {
            return Err("quotas differ".into());
        }
        if self.sessions != other.sessions {
            return Err("sessions differ".into());
        }
        if self.outreach != other.outreach {
            return Err("outreach differs".into());
        }
        if self.stale_after_ms != other.stale_after_ms {
            return Err("stale limits differ".into());
        }
        Ok(())
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
pub(super) fn quota_map(rows: Vec<read::Quota>) -> QuotaMap {
    let mut quotas: QuotaMap = HashMap::new();
    for q in rows {
        quotas
            .entry((q.campaign, q.subject_kind, q.subject))
            .or_default()
            .push((q.period, q.metric, q.target));
    }
    quotas
}
