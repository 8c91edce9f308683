//! The ledger: what every resident and household in scope adds to the sums
//! ([`Contribution`]s, kept as compact records), the sums themselves, and the snapshot they
//! make. Built once from the whole store ([`Ledger::build`]); then kept up to date from what
//! each batch touched ([`Ledger::update`], in `incremental.rs`): a changed resident's
//! contribution is taken back, read again from the store (a few indexed rows) and added.
//! The build adds every contribution the same way, so the sums kept by updates equal the sums
//! of a rebuild (`docs/adr/0009-incremental-statistics.md`).

use super::count::{self, Cred, Earliest, Fail, HouseholdVisits, ResidentRec};
use super::read;
use super::rollup::{self, chain, Agg, State};
use super::snapshot::{quota_map, Snapshot, DEFAULT_STALE_MS};
use super::time::day_num;
use super::types::OfficerRef;
use crate::error::Result;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Names numbered in the order first seen (villages, households, officers, agencies, reasons).
#[derive(Debug, Clone, Default)]
pub(super) struct Names {
    names: Vec<String>,
    ix: HashMap<String, u32>,
}

impl Names {
    /// The name's number, made if new.
    pub fn number(&mut self, name: &str) -> u32 {
        if let Some(n) = self.ix.get(name) {
            return *n;
        }
        let n = self.names.len() as u32;
        self.ix.insert(name.to_owned(), n);
        self.names.push(name.to_owned());
        n
    }

    /// The name's number, if known.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ix.get(name).copied()
    }

    /// The name of a number.
    pub fn name(&self, n: u32) -> &str {
        self.names.get(n as usize).map_or("", String::as_str)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
}

/// An officer as the snapshot keeps them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OfficerInfo {
    pub r: OfficerRef,
    /// Their own unit and every village assigned to them.
    pub home_units: Vec<String>,
    /// `state`: their assigned area's; `days` and `blockers`: what is credited to them.
    pub agg: Agg,
}

/// An officer's assigned area: villages by code (their home units), village and household
/// numbers.
type Area = (Vec<String>, HashSet<u32>, HashSet<u32>);

/// Whether a contribution is added or taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sign {
    Add,
    Sub,
}

fn apply(agg: &mut Agg, c: &Agg, sign: Sign) {
    match sign {
        Sign::Add => agg.add(c),
        Sign::Sub => agg.sub(c),
    }
}

fn apply_state(s: &mut State, c: &State, sign: Sign) {
    match sign {
        Sign::Add => s.add(c),
        Sign::Sub => s.sub(c),
    }
}

/// The incremental statistics' state (see the module docs).
pub(super) struct Ledger {
    pub(super) villages: Names,
    pub(super) households: Names,
    /// Officer ids as the facts write them (known to `officers` or not).
    pub(super) officer_ids: Names,
    pub(super) agencies: Names,
    pub(super) reasons: Names,
    pub(super) resident_ix: HashMap<u128, u32>,
    /// By resident number; `None` while out of scope.
    pub(super) residents: Vec<Option<ResidentRec>>,
    /// Failed steps, by resident number (only those who have any).
    pub(super) fails: HashMap<u32, Vec<Fail>>,
    /// Visits, by household number (only households visited).
    pub(super) visits: HashMap<u32, HouseholdVisits>,
    /// Each village's own state (its residents'), by village number.
    village_states: Vec<State>,
    /// Each household's state and village, by household number.
    household_states: Vec<State>,
    household_village: Vec<u32>,
    /// What is credited to each officer id, by number.
    credits: Vec<Agg>,
    /// Officers' numbers whose credits moved since the officers were last published.
    touched_officers: HashSet<u32>,
    pub(super) officer_rows: Vec<read::Officer>,
    pub(super) assignments: Vec<read::Assignment>,
    /// Per replica, the highest counter the ledger has followed.
    pub(super) maxima: HashMap<Uuid, u64>,
    /// Whether residents have an agency column (schema v2).
    pub(super) has_agency: bool,
    /// The snapshot the sums make (published by cloning: its big parts are shared).
    pub(super) snap: Snapshot,
}

impl Ledger {
    /// Read the whole store (best inside one read transaction).
    pub fn build(conn: &Connection, now_ms: i64) -> Result<Ledger> {
        let started = std::time::Instant::now();
        let maxima = read::replica_maxima(conn)?.into_iter().collect();
        let fingerprint = read::fingerprint(conn)?;
        let units = rollup::unit_tree(read::units(conn)?);
        let mut l = Ledger {
            villages: Names::default(),
            households: Names::default(),
            officer_ids: Names::default(),
            agencies: Names::default(),
            reasons: Names::default(),
            resident_ix: HashMap::new(),
            residents: Vec::new(),
            fails: HashMap::new(),
            visits: HashMap::new(),
            village_states: Vec::new(),
            household_states: Vec::new(),
            household_village: Vec::new(),
            credits: Vec::new(),
            touched_officers: HashSet::new(),
            officer_rows: Vec::new(),
            assignments: Vec::new(),
            maxima,
            has_agency: false,
            snap: Snapshot {
                built_at_ms: now_ms,
                build_ms: 0.0,
                fingerprint,
                units: Arc::new(units),
                aggs: HashMap::new(),
                officers: BTreeMap::new(),
                campaigns: Vec::new(),
                quotas: Arc::default(),
                sessions: None,
                outreach: None,
                stale_after_ms: DEFAULT_STALE_MS,
            },
        };
        l.has_agency = read::has_agency(conn)?;
        read::account_states(conn, None, l.has_agency, |row| {
            let rec = l.record(&row);
            let n = l.resident_ix.len() as u32;
            l.resident_ix.insert(row.resident.as_u128(), n);
            l.residents.push(Some(rec));
            Ok(())
        })?;
        let mut best: Vec<Earliest> = vec![[None; 4]; l.residents.len()];
        read::successful_steps(conn, None, |row| {
            let Some(&ri) = l.resident_ix.get(&row.resident.as_u128()) else {
                return Ok(()); // deleted or outside every household: not in scope
            };
            let c = Cred {
                at_ms: row.at_ms,
                id: row.id,
                officer: l.officer_ids.number(row.officer),
            };
            count::keep_earliest(&mut best[ri as usize], row.step, c);
            Ok(())
        })?;
        for (rec, best) in l.residents.iter_mut().zip(&best) {
            if let Some(rec) = rec {
                rec.set_steps(best);
            }
        }
        drop(best);
        read::failed_steps(conn, None, |row| {
            let Some(&ri) = l.resident_ix.get(&row.resident.as_u128()) else {
                return Ok(());
            };
            let f = l.fail(&row);
            l.fails.entry(ri).or_default().push(f);
            Ok(())
        })?;
        read::visits(conn, None, |row| {
            let h = l.households.number(row.household);
            let v = l.villages.number(row.village.unwrap_or_default());
            let officer = l.officer_ids.number(row.officer);
            let e = l.visits.entry(h).or_default();
            e.village = v;
            e.counts.push((day_num(row.day), officer, row.count));
            Ok(())
        })?;
        // Every contribution added once, to its village alone, then rolled up the tree.
        l.grow();
        let mut village_aggs = vec![Agg::default(); l.villages.len()];
        for ri in 0..l.residents.len() as u32 {
            if let Some((v, c)) = l.resident_contribution(ri) {
                village_aggs[v as usize].add(&c.village);
                l.add_to_places(ri, &c.village.state, Sign::Add);
                l.credit(&c.officers, Sign::Add);
            }
        }
        let households: Vec<u32> = l.visits.keys().copied().collect();
        for h in households {
            if let Some(v) = l.visits.get(&h) {
                let c = count::visits_contribution(v);
                village_aggs[v.village as usize].add(&c.village);
                l.credit(&c.officers, Sign::Add);
            }
        }
        l.village_states = village_aggs.iter().map(|a| a.state).collect();
        let villages = l.villages.names.iter().cloned().zip(village_aggs);
        l.snap.aggs = rollup::roll_up(&l.snap.units, villages)
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect();
        l.reload_officers(conn)?;
        l.reload_assignments(conn)?;
        l.reload_campaigns(conn)?;
        l.reload_quotas(conn)?;
        l.reload_events(conn)?;
        l.publish_officers(true);
        l.snap.build_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(l)
    }

    /// A resident's record from their row, their places numbered.
    pub(super) fn record(&mut self, row: &read::AccountState<'_>) -> ResidentRec {
        let village = self.villages.number(row.village.unwrap_or_default());
        let household = self.households.number(row.household);
        let agency = row.agency.map(|a| self.agencies.number(a));
        ResidentRec::new(row, village, household, agency)
    }

    /// A failed-steps row, its officer and reason numbered.
    pub(super) fn fail(&mut self, row: &read::Failure<'_>) -> Fail {
        Fail {
            day: day_num(row.day),
            officer: self.officer_ids.number(row.officer),
            reason: self.reasons.number(row.reason),
            count: row.count,
        }
    }

    /// Make room in the per-number sums for names numbered since.
    pub(super) fn grow(&mut self) {
        self.village_states
            .resize(self.villages.len(), State::default());
        self.household_states
            .resize(self.households.len(), State::default());
        self.household_village
            .resize(self.households.len(), u32::MAX);
        self.credits.resize(self.officer_ids.len(), Agg::default());
    }

    /// The village and contribution of resident number `ri`, if in scope.
    fn resident_contribution(&self, ri: u32) -> Option<(u32, count::Contribution)> {
        let rec = self.residents.get(ri as usize)?.as_ref()?;
        let fails = self.fails.get(&ri).map_or(&[][..], Vec::as_slice);
        let c = count::resident_contribution(rec, fails, &self.agencies.names, &self.reasons.names);
        Some((rec.village, c))
    }

    /// A resident's state added to (or taken from) their village's and household's.
    fn add_to_places(&mut self, ri: u32, s: &State, sign: Sign) {
        let Some(Some(rec)) = self.residents.get(ri as usize) else {
            return;
        };
        let (v, h) = (rec.village as usize, rec.household as usize);
        apply_state(&mut self.village_states[v], s, sign);
        apply_state(&mut self.household_states[h], s, sign);
        if sign == Sign::Add {
            self.household_village[h] = rec.village;
        }
    }

    fn credit(&mut self, officers: &[(u32, Agg)], sign: Sign) {
        for (o, a) in officers {
            if let Some(c) = self.credits.get_mut(*o as usize) {
                apply(c, a, sign);
                self.touched_officers.insert(*o);
            }
        }
    }

    /// Add (or take back) a village's contribution to it and every unit above it.
    fn apply_to_units(&mut self, village: u32, c: &Agg, sign: Sign) {
        for unit in chain(&self.snap.units, self.villages.name(village)) {
            let agg = self.snap.aggs.entry(unit).or_default();
            apply(Arc::make_mut(agg), c, sign);
        }
    }

    /// Add (or take back) resident number `ri`'s whole contribution.
    pub(super) fn apply_resident(&mut self, ri: u32, sign: Sign) {
        let Some((v, c)) = self.resident_contribution(ri) else {
            return;
        };
        self.apply_to_units(v, &c.village, sign);
        self.add_to_places(ri, &c.village.state, sign);
        self.credit(&c.officers, sign);
    }

    /// Add (or take back) household number `h`'s visits.
    pub(super) fn apply_visits(&mut self, h: u32, sign: Sign) {
        let Some(v) = self.visits.get(&h) else {
            return;
        };
        let c = count::visits_contribution(v);
        let village = v.village;
        self.apply_to_units(village, &c.village, sign);
        self.credit(&c.officers, sign);
    }

    pub(super) fn reload_officers(&mut self, conn: &Connection) -> Result<()> {
        self.officer_rows = read::officers(conn)?;
        Ok(())
    }

    pub(super) fn reload_assignments(&mut self, conn: &Connection) -> Result<()> {
        self.assignments = read::assignments(conn)?;
        Ok(())
    }

    pub(super) fn reload_campaigns(&mut self, conn: &Connection) -> Result<()> {
        self.snap.campaigns = read::campaigns(conn)?;
        Ok(())
    }

    pub(super) fn reload_quotas(&mut self, conn: &Connection) -> Result<()> {
        self.snap.quotas = Arc::new(quota_map(read::quotas(conn)?));
        Ok(())
    }

    /// Rules 11 and 12's sessions and outreach (small tables, read whole).
    pub(super) fn reload_events(&mut self, conn: &Connection) -> Result<()> {
        let units = &self.snap.units;
        self.snap.sessions = if read::has_table(conn, "sessions")? {
            let rows = read::sessions(conn)?.into_iter();
            Some(Arc::new(
                rows.map(|s| count::session_event(units, s)).collect(),
            ))
        } else {
            None
        };
        self.snap.outreach = if read::has_table(conn, "outreach")? {
            let rows = read::outreach(conn)?.into_iter();
            Some(Arc::new(
                rows.map(|o| count::outreach_event(units, o)).collect(),
            ))
        } else {
            None
        };
        Ok(())
    }

    /// The officers as the snapshot shows them: each officer of the `officers` table with
    /// their home units, their assigned area's state (rule 1 for an officer: the residents of
    /// the villages and households assigned to them, a household in an assigned village
    /// counted once) and what is credited to them. Only officers whose numbers moved are made
    /// anew, unless `all`.
    pub(super) fn publish_officers(&mut self, all: bool) {
        let mut areas: HashMap<Uuid, Area> = HashMap::new();
        let known: HashSet<Uuid> = self.officer_rows.iter().map(|o| o.id).collect();
        for row in &self.assignments {
            if !known.contains(&row.officer) {
                continue;
            }
            let area = areas.entry(row.officer).or_default();
            if row.kind == "village" {
                if let Some(v) = self.villages.get(&row.target) {
                    area.1.insert(v);
                }
                if !area.0.contains(&row.target) {
                    area.0.push(row.target.clone());
                }
            } else if let Some(h) = self.households.get(&row.target) {
                area.2.insert(h);
            }
        }
        let mut out = BTreeMap::new();
        for row in &self.officer_rows {
            let (assigned, vs, hs) = areas.remove(&row.id).unwrap_or_default();
            let mut state = State::default();
            for v in &vs {
                if let Some(s) = self.village_states.get(*v as usize) {
                    state.add(s);
                }
            }
            for h in hs {
                let village = self.household_village.get(h as usize).copied();
                if village.is_none_or(|v| !vs.contains(&v)) {
                    if let Some(s) = self.household_states.get(h as usize) {
                        state.add(s);
                    }
                }
            }
            let mut home_units = vec![row.unit_code.clone()];
            for v in assigned {
                if !home_units.contains(&v) {
                    home_units.push(v);
                }
            }
            let key = self.officer_ids.get(&row.id_text);
            let r = OfficerRef {
                id: row.id,
                name: row.name.clone(),
                role: row.role.clone(),
                unit_code: row.unit_code.clone(),
            };
            if !all && key.is_none_or(|k| !self.touched_officers.contains(&k)) {
                if let Some(old) = self.snap.officers.get(&row.id) {
                    if old.agg.state == state && old.r == r && old.home_units == home_units {
                        out.insert(row.id, old.clone());
                        continue;
                    }
                }
            }
            let credited = key.and_then(|k| self.credits.get(k as usize));
            let agg = Agg {
                state,
                days: credited.map(|c| c.days.clone()).unwrap_or_default(),
                blockers: credited.map(|c| c.blockers.clone()).unwrap_or_default(),
                ..Agg::default()
            };
            out.insert(row.id, Arc::new(OfficerInfo { r, home_units, agg }));
        }
        self.snap.officers = out;
        self.touched_officers.clear();
    }
}
