//! The report API's types: what `GET /api/v1/report` and `/report/officer/{id}` answer
//! (`docs/dashboard-api.md`), what pages render and report files export. Plain data; the
//! numbers are filled in by [`super::report`].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

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
    pub(super) fn add(&mut self, o: &DayCounts) {
        self.activated += o.activated;
        self.level1_activated += o.level1_activated;
        self.level2_received += o.level2_received;
        self.level2_activated += o.level2_activated;
        self.portal_guided += o.portal_guided;
        self.visits += o.visits;
    }

    pub(super) fn sub(&mut self, o: &DayCounts) {
        self.activated = self.activated.saturating_sub(o.activated);
        self.level1_activated = self.level1_activated.saturating_sub(o.level1_activated);
        self.level2_received = self.level2_received.saturating_sub(o.level2_received);
        self.level2_activated = self.level2_activated.saturating_sub(o.level2_activated);
        self.portal_guided = self.portal_guided.saturating_sub(o.portal_guided);
        self.visits = self.visits.saturating_sub(o.visits);
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
    /// Accountability: the child units and officers below their day quota, worst first
    /// (`stats::below_quota`).
    #[serde(default)]
    pub below_quota: Vec<Shortfall>,
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

/// A metric of a day quota not reached: its count on the day and the quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    /// The metric (`level1_activated`, `visits`…).
    pub metric: String,
    /// Its count on the day.
    pub done: u64,
    /// The day's quota.
    pub quota: i64,
}

/// A child unit or an officer below its day quota (rule 8). `Report::below_quota` lists them
/// worst first: by the largest share of a quota not reached, then by how many are missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shortfall {
    /// `unit` or `officer`.
    pub kind: String,
    /// The unit's code or the officer's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The metrics below their quota.
    pub lags: Vec<Lag>,
    /// The largest share of a day quota not reached, 0 to 1.
    pub missing_share: f64,
}
