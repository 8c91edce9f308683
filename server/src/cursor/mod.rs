//! The pull cursor: where a device is in the server's feed, and which areas it has been fed.
//!
//! Opaque to the device: base64url (no padding) of the postcard encoding of [`Cursor`]. The
//! server keeps nothing per device for pulls, so a device that restores an old cursor (it
//! crashed before committing a page) simply gets that page again. A cursor is not secret and
//! not signed: a device that forges one can only ask for its own scope again, which the
//! server re-checks on every pull.

use crate::error::{Result, ServerError};
use crate::generation::{Generation, Lineage};
use crate::scope::OfficerScope;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use doorstep_core::{Entity, Key, Op, OpBody};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

pub mod movein;

/// A position in the feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Every feed row with `seq` at or below this, in a fed area (or reference data), has
    /// been sent.
    pub seq: u64,
    /// The areas (village codes, sorted) the device has been fed up to `seq`.
    pub areas: Vec<String>,
    /// A backfill in progress: an area newly in scope whose rows up to `seq` are being sent,
    /// and the last feed row of it already sent.
    pub backfill: Option<Backfill>,
    /// The server's latest generations when the cursor was made, oldest first
    /// ([`crate::generation`]): how a cursor is moved back after a restore. Empty in a cursor
    /// made before generations existed.
    pub gens: Vec<Generation>,
}

/// A cursor as servers made it before generations ([`Cursor`] without `gens`).
#[derive(Deserialize)]
struct CursorV1 {
    seq: u64,
    areas: Vec<String>,
    backfill: Option<Backfill>,
}

/// A newly assigned area whose history is being sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfill {
    /// The village code.
    pub area: String,
    /// The last feed `seq` of this area already sent.
    pub after: u64,
}

impl Cursor {
    /// The text form sent to the device.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(postcard::to_allocvec(self).unwrap_or_default())
    }

    /// Read a cursor the server made; `None` (first pull) is the start of the feed.
    pub fn decode(text: Option<&str>) -> Result<Cursor> {
        let Some(text) = text else {
            return Ok(Cursor::default());
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| ServerError::BadRequest("cursor is not one this server made".into()))?;
        if let Ok(c) = postcard::from_bytes::<Cursor>(&bytes) {
            return Ok(c);
        }
        let old: CursorV1 = postcard::from_bytes(&bytes)
            .map_err(|_| ServerError::BadRequest("cursor is not one this server made".into()))?;
        Ok(Cursor {
            seq: old.seq,
            areas: old.areas,
            backfill: old.backfill,
            gens: Vec::new(),
        })
    }

    /// Move the cursor back to where its history and this database's agree (after a restore
    /// from a backup; [`Lineage::agrees_until`]), and to the feed's end if it lies past it (a
    /// database replaced while serving). What follows is sent again; the device ignores what
    /// it holds.
    fn rebase(&mut self, lineage: &Lineage, end: u64) {
        let until = lineage.agrees_until(&self.gens).unwrap_or(0).min(end);
        if self.seq > until {
            tracing::info!(
                from = self.seq,
                to = until,
                "a cursor of an earlier history (restored database): sending again from there"
            );
            self.seq = until;
        }
        if let Some(b) = self.backfill.as_mut() {
            b.after = b.after.min(self.seq);
        }
        self.gens = lineage.tail();
    }
}

/// A backend's feed as the pull algorithm reads it: one consistent snapshot (every row it
/// shows is a prefix of the feed), leaving out the pulling device's own operations.
pub trait FeedSnapshot {
    /// Up to `n` rows of `area` with `after < seq <= until`, in `seq` order.
    fn area_rows(&mut self, area: &str, after: u64, until: u64, n: usize)
        -> Result<Vec<(u64, Op)>>;
    /// Up to `n` rows with `seq > after` that are reference data (no area) or in `areas`, in
    /// `seq` order.
    fn rows_after(
        &mut self,
        areas: &BTreeSet<String>,
        after: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>>;
    /// The moves out of `from` (village codes): rows whose `from_area` is one of them with
    /// `after < seq <= until`, leaving out the pulling device's own, in `seq` order.
    fn moves_from(
        &mut self,
        from: &BTreeSet<String>,
        after: u64,
        until: u64,
    ) -> Result<Vec<(u64, Op)>>;
    /// The village the latest move of a household or resident (`id`) took it to, any
    /// replica's, if it was ever moved.
    fn last_move(&mut self, id: &str) -> Result<Option<String>>;
    /// The moves into `into` (village codes) from another village: rows in one of them with a
    /// `from_area` and `after < seq <= until`, leaving out the pulling device's own, in `seq`
    /// order, each with the village it left.
    fn moves_into(
        &mut self,
        into: &BTreeSet<String>,
        after: u64,
        until: u64,
    ) -> Result<Vec<movein::MoveIn>>;
    /// Every move of a household or resident (`id`), any replica's: `(seq, from_area, area)`
    /// in `seq` order.
    fn moves_of(&mut self, id: &str) -> Result<Vec<movein::Move>>;
    /// The last `seq` of the snapshot (0 for an empty feed).
    fn end(&mut self) -> Result<u64>;
    /// Up to `n` of the pulling device's own operations with counters above `after`, in
    /// counter order (given back to a device restored from an older copy).
    fn own_rows(&mut self, after: u64, n: usize) -> Result<Vec<Op>>;
}

/// What a pull asks besides its cursor.
#[derive(Debug, Clone, Copy)]
pub struct PullAsk<'a> {
    /// The cursor of the last page the device applied (`None` on its first pull).
    pub cursor: Option<&'a str>,
    /// At most this many operations (at least 1).
    pub limit: usize,
    /// The device's own operations to give back first: those above this counter (`None`:
    /// the device lacks none of its own).
    pub own_after: Option<u64>,
}

/// One pull page, the same on every backend: first the device's own operations it lacks (a
/// phone restored from an older copy), then the history of areas newly in the device's scope
/// (one at a time, up to the cursor's position), then everything new after the cursor in the
/// areas it has been fed and in the reference data. A cursor made in an earlier history of
/// the database (a restore) is first moved back to where the histories agree. Returns the
/// operations, the next cursor and whether more is waiting.
pub fn pull_page(
    feed: &mut dyn FeedSnapshot,
    scope: &OfficerScope,
    lineage: &Lineage,
    ask: PullAsk<'_>,
) -> Result<Page> {
    let PullAsk {
        cursor,
        limit,
        own_after,
    } = ask;
    let limit = limit.max(1);
    let mut cur = Cursor::decode(cursor)?;
    let end = feed.end()?;
    cur.rebase(lineage, end);
    // Villages the device was fed and that left its scope: it erases them.
    let in_scope = scope.feed_areas();
    let dropped: Vec<String> = cur
        .areas
        .iter()
        .filter(|a| !in_scope.contains(*a) && a.contains('-'))
        .cloned()
        .collect();
    let mut ops: Vec<Op> = Vec::new();
    if let Some(after) = own_after {
        ops = feed.own_rows(after, limit + 1)?;
        if ops.len() > limit {
            ops.truncate(limit);
        }
        if ops.len() == limit {
            if cursor.is_none() {
                cur.areas = scope.feed_areas().into_iter().collect();
            }
            return Ok(Page {
                ops,
                cursor: cur,
                has_more: true,
                dropped: Vec::new(),
                moved_out: MovedOut::default(),
            });
        }
    }
    // Villages and the units above them: what this device is sent.
    let wanted = scope.feed_areas();
    if cursor.is_none() {
        cur.areas = wanted.iter().cloned().collect();
    }
    let mut fed: BTreeSet<String> = cur
        .areas
        .iter()
        .filter(|a| wanted.contains(*a))
        .cloned()
        .collect();
    if cur
        .backfill
        .as_ref()
        .is_some_and(|b| !wanted.contains(&b.area))
    {
        cur.backfill = None;
    }
    let mut has_more = false;
    // Where this page starts in the feed, and the areas whose backfill it ends.
    let seq_before = cur.seq;
    let mut backfilled: BTreeSet<String> = BTreeSet::new();
    // Backfill areas newly in scope, up to the cursor's position, one at a time.
    loop {
        if cur.backfill.is_none() {
            cur.backfill = scope
                .areas
                .iter()
                .find(|a| !fed.contains(*a))
                .map(|a| Backfill {
                    area: a.clone(),
                    after: 0,
                });
        }
        let Some(b) = cur.backfill.as_mut() else {
            break;
        };
        let want = limit - ops.len();
        let rows = feed.area_rows(&b.area, b.after, cur.seq, want + 1)?;
        if rows.len() > want {
            b.after = rows[want - 1].0;
            ops.extend(rows.into_iter().take(want).map(|(_, op)| op));
            has_more = true;
            break;
        }
        ops.extend(rows.into_iter().map(|(_, op)| op));
        fed.insert(b.area.clone());
        backfilled.insert(b.area.clone());
        cur.backfill = None;
        if ops.len() == limit {
            has_more = true;
            break;
        }
    }
    if !has_more {
        let want = limit - ops.len();
        let rows = feed.rows_after(&fed, cur.seq, want + 1)?;
        has_more = rows.len() > want;
        for (seq, op) in rows.into_iter().take(want) {
            cur.seq = seq;
            ops.push(op);
        }
        if !has_more {
            // Everything up to the end of this snapshot was looked at (the device's own
            // operations and other areas' are not sent): start after it next time. The
            // snapshot is a prefix of the feed, so no row at or below its end commits later.
            cur.seq = cur.seq.max(end);
        }
    }
    // Households and residents that moved out of the device's villages: out of an area whose
    // backfill this page ended, in the history it sent; out of any fed area, in the part of
    // the feed this page covered.
    let mut moves = feed.moves_from(&backfilled, 0, seq_before)?;
    moves.extend(feed.moves_from(&fed, seq_before, cur.seq)?);
    let moved_out = moved_out(feed, &fed, &moves)?;
    // Households and residents that moved into them, in the same parts of the feed: what was
    // recorded about them while they lay elsewhere comes with this page.
    let mut moves_in = feed.moves_into(&backfilled, 0, seq_before)?;
    moves_in.extend(feed.moves_into(&fed, seq_before, cur.seq)?);
    let history = movein::history_of_moves_in(feed, &fed, &moves_in)?;
    if !history.is_empty() {
        let sent: BTreeSet<(doorstep_core::ReplicaId, u64)> =
            ops.iter().map(|op| (op.replica, op.counter)).collect();
        ops.extend(
            history
                .into_iter()
                .filter(|op| !sent.contains(&(op.replica, op.counter))),
        );
    }
    cur.areas = fed.into_iter().collect();
    Ok(Page {
        ops,
        cursor: cur,
        has_more,
        dropped,
        moved_out,
    })
}

/// Households and residents a device erases because they moved out of its villages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MovedOut {
    /// Households moved to a village the device is not fed.
    pub households: Vec<Uuid>,
    /// Residents moved to a household of such a village.
    pub residents: Vec<Uuid>,
}

/// Of the `moves` out of a fed village, those whose latest move in the snapshot (the same
/// one, or a later one: moved on, or back) leaves the household or resident outside `fed`. One
/// moved back into a fed village is kept: the device gets that move with its area.
fn moved_out(
    feed: &mut dyn FeedSnapshot,
    fed: &BTreeSet<String>,
    moves: &[(u64, Op)],
) -> Result<MovedOut> {
    let mut out = MovedOut::default();
    let mut seen = BTreeSet::new();
    for (_, op) in moves {
        let (household, id) = match &op.body {
            OpBody::Set {
                entity: Entity::Household,
                key: Key::Uuid(id),
                ..
            } => (true, *id),
            OpBody::Set {
                entity: Entity::Resident,
                key: Key::Uuid(id),
                ..
            } => (false, *id),
            _ => continue,
        };
        if !seen.insert(id) {
            continue;
        }
        let now_in = feed.last_move(&id.to_string())?;
        if now_in.is_some_and(|area| fed.contains(&area)) {
            continue;
        }
        if household {
            out.households.push(id);
        } else {
            out.residents.push(id);
        }
    }
    Ok(out)
}

/// One pull page.
#[derive(Debug)]
pub struct Page {
    /// The operations.
    pub ops: Vec<Op>,
    /// The next cursor.
    pub cursor: Cursor,
    /// Whether more is waiting.
    pub has_more: bool,
    /// Village codes the device was fed and that are no longer in its scope (an assignment
    /// ended, its officer moved): the device erases what it holds of them.
    pub dropped: Vec<String>,
    /// Households and residents moved out of its villages to a village it is not fed: the
    /// device erases them.
    pub moved_out: MovedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = Cursor {
            seq: 12_345,
            areas: vec!["22813-01".into(), "22813-02".into()],
            backfill: Some(Backfill {
                area: "22813-03".into(),
                after: 7,
            }),
            gens: vec![Generation { id: 9, base: 40 }],
        };
        assert_eq!(Cursor::decode(Some(&c.encode())).unwrap(), c);
        assert_eq!(Cursor::decode(None).unwrap(), Cursor::default());
        assert!(Cursor::decode(Some("!!")).is_err());
    }
}
