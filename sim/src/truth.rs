//! Ground truth: what the teams recorded, and the numbers the counting rules
//! (`notes/counting-rules.md`, summarised in `docs/simulation.md`) derive from it.
//!
//! The simulator fills a [`Ledger`] as its simulated teams act — every fact a device recorded
//! and every retraction — without ever reading the server. [`Ledger::expected`] then computes
//! the numbers for any unit or officer and day. The same computation can be fed the facts read
//! back from the server's database ([`crate::observe`]), which checks that sync lost, invented
//! or duplicated nothing; the dashboard's API is checked against the ledger itself.

use chrono::NaiveDate;
use doorstep_core::time::local_day;
use doorstep_core::{AssistStep, FailureReason, RosterStatus};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// A fact as recorded on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Its id.
    pub id: Uuid,
    /// Who recorded it.
    pub officer: Uuid,
    /// When (the `at_ms` the device recorded).
    pub at_ms: i64,
    /// What.
    pub kind: FactKind,
}

/// The kinds of facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactKind {
    /// A visit to a household.
    Visit {
        /// The household.
        household: Uuid,
    },
    /// An assistance step.
    Assist {
        /// The resident.
        resident: Uuid,
        /// The step.
        step: AssistStep,
        /// Why it failed, if it did.
        failure: Option<FailureReason>,
    },
    /// A receiving-point session.
    Session {
        /// Commune.
        commune: String,
        /// `fixed` or `mobile`.
        kind: String,
        /// Applications received.
        applications: u32,
    },
    /// An outreach event.
    Outreach {
        /// Commune or village.
        unit: String,
        /// `meeting`, `loudspeaker` or `training`.
        kind: String,
        /// People reached.
        people: u32,
    },
}

/// A resident as the roster describes it.
#[derive(Debug, Clone)]
pub struct Resident {
    /// Household.
    pub household: Uuid,
    /// Roster status.
    pub roster: RosterStatus,
    /// Agency, if an official.
    pub agency: Option<String>,
}

/// The reference world: units, residents, officers, quotas, campaign.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Unit code → parent code (villages, communes, districts; the province has none).
    pub parent: HashMap<String, String>,
    /// Household → village.
    pub household_village: HashMap<Uuid, String>,
    /// Residents.
    pub residents: HashMap<Uuid, Resident>,
    /// Officer → unit code.
    pub officer_unit: HashMap<Uuid, String>,
    /// Field officer → villages assigned.
    pub officer_villages: HashMap<Uuid, Vec<String>>,
    /// Campaign quotas with an activation metric, by subject (unit code or officer id text).
    pub campaign_quotas: HashMap<String, i64>,
    /// Day quotas: (subject, day) → metric → target.
    pub day_quotas: HashMap<(String, String), BTreeMap<String, i64>>,
    /// The campaign's unit and target.
    pub campaign_unit: String,
    /// The campaign's target.
    pub campaign_target: i64,
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
}

impl World {
    /// Whether `unit` is `ancestor` or lies under it.
    pub fn under(&self, unit: &str, ancestor: &str) -> bool {
        let mut u = unit;
        loop {
            if u == ancestor {
                return true;
            }
            match self.parent.get(u) {
                Some(p) => u = p,
                None => return false,
            }
        }
    }

    /// The villages (codes with a `-`) at or under `unit`.
    pub fn villages_under(&self, unit: &str) -> std::collections::HashSet<&str> {
        self.parent
            .keys()
            .filter(|v| v.contains('-') && self.under(v, unit))
            .map(String::as_str)
            .collect()
    }

    /// The chain of units from `unit` up to the province, `unit` first.
    pub fn chain(&self, unit: &str) -> Vec<String> {
        let mut out = vec![unit.to_owned()];
        let mut u = unit;
        while let Some(p) = self.parent.get(u) {
            out.push(p.clone());
            u = p;
        }
        out
    }
}

/// Everything the teams recorded.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Facts, in the order recorded.
    pub facts: Vec<Fact>,
    /// Retracted fact ids.
    pub retracted: BTreeSet<Uuid>,
}

/// The state components a step or a roster status claims: (level1, level2, portal).
fn claim(step: AssistStep) -> (u8, u8, bool) {
    match step {
        AssistStep::Level1Guided => (1, 0, false),
        AssistStep::Level1Activated => (2, 0, false),
        AssistStep::Level2Received => (0, 1, false),
        AssistStep::Level2Activated => (0, 2, false),
        AssistStep::PortalGuided => (0, 0, true),
    }
}

/// What the roster claims (`level1_activated` / `level2_activated` are core schema v2).
pub fn roster_claim(s: RosterStatus) -> (u8, u8, bool) {
    match s.as_str() {
        "level1_pending" => (1, 0, false),
        "level2_pending" => (0, 1, false),
        "level1_activated" => (2, 0, false),
        "level2_activated" => (0, 2, false),
        _ => (0, 0, false),
    }
}

fn join(a: (u8, u8, bool), b: (u8, u8, bool)) -> (u8, u8, bool) {
    (a.0.max(b.0), a.1.max(b.1), a.2 || b.2)
}

/// The per-day metrics of rule 3.
pub const DAY_METRICS: [&str; 4] = [
    "level1_activated",
    "level2_received",
    "level2_activated",
    "portal_guided",
];

/// Whether the roster claim already includes a metric.
fn roster_includes(r: (u8, u8, bool), metric: &str) -> bool {
    match metric {
        "level1_activated" => r.0 >= 2,
        "level2_received" => r.1 >= 1,
        "level2_activated" => r.1 >= 2,
        "portal_guided" => r.2,
        "activated" => r.0 >= 2 || r.1 >= 2,
        _ => false,
    }
}

fn step_metrics(step: AssistStep) -> &'static [&'static str] {
    match step {
        AssistStep::Level1Activated => &["level1_activated", "activated"],
        AssistStep::Level2Received => &["level2_received"],
        AssistStep::Level2Activated => &["level2_activated", "activated"],
        AssistStep::PortalGuided => &["portal_guided"],
        AssistStep::Level1Guided => &[],
    }
}

/// A subject of a report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// A unit (province, district, commune, village) by code.
    Unit(String),
    /// An officer.
    Officer(Uuid),
}

/// A resident's progress: (level 1, level 2, portal), as the core's `account_state`.
pub type Progress = (u8, u8, bool);

/// Derived, per resident: the final state and the credited earliest step per metric.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// resident → state (join of roster and non-retracted successful steps).
    pub state: HashMap<Uuid, (u8, u8, bool)>,
    /// (resident, metric) → (day, officer) of the credited step.
    pub credited: HashMap<(Uuid, &'static str), (String, Uuid)>,
    /// resident → (at_ms, what the step claims) of each non-retracted successful step: the
    /// state on a past day joins the roster with the steps before that day's end.
    pub steps: HashMap<Uuid, Vec<(i64, Progress)>>,
}

impl Derived {
    /// A resident's state at `to_ms` (the end of a day): the roster's claim joined with the
    /// successful steps made before it (rule 2 as of a day).
    pub fn state_at(&self, world: &World, id: &Uuid, to_ms: i64) -> Progress {
        let mut s = world
            .residents
            .get(id)
            .map(|r| roster_claim(r.roster))
            .unwrap_or_default();
        for (at, c) in self.steps.get(id).into_iter().flatten() {
            if *at < to_ms {
                s = join(s, *c);
            }
        }
        s
    }
}

impl Ledger {
    /// Record a fact.
    pub fn record(&mut self, fact: Fact) {
        self.facts.push(fact);
    }

    /// Record a retraction.
    pub fn retract(&mut self, id: Uuid) {
        self.retracted.insert(id);
    }

    /// Non-retracted facts.
    pub fn live(&self) -> impl Iterator<Item = &Fact> {
        self.facts
            .iter()
            .filter(|f| !self.retracted.contains(&f.id))
    }

    /// Account states and credited steps.
    pub fn derive(&self, world: &World) -> Derived {
        let mut d = Derived::default();
        for (id, r) in &world.residents {
            d.state.insert(*id, roster_claim(r.roster));
        }
        // (resident, metric) → earliest (at_ms, id, officer)
        let mut earliest: HashMap<(Uuid, &'static str), (i64, Uuid, Uuid)> = HashMap::new();
        for f in self.live() {
            if let FactKind::Assist {
                resident,
                step,
                failure: None,
            } = &f.kind
            {
                let Some(r) = world.residents.get(resident) else {
                    continue;
                };
                let s = d.state.entry(*resident).or_default();
                *s = join(*s, claim(*step));
                d.steps
                    .entry(*resident)
                    .or_default()
                    .push((f.at_ms, claim(*step)));
                let roster = roster_claim(r.roster);
                for m in step_metrics(*step) {
                    if roster_includes(roster, m) {
                        continue;
                    }
                    let e = earliest
                        .entry((*resident, m))
                        .or_insert((f.at_ms, f.id, f.officer));
                    if (f.at_ms, f.id) < (e.0, e.1) {
                        *e = (f.at_ms, f.id, f.officer);
                    }
                }
            }
        }
        for (k, (at, _, officer)) in earliest {
            d.credited.insert(k, (local_day(at), officer));
        }
        d
    }

    /// Per-day credited counts `(metric, day) → n` for the residents and officers `keep` accepts.
    fn credited_counts(
        derived: &Derived,
        keep: impl Fn(&Uuid, &Uuid) -> bool,
    ) -> BTreeMap<(&'static str, String), i64> {
        let mut out: BTreeMap<(&'static str, String), i64> = BTreeMap::new();
        for ((rid, metric), (d, officer)) in &derived.credited {
            if keep(rid, officer) {
                *out.entry((metric, d.clone())).or_default() += 1;
            }
        }
        out
    }

    /// The expected numbers of `subject` on `day`, keyed by their path in the report API's
    /// JSON (`GET /api/v1/report?unit=…` for a unit, `/api/v1/report/officer/{id}` for an
    /// officer; array elements are named by their `date`, `code`, `agency` or `id`). `None`
    /// means the report must say `null`.
    pub fn expected(
        &self,
        world: &World,
        derived: &Derived,
        subject: &Subject,
        day: &str,
    ) -> Numbers {
        let mut out = Numbers::new();
        match subject {
            Subject::Unit(u) => {
                self.unit_numbers(world, derived, u, day, "totals.", &mut out);
                self.unit_extras(world, derived, u, day, &mut out);
                let children: Vec<&String> = world
                    .parent
                    .iter()
                    .filter(|(_, p)| *p == u)
                    .map(|(c, _)| c)
                    .collect();
                for c in children {
                    let mut child = Numbers::new();
                    self.unit_numbers(world, derived, c, day, "", &mut child);
                    for k in [
                        "accounts",
                        "activated",
                        "campaign_activated",
                        "today.activated",
                    ] {
                        if let Some(v) = child.get(k) {
                            out.insert(format!("children.{c}.{k}"), *v);
                        }
                    }
                }
                for (o, villages) in &world.officer_villages {
                    let unit = world.officer_unit.get(o).map_or("", String::as_str);
                    if world.under(unit, u) || villages.iter().any(|v| world.under(v, u)) {
                        let mut row = Numbers::new();
                        self.officer_numbers(world, derived, o, day, "", &mut row);
                        for k in ["accounts", "activated", "campaign_activated"] {
                            if let Some(v) = row.get(k) {
                                out.insert(format!("officers.{o}.{k}"), *v);
                            }
                        }
                    }
                }
            }
            Subject::Officer(o) => self.officer_numbers(world, derived, o, day, "row.", &mut out),
        }
        out
    }

    fn unit_numbers(
        &self,
        world: &World,
        derived: &Derived,
        u: &str,
        day: &str,
        prefix: &str,
        out: &mut Numbers,
    ) {
        let (from, to) = day_bounds(day);
        let villages = world.villages_under(u);
        let resident_in = |rid: &Uuid| {
            world
                .residents
                .get(rid)
                .and_then(|r| world.household_village.get(&r.household))
                .is_some_and(|v| villages.contains(v.as_str()))
        };
        let mut put = |k: &str, v: Option<i64>| {
            out.insert(format!("{prefix}{k}"), v);
        };
        // Rules 1 and 2: accounts (the roster now) and the states at the end of the day.
        let (mut accounts, mut l1, mut l2, mut rec, mut portal) = (0, 0, 0, 0, 0);
        for id in world.residents.keys() {
            if !resident_in(id) {
                continue;
            }
            accounts += 1;
            let s = derived.state_at(world, id, to);
            if s.1 == 2 {
                l2 += 1;
            } else if s.0 == 2 {
                l1 += 1;
            }
            rec += i64::from(s.1 >= 1);
            portal += i64::from(s.2);
        }
        put("accounts", Some(accounts));
        put("level1_activated", Some(l1));
        put("level2_activated", Some(l2));
        put("activated", Some(l1 + l2));
        put("level2_received", Some(rec));
        put("portal", Some(portal));
        // Rule 3.
        let per_day = Self::credited_counts(derived, |rid, _| resident_in(rid));
        for m in DAY_METRICS.iter().chain(["activated"].iter()) {
            put(
                &format!("today.{m}"),
                Some(per_day.get(&(*m, day.to_owned())).copied().unwrap_or(0)),
            );
        }
        let visits = self
            .live()
            .filter(|f| (from..to).contains(&f.at_ms))
            .filter(|f| match &f.kind {
                FactKind::Visit { household } => world
                    .household_village
                    .get(household)
                    .is_some_and(|v| villages.contains(v.as_str())),
                _ => false,
            })
            .count() as i64;
        put("today.visits", Some(visits));
        let campaign_activated: i64 = per_day
            .iter()
            .filter(|((m, d), _)| *m == "activated" && d.as_str() <= day)
            .map(|(_, n)| n)
            .sum();
        put("campaign_activated", Some(campaign_activated));
        // Rules 6 and 7.
        let target = if u == world.campaign_unit {
            Some(world.campaign_target)
        } else {
            world.campaign_quotas.get(u).copied()
        };
        put("target", target);
        match world.day_quotas.get(&(u.to_owned(), day.to_owned())) {
            Some(q) => {
                for (m, t) in q {
                    put(&format!("quota_today.{m}"), Some(*t));
                }
            }
            None => put("quota_today", None),
        }
    }

    /// The unit report's trend, blockers, agencies, sessions and outreach.
    fn unit_extras(&self, world: &World, derived: &Derived, u: &str, day: &str, out: &mut Numbers) {
        let (_, to) = day_bounds(day);
        let villages = world.villages_under(u);
        let resident_in = |rid: &Uuid| {
            world
                .residents
                .get(rid)
                .and_then(|r| world.household_village.get(&r.household))
                .is_some_and(|v| villages.contains(v.as_str()))
        };
        // Rule 4: from the roster's activated, plus credited activations day by day.
        let (mut a, mut l1, mut l2) = (0i64, 0i64, 0i64);
        let mut agencies: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for (id, r) in &world.residents {
            if !resident_in(id) {
                continue;
            }
            let c = roster_claim(r.roster);
            a += i64::from(roster_includes(c, "activated"));
            l1 += i64::from(roster_includes(c, "level1_activated"));
            l2 += i64::from(roster_includes(c, "level2_activated"));
            if let Some(name) = &r.agency {
                let s = derived.state_at(world, id, to);
                let e = agencies.entry(name.clone()).or_default();
                e.0 += 1;
                e.1 += i64::from(s.1 == 2);
                e.2 += i64::from(s.2);
            }
        }
        let per_day = Self::credited_counts(derived, |rid, _| resident_in(rid));
        self.trend(world, &per_day, (a, l1, l2), day, out);
        // Rule 10.
        for (name, (n, l2a, p)) in agencies {
            out.insert(format!("agencies.{name}.accounts"), Some(n));
            out.insert(format!("agencies.{name}.level2_activated"), Some(l2a));
            out.insert(format!("agencies.{name}.portal"), Some(p));
        }
        // Rules 5, 11 and 12: up to the end of the day.
        let mut blockers: BTreeMap<&str, i64> = BTreeMap::new();
        let mut sessions: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut outreach: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for f in self.live() {
            match &f.kind {
                FactKind::Assist {
                    resident,
                    failure: Some(reason),
                    ..
                } if f.at_ms < to && resident_in(resident) => {
                    *blockers.entry(reason.as_str()).or_default() += 1;
                }
                FactKind::Session {
                    commune,
                    kind,
                    applications,
                } if f.at_ms < to && world.under(commune, u) => {
                    let e = sessions.entry(kind.clone()).or_default();
                    e.0 += 1;
                    e.1 += i64::from(*applications);
                }
                FactKind::Outreach { unit, kind, people }
                    if f.at_ms < to && world.under(unit, u) =>
                {
                    let e = outreach.entry(kind.clone()).or_default();
                    e.0 += 1;
                    e.1 += i64::from(*people);
                }
                _ => {}
            }
        }
        for r in FailureReason::ALL {
            out.insert(
                format!("blockers.{}", r.as_str()),
                Some(blockers.get(r.as_str()).copied().unwrap_or(0)),
            );
        }
        // Rules 11 and 12 report per commune: a village's report carries neither.
        if u.contains('-') {
            return;
        }
        for (k, (n, a)) in sessions {
            out.insert(format!("sessions.by_kind.{k}.count"), Some(n));
            out.insert(format!("sessions.by_kind.{k}.total"), Some(a));
        }
        for (k, (n, p)) in outreach {
            out.insert(format!("outreach.by_kind.{k}.count"), Some(n));
            out.insert(format!("outreach.by_kind.{k}.total"), Some(p));
        }
    }

    fn trend(
        &self,
        world: &World,
        per_day: &BTreeMap<(&'static str, String), i64>,
        base: (i64, i64, i64),
        day: &str,
        out: &mut Numbers,
    ) {
        let (mut a, mut l1, mut l2) = base;
        for d in world.start.iter_days().take_while(|d| *d <= world.end) {
            let ds = d.format("%Y-%m-%d").to_string();
            if ds.as_str() > day {
                break;
            }
            let n = |m: &'static str| per_day.get(&(m, ds.clone())).copied().unwrap_or(0);
            a += n("activated");
            l1 += n("level1_activated");
            l2 += n("level2_activated");
            out.insert(format!("trend.{ds}.activated"), Some(a));
            out.insert(format!("trend.{ds}.level1_activated"), Some(l1));
            out.insert(format!("trend.{ds}.level2_activated"), Some(l2));
        }
    }

    fn officer_numbers(
        &self,
        world: &World,
        derived: &Derived,
        o: &Uuid,
        day: &str,
        prefix: &str,
        out: &mut Numbers,
    ) {
        let (from, to) = day_bounds(day);
        let villages = world.officer_villages.get(o).cloned().unwrap_or_default();
        let accounts = world
            .residents
            .values()
            .filter(|r| {
                world
                    .household_village
                    .get(&r.household)
                    .is_some_and(|v| villages.contains(v))
            })
            .count() as i64;
        let per_day = Self::credited_counts(derived, |_, officer| officer == o);
        let upto = |m: &str| -> i64 {
            per_day
                .iter()
                .filter(|((mm, d), _)| *mm == m && d.as_str() <= day)
                .map(|(_, n)| n)
                .sum()
        };
        let mut put = |k: &str, v: Option<i64>| {
            out.insert(format!("{prefix}{k}"), v);
        };
        put("accounts", Some(accounts));
        put("level1_activated", Some(upto("level1_activated")));
        put("level2_activated", Some(upto("level2_activated")));
        put("activated", Some(upto("activated")));
        put("level2_received", Some(upto("level2_received")));
        put("portal", Some(upto("portal_guided")));
        put("campaign_activated", Some(upto("activated")));
        for m in DAY_METRICS.iter().chain(["activated"].iter()) {
            put(
                &format!("today.{m}"),
                Some(per_day.get(&(*m, day.to_owned())).copied().unwrap_or(0)),
            );
        }
        let visits = self
            .live()
            .filter(|f| f.officer == *o && (from..to).contains(&f.at_ms))
            .filter(|f| matches!(f.kind, FactKind::Visit { .. }))
            .count() as i64;
        put("today.visits", Some(visits));
        let key = o.to_string();
        put("target", world.campaign_quotas.get(&key).copied());
        match world.day_quotas.get(&(key, day.to_owned())) {
            Some(q) => {
                for (m, t) in q {
                    put(&format!("quota_today.{m}"), Some(*t));
                }
            }
            None => put("quota_today", None),
        }
        if prefix.is_empty() {
            return; // a row inside a unit report
        }
        self.trend(world, &per_day, (0, 0, 0), day, out);
        // Rule 5 for an officer: their failed steps up to the end of the day.
        let mut blockers: BTreeMap<&str, i64> = BTreeMap::new();
        for f in self.live().filter(|f| f.officer == *o && f.at_ms < to) {
            if let FactKind::Assist {
                failure: Some(reason),
                ..
            } = &f.kind
            {
                *blockers.entry(reason.as_str()).or_default() += 1;
            }
        }
        for r in FailureReason::ALL {
            out.insert(
                format!("blockers.{}", r.as_str()),
                Some(blockers.get(r.as_str()).copied().unwrap_or(0)),
            );
        }
    }
}

/// The Unix-ms bounds `[from, to)` of a local (UTC+7) day `YYYY-MM-DD` (empty if unparsable).
pub fn day_bounds(day: &str) -> (i64, i64) {
    match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
        Ok(d) => {
            let midnight = doorstep_core::time::day_start_ms(d);
            (midnight, midnight + doorstep_core::time::DAY_MS)
        }
        Err(_) => (0, 0),
    }
}

/// Expected numbers by JSON path; `None` is `null`.
pub type Numbers = BTreeMap<String, Option<i64>>;

#[cfg(test)]
mod tests {
    use super::*;

    const DAY1: &str = "2023-06-27";
    const DAY2: &str = "2023-06-28";

    fn ms(day: &str, hour: i64) -> i64 {
        let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
        d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis() - 7 * 3_600_000
            + hour * 3_600_000
    }

    /// Province 58 → district 582 → commune C → village C-01, two residents.
    fn world(roster_b: RosterStatus) -> (World, Uuid, Uuid, Uuid) {
        let mut w = World {
            campaign_unit: "58".into(),
            campaign_target: 10,
            start: NaiveDate::from_ymd_opt(2023, 6, 27).unwrap(),
            end: NaiveDate::from_ymd_opt(2023, 6, 29).unwrap(),
            ..World::default()
        };
        w.parent.insert("582".into(), "58".into());
        w.parent.insert("C".into(), "582".into());
        w.parent.insert("C-01".into(), "C".into());
        let h = Uuid::from_u128(1);
        w.household_village.insert(h, "C-01".into());
        let (a, b) = (Uuid::from_u128(10), Uuid::from_u128(11));
        for (id, roster) in [(a, RosterStatus::None), (b, roster_b)] {
            w.residents.insert(
                id,
                Resident {
                    household: h,
                    roster,
                    agency: None,
                },
            );
        }
        (w, h, a, b)
    }

    fn assist(id: u128, officer: u128, at: i64, resident: Uuid, step: AssistStep) -> Fact {
        Fact {
            id: Uuid::from_u128(id),
            officer: Uuid::from_u128(officer),
            at_ms: at,
            kind: FactKind::Assist {
                resident,
                step,
                failure: None,
            },
        }
    }

    fn n(m: &Numbers, k: &str) -> Option<i64> {
        m.get(k).copied().flatten()
    }

    #[test]
    fn two_teams_count_once_and_the_earliest_is_credited() {
        let (w, _, a, _) = world(RosterStatus::None);
        let mut l = Ledger::default();
        l.record(assist(100, 1, ms(DAY2, 9), a, AssistStep::Level1Activated));
        l.record(assist(101, 2, ms(DAY1, 15), a, AssistStep::Level1Activated));
        let d = l.derive(&w);
        let p = l.expected(&w, &d, &Subject::Unit("58".into()), DAY2);
        assert_eq!(n(&p, "totals.campaign_activated"), Some(1));
        assert_eq!(n(&p, "totals.today.activated"), Some(0));
        assert_eq!(n(&p, &format!("trend.{DAY1}.activated")), Some(1));
        let o2 = l.expected(&w, &d, &Subject::Officer(Uuid::from_u128(2)), DAY2);
        let o1 = l.expected(&w, &d, &Subject::Officer(Uuid::from_u128(1)), DAY2);
        assert_eq!(n(&o2, "row.activated"), Some(1));
        assert_eq!(n(&o1, "row.activated"), Some(0));
    }

    #[test]
    fn a_retracted_earliest_step_gives_way_to_the_next() {
        let (w, _, a, _) = world(RosterStatus::None);
        let mut l = Ledger::default();
        l.record(assist(100, 1, ms(DAY1, 9), a, AssistStep::Level2Activated));
        l.record(assist(101, 2, ms(DAY2, 9), a, AssistStep::Level2Activated));
        l.retract(Uuid::from_u128(100));
        let d = l.derive(&w);
        let p = l.expected(&w, &d, &Subject::Unit("C".into()), DAY2);
        assert_eq!(n(&p, "totals.today.level2_activated"), Some(1));
        assert_eq!(n(&p, "totals.level2_activated"), Some(1));
        assert_eq!(n(&p, &format!("trend.{DAY1}.activated")), Some(0));
        // Retract the other one too: nothing is activated any more.
        l.retract(Uuid::from_u128(101));
        let d = l.derive(&w);
        let p = l.expected(&w, &d, &Subject::Unit("C".into()), DAY2);
        assert_eq!(n(&p, "totals.activated"), Some(0));
        assert_eq!(n(&p, "totals.campaign_activated"), Some(0));
    }

    #[test]
    fn roster_activated_is_not_credited_again() {
        let (w, _, _, b) = world(RosterStatus::Level1Activated);
        let mut l = Ledger::default();
        l.record(assist(100, 1, ms(DAY1, 9), b, AssistStep::Level1Activated));
        l.record(assist(101, 1, ms(DAY1, 10), b, AssistStep::Level2Activated));
        let d = l.derive(&w);
        let p = l.expected(&w, &d, &Subject::Unit("58".into()), DAY1);
        // Level 1 was on the roster; level 2 is new but the resident was already activated.
        assert_eq!(n(&p, "totals.today.level1_activated"), Some(0));
        assert_eq!(n(&p, "totals.today.level2_activated"), Some(1));
        assert_eq!(n(&p, "totals.today.activated"), Some(0));
        assert_eq!(n(&p, "totals.level1_activated"), Some(0));
        assert_eq!(n(&p, "totals.level2_activated"), Some(1));
        assert_eq!(n(&p, &format!("trend.{DAY1}.activated")), Some(1));
        assert_eq!(n(&p, "totals.target"), Some(10));
        assert_eq!(p.get("totals.quota_today"), Some(&None));
    }

    #[test]
    fn report_lookup_follows_arrays_by_key() {
        let json = serde_json::json!({
            "totals": {"accounts": 5, "target": null},
            "trend": [{"date": "2023-06-27", "activated": 3}],
            "children": [{"code": "582", "activated": 2}]
        });
        assert_eq!(
            crate::report::lookup(&json, "totals.accounts"),
            Some(Some(5))
        );
        assert_eq!(crate::report::lookup(&json, "totals.target"), Some(None));
        assert_eq!(crate::report::lookup(&json, "totals.nope"), None);
        assert_eq!(
            crate::report::lookup(&json, "trend.2023-06-27.activated"),
            Some(Some(3))
        );
        assert_eq!(
            crate::report::lookup(&json, "children.582.activated"),
            Some(Some(2))
        );
        assert_eq!(crate::report::lookup(&json, "children.584.activated"), None);
    }
}
