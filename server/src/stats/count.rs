//! The counting rules of `docs/dashboard-api.md` applied to the store's rows: what each
//! resident, successful or failed step, visit, session and outreach event adds to its
//! village's and its officer's sums ([`Agg`]). [`super::rollup`] then carries the villages'
//! sums up the unit tree.

use super::read::{self, Step};
use super::rollup::{commune_of, Agg, State, StateChange, Units};
use super::time::{day_date, day_num, day_of_ms, local_hm, DayNum};
use super::types::{DayCounts, OfficerRef, SessionRow};
use crate::error::Result;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

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

/// Rule 3's exception: whether the roster's claim already included the step's metric (roster
/// `level1_activated` includes level-1 activation; `level2_pending` the level-2 application;
/// `level2_activated` both level-2 metrics).
fn roster_included(roster: u8, step: Step) -> bool {
    match step {
        Step::Level1Activated => roster & R_L1 != 0,
        Step::Level2Received => roster & R_L2REC != 0,
        Step::Level2Activated => roster & R_L2 != 0,
        Step::PortalGuided => false,
    }
}

/// Whether the roster already said the resident was activated (rule 3's `today.activated`
/// and rule 4's base).
fn roster_activated(roster: u8) -> bool {
    roster & (R_L1 | R_L2) != 0
}

/// Rules 1 and 2: what one resident in scope adds: an account, their current state from the
/// core's `account_state` (`level2 = 2`: level-2 activated; else `level1 = 2`: level-1
/// activated; `level2 >= 1`: level-2 received; the portal flag), and the roster's claims.
fn resident_state(row: &read::AccountState<'_>, roster: u8) -> State {
    let mut s = State {
        accounts: 1,
        ..State::default()
    };
    if row.level2 == 2 {
        s.level2_activated = 1;
    } else if row.level1 == 2 {
        s.level1_activated = 1;
    }
    if row.level2 >= 1 {
        s.level2_received = 1;
    }
    if row.portal != 0 {
        s.portal = 1;
    }
    if roster_activated(roster) {
        s.roster_activated = 1;
    }
    if roster & R_L1 != 0 {
        s.roster_level1 = 1;
    }
    if roster & R_L2 != 0 {
        s.roster_level2 = 1;
    }
    s
}

/// Rule 10: a resident with an agency counts for it (accounts, level-2 activated, portal).
fn add_agency(agg: &mut Agg, agency: &str, s: &State) {
    let e = match agg.agencies.get_mut(agency) {
        Some(e) => e,
        None => agg.agencies.entry(agency.to_owned()).or_default(),
    };
    e.0 += 1;
    e.1 += s.level2_activated;
    e.2 += s.portal;
}

struct Resident {
    village: u32,
    household: u32,
    roster: u8,
    /// Their agency's number in [`Population::agencies`], if any.
    agency: Option<u32>,
}

/// The residents in scope (rule 1), numbered, with the sums of each village and the state of
/// each household.
#[derive(Default)]
pub(super) struct Population {
    villages: Vec<String>,
    village_ix: HashMap<String, u32>,
    village_aggs: Vec<Agg>,
    household_ix: HashMap<String, u32>,
    household_states: Vec<State>,
    residents: Vec<Resident>,
    resident_ix: HashMap<u128, u32>,
    /// Agencies by number (rule 10 on past days).
    agencies: Vec<String>,
    agency_ix: HashMap<String, u32>,
}

impl Population {
    /// Every resident of [`read::account_states`], added to their village and household.
    pub fn read(conn: &Connection) -> Result<Population> {
        let mut p = Population::default();
        read::account_states(conn, |row| {
            p.add_resident(&row);
            Ok(())
        })?;
        Ok(p)
    }

    fn add_resident(&mut self, row: &read::AccountState<'_>) {
        let v = self.village(row.village.unwrap_or_default());
        let h = match self.household_ix.get(row.household) {
            Some(h) => *h,
            None => {
                let h = self.household_states.len() as u32;
                self.household_ix.insert(row.household.to_owned(), h);
                self.household_states.push(State::default());
                h
            }
        };
        let roster = roster_bits(row.roster_account);
        let s = resident_state(row, roster);
        let agg = &mut self.village_aggs[v as usize];
        agg.state.add(&s);
        self.household_states[h as usize].add(&s);
        let agency = row.agency.map(|a| {
            add_agency(agg, a, &s);
            match self.agency_ix.get(a) {
                Some(n) => *n,
                None => {
                    let n = self.agencies.len() as u32;
                    self.agency_ix.insert(a.to_owned(), n);
                    self.agencies.push(a.to_owned());
                    n
                }
            }
        });
        self.resident_ix
            .insert(row.resident.as_u128(), self.residents.len() as u32);
        self.residents.push(Resident {
            village: v,
            household: h,
            roster,
            agency,
        });
    }

    /// The village's number, made if new.
    fn village(&mut self, code: &str) -> u32 {
        if let Some(v) = self.village_ix.get(code) {
            return *v;
        }
        let v = self.villages.len() as u32;
        self.village_ix.insert(code.to_owned(), v);
        self.villages.push(code.to_owned());
        self.village_aggs.push(Agg::default());
        v
    }

    fn resident(&self, id: Uuid) -> Option<&Resident> {
        let ri = *self.resident_ix.get(&id.as_u128())?;
        Some(&self.residents[ri as usize])
    }

    /// Each household's village (from any of its residents).
    fn household_villages(&self) -> Vec<u32> {
        let mut out = vec![u32::MAX; self.household_states.len()];
        for r in &self.residents {
            out[r.household as usize] = r.village;
        }
        out
    }

    /// The villages' codes and sums, for [`super::rollup::roll_up`].
    pub fn into_villages(self) -> impl Iterator<Item = (String, Agg)> {
        self.villages.into_iter().zip(self.village_aggs)
    }
}

/// An officer as the snapshot keeps them.
#[derive(Debug, Clone)]
pub(super) struct OfficerInfo {
    pub r: OfficerRef,
    /// Their own unit and every village assigned to them.
    pub home_units: Vec<String>,
    /// `state`: their assigned area's; `days` and `blockers`: what is credited to them.
    pub agg: Agg,
}

/// The officers, numbered, and what is credited to each.
pub(super) struct Officers {
    info: BTreeMap<Uuid, OfficerInfo>,
    /// Officer number → id.
    list: Vec<Uuid>,
    /// Id as the store writes it → officer number.
    ix: HashMap<String, u32>,
    /// Credited to each officer, by number.
    credits: Vec<Agg>,
}

impl Officers {
    /// Every officer of [`read::officers`].
    pub fn read(conn: &Connection) -> Result<Officers> {
        let mut o = Officers {
            info: BTreeMap::new(),
            list: Vec::new(),
            ix: HashMap::new(),
            credits: Vec::new(),
        };
        for row in read::officers(conn)? {
            o.ix.insert(row.id_text, o.list.len() as u32);
            o.list.push(row.id);
            o.info.insert(
                row.id,
                OfficerInfo {
                    r: OfficerRef {
                        id: row.id,
                        name: row.name,
                        role: row.role,
                        unit_code: row.unit_code.clone(),
                    },
                    home_units: vec![row.unit_code],
                    agg: Agg::default(),
                },
            );
        }
        o.credits = vec![Agg::default(); o.list.len()];
        Ok(o)
    }

    /// The officer's number, if known.
    fn number(&self, id: &str) -> Option<u32> {
        self.ix.get(id).copied()
    }

    /// The sums credited to an officer number, if it is one.
    fn credits(&mut self, n: u32) -> Option<&mut Agg> {
        self.credits.get_mut(n as usize)
    }

    /// An officer's `accounts`: the residents of the villages and households assigned to them
    /// (a household in an assigned village counted once). Assigned villages also become home
    /// units (where the officer is listed).
    pub fn assigned_accounts(&mut self, rows: Vec<read::Assignment>, people: &Population) {
        let mut areas: HashMap<Uuid, (HashSet<u32>, HashSet<u32>)> = HashMap::new();
        for row in rows {
            let Some(info) = self.info.get_mut(&row.officer) else {
                continue;
            };
            let area = areas.entry(row.officer).or_default();
            if row.kind == "village" {
                if let Some(v) = people.village_ix.get(&row.target) {
                    area.0.insert(*v);
                }
                if !info.home_units.contains(&row.target) {
                    info.home_units.push(row.target);
                }
            } else if let Some(h) = people.household_ix.get(&row.target) {
                area.1.insert(*h);
            }
        }
        let household_village = people.household_villages();
        for (o, (vs, hs)) in areas {
            let info = self.info.get_mut(&o).expect("officer exists");
            for v in &vs {
                info.agg.state.add(&people.village_aggs[*v as usize].state);
            }
            for h in hs {
                if !vs.contains(&household_village[h as usize]) {
                    info.agg.state.add(&people.household_states[h as usize]);
                }
            }
        }
    }

    /// The officers with what is credited to them.
    pub fn finish(mut self) -> BTreeMap<Uuid, OfficerInfo> {
        for (i, a) in self.credits.into_iter().enumerate() {
            let info = self.info.get_mut(&self.list[i]).expect("officer exists");
            info.agg.days = a.days;
            info.agg.blockers = a.blockers;
        }
        self.info
    }
}

/// A successful step that may be credited.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cred {
    at_ms: i64,
    id: u128,
    officer: u32,
}

impl Cred {
    /// Rule 3's order: by `at_ms`, then fact id.
    fn earlier(&self, o: &Cred) -> bool {
        (self.at_ms, self.id) < (o.at_ms, o.id)
    }
}

/// Per resident, the earliest step of each [`Step`] (indexed by it).
pub(super) type Earliest = Vec<[Option<Cred>; 4]>;

/// Rule 3: each resident's earliest non-retracted successful step of each kind (by `at_ms`,
/// then fact id). Steps of residents out of scope are ignored.
pub(super) fn earliest_steps(
    conn: &Connection,
    people: &Population,
    officers: &Officers,
) -> Result<Earliest> {
    let mut best: Earliest = vec![[None; 4]; people.residents.len()];
    read::successful_steps(conn, |row| {
        let Some(&ri) = people.resident_ix.get(&row.resident.as_u128()) else {
            return Ok(()); // deleted or outside every household: not in scope
        };
        let c = Cred {
            at_ms: row.at_ms,
            id: row.id,
            officer: officers.number(row.officer).unwrap_or(u32::MAX),
        };
        let slot = &mut best[ri as usize][row.step as usize];
        if slot.is_none_or(|b| c.earlier(&b)) {
            *slot = Some(c);
        }
        Ok(())
    })?;
    Ok(best)
}

/// A state reached before any step (the roster said so): in the state of every day.
const ALWAYS: DayNum = DayNum::MIN;
/// A state not reached (yet): in the state of no day.
const NEVER: DayNum = DayNum::MAX;

/// Rule 2 on past days: the local days on which each resident's state counts changed, added
/// to their village's [`Agg::changes`] (and their agency's). The state is the join of the
/// roster's claim and the successful steps, so a count is reached on the day of the earliest
/// step that reaches it — level-2 received by an application or an activation, level-1
/// activated counted only while level 2 is not — unless the roster already claimed it.
pub(super) fn state_changes(best: &Earliest, people: &mut Population) {
    for (ri, creds) in best.iter().enumerate() {
        let res = &people.residents[ri];
        let day = |s: Step| creds[s as usize].map_or(NEVER, |c| day_of_ms(c.at_ms));
        let reached = |claimed: bool, d: DayNum| if claimed { ALWAYS } else { d };
        let l1 = reached(res.roster & R_L1 != 0, day(Step::Level1Activated));
        let l2 = reached(res.roster & R_L2 != 0, day(Step::Level2Activated));
        let received = reached(
            res.roster & R_L2REC != 0,
            day(Step::Level2Received).min(day(Step::Level2Activated)),
        );
        let portal = day(Step::PortalGuided);
        let mut moves: Vec<(DayNum, StateChange)> = Vec::new();
        let mut at = |d: DayNum, f: fn(&mut StateChange)| {
            if d != ALWAYS && d != NEVER {
                let mut c = StateChange::default();
                f(&mut c);
                moves.push((d, c));
            }
        };
        at(l2, |c| c.level2_activated += 1);
        at(received, |c| c.level2_received += 1);
        at(portal, |c| c.portal += 1);
        // Level-1 activated counts from its day until level 2's (rule 2: `level1 = 2 AND
        // level2 < 2`).
        if l1 < l2 {
            at(l1, |c| c.level1_activated += 1);
            at(l2, |c| c.level1_activated -= 1);
        }
        if moves.is_empty() {
            continue;
        }
        let agg = &mut people.village_aggs[res.village as usize];
        for (d, c) in &moves {
            agg.changes.entry(*d).or_default().add(c);
            if let Some(a) = res.agency {
                if c.level2_activated != 0 || c.portal != 0 {
                    let name = people.agencies[a as usize].clone();
                    let e = agg.agency_changes.entry((*d, name)).or_default();
                    e.0 += c.level2_activated;
                    e.1 += c.portal;
                }
            }
        }
    }
}

/// Rule 3's `today.activated`: the earlier of the earliest level-1 and level-2 activations.
fn first_activation(creds: &[Option<Cred>; 4]) -> Option<&Cred> {
    let l1 = &creds[Step::Level1Activated as usize];
    let l2 = &creds[Step::Level2Activated as usize];
    match (l1, l2) {
        (Some(a), Some(b)) => Some(if a.earlier(b) { a } else { b }),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
}

/// Rule 3: each earliest step counts on its day, for the resident's village and the step's
/// officer, unless the roster already included its metric; the first activation counts as
/// `activated` unless the roster already said activated.
pub(super) fn credit_steps(best: Earliest, people: &mut Population, officers: &mut Officers) {
    const STEPS: [Step; 4] = [
        Step::Level1Activated,
        Step::Level2Received,
        Step::Level2Activated,
        Step::PortalGuided,
    ];
    for (ri, creds) in best.iter().enumerate() {
        let res = &people.residents[ri];
        let village = &mut people.village_aggs[res.village as usize];
        let mut credit = |c: &Cred, f: fn(&mut DayCounts)| {
            let d = day_of_ms(c.at_ms);
            f(village.day(d));
            if let Some(o) = officers.credits(c.officer) {
                f(o.day(d));
            }
        };
        for (step, c) in STEPS.into_iter().zip(creds) {
            let Some(c) = c else { continue };
            if roster_included(res.roster, step) {
                continue;
            }
            match step {
                Step::Level1Activated => credit(c, |d| d.level1_activated += 1),
                Step::Level2Received => credit(c, |d| d.level2_received += 1),
                Step::Level2Activated => credit(c, |d| d.level2_activated += 1),
                Step::PortalGuided => credit(c, |d| d.portal_guided += 1),
            }
        }
        if !roster_activated(res.roster) {
            if let Some(c) = first_activation(creds) {
                credit(c, |d| d.activated += 1);
            }
        }
    }
}

/// Rule 5: non-retracted failed steps of residents in scope, by day and reason, for the
/// resident's village and the step's officer.
pub(super) fn count_blockers(
    conn: &Connection,
    people: &mut Population,
    officers: &mut Officers,
) -> Result<()> {
    read::failed_steps(conn, |row| {
        let Some(v) = people.resident(row.resident).map(|r| r.village) else {
            return Ok(());
        };
        let day = day_num(row.day);
        let village = &mut people.village_aggs[v as usize];
        add_blocker(&mut village.blockers, day, row.reason, row.count);
        if let Some(o) = officers
            .number(row.officer)
            .and_then(|n| officers.credits(n))
        {
            add_blocker(&mut o.blockers, day, row.reason, row.count);
        }
        Ok(())
    })
}

fn add_blocker(blockers: &mut BTreeMap<(DayNum, String), u64>, day: DayNum, reason: &str, n: u64) {
    *blockers.entry((day, reason.to_owned())).or_default() += n;
}

/// Rule 3's `today.visits`: non-retracted visits to households in scope, each counted on its
/// day for the household's village and the visiting officer.
pub(super) fn count_visits(
    conn: &Connection,
    people: &mut Population,
    officers: &mut Officers,
) -> Result<()> {
    read::visits(conn, |row| {
        let d = day_num(row.day);
        let v = people.village(row.village.unwrap_or_default());
        people.village_aggs[v as usize].day(d).visits += row.count;
        if let Some(o) = officers
            .number(row.officer)
            .and_then(|n| officers.credits(n))
        {
            o.day(d).visits += row.count;
        }
        Ok(())
    })
}

/// A session or outreach fact, kept whole (there are few).
#[derive(Debug, Clone)]
pub(super) struct Event {
    /// The commune it counts for.
    pub commune: String,
    pub kind: String,
    pub day: DayNum,
    /// Applications received (sessions) or people reached (outreach).
    pub total: u64,
    /// The session as the day's list shows it (sessions only).
    pub row: Option<SessionRow>,
}

/// Rule 11: a receiving session counts for its commune on its start day.
pub(super) fn session_event(units: &Units, s: read::Session) -> Event {
    let commune = commune_of(units, &s.unit_code);
    let day = day_of_ms(s.starts_at_ms);
    Event {
        commune: commune.clone(),
        kind: s.kind.clone(),
        day,
        total: s.applications,
        row: Some(SessionRow {
            id: s.id,
            unit_code: commune,
            kind: s.kind,
            place: s.place,
            day: day_date(day).to_string(),
            starts: local_hm(s.starts_at_ms),
            ends: local_hm(s.ends_at_ms),
            applications: s.applications,
        }),
    }
}

/// Rule 12: an outreach event counts for its commune (an event recorded on a village counts
/// for the village's commune) on its day.
pub(super) fn outreach_event(units: &Units, o: read::Outreach) -> Event {
    Event {
        commune: commune_of(units, &o.unit_code),
        kind: o.kind,
        day: day_of_ms(o.at_ms),
        total: o.people,
        row: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(level1: i64, level2: i64, portal: i64, roster: Option<&str>) -> State {
        let row = read::AccountState {
            resident: Uuid::nil(),
            household: "h",
            village: Some("v"),
            roster_account: roster,
            level1,
            level2,
            portal,
            agency: None,
        };
        resident_state(&row, roster_bits(roster))
    }

    #[test]
    fn a_resident_counts_once_at_their_highest_level() {
        let s = state(2, 2, 1, None);
        assert_eq!(
            (s.accounts, s.level1_activated, s.level2_activated),
            (1, 0, 1)
        );
        assert_eq!((s.level2_received, s.portal), (1, 1));
        let s = state(2, 1, 0, None);
        assert_eq!((s.level1_activated, s.level2_activated), (1, 0));
        assert_eq!((s.level2_received, s.portal), (1, 0));
        let s = state(0, 0, 0, Some("level2_activated"));
        assert_eq!(
            (s.level1_activated + s.level2_activated, s.roster_activated),
            (0, 1)
        );
        assert_eq!((s.roster_level1, s.roster_level2), (0, 1));
    }

    #[test]
    fn the_roster_claim_includes_the_metrics_it_says() {
        let l1 = roster_bits(Some("level1_activated"));
        assert!(roster_included(l1, Step::Level1Activated));
        assert!(!roster_included(l1, Step::Level2Received));
        let pending = roster_bits(Some("level2_pending"));
        assert!(roster_included(pending, Step::Level2Received));
        assert!(!roster_included(pending, Step::Level2Activated));
        assert!(!roster_activated(pending));
        let l2 = roster_bits(Some("level2_activated"));
        assert!(roster_included(l2, Step::Level2Received));
        assert!(roster_included(l2, Step::Level2Activated));
        assert!(!roster_included(l2, Step::Level1Activated));
        assert!(!roster_included(l2, Step::PortalGuided));
        assert!(roster_activated(l2));
    }

    #[test]
    fn the_first_activation_is_the_earlier_by_time_then_id() {
        let c = |at_ms, id| {
            Some(Cred {
                at_ms,
                id,
                officer: 0,
            })
        };
        let creds = [c(20, 1), None, c(10, 9), None];
        assert_eq!(first_activation(&creds).map(|c| c.at_ms), Some(10));
        let creds = [c(10, 2), None, c(10, 1), None];
        assert_eq!(first_activation(&creds).map(|c| c.id), Some(1));
        let creds = [None, c(5, 1), None, c(1, 1)];
        assert!(first_activation(&creds).is_none());
    }
}
