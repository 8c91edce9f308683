//! The counting rules of `docs/dashboard-api.md` applied to the store's rows: what each
//! resident (with their steps, failed or not), household's visits, session and outreach event
//! adds to its village's and its officers' sums ([`Agg`]): a [`Contribution`], which
//! [`super::ledger`] adds, and takes back when the resident or household changes.
//! [`super::rollup`] carries the villages' sums up the unit tree.

use super::read::{self, Step};
use super::rollup::{commune_of, Agg, State, StateChange, Units};
use super::time::{day_date, day_of_ms, local_hm, DayNum};
use super::types::{DayCounts, SessionRow};
use std::collections::BTreeMap;

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

/// A step credited (rule 3): its local day and its officer (a number in the ledger's officer
/// names, known to the `officers` table or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Credit {
    pub day: DayNum,
    pub officer: u32,
}

/// A successful step that may be the earliest of its kind.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cred {
    pub at_ms: i64,
    pub id: u128,
    pub officer: u32,
}

impl Cred {
    /// Rule 3's order: by `at_ms`, then fact id.
    fn earlier(&self, o: &Cred) -> bool {
        (self.at_ms, self.id) < (o.at_ms, o.id)
    }

    fn credit(&self) -> Credit {
        Credit {
            day: day_of_ms(self.at_ms),
            officer: self.officer,
        }
    }
}

/// A resident's earliest successful step of each [`Step`] (indexed by it), while reading.
pub(super) type Earliest = [Option<Cred>; 4];

/// Rule 3: keep `c` if it is the earliest of its kind so far (by `at_ms`, then fact id).
pub(super) fn keep_earliest(best: &mut Earliest, step: Step, c: Cred) {
    let slot = &mut best[step as usize];
    if slot.is_none_or(|b| c.earlier(&b)) {
        *slot = Some(c);
    }
}

/// Rule 3's `today.activated`: the earlier of the earliest level-1 and level-2 activations.
fn first_activation(creds: &Earliest) -> Option<&Cred> {
    let l1 = &creds[Step::Level1Activated as usize];
    let l2 = &creds[Step::Level2Activated as usize];
    match (l1, l2) {
        (Some(a), Some(b)) => Some(if a.earlier(b) { a } else { b }),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
}

/// State bits of a resident now (rule 2).
const S_L1: u8 = 1;
const S_L2: u8 = 2;
const S_L2REC: u8 = 4;
const S_PORTAL: u8 = 8;

/// What the ledger keeps of a resident in scope: enough to say again what they add to every
/// sum, without reading the store (so that it can be taken back when they change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResidentRec {
    /// Their household's village (a number in the ledger's village names).
    pub village: u32,
    /// Their household (a number in the ledger's household names).
    pub household: u32,
    /// Their agency (a number in the ledger's agency names).
    pub agency: Option<u32>,
    roster: u8,
    state: u8,
    /// The earliest step of each [`Step`].
    steps: [Option<Credit>; 4],
    /// The first activation (level 1 or 2).
    first: Option<Credit>,
}

impl ResidentRec {
    /// A resident of [`read::account_states`], their places already numbered.
    pub fn new(
        row: &read::AccountState<'_>,
        village: u32,
        household: u32,
        agency: Option<u32>,
    ) -> Self {
        let roster = roster_bits(row.roster_account);
        let s = resident_state(row, roster);
        let bit = |n: u64, b: u8| if n > 0 { b } else { 0 };
        ResidentRec {
            village,
            household,
            agency,
            roster,
            state: bit(s.level1_activated, S_L1)
                | bit(s.level2_activated, S_L2)
                | bit(s.level2_received, S_L2REC)
                | bit(s.portal, S_PORTAL),
            steps: [None; 4],
            first: None,
        }
    }

    /// Set their earliest steps.
    pub fn set_steps(&mut self, best: &Earliest) {
        for (slot, c) in self.steps.iter_mut().zip(best) {
            *slot = c.map(|c| c.credit());
        }
        self.first = first_activation(best).map(Cred::credit);
    }

    /// Rules 1 and 2: what they add to their village's and household's state.
    pub fn state(&self) -> State {
        let one = |b: u8| u64::from(self.state & b != 0);
        let roster = |b: u8| u64::from(self.roster & b != 0);
        State {
            accounts: 1,
            level1_activated: one(S_L1),
            level2_activated: one(S_L2),
            level2_received: one(S_L2REC),
            portal: one(S_PORTAL),
            roster_activated: u64::from(roster_activated(self.roster)),
            roster_level1: roster(R_L1),
            roster_level2: roster(R_L2),
        }
    }
}

/// A resident's failed steps of one officer, local day and reason (rule 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fail {
    pub day: DayNum,
    pub officer: u32,
    pub reason: u32,
    pub count: u64,
}

/// A household's visits: its village, and per (day, officer) how many (rule 3's visits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HouseholdVisits {
    pub village: u32,
    pub counts: Vec<(DayNum, u32, u64)>,
}

/// What one resident or household adds: to their village (and every unit above it), and to
/// officers (by number) for the steps and visits credited to them.
#[derive(Debug, Default)]
pub(super) struct Contribution {
    pub village: Agg,
    pub officers: Vec<(u32, Agg)>,
}

impl Contribution {
    fn officer(&mut self, n: u32) -> &mut Agg {
        let i = match self.officers.iter().position(|(o, _)| *o == n) {
            Some(i) => i,
            None => {
                self.officers.push((n, Agg::default()));
                self.officers.len() - 1
            }
        };
        &mut self.officers[i].1
    }
}

/// A state reached before any step (the roster said so): in the state of every day.
const ALWAYS: DayNum = DayNum::MIN;
/// A state not reached (yet): in the state of no day.
const NEVER: DayNum = DayNum::MAX;

/// Everything a resident adds (rules 1, 2, 3, 5, 10): `agencies` and `reasons` name the numbers
/// the record and its failed steps hold.
pub(super) fn resident_contribution(
    rec: &ResidentRec,
    fails: &[Fail],
    agencies: &[String],
    reasons: &[String],
) -> Contribution {
    let mut out = Contribution::default();
    let s = rec.state();
    out.village.state = s;
    let agency = rec.agency.and_then(|a| agencies.get(a as usize));
    // Rule 10: a resident with an agency counts for it (accounts, level-2 activated, portal).
    if let Some(a) = agency {
        out.village
            .agencies
            .insert(a.clone(), (1, s.level2_activated, s.portal));
    }
    state_changes(rec, agency, &mut out.village);
    credit_steps(rec, &mut out);
    // Rule 5: failed steps, by day and reason, for the village and the step's officer.
    for f in fails {
        let Some(reason) = reasons.get(f.reason as usize) else {
            continue;
        };
        add_blocker(&mut out.village.blockers, f.day, reason, f.count);
        add_blocker(&mut out.officer(f.officer).blockers, f.day, reason, f.count);
    }
    out
}

/// Rule 2 on past days: the local days on which the resident's state counts changed, for
/// their village's [`Agg::changes`] (and their agency's). The state is the join of the
/// roster's claim and the successful steps, so a count is reached on the day of the earliest
/// step that reaches it — level-2 received by an application or an activation, level-1
/// activated counted only while level 2 is not — unless the roster already claimed it.
fn state_changes(res: &ResidentRec, agency: Option<&String>, agg: &mut Agg) {
    let day = |s: Step| res.steps[s as usize].map_or(NEVER, |c| c.day);
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
    for (d, c) in &moves {
        agg.changes.entry(*d).or_default().add(c);
        if let Some(name) = agency {
            if c.level2_activated != 0 || c.portal != 0 {
                let e = agg.agency_changes.entry((*d, name.clone())).or_default();
                e.0 += c.level2_activated;
                e.1 += c.portal;
            }
        }
    }
}

/// Rule 3: each earliest step counts on its day, for the resident's village and the step's
/// officer, unless the roster already included its metric; the first activation counts as
/// `activated` unless the roster already said activated.
fn credit_steps(res: &ResidentRec, out: &mut Contribution) {
    const STEPS: [Step; 4] = [
        Step::Level1Activated,
        Step::Level2Received,
        Step::Level2Activated,
        Step::PortalGuided,
    ];
    let mut credit = |c: &Credit, f: fn(&mut DayCounts)| {
        f(out.village.day(c.day));
        f(out.officer(c.officer).day(c.day));
    };
    for (step, c) in STEPS.into_iter().zip(&res.steps) {
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
        if let Some(c) = &res.first {
            credit(c, |d| d.activated += 1);
        }
    }
}

/// Rule 3's `today.visits`: a household's non-retracted visits, each counted on its day for
/// the household's village and the visiting officer.
pub(super) fn visits_contribution(v: &HouseholdVisits) -> Contribution {
    let mut out = Contribution::default();
    for (d, officer, n) in &v.counts {
        out.village.day(*d).visits += n;
        out.officer(*officer).day(*d).visits += n;
    }
    out
}

fn add_blocker(blockers: &mut BTreeMap<(DayNum, String), u64>, day: DayNum, reason: &str, n: u64) {
    *blockers.entry((day, reason.to_owned())).or_default() += n;
}

/// A session or outreach fact, kept whole (there are few).
#[derive(Debug, Clone, PartialEq)]
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
    use uuid::Uuid;

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
