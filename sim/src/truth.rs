//! Ground truth: what the teams recorded, and the numbers the counting rules
//! (`notes/counting-rules.md`, summarised in `docs/simulation.md`) derive from it.
//!
//! The simulator fills a [`Ledger`] as its simulated teams act — every fact a device recorded
//! and every retraction — without ever reading the server. [`Ledger::expected`] then computes
//! the numbers for any unit or officer and day. The same computation can be fed the facts read
//! back from the server's database ([`crate::observe`]), which checks that sync lost, invented
//! or duplicated nothing; the dashboard's API is checked against the ledger itself.

use chrono::NaiveDate;
use doorstep_core::apply::local_day;
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

/// Derived, per resident: the final state and the credited earliest step per metric.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// resident → state (join of roster and non-retracted successful steps).
    pub state: HashMap<Uuid, (u8, u8, bool)>,
    /// (resident, metric) → (day, officer) of the credited step.
    pub credited: HashMap<(Uuid, &'static str), (String, Uuid)>,
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

    /// The expected numbers of `subject` on `day`, keyed by metric name (see
    /// `docs/simulation.md` for the names).
    pub fn expected(
        &self,
        world: &World,
        derived: &Derived,
        subject: &Subject,
        day: &str,
    ) -> BTreeMap<String, i64> {
        let mut out: BTreeMap<String, i64> = BTreeMap::new();
        let in_unit = |village: &str| match subject {
            Subject::Unit(u) => world.under(village, u),
            Subject::Officer(_) => false,
        };
        let resident_in = |rid: &Uuid| {
            world
                .residents
                .get(rid)
                .and_then(|r| world.household_village.get(&r.household))
                .is_some_and(|v| in_unit(v))
        };
        // Rule 1 and 2: accounts and states (units only).
        if let Subject::Unit(_) = subject {
            let mut accounts = 0;
            let (mut l1, mut l2, mut rec, mut portal) = (0, 0, 0, 0);
            let mut agencies: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
            for (id, r) in &world.residents {
                if !resident_in(id) {
                    continue;
                }
                accounts += 1;
                let s = derived.state.get(id).copied().unwrap_or_default();
                if s.1 == 2 {
                    l2 += 1;
                } else if s.0 == 2 {
                    l1 += 1;
                }
                if s.1 >= 1 {
                    rec += 1;
                }
                if s.2 {
                    portal += 1;
                }
                if let Some(a) = &r.agency {
                    let e = agencies.entry(a.clone()).or_default();
                    e.0 += 1;
                    e.1 += i64::from(s.1 == 2);
                    e.2 += i64::from(s.2);
                }
            }
            out.insert("accounts".into(), accounts);
            out.insert("state.level1_activated".into(), l1);
            out.insert("state.level2_activated".into(), l2);
            out.insert("state.activated".into(), l1 + l2);
            out.insert("state.level2_received".into(), rec);
            out.insert("state.portal".into(), portal);
            for (a, (n, l2a, p)) in agencies {
                out.insert(format!("agency.{a}.count"), n);
                out.insert(format!("agency.{a}.level2_activated"), l2a);
                out.insert(format!("agency.{a}.portal"), p);
            }
            // Roster-activated (the trend's starting point).
            let mut roster_activated = 0;
            for (id, r) in &world.residents {
                if resident_in(id) && roster_includes(roster_claim(r.roster), "activated") {
                    roster_activated += 1;
                }
            }
            out.insert("activated_by_roster".into(), roster_activated);
        }
        // Rule 3: per-day counts, credited.
        let credited_here = |rid: &Uuid, officer: &Uuid| match subject {
            Subject::Unit(_) => resident_in(rid),
            Subject::Officer(o) => o == officer,
        };
        let mut per_day: BTreeMap<(&str, String), i64> = BTreeMap::new();
        let mut campaign_total = 0;
        for ((rid, metric), (d, officer)) in &derived.credited {
            if !credited_here(rid, officer) {
                continue;
            }
            *per_day.entry((metric, d.clone())).or_default() += 1;
            if *metric == "activated" {
                campaign_total += 1;
            }
        }
        for m in DAY_METRICS.iter().chain(["activated"].iter()) {
            out.insert(
                format!("day.{m}"),
                per_day.get(&(*m, day.to_owned())).copied().unwrap_or(0),
            );
        }
        out.insert("activated_during_campaign".into(), campaign_total);
        // Rule 4: trend (cumulative), for each campaign day up to `day`.
        let base = out.get("activated_by_roster").copied().unwrap_or(0);
        let mut cumulative = base;
        for d in world.start.iter_days().take_while(|d| *d <= world.end) {
            let ds = d.format("%Y-%m-%d").to_string();
            if ds.as_str() > day {
                break;
            }
            cumulative += per_day
                .get(&("activated", ds.clone()))
                .copied()
                .unwrap_or(0);
            out.insert(format!("trend.{ds}"), cumulative);
        }
        // Visits on the day; blockers (all non-retracted failed steps in scope).
        let mut visits = 0;
        let mut blockers: BTreeMap<&str, i64> = BTreeMap::new();
        let mut sessions: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut outreach: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for f in self.live() {
            let fday = local_day(f.at_ms);
            match &f.kind {
                FactKind::Visit { household } => {
                    let here = match subject {
                        Subject::Unit(_) => world
                            .household_village
                            .get(household)
                            .is_some_and(|v| in_unit(v)),
                        Subject::Officer(o) => *o == f.officer,
                    };
                    if here && fday == day {
                        visits += 1;
                    }
                }
                FactKind::Assist {
                    resident,
                    failure: Some(reason),
                    ..
                } => {
                    let here = match subject {
                        Subject::Unit(_) => resident_in(resident),
                        Subject::Officer(o) => *o == f.officer,
                    };
                    if here {
                        *blockers.entry(reason.as_str()).or_default() += 1;
                    }
                }
                FactKind::Session {
                    commune,
                    kind,
                    applications,
                } => {
                    let here = match subject {
                        Subject::Unit(u) => world.under(commune, u),
                        Subject::Officer(o) => *o == f.officer,
                    };
                    if here {
                        let e = sessions.entry(kind.clone()).or_default();
                        e.0 += 1;
                        e.1 += i64::from(*applications);
                    }
                }
                FactKind::Outreach { unit, kind, people } => {
                    let here = match subject {
                        Subject::Unit(u) => world.under(unit, u),
                        Subject::Officer(o) => *o == f.officer,
                    };
                    if here {
                        let e = outreach.entry(kind.clone()).or_default();
                        e.0 += 1;
                        e.1 += i64::from(*people);
                    }
                }
                _ => {}
            }
        }
        out.insert("day.visits".into(), visits);
        for r in FailureReason::ALL {
            out.insert(
                format!("blockers.{}", r.as_str()),
                blockers.get(r.as_str()).copied().unwrap_or(0),
            );
        }
        for (k, (n, a)) in sessions {
            out.insert(format!("sessions.{k}.count"), n);
            out.insert(format!("sessions.{k}.applications"), a);
        }
        for (k, (n, p)) in outreach {
            out.insert(format!("outreach.{k}.count"), n);
            out.insert(format!("outreach.{k}.people"), p);
        }
        // Rule 6 and 7: target and today's quotas.
        let key = match subject {
            Subject::Unit(u) => u.clone(),
            Subject::Officer(o) => o.to_string(),
        };
        let target = if matches!(subject, Subject::Unit(u) if *u == world.campaign_unit) {
            Some(world.campaign_target)
        } else {
            world.campaign_quotas.get(&key).copied()
        };
        if let Some(t) = target {
            out.insert("target".into(), t);
        }
        if let Some(q) = world.day_quotas.get(&(key, day.to_owned())) {
            for (m, t) in q {
                out.insert(format!("quota_today.{m}"), *t);
            }
        }
        out
    }
}
