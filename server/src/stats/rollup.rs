//! The roll-up: what a village, household or officer adds up to ([`Agg`]), and how villages'
//! sums climb the unit tree so that a unit counts "the unit itself and everything under it"
//! (rule 1) with one map look-up.

use super::read;
use super::time::{day_num, DayNum};
use super::types::DayCounts;
use std::collections::{BTreeMap, HashMap};

/// How many levels a walk up the tree goes at most (province → district → commune → village
/// needs three); a cycle in the store's parents cannot hang a build.
const MAX_DEPTH: usize = 8;

/// Current account states of a set of residents (rules 1, 2), and what the roster already
/// said of them (the base of the trend, rule 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct State {
    pub accounts: u64,
    pub level1_activated: u64,
    pub level2_activated: u64,
    pub level2_received: u64,
    pub portal: u64,
    pub roster_activated: u64,
    pub roster_level1: u64,
    pub roster_level2: u64,
}

impl State {
    pub fn add(&mut self, o: &State) {
        self.accounts += o.accounts;
        self.level1_activated += o.level1_activated;
        self.level2_activated += o.level2_activated;
        self.level2_received += o.level2_received;
        self.portal += o.portal;
        self.roster_activated += o.roster_activated;
        self.roster_level1 += o.roster_level1;
        self.roster_level2 += o.roster_level2;
    }

    /// Take back what [`State::add`] added (never below zero).
    pub fn sub(&mut self, o: &State) {
        self.accounts = self.accounts.saturating_sub(o.accounts);
        self.level1_activated = self.level1_activated.saturating_sub(o.level1_activated);
        self.level2_activated = self.level2_activated.saturating_sub(o.level2_activated);
        self.level2_received = self.level2_received.saturating_sub(o.level2_received);
        self.portal = self.portal.saturating_sub(o.portal);
        self.roster_activated = self.roster_activated.saturating_sub(o.roster_activated);
        self.roster_level1 = self.roster_level1.saturating_sub(o.roster_level1);
        self.roster_level2 = self.roster_level2.saturating_sub(o.roster_level2);
    }
}

/// How a day's steps moved the state counts of rule 2 (activations and applications have
/// dates): the state at the end of day D is the current state minus the changes of the days
/// after D.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct StateChange {
    pub level1_activated: i64,
    pub level2_activated: i64,
    pub level2_received: i64,
    pub portal: i64,
}

impl StateChange {
    pub fn add(&mut self, o: &StateChange) {
        self.level1_activated += o.level1_activated;
        self.level2_activated += o.level2_activated;
        self.level2_received += o.level2_received;
        self.portal += o.portal;
    }

    fn sub(&mut self, o: &StateChange) {
        self.level1_activated -= o.level1_activated;
        self.level2_activated -= o.level2_activated;
        self.level2_received -= o.level2_received;
        self.portal -= o.portal;
    }
}

/// `n` without a change made after the day (never below zero: a store whose derived state
/// and steps disagree cannot make a negative count).
fn undo(n: u64, change: i64) -> u64 {
    (n as i64).saturating_sub(change).max(0) as u64
}

/// Residents of one agency: (accounts, level-2 activated, portal) (rule 10).
pub(super) type AgencyCount = (u64, u64, u64);

/// What one unit, household or officer adds up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Agg {
    /// Rules 1 and 2, as the store holds them now.
    pub state: State,
    /// Rule 2 on past days: how each local day's steps moved `state` ([`Agg::state_at`]).
    pub changes: BTreeMap<DayNum, StateChange>,
    /// Rule 3's counts, per local day.
    pub days: BTreeMap<DayNum, DayCounts>,
    /// Rule 5's failed steps, per local day and reason ([`Agg::blockers_upto`]).
    pub blockers: BTreeMap<(DayNum, String), u64>,
    /// Rule 10, per agency, now.
    pub agencies: BTreeMap<String, AgencyCount>,
    /// Rule 10 on past days: per local day and agency, how the day's steps moved (level-2
    /// activated, portal) ([`Agg::agencies_at`]).
    pub agency_changes: BTreeMap<(DayNum, String), (i64, i64)>,
}

impl Agg {
    pub fn add(&mut self, o: &Agg) {
        self.state.add(&o.state);
        for (d, c) in &o.days {
            self.days.entry(*d).or_default().add(c);
        }
        for (d, c) in &o.changes {
            self.changes.entry(*d).or_default().add(c);
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
        for (k, v) in &o.agency_changes {
            let e = self.agency_changes.entry(k.clone()).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
    }

    /// Take back what [`Agg::add`] added: an entry that falls to nothing is removed, so that
    /// sums kept by adding and taking back equal sums built afresh.
    pub fn sub(&mut self, o: &Agg) {
        self.state.sub(&o.state);
        for (d, c) in &o.days {
            if let Some(e) = self.days.get_mut(d) {
                e.sub(c);
                if *e == DayCounts::default() {
                    self.days.remove(d);
                }
            }
        }
        for (d, c) in &o.changes {
            let e = self.changes.entry(*d).or_default();
            e.sub(c);
            if *e == StateChange::default() {
                self.changes.remove(d);
            }
        }
        for (k, v) in &o.blockers {
            if let Some(e) = self.blockers.get_mut(k) {
                *e = e.saturating_sub(*v);
                if *e == 0 {
                    self.blockers.remove(k);
                }
            }
        }
        for (k, v) in &o.agencies {
            if let Some(e) = self.agencies.get_mut(k) {
                e.0 = e.0.saturating_sub(v.0);
                e.1 = e.1.saturating_sub(v.1);
                e.2 = e.2.saturating_sub(v.2);
                if *e == (0, 0, 0) {
                    self.agencies.remove(k);
                }
            }
        }
        for (k, v) in &o.agency_changes {
            let e = self.agency_changes.entry(k.clone()).or_default();
            e.0 -= v.0;
            e.1 -= v.1;
            if *e == (0, 0) {
                self.agency_changes.remove(k);
            }
        }
    }

    /// Rule 2 at the end of `date` (local): the state now without the changes of later days.
    /// `accounts` and the roster's claims are the store's now (the roster has no history).
    pub fn state_at(&self, date: chrono::NaiveDate) -> State {
        // The changes are summed first: one day's change alone may take a count below zero
        // (a resident's level 1 reached on one day, left for level 2 on the next).
        let mut later = StateChange::default();
        for c in self.changes.range(day_num(date) + 1..).map(|(_, c)| c) {
            later.add(c);
        }
        let mut s = self.state;
        s.level1_activated = undo(s.level1_activated, later.level1_activated);
        s.level2_activated = undo(s.level2_activated, later.level2_activated);
        s.level2_received = undo(s.level2_received, later.level2_received);
        s.portal = undo(s.portal, later.portal);
        s
    }

    /// Rule 5 up to the end of `date`: failed steps by reason.
    pub fn blockers_upto(&self, date: chrono::NaiveDate) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        let last = day_num(date);
        for ((d, reason), n) in &self.blockers {
            if *d <= last {
                *out.entry(reason.clone()).or_default() += n;
            }
        }
        out
    }

    /// Rule 10 at the end of `date`: per agency, its residents (now), level-2 activated and
    /// portal without the changes of later days.
    pub fn agencies_at(&self, date: chrono::NaiveDate) -> BTreeMap<String, AgencyCount> {
        let last = day_num(date);
        let mut later: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for ((d, agency), (l2, portal)) in &self.agency_changes {
            if *d > last {
                let e = later.entry(agency).or_default();
                e.0 += l2;
                e.1 += portal;
            }
        }
        let mut out = self.agencies.clone();
        for (agency, (l2, portal)) in later {
            if let Some(e) = out.get_mut(agency) {
                e.1 = undo(e.1, l2);
                e.2 = undo(e.2, portal);
            }
        }
        out
    }

    /// The counts of a day, made if absent.
    pub fn day(&mut self, d: DayNum) -> &mut DayCounts {
        self.days.entry(d).or_default()
    }
}

/// A unit and its place in the tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct UnitInfo {
    pub name: String,
    pub level: String,
    pub parent: Option<String>,
    pub children: Vec<String>,
}

/// Units by code (sorted by code; the snapshot lists the tree's roots in that order), each
/// with its children.
pub(super) type Units = BTreeMap<String, UnitInfo>;

/// The unit tree from the rows of `units`: each unit listed under its parent.
pub(super) fn unit_tree(rows: Vec<read::Unit>) -> Units {
    let mut units: Units = rows
        .into_iter()
        .map(|u| {
            let info = UnitInfo {
                name: u.name,
                level: u.level,
                parent: u.parent,
                children: Vec::new(),
            };
            (u.code, info)
        })
        .collect();
    let links: Vec<(String, String)> = units
        .iter()
        .filter_map(|(c, u)| u.parent.clone().map(|p| (p, c.clone())))
        .collect();
    for (p, c) in links {
        if let Some(u) = units.get_mut(&p) {
            u.children.push(c);
        }
    }
    units
}

/// Rule 1's "under the unit": each village's sums added to the village itself and to every
/// unit above it. Gives the sums of every unit with anything under it.
pub(super) fn roll_up(
    units: &Units,
    villages: impl IntoIterator<Item = (String, Agg)>,
) -> HashMap<String, Agg> {
    let mut aggs: HashMap<String, Agg> = HashMap::new();
    for (v, agg) in villages {
        for c in chain(units, &v) {
            aggs.entry(c).or_default().add(&agg);
        }
    }
    aggs
}

/// The units a village's sums count for: the village itself and every unit above it (at most
/// [`MAX_DEPTH`] steps up).
pub(super) fn chain(units: &Units, village: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(4);
    let mut code = Some(village.to_owned());
    while let Some(c) = code {
        code = units.get(&c).and_then(|u| u.parent.clone());
        out.push(c);
        if out.len() > MAX_DEPTH {
            break;
        }
    }
    out
}

/// The commune a session or outreach event counts for (rules 11, 12): the unit itself, or the
/// first unit above it that is not a village.
pub(super) fn commune_of(units: &Units, code: &str) -> String {
    let mut c = code.to_owned();
    for _ in 0..MAX_DEPTH {
        match units.get(&c) {
            Some(u) if u.level == "village" => match &u.parent {
                Some(p) => c = p.clone(),
                None => break,
            },
            _ => break,
        }
    }
    c
}

/// Whether `code` is `ancestor` or lies under it (a walk of at most ten steps up).
pub(super) fn is_under(units: &Units, code: &str, ancestor: &str) -> bool {
    let mut c = Some(code.to_owned());
    for _ in 0..10 {
        match c {
            Some(x) if x == ancestor => return true,
            Some(x) => c = units.get(&x).and_then(|u| u.parent.clone()),
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Units {
        let unit = |code: &str, level: &str, parent: Option<&str>| read::Unit {
            code: code.to_owned(),
            name: code.to_owned(),
            level: level.to_owned(),
            parent: parent.map(str::to_owned),
        };
        unit_tree(vec![
            unit("P", "province", None),
            unit("D", "district", Some("P")),
            unit("C", "commune", Some("D")),
            unit("V1", "village", Some("C")),
            unit("V2", "village", Some("C")),
        ])
    }

    /// The state on a past day undoes the later days' changes together: a resident who reached
    /// level 1 on day 4 and level 2 on day 5 counts at level 1 on neither day 3 nor now.
    #[test]
    fn a_past_days_state_undoes_the_later_changes_together() {
        let mut a = Agg::default();
        a.state.level2_activated = 1;
        a.state.level2_received = 1;
        let change = |l1, l2, rec| StateChange {
            level1_activated: l1,
            level2_activated: l2,
            level2_received: rec,
            portal: 0,
        };
        a.changes.insert(4, change(1, 0, 0));
        a.changes.insert(5, change(-1, 1, 1));
        let date = |n| super::super::time::day_date(n);
        let at = |n| {
            let s = a.state_at(date(n));
            (s.level1_activated, s.level2_activated, s.level2_received)
        };
        assert_eq!(at(3), (0, 0, 0));
        assert_eq!(at(4), (1, 0, 0));
        assert_eq!(at(5), (0, 1, 1));
        assert_eq!(at(9), (0, 1, 1));
        // Failed steps count from their day; agencies move like the state.
        a.blockers.insert((4, "other".into()), 2);
        assert!(a.blockers_upto(date(3)).is_empty());
        assert_eq!(a.blockers_upto(date(4))["other"], 2);
        a.agencies.insert("UBND".into(), (3, 1, 0));
        a.agency_changes.insert((5, "UBND".into()), (1, 0));
        assert_eq!(a.agencies_at(date(4))["UBND"], (3, 0, 0));
        assert_eq!(a.agencies_at(date(5))["UBND"], (3, 1, 0));
    }

    #[test]
    fn villages_climb_to_every_unit_above() {
        let units = tree();
        assert_eq!(units["C"].children, ["V1", "V2"]);
        let one = |n| {
            let mut a = Agg::default();
            a.state.accounts = n;
            a
        };
        let aggs = roll_up(
            &units,
            [("V1".to_owned(), one(2)), ("V2".to_owned(), one(3))],
        );
        let accounts = |c: &str| aggs[c].state.accounts;
        assert_eq!(
            [accounts("V1"), accounts("C"), accounts("D"), accounts("P")],
            [2, 5, 5, 5]
        );
        assert!(is_under(&units, "V2", "D") && !is_under(&units, "D", "V2"));
    }

    #[test]
    fn an_event_on_a_village_counts_for_its_commune() {
        let units = tree();
        assert_eq!(commune_of(&units, "V1"), "C");
        assert_eq!(commune_of(&units, "C"), "C");
        assert_eq!(commune_of(&units, "unknown"), "unknown");
    }
}
