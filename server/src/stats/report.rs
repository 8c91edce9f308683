//! Report assembly: a unit's or an officer's report on a day, from the snapshot's sums. A few
//! map look-ups and a sum over at most a campaign's days; each number's rule is a function
//! here named for it.

use super::count::Event;
use super::ledger::OfficerInfo;
use super::rollup::{AgencyCount, Agg, State};
use super::snapshot::Snapshot;
use super::time::{day_date, day_num, local_rfc3339};
use super::types::{
    AgencyRow, CampaignInfo, DayCounts, DeviceRow, KindCount, Lag, OfficerReport, OfficerRow,
    Outreach, Report, Row, Sessions, Shortfall, TrendPoint, UnitRef,
};
use crate::backend::DeviceInfo;
use crate::error::{Result, ServerError};
use doorstep_core::FailureReason;
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// Events per kind, per commune and kind, and the day's sessions.
type EventSums = (
    BTreeMap<String, KindCount>,
    BTreeMap<String, BTreeMap<String, KindCount>>,
    Vec<super::types::SessionRow>,
);

impl Snapshot {
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

    /// Rule 6: the campaign's target for the campaign's own unit; otherwise the sum of the
    /// unit's (or officer's) campaign-period quotas on level-1 or level-2 activation; `None`
    /// if none.
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

    /// Rule 7: the day-period quotas of the unit or officer on `date`, by metric; `None` when
    /// none.
    fn quota_today(
        &self,
        campaign: &CampaignInfo,
        kind: &str,
        subject: &str,
        date: chrono::NaiveDate,
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

    /// The row of a unit (rules 1-3, 6-8).
    pub fn row(&self, code: &str, campaign: &CampaignInfo, date: chrono::NaiveDate) -> Result<Row> {
        let u = self.unit(code).ok_or(ServerError::NotFound("unit"))?;
        let agg = self.unit_agg(code);
        let s = &agg.state_at(date);
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
            percent_of_target: percent_of_target(activated, target),
            today: on_day(agg, date),
            quota_today: self.quota_today(campaign, "unit", code, date),
            campaign_activated: campaign_activated(agg, campaign, date),
        })
    }

    /// A unit's sums (empty when nothing lies under it).
    pub(super) fn unit_agg(&self, code: &str) -> &Agg {
        static EMPTY: std::sync::OnceLock<Agg> = std::sync::OnceLock::new();
        self.aggs
            .get(code)
            .map_or_else(|| EMPTY.get_or_init(Agg::default), |a| &**a)
    }

    /// The row of an officer: `accounts` of their assigned area, every other count what
    /// rule 3 credits to them up to `date`.
    pub fn officer_row(
        &self,
        id: Uuid,
        campaign: &CampaignInfo,
        date: chrono::NaiveDate,
    ) -> Result<OfficerRow> {
        let o = self
            .officers
            .get(&id)
            .ok_or(ServerError::NotFound("officer"))?;
        let upto = credited_up_to(&o.agg, date);
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
            percent_of_target: percent_of_target(upto.activated, target),
            today: on_day(&o.agg, date),
            quota_today: self.quota_today(campaign, "officer", &subject, date),
            campaign_activated: campaign_activated(&o.agg, campaign, date),
        })
    }

    /// Rule 9: device rows for the given officers, from the backend's device list, stale ones
    /// first.
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
                    stale: self.is_stale(revoked, d.last_seen_ms, now_ms),
                    revoked,
                }
            })
            .collect();
        out.sort_by(|a, b| (b.stale, &a.officer_name, a.id).cmp(&(a.stale, &b.officer_name, b.id)));
        out
    }

    /// Rule 9's `stale`: not revoked and never synced or last synced more than the stale
    /// limit ago.
    fn is_stale(&self, revoked: bool, last_seen_ms: Option<i64>, now_ms: i64) -> bool {
        !revoked && last_seen_ms.is_none_or(|t| now_ms - t > self.stale_after_ms)
    }

    /// Rules 11 and 12: the events of communes under `unit` whose day is in the campaign up to
    /// `date`, by kind and per commune; and the day's sessions, by start.
    fn events_in(
        &self,
        events: &[Event],
        unit: &str,
        campaign: &CampaignInfo,
        date: chrono::NaiveDate,
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

    /// Rule 11: receiving sessions in scope.
    fn sessions(&self, unit: &str, campaign: &CampaignInfo, date: chrono::NaiveDate) -> Sessions {
        let Some(ev) = &self.sessions else {
            return Sessions::default();
        };
        let (by_kind, per_commune, today) = self.events_in(ev, unit, campaign, date);
        Sessions {
            available: true,
            by_kind,
            per_commune,
            today,
        }
    }

    /// Rule 12: outreach in scope.
    fn outreach(&self, unit: &str, campaign: &CampaignInfo, date: chrono::NaiveDate) -> Outreach {
        let Some(ev) = &self.outreach else {
            return Outreach::default();
        };
        let (by_kind, per_commune, _) = self.events_in(ev, unit, campaign, date);
        Outreach {
            available: true,
            by_kind,
            per_commune,
        }
    }

    /// The officers of a unit (their own unit or an assigned village under it), by name.
    fn officers_of(&self, code: &str) -> Vec<&OfficerInfo> {
        let mut out: Vec<&OfficerInfo> = self
            .officers
            .values()
            .map(|o| &**o)
            .filter(|o| self.works_in(o, code))
            .collect();
        out.sort_by(|a, b| (&a.r.name, a.r.id).cmp(&(&b.r.name, b.r.id)));
        out
    }

    /// The report of a unit on a day.
    pub fn report(
        &self,
        code: &str,
        campaign: &CampaignInfo,
        date: chrono::NaiveDate,
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
        let officer_infos = self.officers_of(code);
        let officers = officer_infos
            .iter()
            .map(|o| self.officer_row(o.r.id, campaign, date))
            .collect::<Result<Vec<_>>>()?;
        let agg = self.unit_agg(code);
        let set: HashSet<Uuid> = officer_infos.iter().map(|o| o.r.id).collect();
        Ok(Report {
            unit,
            date,
            campaign: campaign.clone(),
            as_of: local_rfc3339(self.built_at_ms),
            totals,
            trend: trend(agg, roster_base(&agg.state), campaign, date),
            blockers: blockers(agg, date),
            devices: self.device_rows(devices, &set, now_ms),
            agencies: agency_rows(&agg.agencies_at(date)),
            sessions: self.sessions(code, campaign, date),
            outreach: self.outreach(code, campaign, date),
            below_quota: below_quota(&children, &officers),
            children,
            officers,
        })
    }

    /// The report of an officer on a day.
    pub fn officer_report(
        &self,
        id: Uuid,
        campaign: &CampaignInfo,
        date: chrono::NaiveDate,
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
            trend: trend(&info.agg, (0, 0, 0), campaign, date),
            blockers: blockers(&info.agg, date),
            devices: self.device_rows(devices, &set, now_ms),
        })
    }
}

/// Rule 3 on the report's day.
fn on_day(agg: &Agg, date: chrono::NaiveDate) -> DayCounts {
    agg.days.get(&day_num(date)).copied().unwrap_or_default()
}

/// An officer's counts: everything credited to them up to `date`.
fn credited_up_to(agg: &Agg, date: chrono::NaiveDate) -> DayCounts {
    let mut upto = DayCounts::default();
    for (_, c) in agg.days.range(..=day_num(date)) {
        upto.add(c);
    }
    upto
}

/// Rule 6's `percent_of_target`: `activated × 100 / target`, unrounded; `None` without a
/// (positive) target.
fn percent_of_target(activated: u64, target: Option<i64>) -> Option<f64> {
    target
        .filter(|t| *t > 0)
        .map(|t| activated as f64 * 100.0 / t as f64)
}

/// Rule 8: activations credited by rule 3 from the campaign's first day to `date` (capped
/// at the campaign's end).
fn campaign_activated(agg: &Agg, campaign: &CampaignInfo, date: chrono::NaiveDate) -> u64 {
    let (from, to) = (day_num(campaign.start), day_num(date.min(campaign.end)));
    if to < from {
        // A report dated before the campaign began: nothing is credited to it yet (and an
        // inverted range would panic).
        return 0;
    }
    agg.days.range(from..=to).map(|(_, c)| c.activated).sum()
}

/// Rule 4's base: activated, level-1 and level-2 activated by the roster.
fn roster_base(s: &State) -> (u64, u64, u64) {
    (s.roster_activated, s.roster_level1, s.roster_level2)
}

/// Rule 4: for each campaign day from the start to `date` (capped at the campaign's end),
/// `base` plus every activation credited on days up to it (days before the campaign
/// included).
fn trend(
    agg: &Agg,
    base: (u64, u64, u64),
    campaign: &CampaignInfo,
    date: chrono::NaiveDate,
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

/// Rule 5: failed steps up to the end of `date`, by reason, every reason listed (zeros
/// included).
fn blockers(agg: &Agg, date: chrono::NaiveDate) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = FailureReason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), 0))
        .collect();
    for (k, v) in agg.blockers_upto(date) {
        *out.entry(k).or_default() += v;
    }
    out
}

/// Rule 10: per agency, its residents, level-2 activated and portal, and the level-2 share.
fn agency_rows(agencies: &BTreeMap<String, AgencyCount>) -> Vec<AgencyRow> {
    agencies
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
        .collect()
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

/// Accountability (rule 8): the child units and the officers of a report below their day
/// quota, worst first — the largest share of a quota not reached, then the most missing, then
/// by name. Officers are listed wherever they have day quotas (a commune's officers, first of
/// all), beside the child units.
pub fn below_quota(children: &[Row], officers: &[OfficerRow]) -> Vec<Shortfall> {
    let entry = |kind: &str, id: String, name: &str, today, quota| {
        let lags: Vec<Lag> = lagging(today, quota)
            .into_iter()
            .map(|(metric, done, quota)| Lag {
                metric,
                done,
                quota,
            })
            .collect();
        (!lags.is_empty()).then(|| Shortfall {
            kind: kind.to_owned(),
            id,
            name: name.to_owned(),
            missing_share: lags
                .iter()
                .map(|l| 1.0 - l.done as f64 / l.quota.max(1) as f64)
                .fold(0.0, f64::max),
            lags,
        })
    };
    let missing = |s: &Shortfall| -> i64 { s.lags.iter().map(|l| l.quota - l.done as i64).sum() };
    let mut out: Vec<Shortfall> = children
        .iter()
        .filter_map(|r| entry("unit", r.code.clone(), &r.name, &r.today, &r.quota_today))
        .chain(officers.iter().filter_map(|o| {
            entry(
                "officer",
                o.id.to_string(),
                &o.name,
                &o.today,
                &o.quota_today,
            )
        }))
        .collect();
    out.sort_by(|a, b| {
        b.missing_share
            .total_cmp(&a.missing_share)
            .then_with(|| missing(b).cmp(&missing(a)))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2023, 7, d).unwrap_or_default()
    }

    fn row(code: &str, done: u64, quota: Option<i64>) -> Row {
        let mut r: Row = serde_json::from_value(serde_json::json!({
            "code": code, "name": code, "level": "village", "accounts": 0,
            "level1_activated": 0, "level2_activated": 0, "activated": 0,
            "level2_received": 0, "portal": 0, "target": null, "percent_of_target": null,
            "today": {"activated": 0, "level1_activated": 0, "level2_received": 0,
                      "level2_activated": 0, "portal_guided": 0, "visits": 0},
            "quota_today": null, "campaign_activated": 0
        }))
        .unwrap();
        r.today.visits = done;
        r.quota_today = quota.map(|q| [("visits".to_owned(), q)].into());
        r
    }

    #[test]
    fn below_quota_lists_the_worst_shortfall_first() {
        let children = [
            row("met", 10, Some(10)),
            row("half", 5, Some(10)),
            row("none-of-2", 0, Some(2)),
            row("no-quota", 0, None),
            row("none-of-20", 0, Some(20)),
        ];
        let ids: Vec<String> = below_quota(&children, &[])
            .into_iter()
            .map(|s| s.id)
            .collect();
        // Nothing done of 20 and of 2 both miss all of it: the larger shortfall first.
        assert_eq!(ids, ["none-of-20", "none-of-2", "half"]);
    }

    #[test]
    fn campaign_activated_counts_campaign_days_up_to_the_date() {
        let campaign = CampaignInfo {
            id: Uuid::nil(),
            name: "c".into(),
            start: date(10),
            end: date(20),
            target: 100,
            unit_code: "58".into(),
        };
        let mut agg = Agg::default();
        for (d, n) in [(9, 1), (10, 2), (15, 4), (21, 8)] {
            agg.days.entry(day_num(date(d))).or_default().activated = n;
        }
        assert_eq!(campaign_activated(&agg, &campaign, date(15)), 6);
        assert_eq!(campaign_activated(&agg, &campaign, date(31)), 6);
        // A date before the campaign began: nothing yet, and no panic.
        assert_eq!(campaign_activated(&agg, &campaign, date(1)), 0);
    }
}
