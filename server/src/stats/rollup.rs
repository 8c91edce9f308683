//! The roll-up: what a village, household or officer adds up to ([`Agg`]), and how villages'
//! sums climb the unit tree so that a unit counts "the unit itself and everything under it"
//! (rule 1) with one map look-up.

use super::read;
use super::time::DayNum;
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
}

/// Residents of one agency: (accounts, level-2 activated, portal) (rule 10).
pub(super) type AgencyCount = (u64, u64, u64);

/// What one unit, household or officer adds up to.
#[derive(Debug, Clone, Default)]
pub(super) struct Agg {
    pub state: State,
    /// Rule 3's counts, per local day.
    pub days: BTreeMap<DayNum, DayCounts>,
    /// Rule 5's failed steps, per reason.
    pub blockers: BTreeMap<String, u64>,
    /// Rule 10, per agency.
    pub agencies: BTreeMap<String, AgencyCount>,
}

impl Agg {
    pub fn add(&mut self, o: &Agg) {
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

    /// The counts of a day, made if absent.
    pub fn day(&mut self, d: DayNum) -> &mut DayCounts {
        self.days.entry(d).or_default()
    }
}

/// A unit and its place in the tree.
#[derive(Debug, Clone)]
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
        let mut code = Some(v);
        let mut depth = 0;
        while let Some(c) = code {
            code = units.get(&c).and_then(|u| u.parent.clone());
            aggs.entry(c).or_default().add(&agg);
            depth += 1;
            if depth > MAX_DEPTH {
                break;
            }
        }
    }
    aggs
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
