//! Keeping the ledger up to date from what batches touched ([`crate::journal::Touch`]):
//! each resident or household touched has its contribution taken back, read again from the
//! store (indexed look-ups of a handful of rows) and added; reference tables touched are read
//! again whole (they are small); a change to the unit tree asks for a rebuild.
//!
//! What a touch reaches:
//!
//! | touch | what is read again |
//! | --- | --- |
//! | a resident's fields, or a step of theirs | the resident (state, steps, failed steps) |
//! | a household's fields (its village, deletion) | every resident whose household it is, and its visits |
//! | a visit | its household's visits |
//! | a retraction | the fact's resident (a step) or household (a visit); else sessions and outreach |
//! | officers, assignments, quotas, campaigns, sessions, outreach | that table |
//! | units | nothing: the caller rebuilds |

use super::count::{self, Earliest, HouseholdVisits};
use super::ledger::{Ledger, Sign};
use super::read;
use super::time::day_num;
use crate::error::Result;
use crate::journal::Touch;
use rusqlite::Connection;
use std::collections::BTreeSet;
use uuid::Uuid;

/// What an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Updated {
    /// The ledger follows the store.
    Done {
        /// Residents read again.
        residents: usize,
        /// Households whose visits were read again.
        households: usize,
    },
    /// The ledger cannot follow (the unit tree changed, or the store holds operations the
    /// journal never showed): rebuild it.
    Rebuild,
}

impl Ledger {
    /// Follow what `touches` changed (inside one read transaction that sees them). `maxima`:
    /// per replica, the highest counter of the operations behind the touches.
    pub fn update(
        &mut self,
        conn: &Connection,
        touches: &[Touch],
        maxima: &[(Uuid, u64)],
    ) -> Result<Updated> {
        let mut residents: BTreeSet<String> = BTreeSet::new();
        let mut households: BTreeSet<String> = BTreeSet::new();
        // Households whose own fields changed (their residents are read again too).
        let mut moved: BTreeSet<String> = BTreeSet::new();
        let (mut officers, mut assignments, mut quotas, mut campaigns, mut events) =
            (false, false, false, false, false);
        for t in touches {
            match t {
                Touch::Units => return Ok(Updated::Rebuild),
                Touch::Nothing => {}
                Touch::Officers => officers = true,
                Touch::Assignments => assignments = true,
                Touch::Quotas => quotas = true,
                Touch::Campaigns => campaigns = true,
                Touch::Events => events = true,
                Touch::Resident(r) => {
                    residents.insert(r.clone());
                }
                Touch::Visits(h) => {
                    households.insert(h.clone());
                }
                Touch::Household(h) => {
                    if moved.insert(h.clone()) {
                        residents.extend(read::residents_of(conn, h)?);
                        households.insert(h.clone());
                    }
                }
                Touch::Retracted(fact) => match read::fact_owner(conn, fact)? {
                    (Some(r), _) => {
                        residents.insert(r);
                    }
                    (None, Some(h)) => {
                        households.insert(h);
                    }
                    // A session, an outreach event, or a fact not here yet (its retraction
                    // came first: the fact, when it comes, is touched itself).
                    (None, None) => events = true,
                },
            }
        }
        for r in &residents {
            self.reread_resident(conn, r)?;
        }
        for h in &households {
            self.reread_visits(conn, h)?;
        }
        if officers {
            self.reload_officers(conn)?;
        }
        if assignments {
            self.reload_assignments(conn)?;
        }
        if quotas {
            self.reload_quotas(conn)?;
        }
        if campaigns {
            self.reload_campaigns(conn)?;
        }
        if events {
            self.reload_events(conn)?;
        }
        self.publish_officers(false);
        for (r, c) in maxima {
            let m = self.maxima.entry(*r).or_default();
            *m = (*m).max(*c);
        }
        Ok(Updated::Done {
            residents: residents.len(),
            households: households.len(),
        })
    }

    /// The replicas whose operations in the store go past what the ledger followed (each with
    /// the store's highest counter): something reached the store without the journal.
    pub fn unseen(&self, conn: &Connection) -> Result<Vec<(Uuid, u64)>> {
        Ok(read::replica_maxima(conn)?
            .into_iter()
            .filter(|(r, c)| *c > self.maxima.get(r).copied().unwrap_or(0))
            .collect())
    }

    /// Whether the ledger has followed operations up to each of `unseen`.
    pub fn caught_up_with(&self, unseen: &[(Uuid, u64)]) -> bool {
        unseen
            .iter()
            .all(|(r, c)| self.maxima.get(r).copied().unwrap_or(0) >= *c)
    }

    /// Take back a resident's contribution, read them again, add it.
    fn reread_resident(&mut self, conn: &Connection, id: &str) -> Result<()> {
        let Ok(uuid) = Uuid::parse_str(id) else {
            return Ok(()); // never in scope
        };
        let ri = match self.resident_ix.get(&uuid.as_u128()) {
            Some(ri) => *ri,
            None => {
                let ri = self.residents.len() as u32;
                self.resident_ix.insert(uuid.as_u128(), ri);
                self.residents.push(None);
                ri
            }
        };
        self.apply_resident(ri, Sign::Sub);
        self.residents[ri as usize] = None;
        self.fails.remove(&ri);
        let mut rec = None;
        read::account_states(conn, Some(id), self.has_agency, |row| {
            rec = Some(self.record(&row));
            Ok(())
        })?;
        let Some(mut rec) = rec else {
            return Ok(()); // deleted, or out of every household: out of scope
        };
        let mut best: Earliest = [None; 4];
        read::successful_steps(conn, Some(id), |row| {
            let c = count::Cred {
                at_ms: row.at_ms,
                id: row.id,
                officer: self.officer_ids.number(row.officer),
            };
            count::keep_earliest(&mut best, row.step, c);
            Ok(())
        })?;
        rec.set_steps(&best);
        let mut fails = Vec::new();
        read::failed_steps(conn, Some(id), |row| {
            fails.push(self.fail(&row));
            Ok(())
        })?;
        if !fails.is_empty() {
            self.fails.insert(ri, fails);
        }
        self.residents[ri as usize] = Some(rec);
        self.grow();
        self.apply_resident(ri, Sign::Add);
        Ok(())
    }

    /// Take back a household's visits, read them again, add them.
    fn reread_visits(&mut self, conn: &Connection, id: &str) -> Result<()> {
        let h = self.households.number(id);
        self.apply_visits(h, Sign::Sub);
        self.visits.remove(&h);
        let mut v = HouseholdVisits::default();
        read::visits(conn, Some(id), |row| {
            v.village = self.villages.number(row.village.unwrap_or_default());
            let officer = self.officer_ids.number(row.officer);
            v.counts.push((day_num(row.day), officer, row.count));
            Ok(())
        })?;
        self.grow();
        if !v.counts.is_empty() {
            self.visits.insert(h, v);
            self.apply_visits(h, Sign::Add);
        }
        Ok(())
    }
}
