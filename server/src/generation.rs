//! The server's generations: which history of the feed a pull cursor was made in.
//!
//! Every start of the server begins a new generation: a random id and the feed's end when it
//! began (its *base*), appended to the lineage kept in `server_meta` (key `lineage`). A cursor
//! carries the last few generations it knew of. A database restored from a backup (or
//! replaced) is only ever served after a start, and the lineage restored with it lacks the
//! generations the lost history was made in: the cursor's latest generation the server still
//! knows, and the bases after it on both sides, bound how far the two histories agree. The
//! pull goes back to there and sends again what follows (`docs/sync-protocol.md`,
//! "Restores"). A restart without a restore costs nothing: a cursor made before it never lies
//! past the base of the generation that followed.

use crate::error::{Result, ServerError};
use serde::{Deserialize, Serialize};

/// Generations a cursor carries: the latest of the lineage when it was made.
pub const CURSOR_GENERATIONS: usize = 3;

/// Generations kept in the lineage: the first (cursors older than generations exist are
/// taken to be of it) and the latest ones. A cursor older than every kept generation is
/// answered from the start of the feed (everything again, nothing lost).
pub const KEPT_GENERATIONS: usize = 200;

/// One generation: its id and the feed's end (`seq`) when it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// Random, never reused.
    pub id: u64,
    /// Every feed row at or below it was made in an earlier generation.
    pub base: u64,
}

/// The generations of this database, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage(pub Vec<Generation>);

impl Lineage {
    /// Read the text form `id:base,id:base` (ids in hex); empty text is an empty lineage.
    pub fn parse(text: &str) -> Result<Lineage> {
        let bad = || ServerError::Internal("server_meta.lineage: not id:base,… pairs".into());
        let mut out = Vec::new();
        for item in text.split(',').filter(|s| !s.trim().is_empty()) {
            let (id, base) = item.trim().split_once(':').ok_or_else(bad)?;
            out.push(Generation {
                id: u64::from_str_radix(id, 16).map_err(|_| bad())?,
                base: base.parse().map_err(|_| bad())?,
            });
        }
        Ok(Lineage(out))
    }

    /// The text form kept in `server_meta`.
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|g| format!("{:x}:{}", g.id, g.base))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Begin a new generation at feed end `end` with id `id`; keeps the first and the latest
    /// [`KEPT_GENERATIONS`] − 1.
    pub fn begin(&mut self, id: u64, end: u64) -> Generation {
        let g = Generation { id, base: end };
        self.0.push(g);
        if self.0.len() > KEPT_GENERATIONS {
            let cut = self.0.len() - KEPT_GENERATIONS;
            self.0.drain(1..=cut);
        }
        g
    }

    /// What a cursor made now carries: the latest generations, oldest first.
    pub fn tail(&self) -> Vec<Generation> {
        let from = self.0.len().saturating_sub(CURSOR_GENERATIONS);
        self.0[from..].to_vec()
    }

    /// How far (feed `seq`) the history a cursor was made in, `gens` (its generations, oldest
    /// first), agrees with this lineage's: `Some(u64::MAX)` when the cursor's latest
    /// generation is this lineage's latest; `None` when no generation of the cursor's is known
    /// here (nothing is known to agree: start from the feed's beginning). A cursor without
    /// generations (made before generations existed) is taken to be of the first one.
    pub fn agrees_until(&self, gens: &[Generation]) -> Option<u64> {
        let first = self.0.first().copied();
        let gens: Vec<Generation> = if gens.is_empty() {
            first.into_iter().collect()
        } else {
            gens.to_vec()
        };
        // The cursor's latest generation that this lineage knows.
        let (j, i) = gens
            .iter()
            .enumerate()
            .rev()
            .find_map(|(j, g)| self.0.iter().position(|m| m.id == g.id).map(|i| (j, i)))?;
        // Both histories follow that generation up to the first base after it on either side.
        let after_cursor = gens[j + 1..].iter().map(|g| g.base);
        let after_here = self.0[i + 1..].iter().map(|g| g.base);
        Some(after_cursor.chain(after_here).min().unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(id: u64, base: u64) -> Generation {
        Generation { id, base }
    }

    #[test]
    fn text_round_trips_and_bad_text_is_an_error() {
        let l = Lineage(vec![g(0xabc, 0), g(7, 120)]);
        assert_eq!(l.to_text(), "abc:0,7:120");
        assert_eq!(Lineage::parse(&l.to_text()).unwrap(), l);
        assert_eq!(Lineage::parse("").unwrap(), Lineage::default());
        assert!(Lineage::parse("zz:1").is_err());
        assert!(Lineage::parse("1-2").is_err());
    }

    #[test]
    fn a_restart_costs_nothing_and_a_restore_goes_back_to_the_backup() {
        // g1 began at 0, g2 at 100 (a restart); a cursor made in g2 at 150.
        let live = Lineage(vec![g(1, 0), g(2, 100)]);
        let cursor = live.tail();
        assert_eq!(live.agrees_until(&cursor), Some(u64::MAX));
        // Another restart at 180: the cursor (at 150 ≤ 180) is not moved back.
        let mut restarted = live.clone();
        restarted.begin(3, 180);
        assert_eq!(restarted.agrees_until(&cursor), Some(180));
        // The database restored from a backup taken in g2 at 130 (its lineage: g1, g2), then
        // started: g4 began at 130. The cursor (g2, 150) goes back to 130.
        let mut restored = live.clone();
        restored.begin(4, 130);
        assert_eq!(restored.agrees_until(&cursor), Some(130));
        // Restored from a backup taken in g1 at 60: g2 is unknown there; g1 is known, and g2
        // began at 100 in the cursor's history, the restore at 60 in this one.
        let mut older = Lineage(vec![g(1, 0)]);
        older.begin(5, 60);
        assert_eq!(older.agrees_until(&cursor), Some(60));
        // A cursor of a history this database never knew: from the start.
        assert_eq!(older.agrees_until(&[g(99, 10)]), None);
        // A cursor from before generations: of the first.
        assert_eq!(restored.agrees_until(&[]), Some(100));
    }

    #[test]
    fn the_first_generation_is_kept() {
        let mut l = Lineage::default();
        for i in 0..(KEPT_GENERATIONS as u64 + 50) {
            l.begin(i + 1, i * 10);
        }
        assert_eq!(l.0.len(), KEPT_GENERATIONS);
        assert_eq!(l.0[0], g(1, 0));
        assert_eq!(l.0.last().unwrap().id, KEPT_GENERATIONS as u64 + 50);
    }

    proptest! {
        /// A history of restarts and restores from backups taken at any earlier point: the
        /// seq a cursor is moved back to is never past the end of the history both share
        /// (nothing is skipped), and it is exactly the cursor's own seq when nothing was lost.
        #[test]
        fn never_past_the_shared_history(steps in prop::collection::vec((0u8..3, 0u64..1000), 1..30)) {
            // Histories are modelled as row ids: a feed is a Vec of (generation-made-in, n).
            #[derive(Clone)]
            struct Db { lineage: Lineage, feed: Vec<u64> }
            let mut next_id = 1u64;
            let mut db = Db { lineage: Lineage::default(), feed: Vec::new() };
            db.lineage.begin(next_id, 0);
            let mut backups: Vec<Db> = vec![db.clone()];
            let mut row = 0u64;
            // Cursors: (generations, seq, the feed they were made against).
            let mut cursors: Vec<(Vec<Generation>, u64, Vec<u64>)> = Vec::new();
            for (kind, n) in steps {
                match kind {
                    0 => {
                        // Rows written, a cursor made at the end.
                        for _ in 0..(n % 20) { row += 1; db.feed.push(row); }
                        cursors.push((db.lineage.tail(), db.feed.len() as u64, db.feed.clone()));
                        backups.push(db.clone());
                    }
                    1 => {
                        // A restart.
                        next_id += 1;
                        let end = db.feed.len() as u64;
                        db.lineage.begin(next_id, end);
                    }
                    _ => {
                        // A restore from some backup, then a start.
                        db = backups[(n as usize) % backups.len()].clone();
                        next_id += 1;
                        let end = db.feed.len() as u64;
                        db.lineage.begin(next_id, end);
                    }
                }
                for (gens, seq, seen) in &cursors {
                    let shared = seen.iter().zip(&db.feed).take_while(|(a, b)| a == b).count() as u64;
                    let back = db.lineage.agrees_until(gens).map_or(0, |a| a.min(*seq));
                    prop_assert!(back <= shared.min(*seq), "moved to {back}, shared {shared}");
                    if shared >= *seq && db.lineage.0.iter().any(|g| g.id == gens.last().unwrap().id) && seen.len() as u64 == *seq && db.feed.starts_with(seen) {
                        // Nothing the cursor saw was lost, and its generation is known.
                        let restored_since = db.lineage.0.iter().skip_while(|g| g.id != gens.last().unwrap().id).skip(1).any(|g| g.base < *seq);
                        if !restored_since { prop_assert_eq!(back, *seq); }
                    }
                }
            }
        }
    }
}
